# The application hook: what user code on a board (app.py) gets from the node.
#
# After the node has built and started its engine, Node.run() imports the
# module `app` (app.py or app.mpy at the root of the board's filesystem; no
# such file is normal: no application) and calls its setup(node) with an App,
# the one object an application talks to (docs/apps.md):
#     node.publish(payload, priority=0) -> message id (int, (origin << 16) | seq)
#     node.on_message(cb)               cb(msg) for each message new to this node
#     node.every(ms, fn)                fn() every ms milliseconds, on the node's loop
#     node.task(coro)                   run a coroutine on the node's loop
#     node.id, node.settings (board.json node.app), node.stats()
#
# Application code runs inside the node's own loop, so whatever it raises is
# caught here and reported as one `error` event ("cmd":"app"); the mesh goes
# on.  A fault that repeats (a timer failing every 10 ms) prints one event a
# second at most and counts the rest, so the console stays readable.
#
# Nothing here runs per message unless an application registered a callback:
# Node._deliver tests `node.app is not None`, nothing more.
import sys

from . import console as con
from . import ticks

try:
    from micropython import const
except ImportError:  # CPython (the firmware tests run there too)
    const = lambda x: x  # noqa: E731

MODULE = "app"
_ERR_GAP_MS = const(1000)  # at most one app error event a second; the others are counted


def _where(e):
    """'app.py:12', where e was raised (best effort), or ''."""
    tb = getattr(e, "__traceback__", None)
    if tb is not None:  # CPython
        while tb.tb_next is not None:
            tb = tb.tb_next
        return "%s:%d" % (tb.tb_frame.f_code.co_filename.rsplit("/", 1)[-1], tb.tb_lineno)
    try:
        import io

        buf = io.StringIO()
        sys.print_exception(e, buf)  # pyright: ignore[reportArgumentType]  # any stream will do
        last = ""
        for line in buf.getvalue().split("\n"):  # pyright: ignore[reportAttributeAccessIssue]  # MicroPython's StringIO has it
            line = line.strip()
            if line.startswith('File "'):
                last = line
        if not last:
            return ""
        q = last.find('"', 6)
        ln = last.find("line ", q)
        end = last.find(",", ln)
        return "%s:%s" % (last[6:q], last[ln + 5:end if end > 0 else len(last)])
    except Exception:  # noqa: BLE001 - a report must not fail
        return ""


def _missing(e, name):
    """True if ImportError e says `name` itself is not there (not something
    the application imports)."""
    msg = str(e)
    return ("'%s'" % name) in msg and "o module named" in msg


async def _sleep_ms(ms):
    import asyncio

    sleep = getattr(asyncio, "sleep_ms", None)
    if sleep is not None:
        await sleep(ms)
    else:  # CPython
        await asyncio.sleep(ms / 1000)


