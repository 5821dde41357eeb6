# The receive/forward path allocates nothing: each path below runs with
# micropython.heap_lock() held, where any allocation raises MemoryError.
# (Under CPython these skip: there is no heap lock to hold.)

from fwtest import Clock, no_alloc, seeded_rand

from rumor import Config, Gossip, wire
from rumor.ring import COVER, RELAY, WATCH

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
    # the counter rule (coverage off): copies cancel a pending relay
    g, c, ck = _setup(Config.small(coverage=False, relay_delay_ms=30, suppress_count=3))
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


# -- the backbone (rumor/backbone.py) ------------------------------------------
_ME = 0x0C0D  # _setup's engine's short id
_S = 0x01020304  # sends it the messages; hears nobody else
_K = 0x05060708  # relays and outranks it, but hears _S only through it
_M = 0x090A0B0C  # another neighbour, heard only by it
_N2 = 0x0D0E0F10  # one more, whose relay comes back during a watch
_LISTS = ((_S, [_ME], False, 1), (_K, [_ME, 0x1111, 0x2222, 0x3333], True, 2), (_M, [_ME], False, 3),
          (_N2, [_ME], False, 4))


def _backbone(cfg):
    """_setup's engine, with its neighbours' lists heard: it is in the
    backbone (S and M hear nobody else)."""
    g, c, ck = _setup(cfg)
    for nid, _nb, _r, a in _LISTS:
        g.receive(wire.encode_digest(nid, []), _peer(a))
    for nid, nb, rel, a in _LISTS:
        g.receive(wire.encode_digest(nid, [], neighbours=nb, relays=rel), _peer(a))
    assert wire.decode(g.digest())["relays"]
    return g, c, ck


def _cover_cfg(**kw):
    return Config.small(relay_delay_ms=30, rate_limit=0, origin_rate=0, **kw)


def test_digests_with_neighbour_lists_allocate_nothing():
    g, c, ck = _backbone(_cover_cfg())
    p = g.tables()[2]
    # lists that change every time (learn_list rebuilds the row), name rows,
    # us and nodes beyond us, and flip the sender's role
    lists = []
    for i in range(8):
        nb = [_ME, _S & 0xFFFF, _M & 0xFFFF] + [0x4000 + j for j in range(i)]
        lists.append((wire.encode_digest(_K, [], neighbours=nb, relays=i & 1), _peer(2)))
        lists.append((wire.encode_digest(_S, [], neighbours=nb[: 1 + (i & 1)]), _peer(1)))

    def run():
        for _ in range(_N // 16):
            for f, a in lists:
                g.receive(f, a)
                ck.t += 1

    no_alloc(run, "receive() of digests carrying neighbour lists (learn_list, learn_role)")
    k = p.find(_K >> 16, _K & 0xFFFF)
    s = p.find(_S >> 16, _S & 0xFFFF)
    m = p.find(_M >> 16, _M & 0xFFFF)
    assert p.listed[k] and p.deg[k] == 3 + 7 and p.ext[k] == 7  # the last list it sent
    assert p.adjacent(k, s) and p.adjacent(k, m) and p.adjacent(s, k)


def test_new_messages_at_a_backbone_node_allocate_nothing():
    g, c, ck = _backbone(_cover_cfg())
    frames = [wire.encode_data(0x01020304, s, bytes(50), sender=_S) for s in range(_N)]
    # K's list alternates, so the election runs again before every message
    lists = [wire.encode_digest(_K, [], neighbours=[_ME, 0x1111, 0x2222, 0x3333][: 3 + (i & 1)], relays=True)
             for i in range(2)]
    at = (_peer(1), _peer(2))  # (a closure over more than 5 names allocates its call)

    def run():
        for i in range(_N):  # (no enumerate(): it allocates an iterator)
            g.receive(lists[i & 1], at[1])
            g.receive(frames[i], at[0], -70)  # the election, then a COVER relay scheduled
            ck.t += 7
            g.tick()

    no_alloc(run, "receive() of new messages at a backbone node (election, schedule)")
    assert c.got == _N
    assert g.stats()["evicted"] >= _N - g.config.ring_slots
    assert wire.decode(g.digest())["relays"]


def test_copies_during_backbone_relays_and_watches_allocate_nothing():
    g, c, ck = _backbone(_cover_cfg())
    r = g.tables()[0]
    for s in range(8):
        g.receive(wire.encode_data(_S, s, b"dup", sender=_S, hops=1), _peer(1), -70)
    pending = [s for s in range(r.slots) if r.state[s] & COVER and not r.state[s] & WATCH]
    assert len(pending) >= 6  # (a random wait of 0 sent one at once)
    copies = [wire.encode_data(_S, s, b"dup", sender=_M, hops=2) for s in range(8)]
    late = [wire.encode_data(_S, s, b"dup", sender=_N2, hops=3) for s in range(8)]
    m_at = _peer(3)
    n2_at = _peer(4)

    def waiting():  # copies while our backbone relays wait: senders recorded
        for _ in range(_N // 8):
            for f in copies:
                g.receive(f, m_at, -80)

    no_alloc(waiting, "receive() of copies during a pending backbone relay")
    assert all(r.sent_by(s, g.tables()[2].find(_M >> 16, _M & 0xFFFF)) for s in pending)
    for _ in range(10):  # the relays go; each leaves a watch
        ck.t += 5
        g.tick()
    watching = [s for s in range(r.slots) if r.state[s] & WATCH]
    assert len(watching) >= 6, watching
    def data_out():
        st = g.stats()
        return st["frames_out"] - st["digests_out"] - st["requests_out"]

    out = data_out()

    def watched():  # relays coming back during the watches: the ack timing
        for _ in range(_N // 8):
            for f in late:
                g.receive(f, n2_at, -80)

    no_alloc(watched, "receive() of copies during a watch (ack timing)")
    for _ in range(200):
        ck.t += 5
        g.tick()
    assert g.stats()["resent"] == 0 and data_out() == out  # a relay came back for each: nothing resent


def test_relays_and_watches_firing_in_tick_allocate_nothing():
    g, c, ck = _backbone(_cover_cfg(ack_retries=2, gossip_interval_ms=100))
    frames = [wire.encode_data(0x01020304, s, bytes(50), sender=_S) for s in range(_N)]
    frm = _peer(1)

    def run():
        for f in frames:
            g.receive(f, frm, -70)
            ck.t += 7
            g.tick()
        for _ in range(400):  # relays, watches (K stays silent: resends), digests
            ck.t += 10
            g.tick()

    no_alloc(run, "tick(): backbone relays, watches and their resends, digests with lists")
    s = g.stats()
    assert s["resent"] >= _N  # nothing ever came back: every relay resent, some twice
    assert s["frames_out"] >= _N + s["resent"] and s["digests_out"] >= 1
