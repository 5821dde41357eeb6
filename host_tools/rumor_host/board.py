"""The host Python API: a live board (`Board`), several at once (`Mesh`).

    from rumor_host import Board, Mesh, BoardError
    with Board("/dev/ttyUSB0") as b:          # a USB port, a virtual board's pty, or "auto"
        mid = b.publish("hello")               # the message id, as events carry it
        for ev in b.events(timeout=5):         # event dicts (docs/console.md)
            ...
        b.stats(); b.peers(); b.info(); b.command("level", "debug")
        select.select([b.fileno()], [], [], 1)  # an open board's descriptor

A Board reaches its port in one of two ways, and behaves the same in both:
- through a running collector (`rumor logs`) that holds the port: its
  control socket (control.py), so the collector keeps logging and writes
  every publish into its JSONL as an `inject` record;
- else it opens the port itself (exclusively, as mpremote does).
`Board.via` says which ("collector" or "direct").

Every error is a BoardError whose str() is the one line the CLI prints.
The `rumor` commands inject, listen, nodes, stats, config and reset are
built on this module.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import json
import re
import select
import time
from typing import Any, Iterator

from rumor.console import LINE_MAX
from rumor_host.control import ControlClient, ControlError, Holder, lookup
from rumor_host.serialio import LineReader, PortError, close_port, open_port, split_event

Record = dict[str, Any]
BACKLOG = 10000  # events kept for events() while a command waits for its answer
ANSWERS = {"inject": ("publish",)}  # command -> the event kinds that answer it (else its own name)


class BoardError(Exception):
    """Anything that went wrong with a board; str() is one line naming the port."""


def check_line(line: str) -> str:
    """line if the node's console takes it (at most LINE_MAX bytes as UTF-8,
    JSON escapes included), else ValueError saying so."""
    n = len(line.encode())
    if n > LINE_MAX:
        raise ValueError(f"command line longer than {LINE_MAX} bytes ({n} bytes with its JSON "
                         "escapes): send a shorter payload")
    return line


def inject_line(text: str | None, hex_payload: str | None, priority: int = 0,
                req: int | None = None) -> str:
    """The !inject command line for a text or a hex payload; ValueError with
    a message a person can act on."""
    if (text is None) == (hex_payload is None):
        raise ValueError("give a text payload or a hex one (one of them)")
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 3:
        raise ValueError(f"priority must be 0..3, not {priority!r}")
    d: dict[str, object] = {}
    if hex_payload is not None:
        h = str(hex_payload).replace(" ", "")
        try:
            if not h:
                raise ValueError
            bytes.fromhex(h)
        except ValueError:
            raise ValueError(f"not a hex payload: {hex_payload!r}") from None
        d["hex"] = h
    else:
        if not isinstance(text, str) or not text:
            raise ValueError("empty message")
        d["text"] = text
    d["priority"] = priority
    if req is not None:
        d["req"] = req
    return check_line("!inject " + json.dumps(d, separators=(",", ":")))


def _is_answer(ev: dict[str, Any], name: str, want: tuple[str, ...]) -> bool:
    k = ev.get("ev")
    if k == "error":
        # "?": a line the console could not take at all (too long, not UTF-8)
        return ev.get("cmd") in (name, "?")
    return k in want


class _CrashWatch:
    """Lines after a reset: a traceback's last line means the node crashed
    at boot (main.py's exception, not an event): BoardError at once."""

    def __init__(self, port: str):
        self.port = port
        self.tb = False

    def line(self, text: str) -> None:
        t = text.strip()
        if t.startswith("Traceback (most recent call last)"):
            self.tb = True
        elif self.tb and _EXC.match(t):
            raise BoardError(f"{self.port}: the node crashed at boot: {t}")


_EXC = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception)\b")


