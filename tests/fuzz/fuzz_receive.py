"""`make fuzz`, CPython half: Gossip.receive under atheris (coverage-guided).

    python tests/fuzz/fuzz_receive.py -runs=1000000

Each input drives one of five engines (broadcast gossip, unicast rounds,
hybrid, flood, and broadcast gossip with a network key; small tables so
that they fill and cycle): a clock step, a
frame (well-formed with fuzzed fields, digests with neighbour lists whose
count may not match their length among them, the fuzzer's bytes spliced
into a valid frame, or raw bytes), who sent it and at what rssi, sometimes
a tick or a publish.  Any exception escaping receive()/tick() is a crash, and the
state invariants (tests/firmware/invariants.py, and the backbone's tables:
test_fuzz.check_links) are checked after every frame.
"""

import os
import random
import sys

import atheris

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [os.path.join(ROOT, "firmware"), os.path.join(ROOT, "tests", "firmware")]

with atheris.instrument_imports():
    from invariants import check
    from test_fuzz import check_links

    from rumor import Config, Gossip, wire


class Clock:
    def __init__(self):
        self.t = (1 << 30) - 5000  # a few seconds before the tick wrap

    def read(self):
        return self.t


CLOCK = Clock()
CONFIGS = [
    Config.small(ring_slots=6, dedup_slots=16, max_peers=4, relay_delay_ms=20, settle_ms=50),
    Config.small(broadcast=False, ring_slots=6, dedup_slots=16, max_peers=4, gossip_interval_ms=50),
    Config.small(mode="hybrid", ring_slots=4, dedup_slots=8, max_peers=3, suppress_rssi=0),
    Config.small(mode="flood", relay_delay_ms=0, ring_slots=4, dedup_slots=8, max_peers=3),
]
KEY = b"fuzzing-network-key-0123"
CONFIGS.append(Config.small(ring_slots=6, dedup_slots=16, max_peers=4, relay_delay_ms=20, settle_ms=50))
ENGINES = []
for i, cfg in enumerate(CONFIGS):
    g = Gossip(cfg, 0x0A0B0C00 + i, CLOCK.read, random.Random(i).getrandbits,
               key=KEY if i == len(CONFIGS) - 1 else None)
    g.on_forward(lambda frame, to: None)
    g.on_message(lambda msg: msg.payload())
    g.start()
    ENGINES.append(g)

TEMPLATES = [
    wire.encode_data(0x01020304, 7, b"payload", sender=0x05060708, hops=1, hop_limit=8),
    wire.encode_digest(0x05060708, [(0x01020304, 7), (0x0A0B0C00, 1)], summary=3, live=2,
                       span_ms=4000, ages_ms=[900, 3000], neighbours=[0x0C00, 0x0304, 0x0002], relays=True),
    wire.encode_request(0x05060708, [(0x01020304, 7), (0x0A0B0C01, 2)]),
]
PEERS = [bytes((2, 0, 0, 0, 0, i)) for i in range(8)]


def _ids(fdp, most):
    return [(fdp.ConsumeIntInRange(0, 7) << 24 | fdp.ConsumeIntInRange(0, 3),
             fdp.ConsumeIntInRange(0, 0xFFFF)) for _ in range(fdp.ConsumeIntInRange(0, most))]


def _sender(fdp):
    """A node id: one of a few (so rows recur and lists name them) or any."""
    return fdp.ConsumeIntInRange(0, 7) if fdp.ConsumeBool() else fdp.ConsumeIntInRange(0, 0xFFFFFFFF)


def _neighbours(fdp):
    """A digest's neighbour list: short ids of the engines, of the few
    senders, or anything (the backbone's learn_list path)."""
    out = []
    for _ in range(fdp.ConsumeIntInRange(0, 40)):
        how = fdp.ConsumeIntInRange(0, 2)
        out.append(0x0C00 + fdp.ConsumeIntInRange(0, 4) if how == 0 else
                   fdp.ConsumeIntInRange(0, 7) if how == 1 else fdp.ConsumeIntInRange(0, 0xFFFF))
    return out


def _frame(fdp):
    how = fdp.ConsumeIntInRange(0, 6)
    if how == 0:  # a well-formed frame of each type with fuzzed fields...
        return wire.encode_data(
            fdp.ConsumeIntInRange(0, 7) << 24 | fdp.ConsumeIntInRange(0, 3),
            fdp.ConsumeIntInRange(0, 0xFFFF), fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 240)),
            sender=fdp.ConsumeIntInRange(0, 0xFFFFFFFF), hops=fdp.ConsumeIntInRange(0, 255),
            hop_limit=fdp.ConsumeIntInRange(0, 255), age_ms=fdp.ConsumeIntInRange(0, 300000),
            priority=fdp.ConsumeIntInRange(0, 3))
    if how == 1:
        ids = _ids(fdp, 20)
        f = wire.encode_digest(
            _sender(fdp), ids, summary=fdp.ConsumeIntInRange(0, 0xFFFFFFFF),
            live=fdp.ConsumeIntInRange(0, 0xFFFF), span_ms=fdp.ConsumeIntInRange(0, 300000),
            truncated=fdp.ConsumeBool(), ages_ms=[fdp.ConsumeIntInRange(0, 20000) for _ in ids],
            neighbours=_neighbours(fdp), relays=fdp.ConsumeBool())
        if fdp.ConsumeIntInRange(0, 3) == 0:  # a neighbour count that doesn't match the length
            f = f[:3] + bytes([fdp.ConsumeIntInRange(0, 255)]) + f[4:]
        return f
    if how == 2:
        return wire.encode_request(fdp.ConsumeIntInRange(0, 0xFFFFFFFF), _ids(fdp, 45) or [(1, 1)])
    body = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 300))
    if how < 6:  # ...or the fuzzer's bytes spliced into a valid frame, or raw bytes
        t = TEMPLATES[how - 3]
        at = fdp.ConsumeIntInRange(0, len(t))
        return t[:at] + body + t[at + len(body):]
    return body


def one_input(data):
    fdp = atheris.FuzzedDataProvider(data)
    g = ENGINES[fdp.ConsumeIntInRange(0, len(ENGINES) - 1)]
    CLOCK.t += fdp.ConsumeIntInRange(0, 3000)
    frame = _frame(fdp)
    if g._auth is not None and len(frame) >= 8 and fdp.ConsumeBool():  # sealed, with a fuzzed stamp
        frame = wire.seal(frame, KEY, (CLOCK.t >> 6) - fdp.ConsumeIntInRange(-100, 5000))
        if fdp.ConsumeBool() and frame:  # and then one byte changed
            at = fdp.ConsumeIntInRange(0, len(frame) - 1)
            frame = frame[:at] + bytes([frame[at] ^ (1 + fdp.ConsumeIntInRange(0, 254))]) + frame[at + 1:]
    peer = PEERS[fdp.ConsumeIntInRange(0, len(PEERS) - 1)] if fdp.ConsumeBool() else None
    g.receive(frame, peer, fdp.ConsumeIntInRange(-120, 0))
    if fdp.ConsumeBool():
        g.tick()
    if fdp.ConsumeIntInRange(0, 15) == 0:
        g.publish(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, g._max_payload)),
                  fdp.ConsumeIntInRange(0, 3))
    check(g)
    check_links(g)


def main():
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
