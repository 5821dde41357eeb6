# The LoRa adapter (rumor/radio_lora.py) over a fake of micropython-lib's
# `lora` package and of `machine` (fake_lora.py) installed in sys.modules: the
# adapter builds its modem from a board's radio and pins objects exactly as on
# the board.  Gossip engines on top; the asyncio loop is stepped by hand.
import asyncio

import fake_lora
import fwtest

from rumor import Config

# boards/heltec-v2.json and boards/heltec-v3.json, as the firmware gets them.
HELTEC_V2_RADIO = {"kind": "lora", "modem": "sx1276", "freq_khz": 868100, "sf": 9, "bw": "125",
                   "coding_rate": 5, "output_power": 14, "preamble_len": 8,
                   "tx_ant": "PA_BOOST", "region": "EU868"}
HELTEC_V2_PINS = {"spi": 1, "sck": 5, "mosi": 27, "miso": 19, "cs": 18, "reset": 14,
                  "dio0": 26, "dio1": 35, "vext": 21}
HELTEC_V3_RADIO = {"kind": "lora", "modem": "sx1262", "freq_khz": 868100, "sf": 9, "bw": "125",
                   "coding_rate": 5, "output_power": 14, "preamble_len": 8,
                   "dio2_rf_sw": True, "dio3_tcxo_millivolts": 1800, "region": "EU868"}
HELTEC_V3_PINS = {"spi": 1, "sck": 9, "mosi": 10, "miso": 11, "cs": 8, "reset": 12,
                  "busy": 13, "dio1": 14}


def _setup(boards, links, clock):
    """boards: list of (radio cfg, pins); links: (i, j, rssi)."""
    fake_lora.install()
    from rumor.radio_lora import LoRaRadio

    for i, j, rssi in links:
        fake_lora.ether.link(i, j, rssi)
    rand = fwtest.seeded_rand(3)
    radios, engines, inboxes = [], [], []
    for i, (cfg, pins) in enumerate(boards):
        r = LoRaRadio(cfg, pins, clock=clock.read)
        box = []
        g = fwtest.engine_on(r, Config.small(mode="flood", mtu=255, max_payload=200), 0x200 + i,
                             clock, rand, box)
        radios.append(r)
        engines.append(g)
        inboxes.append(box)
    return radios, engines, inboxes


def _pump(clock, radios, engines, before, steps=60, ms=20):
    fwtest.pump_radios(clock, radios, engines, before, steps, ms)


def test_modem_built_from_board_files():
    try:
        clock = fwtest.Clock(0)
        radios, _e, _i = _setup([(HELTEC_V2_RADIO, HELTEC_V2_PINS),
                                 (HELTEC_V3_RADIO, HELTEC_V3_PINS)], [], clock)
        m1, m2 = fake_lora.ether.modems
        assert type(m1).__name__ == "AsyncSX1276" and type(m2).__name__ == "AsyncSX1262"
        assert m1.pins["dio0"].id == 26 and m1.pins["cs"].id == 18 and m1.pins["reset"].id == 14
        assert m1.pins["spi"].sck.id == 5 and m1.pins["spi"].miso.id == 19
        assert m2.pins["busy"].id == 13 and m2.pins["dio1"].id == 14 and m2.pins["tcxo_mv"] == 1800
        assert m1.lora_cfg == {"freq_khz": 868100, "sf": 9, "bw": "125", "coding_rate": 5,
                               "output_power": 14, "preamble_len": 8, "tx_ant": "PA_BOOST"}
        assert "tx_ant" not in m2.lora_cfg and "region" not in m2.lora_cfg
        assert radios[0].duty.budget_ms == 36000 and radios[1].duty.budget_ms == 36000  # EU868: 1% of an hour
        assert radios[0].duty.window_ms == 3600000 and radios[0].dwell_ms == 0
    finally:
        fake_lora.uninstall()


def test_publish_delivered_to_two_others_with_relay():
    try:
        clock = fwtest.Clock(5000)
        # 0 - 1 - 2: 2 is out of 0's range, so it needs 1's rebroadcast.
        radios, engines, inboxes = _setup([(HELTEC_V2_RADIO, HELTEC_V2_PINS)] * 3,
                                          [(0, 1, -80), (1, 2, -95)], clock)
        _pump(clock, radios, engines, lambda: engines[0].publish(b"lora hello"))
        assert inboxes[1] == [(0x200, b"lora hello")], inboxes
        assert inboxes[2] == [(0x200, b"lora hello")], inboxes
        assert radios[0].stats()["tx_frames"] >= 1
        assert radios[2].stats()["last_rssi"] == -95
    finally:
        fake_lora.uninstall()


