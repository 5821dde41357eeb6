# Origins: a rate limit per message origin, in a table allocated at boot.
#
# The per-sender limit (peers.py) caps what one neighbour feeds us, but a
# flood that several neighbours relay reaches us through all of them.  This
# caps what we accept from one origin, whichever way it comes: a token bucket
# for each of the origins heard most recently.  An origin not in the table
# takes the row idle longest (a flooder is never idle, so it keeps its row)
# and starts with a full bucket.  With a network key the origin is covered by
# the tag, so only key holders choose it.
from array import array

try:
    from micropython import const
except ImportError:  # CPython
    const = lambda x: x  # noqa: E731

from . import mem
from .ticks import MASK, level

_EMPTY = const(-1)


class Origins:
    def __init__(self, n):
        self.n = n
        self.hi = array("i", [_EMPTY] * n)  # origin >> 8 (as the dedup key), -1: free
        self.lo = bytearray(n)  # origin & 0xff
        self.tok = array("i", [0] * n)  # thousandths of a message
        self.at = array("i", [0] * n)  # tick the bucket was last filled
        # An origin whose bucket ran dry is flooding: until[k] is when that
        # stops counting (see busy())
        self.until = array("i", [0] * n)
        self.pen = bytearray(n)

    def memory_bytes(self):
        n = self.n
        return 4 * mem.buf(4 * n) + 2 * mem.buf(n)

    def allow(self, hi, lo, now, rate, burst, penalty):
        """Take one message of origin (hi, lo) from its bucket (rate per
        second, bursts of burst); False when it is empty, and the origin then
        counts as flooding for penalty ms.  Allocates nothing."""
        cap = burst * 1000
        h = self.hi
        el = self.lo
        pen = self.pen
        at = self.at
        k = -1
        idle = -1
        spare = 0
        for j in range(self.n):
            x = h[j]
            if x == hi and el[j] == lo:
                k = j
                break
            # a row for a new origin: an empty one, else the one idle
            # longest, but not a flooder's under penalty (it would lose it)
            if x == _EMPTY:
                e = MASK
            elif pen[j]:
                e = 0
            else:
                e = (now - at[j]) & MASK
            if e > idle:
                idle = e
                spare = j
        if k < 0:
            k = spare
            h[k] = hi
            el[k] = lo
            pen[k] = 0
            t = cap
        else:
            t = level(self.tok[k], at[k], now, rate, cap)
        at[k] = now
        if t < 1000:
            self.tok[k] = t
            self.pen[k] = 1
            self.until[k] = (now - MASK + penalty - 1) & MASK  # (now + penalty: small ints only)
            return False
        self.tok[k] = t - 1000
        return True

    def expire(self, now):
        """Forget penalties that are over (before the tick difference wraps)."""
        for k in range(self.n):
            if self.pen[k] and ((self.until[k] - now) & MASK) >= 0x20000000:
                self.pen[k] = 0

    def busy(self, hi, lo, now, rate, burst):
        """True when origin (hi, lo) is flooding: its bucket ran dry less than
        the penalty ago, or it has used up half of it.  Takes nothing."""
        h = self.hi
        el = self.lo
        for k in range(self.n):
            if h[k] == hi and el[k] == lo:
                if self.pen[k]:
                    d = (self.until[k] - now) & MASK
                    if d and d < 0x20000000:
                        return True
                    self.pen[k] = 0
                return level(self.tok[k], self.at[k], now, rate, burst * 1000) < burst * 500
        return False
