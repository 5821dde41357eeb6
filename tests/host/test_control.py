"""One owner per port, many clients: `rumor logs` holds four virtual boards'
ports, and inject, stats, nodes and the Board API reach the boards through
its control socket; every injection is in its JSONL with its host time, and
`rumor report` on that log gives delivery and latency."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from vboard import one_error, private_runtime, ready, rumor

from rumor_host import Board
from rumor_host.control import lookup, runtime_dir
from rumor_host.logs import Collector, wait_ready
from rumor_host.report import analyse, read_jsonl
from rumor_host.serialio import PortError, open_port
from rumor_host.swarm import Swarm

WAIT = 30.0  # upper bound on waits; nothing asserts on time


@pytest.fixture(scope="module")
def runtime():
    with private_runtime() as d:
        yield d


@pytest.fixture(scope="module")
def swarm(runtime, tmp_path_factory):
    with Swarm(4, "line", 0.0, run_dir=tmp_path_factory.mktemp("swarm"), stats_interval_ms=0,
               log=lambda s: None) as sw:
        ready(sw.ports)
        yield sw


def until(pred, timeout=WAIT, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def file_recs(path):
    try:
        return read_jsonl(path)
    except Exception:
        return []


def start_logs(ports, out, *extra):
    args = [sys.executable, "-m", "rumor_host.cli", "logs", "--out", str(out), "-q", *extra]
    for p in ports:
        args += ["-p", p]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    until(lambda: all(lookup(p) for p in ports) and
          len({r["port"] for r in file_recs(out) if r.get("collector") == "connected"}) == len(ports),
          what="rumor logs to hold every port")
    return proc


def stop_logs(proc):
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out, err


def test_inject_through_a_running_logs_and_report_latency(swarm, tmp_path):
    """The issue's done-when: logs holds four boards, inject at one works,
    report on that log gives delivery and latency for the injected messages."""
    out = tmp_path / "run.jsonl"
    logs = start_logs(swarm.ports, out, "--nodes-every", "0")
    try:
        r = rumor("inject", "-p", swarm.ports[1], "-n", "3", "--interval-ms", "50", "hello mesh")
        assert r.returncode == 0, r.stderr
        ids = r.stdout.split()
        assert len(ids) == 3 and all(i.startswith("00000002") for i in ids), r.stdout
        assert "through rumor logs" in r.stderr

        def delivered():
            return {(x["ev"]["id"], x["ev"]["node"]) for x in file_recs(out)
                    if x.get("ev", {}).get("ev") == "deliver"}

        until(lambda: len({d for d in delivered() if d[0] in ids}) == 9, what="9 deliveries")
        s = rumor("stats", "-p", swarm.ports[1], "--json")  # through it too
        assert s.returncode == 0, s.stderr
        assert json.loads(s.stdout)["core"]["published"] >= 3
    finally:
        rc, _, err = stop_logs(logs)
    assert rc == 0, err
    assert lookup(swarm.ports[1]) is None  # the registry entry went with it
    recs = read_jsonl(out)
    assert recs[0]["run"]["ports"] == swarm.ports and recs[0]["run"]["v"] == 1
    assert len(recs[0]["run"]["id"]) == 12
    inj = [x for x in recs if "inject" in x]
    assert [x["inject"]["id"] for x in inj] == ids
    assert all(x["inject"]["via"] == "collector" and x["inject"]["priority"] == 0 for x in inj)
    assert [x["inject"]["payload"] for x in inj] == [f"hello mesh #{i}" for i in (1, 2, 3)]
    published = {x["ev"]["id"]: x["t"] for x in recs if x.get("ev", {}).get("ev") == "publish"}
    assert all(x["t"] <= published[x["inject"]["id"]] for x in inj)  # taken before the write
    rep = analyse(recs)
    assert rep["messages"] == 3 and rep["delivery_ratio"] == 1.0
    assert rep["latency_ms_p50"] is not None and rep["latency_ms_p50"] > 0
    assert all(m["latency_ms_p50"] is not None for m in rep["per_message"])
    p = rumor("report", str(out))
    assert p.returncode == 0, p.stderr
    assert "100.0%" in p.stdout and "p50" in p.stdout


def test_board_api_and_commands_through_an_in_process_collector(swarm, tmp_path):
    out = tmp_path / "run.jsonl"
    with Collector(swarm.ports, out) as col:
        assert wait_ready(col, swarm.ports) == []
        with Board(swarm.ports[0]) as b:
            assert b.via == "collector" and b.holder is not None and b.holder.pid == os.getpid()
            mid = b.publish("via the socket", priority=2)
            assert b.node_id == "00000001"
        n = rumor("nodes", "-p", swarm.ports[1], "--json")
        assert n.returncode == 0, n.stderr
        assert {r["node"] for r in json.loads(n.stdout)} >= {"00000001", "00000003"}
        # the port is busy for anything else, and the error says who holds it
        with pytest.raises(PortError) as e:
            open_port(swarm.ports[2]).close()
        assert "rumor logs holds it" in str(e.value) and str(os.getpid()) in str(e.value)
        assert col.wait_for(lambda rs: sum(1 for r in rs if r.get("ev", {}).get("ev") == "deliver"
                                           and r["ev"]["id"] == mid) == 3, WAIT)
    inj = [r for r in read_jsonl(out) if "inject" in r]
    assert inj and inj[0]["inject"] == {"id": mid, "payload": "via the socket", "priority": 2,
                                        "via": "collector"}
    # once the collector is gone, the same commands open the port themselves
    with Board(swarm.ports[0]) as b:
        assert b.via == "direct"


def test_collector_side_inject_records_direct_and_hex(swarm, tmp_path):
    out = tmp_path / "run.jsonl"
    with Collector(swarm.ports[:2], out) as col:
        assert wait_ready(col, swarm.ports[:2]) == []
        req, n = col.inject(swarm.ports[0], hex_payload="00ff10")
        assert n < 100
        assert col.wait_for(lambda rs: any("inject" in r for r in rs), WAIT)
        with pytest.raises(ValueError, match="longer than 1024 bytes"):
            col.inject(swarm.ports[0], text='"' * 600)  # 600 characters, 1200 bytes once escaped
    (rec,) = [r for r in read_jsonl(out) if "inject" in r]
    assert rec["inject"]["via"] == "direct" and rec["inject"]["hex"] is True
    assert rec["inject"]["payload"] == "00ff10"


def test_a_bad_request_gets_one_line_and_the_server_goes_on(swarm, tmp_path):
    with Collector(swarm.ports[:1], tmp_path / "run.jsonl") as col:
        assert wait_ready(col, swarm.ports[:1]) == []
        h = lookup(swarm.ports[0])
        assert h is not None and h.socket.startswith(str(runtime_dir()))
        assert oct(os.stat(h.socket).st_mode & 0o777) == "0o600"
        s = socket.socket(socket.AF_UNIX)
        s.connect(h.socket)
        s.sendall(b"not json\n" + json.dumps({"op": "send", "n": 1, "port": "/dev/nope"}).encode()
                  + b"\n" + json.dumps({"op": "fly", "n": 2, "port": swarm.ports[0]}).encode() + b"\n")
        got = b""
        s.settimeout(5)
        while got.count(b"\n") < 3:
            got += s.recv(4096)
        s.close()
        a, b, c = [json.loads(x) for x in got.splitlines()[:3]]
        assert a["ok"] is False and "JSON" in a["error"]
        assert b["re"] == 1 and b["ok"] is False and "not held by this collector" in b["error"]
        assert c["re"] == 2 and "unknown op" in c["error"]
        with Board(swarm.ports[0]) as bd:  # still serving
            assert bd.via == "collector" and bd.stats()["ev"] == "stats"


def test_a_stale_registry_entry_is_ignored(swarm, runtime):
    from rumor_host.control import port_key

    f = runtime_dir() / "ports" / (port_key(os.path.abspath(swarm.ports[3])) + ".json")
    f.write_text(json.dumps({"port": swarm.ports[3], "socket": "/nonexistent.sock", "pid": 999999,
                             "run": "x", "out": None}))
    assert lookup(swarm.ports[3]) is None and not f.exists()
    with Board(swarm.ports[3]) as b:
        assert b.via == "direct" and b.node_id == "00000004"


def test_inject_shows_the_nodes_own_error_and_checks_the_length(swarm):
    r = rumor("inject", "-p", swarm.ports[0], "x" * 300)
    assert "max_payload" in one_error(r) and "refused" in one_error(r)
    r = rumor("inject", "-p", swarm.ports[0], '"' * 600)  # JSON escaping doubles it
    assert "command line longer than 1024 bytes" in one_error(r)
    # the node's own answer to a line it cannot take (sent raw, past the host check)
    with Board(swarm.ports[0]) as b:
        b._send("!inject " + "y" * 1100)
        ev = b._wait(lambda e: e.get("ev") == "error", "the long line")
        assert ev["cmd"] == "?" and ev["msg"] == "command line longer than 1024 bytes"


def test_a_second_collector_does_not_steal_the_port(swarm, tmp_path):
    said = []
    with Collector(swarm.ports[:1], tmp_path / "a.jsonl") as a:
        assert wait_ready(a, swarm.ports[:1]) == []
        with Collector(swarm.ports[:1], tmp_path / "b.jsonl", warn=said.append, retry_s=0.05) as b:
            assert b.wait_for(lambda rs: any(r.get("collector") == "waiting" for r in rs), WAIT)
            assert lookup(swarm.ports[0]).run == a.run_id  # clients still go to the first
            assert any("held by rumor logs pid" in s for s in said)
            waiting = [r for r in b.records if r.get("collector") == "waiting"]
            assert "rumor logs holds it" in waiting[0]["why"]
        assert lookup(swarm.ports[0]).run == a.run_id  # and the second's end did not unregister it
