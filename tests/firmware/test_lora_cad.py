# Channel activity detection (rumor/lora_cad.py) and listen-before-talk in
# the LoRa adapter, against fake_lora.py's register-level SX1276 and
# command-level SX1262 (the same private driver methods the helper calls on
# micropython-lib's lora-sx127x / lora-sx126x).
import asyncio

import fake_lora
import fwtest
from test_radio_lora import (
    HELTEC_V2_PINS,
    HELTEC_V2_RADIO,
    HELTEC_V3_PINS,
    HELTEC_V3_RADIO,
    _drive,
    _Sleeper,
)


def _modems(cfg, pins, n=2, clock=None):
    """n LoRaRadios on the fake ether, all linked; (radios, clock)."""
    fake_lora.install()
    clock = clock or fwtest.Clock(1000)
    fake_lora.ether.clock = clock
    from rumor.radio_lora import LoRaRadio

    radios = [LoRaRadio(cfg, pins, clock=clock.read) for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            fake_lora.ether.link(i, j, -80)
    return radios, clock


def _busy(cad):
    out = []

    async def main():
        out.append(await cad.busy())

    asyncio.run(main())
    return out[0]


def test_sx1276_cad_free_then_preamble_detected():
    try:
        radios, clock = _modems(HELTEC_V2_RADIO, HELTEC_V2_PINS)
        m = fake_lora.ether.modems[0]
        cad = radios[0]._cad
        assert type(cad).__name__ == "Sx127xCad"
        t0 = clock.read()
        assert _busy(cad) is False
        assert len(m.cads) == 1 and m.cads[0][2] is False, m.cads
        assert m.irqs == 1  # CadDone came through DIO0 (mapping 10), not by polling
        assert clock.read() - t0 >= m.cads[0][1] - m.cads[0][0] > 0  # fake time passed
        assert m._regs[0x12] & 0x05 == 0  # CadDone/CadDetected cleared
        assert m._get_mode() == 1 and m._tx is False  # standby again, nothing receiving
        # modem 1 starts a frame now: its preamble is on air during the CAD
        air = radios[1].airtime_ms(40)
        fake_lora.ether.jam(1, clock.read(), clock.read() + air)
        assert _busy(cad) is True
        assert m.cads[-1][2] is True and cad.detected == 1 and cad.runs == 2
        assert m._regs[0x12] == 0, hex(m._regs[0x12])
        # a jam on another spreading factor is not heard
        fake_lora.ether.jams[:] = []
        fake_lora.ether.modems[1]._sf = 10
        fake_lora.ether.jam(1, clock.read(), clock.read() + air)
        assert _busy(cad) is False
    finally:
        fake_lora.uninstall()


def test_sx1276_cad_misses_a_payload_but_a_receive_under_way_is_busy():
    try:
        radios, clock = _modems(HELTEC_V2_RADIO, HELTEC_V2_PINS)
        m = fake_lora.ether.modems[0]
        cad = radios[0]._cad
        # modem 1 has been on air for a while: past its preamble, in its payload
        start = clock.read() - 200
        fake_lora.ether.jam(1, start, start + 1000)
        assert m.preamble_ms() < 200
        assert _busy(cad) is False  # SX127x CAD sees preambles only: the chip's limit
        runs = cad.runs
        # the same while receiving: RegModemStat says locked, no CAD is run and
        # the receive is not cut off by going to standby
        m._rx = True
        m._rx_mode()
        assert _busy(cad) is True
        assert cad.runs == runs and cad.locked == 1
        assert m._get_mode() == 6 and m._rx is True  # still in RX single
    finally:
        fake_lora.uninstall()


def test_sx1276_paused_receive_resumes_and_pending_frame_is_kept():
    try:
        radios, clock = _modems(HELTEC_V2_RADIO, HELTEC_V2_PINS)
        m = fake_lora.ether.modems[0]
        cad = radios[0]._cad
        m._rx = True  # a receive was configured (the rx task's recv())
        m._rx_mode()
        assert _busy(cad) is False
        assert m.resumed == 1 and m._get_mode() == 6, (m.resumed, m._get_mode())
        assert m._regs[0x40] >> 6 == 0  # DIO0 back to RxDone
        # a frame received but not read yet: busy, and its RxDone flag survives
        m._regs[0x12] |= 0x40
        assert _busy(cad) is True and m._regs[0x12] & 0x40
        assert cad.locked == 1
    finally:
        fake_lora.uninstall()


def test_sx1276_without_dio0_polls_the_flags():
    fake_lora.install()
    try:
        clock = fwtest.Clock(0)
        fake_lora.ether.clock = clock
        from rumor.lora_cad import cad_for

        m = fake_lora.AsyncSX1276(fake_lora.SPI(1), fake_lora.Pin(18), dio0=None,
                                  lora_cfg={"freq_khz": 868100, "sf": 9, "bw": "125"})
        cad = cad_for(m)
        assert _busy(cad) is False
        assert m.irqs == 0 and len(m.cads) == 1 and cad.timeouts == 0
        assert m._regs[0x40] == 0  # DIO mapping untouched without dio0
    finally:
        fake_lora.uninstall()


def test_sx1262_cad_unmasks_its_irqs_and_sees_a_payload():
    try:
        radios, clock = _modems(HELTEC_V3_RADIO, HELTEC_V3_PINS)
        m = fake_lora.ether.modems[0]
        cad = radios[0]._cad
        assert type(cad).__name__ == "Sx126xCad"
        assert m.irq_mask == 0x243 | 0x180, hex(m.irq_mask)  # the driver's + CAD's
        assert m.dio1_mask == 0x203 | 0x080, hex(m.dio1_mask)
        assert _busy(cad) is False and m.irqs == 1
        assert m.cad_params == (4, 23, 10, 0, 0), m.cad_params  # SF9: 4 symbols, peak 23
        start = clock.read() - 300  # in its payload: the SX126x CAD still sees it
        fake_lora.ether.jam(1, start, start + 1000)
        assert _busy(cad) is True and cad.detected == 1
        assert m._irq == 0 and m.is_idle()
        assert cad.duration_ms() >= m.cads[-1][1] - m.cads[-1][0]  # the wait covers the chip's
    finally:
        fake_lora.uninstall()


def test_sx1262_masked_cad_irq_never_shows():
    # The fake mirrors the chip: with the driver's own mask (no CAD bits) a
    # CAD's result is never latched, so the helper must unmask it; here it
    # is masked again behind the helper's back and the CAD times out.
    try:
        radios, clock = _modems(HELTEC_V3_RADIO, HELTEC_V3_PINS)
        m = fake_lora.ether.modems[0]
        cad = radios[0]._cad
        m.irq_mask = 0x243
        fake_lora.ether.jam(1, clock.read(), clock.read() + 500)
        assert _busy(cad) is False
        assert cad.timeouts == 1 and m.cads[-1][2] is True  # the chip saw it; nobody heard
        assert m._tx is False and m.is_idle()
    finally:
        fake_lora.uninstall()


def test_sx1262_sf_table():
    from rumor.lora_cad import Sx126xCad

    fake_lora.install()
    try:
        want = {7: (2, 22), 8: (2, 22), 9: (4, 23), 10: (4, 24), 11: (4, 25), 12: (4, 28)}
        for sf, (syms, peak) in want.items():
            fake_lora.ether.clock = fwtest.Clock(0)
            m = fake_lora.AsyncSX1262(fake_lora.SPI(1), fake_lora.Pin(8), fake_lora.Pin(13),
                                      dio1=fake_lora.Pin(14),
                                      lora_cfg={"freq_khz": 868100, "sf": sf, "bw": "125"})
            cad = Sx126xCad(m)
            assert _busy(cad) is False
            assert m.cad_params[:3] == (syms, peak, 10), (sf, m.cad_params)
            assert cad.duration_ms() == (m._get_t_sym_us() * (syms + 1) + 999) // 1000
    finally:
        fake_lora.uninstall()


def test_sx127x_cad_register_steps_allocate_nothing():
    try:
        radios, clock = _modems(HELTEC_V2_RADIO, HELTEC_V2_PINS)
        m = fake_lora.ether.modems[0]
        cad = radios[0]._cad
        res = [None, None]

        def start():
            res[0] = cad._pending()
            cad._start()

        def finish():
            res[1] = cad._irq()
            cad._finish()

        fwtest.no_alloc(start, "Sx127xCad pending check and CAD start")
        m._cad_done()
        fwtest.no_alloc(finish, "Sx127xCad flags read and finish")
        assert res[0] is False and res[1] & 0x04, res
        assert m._regs[0x12] == 0 and m._get_mode() == 1
    finally:
        fake_lora.uninstall()


def _radio(cfg, pins, clock, sleeper):
    fake_lora.install()
    fake_lora.ether.clock = clock
    from rumor.radio_lora import LoRaRadio

    r = LoRaRadio(cfg, pins, clock=clock.read, sleep_ms=sleeper.sleep_ms,
                  rand=fwtest.seeded_rand(5))
    LoRaRadio(cfg, pins, clock=clock.read)  # modem 1: the other transmitter
    fake_lora.ether.link(0, 1, -85)
    return r


def test_busy_channel_backs_off_then_sends_after_it():
    for cfg, pins in ((HELTEC_V2_RADIO, HELTEC_V2_PINS), (HELTEC_V3_RADIO, HELTEC_V3_PINS)):
        try:
            clock = fwtest.Clock(5000)
            sleeper = _Sleeper(clock)
            r = _radio(dict(cfg, cad_tries=50), pins, clock, sleeper)
            jam_end = 5000 + 1500
            fake_lora.ether.jam(1, 5000, jam_end)
            assert r.send(bytes([0x20]) * 30, None)
            _drive(r, lambda: len(fake_lora.ether.sent) == 1)
            assert len(fake_lora.ether.sent) == 1, cfg["modem"]
            start = fake_lora.ether.onair[0][1]
            assert start >= jam_end, (cfg["modem"], start)  # never into the busy channel
            st = r.stats()
            assert st["cad"] is True and st["tx_cad_forced"] == 0, st
            assert st["tx_cad_busy"] == len(sleeper.asked) >= 1, (st, sleeper.asked)
            assert st["tx_backoff_ms"] == sum(sleeper.asked)
            slot = r.cad_slot_ms
            for k, w in enumerate(sleeper.asked):  # 1..2^min(3+k, 6) slots
                assert w % slot == 0 and slot <= w <= slot << min(3 + k, 6), (k, w, slot)
            assert start - jam_end < 2 * (64 * slot + r._cad.duration_ms() + 2)
        finally:
            fake_lora.uninstall()


def test_frame_goes_anyway_after_cad_tries_busy():
    try:
        clock = fwtest.Clock(0)
        sleeper = _Sleeper(clock)
        r = _radio(dict(HELTEC_V3_RADIO, cad_tries=3), HELTEC_V3_PINS, clock, sleeper)
        fake_lora.ether.jam(1, 0, 10 ** 8)  # a jammer that never stops
        assert r.send(bytes([0x21]) * 30, None) and r.send(bytes([0x22]) * 30, None)
        _drive(r, lambda: len(fake_lora.ether.sent) == 2)
        st = r.stats()
        assert len(fake_lora.ether.sent) == 2
        assert st["tx_cad_forced"] == 2 and st["tx_cad_busy"] == 6, st
        assert len(sleeper.asked) == 4  # two backoffs per frame, then it went
    finally:
        fake_lora.uninstall()


def test_cad_off_and_bad_tries():
    fake_lora.install()
    try:
        from rumor.radio_lora import LoRaRadio

        clock = fwtest.Clock(0)
        fake_lora.ether.clock = clock
        r = LoRaRadio(dict(HELTEC_V2_RADIO, cad=False), HELTEC_V2_PINS, clock=clock.read)
        assert r._cad is None and r.stats()["cad"] is False
        assert r.send(bytes([0x20]) * 30, None)
        _drive(r, lambda: len(fake_lora.ether.sent) == 1)
        assert fake_lora.ether.modems[0].cads == []
        for bad in (0, 101, True, "3"):
            e = fwtest.raises(ValueError, LoRaRadio, dict(HELTEC_V2_RADIO, cad_tries=bad),
                              HELTEC_V2_PINS, clock=clock.read)
            assert "cad_tries" in str(e), str(e)
    finally:
        fake_lora.uninstall()


def test_backoff_bounds_and_no_alloc():
    fake_lora.install()
    try:
        from rumor.radio_lora import LoRaRadio

        hi = LoRaRadio(HELTEC_V3_RADIO, HELTEC_V3_PINS, clock=fwtest.Clock(0).read,
                       rand=lambda k: (1 << k) - 1)
        lo = LoRaRadio(HELTEC_V3_RADIO, HELTEC_V3_PINS, clock=fwtest.Clock(0).read,
                       rand=lambda k: 0)
        s = hi.cad_slot_ms
        assert s == hi._cad.duration_ms() + 1 and s > 1
        assert [hi.backoff_ms(k) for k in (1, 2, 3, 4, 5, 9)] == [8 * s, 16 * s, 32 * s, 64 * s,
                                                                  64 * s, 64 * s]
        assert [lo.backoff_ms(k) for k in (1, 4, 9)] == [s, s, s]
        out = [0]

        def draw():
            out[0] = hi.backoff_ms(3)

        fwtest.no_alloc(draw, "LoRaRadio.backoff_ms()")
        assert out[0] == 32 * s
    finally:
        fake_lora.uninstall()


def test_duty_cycle_still_holds_with_cad():
    try:
        clock = fwtest.Clock(0)
        sleeper = _Sleeper(clock)
        cfg = dict(HELTEC_V2_RADIO, duty_cycle=0.001, duty_window_ms=600000)  # 600 ms / 10 min
        r = _radio(cfg, HELTEC_V2_PINS, clock, sleeper)
        air = r.airtime_ms(30)
        assert [r.send(bytes([k]) * 30, None) for k in range(3)] == [True] * 3
        _drive(r, lambda: len(fake_lora.ether.sent) == 3)
        onair = [(s, e) for i, s, e in fake_lora.ether.onair if i == 0]
        assert len(onair) == 3
        assert onair[2][0] >= 610000 - 2 * air  # the third waited for the window
        st = r.stats()
        assert st["tx_deferred"] == 1 and st["tx_cad_busy"] == 0, st
        assert len(fake_lora.ether.modems[0].cads) == 3  # one CAD per frame
    finally:
        fake_lora.uninstall()
