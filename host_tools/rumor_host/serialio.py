"""The host side of the console protocol (docs/console.md) over a serial port:
a USB board's or a virtual board's pty, through pyserial.

What a port can do to a reader, and what happens:
- it vanishes (USB pulled, the pty's other end closed): PortError, one line
  naming the port and the cause, never a driver's traceback; "disconnected
  (...)" whether a read or a write found it gone;
- it prints garbage (boot-loader noise at another baud rate, random bytes):
  decoded with U+FFFD for bad UTF-8; `is_garbage()` tells such a line;
- it prints without a newline for ever: lines are cut at MAX_LINE bytes
  (Line.long), so memory stays bounded and nothing read is dropped;
- it resets mid-print: `split_event()` finds the whole event after a cut one.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import time
from typing import Any, Callable, NamedTuple

import serial

try:
    import termios  # tcdrain (pyserial's flush) raises termios.error, no OSError
except ImportError:  # pragma: no cover - Windows
    termios = None  # type: ignore[assignment]

from rumor.console import PREFIX
from rumor.console import parse_event as _parse_event

MAX_LINE = 16384  # bytes; a console line is at most a peers event of 250 peers (~10 KB)

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f\ufffd]")  # \t \r ESC are fine


class PortError(Exception):
    """A port that cannot be opened or went away; str() is one clear line
    naming the port, .detail the cause alone."""

    def __init__(self, msg: str, detail: str | None = None):
        super().__init__(msg)
        self.detail = detail if detail is not None else msg


def _one_line(x: object) -> str:
    return " ".join(str(x).split())


def _cause(e: BaseException) -> str:
    """One line for what a driver raised (its type too when it is no I/O error)."""
    if isinstance(e, (serial.SerialException, OSError)):
        return _one_line(e) or type(e).__name__
    if termios is not None and isinstance(e, termios.error) and len(e.args) == 2:
        return _one_line(f"[Errno {e.args[0]}] {e.args[1]}")  # as an OSError says it
    return _one_line(f"{type(e).__name__}: {e}")


# errnos that mean the port itself is gone, not one write: USB pulled or the
# pty's far end closed (EIO, ENXIO, ENODEV), our descriptor closed (EBADF)
_GONE = frozenset({errno.EIO, errno.ENXIO, errno.ENODEV, errno.EBADF})
_ERRNO = re.compile(r"\[Errno (\d+)\]")


def _errno(e: BaseException | None) -> int | None:
    """The errno behind e: its own, a termios.error's, or that of the OSError
    pyserial wrapped (it raises SerialException("write failed: [Errno 5] ...")
    inside the except, so the OSError is its context, and the text says it)."""
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        n = getattr(e, "errno", None)
        if n is None and termios is not None and isinstance(e, termios.error) and e.args:
            n = e.args[0]
        if isinstance(n, int):
            return n
        m = _ERRNO.search(str(e))
        if m:
            return int(m.group(1))
        e = e.__cause__ or e.__context__
    return None


def _gone(e: BaseException) -> bool:
    """e says the port went away (rather than that one write failed)."""
    return isinstance(e, serial.PortNotOpenError) or _errno(e) in _GONE


def open_port(port: str, timeout: float = 0.1) -> serial.Serial:
    """Open a board's REPL serial without resetting it (DTR/RTS left low)."""
    s = serial.Serial()
    try:
        s.port = port
        s.baudrate = 115200
        s.timeout = timeout
        s.dtr = False
        s.rts = False
    except (ValueError, serial.SerialException) as e:  # pragma: no cover - a port name pyserial refuses
        raise PortError(f"{port}: cannot open: {_one_line(e)}", _one_line(e)) from None
    try:
        s.exclusive = True
    except (ValueError, AttributeError):  # pragma: no cover - old pyserial / platform
        pass
    try:
        s.open()
    except (serial.SerialException, OSError, ValueError) as e:
        msg = _why(port, e)
        raise PortError(msg, msg[len(port) + 2:]) from None
    return s


def close_port(ser: serial.Serial) -> None:
    """Close, whatever state the port is in (closing a vanished USB port can fail too)."""
    with contextlib.suppress(Exception):
        ser.close()


def _why(port: str, e: BaseException) -> str:
    if not os.path.exists(port):
        return f"{port}: no such port (is the board plugged in? `rumor swarm` prints its ports)"
    msg = _one_line(e)
    held = _held_by(port)
    if held:
        return f"{port}: busy ({held})"
    if "lock" in msg.lower() or "busy" in msg.lower() or "Resource temporarily" in msg:
        return f"{port}: busy (another program has it open: mpremote, rumor logs, a terminal?)"
    if "Permission" in msg:
        return f"{port}: permission denied (add yourself to the dialout group)"
    return f"{port}: cannot open: {msg}"


def _held_by(port: str) -> str | None:
    """Who holds port, if it is a collector of ours (control.py's registry)."""
    try:
        from rumor_host.control import lookup

        h = lookup(port)
    except Exception:  # the registry is a courtesy: never a reason to fail
        return None
    if h is None:
        return None
    out = f", writing {h.out}" if h.out else ""
    return (f"rumor logs holds it (pid {h.pid}, run {h.run}{out}); inject, listen, stats, "
            "nodes, config and reset reach the board through it")


