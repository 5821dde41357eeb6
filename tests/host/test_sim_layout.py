"""The simulator's rooms one by one: the event loop and its handler table,
the node host, the channel (collisions, half duplex, loss, ACK/retry), the
books, the scenarios' shared CLI helper, and the names other code imports."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from rumor_host.sim.accounting import Ledger
from rumor_host.sim.channel import Tx
from rumor_host.sim.engine import Engine, SimParams, build_scenario
from rumor_host.sim.events import KINDS, PUBLISH, TICK, TX_END, EventLoop
from rumor_host.sim.node import NodeHost
from rumor_host.sim.strategies import STRATEGIES


def _engine(**kw) -> Engine:
    """An engine whose state is set up (hosts, channel, books) but not booted."""
    p = dict(nodes=3, topology="line", messages=1, source=0)
    p.update(kw)
    eng = Engine(build_scenario(SimParams(**p)), STRATEGIES["flood"])
    eng._setup()
    return eng


# -- the event loop --------------------------------------------------------------------

def test_event_loop_orders_by_time_then_by_scheduling():
    loop = EventLoop()
    seen = []

    def rec(name):
        return lambda t, v, arg: seen.append((name, t, v, arg, loop.now))

    handlers = [rec(k) for k in KINDS]
    loop.at(50, TICK, 1, "b")
    loop.at(10, PUBLISH, 0, "a")
    loop.at(50, TX_END, 2, "c")  # same time as the TICK: after it, scheduled later
    loop.at(99, TICK, 3, "late")  # after the end: never handled
    loop.run(handlers, end_us=60)
    assert seen == [("publish", 10, 0, "a", 10), ("tick", 50, 1, "b", 50),
                    ("tx_end", 50, 2, "c", 50)]
    assert loop.steps == 3


def test_handler_table_has_one_handler_per_kind():
    eng = _engine()
    table = eng.handlers()
    assert len(table) == len(KINDS)
    for kind, h in zip(KINDS, table, strict=True):
        assert h.__name__ == f"_on_{kind}"
        assert h.__doc__ is None or len(h.__doc__) > 10


def test_stale_events_are_dropped_by_their_handlers():
    eng = _engine()
    eng._start()
    h = eng.hosts[1]
    h.epoch += 1  # as after a reboot: what the old boot scheduled is stale
    before = (h.tick_at, len(eng.loop.heap))
    eng._on_tick(h.tick_at, 1, h.epoch - 1)
    eng._on_tx_try(0, 1, h.epoch - 1)
    assert (h.tick_at, len(eng.loop.heap)) == before


# -- the node host ------------------------------------------------------------------------

def test_node_host_has_slots_and_a_clock_of_its_own():
    eng = _engine()
    h = eng.hosts[2]
    assert isinstance(h, NodeHost) and not hasattr(h, "__dict__")
    with pytest.raises(AttributeError):
        h.colour = "red"  # type: ignore[attr-defined]
    eng.loop.now = 5_000_000
    assert h.clock() == (5_000_000 + h.off) // 1000
    assert eng.hosts[0].clock() != h.clock()  # boards booted at different times


def test_radio_queue_limit_refuses_what_does_not_fit():
    eng = _engine(txq_limit=2)
    h = eng.hosts[0]
    for i in range(5):
        h.send(bytes([1, i]), -1)
    assert [f for f, _d, _a, _dl in h.txq] == [b"\x01\x00", b"\x01\x01"]
    assert eng.ledger.ctr["txq_dropped"] == 3
    # an idle radio was woken once: one TX_TRY pending
    assert h.busy and len(eng.loop.heap) == 1


def test_duty_cycle_budget_waits_and_refuses():
    eng = _engine(radio="lora", sf=12)
    h = eng.hosts[0]
    assert h.duty_wait(0, 2_000_000) == 0  # 2 s of a 36 s hourly budget
    assert h.duty_wait(0, 40_000_000) == -1  # longer than the whole budget: never
    t = 3_000_000
    while True:  # spend the rest
        w = h.duty_wait(t, 2_000_000)
        if w:
            break
        t += 3_000_000
    assert w > 0 and t < 60_000_000  # 18 frames of 2 s, then a wait


# -- the channel ---------------------------------------------------------------------------

def test_overlapping_frames_collide_at_the_receiver_in_between():
    eng = _engine()  # a line 0 - 1 - 2
    ch = eng.channel
    h0, h1, h2 = eng.hosts
    a = Tx(b"\x11a", -1, 0, False, 0)
    b = Tx(b"\x11b", -1, 0, False, 0)
    ch.transmit(h0, a, 0, 100)
    ch.transmit(h2, b, 50, 100)  # 0 and 2 don't hear each other: no carrier sense helps
    assert a.bad == {1} and b.bad == {1}
    assert list(ch.hearers(h0, a)) == []
    assert list(ch.hearers(h2, b)) == []
    assert eng.ledger.ctr["collided"] == 2


def test_half_duplex_a_sender_hears_nothing():
    eng = _engine()
    ch = eng.channel
    h0, h1, h2 = eng.hosts
    a = Tx(b"\x11a", -1, 0, False, 0)
    ch.transmit(h0, a, 0, 100)
    mine = Tx(b"\x11m", -1, 0, False, 0)
    ch.transmit(h1, mine, 40, 100)  # 1 starts sending while it hears 0
    assert 1 in a.bad  # what it was hearing is lost
    assert mine.bad == {0}  # 0 is still sending: it can't hear 1
    assert [h1.nb[i] for i in ch.hearers(h1, mine)] == [2]


def test_loss_is_drawn_per_reception():
    eng = _engine(loss=0.3)
    ch = eng.channel
    h1 = eng.hosts[1]
    heard = 0
    for k in range(1000):
        tx = Tx(b"\x11x", -1, 0, False, 0)
        ch.transmit(h1, tx, k * 1000, 100)
        heard += len(list(ch.hearers(h1, tx)))
    lost = eng.ledger.ctr["lost"]
    assert heard + lost == 2000 and eng.ledger.ctr["collided"] == 0
    assert 450 < lost < 750


def test_unacknowledged_unicast_is_retried_then_given_up():
    eng = _engine()  # ESP-NOW: 7 retries
    ch = eng.channel
    h0, h1, _h2 = eng.hosts
    h1.up = False
    h0.txq.append((b"\x13r", 1, 0, False))
    attempts = 0
    t = 0
    while h0.txq:
        frame, dest, att, dlv = h0.txq.popleft()
        tx = Tx(frame, dest, att, dlv, 0)
        ch.transmit(h0, tx, t, 300)
        ok = ch.unicast_heard(h0, tx)
        assert not ok
        t = ch.acknowledge(h0, tx, ok, t + 300)
        attempts += 1
    assert attempts == 1 + ch.retries == 8
    assert eng.ledger.ctr["unacked"] == 1 and eng.ledger.ctr["ack_airtime_us"] == 0
    # heard and acknowledged: no retry, the ACK's airtime counted
    h1.up = True
    tx = Tx(b"\x13r", 1, 0, False, 0)
    ch.transmit(h0, tx, t, 300)
    assert ch.unicast_heard(h0, tx)
    ch.acknowledge(h0, tx, True, t + 300)
    assert not h0.txq and eng.ledger.ctr["ack_airtime_us"] == ch.ack_us > 0


# -- the books ------------------------------------------------------------------------------

def test_ledger_counts_frames_by_type_and_airtime_by_node():
    led = Ledger(3, 1, duty=0.01)
    led.on_air(0, b"\x11\x00", 0, 500, 10)  # DATA (version 1, type 1)
    led.on_air(0, b"\x12\x00\x00", 1, 700, 20)  # DIGEST, a retry
    led.on_air(2, b"\x13", 0, 100, 30)  # REQUEST
    c = led.ctr
    assert (c["frames"], c["data"], c["digest"], c["request"], c["retries"]) == (3, 1, 1, 1, 1)
    assert c["bytes"] == 6 and c["airtime_us"] == 1300
    assert led.air == [1200, 0, 100]
    assert led.txlog[0] == [(10, 500), (20, 700)]


# -- the names other code imports, and the scenarios' CLI -------------------------------------

def test_old_import_paths_still_work():
    from rumor_host.sim import SimParams as P
    from rumor_host.sim import simulate as s
    from rumor_host.sim.engine import (  # noqa: F401
        Actor,
        Hooks,
        Scenario,
        airtime_summary,
        duty_budget_check,
        simulate,
    )
    from rumor_host.sim.fairness import FairnessParams, run  # noqa: F401
    from rumor_host.sim.resilience import FORGE_KINDS, NETWORK_KEY, Forger, ResilienceParams  # noqa: F401
    from rumor_host.sim.scenarios import fairness, resilience

    assert P is SimParams and s is simulate
    assert fairness.FairnessParams is FairnessParams and resilience.Forger is Forger


def test_fairness_learns_of_evictions_through_the_core_hook():
    from rumor_host.sim.scenarios.fairness import FairnessParams, Watch

    w = Watch(FairnessParams(), flooder=4, normal=[1, 2])
    hooked = []

    class FakeGossip:
        def on_evict(self, cb):
            hooked.append(cb)

    w.on_boot(0, 0, FakeGossip(), 0)
    assert hooked == [w.on_evict]
    normal = bytes(8) + (2).to_bytes(4, "big") + b"\x00\x07"  # origin node 1 (id 2), seq 7
    flood = bytes(8) + (5).to_bytes(4, "big") + b"\x00\x01"  # the flooder, node 4 (id 5)
    w.now = 1234
    w.on_evict(normal, flood)
    w.on_evict(normal, normal)
    w.on_evict(flood, normal)  # a flood message evicted: not counted
    mid = (2 << 16) | 7
    assert w.evicted_at == {mid: [1234, 1234]}
    assert w.by_flood == {mid: [1234]}


@pytest.mark.parametrize("mod", ["resilience", "fairness"])
def test_scenario_commands_refuse_bad_seeds(mod):
    import importlib

    main = importlib.import_module(f"rumor_host.sim.scenarios.{mod}").main
    res = CliRunner().invoke(main, ["--seeds", "3-x"])
    assert res.exit_code == 2
    assert "--seeds" in res.output and "1-10" in res.output


def test_speed_run_merges_into_the_bench_files(tmp_path):
    import json

    from rumor_host.sim.bench import SPEED_HEAD, SPEED_KEY, merge_speed

    (tmp_path / "sim.json").write_text(json.dumps({"runs": {"espnow-n100-loss0.0": {"x": 1}}}))
    (tmp_path / "sim.md").write_text("# Simulator benchmark\n\n### a table\n\n## Targets\n\n- met\n")

    def rec(wall):
        return {"params": {"nodes": 10_000, "messages": 100, "degree": 10.0}, "wall_s": wall,
                "cpu_s": wall - 1, "load_1m_before": 1.5,
                "results": {"rumor": {"events": 3_575_948, "delivery_ratio": 0.999871}}}

    merge_speed(tmp_path, rec(70.5))
    merge_speed(tmp_path, rec(58.25))  # a second run replaces the first
    data = json.loads((tmp_path / "sim.json").read_text())
    assert set(data["runs"]) == {"espnow-n100-loss0.0", SPEED_KEY}
    assert data["runs"][SPEED_KEY]["wall_s"] == 58.25
    md = (tmp_path / "sim.md").read_text()
    assert md.count(SPEED_HEAD) == 1 and "### a table" in md and "- met" in md
    assert "10 000 nodes x 100 messages" in md and "58.25 s wall, 57.25 s CPU" in md
    assert "70.5" not in md and "3 575 948 events" in md


@pytest.mark.parametrize("mod", ["resilience", "fairness", "bench"])
def test_make_targets_entry_points_run(mod):
    # `make resilience`, `make fairness` and `make bench-sim` call these
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", f"rumor_host.sim.{mod}", "--help"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "--out" in res.stdout


def test_topologies_keep_the_points_they_drew():
    from rumor_host.sim.topology import make_topology

    for name in ("rgg", "complete", "clusters"):
        t = make_topology(name, 30, 6.0, 2)
        assert len(t.pos) == 30, name
        assert all(0.0 <= px <= 1.0 and 0.0 <= py <= 1.0 for px, py in t.pos), name
        assert [px for px, _py in t.pos] == t.x, name
    assert make_topology("grid", 9).pos == []  # (implied by the grid)