class App:
    """What setup(node) receives.  id: this node's id (int); settings: the
    board.json `node.app` object (a dict, {} when absent)."""

    def __init__(self, node):
        self._node = node
        self.id = node.node_id
        s = node.board.get("node", {}).get("app", {})
        self.settings = s if isinstance(s, dict) else {}
        self._cbs = []  # on_message callbacks, in registration order
        self._tasks = []  # what every() and task() started (cancelled if setup fails)
        self.errors = 0  # application faults caught so far
        self._err_at = 0  # clock of the last error event (when _err_shown)
        self._err_shown = False
        self._err_quiet = 0  # faults not printed since the last error event
        if not isinstance(s, dict):
            self.fail("settings", ValueError("node.app in board.json must be an object"))

    # -- what an application calls ----------------------------------------------
    def publish(self, payload, priority=0):
        """Originate a message (bytes, bytearray or str); returns its id.
        ValueError for a bad priority or a payload over max_payload."""
        if isinstance(payload, str):
            payload = payload.encode()
        n = self._node
        mid = n.gossip.publish(payload, priority)
        seq = mid & 0xFFFF
        c = n.console
        c.emit("publish", "origin", c.node_hex, "seq", seq, "id", "%s%04x" % (c.node_hex, seq),
               "priority", priority, "len", len(payload), "req", None, "app", True)
        return mid

    def on_message(self, cb):
        """cb(msg) for every message new to this node (not its own): msg is
        the engine's reused rumor.Message, valid during the call only."""
        self._cbs.append(cb)

    def every(self, ms, fn):
        """Call fn() every ms milliseconds (the first call after ms); returns
        the task (task.cancel() stops it).  A call that raises is reported and
        the timer goes on."""
        if not isinstance(ms, int) or ms < 1:
            raise ValueError("every(): ms must be a positive int, got %r" % (ms,))
        return self._start(self._every(ms, fn, getattr(fn, "__name__", "every")))

    def task(self, coro):
        """Run coro on the node's loop; if it raises, that is reported."""
        return self._start(self._guard(coro))

    def stats(self):
        """What the `stats` event carries: core, radio, mem_free."""
        import gc

        n = self._node
        try:
            free = gc.mem_free()  # pyright: ignore[reportAttributeAccessIssue]  # MicroPython's gc
        except AttributeError:
            free = None
        return {"core": n.gossip.stats(), "radio": n.radio.stats(), "mem_free": free}

    # -- the node's side ---------------------------------------------------------
    def deliver(self, msg):
        for cb in self._cbs:
            try:
                cb(msg)
            except Exception as e:  # noqa: BLE001 - an application bug must not stop the mesh
                self.fail("on_message", e)

    def fail(self, where, e):
        """Report application fault e (in `where`) as one error event."""
        self.errors += 1
        c = self._node.console
        now = c.clock()
        if self._err_shown and ticks.diff(now, self._err_at) < _ERR_GAP_MS:
            self._err_quiet += 1
            return
        loc = _where(e)
        msg = "%s: %s: %s" % (where, type(e).__name__, e)
        if loc:
            msg += " (%s)" % loc
        if self._err_quiet:
            msg += " [+%d more faults since the last report]" % self._err_quiet
        self._err_quiet = 0
        self._err_shown = True
        self._err_at = now
        c.error("app", msg)

    def close(self):
        for t in self._tasks:
            t.cancel()
        self._tasks = []
        self._cbs = []

    def _start(self, coro):
        import asyncio

        t = asyncio.create_task(coro)
        self._tasks.append(t)
        return t

    async def _every(self, ms, fn, name):
        while True:
            await _sleep_ms(ms)
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - reported, and the timer goes on
                self.fail(name, e)

    async def _guard(self, coro):
        try:
            await coro
        except Exception as e:  # noqa: BLE001 - reported; cancellation passes through
            self.fail("task", e)


def load(node, name=MODULE):
    """Import the application module and call its setup(App).  Returns the
    App (also set as node.app), or None: no application, or it failed (one
    error event, and the node runs without it)."""
    import gc

    app = App(node)
    here = "" not in sys.path  # the cwd: a board's sys.path has it, a test runner's may not
    if here:
        sys.path.insert(0, "")
    try:
        mod = __import__(name)
    except ImportError as e:
        if not _missing(e, name):
            app.fail("import", e)
        return None
    except Exception as e:  # noqa: BLE001 - a SyntaxError in app.py, a fault at import time
        app.fail("import", e)
        return None
    finally:
        if here:
            sys.path.remove("")
    gc.collect()  # what compiling app.py left behind
    setup = getattr(mod, "setup", None)
    if not callable(setup):
        app.fail("import", ValueError("%s has no setup(node) function" % name))
        return None
    try:
        r = setup(app)
    except Exception as e:  # noqa: BLE001
        app.fail("setup", e)
        app.close()
        return None
    if r is not None and hasattr(r, "send"):  # async def setup(node): run it as a task
        app.task(r)
    node.app = app
    node.console.emit("app", "module", name, "callbacks", len(app._cbs),
                      "tasks", len(app._tasks), level=con.INFO)
    return app
