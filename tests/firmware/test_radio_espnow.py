# The ESP-NOW adapter (rumor/radio_espnow.py) over fake espnow/aioespnow/
# network modules (fake_espnow.py) installed in sys.modules: the adapter code
# is the code that runs on the board.  Gossip engines on top, a fake ether
# under them; the asyncio loop is stepped by hand with a test clock.
import asyncio

import fake_espnow
import fwtest

from rumor import Config

MACS = [bytes([0x24, 0x0A, 0xC4, 0, 0, i + 1]) for i in range(3)]


def _setup(n, links, mode="flood", broadcast=True):
    """n boards; links: list of (i, j, rssi).  Returns (clock, radios, engines, inboxes)."""
    fake_espnow.install()
    from rumor.radio_espnow import EspNowRadio

    for i, j, rssi in links:
        fake_espnow.ether.link(MACS[i], MACS[j], rssi)
    clock = fwtest.Clock(1000)
    rand = fwtest.seeded_rand(7)
    radios, engines, inboxes = [], [], []
    for i in range(n):
        fake_espnow.board(MACS[i])
        r = EspNowRadio({"kind": "espnow", "channel": 6})
        box = []
        g = fwtest.engine_on(r, Config.small(mode=mode, broadcast=broadcast), 0x100 + i, clock,
                             rand, box)
        radios.append(r)
        engines.append(g)
        inboxes.append(box)
    return clock, radios, engines, inboxes


def _pump(clock, radios, engines, steps=60, ms=20, before=None):
    fwtest.pump_radios(clock, radios, engines, before, steps, ms)


def test_publish_reaches_two_neighbours_by_broadcast():
    try:
        clock, radios, engines, inboxes = _setup(3, [(0, 1, -40), (0, 2, -60), (1, 2, -55)])
        _pump(clock, radios, engines, before=lambda: engines[0].publish(b"hello"))
        assert inboxes[1] == [(0x100, b"hello")], inboxes[1]
        assert inboxes[2] == [(0x100, b"hello")], inboxes[2]
        # The origin's transmission went to ff:ff:ff:ff:ff:ff, once.
        first = fake_espnow.ether.sent[0]
        assert first[0] == MACS[0] and first[1] == fake_espnow.BCAST, first
        st = radios[0].stats()
        assert st["tx_frames"] >= 1 and st["tx_pkts"] == st["tx_frames"], st
        assert radios[1].stats()["rx_frames"] >= 1
    finally:
        fake_espnow.uninstall()


def test_relay_over_two_hops():
    try:
        # 0 - 1 - 2 in a line: 2 hears 0's message only through 1's relay.
        clock, radios, engines, inboxes = _setup(3, [(0, 1, -40), (1, 2, -40)])
        _pump(clock, radios, engines, before=lambda: engines[0].publish(b"far"))
        assert inboxes[2] == [(0x100, b"far")], inboxes[2]
        # and 2 heard it from 1's MAC
        assert MACS[1] in radios[2]._e.peers_table
        assert MACS[0] not in radios[2]._e.peers_table
    finally:
        fake_espnow.uninstall()


def test_rssi_passed_through():
    try:
        clock, radios, engines, inboxes = _setup(2, [(0, 1, -77)])
        seen = []

        class Spy:
            def receive(self, frame, from_peer=None, rssi=0):
                seen.append((bytes(from_peer), rssi, bytes(frame)))
                return engines[1].receive(frame, from_peer, rssi)

        spy = Spy()

        async def main():
            t = asyncio.create_task(radios[1].run(spy))
            await asyncio.sleep(0)
            engines[0].publish(b"x")
            for _ in range(3):
                await asyncio.sleep(0)
            t.cancel()
            await asyncio.sleep(0)

        asyncio.run(main())
        assert len(seen) == 1, seen
        assert seen[0][0] == MACS[0] and seen[0][1] == -77, seen
        assert seen[0][2].endswith(b"x")
        assert inboxes[1] == [(0x100, b"x")]
    finally:
        fake_espnow.uninstall()


def test_unicast_registers_peer_and_sends_to_it_only():
    try:
        clock, radios, engines, inboxes = _setup(3, [(0, 1, -40), (0, 2, -40)])
        r = radios[0]
        frame = bytearray(b"\x11" * 20)
        assert r.send(frame, [MACS[2]]) is True
        log = fake_espnow.ether.sent
        assert log == [(MACS[0], MACS[2], bytes(frame))], log
        assert MACS[2] in r._e._peers  # registered on first use
        assert radios[2]._e.any() and not radios[1]._e.any()
        # Several peers: one unicast each, the broadcast address not used.
        assert r.send(frame, [MACS[1], MACS[2]]) is True
        assert [to for _f, to, _d in log[1:]] == [MACS[1], MACS[2]], log
    finally:
        fake_espnow.uninstall()


def test_unicast_gossip_mode_delivers():
    try:
        clock, radios, engines, inboxes = _setup(3, [(0, 1, -40), (0, 2, -40), (1, 2, -40)],
                                                 mode="gossip", broadcast=False)
        for i, g in enumerate(engines):
            for j in range(3):
                if j != i:
                    g.add_peer(MACS[j])
        _pump(clock, radios, engines, steps=400, ms=20,
              before=lambda: engines[0].publish(b"uni"))
        assert inboxes[1] == [(0x100, b"uni")], inboxes[1]
        assert inboxes[2] == [(0x100, b"uni")], inboxes[2]
        assert all(to != fake_espnow.BCAST for _f, to, _d in fake_espnow.ether.sent)
    finally:
        fake_espnow.uninstall()


def test_too_big_frame_refused():
    try:
        clock, radios, engines, inboxes = _setup(1, [])
        assert radios[0].send(bytes(251), None) is False
        assert radios[0].stats()["tx_too_big"] == 1
        assert fake_espnow.ether.sent == []
    finally:
        fake_espnow.uninstall()


def test_irecv_buffer_reused():
    try:
        clock, radios, engines, inboxes = _setup(2, [(0, 1, -40)])
        e1 = radios[1]._e
        radios[0].send(b"\x01" * 30, None)
        a = e1.irecv(0)
        msg_a = a[1]
        radios[0].send(b"\x02" * 40, None)
        b = e1.irecv(0)
        assert a is b and b[1] is msg_a and bytes(msg_a) == b"\x02" * 40
    finally:
        fake_espnow.uninstall()
