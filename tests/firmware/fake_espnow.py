# A fake of MicroPython's espnow, aioespnow and network modules, with the
# names, signatures and return shapes of the real ones (micropython/micropython
# docs/library/espnow.rst, ports/esp32/modules/aioespnow.py), joined by a fake
# ether so several "boards" can live in one interpreter.
#
#   import fake_espnow
#   fake_espnow.install()            # sys.modules: espnow, aioespnow, network
#   with-board: fake_espnow.board(mac, rssi=...)   # the next WLAN()/AIOESPNow() belong to mac
#   ... the adapter does `import network`, `from aioespnow import AIOESPNow` ...
#   fake_espnow.uninstall()
#
# Differences from the real thing, all outside what the adapter may rely on:
# ESPNow() is a singleton per board (not per interpreter); delivery is
# immediate; there is no radio range beyond the link table.
import asyncio

import fwtest

ADDR_LEN = 6
KEY_LEN = 16
MAX_DATA_LEN = 250
MAX_TOTAL_PEER_NUM = 20
MAX_ENCRYPT_PEER_NUM = 6
STA_IF = 0
AP_IF = 1
BCAST = b"\xff" * 6

_NAMES = ("espnow", "aioespnow", "network")


class Ether:
    def __init__(self):
        self.nodes = {}  # mac -> ESPNow
        self.wlans = {}  # mac -> WLAN
        self.current = None  # mac of the board being built
        self.rssi = {}  # (from_mac, to_mac) -> rssi; missing link = out of range
        self.default_rssi = -50
        self.sent = []  # (from, to, bytes) log of every send() that went on air

    def link(self, a, b, rssi=None):
        """a and b hear each other at rssi (both ways)."""
        r = self.default_rssi if rssi is None else rssi
        self.rssi[(a, b)] = r
        self.rssi[(b, a)] = r

    def cut(self, a, b):
        self.rssi.pop((a, b), None)
        self.rssi.pop((b, a), None)


ether = Ether()


def reset():
    global ether
    ether = Ether()


def board(mac):
    """The next network.WLAN() / ESPNow() calls are made on the board with this MAC."""
    ether.current = bytes(mac)


def install():
    reset()
    fwtest.install_fake(__name__, _NAMES)


def uninstall():
    fwtest.uninstall_fake(__name__, _NAMES)


def _oserror(name):
    # espnow raises OSError(errno, "ESP_ERR_ESPNOW_...")
    return OSError(-1, name)


# -- network -------------------------------------------------------------------
class WLAN:
    def __new__(cls, interface_id=STA_IF):
        mac = ether.current
        if mac is None:
            raise RuntimeError("fake_espnow: call board(mac) first")
        w = ether.wlans.get(mac)
        if w is None:
            w = object.__new__(cls)
            w._mac = mac
            w._active = False
            w._channel = 1
            w._connected = False
            ether.wlans[mac] = w
        return w

    def __init__(self, interface_id=STA_IF):
        pass

    def active(self, is_active=None):
        if is_active is None:
            return self._active
        self._active = bool(is_active)
        return None

    def config(self, *args, **kw):
        if args:
            key = args[0]
            if key == "mac":
                return self._mac
            if key == "channel":
                return self._channel
            raise ValueError("unknown config param")
        if "channel" in kw:
            ch = kw["channel"]
            if not 0 <= ch <= 14:
                raise ValueError("channel")
            self._channel = ch
        return None

    def disconnect(self):
        self._connected = False

    def isconnected(self):
        return self._connected


