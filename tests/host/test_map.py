"""End to end on virtual boards: `rumor logs` (a Collector) holds four
boards' ports and asks them for their neighbours, messages are injected
through it, and `rumor report` gives delivery, latency from the injection,
the boards' stats, and a map of who heard whom."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from vboard import line_swarm

from rumor_host.cli import main
from rumor_host.logs import Collector, wait_ready
from rumor_host.meshmap import MeshMap, components, draw, layout
from rumor_host.report import analyse, read_jsonl

WAIT = 20.0


@pytest.fixture(scope="module")
def swarm(tmp_path_factory):
    with line_swarm(4, tmp_path_factory.mktemp("swarm")) as sw:
        yield sw


def _png(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    return data


def test_report_of_injections_through_logs_with_stats_and_map(swarm, tmp_path):
    out = tmp_path / "run.jsonl"
    with Collector(swarm.ports, out, nodes_every=0.5) as col:
        assert wait_ready(col, swarm.ports) == []
        for i in range(3):
            col.inject(swarm.ports[0], text=f"hello {i}")
        ids = lambda: [r["inject"]["id"] for r in col.records if "inject" in r]  # noqa: E731
        assert col.wait_for(lambda rs: len(ids()) == 3, WAIT)

        def all_in(rs):
            got = {(r["ev"]["id"], r["ev"]["node"]) for r in rs if "ev" in r and r["ev"]["ev"] == "deliver"}
            return all((m, n) in got for m in ids() for n in ("00000002", "00000003", "00000004"))

        assert col.wait_for(all_in, WAIT)
        assert col.wait_for(lambda rs: sum(1 for r in rs if "ev" in r and r["ev"]["ev"] == "peers") >= 8, WAIT)
        for p in swarm.ports:
            col.send(p, "!stats")
        assert col.wait_for(lambda rs: len({r["port"] for r in rs if "ev" in r and r["ev"]["ev"] == "stats"}) == 4,
                            WAIT)
    rep = analyse(read_jsonl(out))
    assert rep["messages"] == 3 and rep["delivery_ratio"] == 1.0 and rep["injected"] == 3
    assert rep["latency_from"] == "injection" and rep["latency_ms_p50"] is not None
    # the far end of the line heard only its one neighbour; stats are there for every board
    far = next(b for b in rep["per_board"] if b["node"] == "00000004")
    assert far["heard"] == ["00000003"] and far["frames_out"] > 0 and far["frames_in"] > 0
    assert rep["_heard"][("00000002", "00000001")] is not None  # an RSSI from the virtual medium

    r = CliRunner().invoke(main, ["report", str(out), "--map", str(tmp_path / "map.png"),
                                  "--plot", str(tmp_path / "plot.png"), "--json", str(tmp_path / "r.json")],
                           env={"COLUMNS": "160"})
    assert r.exit_code == 0, r.output
    assert "100.0% (9 of 9 expected deliveries)" in r.output and "latency from injection" in r.output
    assert re.search(r"^run [0-9a-f]{12} of .* \(4 ports", r.output, re.M)  # what its run header says
    _png(tmp_path / "map.png")
    _png(tmp_path / "plot.png")
    figures = json.loads((tmp_path / "r.json").read_text())
    assert figures["per_board"][0]["frames_out"] > 0


def test_map_of_a_run_without_snapshots_says_so(tmp_path):
    f = tmp_path / "r.jsonl"
    f.write_text(json.dumps({"t": 1.0, "port": "a", "ev": {"ev": "publish", "node": "00000001",
                                                           "id": "000000010001"}}) + "\n")
    r = CliRunner().invoke(main, ["report", str(f), "--map", str(tmp_path / "m.png")])
    assert r.exit_code == 0, r.output
    assert "no peers snapshots" in r.output and (tmp_path / "m.png").exists()


def test_layout_and_components():
    nodes = ["a", "b", "c", "d", "e"]
    links = [("a", "b"), ("b", "c"), ("d", "e")]
    assert components(nodes, links) == [["a", "b", "c"], ["d", "e"]]
    p = layout(nodes, links)
    assert p == layout(nodes, links)  # deterministic
    assert all(0 <= x <= 1 and 0 <= y <= 1 for x, y in p.values())
    dist = lambda u, v: ((p[u][0] - p[v][0]) ** 2 + (p[u][1] - p[v][1]) ** 2) ** 0.5  # noqa: E731
    assert dist("a", "b") < dist("a", "e")  # linked nodes end up closer


def test_links_merge_both_directions(tmp_path):
    m = MeshMap(["a", "b", "c"], {("a", "b"): -60, ("b", "a"): -70, ("b", "c"): None})
    assert m.links() == [("a", "b", -65.0, True), ("b", "c", None, False)]
    draw(m, tmp_path / "m.png")
    _png(tmp_path / "m.png")


def test_sim_map_draws_the_simulated_topology_with_its_parts(tmp_path):
    from rumor_host.meshmap import map_path, sim_map
    from rumor_host.sim.engine import SimParams, simulate

    rep = simulate(SimParams(nodes=60, topology="rgg", degree=5.0, messages=3, seed=1), ["rumor"])
    out = sim_map(rep, map_path(tmp_path / "sim.png"))
    assert out == str(tmp_path / "sim-map.png")
    _png(tmp_path / "sim-map.png")
    rep["params"]["nodes"] = 10**6  # too big to draw: None, nothing written
    assert sim_map(rep, tmp_path / "big.png") is None and not (tmp_path / "big.png").exists()


def test_rumor_sim_plot_also_draws_the_topology(tmp_path):
    r = CliRunner().invoke(main, ["sim", "--nodes", "40", "--topology", "rgg", "--degree", "5",
                                  "--messages", "3", "--strategy", "rumor", "-q",
                                  "--plot", str(tmp_path / "s.png")])
    assert r.exit_code == 0, r.output
    _png(tmp_path / "s.png")
    _png(tmp_path / "s-map.png")
    assert "delivery: within each message's source's component" in r.output