def parse_event(line: str) -> dict[str, Any] | None:
    """The event dict of a console line, or None (the firmware's own parser,
    so node and host can't disagree on the format)."""
    ev: dict[str, Any] | None = _parse_event(line)
    return ev


_DECODER = json.JSONDecoder()


def split_event(line: str) -> tuple[dict[str, Any] | None, str, str]:
    """(event, before, after) of a console line.

    A plain event line gives (event, "", "").  A board that resets mid-print
    leaves the start of one event and then a whole one on a line: the whole
    one is the event, the cut start is `before` (it contains PREFIX, and is
    never parsed into anything).  A whole event followed by noise without a
    newline (a reset right after it) gives the noise as `after`.  No event:
    (None, line, "")."""
    i = line.find(PREFIX)
    while i >= 0:
        ev = _parse_event(line[i:])
        if ev is not None:
            return ev, line[:i], ""
        body = line[i + len(PREFIX):]
        try:
            d, end = _DECODER.raw_decode(body)
        except ValueError:
            d = None
        if isinstance(d, dict) and "ev" in d:
            return d, line[:i], body[end:]
        i = line.find(PREFIX, i + 1)
    return None, line, ""


def is_garbage(text: str) -> bool:
    """A line with bytes that were not UTF-8 (U+FFFD) or control characters
    no console prints: a boot loader at another baud rate, line noise."""
    return _CONTROL.search(text) is not None


def _dec(b: bytes) -> str:
    return b.decode("utf-8", "replace")


class Line(NamedTuple):
    text: str
    long: bool = False  # cut at MAX_LINE bytes: the rest of it is the next Line


class LineReader:
    """Lines from a serial port (\\n or \\r\\n ends one); partial lines kept,
    lines longer than max_line bytes cut into pieces."""

    def __init__(self, ser: serial.Serial, max_line: int = MAX_LINE):
        self.ser = ser
        self.max_line = max_line
        self._buf = b""
        self._cont = False  # _buf continues a line already handed out in pieces

    def read(self) -> list[Line]:
        """Whatever lines have arrived (waits up to the port's timeout).
        Raises PortError when the port went away."""
        try:
            n = self.ser.in_waiting
            data = self.ser.read(n or 1)
        except Exception as e:  # SerialException, OSError, or a driver's surprise
            detail = _cause(e)
            raise PortError(f"{self.ser.port}: disconnected ({detail})", detail) from None
        if not data:
            return []
        *done, rest = (self._buf + data).split(b"\n")
        out: list[Line] = []
        for raw in done:
            cuts, raw = self._cut(raw)
            out += [Line(_dec(c), True) for c in cuts]
            out.append(Line(_dec(raw.rstrip(b"\r")), self._cont or bool(cuts)))
            self._cont = False
        cuts, self._buf = self._cut(rest)
        out += [Line(_dec(c), True) for c in cuts]
        self._cont = self._cont or bool(cuts)
        return out

    def _cut(self, raw: bytes) -> tuple[list[bytes], bytes]:
        """raw as pieces of max_line bytes (never splitting a UTF-8 character)
        and what is left."""
        m = self.max_line
        cuts: list[bytes] = []
        while len(raw) > m:
            k = m
            while k > m - 3 and 0x80 <= raw[k] < 0xC0:
                k -= 1
            if 0x80 <= raw[k] < 0xC0:
                k = m  # not UTF-8 anyway
            cuts.append(raw[:k])
            raw = raw[k:]
        return cuts, raw

    def read_lines(self) -> list[str]:
        return [ln.text for ln in self.read()]

    def take_tail(self) -> Line:
        """The bytes read but not ended by a newline, decoded; forgotten here."""
        tail, self._buf = self._buf, b""
        line = Line(_dec(tail.rstrip(b"\r")), self._cont)
        self._cont = False
        return line

    def write_line(self, line: str) -> None:
        self.write_raw(line.encode() + b"\n")

    def write_raw(self, data: bytes) -> None:
        """Write and drain.  PortError "disconnected (...)" when the port is
        gone (the same words read() uses: which side noticed first is
        chance), "write failed (...)" for any other failure."""
        try:
            self.ser.write(data)
            self.ser.flush()
        except Exception as e:
            detail = _cause(e)
            what = "disconnected" if _gone(e) else "write failed"
            raise PortError(f"{self.ser.port}: {what} ({detail})", detail) from None


def command(ser: serial.Serial, line: str, want: tuple[str, ...], timeout: float = 5.0,
            reader: LineReader | None = None,
            accept: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
    """Send one command line; return the first event whose ev is in want (or
    an error event) and that accept() takes.  PortError on timeout: the node
    is not running?"""
    r = reader or LineReader(ser)
    r.write_line(line)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for ln in r.read_lines():
            ev, _, _ = split_event(ln)
            if ev and (ev.get("ev") in want or ev.get("ev") == "error") and (accept is None or accept(ev)):
                return ev
    raise PortError(f"{ser.port}: no answer to {line.split()[0]} in {timeout:g} s "
                    "(is the node running? Ctrl-C or mpremote leaves it at the REPL: reset it)")
