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
                   "tx_ant": "PA_BOOST", "duty_cycle": 0.01}
HELTEC_V2_PINS = {"spi": 1, "sck": 5, "mosi": 27, "miso": 19, "cs": 18, "reset": 14,
                  "dio0": 26, "dio1": 35, "vext": 21}
HELTEC_V3_RADIO = {"kind": "lora", "modem": "sx1262", "freq_khz": 868100, "sf": 9, "bw": "125",
                   "coding_rate": 5, "output_power": 14, "preamble_len": 8,
                   "dio2_rf_sw": True, "dio3_tcxo_millivolts": 1800, "duty_cycle": 0.01}
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
        assert "tx_ant" not in m2.lora_cfg and "duty_cycle" not in m2.lora_cfg
        assert radios[0].duty.budget_ms == 36000  # 1% of an hour
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


def test_duty_cycle_refuses_and_counts_then_recovers():
    try:
        clock = fwtest.Clock(0)
        cfg = dict(HELTEC_V2_RADIO, duty_cycle=0.001, duty_window_ms=600000)  # 600 ms / 10 min
        radios, _e, _i = _setup([(cfg, HELTEC_V2_PINS)], [], clock)
        r = radios[0]
        air = r.airtime_ms(30)
        assert 200 < air < 260, air  # SF9 BW125 CR4/5, 30 bytes: ~227 ms
        frame = bytes(30)
        assert r.send(frame, None) is True
        assert r.send(frame, None) is True
        assert r.send(frame, None) is False  # 3 * 227 > 600
        st = r.stats()
        assert st["tx_refused_duty"] == 1 and st["duty_used_ms"] == 2 * air, st
        clock.advance(300000)  # half the window: still spent
        assert r.send(frame, None) is False
        clock.advance(300000 + 10000 + 1)  # window plus a bucket since the sends
        assert r.send(frame, None) is True
        assert r.stats()["tx_refused_duty"] == 2
    finally:
        fake_lora.uninstall()


def test_queue_bound_and_mtu():
    try:
        clock = fwtest.Clock(0)
        radios, _e, _i = _setup([(HELTEC_V2_RADIO, HELTEC_V2_PINS)], [], clock)
        r = radios[0]
        assert r.send(bytes(256), None) is False and r.stats()["tx_too_big"] == 1
        ok = [r.send(bytes(20), None) for _ in range(6)]  # nothing drains: queue of 4
        assert ok == [True] * 4 + [False] * 2, ok
        assert r.stats()["tx_queue_full"] == 2
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
