# Neighbours: how well this node hears each node it hears directly.
#
# The board application's table for `rumor nodes` (the `peers` event's
# signal fields, docs/console.md): per neighbour its node id, the RSSI (and
# SNR on LoRa) of the last frame heard from it, when that was, and how many
# frames came from it.  The gossip core keeps its own peer table for
# routing; this one is only about the radio, fed by node.py with every
# frame the engine accepted (the `sender` field, bytes 4..7 of every frame,
# docs/wire.md: the node that transmitted it).
#
# Allocated once, sized by the core's max_peers; a new neighbour when the
# table is full takes the row of the one heard longest ago.  hear() runs on
# the receive path: index arithmetic on preallocated arrays, no allocation.
from array import array

try:
    from micropython import const
except ImportError:  # CPython
    const = lambda x: x  # noqa: E731

_MASK = const(0x3FFFFFFF)
_HALF = const(0x20000000)
NO_SNR = const(-0x8000)  # the radio gives no SNR (all but LoRa)


class Neighbours:
    def __init__(self, n, me=0):
        self.n = n
        self._me_hi = me >> 16  # our own frames echoed back are not a neighbour
        self._me_lo = me & 0xFFFF
        self.hi = array("i", [-1] * n)  # node id >> 16; -1: a free row
        self.lo = array("i", [0] * n)  # node id & 0xffff
        self.rssi = array("i", [0] * n)  # dBm of the last frame (0: the radio gave none)
        self.snr = array("i", [NO_SNR] * n)  # dB x 4 of the last frame, as LoRa drivers report it
        self.heard = array("i", [0] * n)  # tick (30-bit ms) of the last frame
        self.frames = array("i", [0] * n)  # frames heard (wraps at 2**30)
        self.count = 0
        self._last = 0  # the row hit last: most frames come from the same few nodes

    def memory_bytes(self, mem):
        return 6 * mem.buf(4 * self.n) + mem.inst(self)

    def hear(self, frame, rssi, snr, now):
        """A frame the engine took: its sender's row updated (or made)."""
        hi = (frame[4] << 8) | frame[5]
        lo = (frame[6] << 8) | frame[7]
        if hi == self._me_hi and lo == self._me_lo:
            return
        k = self._last
        if self.hi[k] != hi or self.lo[k] != lo:
            k = self._find(hi, lo)
            self._last = k
        self.rssi[k] = rssi
        self.snr[k] = snr
        self.heard[k] = now & _MASK
        self.frames[k] = (self.frames[k] + 1) & _MASK

    def _find(self, hi, lo):
        """The row of node (hi, lo); a new one if it has none (a free row,
        else the one heard longest ago)."""
        h = self.hi
        old = 0
        free = -1
        for k in range(self.n):
            if h[k] == hi and self.lo[k] == lo:
                return k
            if h[k] < 0:
                if free < 0:
                    free = k
            elif free < 0 and ((self.heard[k] - self.heard[old]) & _MASK) >= _HALF:
                old = k  # heard before the oldest so far
        k = free if free >= 0 else old
        if free >= 0:
            self.count += 1
        h[k] = hi
        self.lo[k] = lo
        self.frames[k] = 0
        return k

    def row(self, node_id, now):
        """(rssi, snr, frames, ms since heard) of node_id, or None."""
        hi = node_id >> 16
        lo = node_id & 0xFFFF
        for k in range(self.n):
            if self.hi[k] == hi and self.lo[k] == lo:
                snr = self.snr[k]
                return (self.rssi[k] or None, None if snr == NO_SNR else snr, self.frames[k],
                        ((now - self.heard[k] ^ _HALF) & _MASK) - _HALF)
        return None

    def ids(self):
        """Node ids of every row in use."""
        return [(self.hi[k] << 16) | self.lo[k] for k in range(self.n) if self.hi[k] >= 0]