def test_rssi_passed_to_gossip():
    try:
        clock = fwtest.Clock(0)
        radios, engines, inboxes = _setup([(HELTEC_V3_RADIO, HELTEC_V3_PINS)] * 2,
                                          [(0, 1, -101)], clock)
        seen = []

        class Spy:
            def receive(self, frame, from_peer=None, rssi=0):
                seen.append((from_peer, rssi))
                return engines[1].receive(frame, from_peer, rssi)

            def tick(self):
                engines[1].tick()

        spy = Spy()
        _pump(clock, [radios[0], radios[1]], [engines[0], spy], steps=3,
              before=lambda: engines[0].publish(b"s"))
        assert seen and seen[0] == (None, -101), seen
        assert inboxes[1] == [(0x200, b"s")]
    finally:
        fake_lora.uninstall()


def test_rx_packet_reused_for_equal_lengths():
    try:
        clock = fwtest.Clock(0)
        radios, engines, _i = _setup([(HELTEC_V2_RADIO, HELTEC_V2_PINS)] * 2, [(0, 1, -70)], clock)
        m1 = fake_lora.ether.modems[1]

        async def main():
            t = asyncio.create_task(radios[1].run(engines[1]))
            await asyncio.sleep(0)
            for k in range(3):
                await fake_lora.ether.modems[0].send(bytes([0x10 + k]) * 24)
                for _ in range(3):
                    await asyncio.sleep(0)
            t.cancel()
            await asyncio.sleep(0)

        asyncio.run(main())
        assert radios[1].stats()["rx_frames"] == 3
        assert m1.allocated == 1, m1.allocated  # one RxPacket for three same-size frames
    finally:
        fake_lora.uninstall()


# -- duty cycle: deferred, never exceeded -------------------------------------------
REGION_NAMES = ("EU868", "EU868-G3", "EU433", "US915", "AU915", "AS923", "IN865")


class _Sink:  # a gossip engine that ignores what it hears
    def receive(self, frame, from_peer=None, rssi=0):
        return None


class _Sleeper:
    """sleep_ms for the tx task: notes the wait and moves the test clock on by it."""

    def __init__(self, clock):
        self.clock = clock
        self.asked = []

    async def sleep_ms(self, ms):
        self.asked.append(ms)
        self.clock.advance(ms)
        await asyncio.sleep(0)


class _Gate:
    """sleep_ms for the tx task that notes the wait and holds it until wake()."""

    def __init__(self):
        self.asked = []
        self._ev = None

    async def sleep_ms(self, ms):
        self.asked.append(ms)
        self._ev = asyncio.Event()
        await self._ev.wait()

    def wake(self):
        self._ev.set()


def _radio(cfg, clock, sleep_ms=None):
    """A LoRaRadio on a fake modem whose sends take their airtime on clock."""
    fake_lora.install()
    fake_lora.ether.clock = clock
    from rumor.radio_lora import LoRaRadio

    return LoRaRadio(cfg, HELTEC_V2_PINS, clock=clock.read, sleep_ms=sleep_ms)


def _drive(radio, until, steps=5000, between=None):
    """Run radio.run() until until() holds (at most steps loop turns);
    between(k), if given, runs after turn k."""

    async def main():
        t = asyncio.create_task(radio.run(_Sink()))
        for k in range(steps):
            await asyncio.sleep(0)
            if between is not None:
                between(k)
            if until():
                break
        t.cancel()
        await asyncio.sleep(0)

    asyncio.run(main())


def _max_window_airtime(onair, window):
    """The most airtime (ms) that any window of `window` ms holds: the sum
    is piecewise linear in the window's start, so the most is at a window
    that starts at a frame's start or ends at a frame's end."""
    best = 0
    for a in [s for _m, s, _e in onair] + [e - window for _m, _s, e in onair]:
        b = a + window
        tot = 0
        for _m, s, e in onair:
            lo = s if s > a else a
            hi = e if e < b else b
            if hi > lo:
                tot += hi - lo
        if tot > best:
            best = tot
    return best


