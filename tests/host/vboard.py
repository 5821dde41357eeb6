"""Helpers for tests that talk to virtual boards over their ptys."""

from __future__ import annotations

import time

from rumor_host.serialio import PortError, command, open_port


def answer(port: str, cmd: str, want: str) -> dict:
    """Send cmd to the board on port and return its `want` event, retrying
    while the board is still (re)booting; fail after about 10 s."""
    for _ in range(100):
        try:
            s = open_port(port)
        except PortError:
            time.sleep(0.1)
            continue
        try:
            return command(s, cmd, (want,), timeout=0.5)
        except PortError:
            pass
        finally:
            s.close()
    raise AssertionError(f"{port}: no {want}")
