# Counters: what the engine counts, in one array allocated at boot.
#
#   g.counters[DUPLICATES]      a list of small ints, indexed by the names below
#   bump(c, DUPLICATES)         c[DUPLICATES] + 1, wrapping at 2**30
#   g.stats()["duplicates"]     the same, by name (NAMES[i] is counter i's)
#
# Counters are 30-bit and wrap, as ticks do (readers that sample them
# periodically unwrap them the same way): a 32-bit board's small ints stop at
# 2**30 - 1, and x + 1 past that would be a big int on the heap, so bump()
# adds 1 as (x - MASK) & MASK, which never leaves the small ints.
# The modules that count keep private const() copies of the indices they use
# (_DUPLICATES...: MicroPython inlines only a module's own consts);
# tests/host/test_consts.py checks every copy against this file.
try:
    from micropython import const
except ImportError:  # CPython
    const = lambda x: x  # noqa: E731

_MASK = const(0x3FFFFFFF)

FRAMES_IN = const(0)
FRAMES_OUT = const(1)
BYTES_OUT = const(2)
DELIVERED = const(3)
PUBLISHED = const(4)
DUPLICATES = const(5)
MALFORMED = const(6)
BAD_VERSION = const(7)
EVICTED = const(8)
EXPIRED = const(9)
SUPPRESSED = const(10)  # pending relays cancelled by copies heard
HOP_LIMITED = const(11)
FORGOTTEN = const(12)  # refused: possibly seen, and forgotten by a full dedup table
DIGESTS_OUT = const(13)
REQUESTS_OUT = const(14)
ANSWERED = const(15)  # messages sent because a digest or request lacked them
BAD_TAG = const(16)  # dropped: tag missing or wrong (with a key)
STALE = const(17)  # dropped: authenticated, but its stamp is too old (a replay)
RATE_LIMITED = const(18)  # dropped: its sender (or origin) was over its rate limit
QUOTA_EVICTED = const(19)  # own oldest replaced: its origin was at origin_quota
RESENT = const(20)  # broadcasts sent again: a forwarder that needed ours stayed silent

NAMES = ("frames_in", "frames_out", "bytes_out", "delivered", "published", "duplicates",
         "malformed", "bad_version", "evicted", "expired", "suppressed", "hop_limited",
         "forgotten", "digests_out", "requests_out", "answered", "bad_tag", "stale",
         "rate_limited", "quota_evicted", "resent")


def bump(c, k):
    """Counter k of array c, plus one, modulo 2**30."""
    c[k] = (c[k] - _MASK) & _MASK


def add(c, k, n):
    """Counter k of array c, plus n (0 < n < 2**30), modulo 2**30."""
    c[k] = (c[k] - _MASK + n - 1) & _MASK
