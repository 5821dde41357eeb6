# Random and mutated frames never raise, and the engine's state stays
# consistent after every one.  A short run here; issue-sized runs belong to
# `make fuzz`.
import random

from fwtest import Clock
from invariants import check

from rumor import Config, Gossip, wire

_FRAMES = 1500
KEY = b"fuzzing-network-key-0123"


def _valid(rnd):
    k = rnd(2)
    origin = rnd(3)  # a few origins, so ids repeat and collide
    if k == 0:
        return wire.encode_data(origin, rnd(4), bytes(rnd(5)), sender=rnd(4), hops=rnd(2),
                                hop_limit=8, age_ms=rnd(8) * 4, priority=rnd(2))
    ids = [(rnd(3), rnd(4)) for _ in range(rnd(3))]
    if k == 1:
        return wire.encode_digest(rnd(4), ids, summary=rnd(16), live=rnd(4), span_ms=rnd(8))
    return wire.encode_request(rnd(4), ids or [(1, 1)])


def _mutate(f, rnd):
    f = bytearray(f)
    how = rnd(3)
    if how == 0 and f:
        f[rnd(8) % len(f)] = rnd(8)
    elif how == 1:
        f = f[: rnd(8) % (len(f) + 1)]
    elif how == 2:
        f.extend(bytes(rnd(3)))
    elif how == 3 and len(f) > 1:
        f[0] = 0x10 | rnd(4)  # any type
    return bytes(f)


def _fuzz(cfg, seed, key=None):
    random.seed(seed)
    rnd = random.getrandbits
    ck = Clock()
    g = Gossip(cfg, 0x0A0B0C0D, ck.read, rnd, key=key)
    out = []
    g.on_forward(lambda f, to: out.append(len(f)))
    g.on_message(lambda m: out.append(m.seq))
    g.start()
    extra = 0
    for n in range(_FRAMES):
        f = _valid(rnd)
        if key is not None and rnd(2):  # sealed, stamped around our network clock
            f = wire.seal(f, key, max(0, ck.t // 64 - rnd(11)), cfg.tag_len)
        if rnd(1):
            f = _mutate(f, rnd)
        g.receive(f, bytes((2, 0, 0, 0, 0, rnd(3))), -40 - rnd(6))
        ck.advance(rnd(6))
        g.tick()
        if n % 97 == 0:
            g.publish(bytes(rnd(4)), rnd(2))
        if key is not None and n % 13 == 0 and out:
            g.receive(_mutate(bytes(rnd(8) for _ in range(20)), rnd))
            extra += 1
        check(g)
    assert g.stats()["frames_in"] == _FRAMES + extra
    return g


def test_fuzz_broadcast_gossip():
    g = _fuzz(Config.small(ring_slots=8, dedup_slots=32, max_peers=4, relay_delay_ms=20), 1)
    s = g.stats()
    assert s["delivered"] > 0 and s["malformed"] > 0 and s["duplicates"] > 0


def test_fuzz_unicast_rounds_and_flood():
    _fuzz(Config.small(broadcast=False, ring_slots=8, dedup_slots=32, max_peers=4,
                       gossip_interval_ms=50), 2)
    _fuzz(Config.small(mode="hybrid", ring_slots=4, dedup_slots=16, max_peers=2), 3)
    _fuzz(Config.small(mode="flood", relay_delay_ms=0, ring_slots=4, dedup_slots=16), 4)


def test_fuzz_with_a_network_key():
    g = _fuzz(Config.small(ring_slots=8, dedup_slots=32, max_peers=4, relay_delay_ms=20), 5, KEY)
    s = g.stats()
    # sealed frames got in, forged and mutated ones were dropped, replays refused
    assert s["delivered"] > 0 and s["bad_tag"] > 0 and s["stale"] > 0
