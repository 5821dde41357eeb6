"""rumor logs: read every board at once into one JSONL file.

Each line a board prints becomes one JSON object, stamped with host time and
port, appended and flushed at once (a crash loses nothing already read):
    {"t": 1712345678.123, "port": "/dev/ttyUSB0", "ev": {...}}     an @rumor event
    {"t": ..., "port": ..., "line": "..."}                          anything else
    {"t": ..., "port": ..., "collector": "disconnected", "why": "..."}  the collector's own notes
Notes: connected, disconnected, reconnected, waiting (a port not there yet),
gone (a port given up: --no-reconnect).  Flags a line may carry:
    "garbage": true   bytes that were not UTF-8 (kept as U+FFFD) or control characters
    "long": true      a piece of a line longer than MAX_LINE bytes
    "cut": true       a line the board did not finish: the last bytes before
                      its port vanished, or the start of an event that a reset
                      cut short (the whole event after it is recorded on its own)
A board unplugged is reported and waited for; it is read again when it is back.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import click

from rumor_host.serialio import (
    PREFIX,
    Line,
    LineReader,
    PortError,
    close_port,
    is_garbage,
    open_port,
    split_event,
)

Record = dict[str, Any]
_QUICK_S = 1.0  # a port that fails again within this of opening backs off
_BACKOFF_MAX_S = 5.0


class RunFileError(Exception):
    """The --out file holds another run (and --append was not given); one line."""


def _describe_run(path: Path) -> str:
    """What the first line of a run file says about its run, for an error."""
    try:
        with open(path, "rb") as f:
            first = json.loads(f.readline().decode("utf-8", "replace"))
        run = first.get("run") if isinstance(first, dict) else None
    except (OSError, ValueError):
        run = None
    if isinstance(run, dict):
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(float(first.get("t", 0))))
        return f"run {run.get('id')} of {when}"
    return "records of an earlier run"


def unique_ports(ports: list[str] | tuple[str, ...]) -> list[str]:
    """ports without repeats: the same port given twice (or by two names,
    a symlink and its target) is one port, under the name given first."""
    out: list[str] = []
    seen: set[str] = set()
    for p in ports:
        names = {os.path.abspath(p), os.path.realpath(p)}
        if names & seen:
            continue
        seen |= names
        out.append(p)
    return out


class Collector:
    """Reads ports into records (and the out file).  append: add to a file
    that already holds records (else RunFileError).  control: serve the
    control socket (control.py) so other commands reach these ports through
    this collector.  nodes_every: ask every board for its neighbours (!peers)
    this often, in seconds (None: never).  keep: also keep every record in
    .records (False for a long-running holder that writes no file)."""

    def __init__(self, ports: list[str], out: str | Path | None,
                 echo: Callable[[Record], None] | None = None, retry_s: float = 0.2,
                 reconnect: bool = True, warn: Callable[[str], None] | None = None, *,
                 append: bool = False, control: bool = True, nodes_every: float | None = None,
                 argv: list[str] | None = None, keep: bool = True):
        from rumor_host.control import new_run_id

        self.ports = unique_ports(ports)
        self.out_path = Path(out) if out else None
        self.echo = echo
        self.retry_s = retry_s
        self.reconnect = reconnect
        self.warn = warn or (lambda s: print(s, file=sys.stderr, flush=True))
        self.run_id = new_run_id()
        self.nodes_every = nodes_every
        self.keep = keep
        self.records: list[Record] = []
        self.counts = {"garbage": 0, "long": 0, "cut": 0}
        self.write_error: str | None = None
        self.ever: set[str] = set()  # ports that opened at least once
        self.control: Any = None
        self._want_control = control
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._readers: dict[str, LineReader | None] = {p: None for p in self.ports}
        self._pause = {p: threading.Event() for p in self.ports}
        self._released = {p: threading.Event() for p in self.ports}
        self._pause_why: dict[str, str] = {}
        self._ilock = threading.Lock()
        self._req = 0
        self._pending: dict[tuple[str, int], tuple[float, float, dict[str, Any]]] = {}
        self._wlock = threading.Lock()
        self._txlock = threading.Lock()  # one writer at a time: lines from two clients never interleave
        p = self.out_path
        if p is not None and not append and p.is_file() and p.stat().st_size > 0:
            raise RunFileError(f"{p} already holds {_describe_run(p)}: give --append to add "
                               "this run to it (rumor report tells runs apart), or another --out")
        self._file = open(p, "a", encoding="utf-8") if p else None  # noqa: SIM115
        if self._file and self._file.tell() > 0:
            # a previous run may have been cut mid-line: start on a line of our own
            with open(p, "rb") as f:  # type: ignore[arg-type]
                f.seek(-1, 2)
                if f.read(1) != b"\n":
                    self._file.write("\n")
                    self._file.flush()
        self._write({"t": round(time.time(), 6),
                     "run": {"id": self.run_id, "v": 1, "ports": self.ports,
                             "argv": list(sys.argv if argv is None else argv)}})

    def __enter__(self) -> Collector:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self._want_control and self.control is None:
            from rumor_host.control import ControlError, ControlServer

            srv = ControlServer(self, self.run_id)
            try:
                srv.start()
                self.control = srv
            except (ControlError, OSError) as e:  # logs still works; other commands can't join it
                self.warn(f"no control socket ({e}): other commands cannot reach these ports")
        for p in self.ports:
            t = threading.Thread(target=self._read_port, args=(p,), name=f"logs-{p}", daemon=True)
            t.start()
            self._threads.append(t)
        if self.nodes_every:
            t = threading.Thread(target=self._snapshots, name="logs-peers", daemon=True)
            t.start()

    def stop(self) -> None:
        if self.control is not None:
            self.control.stop()
            self.control = None
        self._stop.set()
        for t in self._threads:
            t.join(2)
        with self._wlock:
            if self._file:
                with contextlib.suppress(OSError):
                    self._file.close()
                self._file = None

    def _snapshots(self) -> None:
        """!peers to every board every nodes_every s: the neighbour snapshots
        `rumor report --map` draws (answers are ordinary peers events)."""
        assert self.nodes_every
        # the first soon (a short run gets a map too), once the nodes have heard each other
        wait = min(self.nodes_every, 10.0)
        while not self._stop.wait(wait):
            wait = self.nodes_every
            for p in self.ports:
                with contextlib.suppress(PortError):
                    if self.connected(p):
                        self.send(p, "!peers")

    def alive(self) -> bool:
        """Some port is still being read (or waited for)."""
        return any(t.is_alive() for t in self._threads)

    # -- records ------------------------------------------------------------------
    def _write(self, rec: Record) -> None:
        with self._wlock:
            if self._file:
                try:
                    self._file.write(json.dumps(rec, separators=(",", ":")) + "\n")
                    self._file.flush()
                except OSError as e:  # disk full, file system gone: say so once, keep reading
                    if self.write_error is None:
                        self.write_error = f"{self.out_path}: cannot write: {e.strerror or e}"
                        with contextlib.suppress(Exception):
                            self.warn(self.write_error + " (lines are kept in memory only)")

    def _record(self, port: str, t: float | None = None, **kw: Any) -> Record:
        rec: Record = {"t": round(time.time() if t is None else t, 6), "port": port}
        rec.update(kw)
        self._write(rec)
        with self._cond:
            if self.keep:
                self.records.append(rec)
            self._cond.notify_all()
        if self.control is not None:
            self.control.publish(rec)
        if self.echo:
            try:
                self.echo(rec)
            except (OSError, ValueError):  # stdout went away (`| head`): keep collecting
                self.echo = None
        ev = kw.get("ev")
        if ev is not None and ev.get("ev") == "publish" and self._pending:
            self._injected(port, ev)
        return rec

    def _injected(self, port: str, ev: dict[str, Any]) -> None:
        """The node's answer to an injection of ours: the inject record, with
        the host time taken just before the command went out."""
        req = ev.get("req")
        with self._ilock:
            got = self._pending.pop((port, req), None) if isinstance(req, int) else None
        if got is not None and isinstance(ev.get("id"), str):
            t0, _, meta = got
            self._record(port, t=t0, inject={"id": ev["id"], **meta})

    def inject(self, port: str, text: str | None = None, hex_payload: str | None = None,
               priority: int = 0, via: str = "direct") -> tuple[int, int]:
        """Publish at the board on port through this collector: (req, bytes
        of the command line).  The node's publish answer (with that req) is
        followed by an inject record.  ValueError for a bad payload or a line
        the console would refuse; PortError when the port is not connected."""
        from rumor_host.board import inject_line

        with self._ilock:
            self._req += 1
            req = self._req
            now = time.monotonic()
            for k in [k for k, v in self._pending.items() if now - v[1] > 120]:
                del self._pending[k]  # never answered (the node was at the REPL)
        line = inject_line(text, hex_payload, priority, req)
        meta: dict[str, Any] = {"payload": text if text is not None else hex_payload,
                                "priority": priority, "via": via}
        if text is None:
            meta["hex"] = True
        t0 = time.time()
        with self._ilock:
            self._pending[(port, req)] = (t0, time.monotonic(), meta)
        try:
            self.send(port, line)
        except PortError:
            with self._ilock:
                self._pending.pop((port, req), None)
            raise
        return req, len(line.encode())

    def _line(self, port: str, ln: Line, cut: bool = False) -> None:
        """One line a board printed: an event, the pieces around one, or text."""
        if not ln.text.strip():
            return
        ev, before, after = split_event(ln.text)
        if before.strip():
            self._text(port, before, ln.long, cut or PREFIX in before)
        if ev is not None:
            flags: dict[str, bool] = {}
            if is_garbage(json.dumps(ev, ensure_ascii=False)):
                flags["garbage"] = True  # bytes mangled inside a string: the report checks the fields
                self.counts["garbage"] += 1
            if cut:
                flags["cut"] = True  # whole, but no newline came after it
            self._record(port, ev=ev, **flags)
        if after.strip():
            self._text(port, after, ln.long, cut)

    def _text(self, port: str, text: str, long: bool, cut: bool) -> None:
        flags: dict[str, bool] = {}
        if is_garbage(text):
            flags["garbage"] = True
        if long:
            flags["long"] = True
        if cut:
            flags["cut"] = True
        for k in flags:
            self.counts[k] += 1
        self._record(port, line=text, **flags)

    def wait_for(self, pred: Callable[[list[Record]], bool], timeout: float) -> bool:
        """Block until pred(records) is true (True) or timeout (False)."""
        end = time.monotonic() + timeout
        with self._cond:
            while not pred(self.records):
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.2))
            return True

    def events(self, ev: str | None = None) -> list[Record]:
        with self._cond:
            return [r for r in self.records if "ev" in r and (ev is None or r["ev"]["ev"] == ev)]

    def send(self, port: str, line: str) -> None:
        """Write a command line through the collector's own connection."""
        r = self._readers.get(port)
        if r is None:
            raise PortError(self._not_connected(port))
        with self._txlock:
            r.write_line(line)

    def write_raw(self, port: str, data: bytes) -> None:
        """Bytes as they are (Ctrl-C, Ctrl-D: `rumor reset`)."""
        r = self._readers.get(port)
        if r is None:
            raise PortError(self._not_connected(port))
        with self._txlock:
            r.write_raw(data)

    def _not_connected(self, port: str) -> str:
        if self._pause[port].is_set():
            return f"{port}: lent to {self._pause_why.get(port, 'another program')} for now"
        return (f"{port}: not connected just now (unplugged or resetting? the collector reads "
                "it again when it is back)")

    def connected(self, port: str) -> bool:
        return self._readers.get(port) is not None

    def port_named(self, name: str) -> str | None:
        """Our name for the port a client calls name (a symlink, its target)."""
        names = {os.path.abspath(name), os.path.realpath(name)}
        for p in self.ports:
            if names & {os.path.abspath(p), os.path.realpath(p)}:
                return p
        return None

    def pause(self, port: str, why: str, timeout: float = 5.0) -> None:
        """Close the port until resume(): for a program that needs it alone
        (mpremote, for `rumor config set`).  Returns once it is closed."""
        self._pause_why[port] = why
        self._released[port].clear()
        self._pause[port].set()
        if not self._released[port].wait(timeout):
            raise PortError(f"{port}: the collector could not let go of it")
        self._record(port, collector="paused", why=why)

    def resume(self, port: str, timeout: float = 5.0) -> None:
        """Read the port again after pause(); returns once it is open again
        (or after timeout, if it is not there: it is waited for as ever)."""
        if not self._pause[port].is_set():
            return
        self._pause[port].clear()
        end = time.monotonic() + timeout
        while not self.connected(port) and time.monotonic() < end and not self._stop.is_set():
            time.sleep(0.02)

    # -- one thread per port ------------------------------------------------------
    def _read_port(self, port: str) -> None:
        while not self._stop.is_set():
            try:
                self._read_port_loop(port)
                return
            except Exception as e:  # never a thread's traceback: one note, and on we go
                note = "disconnected" if self.reconnect else "gone"
                with contextlib.suppress(Exception):
                    self._record(port, collector=note, why=f"{type(e).__name__}: {e}")
                if not self.reconnect:
                    return
                self._stop.wait(1.0)

    def _read_port_loop(self, port: str) -> None:
        said_waiting = False
        backoff = self.retry_s
        while not self._stop.is_set():
            if self._pause[port].is_set():  # lent to another program
                self._released[port].set()
                self._stop.wait(0.05)
                continue
            try:
                ser = open_port(port)
            except PortError as e:
                if not self.reconnect:
                    self._record(port, collector="gone", why=e.detail)
                    return
                if not said_waiting:
                    self._record(port, collector="waiting", why=e.detail)
                    said_waiting = True
                self._stop.wait(self.retry_s)
                continue
            opened = time.monotonic()
            reader = LineReader(ser)
            self._readers[port] = reader
            self._record(port, collector="reconnected" if port in self.ever else "connected")
            self.ever.add(port)
            why: str | None = None
            try:
                while not self._stop.is_set() and not self._pause[port].is_set():
                    for ln in reader.read():
                        self._line(port, ln)
            except PortError as e:
                why = e.detail
            except Exception as e:  # a driver's surprise is a vanished port too
                why = f"{type(e).__name__}: {e}"
            finally:
                self._readers[port] = None
                close_port(ser)
                self._keep_tail(port, reader)
            if why is None:
                continue  # stopped, or paused
            if not self.reconnect:
                self._record(port, collector="gone", why=why)
                return
            self._record(port, collector="disconnected", why=why)
            said_waiting = True  # the disconnect note says it: no second line while it is away
            # a port that fails at once again and again (a flaky cable) is retried ever more slowly
            backoff = min(backoff * 2, _BACKOFF_MAX_S) if time.monotonic() - opened < _QUICK_S \
                else self.retry_s
            self._stop.wait(backoff)

    def _keep_tail(self, port: str, reader: LineReader) -> None:
        """Bytes read but not ended by a newline (a crash's last words, a
        prompt) are kept too, marked as cut."""
        tail = reader.take_tail()
        if tail.text.strip():
            self._line(port, Line(tail.text.strip(), tail.long), cut=True)


