# Real boards' node ids on every heap-locked path.  An ESP32's id is the
# last four bytes of its MAC (node.py node_id_of), and Espressif's MACs make
# it >= 2**30 (24:0A:C4:.. gives 0xC4......): past the 32-bit port's small
# ints, so any arithmetic that puts a whole id in one int makes a big int,
# which raises MemoryError under heap_lock.  Every id here (our own, the
# origins, the senders) is such an id, and the clock runs across the 30-bit
# wrap as a board's ticks_ms does.  The point is the 32-bit port
# (build/mp32, test ids [mp32] and [mp32-frozen]); the 64-bit port runs the
# same paths, CPython only the non-locked checks.
import random
import sys

import fwtest
from fwtest import no_alloc

from rumor import Config, Gossip, wire

_MASK = 0x3FFFFFFF  # a board's ticks_ms period is 2**30
# MACs of Espressif chips (their OUIs), as unique_id() gives them
_MACS = {
    "me": b"\x24\x0a\xc4\x12\x34\x56",
    "a": b"\x30\xae\xa4\x9a\xbc\xde",
    "b": b"\x7c\x9e\xbd\x01\x02\x03",
    "c": b"\xec\x94\xcb\xff\xff\xfe",
    "d": b"\x3c\x71\xbf\x40\x00\x00",
}
_N = 160


class _FakeMachine:
    """machine as node_id_of sees it on an ESP32: unique_id() is the MAC."""

    def __init__(self, mac):
        self.mac = mac

    def unique_id(self):
        return self.mac


def mac_id(mac):
    """The node id node_id_of gives a board with this MAC and no node_id."""
    from rumor.node import node_id_of

    had = sys.modules.get("machine")
    sys.modules["machine"] = _FakeMachine(mac)
    try:
        return node_id_of({})
    finally:
        if had is None:
            del sys.modules["machine"]
        else:
            sys.modules["machine"] = had


_IDS = {}


def ids():
    """name -> MAC-derived id (computed once; node.py is imported here, not
    on the locked paths)."""
    if not _IDS:
        for k, mac in _MACS.items():
            _IDS[k] = mac_id(mac)
        # the edges of the range too: the first big int and the last id
        _IDS["edge"] = 0x40000000
        _IDS["top"] = 0xFFFFFFFF
    return _IDS


class WrapClock:
    """A board's ticks_ms: 30 bits, started just before the wrap."""

    def __init__(self):
        self.t = _MASK - 3000

    def read(self):
        return self.t

    def advance(self, ms):
        # t + ms wrapped, never past a small int on the way (ticks.add's sum)
        self.t = (self.t - _MASK + ms - 1) & _MASK


class Counts:
    def __init__(self):
        self.out = 0
        self.got = 0
        self.n = 0

    def forward(self, frame, to):  # a radio that allocates nothing
        self.out += 1
        self.n = len(frame)

    def deliver(self, msg):  # an application that allocates nothing
        self.got += 1
        self.n = msg.hops + msg.seq + len(msg.frame)


def _engine(cfg, me=None):
    ck = WrapClock()
    c = Counts()
    g = Gossip(cfg, ids()["me"] if me is None else me, ck.read, random.getrandbits)
    g.on_forward(c.forward)
    g.on_message(c.deliver)
    g.start()
    return g, c, ck


def _addr(mac):
    return bytes(mac)


def test_ids_from_espressif_macs_are_past_the_small_ints():
    i = ids()
    assert i["me"] == 0xC4123456  # the last four bytes of 24:0A:C4:12:34:56
    assert i["a"] == 0xA49ABCDE and i["b"] == 0xBD010203
    for k in ("me", "a", "b", "c", "d", "edge", "top"):
        assert i[k] >= 1 << 30, k
    if fwtest.MICROPYTHON and sys.maxsize < 1 << 32:
        # on the 32-bit port they really are big ints: adding one allocates
        fwtest.raises(AssertionError, no_alloc, lambda: i["me"] + 1, "big-int sum")


def test_new_messages_from_big_origins_and_relays_allocate_nothing():
    g, c, ck = _engine(Config.small(relay_delay_ms=0, rate_limit=0, origin_rate=0))
    i = ids()
    origins = (i["a"], i["b"], i["c"], i["top"], i["edge"])
    frames = [wire.encode_data(origins[s % 5], s, bytes(60), sender=i["d"], hops=1)
              for s in range(_N)]
    frm = _addr(_MACS["d"])

    def run():
        for f in frames:
            ck.advance(1)
            g.receive(f, frm, -70)

    no_alloc(run, "receive() of new messages from origins >= 2**30, immediate relay")
    assert c.got == _N and c.out == _N
    assert g.stats()["evicted"] >= _N - g.config.ring_slots
    # and what was delivered names the origin right (outside the lock: an id is a big int)
    seen = []
    g.on_message(lambda m: seen.append((m.origin, m.seq)))
    g.receive(wire.encode_data(i["top"], 9999, b"last", sender=i["d"]), frm)
    assert seen == [(0xFFFFFFFF, 9999)]


