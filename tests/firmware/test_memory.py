# Memory is the product: the state is allocated once, memory_bytes() says how
# much, and traffic never makes it grow.
import gc
import random

from fwtest import MICROPYTHON, Clock, skip

from rumor import Config, Gossip, wire


def _sizes(g):
    r, d, p, o = g.tables()
    return (len(r.frame), len(r.used), len(r.born), len(d.hi), len(p.addr), len(o.hi),
            len(p.adj), len(r.by), g.memory_bytes())


def test_memory_bytes_is_what_the_heap_pays():
    if not MICROPYTHON:
        skip("the heap is measured with MicroPython's gc.mem_alloc()")
    from rumor import auth, netclock  # (loaded first: their code is not the engine's state)

    assert auth and netclock
    key = b"k" * 32
    # (max_peers 250 and 1: the backbone's peer bitmaps at their widest and narrowest)
    for cfg in (Config.small(), Config.medium(), Config.large(), Config.medium(max_peers=250),
                Config.medium(max_peers=1)):
        for k in (None, key):  # with a key: the network clock and the HMAC's buffers too
            gc.collect()
            before = gc.mem_alloc()
            g = Gossip(cfg, 1, Clock().read, random.getrandbits, key=k)
            gc.collect()
            measured = gc.mem_alloc() - before
            ratio = measured / g.memory_bytes()
            assert 0.9 <= ratio <= 1.1, (cfg.ring_slots, k is not None, measured, g.memory_bytes())
            g = None  # freed before the next one is measured


def test_medium_preset_fits_the_budget():
    # the figure is for a 32-bit board under CPython, for this port's word under MicroPython
    g = Gossip(Config.medium(), 1, Clock().read, random.getrandbits)
    if not MICROPYTHON:
        assert g.memory_bytes() <= 32 * 1024, g.memory_bytes()
    # the backbone's tables are sized by Config: a bitmap row per peer, a
    # sender bitmap per ring slot
    r, _d, p, _o = g.tables()
    assert p.w == (g.config.max_peers + 7) // 8 and r.w == p.w
    assert len(p.adj) == g.config.max_peers * p.w and len(r.by) == g.config.ring_slots * p.w
    assert Gossip(Config.small(), 1, Clock().read, random.getrandbits).memory_bytes() < g.memory_bytes()


def test_nothing_grows_with_traffic():
    ck = Clock()
    # (no rate limits: 16 senders cycling through a 4-row peer table is what
    # the limiter's shared bucket for new senders exists to hold back)
    cfg = Config.small(rate_limit=0, origin_rate=0, relay_delay_ms=20, gossip_interval_ms=100, prune_interval_ms=500,
                       max_message_age_ms=2000, max_peers=4)
    g = Gossip(cfg, 0x0A0B0C0D, ck.read, random.getrandbits)
    sink = [0]

    def fwd(frame, to):
        sink[0] += 1

    def deliver(msg):
        sink[0] += 1

    g.on_forward(fwd)
    g.on_message(deliver)
    g.start()
    frame = bytearray(wire.encode_data(0x01020304, 0, bytes(40), sender=0x01020304))
    # (with a neighbour list: the backbone learns it, and elects, every time)
    digest = bytearray(wire.encode_digest(0x0708, [(0x01020304, s) for s in range(8)], summary=5,
                                          neighbours=[0x0C0D, 0x0001, 0x0002, 0x0900], relays=True))
    peers = [bytes((2, 0, 0, 0, 0, n)) for n in range(16)]
    sizes = _sizes(g)

    def burst(first, n):
        for i in range(first, first + n):
            frame[12] = (i >> 8) & 0xFF  # a new seq, in place
            frame[13] = i & 0xFF
            frame[7] = i & 0x0F  # from one of 16 senders (the table holds 4)
            g.receive(frame, peers[i & 15])
            g.receive(frame, peers[(i + 1) & 15])  # and a duplicate
            if i % 16 == 0:
                digest[7] = i & 0x0F
                g.receive(digest, peers[i & 15])
            ck.advance(3)
            g.tick()

    burst(0, 2000)  # warm up: every table has filled and cycled
    gc.collect()
    heap = gc.mem_alloc() if MICROPYTHON else 0
    burst(2000, 20000)
    gc.collect()
    if MICROPYTHON:
        assert gc.mem_alloc() - heap < 512, gc.mem_alloc() - heap
    assert _sizes(g) == sizes
    s = g.stats()
    assert s["message_count"] <= cfg.ring_slots and s["seen_count"] <= cfg.dedup_slots
    assert s["peer_count"] <= cfg.max_peers and s["evicted"] + s["expired"] > 0
    assert s["delivered"] == 22000


def test_an_open_mesh_loads_no_key_code():
    # netclock.py and auth.py are imported only by an engine given a key: an
    # open mesh's board keeps the RAM their code takes (each test runs in a
    # fresh MicroPython process; CPython's is shared with the other tests)
    if not MICROPYTHON:
        skip("one process per test only under MicroPython")
    import sys

    g = Gossip(Config.medium(), 1, Clock().read, random.getrandbits)
    assert g.net_time() == -1 and not g.synced
    assert "rumor.netclock" not in sys.modules and "rumor.auth" not in sys.modules
    Gossip(Config.medium(), 2, Clock().read, random.getrandbits, key=b"k" * 16)
    assert "rumor.netclock" in sys.modules and "rumor.auth" in sys.modules
