"""Managed flooding as Meshtastic's firmware does it (rumor_host.sim.managed):
contention window from SNR, slot time, client and router delays, re-arm,
cancel on a copy heard."""

import random

import pytest

from rumor_host.sim import managed as M


def test_cw_is_arduino_map_of_the_snr():
    assert M.cw_from_snr(-20) == 3
    assert M.cw_from_snr(10) == 8
    assert M.cw_from_snr(-14) == 4  # 6 * 5 / 30 = 1
    assert M.cw_from_snr(-14.9) == 4  # truncated to -14 first
    assert M.cw_from_snr(16) == 9  # no clamping
    assert M.cw_from_snr(-26) == 2  # truncation toward zero: -30/30 = -1
    assert M.cw_from_snr(-27) == 2  # -35/30 -> -1
    assert M.cw_from_util(0) == 3 and M.cw_from_util(100) == 8 and M.cw_from_util(19) == 3


def test_slot_time_per_preset():
    # sub-GHz presets: floor(2.5 Tsym + 7.6) ms
    assert M.lora_slot_us(11, 250_000) == 28_000  # LONG_FAST
    assert M.lora_slot_us(7, 250_000) == 8_000  # SHORT_FAST
    assert M.lora_slot_us(12, 125_000) == 89_000  # LONG_SLOW
    assert M.lora_slot_us(8, 125_000) == 12_000
    assert M.lora_slot_us(10, 125_000) == 28_000
    assert M.lora_slot_us(11, 125_000) == 48_000
    # ESP-NOW: a data frame, DIFS and half the backoff window
    assert M.espnow_slot_us(920, 50, 20, 31) == 920 + 50 + 310


def test_client_and_router_delays():
    r = random.Random(5).getrandbits
    cl = [M.relay_slots(4, M.CLIENT, r) for _ in range(4000)]
    assert min(cl) == 16 and max(cl) == 16 + 15  # 2 CWmax + U[0, 2^4 - 1]
    ro = [M.relay_slots(4, M.ROUTER, r) for _ in range(4000)]
    assert min(ro) == 0 and max(ro) == 7  # U[0, 2 CW - 1]
    own = [M.own_slots(0.0, r) for _ in range(4000)]
    assert min(own) == 0 and max(own) == 7
    assert M.worst_slots(4) == 32
    # uniform: every value of the client window is drawn
    assert len(set(cl)) == 16


def test_far_nodes_relay_first():
    # a weak copy (far from the sender) gets a smaller window than a strong one
    far = M.cw_from_snr(M.snr_db(-99, 8))
    near = M.cw_from_snr(M.snr_db(-70, 8))
    assert far < near
    assert M.snr_db(-100, 8) == -10.0  # the SF8 floor at the range edge
    assert M.snr_db(-40, 8) == M.SNR_CEIL
    assert M.snr_db(-100, 0) == -20.0  # ESP-NOW


def test_rearm_is_capped():
    assert M.rearm(1000, 500, 10_000) == 1500
    assert M.rearm(1000, 50_000, 10_000) == 21_000


def test_pending_queue_order_and_cancel():
    q = M.PendingQueue()
    q.push(300, b"a", b"k1", 5)
    q.push(100, b"b", b"k2", 4)
    q.push(200, b"c", b"k1", -1)  # own message of id k1: never cancelled
    assert q.next_at() == 100 and q.head()[2] == b"b"
    assert q.cancel(b"k1") == 1 and len(q) == 2 and q.cancelled == 1
    q.delay_head(400)
    assert q.next_at() == 200 and q.pop()[2] == b"c"
    assert q.pop()[2] == b"b" and q.next_at() == -1
    assert q.cancel(b"zz") == 0


@pytest.mark.parametrize("n", [1, 2, 3, 7, 16, 256])
def test_below_is_in_range(n):
    r = random.Random(n).getrandbits
    vals = {M._below(n, r) for _ in range(2000)}
    assert vals == set(range(n)) if n <= 16 else (min(vals) >= 0 and max(vals) < n)


# -- in the simulator ----------------------------------------------------------

def _run(strategies, **kw):
    from rumor_host.sim.engine import SimParams, simulate
    p = dict(nodes=12, topology="complete", messages=6, seed=1)
    p.update(kw)
    return simulate(SimParams(**p), strategies)["results"]


@pytest.mark.parametrize("radio", ["espnow", "lora"])
def test_hop_limit_3_and_7_on_a_line(radio):
    # a line of 12 from node 0: hop limit h reaches h + 1 hops
    r = _run(["managed-flood", "managed-flood-7"], nodes=12, topology="line", source=0,
             radio=radio, messages=3)
    assert r["managed-flood"]["delivery_ratio"] == pytest.approx(4 / 11)
    assert r["managed-flood-7"]["delivery_ratio"] == pytest.approx(8 / 11)
    # every node that has it relays but the last one it reaches
    assert r["managed-flood"]["tx_per_message"] == 4
    assert r["managed-flood"]["relays_cancelled"] == 0


@pytest.mark.parametrize("radio", ["espnow", "lora"])
def test_one_copy_cancels_on_a_complete_mesh(radio):
    r = _run(["managed-flood", "flood"], radio=radio)
    m = r["managed-flood"]
    assert m["delivery_ratio"] == 1.0
    # the source and the first relay; the copy heard cancels the 10 others
    # (a second relay only when two waits end within a slot of each other)
    assert m["tx_per_message"] <= 3
    assert m["relays_cancelled"] >= 6 * 8
    assert r["flood"]["tx_per_message"] == 12


def test_far_node_relays_first():
    # node 0 publishes; on the line 0-1-2 the only relay is node 1, and on a
    # small rgg the first relay is (mostly) one of the weakest hearers
    from rumor_host.sim import managed as Mg
    from rumor_host.sim.engine import Engine, SimParams, build_scenario
    from rumor_host.sim.strategies import STRATEGIES
    sc = build_scenario(SimParams(nodes=40, topology="rgg", degree=12, messages=20, seed=4,
                                  source=0, radio="lora", sf=7))
    relays = []
    eng = Engine(sc, STRATEGIES["managed-flood"])
    orig = Engine.hold

    def spy(self, h, frame):
        orig(self, h, frame)
        if h.rx_now is not None:
            relays.append((h.v, h.rx_now))
    Engine.hold = spy
    try:
        eng.run()
    finally:
        Engine.hold = orig
    assert relays
    windows = [Mg.cw_from_snr(Mg.snr_db(r, 7)) for _, r in relays]
    assert min(windows) < max(windows)  # the SNR spreads the windows


def test_seed_runs_to_eventual_delivery():
    r = _run(["seed", "flood"], nodes=30, topology="rgg", degree=6, loss=0.1, settle_ms=500,
             messages=5)
    s, f = r["seed"], r["flood"]
    # the seed's run goes on for max_message_age_ms (60 s) after the last publish
    assert s["sim_ms"] >= 1000 + 4 * 100 + 60000
    assert f["sim_ms"] == 1000 + 4 * 100 + 500
    assert s["delivery_ratio"] >= s["delivery_ratio_at_settle"]
    assert s["delivery_ratio"] > 0.99 > s["delivery_ratio_at_settle"]
    assert f["delivery_ratio"] == f["delivery_ratio_at_settle"]