# -- espnow ----------------------------------------------------------------------
class ESPNow:
    def __new__(cls):
        mac = ether.current
        if mac is None:
            raise RuntimeError("fake_espnow: call board(mac) first")
        e = ether.nodes.get(mac)
        if e is None:  # the singleton (per board)
            e = object.__new__(cls)
            e._mac = mac
            e._active = False
            e._peers = []
            e._queue = []  # (mac bytes, msg bytes, rssi)
            e._event = None
            e._tx_pkts = e._tx_responses = e._tx_failures = 0
            e._rx_packets = e._rx_dropped = 0
            e._irecv_buf = [None, bytearray(MAX_DATA_LEN)]
            e.peers_table = {}
            ether.nodes[mac] = e
        return e

    def __init__(self):
        pass

    def active(self, flag=None):
        if flag is None:
            return self._active
        self._active = bool(flag)
        if not flag:
            self._peers = []
        return self._active

    def config(self, *args, **kw):
        if args:
            return {"rxbuf": 526, "timeout_ms": 300000}[args[0]]
        return None

    def _check(self):
        if not self._active:
            raise _oserror("ESP_ERR_ESPNOW_NOT_INIT")
        w = ether.wlans.get(self._mac)
        if w is None or not w._active:
            raise _oserror("ESP_ERR_ESPNOW_IF")

    def add_peer(self, mac, lmk=None, channel=0, ifidx=STA_IF, encrypt=False):
        self._check()
        if not isinstance(mac, (bytes, bytearray)) or len(mac) != ADDR_LEN:
            raise ValueError("invalid peer MAC address")
        mac = bytes(mac)
        if mac in self._peers:
            raise _oserror("ESP_ERR_ESPNOW_EXIST")
        if len(self._peers) >= MAX_TOTAL_PEER_NUM:
            raise _oserror("ESP_ERR_ESPNOW_FULL")
        self._peers.append(mac)

    def del_peer(self, mac):
        self._check()
        mac = bytes(mac)
        if mac not in self._peers:
            raise _oserror("ESP_ERR_ESPNOW_NOT_FOUND")
        self._peers.remove(mac)

    def get_peers(self):
        return tuple((p, b"", 0, STA_IF, False) for p in self._peers)

    def peer_count(self):
        return (len(self._peers), 0)

    def send(self, mac, msg=None, sync=True):
        if msg is None:  # send(msg): to all registered peers except broadcast
            msg, mac = mac, None
        self._check()
        if len(msg) > MAX_DATA_LEN:
            raise ValueError("msg too long")
        data = bytes(msg)
        targets = [p for p in self._peers if p != BCAST] if mac is None else [bytes(mac)]
        if mac is not None and bytes(mac) not in self._peers:
            raise _oserror("ESP_ERR_ESPNOW_NOT_FOUND")
        ok = True
        my_channel = ether.wlans[self._mac]._channel
        for to in targets:
            self._tx_pkts += 1
            ether.sent.append((self._mac, to, data))
            if to == BCAST:
                for other, e in ether.nodes.items():
                    if other != self._mac:
                        e._deliver(self._mac, data, my_channel)
                continue  # send() always succeeds for broadcasts
            e = ether.nodes.get(to)
            if e is not None and e._deliver(self._mac, data, my_channel):
                self._tx_responses += 1
            else:
                self._tx_failures += 1
                ok = False
        return ok if sync else True

    def _deliver(self, frm, data, channel):
        rssi = ether.rssi.get((frm, self._mac))
        w = ether.wlans.get(self._mac)
        if rssi is None or not self._active or w is None or w._channel != channel:
            return False
        self._rx_packets += 1
        self._queue.append((frm, data, rssi))
        if self._event is not None:
            self._event.set()
        return True

    def any(self):
        return bool(self._queue)

    def recvinto(self, data, timeout_ms=None):
        self._check()
        if not self._queue:
            return 0
        frm, payload, rssi = self._queue.pop(0)
        # The mac handed back is the key object in peers_table, as on the ESP32.
        key = frm
        for k in self.peers_table:
            if k == frm:
                key = k
                break
        ent = self.peers_table.get(key)
        if ent is None:
            self.peers_table[key] = [rssi, 0]
        else:
            ent[0] = rssi
        data[0] = key
        data[1][:] = payload  # the same bytearray, resized in place
        return len(payload)

    def irecv(self, timeout_ms=None):
        buf = self._irecv_buf
        if not self.recvinto(buf, timeout_ms):
            return (None, None)
        return buf  # the same list every time: [mac, msg]

    def recv(self, timeout_ms=None):
        r = self.irecv(timeout_ms)
        if r[0] is None:
            return (None, None)
        return [r[0], bytes(r[1])]

    def stats(self):
        return (self._tx_pkts, self._tx_responses, self._tx_failures, self._rx_packets,
                self._rx_dropped)

    def irq(self, callback):
        raise NotImplementedError("fake_espnow: irq() is not faked")


# -- aioespnow ---------------------------------------------------------------------
class AIOESPNow(ESPNow):
    # The real ones yield to asyncio's IO queue until the ESPNow object polls
    # readable, then call the non-blocking irecv(0)/recv(0); here an Event.
    async def _readable(self):
        while not self._queue:
            if self._event is None:
                self._event = asyncio.Event()
            self._event.clear()
            await self._event.wait()

    async def arecv(self):
        await self._readable()
        return self.recv(0)

    async def airecv(self):
        await self._readable()
        return self.irecv(0)

    async def asend(self, mac, msg=None, sync=None):
        if msg is None:
            msg, mac = mac, None
        return self.send(mac, msg, sync)

    def __aiter__(self):
        return self

    async def __anext__(self):
        return await self.airecv()
