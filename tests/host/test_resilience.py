"""Faults and attacks in the simulator (resilience.py) and the fairness demo
(fairness.py): small meshes, a second or two each, checked against ground
truth."""

from __future__ import annotations

import json

from click.testing import CliRunner

from rumor import Config, Gossip
from rumor_host.sim.engine import Engine, Hooks, SimParams, build_scenario
from rumor_host.sim.scenarios.attackers import FORGE_KINDS, Forger
from rumor_host.sim.scenarios.common import NETWORK_KEY
from rumor_host.sim.scenarios.fairness import FairnessParams
from rumor_host.sim.scenarios.fairness import run as run_fairness
from rumor_host.sim.scenarios.resilience import ResilienceParams, run
from rumor_host.sim.scenarios.resilience import main as resilience_main
from rumor_host.sim.strategies import STRATEGIES

# a small mesh: 4 messages before, during and after a 10 s partition
SMALL = dict(nodes=30, partition_start_ms=20_000, partition_for_ms=10_000, messages_per_phase=4,
             publishers=4, end_ms=90_000)


def _rx(r, who, typ):
    return r["attacker_frames_at_receivers"].get(who, {}).get(typ, {})


def test_forger_frames_are_all_dropped():
    r = run(ResilienceParams(**SMALL, replayer=False, reboot_fraction=0.0, loss=0.1))
    assert r["delivery_ratio"] == 1.0
    assert r["forged_deliveries"] == 0
    assert r["core_totals"]["bad_tag"] > 0
    assert sum(_rx(r, "forger", t).get("bad_tag", 0) for t in ("data", "digest", "request")) > 0
    sent = r["attackers"]["forger"]
    assert all(sent[k] > 0 for k in FORGE_KINDS)  # every kind of forgery was tried
    # nothing the forger sent was delivered or acted upon: dropped for its tag,
    # for a stamp too old (a copied genuine frame), as a copy of a known id
    # (before the tag is checked), or as an echo
    for typ in ("data", "digest", "request"):
        outs = _rx(r, "forger", typ)
        assert outs, typ
        assert set(outs) <= {"bad_tag", "stale", "duplicates", "own_sender", "malformed"}, (typ, outs)
        # (a guessed stamp is mostly too old: dropped as stale before hashing)
        assert outs.get("bad_tag", 0) + outs.get("stale", 0) > 0
    # the honest nodes' own frames all pass: only the forger's frames fail
    assert r["core_totals"]["bad_tag"] == sum(_rx(r, "forger", t).get("bad_tag", 0)
                                              for t in ("data", "digest", "request"))


def test_forged_frames_fail_the_tag_in_the_core():
    # one of each forgery, straight into one keyed core: none delivered, all counted
    now = [0]
    g = Gossip(Config(), 7, clock=lambda: now[0], rand=lambda b: 1, key=NETWORK_KEY)
    g.on_forward(lambda f, to: None)
    got = []
    g.on_message(lambda m: got.append(m.id))
    g.start()
    g.set_net_time(1000)
    f = Forger(0, 99, lambda: now[0], lambda b: 0, lambda fr, to: None, seed=3)
    f.start()
    for _ in range(3 * len(FORGE_KINDS)):
        _kind, frame = f.forge()
        g.receive(frame, b"\x02\x00\x00\x00\x00\x63", -70)
    assert got == []
    assert g.stats()["bad_tag"] + g.stats()["malformed"] == 3 * len(FORGE_KINDS)


def test_replays_of_expired_frames_are_refused():
    # messages live 20 s; ids are forgotten 40..70 s after they were first seen,
    # so a DATA replay 80 s later meets no dedup entry and only its stamp can
    # refuse it; DIGEST/REQUEST replays 25 s and 80 s later are past the 10 s window
    rp = ResilienceParams(**dict(SMALL, end_ms=160_000), forger=False, reboot_fraction=0.0,
                          loss=0.1, max_message_age_ms=20_000,
                          replay_delays_ms=(1000, 25_000, 80_000), replay_every=1)
    r = run(rp)
    assert r["replayed_deliveries"] == 0
    assert r["forged_deliveries"] == 0
    # (messages published during the partition expire before it heals: 20 s life)
    assert r["delivery_by_phase"]["before"]["ratio"] == 1.0
    assert r["delivery_by_phase"]["after"]["ratio"] == 1.0
    assert r["replayer_sent"]["stale"] > 0
    assert r["core_totals"]["stale"] > 0
    assert _rx(r, "replayer", "data").get("stale", 0) > 0
    assert _rx(r, "replayer", "digest").get("stale", 0) > 0
    # what got through was young: replays 1 s after, of messages the node lacked
    assert all(e["true_age_ms"] <= 20_000 for e in r["replayed_examples"])


def test_rebooted_nodes_recover_and_restore_the_network_clock():
    r = run(ResilienceParams(**SMALL, replayer=False, forger=False, reboot_fraction=0.3,
                             loss=0.1))
    assert r["rebooted_nodes"] == 9  # 30% of 30
    assert r["delivery_ratio"] == 1.0
    # what was published while a node was off reached it in its new boot
    pw = r["published_while_down"]
    assert pw["expected"] > 0
    assert pw["delivered_after_reboot"] == pw["expected"]
    assert r["redelivered_after_reboot"] > 0  # RAM lost: live messages come again
    assert r["replayed_deliveries"] == 0


