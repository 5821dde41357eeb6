# Message: what an engine hands its on_message callback; and the helpers that
# read and write a frame's multi-byte fields.
try:
    from micropython import const
except ImportError:  # CPython
    const = lambda x: x  # noqa: E731

_DATA_HDR = const(16)  # wire.py's DATA_HDR


class Message:
    """What on_message callbacks get.  One instance per engine, reused: read
    it during the callback, copy what you keep (payload() makes a copy)."""

    def __init__(self):
        self.frame = bytearray(0)  # the whole frame, header (and tag) included
        self.end = _DATA_HDR  # where the payload ends in frame (a tag may follow)
        self.hops = 0  # transmissions it took to get here (1: from the origin)
        self.priority = 0
        self.age_ms = 0
        self.seq = 0
        self.origin_hi = 0
        self.origin_lo = 0

    @property
    def origin(self):
        return (self.origin_hi << 16) | self.origin_lo

    @property
    def id(self):
        """(origin << 16) | seq, as publish() returned it at the origin."""
        return (((self.origin_hi << 16) | self.origin_lo) << 16) | self.seq

    def payload(self):
        return bytes(self.frame[_DATA_HDR:self.end])

    def __len__(self):
        return self.end - _DATA_HDR


def u30(f, o):
    """The 30-bit big-endian value at f[o:o+4] (stamps, nonces, summaries)."""
    return ((f[o] & 0x3F) << 24) | (f[o + 1] << 16) | (f[o + 2] << 8) | f[o + 3]


def put_u30(f, o, v):
    f[o] = (v >> 24) & 0x3F
    f[o + 1] = (v >> 16) & 0xFF
    f[o + 2] = (v >> 8) & 0xFF
    f[o + 3] = v & 0xFF


def put_id(f, o, hi, lo):
    """A node id (hi, lo: 16 bits each) at f[o:o+4]."""
    f[o] = hi >> 8
    f[o + 1] = hi & 0xFF
    f[o + 2] = lo >> 8
    f[o + 3] = lo & 0xFF
