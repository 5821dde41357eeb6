# The receive/forward path allocates nothing: each path below runs with
# micropython.heap_lock() held, where any allocation raises MemoryError.
# (Under CPython these skip: there is no heap lock to hold.)

from fwtest import Clock, no_alloc, seeded_rand

from rumor import Config, Gossip, wire
from rumor.ring import RELAY

_N = 200  # frames per path: enough to fill and cycle the ring and dedup buckets


class Counts:
    def __init__(self):
        self.out = 0
        self.got = 0
        self.last_len = 0

    def forward(self, frame, to):  # a radio that allocates nothing
        self.out += 1
        self.last_len = len(frame)

    def deliver(self, msg):  # an application that allocates nothing
        self.got += 1
        self.last_len = msg.hops + msg.age_ms + msg.priority + len(msg.frame)


def _setup(cfg):
    ck = Clock(1000)
    c = Counts()
    # seeded: an unseeded source now and then draws relay waits of 0 for
    # several of the 8 messages, which then go at once and leave too few pending
    g = Gossip(cfg, 0x0A0B0C0D, ck.read, seeded_rand(7))
    g.on_forward(c.forward)
    g.on_message(c.deliver)
    g.start()
    return g, c, ck


def _peer(n):
    return bytes((2, 0, 0, 0, 0, n))


def test_new_messages_and_immediate_relays_allocate_nothing():
    g, c, ck = _setup(Config.small(relay_delay_ms=0, rate_limit=0, origin_rate=0))
    frames = [wire.encode_data(0x01020304, s, bytes(100), sender=0x01020304) for s in range(_N)]
    frm = _peer(1)

    def run():
        for f in frames:
            ck.t += 1  # one a millisecond (the dedup table cycles and keeps watermarks)
            g.receive(f, frm, -70)

    no_alloc(run, "receive() of new messages with immediate rebroadcast")
    assert c.got == _N and c.out == _N
    s = g.stats()
    assert s["evicted"] >= _N - g.config.ring_slots  # the ring cycled under the lock


def test_duplicates_allocate_nothing():
    g, c, ck = _setup(Config.small(relay_delay_ms=30, suppress_count=3))
    frames = [wire.encode_data(0x01020304, s, b"dup", sender=0x01020304) for s in range(8)]
    for f in frames:
        g.receive(f, _peer(1))
    copies = [wire.encode_data(0x01020304, s, b"dup", sender=0x05060708, hops=1) for s in range(8)]
    frm = _peer(2)
    pending = sum(1 for st in g.tables()[0].state if st & RELAY)  # (a random wait of 0 sent one at once)
    assert pending >= 6

    def run():
        for _ in range(_N // 8):
            for f in copies:
                g.receive(f, frm)

    no_alloc(run, "receive() of duplicates (suppression counting)")
    assert g.stats()["duplicates"] == 8 * (_N // 8)
    assert g.stats()["suppressed"] == pending


def test_delayed_relays_and_ticks_allocate_nothing():
    g, c, ck = _setup(Config.small(relay_delay_ms=40, suppress_count=0, gossip_interval_ms=100,
                                   rate_limit=0, origin_rate=0))
    frames = [wire.encode_data(0x01020304, s, bytes(50), sender=0x01020304) for s in range(_N)]
    frm = _peer(1)

    def run():
        for f in frames:
            g.receive(f, frm)
            ck.t += 7
            g.tick()
        for _ in range(400):  # Trickle digests, relays and a prune fall due
            ck.t += 10
            g.tick()

    no_alloc(run, "tick(): delayed relays, Trickle digests, prune")
    assert c.out >= _N  # every relay went out, plus digests
    assert g.stats()["digests_out"] >= 1


def test_digests_and_requests_allocate_nothing():
    g, c, ck = _setup(Config.small(relay_delay_ms=20))
    for s in range(10):
        g.receive(wire.encode_data(0x01020304, s, b"m", sender=0x01020304), _peer(1))
    # a neighbour that has seqs 5..14: we ask for 10..14 and answer with 0..4
    digest = wire.encode_digest(0x05060708, [(0x01020304, s) for s in range(5, 15)], summary=1, live=10)
    request = wire.encode_request(0x05060708, [(0x01020304, s) for s in range(0, 10)])
    frm = _peer(2)

    def run():
        for _ in range(20):
            g.receive(digest, frm)
            g.receive(request, frm)
            ck.t += 25
            g.tick()

    before = g.stats()
    no_alloc(run, "receive() of digests and requests, and the answers")
    after = g.stats()
    assert after["requests_out"] - before["requests_out"] == 20
    assert after["answered"] > before["answered"]


def test_learning_a_new_peer_allocates_nothing():
    g, c, ck = _setup(Config.small(relay_delay_ms=0, max_peers=4))
    frames = [wire.encode_digest(0x100 + n, []) for n in range(12)]
    addrs = [_peer(n) for n in range(12)]

    def run():
        for i in range(12):
            g.receive(frames[i], addrs[i])

    no_alloc(run, "receive() from unknown senders (peer learning and recycling)")
    assert g.stats()["peer_count"] == 4


def test_unicast_rounds_allocate_nothing():
    cfg = Config.small(broadcast=False, gossip_interval_ms=50, push_pull_ratio=0.5)
    g, c, ck = _setup(cfg)
    for n in range(6):
        g.add_peer(_peer(n))
    frames = [wire.encode_data(0x01020304, s, b"u", sender=0x01020304) for s in range(20)]
    frm = _peer(1)

    def run():
        for f in frames:
            g.receive(f, frm)
            ck.t += 30
            g.tick()

    no_alloc(run, "unicast push/pull rounds")
    assert c.out > 0