_SHOW = 300  # characters of a line shown on the terminal (the file keeps it all)


def _printable(text: str) -> str:
    """text safe for a terminal: control characters (a board's garbage could
    move the cursor or change the charset) shown as `?`, cut at _SHOW."""
    out = "".join(c if c.isprintable() or c == "\t" else "?" for c in text[:_SHOW])
    return out + (f" ... ({len(text)} chars)" if len(text) > _SHOW else "")


def describe(rec: Record) -> str:
    """One human line for a record."""
    ts = time.strftime("%H:%M:%S", time.localtime(rec["t"])) + f".{int(rec['t'] * 1000) % 1000:03d}"
    if "collector" in rec:
        extra = f": {rec['why']}" if rec.get("why") else ""
        return _printable(f"{ts} {rec['port']}: {rec['collector']}{extra}")
    if "ev" in rec:
        ev = dict(rec["ev"])
        kind = ev.pop("ev")
        node = ev.pop("node", "?")
        ev.pop("t", None)
        if kind == "stats" and isinstance(ev.get("core"), dict):
            core = ev["core"]
            body = " ".join(f"{k}={core.get(k)}" for k in ("delivered", "published", "duplicates",
                                                            "frames_in", "frames_out", "peer_count"))
        else:
            body = " ".join(f"{k}={v}" for k, v in ev.items())
        return _printable(f"{ts} {node} {kind!s:8s} {body}")
    if "inject" in rec:
        inj = rec["inject"]
        return _printable(f"{ts} {rec['port']}: injected {inj.get('id')} "
                          f"(priority {inj.get('priority')}, via {inj.get('via')}): {inj.get('payload')}")
    if "line" not in rec:
        return _printable(f"{ts} {json.dumps(rec)}")
    marks = "".join(f" [{k}]" for k in ("garbage", "long", "cut") if rec.get(k))
    return f"{ts} {rec['port']}|{marks} {_printable(rec['line'])}"