# -- the two ways to a port ------------------------------------------------------------
class _Direct:
    via = "direct"

    def __init__(self, port: str):
        self.port = port
        self.ser = open_port(port, timeout=0)
        self.reader = LineReader(self.ser)

    def fileno(self) -> int:
        return int(self.ser.fileno())

    def records(self, wait: float) -> list[Record]:
        with contextlib.suppress(OSError, ValueError):
            select.select([self.fileno()], [], [], max(0.0, wait))
        out: list[Record] = []
        for ln in self.reader.read():
            if not ln.text.strip():
                continue
            ev, before, _ = split_event(ln.text)
            t = round(time.time(), 6)
            if ev is None:
                out.append({"t": t, "port": self.port, "line": ln.text})
                continue
            if before.strip():
                out.append({"t": t, "port": self.port, "line": before, "cut": True})
            out.append({"t": t, "port": self.port, "ev": ev})
        return out

    def send(self, line: str) -> None:
        self.reader.write_line(line)

    def write(self, data: bytes) -> None:
        self.reader.write_raw(data)

    def inject(self, text: str | None, hex_payload: str | None, priority: int, req: int) -> int:
        self.send(inject_line(text, hex_payload, priority, req))
        return req

    @contextlib.contextmanager
    def lend(self, why: str, timeout: float) -> Iterator[None]:
        close_port(self.ser)
        try:
            yield
        finally:
            end = time.monotonic() + timeout
            while True:
                try:
                    self.ser = open_port(self.port, timeout=0)
                    break
                except PortError:
                    if time.monotonic() > end:
                        raise
                    time.sleep(0.1)
            self.reader = LineReader(self.ser)

    def close(self) -> None:
        close_port(self.ser)


class _Remote:
    via = "collector"

    def __init__(self, port: str, holder: Holder, timeout: float):
        self.port = port
        self.holder = holder
        self.client = ControlClient(holder, port, timeout)

    def fileno(self) -> int:
        return self.client.fileno()

    def records(self, wait: float) -> list[Record]:
        return self.client.records(wait)

    def send(self, line: str) -> None:
        self.client.request("send", port=self.port, line=line)

    def write(self, data: bytes) -> None:
        self.client.request("write", port=self.port, data=data.decode("latin-1"))

    def inject(self, text: str | None, hex_payload: str | None, priority: int, req: int) -> int:
        inject_line(text, hex_payload, priority, 1)  # refused here, before the collector sees it
        kw: dict[str, Any] = {"text": text} if text is not None else {"hex": hex_payload}
        a = self.client.request("inject", port=self.port, priority=priority, **kw)
        return int(a["req"])

    @contextlib.contextmanager
    def lend(self, why: str, timeout: float) -> Iterator[None]:
        self.client.request("pause", port=self.port, why=why, timeout=timeout + 5)
        try:
            yield
        finally:
            self.client.request("resume", port=self.port)

    def close(self) -> None:
        self.client.close()


