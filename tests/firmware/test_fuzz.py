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
        # a neighbour list (backbone.py): names of other senders, of us, of
        # nodes nobody heard
        nb = [(0x0C0D, rnd(4), 0x4000 | rnd(3))[rnd(8) % 3] for _ in range(rnd(3))]
        return wire.encode_digest(rnd(4), ids, summary=rnd(16), live=rnd(4), span_ms=rnd(8),
                                  neighbours=nb, relays=rnd(1))
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
        f[0] = (wire.VERSION << 4) | rnd(4)  # any type
    elif how == 4 and len(f) > 3:
        f[3] = rnd(8)  # a digest's neighbour count that doesn't match its length
    return bytes(f)


def check_links(g):
    """The backbone's two-hop tables agree with the peer table: a row
    without a node id has no links, no list and no role; nobody is its own
    neighbour."""
    p = g.tables()[2]
    for k in range(p.n):
        assert not p.adjacent(k, k), k
        if not p.flags[k] or p.hi[k] == -1:
            assert not p.listed[k] and p.deg[k] == 0 and p.ext[k] == 0, k
            for j in range(p.n):
                assert not p.adjacent(j, k), (j, k)
    return sum(p.listed)


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
    listed = 0
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
        listed = max(listed, check_links(g))
    assert g.stats()["frames_in"] == _FRAMES + extra
    g.lists_learned = listed  # (read by the tests below)
    return g


def test_fuzz_broadcast_gossip():
    g = _fuzz(Config.small(ring_slots=8, dedup_slots=32, max_peers=4, relay_delay_ms=20), 1)
    s = g.stats()
    assert s["delivered"] > 0 and s["malformed"] > 0 and s["duplicates"] > 0
    assert g.lists_learned > 0  # the neighbour-list path ran


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
