"""The host side of the console protocol (docs/console.md) over a serial port:
a USB board's or a virtual board's pty, through pyserial."""

from __future__ import annotations

import os
import time
from typing import Any

import serial

from rumor.console import parse_event as _parse_event


class PortError(Exception):
    """A port that cannot be opened or went away; str() is one clear line."""


def open_port(port: str, timeout: float = 0.1) -> serial.Serial:
    """Open a board's REPL serial without resetting it (DTR/RTS left low)."""
    s = serial.Serial()
    s.port = port
    s.baudrate = 115200
    s.timeout = timeout
    s.dtr = False
    s.rts = False
    try:
        s.exclusive = True
    except (ValueError, AttributeError):  # pragma: no cover - old pyserial / platform
        pass
    try:
        s.open()
    except (serial.SerialException, OSError) as e:
        raise PortError(_why(port, e)) from None
    return s


def _why(port: str, e: BaseException) -> str:
    if not os.path.exists(port):
        return f"{port}: no such port (is the board plugged in? `rumor swarm` prints its ports)"
    msg = str(e)
    if "lock" in msg.lower() or "busy" in msg.lower() or "Resource temporarily" in msg:
        return f"{port}: busy (another program has it open: mpremote, rumor logs, a terminal?)"
    if "Permission" in msg:
        return f"{port}: permission denied (add yourself to the dialout group)"
    return f"{port}: cannot open: {msg}"


def parse_event(line: str) -> dict[str, Any] | None:
    """The event dict of a console line, or None (the firmware's own parser,
    so node and host can't disagree on the format)."""
    ev: dict[str, Any] | None = _parse_event(line)
    return ev


class LineReader:
    """Lines from a serial port (\\n or \\r\\n ends one); partial lines kept."""

    def __init__(self, ser: serial.Serial):
        self.ser = ser
        self._buf = b""

    def read_lines(self) -> list[str]:
        """Whatever complete lines have arrived (waits up to the port's timeout).
        Raises PortError when the port went away."""
        try:
            n = self.ser.in_waiting
            data = self.ser.read(n or 1)
        except (serial.SerialException, OSError) as e:
            raise PortError(f"{self.ser.port}: disconnected ({e})") from None
        if not data:
            return []
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        return [ln.rstrip(b"\r").decode("utf-8", "replace") for ln in lines]

    def write_line(self, line: str) -> None:
        try:
            self.ser.write(line.encode() + b"\n")
            self.ser.flush()
        except (serial.SerialException, OSError) as e:
            raise PortError(f"{self.ser.port}: write failed ({e})") from None


def command(ser: serial.Serial, line: str, want: tuple[str, ...], timeout: float = 5.0,
            reader: LineReader | None = None) -> dict[str, Any]:
    """Send one command line; return the first event whose ev is in want (or
    an error event).  PortError on timeout: the node is not running?"""
    r = reader or LineReader(ser)
    r.write_line(line)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for ln in r.read_lines():
            ev = parse_event(ln)
            if ev and (ev["ev"] in want or ev["ev"] == "error"):
                return ev
    raise PortError(f"{ser.port}: no answer to {line.split()[0]} in {timeout:g} s "
                    "(is the node running? Ctrl-C or mpremote leaves it at the REPL: reset it)")
