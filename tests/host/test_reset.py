"""rumor reset on virtual boards: a soft reset that leaves the node running,
also after mpremote left it at the REPL, and through a collector."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import tty
from pathlib import Path

import pytest
from vboard import answer, line_swarm, one_error, rumor

from rumor_host.logs import Collector, wait_ready

MPREMOTE = str(Path(sys.executable).parent / "mpremote")


@pytest.fixture(scope="module")
def swarm(tmp_path_factory):
    with line_swarm(2, tmp_path_factory.mktemp("swarm"), private=True) as sw:
        yield sw


def test_reset_a_running_node(swarm):
    before = swarm.boards[0].restarts
    r = rumor("reset", "-p", swarm.ports[0])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == (f"{swarm.ports[0]}: node 00000001 running again: unix (unix), "
                                "radio udp, mode gossip")
    assert swarm.boards[0].restarts == before + 1  # it really rebooted
    assert answer(swarm.ports[0], "!help", "help")["node"] == "00000001"


def test_reset_after_mpremote_left_it_at_the_repl(swarm):
    port = swarm.ports[1]
    p = subprocess.run([MPREMOTE, "connect", port, "resume", "exec", "print(6 * 7)"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == "42", p.stderr
    r = rumor("reset", "-p", port)
    assert r.returncode == 0, r.stderr
    assert "node 00000002 running again" in r.stdout
    assert answer(port, "!help", "help")["node"] == "00000002"


def test_reset_through_a_collector(swarm, tmp_path):
    with Collector(swarm.ports, tmp_path / "run.jsonl") as col:
        assert wait_ready(col, swarm.ports) == []
        r = rumor("reset", "-p", swarm.ports[0])
        assert r.returncode == 0, r.stderr
        assert col.wait_for(lambda rs: any(x.get("ev", {}).get("ev") == "boot" for x in rs), 20)
        assert col.connected(swarm.ports[0])  # it kept the port all along


def test_reset_of_a_port_without_a_node_is_one_line(tmp_path):
    m, s = pty.openpty()
    tty.setraw(s)
    link = tmp_path / "silent"
    link.symlink_to(os.ttyname(s))
    try:
        err = one_error(rumor("reset", "-p", str(link), "--timeout", "1"))
        assert "no answer to the reset" in err
    finally:
        os.close(m)
        os.close(s)
