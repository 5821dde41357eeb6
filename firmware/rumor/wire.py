# The wire format, byte by byte (docs/wire.md says the same in prose).
#
# This module is the reference: tools, tests and fuzzers build and read
# frames with it, and its constants are the one definition of the format.
# Its functions allocate freely: they are not for the receive path.  The
# engine and the radio adapters keep private const() copies of the values
# they use (_DATA_HDR...: MicroPython inlines only a module's own consts; a
# board never loads this file), and tests/host/test_consts.py checks every
# copy against the names here.  The engine reads the fixed offsets below as
# literal indices (f[14], f[15] is the age): a named global would cost a
# dictionary lookup per byte under CPython, where the simulator runs it.
#
# Every frame starts with the same 8 bytes:
#   0     ver_type   version (high nibble, 2) | type (low nibble)
#   1     flags      DATA: priority in bits 0-1.  DIGEST: bit 0 = truncated,
#                    bit 3 = the sender relays (it is in the backbone)
#   2     hops/count DATA: transmissions so far (0 at the origin)
#                    DIGEST, REQUEST: number of ids that follow
#   3     hop_limit  DATA: relays allowed.  DIGEST: neighbours listed.  REQUEST: 0
#   4..7  sender     node id of the transmitter, big-endian
# DATA    8..11 origin, 12..13 seq, 14..15 age (4 ms units), 16.. payload
# DIGEST  8..11 summary (30-bit xor of the sender's live ids), 12..13 live
#         count, 14..15 age of the oldest id listed (4 ms units), 16.. entries
#         of 7 bytes: id + its age in 64 ms units (255: that or older), then
#         the sender's neighbours: 2 bytes each, the low 16 bits of their ids
# REQUEST 8.. ids
# An id is origin (4 bytes) + seq (2 bytes).
# With a network key (flags bit 7 set, all types) the frame ends in a 4-byte
# stamp (network time, 64 ms units) and a tag: the first tag_len bytes of
# HMAC-SHA256(key, frame up to the tag), DATA's hops, sender and age taken
# as zero.
import hashlib
import struct

VERSION = 2
DATA = 1
DIGEST = 2
REQUEST = 3
TYPES = {DATA: "data", DIGEST: "digest", REQUEST: "request"}

DATA_HDR = 16
DIGEST_HDR = 16
REQUEST_HDR = 8
ID_LEN = 6
DIGEST_ENTRY = 7
DIGEST_AGE_UNIT_MS = 64
AGE_UNIT_MS = 4
F_TRUNCATED = 0x01
F_AUTH = 0x80
F_SYNC = 0x02  # DIGEST, tagged: "tell me the time"; the stamp field is a nonce
F_ECHO = 0x04  # DIGEST, tagged: the answer; the nonce echoed precedes the stamp
F_RELAYS = 0x08  # DIGEST: the sender is in the relay backbone (backbone.py)
NEIGHBOUR_LEN = 2  # DIGEST: a neighbour's short id, the low 16 bits of its node id
STAMP_LEN = 4
ECHO_LEN = 4  # DIGEST with F_ECHO: the nonce echoed, in front of the stamp
NET_UNIT_MS = 64  # network time (stamps) in 64 ms units
TAG_LEN = 8
PRIO_MASK = 0x03
ESPNOW_MTU = 250  # ESP-NOW v1 payload limit
# the units above as shifts (ms >> shift), as the engine computes them
AGE_SHIFT = 2  # AGE_UNIT_MS
DIGEST_AGE_SHIFT = 6  # DIGEST_AGE_UNIT_MS
NET_SHIFT = 6  # NET_UNIT_MS
AGE_WIRE_MAX = 0xFFFF  # the largest age a frame carries (ages beyond read as it)
# byte 0 of each type (version 2)
VT_DATA = (VERSION << 4) | DATA
VT_DIGEST = (VERSION << 4) | DIGEST
VT_REQUEST = (VERSION << 4) | REQUEST
# offsets (the layout above)
O_VT = 0
O_FLAGS = 1
O_HOPS = 2  # DATA
O_COUNT = 2  # DIGEST, REQUEST
O_HOP_LIMIT = 3
O_NEIGHBOURS = 3  # DIGEST: how many neighbour short ids follow the entries
O_SENDER = 4
O_ORIGIN = 8  # DATA
O_SUMMARY = 8  # DIGEST
O_SEQ = 12  # DATA
O_LIVE = 12  # DIGEST
O_AGE = 14  # DATA
O_SPAN = 14  # DIGEST


