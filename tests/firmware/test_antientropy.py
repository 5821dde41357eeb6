# Pull: digests, requests and answers heal losses, partitions and late joiners.
import random

from fwtest import Clock
from meshnet import Net, addr_of

from rumor import Config, Gossip, wire


def _node(cfg, node_id=1):
    ck = Clock()
    g = Gossip(cfg, node_id, ck.read, random.getrandbits)
    sent = []
    got = []
    g.on_forward(lambda f, to: sent.append((bytes(f), to if to is None else list(to))))
    g.on_message(lambda m: got.append(m.payload()))
    g.start()
    return g, sent, got, ck


def test_digest_answer_both_ways():
    cfg = Config.small(relay_delay_ms=0)
    a, asent, agot, ack = _node(cfg, 1)
    # a knows messages (9,1) and (9,2); its peer 5 knows (9,2) and (9,3)
    a.receive(wire.encode_data(9, 1, b"one"), addr_of(9))
    a.receive(wire.encode_data(9, 2, b"two"), addr_of(9))
    ack.advance(cfg.settle_ms)  # both have settled: no relay wave is passing any more
    a.tick()
    del asent[:]
    a.receive(wire.encode_digest(5, [(9, 2), (9, 3)], summary=123, live=2, span_ms=10000),
              addr_of(5))
    kinds = [wire.decode(f)["type"] for f, _to in asent]
    assert "request" in kinds
    req = [wire.decode(f) for f, _to in asent if wire.decode(f)["type"] == "request"][0]
    assert req["ids"] == [(9, 3)]  # asks for what it lacks
    # and answers (after its short random wait) with what the digest lacked
    ack.advance(cfg.relay_delay_ms + 1)
    a.tick()
    data = [wire.decode(f) for f, _to in asent if wire.decode(f)["type"] == "data"]
    assert [(d["origin"], d["seq"]) for d in data] == [(9, 1)]
    assert a.stats()["answered"] == 1 and a.stats()["requests_out"] == 1


def test_request_is_answered_with_the_body():
    cfg = Config.small(relay_delay_ms=0, broadcast=False)
    a, asent, agot, ack = _node(cfg, 1)
    a.receive(wire.encode_data(9, 7, b"body"), addr_of(9))
    del asent[:]
    a.receive(wire.encode_request(5, [(9, 7), (9, 8)]), addr_of(5))
    assert len(asent) == 1
    f, to = asent[0]
    assert to == [addr_of(5)]  # unicast back to the asker
    d = wire.decode(f)
    assert d["payload"] == b"body" and d["hops"] == 1


