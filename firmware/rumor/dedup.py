# Dedup: the ids this node has seen, in one preallocated hash table.
#
# A message id is (origin, seq): 48 bits, kept as two 24-bit ints so that no
# value ever needs a big int on a 32-bit board.  The table is 4-way set
# associative: an id hashes to a bucket of 4 entries and is looked for only
# there, so a lookup is at most 4 compares and there are no tombstones.  When
# a bucket is full the oldest entry without a ring body goes first.
# The table has more entries than the ring has slots, so an id stays
# recognised as seen well after its body was evicted.
#
# A table of fixed size must forget sooner or later, and an id forgotten
# while copies of its message still travel would be delivered (and relayed)
# again.  So each bucket keeps a watermark: the first-seen time of the last
# id it evicted.  A message born before its bucket's watermark may be one we
# forgot, and is refused (forgotten() says so); one born after it cannot be.
# Ages travel with messages, so this is an age check that closes the window
# a cycling table would open.
#
# slot[i] links an id to the ring slot holding its body (-1: none).  The ring
# writes and clears it (ring.Ring.put and free); this table only reads it, to
# prefer evicting ids whose body is gone.
from array import array

try:
    from micropython import const
except ImportError:  # CPython
    const = lambda x: x  # noqa: E731

from . import mem
from .ticks import MASK

_HALF = const(0x20000000)
_EMPTY = const(-1)


def _bucket(hi, lo, bmask):
    """The bucket of id (hi, lo).  Every byte of the origin is spread over
    the low bits by its own odd multiplier (products stay small ints), so
    ids of nodes whose ids differ in one byte only (MAC-derived ids, a
    numbered fleet) and consecutive seqs all land in different buckets."""
    x = ((lo & 0xFFFF) ^ ((lo >> 16) * 0x9D) ^ ((hi & 0xFF) * 0x3B1)
         ^ (((hi >> 8) & 0xFF) * 0x2C5) ^ ((hi >> 16) * 0x1F7))
    return (x ^ (x >> 9)) & bmask


class Dedup:
    def __init__(self, slots):
        # slots: a power of two >= 4 (Config checks it)
        self.slots = slots
        self._bmask = (slots >> 2) - 1
        self.hi = array("i", [_EMPTY] * slots)  # origin >> 8, or -1 when free
        self.lo = array("i", [0] * slots)  # (origin & 0xff) << 16 | seq
        self.at = array("i", [0] * slots)  # tick when first seen
        self.slot = array("h", [-1] * slots)  # ring slot holding the body, or -1
        self.wm = array("i", [0] * (slots >> 2))  # per bucket: first-seen tick of the last evicted id
        self.wm_set = bytearray(slots >> 2)
        self.used = 0

    def memory_bytes(self):
        n = self.slots
        return 3 * mem.buf(4 * n) + mem.buf(2 * n) + mem.buf(n) + mem.buf(n >> 2)

    def find(self, hi, lo):
        """Index of (hi, lo), or -1.  Allocates nothing."""
        # (_bucket() inlined: this runs for every frame heard)
        x = ((lo & 0xFFFF) ^ ((lo >> 16) * 0x9D) ^ ((hi & 0xFF) * 0x3B1)
             ^ (((hi >> 8) & 0xFF) * 0x2C5) ^ ((hi >> 16) * 0x1F7))
        b = ((x ^ (x >> 9)) & self._bmask) << 2
        h = self.hi
        el = self.lo
        if h[b] == hi and el[b] == lo:
            return b
        b += 1
        if h[b] == hi and el[b] == lo:
            return b
        b += 1
        if h[b] == hi and el[b] == lo:
            return b
        b += 1
        if h[b] == hi and el[b] == lo:
            return b
        return -1

    def add(self, hi, lo, now):
        """Insert an id known to be absent; return its index.

        The entry it replaces may still own a ring body (slot[i] >= 0): the
        caller frees that body (ring.free, which clears slot[i]) before the
        index is linked to another.
        """
        # (_bucket() inlined, as in find(): once for every new message)
        x = ((lo & 0xFFFF) ^ ((lo >> 16) * 0x9D) ^ ((hi & 0xFF) * 0x3B1)
             ^ (((hi >> 8) & 0xFF) * 0x2C5) ^ ((hi >> 16) * 0x1F7))
        b = ((x ^ (x >> 9)) & self._bmask) << 2
        h = self.hi
        at = self.at
        sl = self.slot
        if h[b] == _EMPTY:
            best = b
        elif h[b + 1] == _EMPTY:
            best = b + 1
        elif h[b + 2] == _EMPTY:
            best = b + 2
        elif h[b + 3] == _EMPTY:
            best = b + 3
        else:
            # full bucket: the oldest entry without a body, else the oldest
            best = -1
            best_age = -1
            best_body = True
            for i in range(b, b + 4):
                age = ((now - at[i] ^ _HALF) & MASK) - _HALF
                body = sl[i] >= 0
                if (best_body and not body) or (body == best_body and age > best_age):
                    best = i
                    best_age = age
                    best_body = body
            self.used -= 1
            # remember how recent the forgetting reaches
            k = b >> 2
            t = at[best]
            if not self.wm_set[k] or ((t - self.wm[k] ^ _HALF) & MASK) - _HALF > 0:
                self.wm[k] = t
                self.wm_set[k] = 1
        self.used += 1
        h[best] = hi
        self.lo[best] = lo
        at[best] = now
        return best

    def remove(self, i):
        """Forget entry i (its body, if any, freed first: slot[i] is -1)."""
        self.hi[i] = _EMPTY
        self.used -= 1

    def forgotten(self, hi, lo, born):
        """True when an id absent from the table may be one it forgot: the
        message was born no later than the last eviction in its bucket."""
        x = ((lo & 0xFFFF) ^ ((lo >> 16) * 0x9D) ^ ((hi & 0xFF) * 0x3B1)
             ^ (((hi >> 8) & 0xFF) * 0x2C5) ^ ((hi >> 16) * 0x1F7))
        k = (x ^ (x >> 9)) & self._bmask  # (_bucket() inlined)
        return self.wm_set[k] and ((born - self.wm[k] ^ _HALF) & MASK) - _HALF <= 0

    def expire_watermarks(self, now, horizon_ms):
        """Drop watermarks older than horizon_ms: messages born before them
        are refused for their age anyway (and the ticks must not wrap)."""
        for k in range(len(self.wm)):
            if self.wm_set[k] and ((now - self.wm[k] ^ _HALF) & MASK) - _HALF > horizon_ms:
                self.wm_set[k] = 0

    def forget_older(self, now, horizon_ms):
        """Drop ids first seen more than horizon_ms ago that have no body."""
        h = self.hi
        at = self.at
        sl = self.slot
        n = 0
        for i in range(self.slots):
            if h[i] != _EMPTY and sl[i] < 0 and ((now - at[i] ^ _HALF) & MASK) - _HALF > horizon_ms:
                h[i] = _EMPTY
                n += 1
        self.used -= n
        return n

    def clear(self):
        for i in range(self.slots):
            self.hi[i] = _EMPTY
            self.slot[i] = -1
        for k in range(len(self.wm)):
            self.wm_set[k] = 0
        self.used = 0
