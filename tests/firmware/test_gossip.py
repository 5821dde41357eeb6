# The engine's behaviour, on small meshes built in memory (meshnet.Net).
import random

from fwtest import Clock, raises
from meshnet import Net, addr_of

from rumor import Config, Gossip, counters, wire


def _engine(cfg=None, node_id=1, clock=None):
    clock = clock or Clock()
    g = Gossip(cfg or Config.small(relay_delay_ms=0), node_id, clock.read, random.getrandbits)
    sent = []
    got = []
    g.on_forward(lambda f, to: sent.append((bytes(f), to if to is None else list(to))))
    g.on_message(lambda m: got.append((m.origin, m.seq, m.payload(), m.hops, m.age_ms, m.priority)))
    g.start()
    return g, sent, got, clock


def test_constructor_checks_its_arguments():
    ck = Clock()
    raises(ValueError, Gossip, {}, 1, ck.read, random.getrandbits)
    raises(ValueError, Gossip, Config(), -1, ck.read, random.getrandbits)
    raises(ValueError, Gossip, Config(), 1 << 32, ck.read, random.getrandbits)
    raises(ValueError, Gossip, Config(), 1, None, random.getrandbits)
    g = Gossip(Config(), 1, ck.read, random.getrandbits)
    raises(RuntimeError, g.start)  # no radio yet
    raises(RuntimeError, g.publish, b"x")  # not started


def test_publish_checks_payload_and_priority():
    g, sent, _got, _c = _engine()
    raises(ValueError, g.publish, bytes(g.config.max_payload + 1))
    raises(ValueError, g.publish, b"x", 4)
    mid = g.publish(bytes(g.config.max_payload))
    assert mid >> 16 == 1
    assert len(sent) == 1 and sent[0][1] is None  # one broadcast
    d = wire.decode(sent[0][0])
    assert d["origin"] == 1 and d["hops"] == 0 and d["id"] == mid


def test_a_line_of_five_delivers_with_hop_counts():
    net = Net(5, links=[(0, 1), (1, 2), (2, 3), (3, 4)])
    net.nodes[0].publish(b"hello")
    net.flush()
    seq = wire.decode(net.queue[0][1])["seq"] if net.queue else None
    assert seq is None
    for i in range(1, 5):
        assert len(net.got[i]) == 1, (i, net.got[i])
        origin, _s, payload, hops = net.got[i][0]
        assert origin == net.nodes[0].node_id and payload == b"hello"
        assert hops == i  # the origin's transmission is hop 1
    # one transmission per node, as a flood on a line must
    assert net.sent == 5


def test_duplicates_are_counted_not_delivered():
    g, sent, got, _c = _engine()
    f = wire.encode_data(7, 1, b"a", sender=7)
    assert g.receive(f, addr_of(7)) is True
    assert g.receive(f, addr_of(7)) is False
    assert g.receive(wire.encode_data(7, 1, b"a", sender=8, hops=1), addr_of(8)) is False
    assert len(got) == 1
    s = g.stats()
    assert s["duplicates"] == 2 and s["delivered"] == 1 and s["frames_in"] == 3


def test_bad_frames_are_counted_never_raised():
    g, sent, got, _c = _engine()
    good = wire.encode_data(7, 1, b"abc", sender=7)
    v1 = (1 << 4) | wire.DATA  # a version 1 frame: the format before the neighbour lists
    bad = [
        b"",
        bytes([wire.VT_DATA]),
        good[:10],  # truncated header
        bytes([v1]) + good[1:],  # another version
        bytes([(wire.VERSION << 4) | 0x0F]) + good[1:],  # unknown type
        wire.encode_data(7, 2, bytes(g.config.max_payload + 1)),  # oversized payload
        bytes(g.config.mtu + 1),  # longer than the mtu
        wire.encode_data(7, 3, b"", hops=9, hop_limit=3),  # hops above the limit
        wire.encode_request(7, [(1, 1)])[:-1],  # ids cut short
        wire.encode_digest(7, [(1, 1)]) + b"\x00",  # trailing byte
        wire.encode_digest(7, [(1, 1)], neighbours=[5, 6])[:-2],  # a neighbour short
        wire.encode_digest(7, [(1, 1)], neighbours=[5]) + b"\x00",  # half a neighbour more
        bytes([wire.VT_REQUEST]) + b"\x00\x00\x00\x00\x00\x00\x07",  # request for nothing
    ]
    for f in bad:
        assert g.receive(f, addr_of(7)) is False
    s = g.stats()
    assert s["malformed"] == len(bad), s
    assert s["bad_version"] == 1
    assert got == [] and s["seen_count"] == 0
    # and random junk of every length never raises
    r = random.getrandbits
    for n in range(0, 300):
        junk = bytes(r(8) for _ in range(n))
        g.receive(junk, None)
        g.receive(bytes([wire.VT_DATA]) + junk, addr_of(9))
        g.receive(bytes([wire.VT_DIGEST]) + junk, addr_of(9))
        g.receive(bytes([wire.VT_REQUEST]) + junk, b"")
    assert g.stats()["frames_in"] == len(bad) + 4 * 300