def test_burst_far_over_budget_is_all_sent_and_no_hour_exceeds_it():
    try:
        clock = fwtest.Clock(12345)
        sleeper = _Sleeper(clock)
        # EU868 g1 preset (1% of any hour: 36 s) at SF12, where a 200-byte frame
        # takes about 7.2 s: 32 of them are over six hours' budget.
        cfg = dict(HELTEC_V2_RADIO, sf=12, tx_queue=32)
        r = _radio(cfg, clock, sleeper.sleep_ms)
        air = r.airtime_ms(200)
        assert 7000 < air < 7500, air
        assert r.duty.budget_ms == 36000
        frames = [bytes([0x40 + k]) * 200 for k in range(32)]  # (no frame type: their bytes stay as they are)
        assert [r.send(f, None) for f in frames] == [True] * 32  # deferred, none refused
        assert r.stats()["duty_used_ms"] == 0  # charged on air, not when queued
        _drive(r, lambda: len(fake_lora.ether.sent) == 32)
        assert [d for _m, d in fake_lora.ether.sent] == frames  # all of them, in order
        onair = fake_lora.ether.onair
        assert _max_window_airtime(onair, 3600000) <= 36000
        assert _max_window_airtime(onair, 3600000) >= 36000 - air  # and the budget was used
        per_hour = 36000 // air
        st = r.stats()
        assert st["tx_frames"] == 32 and st["tx_queue_drops"] == 0 and st["tx_queued"] == 0, st
        assert st["tx_deferred"] == (32 - 1) // per_hour, st
        # One sleep per deferral, as long as the buckets said: no polling.
        assert len(sleeper.asked) == st["tx_deferred"] and min(sleeper.asked) > 0, sleeper.asked
        assert 3600000 - per_hour * air <= st["tx_defer_max_ms"] <= 3660000, st
        assert 0 < st["duty_used_ms"] <= st["duty_budget_ms"] == 36000, st
    finally:
        fake_lora.uninstall()


def test_nothing_goes_on_air_while_over_budget():
    try:
        clock = fwtest.Clock(0)
        gate = _Gate()
        # (no CAD: its few ms per frame would blur the exact times checked here;
        # the duty cycle with CAD on: test_lora_cad.py)
        cfg = dict(HELTEC_V2_RADIO, duty_cycle=0.001, duty_window_ms=600000, cad=False)  # 600 ms / 10 min
        r = _radio(cfg, clock, gate.sleep_ms)
        air = r.airtime_ms(30)
        assert 200 < air < 260, air  # SF9 BW125 CR4/5, 30 bytes: ~227 ms; two fit in 600
        assert [r.send(bytes([k]) * 30, None) for k in range(3)] == [True] * 3
        sent = fake_lora.ether.sent
        seen = []

        def step(k):
            if k == 10:  # the loop has settled: two frames out, the third held back
                seen.append((len(sent), clock.t, list(gate.asked), r.stats()))
                clock.t = 609999  # a millisecond early: still over budget
                gate.wake()
            elif k == 20:  # one more (short) sleep, nothing sent
                seen.append((len(sent), clock.t, list(gate.asked), r.stats()))
                clock.t = 610000
                gate.wake()

        _drive(r, lambda: len(sent) == 3, steps=50, between=step)
        (n1, t1, asked1, st1), (n2, _t2, asked2, st2) = seen
        assert n1 == 2 and t1 == 2 * air, seen[0]
        assert st1["tx_deferred"] == 1 and st1["duty_used_ms"] == 2 * air, st1
        assert st1["tx_queued"] == 1, st1
        # The window has 60 buckets of 10 s and keeps one more: the two frames
        # (in the first bucket) leave it 610 s after the start.
        assert asked1 == [610000 - 2 * air], asked1
        assert n2 == 2 and asked2 == [610000 - 2 * air, 1] and st2["tx_deferred"] == 1, seen[1]
        assert len(sent) == 3 and len(gate.asked) == 2, gate.asked
        st = r.stats()
        assert st["tx_deferred"] == 1 and st["tx_defer_max_ms"] == 610000 - 2 * air, st
        assert st["duty_used_ms"] == air, st
    finally:
        fake_lora.uninstall()


