# Fairness: one chatty node cannot wipe the others' messages out of a ring
# (per-origin quota) nor feed a neighbour faster than rate_limit (per sender).
import random

from fwtest import Clock, no_alloc

from rumor import Config, Gossip, wire

ME = 0x0A0B0C0D
FLOODER = 0x0F0F0F0F


def _engine(cfg):
    ck = Clock(1000)
    g = Gossip(cfg, ME, ck.read, random.getrandbits)
    got = []
    g.on_forward(lambda f, to: None)
    g.on_message(lambda m: got.append((m.origin, m.seq)))
    g.start()
    return g, ck, got


def _held(g):
    """(origin, seq) of every message in the ring."""
    out = []
    for f in g.tables()[0].frame:
        if len(f):
            d = wire.decode(f)
            out.append((d["origin"], d["seq"]))
    return out


def _fill_then_flood(quota):
    cfg = Config.small(relay_delay_ms=0, rate_limit=0, origin_rate=0, origin_quota=quota)  # 16 slots
    g, ck, got = _engine(cfg)
    others = [(0x01000000 + k, s) for k in range(6) for s in range(2)]  # 12 messages
    for o, s in others:
        ck.t += 10
        g.receive(wire.encode_data(o, s, b"mine"))
    for s in range(1000):  # 1000 messages from one origin
        ck.t += 1
        g.receive(wire.encode_data(FLOODER, s, b"spam"))
    return g, others


def test_a_flooding_origin_replaces_only_its_own_messages():
    g, others = _fill_then_flood(quota=0)  # default: a quarter of the ring
    held = _held(g)
    assert all(m in held for m in others), "the flood evicted other origins' messages"
    flood = [m for m in held if m[0] == FLOODER]
    assert len(flood) == 4  # what the others left free
    assert flood == [(FLOODER, s) for s in range(996, 1000)] or sorted(flood) == [(FLOODER, s) for s in range(996, 1000)]
    assert g.stats()["quota_evicted"] >= 1000 - 4 - 4


def test_without_the_quota_the_flood_wipes_the_ring():
    # the control: a quota as large as the ring is no quota
    g, others = _fill_then_flood(quota=16)
    held = _held(g)
    assert not any(m in held for m in others)


def test_the_quota_applies_only_when_the_ring_is_full():
    g, ck, got = _engine(Config.small(relay_delay_ms=0, rate_limit=0, origin_rate=0))
    for s in range(16):
        ck.t += 1
        g.receive(wire.encode_data(FLOODER, s, b"burst"))
    assert len(_held(g)) == 16 and g.stats()["quota_evicted"] == 0


def test_own_messages_over_quota_replace_our_own():
    g, ck, got = _engine(Config.small(relay_delay_ms=0, rate_limit=0, origin_rate=0))
    others = [(0x01000000 + k, 0) for k in range(12)]
    for o, s in others:
        g.receive(wire.encode_data(o, s, b"theirs"))
    for _ in range(50):
        g.publish(b"ours")
    held = _held(g)
    assert all(m in held for m in others)
    assert sum(1 for o, _s in held if o == ME) == 4


def test_rate_limit_per_sender():
    cfg = Config.small(relay_delay_ms=0, rate_limit=50, rate_burst=20, origin_rate=0)
    g, ck, got = _engine(cfg)
    # two neighbours known for a while (a new sender pays from a bucket all
    # new senders share until its own has had time to fill: 0.4 s here)
    g.receive(wire.encode_digest(FLOODER, []), b"\x02\x00\x00\x00\x00\x01")
    g.receive(wire.encode_digest(0x0202, []), b"\x02\x00\x00\x00\x00\x02")
    ck.t += 1000
    for s in range(200):  # 200 new messages in 200 ms from one sender
        ck.t += 1
        g.receive(wire.encode_data(FLOODER, s, b"x"), b"\x02\x00\x00\x00\x00\x01")
    n = len(got)
    assert 20 <= n <= 20 + 11, n  # the burst, plus 50/s for 0.2 s
    assert g.stats()["rate_limited"] == 200 - n
    # another sender is not held back by the first one's bucket
    relayed = wire.encode_data(0x0101, 1, b"other", sender=0x0202)
    assert g.receive(relayed, b"\x02\x00\x00\x00\x00\x02") is True
    # a dropped message was not marked seen: a copy from elsewhere gets in
    dropped = (FLOODER, 199)
    assert dropped not in got
    assert g.receive(wire.encode_data(FLOODER, 199, b"x", sender=0x0303), b"\x02\x00\x00\x00\x00\x03")
    # the bucket refills at rate_limit
    ck.t += 1000
    before = len(got)
    for s in range(300, 400):
        g.receive(wire.encode_data(FLOODER, s, b"x"), b"\x02\x00\x00\x00\x00\x01")
    assert len(got) - before == 20  # refilled to the burst, not beyond


