"""rumor listen on virtual boards: deliveries as they arrive, with payload
(text or hex), hops, age and RSSI; through a running collector too."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from vboard import line_swarm, one_error, rumor

from rumor_host import Board
from rumor_host.listen import HEADER, delivery_line
from rumor_host.logs import Collector, wait_ready


@pytest.fixture(scope="module")
def swarm(tmp_path_factory):
    with line_swarm(3, tmp_path_factory.mktemp("swarm"), private=True) as sw:
        yield sw


def listen(*args):
    return subprocess.Popen([sys.executable, "-m", "rumor_host.cli", "listen", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_listening(proc, port):
    """listen has the port open (it is busy for anyone else)."""
    end = time.monotonic() + 20
    while time.monotonic() < end:
        assert proc.poll() is None, proc.communicate()
        try:
            Board(port, timeout=0.2, direct=True).open().close()
        except Exception as e:
            if "busy" in str(e):
                return
        time.sleep(0.1)
    raise AssertionError("listen never opened the port")


def test_listen_prints_each_delivery_with_payload(swarm):
    p = listen("-p", swarm.ports[1], "-p", swarm.ports[2], "--count", "4", "--duration", "60")
    try:
        wait_listening(p, swarm.ports[2])
        # listen holds its ports as a collector does: other commands go through it
        st = rumor("stats", "-p", swarm.ports[2], "--json")
        assert st.returncode == 0 and '"ev": "stats"' in st.stdout, st.stderr
        with Board(swarm.ports[0]) as b:
            m1 = b.publish("hello listeners")
            m2 = b.publish(b"\x00\x01\xfe")
        out, err = p.communicate(timeout=60)
    finally:
        p.kill()
    assert p.returncode == 0, err
    lines = out.splitlines()
    assert lines[0] == HEADER
    rows = [ln.split() for ln in lines[1:]]
    assert len(rows) == 4
    got = {(r[1], r[3]): r for r in rows}  # (board, id)
    assert set(got) == {("00000002", m1), ("00000003", m1), ("00000002", m2), ("00000003", m2)}
    r = got[("00000003", m1)]
    assert r[2] == "00000001" and r[4] == "2" and r[5].isdigit() and r[6] == "ms" and r[7] == "-97"
    assert " ".join(r[8:]) == "hello listeners"
    assert got[("00000002", m2)][8] == "hex:0001fe"


def test_listen_through_a_collector_and_json(swarm, tmp_path):
    with Collector(swarm.ports, tmp_path / "run.jsonl") as col:
        assert wait_ready(col, swarm.ports) == []
        p = listen("-p", swarm.ports[2], "--count", "1", "--json", "--duration", "60")
        try:
            # listen attached to the collector: wait for its client to appear
            end = time.monotonic() + 20
            while time.monotonic() < end and not col.control._clients:
                time.sleep(0.05)
            time.sleep(0.3)
            col.inject(swarm.ports[0], text="to the collector's listeners")
            out, err = p.communicate(timeout=60)
        finally:
            p.kill()
    assert p.returncode == 0, err
    import json

    (rec,) = [json.loads(x) for x in out.splitlines()]
    assert rec["ev"]["ev"] == "deliver" and rec["ev"]["payload"] == "to the collector's listeners"
    assert rec["port"] == swarm.ports[2]


def test_delivery_line_without_payload_and_cut():
    rec = {"t": 0.0, "ev": {"ev": "deliver", "node": "0000000a", "origin": "00000003", "id": "000000030011",
                            "hops": 2, "age_ms": 40, "len": 5, "rssi": None}}
    assert "payload_in_events is off" in delivery_line(rec) and " - " in delivery_line(rec)
    rec["ev"].update(payload="abc\x1b[2J", payload_cut=True)
    assert delivery_line(rec).endswith("abc?[2J (cut)")  # no terminal escapes from a payload


def test_listen_bad_port_is_one_line():
    assert "no such port" in one_error(rumor("listen", "-p", "/dev/no-such-port", "--duration", "1"))
