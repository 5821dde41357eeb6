"""rumor logs: read every board at once into one JSONL file.

Each line a board prints becomes one JSON object, stamped with host time and
port, appended and flushed at once (a crash loses nothing already read):
    {"t": 1712345678.123, "port": "/dev/ttyUSB0", "ev": {...}}     an @rumor event
    {"t": ..., "port": ..., "line": "..."}                          anything else
    {"t": ..., "port": ..., "collector": "disconnected", "why": "..."}  the collector's own notes
A board unplugged is reported and waited for; it is read again when it is back.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Callable

import click

from rumor_host.serialio import LineReader, PortError, open_port, parse_event

Record = dict[str, Any]


class Collector:
    def __init__(self, ports: list[str], out: str | Path | None,
                 echo: Callable[[Record], None] | None = None, retry_s: float = 0.2):
        self.ports = list(ports)
        self.out_path = Path(out) if out else None
        self.echo = echo
        self.retry_s = retry_s
        self.records: list[Record] = []
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
                self._file.close()
                self._file = None

    # -- records ------------------------------------------------------------------
    def _record(self, port: str, **kw: Any) -> Record:
        rec: Record = {"t": round(time.time(), 6), "port": port}
        rec.update(kw)
        with self._wlock:
            if self._file:
                self._file.write(json.dumps(rec, separators=(",", ":")) + "\n")
                self._file.flush()
        with self._cond:
            self.records.append(rec)
            self._cond.notify_all()
        if self.echo:
            try:
                self.echo(rec)
            except (OSError, ValueError):  # stdout went away (`| head`): keep collecting
                self.echo = None
        return rec

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
        ever = False
        said_waiting = False
        while not self._stop.is_set():
            try:
                ser = open_port(port)
            except PortError as e:
                if not said_waiting:
                    self._record(port, collector="waiting", why=str(e))
                    said_waiting = True
                self._stop.wait(self.retry_s)
                continue
            said_waiting = False
            reader = LineReader(ser)
            self._readers[port] = reader
            self._record(port, collector="reconnected" if ever else "connected")
            ever = True
            try:
                while not self._stop.is_set():
                    for line in reader.read_lines():
                        if not line.strip():
                            continue
                        ev = parse_event(line)
                        if ev is not None:
                            self._record(port, ev=ev)
                        else:
                            self._record(port, line=line)
            except PortError as e:
                self._keep_tail(port, reader)
                self._readers[port] = None
                self._record(port, collector="disconnected", why=str(e))
            else:
                self._keep_tail(port, reader)
            finally:
                self._readers[port] = None
                ser.close()

    def _keep_tail(self, port: str, reader: LineReader) -> None:
        """Bytes read but not ended by a newline (a crash's last words, a
        prompt) are kept too, marked as cut."""
        tail = reader._buf.strip()
        if tail:
            reader._buf = b""
            self._record(port, line=tail.decode("utf-8", "replace"), cut=True)


def describe(rec: Record) -> str:
    """One human line for a record."""
    ts = time.strftime("%H:%M:%S", time.localtime(rec["t"])) + f".{int(rec['t'] * 1000) % 1000:03d}"
    if "collector" in rec:
        extra = f": {rec['why']}" if rec.get("why") else ""
        return f"{ts} {rec['port']}: {rec['collector']}{extra}"
    if "ev" in rec:
        ev = dict(rec["ev"])
        kind = ev.pop("ev")
        node = ev.pop("node", "?")
        ev.pop("t", None)
        if kind == "stats":
            core = ev.get("core", {})
            body = " ".join(f"{k}={core.get(k)}" for k in ("delivered", "published", "duplicates",
                                                            "frames_in", "frames_out", "peer_count"))
        else:
            body = " ".join(f"{k}={v}" for k, v in ev.items())
        return f"{ts} {node} {kind:8s} {body}"
    return f"{ts} {rec['port']}| {rec['line']}"


@click.command("logs")
@click.option("--port", "-p", "ports", multiple=True, required=True, help="a board's port (repeat for each)")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="JSONL file to append to")
@click.option("--duration", type=float, default=None, help="stop after this many seconds (default: Ctrl-C)")
@click.option("--quiet", "-q", is_flag=True, help="print only connects and disconnects")
def logs_cmd(ports: tuple[str, ...], out: str, duration: float | None, quiet: bool) -> None:
    """Read all boards at once into OUT (JSONL, host-time stamped, flushed per line)."""
    from rich.console import Console

    con = Console(highlight=False)

    def echo(rec: Record) -> None:
        if quiet and "collector" not in rec:
            return
        style = "bold yellow" if rec.get("collector") in ("disconnected", "waiting") else None
        con.print(describe(rec), style=style, markup=False)

    try:
        col = Collector(list(ports), out, echo)
    except OSError as e:
        raise click.ClickException(f"{out}: cannot write: {e.strerror}") from None
    col.start()
    try:
        end = None if duration is None else time.monotonic() + duration
        while end is None or time.monotonic() < end:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        col.stop()
    con.print(f"{len(col.records)} lines appended to {out}", markup=False)


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
