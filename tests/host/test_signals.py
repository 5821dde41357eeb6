"""rumor swarm and rumor demo leave nothing running when they are told to stop
by SIGHUP or SIGTERM (a closed terminal, `timeout`, CI), not only by Ctrl-C."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

RUMOR = [sys.executable, "-m", "rumor_host.cli"]


def _procs_in(folder: Path) -> list[int]:
    """Live processes working in folder or holding a file in it open (the
    boards run in their folders; the medium writes folder/medium.log)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            paths = [os.readlink(f"/proc/{pid}/cwd")]
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    paths.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
                except OSError:
                    pass
        except OSError:
            continue
        if state != "Z" and any(x.startswith(str(folder)) for x in paths):
            out.append(int(pid))
    return out


def _wait_gone(folder: Path, timeout: float = 10.0) -> list[int]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        left = _procs_in(folder)
        if not left:
            return []
        time.sleep(0.2)
    return _procs_in(folder)


def _swarm(run, n):
    """`rumor swarm` of n boards in a line, in a session of its own."""
    return subprocess.Popen(RUMOR + ["swarm", "-n", str(n), "-t", "line", "--dir", str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def _wait_started(p, run):
    """Read p's output until the swarm says it is up; its boards run."""
    for line in p.stdout:  # type: ignore[union-attr]
        if "Ctrl-C stops the swarm" in line:
            break
    assert _procs_in(run), "the boards should be running"


def test_swarm_stops_everything_on_sighup(tmp_path):
    run = tmp_path / "swarm"
    p = _swarm(run, 2)
    try:
        _wait_started(p, run)
        p.send_signal(signal.SIGHUP)
        p.wait(20)
        assert _wait_gone(run) == []
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)


def test_demo_stops_everything_on_sigterm(tmp_path):
    p = subprocess.Popen(RUMOR + ["demo", "-n", "2", "-m", "200", "--out", str(tmp_path / "d.jsonl")],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    try:
        run = None
        for line in p.stdout:  # type: ignore[union-attr]
            if "ports in " in line:
                run = Path(line.rsplit("ports in ", 1)[1].strip())
            if "injecting" in line:
                break
        assert run is not None and _procs_in(run)
        p.send_signal(signal.SIGTERM)
        p.wait(20)
        assert p.returncode != 0  # aborted, not a report
        assert _wait_gone(run) == []
        assert not run.exists()  # its temporary folder is gone too
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)


def test_a_second_signal_while_the_swarm_stops_leaves_nothing_running(tmp_path):
    """Ctrl-C, then the SIGTERM of a `timeout` while the boards are being
    stopped: the medium and the boards (in sessions of their own) must not
    outlive the swarm."""
    run = tmp_path / "swarm"
    p = _swarm(run, 4)
    try:
        _wait_started(p, run)
        p.send_signal(signal.SIGINT)
        for _ in range(5):
            time.sleep(0.02)
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        p.wait(20)
        assert _wait_gone(run) == []
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