def test_duplicates_from_big_senders_allocate_nothing():
    i = ids()
    g, c, ck = _engine(Config.small(relay_delay_ms=30, suppress_count=3))
    for s in range(8):
        g.receive(wire.encode_data(i["a"], s, b"dup", sender=i["a"]), _addr(_MACS["a"]))
    copies = [wire.encode_data(i["a"], s, b"dup", sender=i["b"], hops=1) for s in range(8)]
    frm = _addr(_MACS["b"])

    def run():
        for _ in range(_N // 8):
            for f in copies:
                g.receive(f, frm)
            ck.advance(1)

    no_alloc(run, "receive() of duplicates from a sender >= 2**30")
    assert g.stats()["duplicates"] == 8 * (_N // 8)


def test_own_messages_delayed_relays_digests_and_prune_allocate_nothing():
    i = ids()
    g, c, ck = _engine(Config.small(relay_delay_ms=40, suppress_count=0, gossip_interval_ms=100,
                                    max_message_age_ms=2000, prune_interval_ms=500,
                                    rate_limit=0, origin_rate=0))
    for k in range(4):
        g.publish(b"own %d" % k)  # (its returned id is a big int: not a locked path)
    frames = [wire.encode_data(i["c"], s, bytes(50), sender=i["c"]) for s in range(_N)]
    frm = _addr(_MACS["c"])

    def run():
        for f in frames:
            g.receive(f, frm)
            ck.advance(7)
            g.tick()
        for _ in range(400):  # Trickle digests of big ids, relays, expiry and prune
            ck.advance(10)
            g.tick()

    no_alloc(run, "tick(): relays, digests and prune with ids >= 2**30")
    s = g.stats()
    assert c.out >= _N and s["digests_out"] >= 1
    assert s["expired"] > 0  # messages aged out across the clock's wrap


def test_digests_and_requests_about_big_ids_allocate_nothing():
    i = ids()
    g, c, ck = _engine(Config.small(relay_delay_ms=20))
    frm = _addr(_MACS["a"])
    for s in range(10):
        g.receive(wire.encode_data(i["top"], s, b"m", sender=i["a"]), frm)
    g.publish(b"mine")
    digest = wire.encode_digest(i["b"], [(i["top"], s) for s in range(5, 15)] + [(i["edge"], 3)],
                                summary=1, live=11)
    request = wire.encode_request(i["b"], [(i["top"], s) for s in range(0, 10)] + [(i["me"], 0)])
    frm = _addr(_MACS["b"])

    def run():
        for _ in range(20):
            g.receive(digest, frm)
            g.receive(request, frm)
            ck.advance(25)
            g.tick()

    before = g.stats()
    no_alloc(run, "receive() of digests and requests naming ids >= 2**30, and the answers")
    after = g.stats()
    assert after["requests_out"] - before["requests_out"] == 20
    assert after["answered"] > before["answered"]


def test_learning_big_peers_allocates_nothing():
    i = ids()
    g, c, ck = _engine(Config.small(relay_delay_ms=0, max_peers=4))
    senders = [i["a"] + k for k in range(6)] + [0xFFFFFFFF - k for k in range(6)]
    frames = [wire.encode_digest(n, []) for n in senders]
    addrs = [bytes((0x24, 0x0A, n >> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255)) for n in senders]

    def run():
        for k in range(12):
            g.receive(frames[k], addrs[k])
            ck.advance(3)

    no_alloc(run, "receive() from unknown senders >= 2**30 (peer learning and recycling)")
    assert g.stats()["peer_count"] == 4
    known = sorted(p[1] for p in g.peers())  # (addr, node id, ...) per peer
    assert all(n >= 1 << 30 for n in known) and set(known) <= set(senders)


def test_unicast_rounds_with_big_peers_allocate_nothing():
    i = ids()
    g, c, ck = _engine(Config.small(broadcast=False, gossip_interval_ms=50, push_pull_ratio=0.5))
    for mac in _MACS.values():
        g.add_peer(_addr(mac))
    frames = [wire.encode_data(i["d"], s, b"u", sender=i["d"]) for s in range(20)]
    frm = _addr(_MACS["d"])

    def run():
        for f in frames:
            g.receive(f, frm)
            ck.advance(30)
            g.tick()

    no_alloc(run, "unicast push/pull rounds among ids >= 2**30")
    assert c.out > 0


def test_hybrid_mode_with_big_ids_allocates_nothing():
    i = ids()
    g, c, ck = _engine(Config.small(mode="hybrid", relay_delay_ms=20, gossip_interval_ms=60))
    for mac in (_MACS["a"], _MACS["b"]):
        g.add_peer(_addr(mac))
    frames = [wire.encode_data(i["b"], s, bytes(20), sender=i["a"]) for s in range(40)]
    frm = _addr(_MACS["a"])

    def run():
        for f in frames:
            g.receive(f, frm)
            ck.advance(15)
            g.tick()

    no_alloc(run, "hybrid relays and rounds among ids >= 2**30")
    assert c.got == 40 and c.out > 0


def test_quota_and_rate_limits_on_big_origins_allocate_nothing():
    i = ids()
    g, c, ck = _engine(Config.small(relay_delay_ms=0, rate_limit=100, rate_burst=30))
    other = _addr(_MACS["a"])
    for k in range(12):
        g.receive(wire.encode_data(0xF0000000 + k, 0, b"theirs"), other)
    flooder = i["top"]
    frames = [wire.encode_data(flooder, s, bytes(40)) for s in range(300)]
    frm = bytes((0x24, 0x0A, 0xFF, 0xFF, 0xFF, 0xFF))

    def run():
        for f in frames:
            ck.advance(2)
            g.receive(f, frm, -70)

    before = c.got
    no_alloc(run, "receive() over quota and over the rate limit, origin 0xFFFFFFFF")
    s = g.stats()
    assert s["rate_limited"] > 0 and s["quota_evicted"] > 0
    assert c.got - before + s["rate_limited"] == 300


def test_a_node_with_a_mac_derived_id_receives_without_allocating():
    # the board application's receive path (what the radio adapters call):
    # the engine, then the neighbour table, keyed by the sender's id
    from rumor import console as con
    from rumor import node as rnode

    i = ids()
    had = sys.modules.get("machine")
    sys.modules["machine"] = _FakeMachine(_MACS["me"])  # no node_id: the chip's id it is
    try:
        board = {"name": "unix", "chip": "unix", "radio": {"kind": "udp", "port": 9},
                 "config": "small", "node": {"stats_interval_ms": 0}}
        ck = WrapClock()
        out = []
        n = rnode.Node(board, write=out.append, clock=ck.read)
    finally:
        if had is None:
            del sys.modules["machine"]
        else:
            sys.modules["machine"] = had
    try:
        assert n.node_id == i["me"]
        n.gossip.start()
        n.console.level = con.WARN  # (at info a deliver event is formatted: that allocates)
        senders = [i["a"], i["b"], i["c"], i["d"], i["edge"], i["top"]]
        frames = [wire.encode_data(senders[(s + 1) % 6], s, b"payload", sender=senders[s % 6])
                  for s in range(60)]
        srcs = [bytes((0x24, 0x0A, n_ >> 24, (n_ >> 16) & 255, (n_ >> 8) & 255, n_ & 255))
                for n_ in senders]

        def run():
            for s in range(60):
                ck.advance(5)
                n.receive(frames[s], srcs[s % 6], -60)

        no_alloc(run, "Node.receive: engine and neighbour table, senders >= 2**30")
        assert n.gossip.stats()["delivered"] == 60 and out == []
        assert n.neighbours.count == 6
    finally:
        n.radio.close()


def test_a_keyed_mesh_of_big_ids_across_the_wrap_delivers_and_syncs_time():
    # not a heap-locked path (hashing allocates), but the same ids: tags,
    # stamps, time requests and relays with ids >= 2**30 and the board clock
    # running over its 30-bit wrap
    from meshnet import Net

    key = b"0123456789abcdef0123456789abcdef"
    cfg = Config.small(relay_delay_ms=0, gossip_interval_ms=200, settle_ms=0)
    net = Net(3, cfg, links=[(0, 1), (1, 2)], base_id=0xC40AD100, t0=_MASK - 3000, key=key)
    net.run(4000)  # sync_wait_ms: the first node takes its own clock, the others follow
    net.nodes[0].publish(b"over two hops")
    net.run(600)
    assert [(o, p) for o, _s, p, _h in net.got[2]] == [(0xC40AD100, b"over two hops")]
    assert net.clock() < 5000  # the clock wrapped on the way
    late = net.add_node(0xFFFFFFF0)  # boots later, asks for the time
    net.link(2, 3)
    late.publish(b"from the last id")
    net.run(2000)
    assert [(o, p) for o, _s, p, _h in net.got[0]] == [(0xFFFFFFF0, b"from the last id")]
    assert all(g.stats()["bad_tag"] == 0 and g.stats()["stale"] == 0 for g in net.nodes)