def test_ring_full_evicts_oldest_low_priority_first_and_remembers_ids():
    cfg = Config.small(ring_slots=4, dedup_slots=64, relay_delay_ms=0)
    g, sent, got, ck = _engine(cfg)
    g.receive(wire.encode_data(50, 1, b"high", priority=2), addr_of(50))
    for seq in range(1, 6):
        ck.advance(10)
        g.receive(wire.encode_data(60, seq, b"low%d" % seq), addr_of(60))
    s = g.stats()
    assert s["message_count"] == 4
    assert s["evicted"] == 2  # low1 and low2 went, the older high one stayed
    bodies = [bytes(f) for f in g.tables()[0].frame if len(f)]
    assert any(b.endswith(b"high") for b in bodies)
    assert not any(b.endswith(b"low1") or b.endswith(b"low2") for b in bodies)
    # an evicted message is still recognised as seen
    assert g.receive(wire.encode_data(60, 1, b"low1"), addr_of(60)) is False
    assert g.stats()["duplicates"] == 1


def test_age_travels_and_expires_network_wide():
    net = Net(3, cfg=Config.small(relay_delay_ms=0), links=[(0, 1), (1, 2)])
    g1 = net.nodes[1]
    # a message that is already 29.9 s old reaches node 1, which keeps it 50 ms before relaying
    old = wire.encode_data(net.nodes[0].node_id, 9, b"old", age_ms=29900)
    g1.receive(old, addr_of(0))
    assert net.got[1][0][2] == b"old"
    relayed = wire.decode(net.queue[-1][1])
    assert relayed["age_ms"] >= 29900
    net.queue.clear()
    # a frame whose age is past max_message_age_ms is neither delivered nor forwarded
    stale = wire.encode_data(net.nodes[0].node_id, 10, b"stale", age_ms=30004)
    assert g1.receive(stale, addr_of(0)) is False
    assert net.queue == [] and g1.stats()["expired"] == 1
    # a kept body expires at the prune
    net.t += 31000
    g1.prune()
    assert g1.stats()["message_count"] == 0


def test_hop_limit_bounds_relaying():
    # hop_limit counts relays: the origin's frame plus two relays reach 3 hops
    net = Net(5, cfg=Config.small(relay_delay_ms=0, hop_limit=2),
              links=[(0, 1), (1, 2), (2, 3), (3, 4)])
    net.nodes[0].publish(b"x")
    net.flush()
    assert [len(g) for g in net.got] == [0, 1, 1, 1, 0]
    assert net.got[3][0][3] == 3
    assert net.nodes[3].stats()["hop_limited"] == 1


def test_high_priority_is_forwarded_at_once():
    cfg = Config.small(relay_delay_ms=500, delay_by_signal=False)
    g, sent, got, ck = _engine(cfg)
    g.receive(wire.encode_data(9, 1, b"normal"), addr_of(9))
    assert sent == []  # waits for its random delay
    g.receive(wire.encode_data(9, 2, b"urgent", priority=3), addr_of(9))
    assert len(sent) == 1 and wire.decode(sent[0][0])["payload"] == b"urgent"
    ck.advance(500)
    g.tick()
    assert len(sent) == 2