class _Count:
    def __init__(self):
        self.n = 0

    def deliver(self, msg):  # an application that allocates nothing
        self.n += 1


def test_fairness_paths_allocate_nothing():
    cfg = Config.small(relay_delay_ms=0, rate_limit=100, rate_burst=30)
    g, ck, _got = _engine(cfg)
    c = _Count()
    g.on_message(c.deliver)
    for k in range(12):
        g.receive(wire.encode_data(0x01000000 + k, 0, b"theirs"), b"\x02\x00\x00\x00\x00\x02")
    frames = [wire.encode_data(FLOODER, s, bytes(40)) for s in range(300)]
    frm = b"\x02\x00\x00\x00\x00\x01"
    got_before = c.n

    def run():
        for f in frames:
            ck.t += 2
            g.receive(f, frm, -70)

    no_alloc(run, "receive() over quota and over the rate limit")
    s = g.stats()
    assert s["rate_limited"] > 0 and s["quota_evicted"] > 0
    assert c.n - got_before + s["rate_limited"] == 300


def test_a_message_refused_by_the_quota_is_not_marked_seen():
    # origin A holds its quota (4) of critical messages in a full ring: its
    # next normal message can't replace them and is refused, but not marked
    # seen, so it is taken once A's share frees up
    g, ck, got = _engine(Config.small(relay_delay_ms=0, rate_limit=0, origin_rate=0, max_message_age_ms=5000))
    a = 0x0A000001
    for s in range(4):
        ck.t += 1
        g.receive(wire.encode_data(a, s, b"alert", priority=3))
    for k in range(12):
        ck.t += 1
        g.receive(wire.encode_data(0x0B000000 + k, 0, b"other"))
    assert g.receive(wire.encode_data(a, 10, b"normal")) is False
    ck.t += 6000
    g.prune()  # the alerts (and the rest) expire
    assert g.receive(wire.encode_data(a, 10, b"normal", sender=0x0C)) is True
    assert (a, 10) in got


def test_an_idle_sender_refills_to_the_whole_burst():
    # 1 message/s with bursts of 100: 100 s of silence fill the bucket, even
    # though that is longer than any clamp on the elapsed time
    cfg = Config.small(relay_delay_ms=0, rate_limit=1, rate_burst=100, origin_rate=0)
    g, ck, got = _engine(cfg)
    frm = b"\x02\x00\x00\x00\x00\x01"
    g.receive(wire.encode_digest(FLOODER, []), frm)
    ck.t += 500000  # known for long: its own bucket, full
    for s in range(150):
        g.receive(wire.encode_data(FLOODER, s, b"x"), frm)
    assert len(got) == 100
    ck.t += 500000
    n = len(got)
    for s in range(200, 350):
        g.receive(wire.encode_data(FLOODER, s, b"x"), frm)
    assert len(got) - n == 100


