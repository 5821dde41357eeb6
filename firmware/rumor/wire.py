# The wire format, byte by byte (docs/wire.md says the same in prose).
#
# The engine parses frames inline with its own private consts (MicroPython
# inlines only a module's own consts); this module is the reference that
# tools, tests and fuzzers build and read frames with.  Its functions
# allocate freely: they are not for the receive path.
#
# Every frame starts with the same 8 bytes:
#   0     ver_type   version (high nibble, 1) | type (low nibble)
#   1     flags      DATA: priority in bits 0-1.  DIGEST: bit 0 = truncated
#   2     hops/count DATA: transmissions so far (0 at the origin)
#                    DIGEST, REQUEST: number of ids that follow
#   3     hop_limit  DATA: relays allowed.  Others: 0
#   4..7  sender     node id of the transmitter, big-endian
# DATA    8..11 origin, 12..13 seq, 14..15 age (4 ms units), 16.. payload
# DIGEST  8..11 summary (30-bit xor of the sender's live ids), 12..13 live
#         count, 14..15 age of the oldest id listed (4 ms units), 16.. entries
#         of 7 bytes: id + its age in 64 ms units (255: that or older)
# REQUEST 8.. ids
# An id is origin (4 bytes) + seq (2 bytes).
import struct

VERSION = 1
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
PRIO_MASK = 0x03
ESPNOW_MTU = 250  # ESP-NOW v1 payload limit


def _age(age_ms):
    a = age_ms // AGE_UNIT_MS
    return 0xFFFF if a > 0xFFFF else a


def encode_data(origin, seq, payload, sender=None, hops=0, hop_limit=32, age_ms=0, priority=0):
    if sender is None:
        sender = origin
    return (
        struct.pack(">BBBBIIHH", (VERSION << 4) | DATA, priority & PRIO_MASK, hops, hop_limit,
                    sender, origin, seq, _age(age_ms))
        + bytes(payload)
    )


def _ids(ids):
    return b"".join(struct.pack(">IH", o, s) for o, s in ids)


def encode_digest(sender, ids, summary=0, live=None, span_ms=0, truncated=False, ages_ms=None):
    """ids: [(origin, seq)]; ages_ms: their ages (default: all 'old', 255)."""
    ids = list(ids)
    if live is None:
        live = len(ids)
    if ages_ms is None:
        ages = [255] * len(ids)
    else:
        ages = [min(255, a // DIGEST_AGE_UNIT_MS) for a in ages_ms]
    return struct.pack(
        ">BBBBIIHH", (VERSION << 4) | DIGEST, F_TRUNCATED if truncated else 0, len(ids), 0,
        sender, summary, live, _age(span_ms),
    ) + b"".join(struct.pack(">IHB", o, s, a) for (o, s), a in zip(ids, ages))


def encode_request(sender, ids):
    ids = list(ids)
    return struct.pack(">BBBBI", (VERSION << 4) | REQUEST, 0, len(ids), 0, sender) + _ids(ids)


def message_id(origin, seq):
    """The int id publish() returns and deliveries report."""
    return (origin << 16) | seq


def split_id(msg_id):
    return msg_id >> 16, msg_id & 0xFFFF


def decode(frame):
    """A frame as a dict; ValueError naming what is wrong when it is not one."""
    frame = bytes(frame)
    n = len(frame)
    if n < REQUEST_HDR:
        raise ValueError("frame of %d bytes is shorter than any header" % n)
    ver = frame[0] >> 4
    t = frame[0] & 0x0F
    if ver != VERSION:
        raise ValueError("unknown wire version %d" % ver)
    if t not in TYPES:
        raise ValueError("unknown frame type %d" % t)
    sender = struct.unpack(">I", frame[4:8])[0]
    out = {"type": TYPES[t], "sender": sender, "length": n}
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
    if n != hdr + size * count:
        raise ValueError("%s frame of %d bytes does not hold the %d ids it announces"
                         % (TYPES[t], n, count))
    ids = [struct.unpack(">IH", frame[o:o + ID_LEN]) for o in range(hdr, n, size)]
    out["ids"] = ids
    if t == DIGEST:
        out["ages_ms"] = [frame[o + ID_LEN] * DIGEST_AGE_UNIT_MS for o in range(hdr, n, size)]
        summary, live, span = struct.unpack(">IHH", frame[8:16])
        out.update(summary=summary, live=live, span_ms=span * AGE_UNIT_MS,
                   truncated=bool(frame[1] & F_TRUNCATED))
    elif count == 0:
        raise ValueError("request frame with no ids")
    return out
