"""rumor nodes on virtual boards: each neighbour with its RSSI, last heard
and frames heard; direct and through a collector; bad input in one line."""

from __future__ import annotations

import json

import pytest
from vboard import one_error, private_runtime, ready, rumor

from rumor_host.logs import Collector, wait_ready
from rumor_host.nodes import table
from rumor_host.swarm import Swarm


@pytest.fixture(scope="module")
def swarm(tmp_path_factory):
    with private_runtime(), Swarm(3, "line", 0.0, run_dir=tmp_path_factory.mktemp("swarm"),
                                  stats_interval_ms=0, log=lambda s: None) as sw:
        ready(sw.ports)
        from rumor_host import Board

        with Board(sw.ports[0]) as b:  # traffic, so every node has heard its neighbours
            b.publish("hello")
        yield sw


def test_nodes_lists_the_neighbours_with_their_signal(swarm):
    r = rumor("nodes", "-p", swarm.ports[1])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "node 00000002: 2 neighbours"
    assert lines[1].split() == ["node", "address", "rssi", "snr", "dB", "last", "heard", "frames"]
    rows = {ln.split()[0]: ln.split() for ln in lines[2:]}
    assert set(rows) == {"00000001", "00000003"}
    one = rows["00000001"]
    assert one[1] == "020000000001" and one[2] == "-97" and one[3] == "-"  # no SNR off LoRa
    assert one[5:7] == ["s", "ago"] and int(one[7]) >= 1


def test_nodes_json_through_a_collector(swarm, tmp_path):
    with Collector(swarm.ports, tmp_path / "run.jsonl") as col:
        assert wait_ready(col, swarm.ports) == []
        r = rumor("nodes", "-p", swarm.ports[2], "--json")
        assert r.returncode == 0, r.stderr
        rows = json.loads(r.stdout)
        assert [x["node"] for x in rows] == ["00000002"]
        assert rows[0]["rssi"] == -97 and rows[0]["frames"] >= 1 and rows[0]["snr"] is None
        assert col.events("peers")  # the answer is in the collector's log too


def test_nodes_table_formats_lora_snr_and_an_empty_table():
    lines = table("0000000a", [{"node": "0000000b", "addr": None, "rssi": -120, "snr": -30,
                                "last_heard_ms": 300000, "frames": 7, "static": False}])
    assert lines[2].split() == ["0000000b", "-", "-120", "-7.5", "5", "min", "ago", "7"]
    assert "none heard yet" in table("0000000a", [])[1]


def test_nodes_bad_port_is_one_line():
    assert "no such port" in one_error(rumor("nodes", "-p", "/dev/no-such-port"))