def test_queue_bound_and_mtu():
    try:
        clock = fwtest.Clock(0)
        sleeper = _Sleeper(clock)
        r = _radio(HELTEC_V2_RADIO, clock, sleeper.sleep_ms)
        assert r.send(bytes(256), None) is False and r.stats()["tx_too_big"] == 1
        ok = [r.send(bytes([k]) * 20, None) for k in range(6)]  # nothing drains: queue of 4
        assert ok == [True] * 4 + [False] * 2, ok
        assert r.stats()["tx_queue_drops"] == 2 and r.stats()["tx_queued"] == 4
        _drive(r, lambda: len(fake_lora.ether.sent) == 4)
        assert [d[0] for _m, d in fake_lora.ether.sent] == [0, 1, 2, 3]  # the first four, in order
        assert r.send(bytes(20), None) is True  # room again
        st = r.stats()
        assert st["tx_queue_drops"] == 2 and st["tx_deferred"] == 0 and sleeper.asked == [], st
    finally:
        fake_lora.uninstall()


def test_region_presets():
    fake_lora.install()
    try:
        from rumor.radio_lora import REGIONS, LoRaRadio, duty_of

        assert tuple(row[0] for row in REGIONS) == REGION_NAMES
        hour = 3600000
        for region, freq, want in (("EU868", 868100, (0.01, hour, 0)),
                                   ("EU868-G3", 869525, (0.1, hour, 0)),
                                   ("EU433", 433175, (0.1, hour, 0)),
                                   ("US915", 902300, (1, hour, 400)),
                                   ("AU915", 916800, (1, hour, 400)),
                                   ("AS923", 923200, (0.01, hour, 400)),
                                   ("IN865", 865985, (1, hour, 0))):
            got = duty_of({"region": region, "freq_khz": freq, "bw": "125"})
            assert got == want, (region, got)
        # Explicit figures override the region's; no region at all: 1% of an hour.
        assert duty_of({"region": "EU868", "duty_cycle": 0.005, "duty_window_ms": 600000}) == \
            (0.005, 600000, 0)
        assert duty_of({"region": "US915", "duty_cycle": 0.02}) == (0.02, hour, 400)
        assert duty_of({}) == (0.01, hour, 0)
        g3 = LoRaRadio(dict(HELTEC_V2_RADIO, region="EU868-G3", freq_khz=869525), HELTEC_V2_PINS,
                       clock=fwtest.Clock(0).read)
        assert g3.duty.budget_ms == 360000 and g3.duty.limited  # 10% of an hour
        us = LoRaRadio(dict(HELTEC_V2_RADIO, region="US915", freq_khz=915000), HELTEC_V2_PINS,
                       clock=fwtest.Clock(0).read)
        assert not us.duty.limited and us.dwell_ms == 400 and us.stats()["duty_budget_ms"] == -1
    finally:
        fake_lora.uninstall()


def test_unknown_region_or_channel_outside_it_raises():
    fake_lora.install()
    try:
        from rumor.radio_lora import LoRaRadio, duty_of

        e = fwtest.raises(ValueError, LoRaRadio, dict(HELTEC_V2_RADIO, region="EU915"),
                          HELTEC_V2_PINS, clock=fwtest.Clock(0).read)
        msg = str(e)
        assert "EU915" in msg, msg
        for name in REGION_NAMES:
            assert name in msg, msg
        assert fake_lora.ether.modems == []  # refused before touching the radio
        # 869.525 MHz is sub-band g3, not g1: EU868's 1% would be the wrong rule
        e = fwtest.raises(ValueError, duty_of, {"region": "EU868", "freq_khz": 869525, "bw": "125"})
        assert "EU868" in str(e) and "869525" in str(e), str(e)
        # a 250 kHz channel at 868.5 MHz pokes out of 868.0-868.6
        fwtest.raises(ValueError, duty_of, {"region": "EU868", "freq_khz": 868500, "bw": "250"})
        assert duty_of({"region": "EU868", "freq_khz": 868475, "bw": "250"})[0] == 0.01
    finally:
        fake_lora.uninstall()