def test_rate_limit_per_origin_whichever_neighbour_relays():
    # 8 neighbours relay one origin's flood, 1000 messages in 1 s: each
    # sender's bucket would let 50/s + 64 through, together far more; the
    # origin's bucket lets 20/s + the burst through
    cfg = Config.small(relay_delay_ms=0, rate_limit=50, rate_burst=64, origin_rate=20)
    g, ck, got = _engine(cfg)
    frm = [bytes((2, 0, 0, 0, 0, k)) for k in range(8)]
    for k in range(8):  # neighbours known for a while
        g.receive(wire.encode_digest(0x0100 + k, []), frm[k])
    ck.t += 5000
    for s in range(1000):
        ck.t += 1
        g.receive(wire.encode_data(FLOODER, s, b"flood", sender=0x0100 + s % 8), frm[s % 8])
    n = sum(1 for o, _s in got if o == FLOODER)
    assert 64 <= n <= 64 + 20 + 1, n
    # another origin, relayed by the same neighbours, is not held back
    assert g.receive(wire.encode_data(0x0B0B0B0B, 1, b"mine", sender=0x0100), frm[0]) is True
    assert g.stats()["rate_limited"] == 1000 - n


def test_a_flooding_origin_is_not_pushed_by_anti_entropy():
    # we hold messages of a flooder (its bucket here is empty) and of a calm
    # origin; a neighbour's digest shows it lacks both: only the calm one is
    # pushed to it
    cfg = Config.small(relay_delay_ms=0, settle_ms=0, rate_limit=0, origin_rate=20, rate_burst=8)
    g, ck, got = _engine(cfg)
    out = []
    g.on_forward(lambda f, to: out.append(bytes(f)))
    for s in range(40):  # 40 in 40 ms: the bucket of 8 is empty
        ck.t += 1
        g.receive(wire.encode_data(FLOODER, s, b"flood"))
    ck.t += 1
    g.receive(wire.encode_data(0x0C0C0C0C, 1, b"calm"))
    ck.t += 100
    del out[:]
    g.receive(wire.encode_digest(0x0D0D0D0D, [(0x0E0E0E0E, 1)], span_ms=60000, ages_ms=[200]))
    for _ in range(20):
        ck.t += 1
        g.tick()
    pushed = [wire.decode(f)["origin"] for f in out if wire.decode(f)["type"] == "data"]
    assert 0x0C0C0C0C in pushed and FLOODER not in pushed, pushed


def test_a_flooding_origin_is_not_asked_for_until_its_penalty_is_over():
    # the flooder ran its bucket dry: for max_message_age_ms its messages a
    # neighbour's digest lists are not requested; a calm origin's are
    cfg = Config.small(relay_delay_ms=0, settle_ms=0, rate_limit=0, origin_rate=20, rate_burst=8,
                       max_message_age_ms=20000)
    g, ck, got = _engine(cfg)
    out = []
    g.on_forward(lambda f, to: out.append(bytes(f)))
    for s in range(40):
        ck.t += 1
        g.receive(wire.encode_data(FLOODER, s, b"flood"))
    ck.t += 5000  # its bucket is full again, but it flooded 5 s ago
    del out[:]
    listed = [(FLOODER, 100), (0x0C0C0C0C, 7)]
    g.receive(wire.encode_digest(0x0D0D0D0D, listed, span_ms=60000, ages_ms=[1000, 1000]))
    asked = [i for f in out if wire.decode(f)["type"] == "request" for i in wire.decode(f)["ids"]]
    assert asked == [(0x0C0C0C0C, 7)], asked
    ck.t += 20000  # the penalty is over
    del out[:]
    g.receive(wire.encode_digest(0x0D0D0D0D, [(FLOODER, 101)], span_ms=60000, ages_ms=[1000]))
    asked = [i for f in out if wire.decode(f)["type"] == "request" for i in wire.decode(f)["ids"]]
    assert asked == [(FLOODER, 101)], asked


