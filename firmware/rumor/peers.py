# Peers: the neighbours this node knows, in a table allocated at boot.
#
# A peer is known by its node id (the sender field of every frame) and, when
# the radio gives one, by its address (a MAC on ESP-NOW).  Peers added with
# add_peer() are static: they are candidates for unicast rounds even before
# they are heard, and learning never evicts them.  Peers learned from traffic
# take the free rows and, when the table is full, the row of the learned peer
# heard longest ago.  Node ids are held as two 16-bit halves so that no value
# needs a big int on a 32-bit board; a small open-addressing index maps an id
# to its row, so hearing a known peer is one or two probes.
from array import array

try:
    from micropython import const
except ImportError:  # CPython
    const = lambda x: x  # noqa: E731

from . import mem
from .ticks import MASK, level

_HALF = const(0x20000000)
_UNKNOWN = const(-1)

# flag bits
USED = const(1)
STATIC = const(2)
HEARD = const(4)  # heard at least once since it was added


class Peers:
    def __init__(self, n, addr_max):
        self.n = n
        self.addr_max = addr_max
        self.hi = array("i", [_UNKNOWN] * n)  # node id >> 16, -1 while not known
        self.lo = array("i", [0] * n)  # node id & 0xffff
        self.heard = array("i", [0] * n)  # tick last heard
        self.flags = bytearray(n)
        # rate limit: a token bucket per peer, in thousandths of a frame
        self.tok = array("i", [0] * n)
        self.tok_at = array("i", [0] * n)  # tick the bucket was last filled
        self._new_tok = -1  # the bucket new senders share (-1: full)
        self._new_at = 0
        self.addr = [bytearray(addr_max) for _ in range(n)]  # exact length = address
        size = 4
        while size < 2 * n:
            size <<= 1
        self._ix = bytearray(size)  # row + 1, 0 = empty
        self._imask = size - 1
        self.count = 0
        for a in self.addr:
            a[0:] = b""

    def memory_bytes(self):
        n = self.n
        return (5 * mem.buf(4 * n) + mem.buf(n) + mem.lst(n) + n * mem.buf(self.addr_max)
                + mem.buf(len(self._ix)))

    # -- the hot path -------------------------------------------------------
    def find(self, hi, lo):
        """Row of node id (hi, lo), or -1."""
        ix = self._ix
        m = self._imask
        j = (hi ^ (hi >> 5) ^ lo ^ (lo << 3)) & m
        h = self.hi
        el = self.lo
        while True:
            k = ix[j]
            if k == 0:
                return -1
            k -= 1
            if h[k] == hi and el[k] == lo:
                return k
            j = (j + 1) & m

    def hear(self, hi, lo, addr, now):
        """Mark node (hi, lo) heard now (learning it if new); return its row or -1.
        (find() inlined: this runs for every frame heard.)"""
        ix = self._ix
        m = self._imask
        j = (hi ^ (hi >> 5) ^ lo ^ (lo << 3)) & m
        h = self.hi
        el = self.lo
        while True:
            k = ix[j]
            if k == 0:
                return self._learn(hi, lo, addr, now)
            k -= 1
            if h[k] == hi and el[k] == lo:
                break
            j = (j + 1) & m
        self.heard[k] = now
        if addr is not None:
            a = self.addr[k]
            if not len(a) and len(addr) <= self.addr_max:
                a[0:] = addr
        return k

    def allow(self, k, now, rate, burst):
        """Take one frame from row k's bucket (rate per second, at most burst
        saved up); False when it is empty."""
        cap = burst * 1000
        lim = cap // rate + 1  # ms that fill an empty bucket
        t = self.tok[k]
        if t < 0:
            # A sender learned less than a bucket's filling time ago pays from
            # one bucket all such senders share; then it gets its own, full.
            # (The sender id is not authenticated: a node that changes its id
            # at every frame never gets past the shared bucket.)
            if (now - self.tok_at[k]) & MASK < lim:
                s = self._new_tok
                s = cap if s < 0 else level(s, self._new_at, now, rate, cap)
                self._new_at = now
                if s < 1000:
                    self._new_tok = s
                    return False
                self._new_tok = s - 1000
                return True
            t = cap
            self.tok_at[k] = now
        # (level() inlined: once for every new message and digest heard)
        ta = self.tok_at
        el = (now - ta[k]) & MASK
        t += (el if el < lim else lim) * rate
        if t > cap:
            t = cap
        ta[k] = now
        if t < 1000:
            self.tok[k] = t
            return False
        self.tok[k] = t - 1000
        return True

    def refund(self, k, burst):
        """Give back the frame allow() just took for row k (from its own
        bucket, or from the one new senders share)."""
        t = self.tok[k]
        cap = burst * 1000
        if t >= 0:
            t += 1000
            self.tok[k] = t if t < cap else cap
        elif self._new_tok >= 0:
            t = self._new_tok + 1000
            self._new_tok = t if t < cap else cap

    # -- slower paths ----------------------------------------------------------
    def _learn(self, hi, lo, addr, now):
        fl = self.flags
        k = -1
        if addr is not None and len(addr) <= self.addr_max:
            k = self.by_addr(addr)  # a static peer heard for the first time
            if k >= 0 and self.hi[k] != _UNKNOWN:
                # the address moved to another node id (a board re-flashed
                # with a new id): the row follows the address.
                self.hi[k] = _UNKNOWN
                self._reindex()
        if k < 0:
            k = self._free_row(now)
            if k < 0:
                return -1
            fl[k] = USED
            self.count += 1
            a = self.addr[k]
            if addr is not None and len(addr) <= self.addr_max:
                a[0:] = addr
            else:
                a[0:] = b""
        self.hi[k] = hi
        self.lo[k] = lo
        self.heard[k] = now
        self.tok[k] = -1  # new: see allow()
        self.tok_at[k] = now
        fl[k] |= HEARD
        self._insert(k)
        return k

    def _free_row(self, now):
        fl = self.flags
        for k in range(self.n):
            if not fl[k]:
                return k
        # full: evict the learned peer heard longest ago
        best = -1
        oldest = -1
        for k in range(self.n):
            if not fl[k] & STATIC:
                age = ((now - self.heard[k] ^ _HALF) & MASK) - _HALF if fl[k] & HEARD else _HALF
                if age > oldest:
                    oldest = age
                    best = k
        if best >= 0:
            self._drop(best)
        return best

    def _insert(self, k):
        m = self._imask
        hi = self.hi[k]
        lo = self.lo[k]
        j = (hi ^ (hi >> 5) ^ lo ^ (lo << 3)) & m
        ix = self._ix
        while ix[j]:
            j = (j + 1) & m
        ix[j] = k + 1

    def _reindex(self):
        ix = self._ix
        for j in range(len(ix)):
            ix[j] = 0
        for k in range(self.n):
            if self.flags[k] and self.hi[k] != _UNKNOWN:
                self._insert(k)

    def _drop(self, k):
        if self.flags[k]:
            self.flags[k] = 0
            self.count -= 1
            self.hi[k] = _UNKNOWN
            self.addr[k][0:] = b""
            self._reindex()

    def by_addr(self, addr):
        for k in range(self.n):
            if self.flags[k] and self.addr[k] == addr:
                return k
        return -1

    def add_static(self, addr, now):
        k = self.by_addr(addr)
        if k >= 0:
            self.flags[k] |= STATIC
            return k
        k = self._free_row(now)
        if k < 0:
            raise ValueError("peer table full: all %d rows hold static peers (raise max_peers)" % self.n)
        self.flags[k] = USED | STATIC
        self.count += 1
        self.hi[k] = _UNKNOWN
        self.heard[k] = now
        self.addr[k][0:] = addr
        return k

    def remove(self, addr):
        k = self.by_addr(addr)
        if k >= 0:
            self._drop(k)
        return k >= 0

    def active(self, k, now, timeout):
        return (self.flags[k] & HEARD) and ((now - self.heard[k] ^ _HALF) & MASK) - _HALF <= timeout

    def expire(self, now, timeout):
        """Forget 'heard' on rows silent for longer than timeout, before the
        30-bit tick difference can wrap and make them look fresh again."""
        fl = self.flags
        for k in range(self.n):
            if fl[k] & HEARD and ((now - self.heard[k] ^ _HALF) & MASK) - _HALF > timeout:
                fl[k] &= ~HEARD

    def active_count(self, now, timeout):
        n = 0
        for k in range(self.n):
            if self.flags[k] and self.active(k, now, timeout):
                n += 1
        return n

    def report(self, now):
        """[(address or None, node id or None, ms since heard or None, static)]
        (allocates: for reports, not for the receive path)"""
        out = []
        fl = self.flags
        for k in range(self.n):
            if fl[k]:
                heard = None
                if fl[k] & HEARD:
                    heard = ((now - self.heard[k] ^ _HALF) & MASK) - _HALF
                out.append((bytes(self.addr[k]) or None, self.node_id(k), heard, bool(fl[k] & STATIC)))
        return out

    def node_id(self, k):
        if self.hi[k] == _UNKNOWN:
            return None
        return (self.hi[k] << 16) | self.lo[k]

    def clear(self):
        for k in range(self.n):
            self.flags[k] = 0
            self.hi[k] = _UNKNOWN
            self.addr[k][0:] = b""
        self.count = 0
        self._reindex()