def test_net_time_saved_every_period_is_restored_at_reboot():
    # a line of 6, node 2 reboots at 5 s; clocks saved every 2 s from each boot
    sp = SimParams(nodes=6, topology="line", messages=4, source=0, interval_ms=1000,
                   settle_ms=10_000, churn=0.0)
    sc = build_scenario(sp)
    sc.reboots = [(5_000_000, 2)]
    seen = []

    def on_boot(v, boot, g, t):
        seen.append((v, boot, t, g.net_time()))

    hooks = Hooks(key=NETWORK_KEY, net_time0=5000, time_save_ms=2000, on_boot=on_boot)
    res = Engine(sc, STRATEGIES["rumor"], hooks).run()
    assert res["delivery_ratio"] == 1.0
    first = [s for s in seen if s[1] == 0]
    assert len(first) == 6 and all(nt == 5000 for _v, _b, _t, nt in first)
    (v, boot, t, nt), = [s for s in seen if s[1] == 1]
    assert (v, boot, t) == (2, 1, 7_000_000)  # down at 5 s, up 2 s later
    # restored: at least the clock at boot 0, behind the mesh's by the time
    # since its last save (< 2 s) plus the 2 s it was off
    mesh = 5000 + t // 64_000
    assert 5000 < nt <= mesh - 2000 // 64
    assert mesh - nt <= (2000 + 2000) // 64 + 1


def test_rebooted_node_refuses_a_just_expired_replay():
    # A publishes at 3 s; B delivers it, saves its clock at 63 s, goes down at
    # 118 s and comes back at 124 s with that clock, a minute behind.  Just
    # after the message expired (123 s), a replay of it (age reset) arrives
    # before B has been told the time: by B's clock it is only a minute old.
    # B quarantines it, asks, and drops it once A's answer sets its clock.
    now = [0]
    cfg = Config(max_message_age_ms=120_000)

    def node(nid):
        g = Gossip(cfg, nid, clock=lambda: now[0], rand=lambda b: 7 + nid, key=NETWORK_KEY)
        sent: list[bytes] = []
        got: list[int] = []
        g.on_forward(lambda f, to: sent.append(bytes(f)))
        g.on_message(lambda m: got.append(m.id))
        g.start()
        g.set_net_time(1_000_000)
        return g, sent, got

    a, sent_a, _ = node(1)
    b, _, got_b = node(2)
    now[0] = 3_000
    a.tick()  # nobody to tell A the time: it takes its own
    a.publish(b"hello")
    frame = sent_a[-1]
    assert b.receive(frame, b"\x01", -80) is False  # (B does not know the time yet either)
    b.tick()
    assert len(got_b) == 1
    now[0] = 63_000
    saved = b.net_time()  # node.py's save, every 60 s
    now[0] = 124_000  # down at 118 s, up at 124 s: a fresh engine, the saved clock
    b2, sent_b2, got_b2 = node(2)
    b2.set_net_time(saved)
    now[0] = 124_100
    replay = bytearray(frame)
    replay[14:16] = b"\0\0"  # its age (not covered by the tag) reset
    assert not b2.receive(bytes(replay), b"\x09", -80)
    del sent_a[:]
    for _ in range(60):  # B asks for the time, A answers (echoing B's nonce)
        now[0] += 50
        a.tick()
        b2.tick()
        for f in sent_b2:
            a.receive(f, b"\x02", -80)
        del sent_b2[:]
        for f in sent_a:
            b2.receive(f, b"\x01", -80)
        del sent_a[:]
    assert b2.net_time() >= a.net_time() - 1
    assert got_b2 == []
    assert b2.stats()["stale"] >= 1


def test_fairness_on_beats_off():
    fp = FairnessParams(nodes=40, flood_rate=300, flood_from_ms=3000, flood_ms=3000, normal=6,
                        normal_every_ms=2000, normal_until_ms=10_000, end_ms=25_000)
    rep = run_fairness(fp)
    on, off = rep["cases"]["on"], rep["cases"]["off"]
    assert rep["on_beats_off"]
    assert on["normal_delivery_ratio"] > off["normal_delivery_ratio"] + 0.05
    assert on["normal_during_flood_delivery_ratio"] > off["normal_during_flood_delivery_ratio"]
    # the mechanisms did act: the flooder hit its quota and its neighbours' rate limits
    assert on["quota_evicted"] > 0 and on["rate_limited"] > 0
    assert off["quota_evicted"] == 0 and off["rate_limited"] == 0
    assert on["flood_messages"] == off["flood_messages"] == 900
    assert 0 < on["flood_airtime_share"] < 1
    # the core's on_evict hook reported evictions: without fairness the flood
    # pushes normal messages out of the rings
    assert off["normal_body_evictions_by_flood"] > 0
    assert off["normal_body_evictions"] >= off["normal_body_evictions_by_flood"]


def test_resilience_command_writes_json(tmp_path):
    out = tmp_path / "r.json"
    res = CliRunner().invoke(resilience_main, ["--nodes", "30", "--seeds", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "delivery_ratio" in res.output and "zero forged deliveries" in res.output
    data = json.loads(out.read_text())
    assert set(data["total"]["targets"]) == {"delivery >= 99.9% (every run)",
                                             "zero forged deliveries", "zero replayed deliveries"}
    assert data["definitions"]["delivery_ratio"].startswith("delivered pairs / expected pairs")
    assert len(data["runs"]) == 1
