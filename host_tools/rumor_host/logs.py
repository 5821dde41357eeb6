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


class Collector:
    def __init__(self, ports: list[str], out: str | Path | None,
                 echo: Callable[[Record], None] | None = None, retry_s: float = 0.2,
                 reconnect: bool = True, warn: Callable[[str], None] | None = None):
        self.ports = list(ports)
        self.out_path = Path(out) if out else None
        self.echo = echo
        self.retry_s = retry_s
        self.reconnect = reconnect
        self.warn = warn or (lambda s: print(s, file=sys.stderr, flush=True))
        self.records: list[Record] = []
        self.counts = {"garbage": 0, "long": 0, "cut": 0}
        self.write_error: str | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._readers: dict[str, LineReader | None] = {p: None for p in self.ports}
        self._wlock = threading.Lock()
        self._file = open(self.out_path, "a", encoding="utf-8") if self.out_path else None  # noqa: SIM115
        if self._file and self._file.tell() > 0:
            # a previous run may have been cut mid-line: start on a line of our own
            with open(self.out_path, "rb") as f:  # type: ignore[arg-type]
                f.seek(-1, 2)
                if f.read(1) != b"\n":
                    self._file.write("\n")
                    self._file.flush()

    def __enter__(self) -> Collector:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        for p in self.ports:
            t = threading.Thread(target=self._read_port, args=(p,), name=f"logs-{p}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(2)
        with self._wlock:
            if self._file:
                with contextlib.suppress(OSError):
                    self._file.close()
                self._file = None

    def alive(self) -> bool:
        """Some port is still being read (or waited for)."""
        return any(t.is_alive() for t in self._threads)

    # -- records ------------------------------------------------------------------
    def _record(self, port: str, **kw: Any) -> Record:
        rec: Record = {"t": round(time.time(), 6), "port": port}
        rec.update(kw)
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
        with self._cond:
            self.records.append(rec)
            self._cond.notify_all()
        if self.echo:
            try:
                self.echo(rec)
            except (OSError, ValueError):  # stdout went away (`| head`): keep collecting
                self.echo = None
        return rec

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
            raise PortError(f"{port}: not connected")
        r.write_line(line)

    def connected(self, port: str) -> bool:
        return self._readers.get(port) is not None

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
        ever = False
        said_waiting = False
        backoff = self.retry_s
        while not self._stop.is_set():
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
            self._record(port, collector="reconnected" if ever else "connected")
            ever = True
            why: str | None = None
            try:
                while not self._stop.is_set():
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
                continue  # stopped
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
    marks = "".join(f" [{k}]" for k in ("garbage", "long", "cut") if rec.get(k))
    return f"{ts} {rec['port']}|{marks} {_printable(rec['line'])}"


@click.command("logs")
@click.option("--port", "-p", "ports", multiple=True, required=True, help="a board's port (repeat for each)")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="JSONL file to append to")
@click.option("--duration", type=float, default=None, help="stop after this many seconds (default: Ctrl-C)")
@click.option("--quiet", "-q", is_flag=True, help="print only connects and disconnects")
@click.option("--reconnect/--no-reconnect", default=True, show_default=True,
              help="keep waiting for a port that vanishes (a board unplugged, reset or "
                   "power-cycled) and read it again when it is back; --no-reconnect gives it "
                   "up, and rumor logs ends (exit 1) when no port is left")
def logs_cmd(ports: tuple[str, ...], out: str, duration: float | None, quiet: bool,
             reconnect: bool) -> None:
    """Read all boards at once into OUT (JSONL, host-time stamped, flushed per line).

    Board lines go to stdout; the collector's notes (a port connected, gone,
    back) to stderr, one line each.  A port that vanishes never stops the
    others, and what was read from it stays in OUT.  A board printing garbage
    (bad UTF-8, control bytes, lines without end) is kept, marked, and counted."""
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

    try:
        col = Collector(list(ports), out, echo, reconnect=reconnect, warn=warn)
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
