# `make fuzz`, MicroPython half: random and mutated frames through
# Gossip.receive under the unix port, each one with micropython.heap_lock()
# held (every receive path must run without allocating), then tick() held
# too, and the state invariants checked after every frame.  Digests carry
# neighbour lists (the backbone's learn_list path), some with a count that
# doesn't match their length.  A fourth engine
# has a network key: hashlib allocates, so its frames run without the lock
# (exceptions still count as failures), half of them sealed with the key.
# Half the ids (engines, origins, senders) are as large as a real board's
# (>= 2**30), and the clock wraps at 2**30 as a board's ticks_ms does.
#     micropython tests/fuzz/fuzz_mp.py 100000
import random
import sys

import micropython
from invariants import check
from test_fuzz import check_links

from rumor import Config, Gossip, wire

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
BATCH = 500  # frames are built outside the lock, a batch at a time


_MASK = 0x3FFFFFFF  # a board's ticks_ms wraps at 2**30


class Clock:
    """A board's ticks_ms: 30 bits, started 5 s before the wrap, and moved
    without ever leaving the small ints (on a 32-bit port t + ms past 2**30
    would be a big int: an allocation of the harness's, not the core's)."""

    def __init__(self):
        self.t = _MASK + 1 - 5000

    def read(self):
        return self.t

    def advance(self, ms):
        self.t = (self.t - _MASK + ms - 1) & _MASK


def main():
    random.seed(1)
    rnd = random.getrandbits
    ck = Clock()
    cfgs = [
        Config.small(ring_slots=6, dedup_slots=16, max_peers=4, relay_delay_ms=20, settle_ms=50),
        Config.small(broadcast=False, ring_slots=6, dedup_slots=16, max_peers=4, gossip_interval_ms=50),
        Config.small(mode="hybrid", ring_slots=4, dedup_slots=8, max_peers=3),
    ]
    cfgs.append(Config.small(ring_slots=6, dedup_slots=16, max_peers=4, relay_delay_ms=20, settle_ms=50))
    key = b"fuzzing-network-key-0123"
    engines = []
    for i, cfg in enumerate(cfgs):
        # half the engines have a real ESP32's id, past the 32-bit small ints
        me = (0xC40B0C00 if i & 1 else 0x0A0B0C00) + i
        g = Gossip(cfg, me, ck.read, rnd, key=key if i == 3 else None)
        g.on_forward(lambda frame, to: None)
        g.on_message(lambda msg: None)
        g.start()
        engines.append(g)
    peers = [bytes((2, 0, 0, 0, 0, i)) for i in range(8)]

    def nid(bits):
        """A small id, or half the time one of MAC-derived size (0xC4......)."""
        return rnd(bits) | (0xC40AD100 if rnd(1) else 0)

    done = 0
    allocs = 0
    listed = [0] * len(engines)  # per engine: the most rows with a neighbour list at once
    while done < N:
        batch = []
        for _ in range(BATCH):
            k = rnd(2)
            if k == 0:
                f = wire.encode_data(nid(3), rnd(5), bytes(rnd(5)), sender=nid(4), hops=rnd(2),
                                     hop_limit=8, age_ms=rnd(10), priority=rnd(2))
            elif k == 1:
                ids = [(nid(3), rnd(5)) for _ in range(rnd(3))]
                # a neighbour list: the engines' short ids, the senders', or any
                nb = [(0x0C00 + (rnd(2) & 3), nid(4), rnd(16))[rnd(4) % 3] for _ in range(rnd(4))]
                f = wire.encode_digest(nid(4), ids, summary=rnd(20), live=rnd(4), span_ms=rnd(12),
                                       ages_ms=[rnd(12) for _ in ids], neighbours=nb, relays=rnd(1))
                if not rnd(2):  # a neighbour count that doesn't match the length
                    f = f[:3] + bytes((rnd(8),)) + f[4:]
            elif k == 2:
                f = wire.encode_request(nid(4), [(nid(3), rnd(5)) for _ in range(1 + rnd(2))])
            else:
                f = bytes(rnd(8) for _ in range(rnd(8)))
            f = bytearray(f)
            for _ in range(rnd(2)):  # mutate a byte or cut the frame
                if len(f) and rnd(1):
                    f[rnd(8) % len(f)] = rnd(8)
                elif len(f):
                    f = f[: rnd(8) % len(f)]
            g = engines[rnd(8) % len(engines)]
            if g._auth is not None and rnd(1) and len(f) >= 8:
                f = bytearray(wire.seal(f, key, max(0, (ck.t >> 6) - rnd(10))))
                if rnd(1) and len(f):
                    f[rnd(8) % len(f)] ^= 1 + rnd(7)
            batch.append((g, bytes(f), peers[rnd(3)], -40 - rnd(6)))
        for g, f, p, rssi in batch:
            ck.advance(rnd(6))
            if g._auth is not None:
                g.receive(f, p, rssi)
                g.tick()
                check(g)
                listed[engines.index(g)] = max(listed[engines.index(g)], check_links(g))
                done += 1
                continue
            micropython.heap_lock()
            try:
                g.receive(f, p, rssi)
                g.tick()
            except MemoryError:
                allocs += 1
            micropython.heap_unlock()
            check(g)
            i = engines.index(g)
            listed[i] = max(listed[i], check_links(g))
            done += 1
    print("fuzz_mp: %d frames, %d allocations under the heap lock" % (done, allocs))
    for i, g in enumerate(engines):
        print("  engine %d: up to %d rows with a neighbour list;" % (i, listed[i]), sorted(g.stats().items()))
    if allocs:
        raise SystemExit(1)


main()