# -- a board ---------------------------------------------------------------------------------
class Board:
    """One live board.  timeout: how long a command waits for the node's answer."""

    def __init__(self, port: str, timeout: float = 5.0, direct: bool = False):
        self.port = port
        self.timeout = timeout
        self.direct = direct  # open the port even if a collector holds it (it will be busy)
        self._t: _Direct | _Remote | None = None
        self._backlog: collections.deque[Record] = collections.deque(maxlen=BACKLOG)
        self._req = itertools.count(1)
        self._node: str | None = None

    # -- opening -----------------------------------------------------------------------
    def open(self) -> Board:
        if self._t is not None:
            return self
        if self.port == "auto":
            from rumor_host.ports import resolve_auto

            try:
                self.port = resolve_auto()
            except ValueError as e:
                raise BoardError(str(e)) from None
        holder = None if self.direct else lookup(self.port)
        try:
            self._t = _Remote(self.port, holder, self.timeout) if holder else _Direct(self.port)
        except (PortError, ControlError) as e:
            raise BoardError(str(e)) from None
        return self

    def close(self) -> None:
        if self._t is not None:
            self._t.close()
            self._t = None

    def __enter__(self) -> Board:
        return self.open()

    def __del__(self) -> None:  # a Board dropped unclosed lets go of its port
        with contextlib.suppress(Exception):
            self.close()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def via(self) -> str:
        """"collector" (through a running `rumor logs`) or "direct"."""
        return self._io().via

    @property
    def holder(self) -> Holder | None:
        t = self._io()
        return t.holder if isinstance(t, _Remote) else None

    def fileno(self) -> int:
        """The descriptor of the open port (or of the control socket of the
        collector holding it): readable when the board has sent something,
        for select() in an event loop of your own.  (Records a command left
        in the backlog are not on it: call records(timeout=0) once after each
        command.)  BoardError if the board is not open: unlike the commands,
        fileno() does not open the port, since a number for select() is no
        reason to take a port (exclusively) and keep it."""
        if self._t is None:
            raise BoardError(f"{self.port}: not open (open() it, or use `with Board(...)`, "
                             "before fileno())")
        try:
            fd = int(self._t.fileno())
        except (OSError, ValueError) as e:  # closed under us (pyserial: PortNotOpenError)
            raise BoardError(f"{self.port}: not open ({e})") from None
        if fd < 0:  # a closed socket says -1
            raise BoardError(f"{self.port}: not open (its descriptor is closed)")
        return fd

    def _io(self) -> _Direct | _Remote:
        if self._t is None:
            self.open()
        assert self._t is not None
        return self._t

    # -- reading -------------------------------------------------------------------------
    def _pull(self, wait: float) -> list[Record]:
        """Records that arrived (waiting up to wait s for the first)."""
        try:
            recs = self._io().records(wait)
        except (PortError, ControlError) as e:
            raise BoardError(str(e)) from None
        for r in recs:
            ev = r.get("ev")
            if isinstance(ev, dict) and isinstance(ev.get("node"), str) and ev.get("ev") != "error":
                self._node = ev["node"]
        return recs

    def records(self, timeout: float | None = 5.0) -> Iterator[Record]:
        """Every record from the board for `timeout` seconds (None: for
        ever): {"t": host time, "port", "ev": {...}} for events, {"t",
        "port", "line"} for other lines, and through a collector its notes
        ({"collector": ...}) and inject records too."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            while self._backlog:
                yield self._backlog.popleft()
            left = 0.5 if end is None else end - time.monotonic()
            if left <= 0:
                return
            yield from self._pull(min(left, 0.5))

    def events(self, timeout: float | None = 5.0, kinds: tuple[str, ...] | None = None
               ) -> Iterator[dict[str, Any]]:
        """The events the node prints for `timeout` seconds (None: for ever),
        as dicts (ev["ev"] is the kind); kinds: only these."""
        for r in self.records(timeout):
            ev = r.get("ev")
            if isinstance(ev, dict) and (kinds is None or ev.get("ev") in kinds):
                yield ev

    def _wait(self, pred: Any, what: str, timeout: float | None = None,
              on_line: Any = None) -> dict[str, Any]:
        """The first event after now that pred() takes; the others go to the
        backlog.  on_line(text) sees every other line (it may raise)."""
        t = self.timeout if timeout is None else timeout
        end = time.monotonic() + t
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise BoardError(f"{self.port}: no answer to {what} in {t:g} s (is the node "
                                 "running? Ctrl-C or mpremote leaves it at the REPL: "
                                 "`rumor reset` starts it again)")
            batch = self._pull(min(left, 0.5))
            for i, r in enumerate(batch):
                ev = r.get("ev")
                if isinstance(ev, dict) and pred(ev):
                    # what came in the same read after it is news for events()
                    self._backlog.extend(batch[i + 1:])
                    return ev
                self._backlog.append(r)
                if on_line is not None and isinstance(r.get("line"), str):
                    on_line(r["line"])

    # -- commands ------------------------------------------------------------------------
    def command(self, name: str, arg: str = "", timeout: float | None = None) -> dict[str, Any]:
        """Send `!name arg`; the node's answer event.  BoardError with the
        node's own message when it answers with an error."""
        try:
            line = check_line(f"!{name} {arg}".rstrip())
        except ValueError as e:
            raise BoardError(f"{self.port}: {e}") from None
        want = ANSWERS.get(name, (name,))
        self._send(line)
        ev = self._wait(lambda e: _is_answer(e, name, want), "!" + name, timeout)
        if ev.get("ev") == "error":
            raise BoardError(f"{self.port}: the node refused {name}: {ev.get('msg')}")
        return ev

    def _send(self, line: str) -> None:
        try:
            self._io().send(line)
        except (PortError, ControlError) as e:
            raise BoardError(str(e)) from None

    def publish(self, payload: str | bytes, priority: int = 0, timeout: float | None = None) -> str:
        """Publish payload (str: as text; bytes: as they are) at this board;
        the message id ("000000030011"), as the deliver events carry it."""
        text = payload if isinstance(payload, str) else None
        hexp = None if isinstance(payload, str) else bytes(payload).hex()
        try:
            req = self._io().inject(text, hexp, priority, next(self._req))
        except ValueError as e:
            raise BoardError(f"{self.port}: {e}") from None
        except (PortError, ControlError) as e:
            raise BoardError(str(e)) from None

        def ours(ev: dict[str, Any]) -> bool:
            if ev.get("ev") == "publish":
                return ev.get("req") == req
            return ev.get("ev") == "error" and ev.get("cmd") in ("inject", "?")

        ev = self._wait(ours, "!inject", timeout)
        if ev.get("ev") == "error":
            raise BoardError(f"{self.port}: the node refused: {ev.get('msg')}")
        mid = ev.get("id")
        if not isinstance(mid, str):
            raise BoardError(f"{self.port}: the node's publish line has no message id: {ev}")
        return mid

    def stats(self) -> dict[str, Any]:
        """The node's stats event: core (Gossip.stats()), radio, mem_free, ..."""
        return self.command("stats")

    def info(self) -> dict[str, Any]:
        """What the node says about itself (the boot event's fields, and uptime)."""
        return self.command("info")

    def config(self) -> dict[str, Any]:
        """The node's config event: every Config field in force, the preset,
        the overrides of board.json's node.config."""
        return self.command("config")

    def peers(self) -> list[dict[str, Any]]:
        """The node's neighbours: dicts with addr, node, last_heard_ms,
        static, rssi, snr, frames (None where the node does not know)."""
        rows = self.command("peers").get("peers") or []
        keys = ("addr", "node", "last_heard_ms", "static", "rssi", "snr", "frames")
        return [dict(zip(keys, (list(r) + [None] * len(keys))[:len(keys)], strict=True)) for r in rows
                if isinstance(r, list)]

    @property
    def node_id(self) -> str:
        """This node's id (8 hex digits), from its events (asked once if none came yet)."""
        if self._node is None:
            try:
                self.info()
            except BoardError:
                self.stats()  # firmware without !info
        assert self._node is not None
        return self._node

    def reset(self, timeout: float = 20.0) -> dict[str, Any]:
        """Soft reset: stop whatever runs (Ctrl-C), leave a raw REPL mpremote
        may have left (Ctrl-B), soft reset (Ctrl-D): main.py starts the node
        again.  Its boot event (BoardError if the node did not come back, or
        said why it could not start)."""
        try:
            self._io().write(b"\r\x03\x03")
            time.sleep(0.3)
            self._io().write(b"\x02")
            time.sleep(0.2)
            end = time.monotonic() + 1.0
            while self._pull(0.05) and time.monotonic() < end:
                pass  # what the node said on its way out is not news
            self._backlog.clear()
            self._io().write(b"\x04")
        except (PortError, ControlError) as e:
            raise BoardError(str(e)) from None

        def booted(ev: dict[str, Any]) -> bool:
            return ev.get("ev") == "boot" or (ev.get("ev") == "error" and ev.get("cmd") == "boot")

        crash = _CrashWatch(self.port)
        ev = self._wait(booted, "the reset (no boot event)", timeout, crash.line)
        if ev.get("ev") == "error":
            raise BoardError(f"{self.port}: the node did not start: {ev.get('msg')}")
        return ev

    @contextlib.contextmanager
    def lend(self, why: str = "another program", timeout: float = 10.0) -> Iterator[None]:
        """The port free for another program (mpremote) inside the block:
        closed by us, or by the collector that holds it; taken back after."""
        try:
            with self._io().lend(why, timeout):
                yield
        except (PortError, ControlError) as e:
            raise BoardError(str(e)) from None


