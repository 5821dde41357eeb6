# UdpRadio: frames to and from the virtual radio medium over UDP
# (docs/virtual.md), for virtual boards (the unix port) and WiFi set-ups.
#
# A node's address is a 6-byte pseudo-MAC, b"\x02\x00" + node id (4 bytes,
# big-endian).  Datagrams:
#     node -> medium: src (6) + dst (6, ff*6 = broadcast) + frame
#                     (an empty frame with dst == src is a join: "I am here")
#     medium -> node: src (6) + rssi (1, signed dBm) + frame
# The medium learns a node's socket address from any datagram it sends; the
# node sends a join at start and again every join_interval_ms, so a medium
# started (or restarted) after the node still finds it.
import socket

try:
    from micropython import const
except ImportError:  # CPython
    const = lambda x: x  # noqa: E731

BROADCAST = b"\xff\xff\xff\xff\xff\xff"
_HDR_OUT = const(12)
_HDR_IN = const(7)
# The counters are 30-bit and wrap, as the engine's do: past 2**30 - 1 an int
# is a big int on a 32-bit board (heap, and MemoryError under heap_lock), so
# x + 1 is written (x - _MASK) & _MASK, and x + n (x - _MASK + n - 1) & _MASK.
_MASK = const(0x3FFFFFFF)


def node_addr(node_id):
    """The 6-byte pseudo-MAC of a node id."""
    return bytes((2, 0, (node_id >> 24) & 0xFF, (node_id >> 16) & 0xFF,
                  (node_id >> 8) & 0xFF, node_id & 0xFF))


def addr_node(addr):
    """The node id in a pseudo-MAC (inverse of node_addr)."""
    return (addr[2] << 24) | (addr[3] << 16) | (addr[4] << 8) | addr[5]


class UdpRadio:
    broadcast = True  # one send(frame, None) reaches every neighbour
    mtu = 250

    def __init__(self, cfg, node_id, host="127.0.0.1"):
        """cfg: the board's "radio" object: {"kind": "udp", "port": medium's
        UDP port, "host": its address (127.0.0.1), "mtu": 250,
        "join_interval_ms": 5000}."""
        if "port" not in cfg:
            raise ValueError("radio.port (the medium's UDP port) is missing")
        self.mtu = cfg.get("mtu", 250)
        self.join_interval_ms = cfg.get("join_interval_ms", 5000)
        self.addr = node_addr(node_id)
        self._dest = socket.getaddrinfo(cfg.get("host", host), cfg["port"])[0][-1]
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(socket.getaddrinfo(cfg.get("bind", host), 0)[0][-1])
        s.setblocking(False)
        self.sock = s
        self._out = bytearray(_HDR_OUT + self.mtu)
        self._out[0:6] = self.addr
        self._outmv = memoryview(self._out)
        self._in = bytearray(_HDR_IN + self.mtu + 1)  # +1: an oversize frame shows as one
        self._inmv = memoryview(self._in)
        self._src = bytearray(6)
        self.frames_out = 0
        self.frames_in = 0
        self.bytes_out = 0
        self.send_errors = 0
        self.rx_bad = 0
        self.joins = 0

    def join(self):
        """Tell the medium where this node is (an empty frame to itself)."""
        self._out[6:12] = self.addr
        try:
            self.sock.sendto(self._outmv[:_HDR_OUT], self._dest)
            self.joins = (self.joins - _MASK) & _MASK
        except OSError:
            self.send_errors = (self.send_errors - _MASK) & _MASK

    def send(self, frame, to_peers):
        """One datagram to the medium per transmission; False if any failed."""
        n = len(frame)
        if n > self.mtu:
            self.send_errors = (self.send_errors - _MASK) & _MASK
            return False
        out = self._out
        out[_HDR_OUT:_HDR_OUT + n] = frame
        mv = self._outmv[:_HDR_OUT + n]
        ok = True
        if to_peers is None:
            out[6:12] = BROADCAST
            ok = self._sendto(mv, n)
        else:
            for p in to_peers:
                out[6:12] = p
                if not self._sendto(mv, n):
                    ok = False
        return ok

    def _sendto(self, mv, n):
        try:
            self.sock.sendto(mv, self._dest)
        except OSError:  # medium gone, buffer full: a lost frame, as on air
            self.send_errors = (self.send_errors - _MASK) & _MASK
            return False
        self.frames_out = (self.frames_out - _MASK) & _MASK
        self.bytes_out = (self.bytes_out - _MASK + n - 1) & _MASK
        return True

    def recv_into(self):
        """One datagram if one is waiting: (frame memoryview, src bytearray,
        rssi), else None.  Bad datagrams are counted and give None."""
        try:
            if hasattr(self.sock, "recv_into"):  # CPython (tests, a host-side node)
                n = self.sock.recv_into(self._in)  # pyright: ignore[reportAttributeAccessIssue]  # CPython socket only (guarded by hasattr); the ESP32 stubs lack it
            else:
                n = self.sock.readinto(self._in)
        except OSError:
            return None
        if n is None or n <= 0:
            return None
        return self._parse(n)

    def _parse(self, n):
        if n < _HDR_IN + 1 or n > _HDR_IN + self.mtu:
            self.rx_bad = (self.rx_bad - _MASK) & _MASK
            return None
        self.frames_in = (self.frames_in - _MASK) & _MASK
        buf = self._in
        self._src[0:6] = self._inmv[0:6]
        rssi = buf[6]
        if rssi > 127:
            rssi -= 256
        return self._inmv[_HDR_IN:n], self._src, rssi

    async def run(self, gossip, on_frame=None):
        """Forever: await a datagram, hand its frame to gossip.receive().
        on_frame(is_new, frame, src) is called after each (the node logs)."""
        import asyncio

        self.join()
        asyncio.create_task(self.keepalive())
        reader = asyncio.StreamReader(self.sock)
        while True:
            n = await reader.readinto(self._in)
            if n:
                r = self._parse(n)
                if r is not None:
                    is_new = gossip.receive(r[0], r[1], r[2])
                    if on_frame is not None:
                        on_frame(is_new, r[0], r[1])

    async def keepalive(self):
        """Re-join every join_interval_ms (a medium started late finds us)."""
        import asyncio

        while True:
            await asyncio.sleep_ms(self.join_interval_ms)
            self.join()

    def stats(self):
        return {"frames_out": self.frames_out, "frames_in": self.frames_in,
                "bytes_out": self.bytes_out, "send_errors": self.send_errors,
                "rx_bad": self.rx_bad, "joins": self.joins}

    def close(self):
        self.sock.close()