def test_rebroadcast_cancelled_when_enough_copies_heard():
    # the counter rule: every node relays unless copies cancel it (coverage off)
    cfg = Config.small(coverage=False, relay_delay_ms=100, suppress_count=2, suppress_rssi=0)
    g, sent, got, ck = _engine(cfg)
    wait = cfg.relay_delay_ms + cfg.relay_delay_ms // 16 + 1  # the longest wait, jitter included
    # first copies as strong as rssi_ceil: the whole window, never a random
    # 0 ms wait that would send before the copies are heard
    g.receive(wire.encode_data(9, 1, b"m"), addr_of(9), cfg.rssi_ceil)
    g.receive(wire.encode_data(9, 1, b"m", sender=10, hops=1), addr_of(10))
    g.receive(wire.encode_data(9, 1, b"m", sender=11, hops=1), addr_of(11))
    ck.advance(wait)
    g.tick()
    assert sent == [] and g.stats()["suppressed"] == 1
    # with a single copy heard it goes out
    g.receive(wire.encode_data(9, 2, b"n"), addr_of(9), cfg.rssi_ceil)
    g.receive(wire.encode_data(9, 2, b"n", sender=10, hops=1), addr_of(10))
    ck.advance(wait)
    g.tick()
    assert len(sent) == 1 and wire.decode(sent[0][0])["seq"] == 2


def test_a_relay_heard_from_close_by_cancels_ours():
    cfg = Config.small(coverage=False, relay_delay_ms=100, suppress_count=0, suppress_rssi=-90)
    g, sent, got, ck = _engine(cfg)
    # the first copy's strength only orders the relays: a strong one still schedules
    g.receive(wire.encode_data(9, 1, b"m"), addr_of(9), -60)
    g.receive(wire.encode_data(9, 1, b"m", sender=10, hops=1), addr_of(10), -97)  # far: no
    ck.advance(50)
    g.tick()
    assert g.stats()["suppressed"] == 0
    g.receive(wire.encode_data(9, 1, b"m", sender=11, hops=1), addr_of(11), -85)  # near: yes
    ck.advance(100)
    g.tick()
    assert sent == [] and g.stats()["suppressed"] == 1


def test_signal_policy_sends_weaker_links_first():
    cfg = Config.small(mode="flood", relay_delay_ms=400, delay_by_signal=True, suppress_count=1)
    waits = []
    for rssi in (-95, -50):
        g, sent, got, ck = _engine(cfg)
        g.receive(wire.encode_data(9, 1, b"m"), addr_of(9), rssi)
        w = 0
        while not sent and w < 1000:
            ck.advance(5)
            w += 5
            g.tick()
        waits.append(w)
    assert waits[0] < waits[1], waits


def test_flood_relays_every_message_once_without_suppression():
    net = Net(4, cfg=Config.small(mode="flood", relay_delay_ms=0, suppress_count=0))
    net.nodes[0].publish(b"f")
    net.flush()
    assert net.sent == 4
    assert all(len(g) == 1 for g in net.got[1:])


def test_peers_are_learned_and_expire_from_the_active_count():
    g, sent, got, ck = _engine(Config.small(peer_timeout_ms=1000, relay_delay_ms=0))
    g.add_peer(b"\x01\x02\x03\x04\x05\x06")
    assert g.stats()["peer_count"] == 1 and g.stats()["active_peer_count"] == 0
    g.receive(wire.encode_data(9, 1, b"m", sender=9), addr_of(9))
    g.receive(wire.encode_digest(10, [(9, 1)]), addr_of(10))
    s = g.stats()
    assert s["peer_count"] == 3 and s["active_peer_count"] == 2
    ck.advance(1500)
    assert g.stats()["active_peer_count"] == 0
    assert g.remove_peer(b"\x01\x02\x03\x04\x05\x06") is True
    assert g.stats()["peer_count"] == 2
    raises(ValueError, g.add_peer, b"")
    raises(ValueError, g.add_peer, "not bytes")


