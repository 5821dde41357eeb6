"""The host Python API (docs/host-api.md) on virtual boards: Board publishes
at one board and sees the delivery at another; Mesh merges the streams; the
docs' example runs as written; errors are one-line BoardErrors."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from vboard import line_swarm, ready

from rumor_host import Board, BoardError, Mesh

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def swarm(tmp_path_factory):
    with line_swarm(4, tmp_path_factory.mktemp("swarm"), private=True) as sw:
        yield sw


def test_publish_at_one_board_and_see_it_delivered_at_another(swarm):
    with Board(swarm.ports[0]) as a, Board(swarm.ports[3]) as d:
        assert a.via == d.via == "direct"
        mid = a.publish("hello far end", priority=1)
        assert re.fullmatch("00000001[0-9a-f]{4}", mid)
        got = []
        for ev in d.events(timeout=15, kinds=("deliver",)):
            if ev["id"] == mid:
                got.append(ev)
                break
        assert got and got[0]["payload"] == "hello far end" and got[0]["hops"] == 3
        assert got[0]["priority"] == 1 and got[0]["node"] == d.node_id == "00000004"


def test_mesh_merges_events_and_a_port_twice_is_one_board(swarm):
    with Mesh([*swarm.ports, swarm.ports[0]]) as m:
        assert len(m) == 4 and m[swarm.ports[2]] is m[2]
        mid = m[1].publish(b"\x00\x01\x02")
        seen = {}
        for port, ev in m.events(timeout=15, kinds=("deliver",)):
            if ev["id"] == mid:
                seen[port] = ev
                if len(seen) == 3:
                    break
        assert set(seen) == {swarm.ports[0], swarm.ports[2], swarm.ports[3]}
        assert all(e["payload"] == "000102" and e["payload_hex"] is True for e in seen.values())


def test_events_that_come_while_a_command_waits_are_kept(swarm):
    with Board(swarm.ports[0]) as a, Board(swarm.ports[1]) as b:
        mid = a.publish("while you were busy")
        time.sleep(1.0)  # delivered at b meanwhile
        assert b.stats()["ev"] == "stats"
        assert b.peers()  # another command
        assert any(ev["id"] == mid for ev in b.events(timeout=3, kinds=("deliver",)))


def test_info_config_peers_and_command(swarm):
    with Board(swarm.ports[1]) as b:
        info = b.info()
        assert info["v"] >= 2 and info["radio"] == "udp" and info["board"] == "unix"
        cfg = b.config()
        assert cfg["preset"] and "fanout" in cfg["config"]
        peers = {p["node"]: p for p in b.peers()}
        assert set(peers) >= {"00000001", "00000003"}
        assert all(isinstance(p["rssi"], int) and p["frames"] >= 1 for p in peers.values())
        assert b.command("level", "info")["level"] == "info"
        with pytest.raises(BoardError, match="refused nosuch: unknown command"):
            b.command("nosuch")


def test_errors_are_one_line_board_errors(swarm, tmp_path):
    with pytest.raises(BoardError, match="no such port"):
        Board("/dev/no-such-port").open()
    cases = [
        (lambda b: b.publish("x", priority=5), "priority must be 0..3"),
        (lambda b: b.publish(""), "empty message"),
        (lambda b: b.publish("\\" * 700), "longer than 1024 bytes"),
        (lambda b: b.publish("x" * 300), "max_payload"),
    ]
    with Board(swarm.ports[0]) as b:
        for fn, words in cases:
            with pytest.raises(BoardError) as e:
                fn(b)
            msg = str(e.value)
            assert words in msg and "\n" not in msg, msg
    # a port held by another Board: busy, in one line
    with Board(swarm.ports[2]), pytest.raises(BoardError, match="busy"):
        Board(swarm.ports[2]).open()
    # a node that is not running: no answer, in one line, naming the fix
    dead = tmp_path / "dead"
    import os
    import pty
    import tty

    m, s = pty.openpty()
    tty.setraw(s)
    dead.symlink_to(os.ttyname(s))
    try:
        with Board(str(dead), timeout=0.5) as b, pytest.raises(BoardError, match="no answer to !stats"):
            b.stats()
    finally:
        os.close(m)
        os.close(s)


def test_fileno_is_the_open_ports_descriptor_and_fails_clearly_when_closed(swarm):
    port = swarm.ports[1]
    never = Board(port)
    with pytest.raises(BoardError) as e:
        never.fileno()
    assert str(e.value).startswith(f"{port}: not open (") and "\n" not in str(e.value)
    with Board(port) as b, Board(swarm.ports[0]) as a:
        fd = b.fileno()
        assert os.ttyname(fd) == os.path.realpath(port)  # the port itself, opened by b
        list(b.records(timeout=0))  # nothing kept aside: what comes next is on the descriptor
        for _ in range(10):  # a select() loop of one's own
            mid = a.publish("wake the select")
            r, _, _ = select.select([fd], [], [], 5)
            if r and any(ev["id"] == mid for ev in b.events(timeout=5, kinds=("deliver",))):
                break
        else:
            raise AssertionError("the descriptor never became readable with the delivery")
        assert r == [fd]
    with pytest.raises(BoardError, match="not open"):
        b.fileno()  # closed by the with
    # and fileno() did not take the port: opening it directly is not "busy"
    with Board(port, direct=True) as again:
        assert again.fileno() >= 0


def _docs_example() -> str:
    text = (ROOT / "docs" / "host-api.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    (ex,) = [b for b in blocks if "Mesh(ports)" in b]
    return ex


def test_the_docs_example_runs_as_written(swarm, tmp_path):
    f = tmp_path / "example.py"
    f.write_text(_docs_example())
    p = subprocess.run([sys.executable, str(f), *swarm.ports], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr + p.stdout
    lines = p.stdout.splitlines()
    assert lines[0].startswith("published 00000001") and "via direct" in lines[0]
    assert sum("got it" in ln and "'hello from a script'" in ln for ln in lines) == 3
    assert "not delivered at: none" in lines
    assert any(ln.startswith("neighbours of 00000001 ['00000002']") for ln in lines)
    # and with a bad port, its one error line
    p = subprocess.run([sys.executable, str(f), "/dev/no-such-port"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 1 and p.stderr.startswith("error: /dev/no-such-port: no such port")


def test_hold_serves_the_port_to_others_and_survives_an_unplug(swarm):
    import select

    from rumor_host.board import hold

    with hold([swarm.ports[3]]) as col, Board(swarm.ports[3]) as d:
        assert col is not None and d.via == "collector"
        with Board(swarm.ports[3]) as other:  # a second client of the same port
            assert other.stats()["node"] == "00000004"
        with hold([swarm.ports[3]]) as again:
            assert again is None  # held already: nothing more to do
        swarm.boards[3].unplug()
        swarm.boards[3].replug()
        end = time.monotonic() + 20
        while not col.connected(swarm.ports[3]) and time.monotonic() < end:
            time.sleep(0.05)
        list(d.records(timeout=0))  # what the commands left aside (a generator: drain it)
        ready([swarm.ports[0]])
        with Board(swarm.ports[0]) as a:
            for _ in range(20):  # the pulled node boots again: its first messages may miss it
                mid = a.publish("after the unplug")
                r, _, _ = select.select([d.fileno()], [], [], 5)  # readable: something came
                if r and any(ev["id"] == mid for ev in d.events(timeout=5, kinds=("deliver",))):
                    break
            else:
                raise AssertionError("no delivery after the board came back")
    with pytest.raises(BoardError, match="no such port"):
        with hold(["/dev/no-such-port"]):
            pass


@pytest.mark.hardware
def test_real_boards_answer_through_the_api(request):
    """`pytest -m hardware --port /dev/ttyUSB0 --port /dev/ttyUSB1`: deployed
    boards in radio range; a message published at the first reaches the others."""
    ports = request.config.getoption("--port")
    if not ports:
        pytest.skip("no --port given: hardware tests need a real board")
    with Mesh(ports, timeout=10) as m:
        for b in m:
            info = b.info()
            assert info["v"] >= 2 and info["chip"] != "unix"
            assert b.stats()["mem_free"] > 0
        if len(m) < 2:
            return
        mid = m[0].publish("hardware test")
        got = set()
        for port, ev in m.events(timeout=30, kinds=("deliver",)):
            if ev["id"] == mid:
                got.add(port)
                if len(got) == len(m) - 1:
                    break
        assert got == {b.port for b in m.boards[1:]}
        assert any(p["rssi"] is not None for p in m[1].peers())  # a real radio's signal
