# Auth: the network key and the HMAC-SHA256 tags it puts on frames.
#
# With a key, every frame ends in a trailer: a 4-byte stamp (network time,
# see netclock.py) and a tag, the first tag_len bytes of
# HMAC-SHA256(key, covered bytes).  What is covered is the whole frame up to
# the tag, except the fields a relay rewrites on a DATA frame (hops, sender,
# age), which are taken as zero: the origin signs a message once and every
# relay forwards the signature unchanged (docs/wire.md, "Authenticated
# frames").
#
# HMAC is built from hashlib.sha256 (the ESP32 port has it, in hardware) as
# RFC 2104 says: H(key^opad || H(key^ipad || m)).  The two padded keys are
# computed once.  hashlib objects and digests are allocated per call: with a
# key, receive() touches the heap for the few hundred bytes a hash needs and
# keeps none of it (without a key it allocates nothing).
try:
    from micropython import const
except ImportError:  # CPython
    const = lambda x: x  # noqa: E731

import hashlib

_BLOCK = const(64)  # SHA-256 block size
KEY_MIN = const(16)
KEY_MAX = const(64)


def check_key(key):
    """The key as bytes; ValueError unless it is 16..64 bytes."""
    if not isinstance(key, (bytes, bytearray)):
        raise ValueError("network key must be bytes, got %s" % type(key).__name__)
    if not KEY_MIN <= len(key) <= KEY_MAX:
        raise ValueError("network key must be %d..%d bytes, got %d" % (KEY_MIN, KEY_MAX, len(key)))
    return bytes(key)


class Auth:
    def __init__(self, key, tag_len, mtu):
        k = check_key(key)
        self.tag_len = tag_len
        self._ik = bytearray(_BLOCK)
        self._ok = bytearray(_BLOCK)
        for i in range(_BLOCK):
            b = k[i] if i < len(k) else 0
            self._ik[i] = b ^ 0x36
            self._ok[i] = b ^ 0x5C
        self._buf = bytearray(mtu)  # the covered bytes of the frame at hand
        self.fingerprint = hashlib.sha256(k).digest()[:4]  # safe to show: not the key

    def memory_bytes(self, mem):
        return 2 * mem.buf(_BLOCK) + mem.buf(len(self._buf)) + mem.inst(self)

    def _mac(self, f, n, data):
        b = self._buf
        b[0:] = f
        if data:  # a relay rewrites these: covered as zero
            b[2] = 0
            b[4] = 0
            b[5] = 0
            b[6] = 0
            b[7] = 0
            b[14] = 0
            b[15] = 0
        b[n - self.tag_len:] = b""
        h = hashlib.sha256(self._ik)
        h.update(b)
        inner = h.digest()
        h = hashlib.sha256(self._ok)
        h.update(inner)
        return h.digest()

    def sign(self, f, data):
        """Write the tag into the last tag_len bytes of frame f."""
        n = len(f)
        d = self._mac(f, n, data)
        t = self.tag_len
        for i in range(t):
            f[n - t + i] = d[i]

    def verify(self, f, n, data):
        """True when the last tag_len bytes of f (n bytes long) are its tag."""
        d = self._mac(f, n, data)
        t = self.tag_len
        o = n - t
        x = 0
        for i in range(t):  # every byte compared: no early exit to time
            x |= d[i] ^ f[o + i]
        return x == 0