def test_learned_peers_recycle_but_static_peers_stay():
    g, sent, got, ck = _engine(Config.small(max_peers=3, relay_delay_ms=0))
    g.add_peer(b"static")
    for n in range(20, 30):
        ck.advance(10)
        g.receive(wire.encode_digest(n, []), addr_of(n))
    ps = g.peers()
    assert len(ps) == 3
    assert any(p[0] == b"static" and p[3] for p in ps)
    ids = sorted(p[1] for p in ps if p[1] is not None)
    assert ids == [28, 29]  # the most recently heard learned peers


def test_adaptive_fanout_grows_with_active_peers():
    cfg = Config.small(broadcast=False, fanout=2, adaptive_fanout=True, push_pull_ratio=0.0,
                       max_peers=32)
    g, sent, got, ck = _engine(cfg)
    g.publish(b"seed")  # something to digest
    for n in range(40, 72):
        g.receive(wire.encode_digest(n, []), addr_of(n & 0xFF))
    del sent[:]
    ck.advance(cfg.gossip_interval_ms + 1)
    g.tick()
    digests = [s for s in sent if wire.decode(s[0])["type"] == "digest"]
    assert len(digests) >= 6, len(digests)  # log2(32) + 1, above the configured 2


def test_seed_style_unicast_rounds_spread_by_push():
    cfg = Config.small(broadcast=False, fanout=2, push_pull_ratio=1.0, gossip_interval_ms=100)
    links = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 0)]
    net = Net(5, cfg=cfg, links=links)
    for a, b in links:
        net.nodes[a].add_peer(addr_of(b))
        net.nodes[b].add_peer(addr_of(a))
    net.nodes[0].publish(b"ring")
    net.run(2000)
    assert all(len(g) == 1 for g in net.got[1:]), net.got
    # every send was unicast (a list of peers), never a broadcast
    assert net.nodes[0].stats()["frames_out"] > 0


def test_stop_silences_the_engine():
    g, sent, got, ck = _engine()
    g.stop()
    assert g.receive(wire.encode_data(9, 1, b"m"), addr_of(9)) is False
    g.tick()
    assert got == [] and sent == []


def test_a_late_copy_of_our_own_message_does_not_rewind_the_sequence():
    cfg = Config.small(ring_slots=4, dedup_slots=8)
    g, sent, got, ck = _engine(cfg)
    ids = []
    for k in range(40):
        ids.append(g.publish(b"x%d" % k))
        ck.advance(10)
    origin, seq = ids[0] >> 16, ids[0] & 0xFFFF
    # a neighbour relays our very first message back, long after its id left our dedup table
    g.receive(wire.encode_data(origin, seq, b"x0", sender=7, hops=1, age_ms=400), addr_of(7), -80)
    new = g.publish(b"fresh")
    assert new not in ids and (new & 0xFFFF) == ((ids[-1] + 1) & 0xFFFF)


def test_copies_beyond_255_are_still_counted_safely():
    cfg = Config.small(coverage=False, relay_delay_ms=1000, suppress_count=0, suppress_rssi=-50)
    g, sent, got, ck = _engine(cfg)
    g.receive(wire.encode_data(9, 1, b"m"), addr_of(9), -97)
    for n in range(300):
        assert g.receive(wire.encode_data(9, 1, b"m", sender=10 + n, hops=1), addr_of(9), -97) is False
    assert g.stats()["duplicates"] == 300


def test_counters_wrap_at_30_bits():
    g, sent, got, ck = _engine()
    g.counters[counters.MALFORMED] = (1 << 30) - 1
    g.receive(bytes([wire.VT_DATA]), None)
    assert g.stats()["malformed"] == 0


def test_a_digest_summary_with_the_top_bits_set_is_read_as_30_bits():
    g, sent, got, ck = _engine()
    g.receive(wire.encode_digest(5, [], summary=0xFFFFFFFF, live=0), addr_of(5))
    # 0x3FFFFFFF is what the sender meant: not equal to our empty summary, no crash
    assert g.stats()["malformed"] == 0


def test_the_trickle_interval_stays_below_the_tick_wrap():
    raises(ValueError, Config, gossip_interval_ms=20000, digest_doublings=16)