def test_dwell_time_refuses_longer_frames_without_duty_limit():
    try:
        clock = fwtest.Clock(0)
        sleeper = _Sleeper(clock)
        r = _radio(dict(HELTEC_V2_RADIO, region="US915", freq_khz=915000, tx_queue=8), clock,
                   sleeper.sleep_ms)
        n = r.max_frame
        assert r.airtime_ms(n) <= 400 < r.airtime_ms(n + 1), (n, r.airtime_ms(n))
        assert 24 <= n < 255
        assert r.send(bytes(n + 1), None) is False and r.stats()["tx_too_long"] == 1
        assert [r.send(bytes(n), None) for _ in range(8)] == [True] * 8
        _drive(r, lambda: len(fake_lora.ether.sent) == 8)
        st = r.stats()
        assert st["tx_frames"] == 8 and st["tx_deferred"] == 0 and sleeper.asked == [], st
        # SF12: even the smallest frame the core makes is over 400 ms on air.
        from rumor.radio_lora import LoRaRadio

        e = fwtest.raises(ValueError, LoRaRadio, dict(HELTEC_V2_RADIO, region="US915",
                                                      freq_khz=915000, sf=12), HELTEC_V2_PINS)
        assert "dwell" in str(e) and "400" in str(e), str(e)
    finally:
        fake_lora.uninstall()


def test_send_allocates_nothing():
    try:
        clock = fwtest.Clock(0)
        r = _radio(dict(HELTEC_V2_RADIO, region="US915", freq_khz=915000), clock)
        frames = [bytes([k]) * 24 for k in range(4)] + [bytes(24), bytes(r.max_frame + 1),
                                                         bytes(256)]
        res = [None] * len(frames)

        def run():
            for k in range(len(frames)):
                res[k] = r.send(frames[k], None)

        fwtest.no_alloc(run, "LoRaRadio.send(): queued, dropped, too long, too big")
        assert res == [True] * 4 + [False] * 3, res
        st = r.stats()
        assert (st["tx_queue_drops"], st["tx_too_long"], st["tx_too_big"]) == (1, 1, 1), st
    finally:
        fake_lora.uninstall()


def test_duty_window_forgets_after_long_silence_and_ticks_wrap():
    from rumor.radio_lora import DutyCycle

    for later in (3 * 86400000, 0x20000000 + 5000):  # 3 days; past half the 2**30 ticks period
        d = DutyCycle(0.001, 600000, 0x3FFFF000)  # 600 ms / 10 min, starting just before a wrap
        d.charge(0x3FFFF000 + 300, 300)
        d.charge(0x3FFFF000 + 600, 300)
        assert d.wait_ms(0x3FFFF000 + 600, 100) == 610000 - 600
        now = (0x3FFFF000 + later) & 0x3FFFFFFF
        assert d.wait_ms(now, 100) == 0 and d.used(now) == 0, later


def test_a_deferred_data_frame_ages_by_its_wait():
    # the core writes a DATA frame's age when it queues it; hours of duty
    # deferral later the age on air must count them, or the message would
    # outlive max_message_age_ms.  A digest that waited that long is dropped
    # instead (stale to its hearers; the core makes fresh ones); one that
    # waited a moment goes out unchanged.
    from rumor import wire

    try:
        clock = fwtest.Clock(1000)
        sleeper = _Sleeper(clock)
        cfg = dict(HELTEC_V2_RADIO, sf=12, tx_queue=32)
        r = _radio(cfg, clock, sleeper.sleep_ms)
        data = [wire.encode_data(0x01020304, k, bytes(180), age_ms=400) for k in range(8)]
        digest = wire.encode_digest(0x0708, [(1, 1)])
        assert r.send(digest, None)  # first: on air at once, as it is
        for f in data:
            assert r.send(f, None)
        assert r.send(digest, None)  # last: held for hours behind the data
        _drive(r, lambda: len(fake_lora.ether.sent) == 9 and r.stats()["tx_queued"] == 0)
        sent = [d for _m, d in fake_lora.ether.sent]
        starts = [s for _m, s, _e in fake_lora.ether.onair]
        assert sent[0] == digest and len(sent) == 9, len(sent)
        sent = sent[1:]
        starts = starts[1:]
        st = r.stats()
        assert st["tx_deferred"] >= 1 and st["tx_stale_dropped"] == 1, st
        for k in range(8):
            got = wire.decode(sent[k])
            waited = starts[k] - 1000
            assert got["payload"] == bytes(180) and got["seq"] == k
            # 400 ms when queued, plus the wait, in 4 ms units rounded up; an
            # hour's wait saturates the 16-bit field (262 s): dead on arrival
            want = min(400 + waited, 0xFFFF * 4)
            assert want <= got["age_ms"] <= want + 4, (k, got["age_ms"], waited)
        assert wire.decode(sent[7])["age_ms"] == 0xFFFF * 4  # the last waited hours
    finally:
        fake_lora.uninstall()
