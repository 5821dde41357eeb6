# ESP-NOW radio adapter: MicroPython's espnow / aioespnow modules under the
# gossip core.  API as in micropython/micropython docs/library/espnow.rst:
#
#   e = aioespnow.AIOESPNow(); e.active(True)
#   e.add_peer(b"\xff" * 6)            # broadcast must be registered to send to it
#   e.send(mac, msg, False)           # sync=False: don't wait for the ack
#   mac, msg = await e.airecv()       # irecv(0) under the hood: reused [mac, msg]
#   e.peers_table[mac] -> [rssi, time_ms]   (updated when a message is read)
#   e.stats() -> (tx_pkts, tx_responses, tx_failures, rx_packets, rx_dropped)
#
#   r = EspNowRadio(board["radio"])  # {"kind": "espnow", "channel": 1}
#   g.on_forward(r.send); asyncio.create_task(r.run(g))
#
# Per frame this allocates only what the API forces: airecv() is a coroutine
# (one generator object per call); irecv() itself reuses its list, the msg
# bytearray and the mac (a key of peers_table).  send() allocates nothing on
# the broadcast path; a unicast to an unregistered peer registers it (the
# OSError raised on the way allocates, once per new peer).
try:
    from micropython import const
except ImportError:  # CPython
    const = lambda x: x  # noqa: E731

_BCAST = b"\xff\xff\xff\xff\xff\xff"
_MTU = const(250)  # ESP-NOW v1 payload; v2 (IDF >= 5.4) carries 1470 but v1 peers drop it
_MASK = const(0x3FFFFFFF)
# espnow raises OSError(errno, "ESP_ERR_ESPNOW_...") with the IDF error name in args[1].
_NOT_FOUND = "ESP_ERR_ESPNOW_NOT_FOUND"
_EXIST = "ESP_ERR_ESPNOW_EXIST"


def _err_name(e):
    a = e.args
    return a[1] if len(a) > 1 else ""


class EspNowRadio:
    broadcast = True  # one send to ff:ff:ff:ff:ff:ff reaches every neighbour on the channel
    mtu = _MTU

    def __init__(self, board_radio_cfg, esp=None, wlan=None):
        """board_radio_cfg: the board file's "radio" object.  esp/wlan: an
        already set-up AIOESPNow / network.WLAN to use instead of making them."""
        channel = board_radio_cfg.get("channel", 1)
        if not 1 <= channel <= 14:
            raise ValueError("espnow channel must be 1..14, got %r" % (channel,))
        self.channel = channel
        self.mtu = board_radio_cfg.get("mtu", _MTU)
        if wlan is None:
            # Imported here so the module imports (and type-checks) on a host.
            import network

            # A WLAN interface must be active for ESP-NOW; STA, not connected,
            # so nothing moves the channel (an AP connection would).
            wlan = network.WLAN(network.STA_IF)
            wlan.active(True)
            wlan.config(channel=channel)
            wlan.disconnect()
        self._wlan = wlan
        if esp is None:
            from aioespnow import AIOESPNow

            esp = AIOESPNow()  # the ESPNow singleton, with the async methods
            esp.active(True)
        self._e = esp
        try:
            esp.add_peer(_BCAST)
        except OSError as e:
            if _err_name(e) != _EXIST:  # already there after a soft reset: fine
                raise
        self.tx_frames = 0
        self.tx_bytes = 0
        self.tx_errors = 0  # sends the driver refused (buffers full, peer table full, ...)
        self.tx_too_big = 0
        self.rx_frames = 0
        self.rx_bytes = 0

    def send(self, frame, to_peers):
        """to_peers None: one broadcast.  Else one unicast per address (the
        core passes a reused list: read it now).  False if any send failed."""
        n = len(frame)
        if n > self.mtu:
            self.tx_too_big += 1
            return False
        if to_peers is None:
            return self._send1(_BCAST, frame, n)
        ok = True
        for mac in to_peers:
            if not self._send1(mac, frame, n):
                ok = False
        return ok

    def _send1(self, mac, frame, n):
        e = self._e
        try:
            # sync=False: return at once, don't block the loop on the ack
            # (unicast failures still show in stats()[2], tx_failures).
            e.send(mac, frame, False)
        except OSError as err:
            if _err_name(err) != _NOT_FOUND:
                self.tx_errors = (self.tx_errors + 1) & _MASK
                return False
            # The core learned this neighbour from a frame it heard (no
            # add_peer needed to receive); ESP-NOW wants it registered to send.
            try:
                e.add_peer(mac)
                e.send(mac, frame, False)
            except OSError:
                self.tx_errors = (self.tx_errors + 1) & _MASK
                return False
        self.tx_frames = (self.tx_frames + 1) & _MASK
        self.tx_bytes = (self.tx_bytes + n) & _MASK
        return True

    async def run(self, gossip):
        """Forever: hand every frame heard to gossip.receive(frame, mac, rssi)."""
        e = self._e
        table = e.peers_table  # {mac: [rssi, time_ms]}, updated as messages are read
        while True:
            mac, msg = await e.airecv()
            if mac is None:  # woken without a message (timeout)
                continue
            self.rx_frames = (self.rx_frames + 1) & _MASK
            self.rx_bytes = (self.rx_bytes + len(msg)) & _MASK
            ent = table.get(mac)
            # msg is espnow's reused bytearray: the core copies what it keeps.
            gossip.receive(msg, mac, ent[0] if ent else 0)

    def stats(self):
        d = {
            "radio": "espnow",
            "channel": self.channel,
            "tx_frames": self.tx_frames,
            "tx_bytes": self.tx_bytes,
            "tx_errors": self.tx_errors,
            "tx_too_big": self.tx_too_big,
            "rx_frames": self.rx_frames,
            "rx_bytes": self.rx_bytes,
        }
        s = self._e.stats()
        d["tx_pkts"], d["tx_responses"], d["tx_failures"], d["rx_packets"], d["rx_dropped"] = s
        return d
