"""Helpers for tests that talk to virtual boards over their ptys."""

from __future__ import annotations

import contextlib
import time

from rumor_host.serialio import PortError, command, open_port
from rumor_host.swarm import Swarm


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


def private_runtime():
    """A runtime dir of our own (control sockets, the port and swarm
    registries: control.py) for a test module, so the swarms and collectors
    of other test runs on the machine are not found: a context manager
    setting RUMOR_RUNTIME_DIR (short: a unix socket path has ~107 bytes)."""
    import contextlib
    import os
    import shutil
    import tempfile

    @contextlib.contextmanager
    def cm():
        d = tempfile.mkdtemp(prefix="rrt-")
        old = os.environ.get("RUMOR_RUNTIME_DIR")
        os.environ["RUMOR_RUNTIME_DIR"] = d
        try:
            yield d
        finally:
            if old is None:
                os.environ.pop("RUMOR_RUNTIME_DIR", None)
            else:
                os.environ["RUMOR_RUNTIME_DIR"] = old
            shutil.rmtree(d, ignore_errors=True)

    return cm()


@contextlib.contextmanager
def line_swarm(n: int, run_dir, private: bool = False, **kw):
    """A Swarm of n quiet virtual boards in a line (no periodic stats, no
    log), passing kw on to Swarm; with private, in a runtime dir of its own
    (private_runtime) and with every board answering before it is yielded."""
    with contextlib.ExitStack() as stack:
        if private:
            stack.enter_context(private_runtime())
        sw = stack.enter_context(Swarm(n, "line", 0.0, run_dir=run_dir, stats_interval_ms=0,
                                       log=lambda s: None, **kw))
        if private:
            ready(sw.ports)
        yield sw


def ready(ports: list[str]) -> None:
    """Every board on ports answers (!help)."""
    for p in ports:
        answer(p, "!help", "help")


def rumor(*args: str, timeout: float = 90, **kw):
    """`rumor ARGS` in a subprocess (as a user runs it): CompletedProcess."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "rumor_host.cli", *args], capture_output=True,
                          text=True, timeout=timeout, **kw)


def one_error(p) -> str:
    """The one `Error: ...` line of a failed command (asserting there is
    exactly one and no traceback)."""
    assert p.returncode != 0, p.stdout
    assert "Traceback" not in p.stderr + p.stdout, p.stderr
    err = [ln for ln in p.stderr.splitlines() if ln.startswith("Error")]
    assert len(err) == 1, p.stderr
    return err[0]