# -- holding ports for a long-running command -------------------------------------------------
@contextlib.contextmanager
def hold(ports: list[str] | tuple[str, ...], warn: Any = None) -> Iterator[Any]:
    """For a command that keeps ports open a long time (`rumor listen`, a
    bridge, a script): the ports no collector holds yet are held by one of
    our own (no file, control socket served), so other commands reach those
    boards meanwhile, and a board unplugged and back is read again.  Boards
    and Meshes opened inside go through it.  A port that cannot be opened:
    BoardError, before anything is held.  Yields the Collector (None if
    every port was held already)."""
    from rumor_host.logs import Collector, unique_ports

    free = [p for p in unique_ports(list(ports)) if lookup(p) is None]
    for p in free:
        try:
            close_port(open_port(p))
        except PortError as e:
            raise BoardError(str(e)) from None
    if not free:
        yield None
        return
    col = Collector(free, None, keep=False, warn=warn)
    col.start()
    try:
        end = time.monotonic() + 5.0
        while not all(col.connected(p) for p in free) and time.monotonic() < end:
            time.sleep(0.02)
        yield col
    finally:
        col.stop()


# -- several boards ------------------------------------------------------------------------------
class Mesh:
    """Several boards, one merged event stream: events() yields (port, event)."""

    def __init__(self, ports: list[str] | tuple[str, ...], timeout: float = 5.0):
        from rumor_host.logs import unique_ports

        self.boards = [Board(p, timeout) for p in unique_ports(list(ports))]

    def open(self) -> Mesh:
        try:
            for b in self.boards:
                b.open()
        except BoardError:
            self.close()
            raise
        return self

    def close(self) -> None:
        for b in self.boards:
            b.close()

    def __enter__(self) -> Mesh:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getitem__(self, key: int | str) -> Board:
        if isinstance(key, int):
            return self.boards[key]
        for b in self.boards:
            if b.port == key:
                return b
        raise KeyError(key)

    def __iter__(self) -> Iterator[Board]:
        return iter(self.boards)

    def __len__(self) -> int:
        return len(self.boards)

    def records(self, timeout: float | None = 5.0) -> Iterator[tuple[Board, Record]]:
        """(board, record) as they arrive from any board, for `timeout` s (None: for ever)."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            for b in self.boards:
                while b._backlog:
                    yield b, b._backlog.popleft()
            left = 0.5 if end is None else end - time.monotonic()
            if left <= 0:
                return
            fds = {b._io().fileno(): b for b in self.boards}
            try:
                ready, _, _ = select.select(list(fds), [], [], min(left, 0.5))
            except (OSError, ValueError):
                ready = list(fds)
            for fd in ready:
                b = fds[fd]
                for r in b._pull(0.0):
                    yield b, r

    def events(self, timeout: float | None = 5.0, kinds: tuple[str, ...] | None = None
               ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(port, event) as they arrive from any board; kinds: only these."""
        for b, r in self.records(timeout):
            ev = r.get("ev")
            if isinstance(ev, dict) and (kinds is None or ev.get("ev") in kinds):
                yield b.port, ev