def hmac_sha256(key, msg):
    """RFC 2104 HMAC-SHA256 (MicroPython has no hmac module)."""
    key = bytes(key)
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key + bytes(64 - len(key))
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    inner.update(bytes(msg))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    outer.update(inner.digest())
    return outer.digest()


def _covered(frame):
    """The bytes a tag covers: DATA's hops, sender and age read as zero."""
    c = bytearray(frame)
    if c[0] & 0x0F == DATA:
        c[2] = 0
        c[4:8] = bytes(4)
        c[14:16] = bytes(2)
    return bytes(c)


def seal(frame, key, stamp=0, tag_len=TAG_LEN):
    """frame with the auth flag set and a stamp and a tag appended."""
    f = bytearray(frame)
    if len(f) < REQUEST_HDR:
        raise ValueError("frame of %d bytes is shorter than any header" % len(f))
    f[1] |= F_AUTH
    f += struct.pack(">I", stamp & 0x3FFFFFFF)
    return bytes(f) + hmac_sha256(key, _covered(f))[:tag_len]


def _sealed(frame, key, stamp, tag_len):
    return frame if key is None else seal(frame, key, stamp, tag_len)


def _age(age_ms):
    a = age_ms // AGE_UNIT_MS
    return 0xFFFF if a > 0xFFFF else a


def encode_data(origin, seq, payload, sender=None, hops=0, hop_limit=32, age_ms=0, priority=0,
                key=None, stamp=0, tag_len=TAG_LEN):
    """A DATA frame; with key, sealed with stamp (network time, 64 ms units)."""
    if sender is None:
        sender = origin
    return _sealed(
        struct.pack(">BBBBIIHH", (VERSION << 4) | DATA, priority & PRIO_MASK, hops, hop_limit,
                    sender, origin, seq, _age(age_ms))
        + bytes(payload), key, stamp, tag_len)


def _ids(ids):
    return b"".join(struct.pack(">IH", o, s) for o, s in ids)


