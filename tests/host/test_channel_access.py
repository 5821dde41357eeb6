"""LoRa channel access and reception (rumor_host.sim.lora_access): CAD
timing and the adapter's backoff rule, capture, half duplex."""

import random

import pytest

from rumor_host.sim import lora_access as LA


class _Tx:
    """A stand-in for channel.Tx: identity is all AirState needs."""


def test_cad_timing_follows_the_adapter():
    # SF8/125 kHz: a symbol is 2.048 ms; 2 CAD symbols + 1 = 6.1 ms -> 7 ms
    assert LA.t_sym_us(8, 125_000) == pytest.approx(2048.0)
    assert LA.cad_duration_us(8, 125_000) == 7000
    assert LA.cad_slot_us(8, 125_000) == 8000
    # SF10: 4 symbols + 1 of 8.192 ms = 40.96 ms -> 41 ms
    assert LA.cad_duration_us(10, 125_000) == 41000
    # the adapter's own duration for the same chip settings
    from rumor.lora_cad import _C6_TABLE
    for sf in range(7, 13):
        assert LA.cad_symbols(sf) == _C6_TABLE[sf - 7][1]


def test_backoff_grows_and_is_forced_after_tries():
    b = LA.CadBackoff(8000, tries=4)
    r = random.Random(1).getrandbits
    waits = [b.after_cad(True, r) for _ in range(3)]
    # 1..2^3, 1..2^4, 1..2^5 slots
    for w, k in zip(waits, (3, 4, 5), strict=True):
        assert 8000 <= w <= (1 << k) * 8000 and w % 8000 == 0
    assert b.after_cad(True, r) == -2  # the 4th busy CAD in a row: goes anyway
    assert b.busy_run == 0
    b.after_cad(True, r)
    assert b.after_cad(False, r) == -1 and b.busy_run == 0


def test_backoff_window_is_capped_at_cw_max():
    b = LA.CadBackoff(1000, tries=100)
    seen = 0
    r = random.Random(3).getrandbits
    for _ in range(90):
        seen = max(seen, b.after_cad(True, r))
    assert seen <= (1 << LA.CW_MAX) * 1000
    assert seen > (1 << (LA.CW_MAX - 1)) * 1000  # the largest window is reached
    with pytest.raises(ValueError):
        LA.CadBackoff(1000, tries=0)


def test_capture_keeps_the_stronger_frame_locked_first():
    a = LA.AirState(keep_us=0)
    f1, f2 = _Tx(), _Tx()
    assert a.arrive(f1, 0, 100, -80, 6.0, False) == (True, None)
    # 7 dB weaker, arrives second: f1 keeps the receiver
    assert a.arrive(f2, 10, 120, -87, 6.0, False) == (False, None)
    assert a.locked is f1


def test_capture_too_close_or_stronger_second_loses_both():
    for second in (-83, -60):  # 3 dB weaker; 20 dB stronger but second
        a = LA.AirState(keep_us=0)
        f1, f2 = _Tx(), _Tx()
        a.arrive(f1, 0, 100, -80, 6.0, False)
        assert a.arrive(f2, 10, 120, second, 6.0, False) == (False, f1)
        assert a.locked is None


def test_no_capture_any_overlap_loses_both():
    a = LA.AirState(keep_us=0)
    f1, f2 = _Tx(), _Tx()
    a.arrive(f1, 0, 100, -60, None, False)
    assert a.arrive(f2, 10, 120, -99, None, False) == (False, f1)


def test_frame_over_lost_ones_needs_the_margin():
    a = LA.AirState(keep_us=0)
    f1, f2, f3, f4 = _Tx(), _Tx(), _Tx(), _Tx()
    a.arrive(f1, 0, 100, -80, 6.0, False)
    a.arrive(f2, 10, 300, -82, 6.0, False)  # both lost
    # f1 ended; f2 (lost) is still on air at -82
    assert a.arrive(f3, 150, 400, -78, 6.0, False) == (False, None)  # 4 dB: not enough
    a2 = LA.AirState(keep_us=0)
    a2.arrive(f1, 0, 100, -80, 6.0, False)
    a2.arrive(f2, 10, 300, -82, 6.0, False)
    assert a2.arrive(f4, 150, 400, -70, 6.0, False) == (True, None)  # 12 dB over f2
    # after everything ended, a frame is locked again
    assert a2.arrive(_Tx(), 1000, 1100, -99, 6.0, False)[0]


def test_half_duplex():
    a = LA.AirState(keep_us=0)
    f1 = _Tx()
    a.arrive(f1, 0, 100, -80, 6.0, False)
    assert a.sending(50) is f1  # starting to send loses what it was receiving
    assert a.locked is None
    # nothing that starts while it sends is heard
    assert a.arrive(_Tx(), 60, 200, -40, 6.0, True) == (False, None)
    assert a.sending(500) is None


def test_cad_sees_frames_on_air_for_a_symbol_of_its_window():
    a = LA.AirState(keep_us=50_000)
    a.arrive(_Tx(), 1000, 2000, -90, 6.0, False)
    sym = 50
    assert a.busy(1500, 1600, sym)  # on air
    assert a.busy(1900, 2500, sym)  # ends during the CAD, a symbol in
    assert not a.busy(1960, 2500, sym)  # only the last 40 us of it
    assert a.busy(0, 1100, sym)  # starts during the CAD, a symbol before its end
    assert not a.busy(0, 1030, sym)  # starts too late to be seen
    assert not a.busy(2000, 3000, sym)  # over before it
    assert not a.busy(0, 1000, sym)  # not yet
    # a frame long gone is pruned
    assert not a.busy(100_000, 101_000, sym) and a.frames == []
    # the listening part: SF8's 2 symbols of 2.048 ms
    assert LA.cad_listen_us(8, 125_000) == pytest.approx(4096.0)


# -- in the simulator ----------------------------------------------------------

def _lora(strategies, **kw):
    from rumor_host.sim.engine import SimParams, simulate
    p = dict(nodes=12, topology="complete", radio="lora", sf=7, messages=8, seed=1)
    p.update(kw)
    return simulate(SimParams(**p), strategies)["results"]


def test_cad_defers_and_cuts_collisions():
    on = _lora(["flood"], cad=True)["flood"]
    off = _lora(["flood"], cad=False)["flood"]
    assert off["cad_busy"] == 0 and on["cad_busy"] > 0
    # everyone hears everyone: with CAD, frames that start within one CAD of
    # each other, or go after cad_tries busy CADs, still collide
    assert on["collided_rx_per_message"] < 0.8 * off["collided_rx_per_message"]
    assert on["delivery_ratio"] >= off["delivery_ratio"]


def test_capture_saves_receptions():
    # pure ALOHA flood on LoRa: with capture, more nodes get each message
    # (and so more relay it)
    for seed in (1, 2, 3):
        kw = dict(nodes=30, topology="rgg", degree=8, cad=False, seed=seed, messages=10)
        on = _lora(["flood"], capture=True, **kw)["flood"]
        off = _lora(["flood"], capture=False, **kw)["flood"]
        assert on["delivery_ratio"] > off["delivery_ratio"]
        assert on["tx_per_message"] >= off["tx_per_message"]


def test_bad_access_params():
    from rumor_host.sim.engine import SimParams
    with pytest.raises(ValueError, match="cad_tries"):
        SimParams(cad_tries=0).check()
    with pytest.raises(ValueError, match="capture_db"):
        SimParams(capture_db=-1).check()
