"""The simulator: small cases whose answers are known by hand."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from rumor_host.sim import SimParams, simulate
from rumor_host.sim.bounds import greedy_cds
from rumor_host.sim.cli import sim
from rumor_host.sim.radio import espnow, lora, lora_airtime_ms
from rumor_host.sim.report import json_report
from rumor_host.sim.strategies import STRATEGIES, parse_strategies
from rumor_host.sim.topology import make_topology

REQUIRED = ("delivery_ratio", "latency_ms_p50", "latency_ms_p99", "latency_ms_max",
            "tx_per_message", "airtime_ms_per_message", "duplicates_per_node", "memory_bytes")


# -- the radio ---------------------------------------------------------------------

@pytest.mark.parametrize("payload,sf,expected_ms", [
    # The Things Network airtime calculator (EU868, 125 kHz, CR 4/5, 8-symbol
    # preamble, explicit header, CRC): a 10-byte application payload is a
    # 23-byte LoRaWAN PHY payload.  SF12 has low-data-rate optimisation on.
    (23, 7, 61.696),
    (23, 12, 1482.752),
])
def test_lora_airtime_published_examples(payload, sf, expected_ms):
    assert lora_airtime_ms(payload, sf=sf) == pytest.approx(expected_ms, abs=0.001)


def test_lora_airtime_formula_terms():
    # SF7, 125 kHz: 1.024 ms symbols; 12.25-symbol preamble; an empty payload
    # with header and CRC needs 8 + ceil((0 - 28 + 28 + 16) / 28) * 5 = 13 symbols
    assert lora_airtime_ms(0, sf=7) == pytest.approx((12.25 + 13) * 1.024)
    # low-data-rate optimisation lengthens the payload, implicit header shortens it
    assert lora_airtime_ms(23, sf=12, ldro=False) < lora_airtime_ms(23, sf=12)
    assert lora_airtime_ms(23, sf=7, explicit_header=False) < lora_airtime_ms(23, sf=7)
    assert lora_airtime_ms(23, sf=7, cr=4) > lora_airtime_ms(23, sf=7, cr=1)
    assert lora(10).airtime_us(23) == round(lora_airtime_ms(23, sf=10) * 1000)
    with pytest.raises(ValueError):
        lora_airtime_ms(300)


def test_espnow_airtime():
    # 192 us PLCP + (payload + 43 bytes of 802.11 action frame) at 1 Mbit/s
    assert espnow().airtime_us(250) == 192 + 293 * 8


# -- bounds and topologies -------------------------------------------------------------

def _is_cds(adj, nodes, cds):
    s = set(cds)
    if any(v not in s and not s.intersection(adj[v]) for v in nodes):
        return False
    seen = {cds[0]}
    stack = [cds[0]]
    while stack:
        u = stack.pop()
        for v in adj[u]:
            if v in s and v not in seen:
                seen.add(v)
                stack.append(v)
    return seen == s


def test_greedy_cds():
    t = make_topology("line", 5)
    assert sorted(greedy_cds(t.adj, list(range(5)))) == [1, 2, 3]
    assert greedy_cds(make_topology("clusters", 21).adj, list(range(21))) == [0]
    g = make_topology("rgg", 300, 10, seed=3)
    main = g.largest_component()
    cds = greedy_cds(g.adj, main)
    assert _is_cds(g.adj, main, cds)
    assert len(cds) < len(main) // 2


def test_rgg_hits_target_degree():
    g = make_topology("rgg", 2000, 10, seed=1)
    assert 9.3 < g.mean_degree() < 10.7


# -- runs with answers known by hand -----------------------------------------------------

def _run(strategies, **kw):
    return simulate(SimParams(**kw), strategies)


def test_line_of_five_flood():
    rep = _run(["flood"], nodes=5, topology="line", messages=3, source=0)
    f = rep["results"]["flood"]
    assert rep["bounds"]["ecc_hops_max"] == 4
    assert f["delivery_ratio"] == 1.0
    assert f["tx_per_message"] == 5.0  # every node once, no anti-entropy
    # the far end is 4 transmissions away: at least 4 airtimes, and it got it
    # last, through every relay's jitter (< 5 ms each) and CSMA access
    assert f["latency_ms_max"] >= 4 * rep["bounds"]["data_airtime_ms"]
    assert f["latency_ms_max"] < 4 * (5 + 2)
    # node 1 hears 0 and 2, node 4 only 3: 4 duplicates per message in all
    assert f["duplicates_per_node"] == pytest.approx(4 / 5)


def test_complete_graph():
    rep = _run(["flood", "managed-flood", "rumor"], nodes=12, topology="complete", messages=5)
    r = rep["results"]
    assert rep["bounds"]["ecc_hops_max"] == 1 and rep["bounds"]["cds_size"] == 1
    for name, m in r.items():
        assert m["delivery_ratio"] == 1.0
        # one transmission reaches everyone (managed flooding's own message
        # first waits 0..7 of its 1.28 ms slots, as Meshtastic's does)
        assert m["latency_ms_max"] < 2.0 + (7 * 1.28 if name == "managed-flood" else 0)
    assert r["flood"]["tx_per_message"] == 12.0
    # one copy heard cancels every other managed-flood relay but those already on air
    assert r["managed-flood"]["tx_per_message"] < 6
    assert r["rumor"]["data_tx_per_message"] < r["flood"]["tx_per_message"]


def test_two_clusters_bridge():
    rep = _run(["flood", "rumor"], nodes=21, topology="clusters", messages=5, source=1)
    r = rep["results"]
    assert rep["bounds"]["ecc_hops_max"] == 2  # cluster A -> bridge -> cluster B
    assert r["flood"]["delivery_ratio"] == 1.0
    assert r["flood"]["tx_per_message"] == 21.0
    assert r["rumor"]["delivery_ratio"] == 1.0
    assert r["rumor"]["latency_ms_max"] >= 2 * rep["bounds"]["data_airtime_ms"]


def test_partition_heals_by_anti_entropy():
    # a line of 10 cut between nodes 4 and 5 until t = 5 s; messages from node 0 at 1.0..1.2 s
    rep = _run(["flood", "rumor"], nodes=10, topology="line", messages=3, source=0,
               interval_ms=100, partition_ms=5000, settle_ms=60_000)
    r = rep["results"]
    assert r["flood"]["delivery_ratio"] == pytest.approx(4 / 9)  # nodes 1..4 only
    assert r["rumor"]["delivery_ratio"] == 1.0
    # the far side can only have got them after the heal
    assert r["rumor"]["latency_ms_max"] >= 5000 - 1200


def test_seed_unicast_gossip_delivers():
    rep = _run(["seed"], nodes=30, topology="rgg", degree=6, messages=5, loss=0.1)
    s = rep["results"]["seed"]
    assert s["delivery_ratio"] > 0.95
    assert s["retries_per_message"] > 0  # lost unicasts are retried by the MAC


def test_churn_reboots_lose_state_but_rumor_recovers():
    rep = _run(["flood", "rumor"], nodes=60, messages=20, churn=0.3, downtime_ms=300,
               settle_ms=30_000)
    r = rep["results"]
    assert r["rumor"]["delivery_ratio"] >= r["flood"]["delivery_ratio"]
    assert r["rumor"]["delivery_ratio"] > 0.99


def test_lora_flood_collides_and_duty_cycle_is_counted():
    rep = _run(["flood", "rumor"], nodes=40, radio="lora", sf=7, messages=5, degree=8)
    r = rep["results"]
    assert r["flood"]["collided_rx_per_message"] > 0
    # flood sends only 48-byte data frames: its airtime is their count times the formula's
    assert r["flood"]["airtime_ms_per_message"] == pytest.approx(
        r["flood"]["tx_per_message"] * lora_airtime_ms(16 + 32, 7), abs=0.01)
    for m in r.values():
        assert 0 < m["duty_cycle_max"] < 1


def test_same_seed_same_numbers():
    p = dict(nodes=80, messages=10, loss=0.1)
    a = json_report(_run(["flood", "rumor"], **p))
    b = json_report(_run(["flood", "rumor"], **p))
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    c = json_report(_run(["flood", "rumor"], seed=2, **p))
    assert json.dumps(a["results"], sort_keys=True) != json.dumps(c["results"], sort_keys=True)


# -- strategies and the command ---------------------------------------------------------------

def test_strategies_are_configs_of_the_core():
    from rumor import Config

    for s in STRATEGIES.values():
        for radio in (espnow(), lora(10)):
            assert isinstance(s.config(radio, 1.0, 12), Config)
    assert parse_strategies("rumor, flood,rumor") == ["rumor", "flood"]
    with pytest.raises(ValueError, match="unknown strategy"):
        parse_strategies("flood,gossipy")


def test_cli_writes_json_and_plot(tmp_path):
    out = tmp_path / "out.json"
    png = tmp_path / "out.png"
    res = CliRunner().invoke(sim, ["--nodes", "30", "--messages", "3", "--strategy", "flood,rumor",
                                   "--quiet", "--json", str(out), "--plot", str(png)])
    assert res.exit_code == 0, res.output
    assert "flood" in res.output and "rumor" in res.output
    data = json.loads(out.read_text())
    assert set(data) == {"params", "bounds", "results"}
    assert list(data["results"]) == ["flood", "rumor"]
    for m in data["results"].values():
        assert all(k in m for k in REQUIRED)
    assert png.stat().st_size > 1000


@pytest.mark.parametrize("args,needle", [
    (["--strategy", "flood,bogus"], "unknown strategy bogus"),
    (["--loss", "1.5"], "--loss"),
    (["--nodes", "1"], "--nodes"),
    (["--nodes", "10", "--degree", "12"], "--degree"),
    (["--topology", "ring"], "--topology"),
])
def test_cli_bad_input(args, needle):
    res = CliRunner().invoke(sim, args)
    assert res.exit_code == 2
    assert needle in res.output


# -- airtime per node and the duty-cycle budget ------------------------------------------------

def test_airtime_per_node_summary():
    rep = _run(["flood", "rumor"], nodes=40, messages=5, loss=0.1)
    for m in rep["results"].values():
        a = m["airtime_per_node"]
        assert a["max_ms"] >= a["p99_ms"] >= a["p50_ms"] > 0
        assert a["max_ms"] >= a["mean_ms"] > 0
        assert a["duty_max"] == pytest.approx(a["max_ms"] * 1000 / (m["sim_ms"] * 1000), abs=1e-6)
        assert a["duty_max"] == pytest.approx(m["duty_cycle_max"], abs=1e-6)
        top = a["top"]
        assert len(top) == 5 and top[0]["airtime_ms"] == a["max_ms"]
        assert [t["airtime_ms"] for t in top] == sorted((t["airtime_ms"] for t in top), reverse=True)
        # every node's airtime adds up to what went on air (broadcasts only: no MAC ACKs)
        assert a["mean_ms"] * 40 == pytest.approx(m["airtime_ms_per_message"] * 5, rel=1e-3)
        assert "duty_budget" not in m  # ESP-NOW has no duty cycle


def test_lora_no_node_exceeds_its_duty_budget():
    rep = _run(["flood", "rumor"], nodes=40, radio="lora", sf=10, messages=5, degree=8)
    for m in rep["results"].values():
        d = m["duty_budget"]
        assert d["ok"] and d["bucket_ok"] and d["window_ok"]
        assert d["duty_cycle"] == 0.01 and d["window_s"] == 3600
        assert 0 < d["worst_window_airtime_ms"] <= d["window_limit_ms"] == 36_000
        a = m["airtime_per_node"]
        assert d["worst_window_airtime_ms"] == pytest.approx(a["max_ms"], abs=0.01)


def test_duty_budget_check_catches_an_overdrawn_node():
    from rumor_host.sim.engine import duty_budget_check

    cap = 3600e6 * 0.01  # 36 s of airtime
    fine = [[(k * 10_000_000, 100_000) for k in range(10)]]  # 0.1 s every 10 s: 1%
    assert duty_budget_check(fine, 0.01, cap, 100_000_000)["ok"]
    # 40 s on air in the first minute: more than an hour's budget
    hog = [[(k * 1_000_000, 1_000_000) for k in range(40)]]
    d = duty_budget_check(fine + hog, 0.01, cap, 100_000_000)
    assert not d["ok"] and not d["bucket_ok"] and not d["window_ok"]
    assert d["worst_window_node"] == 1 and d["worst_window_airtime_ms"] == 40_000
    assert d["worst_60s_fraction"] == pytest.approx(40 / 60, abs=1e-3)


def test_cli_prints_airtime_and_duty_budget():
    res = CliRunner().invoke(sim, ["--nodes", "30", "--messages", "3", "--strategy", "rumor",
                                   "--radio", "lora", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "airtime per node" in res.output
    assert "duty budget, rumor: no node exceeded it" in res.output


def test_partition_in_the_middle_of_the_run():
    # a line of 10 cut between nodes 4 and 5 from 1.5 s to 8 s: the first message
    # (1.0 s) crosses before the cut, the others (2.0, 3.0 s) only after the heal
    rep = _run(["flood", "rumor"], nodes=10, topology="line", messages=3, source=0,
               interval_ms=1000, partition_start_ms=1500, partition_ms=8000, settle_ms=60_000)
    r = rep["results"]
    assert r["flood"]["delivery_ratio"] == pytest.approx((9 + 4 + 4) / 27)
    assert r["rumor"]["delivery_ratio"] == 1.0
    assert r["rumor"]["latency_ms_max"] >= 8000 - 3000
    with pytest.raises(ValueError, match="partition_start_ms"):
        SimParams(nodes=10, partition_start_ms=5000, partition_ms=3000).check()


def test_radio_queue_limit_drops_what_does_not_fit():
    # five messages from one node at once: its radio holds one frame, the
    # other four are refused (as ESP-NOW's driver refuses a send when full)
    p = dict(nodes=12, topology="complete", messages=5, interval_ms=0, source=0)
    unlimited = _run(["flood"], **p)["results"]["flood"]
    limited = _run(["flood"], txq_limit=1, **p)["results"]["flood"]
    assert unlimited["txq_dropped"] == 0 and unlimited["delivery_ratio"] == 1.0
    assert limited["txq_dropped"] >= 4
    assert limited["delivery_ratio"] < 1.0