def encode_digest(sender, ids, summary=0, live=None, span_ms=0, truncated=False, ages_ms=None,
                  key=None, stamp=0, tag_len=TAG_LEN, ask=False, echo=None, neighbours=(),
                  relays=False):
    """A DIGEST; with key, sealed.  ids: [(origin, seq)]; ages_ms: their
    ages (default: all 'old', 255).  ask: a question for the time (stamp is
    then the nonce); echo: an answer to the question with that nonce.
    neighbours: the sender's neighbours' node ids (their low 16 bits are
    sent); relays: it says it is in the relay backbone."""
    ids = list(ids)
    nb = [n & 0xFFFF for n in neighbours]
    if len(nb) > 255:
        raise ValueError("a digest lists at most 255 neighbours")
    if live is None:
        live = len(ids)
    if ages_ms is None:
        ages = [255] * len(ids)
    else:
        ages = [min(255, a // DIGEST_AGE_UNIT_MS) for a in ages_ms]
    flags = ((F_TRUNCATED if truncated else 0) | (F_SYNC if ask else 0)
             | (0 if echo is None else F_ECHO) | (F_RELAYS if relays else 0))
    return _sealed(struct.pack(
        ">BBBBIIHH", (VERSION << 4) | DIGEST, flags, len(ids), len(nb),
        sender, summary, live, _age(span_ms),
    ) + b"".join(struct.pack(">IHB", o, s, a) for (o, s), a in zip(ids, ages))
        + b"".join(struct.pack(">H", x) for x in nb)
        + (b"" if echo is None else struct.pack(">I", echo & 0x3FFFFFFF)), key, stamp, tag_len)


def encode_request(sender, ids, key=None, stamp=0, tag_len=TAG_LEN):
    ids = list(ids)
    return _sealed(struct.pack(">BBBBI", (VERSION << 4) | REQUEST, 0, len(ids), 0, sender)
                   + _ids(ids), key, stamp, tag_len)


def message_id(origin, seq):
    """The int id publish() returns and deliveries report."""
    return (origin << 16) | seq


def split_id(msg_id):
    return msg_id >> 16, msg_id & 0xFFFF


def decode(frame, key=None, tag_len=TAG_LEN):
    """A frame as a dict; ValueError naming what is wrong when it is not one.
    A tagged frame also gets stamp, tag and, given the key, tag_ok (with a
    key an untagged frame gets tag_ok False)."""
    frame = bytes(frame)
    n = total = len(frame)
    auth = {}
    if n >= REQUEST_HDR and frame[1] & F_AUTH:
        if n < REQUEST_HDR + STAMP_LEN + tag_len:
            raise ValueError("tagged frame of %d bytes has no room for its stamp and tag" % n)
        body = n - STAMP_LEN - tag_len
        auth["stamp"] = struct.unpack(">I", frame[body:body + STAMP_LEN])[0] & 0x3FFFFFFF
        auth["tag"] = frame[n - tag_len:]
        if key is not None:
            want = hmac_sha256(key, _covered(frame[:n - tag_len]))[:tag_len]
            auth["tag_ok"] = want == auth["tag"]
        if frame[0] & 0x0F == DIGEST and frame[1] & F_ECHO:
            body -= 4
            auth["echo"] = struct.unpack(">I", frame[body:body + 4])[0] & 0x3FFFFFFF
        if frame[0] & 0x0F == DIGEST:
            auth["ask"] = bool(frame[1] & F_SYNC)
        frame = frame[:body]
        n = body
    elif key is not None:
        auth["tag_ok"] = False
    if n < REQUEST_HDR:
        raise ValueError("frame of %d bytes is shorter than any header" % n)
    ver = frame[0] >> 4
    t = frame[0] & 0x0F
    if ver != VERSION:
        raise ValueError("unknown wire version %d" % ver)
    if t not in TYPES:
        raise ValueError("unknown frame type %d" % t)
    sender = struct.unpack(">I", frame[4:8])[0]
    out = {"type": TYPES[t], "sender": sender, "length": total}
    out.update(auth)
    if t == DATA:
        if n < DATA_HDR:
            raise ValueError("data frame of %d bytes is shorter than its %d-byte header" % (n, DATA_HDR))
        origin, seq, age = struct.unpack(">IHH", frame[8:16])
        if frame[2] > frame[3]:
            raise ValueError("hops %d above hop_limit %d" % (frame[2], frame[3]))
        out.update(priority=frame[1] & PRIO_MASK, hops=frame[2], hop_limit=frame[3],
                   origin=origin, seq=seq, id=message_id(origin, seq),
                   age_ms=age * AGE_UNIT_MS, payload=frame[DATA_HDR:])
        return out
    hdr, size = (DIGEST_HDR, DIGEST_ENTRY) if t == DIGEST else (REQUEST_HDR, ID_LEN)
    count = frame[2]
    nbs = frame[3] if t == DIGEST else 0
    end = hdr + size * count
    if n != end + NEIGHBOUR_LEN * nbs:
        raise ValueError("%s frame of %d bytes does not hold the %d ids%s it announces"
                         % (TYPES[t], n, count, " and %d neighbours" % nbs if nbs else ""))
    ids = [struct.unpack(">IH", frame[o:o + ID_LEN]) for o in range(hdr, end, size)]
    out["ids"] = ids
    if t == DIGEST:
        out["ages_ms"] = [frame[o + ID_LEN] * DIGEST_AGE_UNIT_MS for o in range(hdr, end, size)]
        summary, live, span = struct.unpack(">IHH", frame[8:16])
        out.update(summary=summary, live=live, span_ms=span * AGE_UNIT_MS,
                   truncated=bool(frame[1] & F_TRUNCATED), relays=bool(frame[1] & F_RELAYS),
                   neighbours=[struct.unpack(">H", frame[o:o + NEIGHBOUR_LEN])[0]
                               for o in range(end, n, NEIGHBOUR_LEN)])
    elif count == 0:
        raise ValueError("request frame with no ids")
    return out