def test_a_message_with_no_room_is_remembered_so_it_is_not_asked_for_again():
    cfg = Config.small(ring_slots=2, relay_delay_ms=0)
    g, sent, got, ck = _engine(cfg)
    for sq in (1, 2):
        g.receive(wire.encode_data(0xC, sq, b"alarm", priority=1), addr_of(12), -80)
    assert g.receive(wire.encode_data(0xA, 1, b"normal"), addr_of(10), -80) is False
    del sent[:]
    ck.advance(cfg.settle_ms + 1)
    g.receive(wire.encode_digest(10, [(0xA, 1)], summary=1, live=1, span_ms=5000), addr_of(10))
    assert "request" not in [wire.decode(f)["type"] for f, _to in sent]  # not asked for again


def test_a_silent_peer_does_not_come_back_after_the_tick_wrap():
    cfg = Config.small(broadcast=False, peer_timeout_ms=1000)
    g, sent, got, ck = _engine(cfg)
    g.receive(wire.encode_digest(5, []), addr_of(5))
    assert g.stats()["active_peer_count"] == 1
    for _ in range(8):  # a week, a day at a time, pruning on the way
        ck.advance(86400000)
        g.prune()
    assert g.stats()["active_peer_count"] == 0


def test_an_address_longer_than_addr_max_is_not_stored():
    cfg = Config.small(addr_max=4)
    g, sent, got, ck = _engine(cfg)
    g.receive(wire.encode_digest(5, []), b"\x01\x02\x03\x04\x05\x06")
    g.receive(wire.encode_digest(5, []), b"\x01\x02\x03\x04\x05\x06")
    assert all(len(a) <= 4 for a in g.tables()[2].addr)


def test_rssi_0_means_unknown():
    cfg = Config.small(coverage=False, relay_delay_ms=100, suppress_count=0, suppress_rssi=-90)
    g, sent, got, ck = _engine(cfg)
    g.receive(wire.encode_data(9, 1, b"m"), addr_of(9))
    g.receive(wire.encode_data(9, 1, b"m", sender=10, hops=1), addr_of(10))  # no rssi: not "close"
    ck.advance(101)
    g.tick()
    assert len(sent) == 1 and g.stats()["suppressed"] == 0


def test_a_message_the_full_dedup_table_forgot_is_not_delivered_twice():
    cfg = Config.small(ring_slots=4, dedup_slots=8, relay_delay_ms=0)
    g, sent, got, ck = _engine(cfg)
    for seq in range(40):  # 40 ids through an 8-entry table: it forgets
        ck.advance(5)
        g.receive(wire.encode_data(9, seq, b"m%d" % seq), addr_of(9), -80)
    assert len(got) == 40
    # a late relay of the first one (born 200 ms ago, long forgotten) comes back
    assert g.receive(wire.encode_data(9, 0, b"m0", sender=10, hops=3, age_ms=200),
                     addr_of(10), -80) is False
    assert len(got) == 40 and g.stats()["forgotten"] == 1
    # while a message born after the last forgetting is new, whatever its seq
    ck.advance(5)
    assert g.receive(wire.encode_data(11, 0, b"fresh"), addr_of(11), -80) is True


def test_our_own_message_is_never_new_to_us_even_when_forgotten():
    # a node publishing faster than its 4-slot dedup table remembers hears
    # its first message relayed back: a copy, not a message to deliver again
    ck = Clock(1000)
    cfg = Config.small(relay_delay_ms=0, ring_slots=4, dedup_slots=4, rate_limit=0, origin_rate=0)
    g = Gossip(cfg, 0x0A0B0C0D, ck.read, random.getrandbits)
    out = []
    got = []
    g.on_forward(lambda f, to: out.append(bytes(f)))
    g.on_message(lambda m: got.append(m.seq))
    g.start()
    g.publish(b"first")
    first = out[-1]
    for _k in range(12):
        ck.t += 1
        g.publish(b"more")
    relayed = bytearray(first)
    relayed[4:8] = b"\x01\x02\x03\x04"  # as a neighbour sends it on
    relayed[2] = 1
    before = len(out)
    assert g.receive(bytes(relayed), b"\x02\x00\x00\x00\x00\x01") is False
    assert got == [] and len(out) == before