def test_a_frame_the_sender_limit_refuses_does_not_count_against_its_origin():
    # a replayer empties neighbour S's bucket and repeats a calm origin's
    # message through it: the origin must not come to look like a flooder
    cfg = Config.medium(relay_delay_ms=0, settle_ms=0)  # 50/s per sender, 20/s per origin, bursts of 64
    g, ck, got = _engine(cfg)
    s_, t_, o_ = 0x5, 0x7, 0x0C0C0C0C
    g.receive(wire.encode_digest(s_, []), b"\x02\x00\x00\x00\x00\x05")
    g.receive(wire.encode_digest(t_, []), b"\x02\x00\x00\x00\x00\x07")
    ck.t += 5000
    for k in range(100):  # S's bucket, emptied by other origins' messages
        g.receive(wire.encode_data(0x0D000000 + k, 1, b"x", sender=s_), b"\x02\x00\x00\x00\x00\x05")
    m1 = wire.encode_data(o_, 1, b"calm 1", sender=s_)
    for _ in range(100):
        g.receive(m1, b"\x02\x00\x00\x00\x00\x05")
    assert not g.tables()[3].busy(o_ >> 8, o_ & 0xFF, ck.t, cfg.origin_rate, cfg.rate_burst)
    assert g.receive(wire.encode_data(o_, 2, b"calm 2", sender=t_), b"\x02\x00\x00\x00\x00\x07") is True


def test_a_flooder_keeps_its_penalty_when_a_new_origin_comes():
    cfg = Config.small(relay_delay_ms=0, settle_ms=0, rate_limit=0, origin_rate=20, rate_burst=8,
                       max_message_age_ms=20000)
    g, ck, got = _engine(cfg)
    for s in range(40):
        ck.t += 1
        g.receive(wire.encode_data(FLOODER, s, b"flood"))
    ck.t += 1000
    g.receive(wire.encode_data(0x0C0C0C0C, 1, b"a new origin"))
    assert g.tables()[3].busy(FLOODER >> 8, FLOODER & 0xFF, ck.t, 20, 8)


def _evictions(g):
    """Install an on_evict hook; the list of (evicted id, incoming id) it sees."""
    seen = []

    def hook(evicted, incoming):
        seen.append((int.from_bytes(bytes(evicted[8:14]), "big"),
                     int.from_bytes(bytes(incoming[8:14]), "big")))

    g.on_evict(hook)
    return seen


def test_on_evict_names_the_evicted_and_the_incoming_message():
    cfg = Config.small(ring_slots=4, relay_delay_ms=0, rate_limit=0, origin_rate=0, origin_quota=4)
    g, ck, got = _engine(cfg)
    seen = _evictions(g)
    for s in range(4):
        ck.t += 10
        g.receive(wire.encode_data(0x01000001, s, b"old"))
    assert seen == []  # room enough so far
    g.receive(wire.encode_data(0x02000002, 9, b"new"))
    assert seen == [((0x01000001 << 16) | 0, (0x02000002 << 16) | 9)]
    assert g.stats()["evicted"] == 1
    # a message of our own makes room the same way
    mid = g.publish(b"mine")
    assert seen[-1] == ((0x01000001 << 16) | 1, mid)
    g.on_evict(None)  # unset: evictions go on, unreported
    g.receive(wire.encode_data(0x03000003, 1, b"more"))
    assert len(seen) == 2 and g.stats()["evicted"] == 3


def test_on_evict_reports_quota_evictions_but_not_expired_messages():
    cfg = Config.small(ring_slots=4, relay_delay_ms=0, rate_limit=0, origin_rate=0, origin_quota=2,
                       max_message_age_ms=5000, prune_interval_ms=60000, gossip_interval_ms=1000)
    g, ck, got = _engine(cfg)
    seen = _evictions(g)
    g.receive(wire.encode_data(0x01000001, 1, b"a"))
    g.receive(wire.encode_data(0x01000001, 2, b"b"))
    g.receive(wire.encode_data(0x05000005, 1, b"c"))
    g.receive(wire.encode_data(0x05000005, 2, b"d"))
    # full, and 0x05000005 at its quota of 2: its own oldest makes room
    g.receive(wire.encode_data(0x05000005, 3, b"e"))
    assert seen == [((0x05000005 << 16) | 1, (0x05000005 << 16) | 3)]
    assert g.stats()["quota_evicted"] == 1
    # all of them expire (not pruned yet): evicting them is not reported
    ck.t += 6000
    g.receive(wire.encode_data(0x06000006, 1, b"f"))
    assert len(seen) == 1 and g.stats()["evicted"] == 2 and g.stats()["expired"] == 0
