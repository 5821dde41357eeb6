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
