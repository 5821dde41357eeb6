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
#
# Two-hop knowledge (backbone.py reads it): a node's digests list its
# neighbours' short ids (the low 16 bits of their node ids).  When row k's
# list is heard, bit j of row k in `adj` is set for every row j it names;
# rows j and k are neighbours when either named the other (adjacent()).
# ext[k] counts the names in k's list that are neither rows of ours nor us:
# k reaches nodes we don't.  Every digest's flags also say whether its sender
# relays (learn_role).  Dropping a row clears its row and column, so
# a row handed to another node never inherits the old one's links.
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
RELAYS = const(8)  # its last digest said it is in the relay backbone (backbone.py)


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
        w = (n + 7) >> 3
        self.w = w  # bytes of one row bitmap
        self.adj = bytearray(n * w)  # row k's list names row j: bit j of adj[k*w:]
        self.listed = bytearray(n)  # 1 once row k's list was heard
        self.ext = bytearray(n)  # names in row k's list that are not ours (at most 255)
        self.deg = bytearray(n)  # names in row k's list: its neighbour count, as it said
        self.grown = False  # a row was learned (or we joined or left the backbone) since our digest said so
        self.rev = 0  # moves on whenever a row is learned or dropped (backbone.py elects again)
        self.lsum = array("H", [0] * n)  # a checksum of row k's last list ...
        self.lrev = array("H", [0] * n)  # ... and rev when it was read: unchanged, it is skipped
        self._row = bytearray(w)  # learn_list's scratch row
        for a in self.addr:
            a[0:] = b""

    def memory_bytes(self):
        n = self.n
        return (5 * mem.buf(4 * n) + 4 * mem.buf(n) + mem.lst(n) + n * mem.buf(self.addr_max)
                + mem.buf(len(self._ix)) + mem.buf(n * self.w) + mem.buf(self.w) + 2 * mem.buf(2 * n))

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
                self._unlink(k)
        full = self.count >= self.n
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
        self.rev = (self.rev + 1) & 0x3FFF
        if not full:
            # a new neighbour in a free row: our list grew (a full table
            # replacing rows in a crowd would otherwise keep Trickle at its
            # shortest interval)
            self.grown = True
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
            self._unlink(k)

    # -- two-hop knowledge (the top of this file) ------------------------------
    def _unlink(self, k):
        """Forget every link of row k (its row and its column)."""
        self.rev = (self.rev + 1) & 0x3FFF
        adj = self.adj
        w = self.w
        for b in range(k * w, k * w + w):
            adj[b] = 0
        c = k >> 3
        m = ~(1 << (k & 7)) & 0xFF
        for j in range(self.n):
            adj[j * w + c] &= m
        self.listed[k] = 0
        self.ext[k] = 0
        self.deg[k] = 0

    def adjacent(self, a, b):
        """Rows a and b are neighbours of each other (either listed the other)."""
        w = self.w
        return bool(self.adj[a * w + (b >> 3)] >> (b & 7) & 1 or self.adj[b * w + (a >> 3)] >> (a & 7) & 1)

    def learn_role(self, k, relays):
        """Row k's digest says whether it relays.  True when that changed."""
        fl = self.flags
        old = fl[k] & RELAYS
        if relays:
            fl[k] |= RELAYS
        else:
            fl[k] &= ~RELAYS
        return (fl[k] & RELAYS) != old

    def learn_list(self, k, f, o, cnt, me_lo):
        """Row k's neighbour list: cnt short ids (2 bytes each) at f[o:].
        me_lo: our own short id (a name of us, not a node beyond us).  True
        when anything changed."""
        # the same list as last time, read against the same rows: nothing
        # to do (most digests heard repeat their sender's list)
        cs = cnt
        q = o
        for _e in range(cnt):
            cs = (cs * 31 + ((f[q] << 8) | f[q + 1])) & 0xFFFF
            q += 2
        if self.listed[k] and self.lsum[k] == cs and self.lrev[k] == self.rev:
            return False
        self.lsum[k] = cs
        adj = self.adj
        w = self.w
        base = k * w
        fl = self.flags
        changed = not self.listed[k] or self.deg[k] != cnt
        # the row's bits are rebuilt in self._row (one spare row) and compared
        new = self._row
        for b in range(w):
            new[b] = 0
        el = self.lo
        h = self.hi
        ext = 0
        for _e in range(cnt):
            sid = (f[o] << 8) | f[o + 1]
            o += 2
            if sid == me_lo:
                continue
            for j in range(self.n):
                if el[j] == sid and fl[j] and h[j] != _UNKNOWN:  # (the rarest test first)
                    if j != k:
                        new[j >> 3] |= 1 << (j & 7)
                    break
            else:
                ext += 1
        for b in range(w):
            if adj[base + b] != new[b]:
                adj[base + b] = new[b]
                changed = True
        self.listed[k] = 1
        self.ext[k] = ext if ext < 255 else 255
        self.deg[k] = cnt
        self.lrev[k] = self.rev
        return changed

    def known_count(self):
        """Rows whose node id we know: the neighbours we remember, heard
        lately or not (a quiet mesh is not an empty one)."""
        n = 0
        for k in range(self.n):
            if self.flags[k] and self.hi[k] != _UNKNOWN:
                n += 1
        return n

    def write_list(self, f, o, room):
        """Write the short ids of the neighbours we know (at most room) at
        f[o:]; return how many."""
        fl = self.flags
        cnt = 0
        for k in range(self.n):
            if cnt >= room:
                break
            if fl[k] and self.hi[k] != _UNKNOWN:
                lo = self.lo[k]
                f[o] = lo >> 8
                f[o + 1] = lo & 0xFF
                o += 2
                cnt += 1
        return cnt

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
        self.rev = (self.rev + 1) & 0x3FFF
        for b in range(len(self.adj)):
            self.adj[b] = 0
        for k in range(self.n):
            self.listed[k] = 0
            self.ext[k] = 0
            self.deg[k] = 0