@click.command("logs")
@click.option("--port", "-p", "ports", multiple=True, required=True, help="a board's port (repeat for each)")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False),
              help="JSONL file to write (a new run; an existing one only with --append)")
@click.option("--append", is_flag=True,
              help="add this run to an OUT that holds another run (rumor report tells them apart)")
@click.option("--nodes-every", default=60.0, show_default=True, type=click.FloatRange(0),
              help="ask every board for its neighbours (!peers) this often, in seconds (the first "
                   "after 10 s at most), for "
                   "`rumor report --map` (0: never)")
@click.option("--duration", type=click.FloatRange(0), default=None,
              help="stop after this many seconds (default: Ctrl-C)")
@click.option("--quiet", "-q", is_flag=True, help="print only connects and disconnects")
@click.option("--reconnect/--no-reconnect", default=True, show_default=True,
              help="keep waiting for a port that vanishes (a board unplugged, reset or "
                   "power-cycled) and read it again when it is back; --no-reconnect gives it "
                   "up, and rumor logs ends (exit 1) when no port is left")
def logs_cmd(ports: tuple[str, ...], out: str, append: bool, nodes_every: float,
             duration: float | None, quiet: bool, reconnect: bool) -> None:
    """Read all boards at once into OUT (JSONL, host-time stamped, flushed per line).

    Board lines go to stdout; the collector's notes (a port connected, gone,
    back) to stderr, one line each.  A port that vanishes never stops the
    others, and what was read from it stays in OUT.  A board printing garbage
    (bad UTF-8, control bytes, lines without end) is kept, marked, and counted.

    While it runs, `rumor inject`, `listen`, `stats`, `nodes`, `config` and
    `reset` on these ports go through it (a control socket, docs/console.md),
    and every injection is written into OUT with its host time, so `rumor
    report OUT` measures latency from it.  Exit 1 when no port ever opened."""
    from rich.console import Console

    con = Console(highlight=False)
    err = Console(highlight=False, stderr=True)

    def echo(rec: Record) -> None:
        note = rec.get("collector")
        if note:
            style = "bold yellow" if note in ("disconnected", "waiting", "gone") else None
            line = describe(rec)
            if note == "disconnected":
                line += "; reading it again when it is back"
            err.print(line, style=style, markup=False, soft_wrap=True)
        elif not quiet:
            con.print(describe(rec), markup=False, soft_wrap=True)

    def warn(msg: str) -> None:
        err.print(msg, style="bold red", markup=False, soft_wrap=True)

    from rumor_host.ports import resolve_port

    given = [resolve_port(p) for p in ports]
    for p in sorted({p for p in given if given.count(p) > 1}):
        warn(f"{p} given more than once: read once")
    try:
        col = Collector(given, out, echo, reconnect=reconnect, warn=warn, append=append,
                        nodes_every=nodes_every or None, argv=sys.argv)
    except RunFileError as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
        raise click.ClickException(f"{out}: cannot write: {e.strerror}") from None

    def _term(*_: object) -> None:
        raise KeyboardInterrupt  # SIGTERM/SIGHUP: stop as Ctrl-C does, keeping the boards' last words

    old = {}
    with contextlib.suppress(ValueError):  # not the main thread: leave the signals alone
        old = {sg: signal.signal(sg, _term) for sg in (signal.SIGTERM, signal.SIGHUP)}
    col.start()
    ran_out = False
    try:
        end = None if duration is None else time.monotonic() + duration
        while end is None or time.monotonic() < end:
            time.sleep(0.2)
            if not col.alive():  # --no-reconnect, and every port gone
                ran_out = True
                break
    except KeyboardInterrupt:
        pass
    finally:
        col.stop()
        for sg, h in old.items():
            signal.signal(sg, h)
    noted = [f"{n} {k}" for k, n in col.counts.items() if n]
    con.print(f"{len(col.records)} lines appended to {out}"
              + (f" ({', '.join(noted)})" if noted else ""), markup=False)
    if col.write_error:
        raise click.ClickException(col.write_error)
    if not col.ever:
        why = {r["port"]: r.get("why") for r in col.records if r.get("collector") in ("waiting", "gone")}
        raise click.ClickException("no port ever opened: " + "; ".join(
            f"{p} ({why[p]})" if why.get(p) else p for p in col.ports))
    if ran_out:
        raise click.ClickException("no port left to read (--no-reconnect)")


def wait_ready(col: Collector, ports: list[str], timeout: float = 15.0) -> list[str]:
    """Ask each port's node for `!help` until it answers; the ports that did not."""
    end = time.monotonic() + timeout
    pending = list(ports)
    while pending and time.monotonic() < end:
        for p in pending:
            if col.connected(p):
                try:
                    col.send(p, "!help")
                except PortError:
                    pass
        col.wait_for(lambda rs: False, 0.3)
        answered = {r["port"] for r in col.events("help")}
        pending = [p for p in pending if p not in answered]
    return pending