def _told(cfg):
    """A node holding one message that heard two new neighbours' consistent
    digests, and the digest it then owed them (its neighbour list,
    backbone.py), whatever Trickle said.  Returns the node, its clock and
    a function that makes 5 and 6 (or only 5) say "in sync" again."""
    a, asent, agot, ack = _node(cfg, 1)
    a.receive(wire.encode_data(9, 1, b"x"), addr_of(9))
    d = wire.decode(a.digest())
    del asent[:]

    def consistent(who=(5, 6)):
        for n in who:
            a.receive(wire.encode_digest(n, d["ids"], summary=d["summary"], live=d["live"]),
                      addr_of(n))

    consistent()
    assert asent == []  # nothing to answer
    for _ in range(cfg.gossip_interval_ms // 10 + 1):  # one Trickle interval
        ack.advance(10)
        a.tick()
    out = [wire.decode(f) for f, _to in asent]
    assert [o["type"] for o in out] == ["digest"], out
    assert sorted(out[0]["neighbours"]) == [5, 6, 9]
    return a, ack, consistent


def test_consistent_digests_suppress_ours():
    cfg = Config.small(relay_delay_ms=0, suppress_count=1)
    a, ack, consistent = _told(cfg)
    # two neighbours' digests with the same summary (Trickle's k = 2): ours
    # is not needed this interval, now that our list is no news
    consistent()
    for _ in range(2 * cfg.gossip_interval_ms // 10):
        ack.advance(10)
        a.tick()
    assert a.stats()["digests_out"] == 1  # the one _told() saw


def test_one_consistent_digest_does_not_suppress_ours():
    cfg = Config.small(relay_delay_ms=0, suppress_count=1)
    a, ack, consistent = _told(cfg)
    consistent((5,))
    for _ in range(2 * cfg.gossip_interval_ms // 10):
        ack.advance(10)
        a.tick()
    assert a.stats()["digests_out"] >= 2


def test_a_lossy_link_is_healed_by_pull():
    cfg = Config.small(relay_delay_ms=20, gossip_interval_ms=200)
    net = Net(3, cfg=cfg, links=[(0, 1), (1, 2)])
    # node 2 hears nothing from node 1 for a while
    net.drop = lambda src, dst, frame: dst == 2 and net.t < 300
    for i in range(5):
        net.nodes[0].publish(b"m%d" % i)
    net.run(200)
    assert net.got[2] == []
    assert len(net.got[1]) == 5
    net.run(3000)
    assert sorted(p for _o, _s, p, _h in net.got[2]) == [b"m%d" % i for i in range(5)]


def test_partition_heals_and_a_late_joiner_catches_up():
    cfg = Config.small(relay_delay_ms=20, gossip_interval_ms=200)
    net = Net(4, cfg=cfg, links=[(0, 1), (2, 3)])  # two halves
    net.nodes[0].publish(b"left")
    net.nodes[3].publish(b"right")
    net.run(500)
    assert [len(g) for g in net.got] == [0, 1, 1, 0]  # each half has only its own
    assert net.got[1][0][2] == b"left" and net.got[2][0][2] == b"right"
    net.link(1, 2)  # the partition heals
    net.run(10000)
    for i in range(4):
        payloads = sorted(p for _o, _s, p, _h in net.got[i])
        want = {0: [b"right"], 3: [b"left"]}.get(i, [b"left", b"right"])
        assert payloads == want, (i, payloads)
    # a node joins late, next to node 3, once all is quiet: it learns both
    # messages from the next digest it hears, by asking for them
    late = net.add_node(0x0B000000)
    net.link(3, 4)
    net.run(15000)
    assert sorted(p for _o, _s, p, _h in net.got[4]) == [b"left", b"right"]
    assert late.stats()["requests_out"] >= 1


def test_digest_lists_newest_first_and_flags_truncation():
    # room for three entries and our one neighbour's short id (backbone.py)
    cfg = Config.small(relay_delay_ms=0, mtu=16 + 7 * 3 + wire.NEIGHBOUR_LEN, max_payload=10)
    a, asent, agot, ack = _node(cfg, 1)
    for seq in range(1, 6):
        ack.advance(10)
        a.receive(wire.encode_data(9, seq, b"p"), addr_of(9))
    d = wire.decode(a.digest())
    assert d["neighbours"] == [9]
    assert d["ids"] == [(9, 5), (9, 4), (9, 3)]
    assert d["truncated"] and d["live"] == 5
    # span: every live id younger than it is listed; (9, 2), 30 ms old, is not
    assert d["span_ms"] == 28  # (in 4 ms units, rounded down)
    # the last entry goes round the older ids, one digest after another,
    # so every live id is advertised in turn
    rest = [wire.decode(a.digest())["ids"] for _ in range(3)]
    assert rest == [[(9, 5), (9, 4), (9, 2)], [(9, 5), (9, 4), (9, 1)], [(9, 5), (9, 4), (9, 3)]]


def test_young_differences_are_the_wave_passing_not_a_loss():
    cfg = Config.small(relay_delay_ms=0, settle_ms=500)
    a, asent, agot, ack = _node(cfg, 1)
    a.receive(wire.encode_data(9, 1, b"new"), addr_of(9))
    ack.advance(100)
    a.tick()  # (the watch after our relay, backbone.py, fell due meanwhile)
    del asent[:]
    due = a.next_deadline()
    # a neighbour that lacks our 100 ms old message and lists one 64 ms old we lack
    a.receive(wire.encode_digest(5, [(9, 2)], summary=1, live=1, ages_ms=[64]), addr_of(5))
    ack.advance(10)
    a.tick()
    assert asent == [] and a.stats()["answered"] == 0 and a.stats()["requests_out"] == 0
    assert a.next_deadline() == due - 10  # no Trickle reset either: nothing rescheduled
    # once both have settled, the same difference is acted upon
    ack.advance(500)
    a.receive(wire.encode_digest(5, [(9, 2)], summary=1, live=1, ages_ms=[5000], span_ms=5000),
              addr_of(5))
    ack.advance(10)
    a.tick()
    kinds = sorted(wire.decode(f)["type"] for f, _to in asent)
    assert kinds == ["data", "request"], kinds


def test_hop_limited_messages_are_not_advertised():
    cfg = Config.small(relay_delay_ms=0)
    a, asent, agot, ack = _node(cfg, 1)
    a.receive(wire.encode_data(9, 1, b"far", hops=3, hop_limit=3), addr_of(9))
    a.receive(wire.encode_data(9, 2, b"near", hops=1, hop_limit=3), addr_of(9))
    assert len(agot) == 2  # both delivered
    d = wire.decode(a.digest())
    assert d["ids"] == [(9, 2)] and d["live"] == 1
    del asent[:]
    ack.advance(cfg.settle_ms)
    a.receive(wire.encode_request(5, [(9, 1), (9, 2)]), addr_of(5))
    ack.advance(cfg.relay_delay_ms + 1)
    a.tick()
    sent = [wire.decode(f)["seq"] for f, _to in asent]
    assert sent == [2], sent
    # hops == hop_limit == 255 is legal on the wire and must not break anything
    assert a.receive(wire.encode_data(9, 3, b"x", hops=255, hop_limit=255), addr_of(9)) is True


def test_what_a_full_ring_evicted_is_not_taken_for_a_loss():
    cfg = Config.small(relay_delay_ms=0, settle_ms=100)
    a, asent, agot, ack = _node(cfg, 1)
    a.receive(wire.encode_data(9, 1, b"old"), addr_of(9))
    ack.advance(3000)
    a.receive(wire.encode_data(9, 2, b"new"), addr_of(9))
    ack.advance(200)
    del asent[:]
    # a neighbour whose digest starts 1 s back lists (9, 2) only: it may
    # well have evicted (9, 1), so that is not answered
    a.receive(wire.encode_digest(5, [(9, 2)], summary=1, live=1, span_ms=1000), addr_of(5))
    ack.advance(10)
    a.tick()
    assert [f for f, _to in asent if wire.decode(f)["type"] == "data"] == []
    assert a.stats()["answered"] == 0
    # once its digest reaches back past (9, 1), the gap is real
    a.receive(wire.encode_digest(5, [(9, 2), (7, 7)], summary=1, live=2, span_ms=9000),
              addr_of(5))
    ack.advance(10)
    a.tick()
    assert [wire.decode(f)["seq"] for f, _to in asent if wire.decode(f)["type"] == "data"] == [1]


def test_a_late_joiner_announces_itself_and_is_caught_up_at_once():
    # all quiet for long: Trickle is at its longest interval.  The newcomer's
    # first digest is empty, but it is sent, and a neighbour that holds
    # something answers it with a digest at the shortest interval
    cfg = Config.small(relay_delay_ms=20, gossip_interval_ms=500,  # longest interval 16 s
                       max_message_age_ms=120000)
    net = Net(3, cfg=cfg)
    net.nodes[0].publish(b"one")
    net.nodes[1].publish(b"two")
    net.run(40000)
    late = net.add_node(0x0B000000)
    net.link(2, 3)
    net.run(3000)
    assert sorted(p for _o, _s, p, _h in net.got[3]) == [b"one", b"two"]
    assert late.stats()["requests_out"] >= 1


def test_span_never_covers_an_id_left_out_even_if_it_arrived_late():
    # A's newest arrivals are old messages it fetched late: a position in
    # the list says nothing of age.  B, which holds all of A's and one more,
    # must push only that one.
    ck = Clock(100000)
    cfg = Config.small(relay_delay_ms=0, mtu=79, max_payload=20, rate_limit=0, origin_rate=0,
                       settle_ms=0, max_message_age_ms=60000)  # 9 ids a digest

    def mk(nid):
        g = Gossip(cfg, nid, ck.read, random.getrandbits)
        g.on_forward(lambda f, to: None)
        g.start()
        return g

    a = mk(0x0A000001)
    b = mk(0x0B000001)
    for s in range(14):
        ck.t += 20
        f = wire.encode_data(0x0C000001, s, b"f")
        a.receive(f)
        b.receive(f)
    for s in range(6):
        ck.t += 20
        f = wire.encode_data(0x0D000001, s, b"o", age_ms=20000)
        a.receive(f)
        b.receive(f)
    b.receive(wire.encode_data(0x0E000001, 0, b"e"))
    ck.t += 100
    d = a.digest()
    assert wire.decode(d)["truncated"]
    before = b.stats()["answered"]
    b.receive(d, bytes((2, 0, 0, 0, 0, 1)), -60)
    assert b.stats()["answered"] - before == 1
