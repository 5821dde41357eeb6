# The relay backbone (rumor/backbone.py): who relays, elected from the
# neighbour lists digests carry; the watch that resends to a silent backbone
# neighbour; what digests say of it.  Shapes are built two ways: meshnet.Net
# (lists learned from the digests the nodes send) and single engines fed
# digests made with wire.encode_digest(..., neighbours=..., relays=...).
# A node's role is read as its neighbours read it: the RELAYS flag of the
# digest it would send now.
from fwtest import Clock, seeded_rand
from meshnet import Net, addr_of, count_frames, exchange, roles

from rumor import Config, Gossip, wire

_DATA = 1
_DIGEST = 2


def _cfg(**kw):
    d = dict(relay_delay_ms=40, rate_limit=0, origin_rate=0)
    d.update(kw)
    return Config.medium(**d)


# -- meshes (meshnet) ---------------------------------------------------------
def _settle(net, rounds=6, more=4):
    """Exchange digests until the roles are known, then a few rounds more:
    the roles must not move any more.  Returns them."""
    exchange(net, rounds)
    got = roles(net)
    for i in range(more):
        exchange(net, 1)
        now = roles(net)
        assert now == got, ("roles still moving after %d rounds" % (rounds + i + 1), got, now)
    return got


def _clique(nodes):
    return [(a, b) for a in nodes for b in nodes if a < b]


_LINE3 = [(0, 1), (1, 2)]
_STAR = [(0, i) for i in range(1, 6)]  # hub 0, leaves 1..5
# two cliques of 4 joined through node 4, which is a neighbour of 0 and of 5
_BRIDGED = _clique([0, 1, 2, 3]) + _clique([5, 6, 7, 8]) + [(4, 0), (4, 5)]
_GRID = [(r * 4 + c, r * 4 + c + 1) for r in range(4) for c in range(3)] + \
        [(r * 4 + c, r * 4 + c + 4) for r in range(3) for c in range(4)]
_SHAPES = (("line3", 3, _LINE3), ("star", 6, _STAR), ("clique", 5, None), ("bridged", 9, _BRIDGED),
           ("grid", 16, _GRID))


def _mesh(n, links, **kw):
    return Net(n, cfg=_cfg(**kw), links=links)


def test_a_line_of_three_elects_its_middle():
    # (cover_copies=1 here and in the next tests: the coverage condition alone;
    # cover_copies has its own test below)
    net = _mesh(3, _LINE3, cover_copies=1)
    assert _settle(net) == [False, True, False], roles(net)


def test_a_clique_elects_its_highest_priority_node_and_one_for_it():
    # all have the same neighbour count: the highest short id wins (node 4);
    # node 4 must hear a backbone node too (cover_copies=1), and node 3 is
    # its best candidate: the two of them, nobody else
    net = _mesh(5, None, cover_copies=1)
    got = _settle(net)
    assert got == [False, False, False, True, True], got


def test_a_star_elects_its_hub():
    net = _mesh(6, _STAR, cover_copies=1)
    got = _settle(net)
    assert got == [True] + [False] * 5, got


def test_two_cliques_joined_by_a_bridge_elect_the_bridge():
    net = _mesh(9, _BRIDGED, cover_copies=1)
    got = _settle(net)
    assert got[4], got  # the only way across
    assert got[0] and got[5], got  # its two ends: each the top of its clique
    assert not got[1] and not got[2] and not got[6], got  # nothing asks for these


def _connected_dominating(adj, on):
    """Every node relays or hears one that does, and the relaying nodes are
    connected among themselves: a message crosses the mesh by relays alone."""
    n = len(adj)
    for i in range(n):
        assert on[i] or any(on[j] for j in adj[i]), ("node %d hears no relaying node" % i, on)
    first = [i for i in range(n) if on[i]]
    assert first, on
    seen = {first[0]}
    todo = [first[0]]
    while todo:
        i = todo.pop()
        for j in adj[i]:
            if on[j] and j not in seen:
                seen.add(j)
                todo.append(j)
    assert len(seen) == len(first), ("the backbone is cut", on)


def test_every_shape_settles_on_a_connected_backbone_that_covers_it():
    for copies in (1, 2):
        for name, n, links in _SHAPES:
            net = _mesh(n, links, cover_copies=copies)
            try:
                _connected_dominating(net.adj, _settle(net))
            except AssertionError as e:
                raise AssertionError((name, copies) + e.args)


def test_every_message_reaches_every_node_with_no_more_relays_than_a_flood():
    for name, n, links in _SHAPES:
        net = _mesh(n, links)
        _settle(net)
        count_frames(net)
        origins = (0, n // 2, n - 1)
        for i in origins:
            seq = net.nodes[i].publish(b"m%d" % i) & 0xFFFF
            net.run(1000, step=10)
            assert len(net.delivered(i, seq)) == n - 1, (name, i, net.delivered(i, seq))
        data = sum(t[_DATA] for t in net.tx)
        resent = sum(g.stats()["resent"] for g in net.nodes)
        # a flood: every node sends each once.  A grid prunes nobody (no
        # triangles) and its corners, which rightly stay silent, look to
        # their watchers like relays that missed it: there the excess is
        # resends, never a second relay
        if name == "grid":
            assert data - resent <= n * len(origins), (name, data, resent, net.tx)
        else:
            assert data <= n * len(origins), (name, data, net.tx)


def test_leaves_send_no_relays():
    # a leaf hears a message only from its one neighbour, which has it: a
    # relay (or a resend) by the leaf, or to the leaf, reaches nobody new
    for name, n, links, leaves in (("line3", 3, _LINE3, (0, 2)), ("star", 6, _STAR, (1, 2, 3, 4, 5))):
        net = _mesh(n, links)
        _settle(net)
        count_frames(net)
        for i in range(n):
            net.nodes[i].publish(b"m%d" % i)
            net.run(1000, step=10)
        for i in leaves:
            assert net.tx[i][_DATA] == 1, (name, i, net.tx)  # its own message, once
        assert net.tx[0 if name == "star" else 1][_DATA] == n, (name, net.tx)  # each message once


def test_a_node_whose_digests_are_all_lost_still_carries_messages_across():
    # node 4 is the only way between the two cliques and nobody ever hears its
    # list nor its role: the ones that can't judge it must stay safe
    net = _mesh(9, _BRIDGED)
    net.drop = lambda src, dst, f: src == 4 and f[0] & 0x0F == _DIGEST
    net.nodes[4].publish(b"hello")  # (its neighbours learn it from this)
    net.run(2000)
    exchange(net, 6)
    for i in (1, 8, 4):
        seq = net.nodes[i].publish(b"from %d" % i) & 0xFFFF
        net.run(1000, step=10)
        assert len(net.delivered(i, seq)) == 8, (i, net.delivered(i, seq), roles(net))


# -- single engines fed digests ----------------------------------------------
def _engine(node_id, **kw):
    ck = Clock(1000)
    g = Gossip(_cfg(**kw), node_id, ck.read, seeded_rand(3))
    sent = []
    g.on_forward(lambda f, to: sent.append(bytes(f)))
    g.start()
    return g, sent, ck


def _meet(g, nodes):
    """g hears each of nodes [(node id, its neighbours' ids, relays)]: first
    once (so every name is a row), then their lists."""
    for nid, _nb, _r in nodes:
        g.receive(wire.encode_digest(nid, []), addr_of(nid))
    for nid, nb, rel in nodes:
        g.receive(wire.encode_digest(nid, [], neighbours=nb, relays=rel), addr_of(nid))


def _relays(g):
    return wire.decode(g.digest())["relays"]


def _data_frames(sent):
    return [f for f in sent if f[0] & 0x0F == _DATA]


def _run(g, ck, ms, step=5):
    for _ in range(ms // step):
        ck.advance(step)
        g.tick()


def test_a_neighbour_whose_list_was_never_heard_keeps_us_relaying():
    # 5's neighbours: 9 and 8 (they relay, and outrank it), and 3, heard only
    # in a DATA frame: nothing says 3 hears 9 or 8, so only 5 may carry to it
    g, _s, _c = _engine(5, cover_copies=1)
    _meet(g, [(9, [5, 8, 20, 21, 22], True), (8, [5, 9, 23, 24], True)])
    assert not _relays(g)  # 9 and 8 cover everything 5 knows
    g.receive(wire.encode_data(3, 1, b"x", sender=3), addr_of(3), -70)
    assert _relays(g)  # 3 is not known to hear either
    # once 9's list names 3, 3 hears a relaying node that outranks 5
    g.receive(wire.encode_digest(9, [], neighbours=[5, 8, 3, 20, 21, 22], relays=True), addr_of(9))
    assert not _relays(g)


def test_cover_copies_a_neighbour_that_hears_one_backbone_node_gets_a_second():
    # 5 is pruned by 9, 8 and 7 (all relay, all outrank it); 6 hears 9 alone
    nodes = [(9, [5, 8, 7, 6, 30, 31], True), (8, [5, 9, 7, 32], True), (7, [5, 9, 8, 33], True),
             (6, [5, 9], False)]
    g, _s, _c = _engine(5, cover_copies=1)
    _meet(g, nodes)
    assert not _relays(g)  # one relay for 6 is enough
    g, _s, _c = _engine(5)  # cover_copies=2: 5 is 6's best candidate, it joins
    assert g.config.cover_copies == 2
    _meet(g, nodes)
    assert _relays(g)
    # 12 (not in the backbone, and outranking 5) also hears 6: it is the one
    g, _s, _c = _engine(5)
    _meet(g, [(9, [5, 8, 7, 6, 12, 30], True), (8, [5, 9, 7, 12], True), (7, [5, 9, 8, 33], True),
              (6, [5, 9, 12], False), (12, [5, 6, 9, 8, 40], False)])
    assert not _relays(g)


def test_a_list_is_learned_both_ways_and_forgotten_with_its_row():
    g, _s, ck = _engine(5, max_peers=3)
    _meet(g, [(8, [], False), (9, [5, 8, 99], True)])
    p = g.tables()[2]
    a = p.find(0, 9)
    b = p.find(0, 8)
    assert a >= 0 and b >= 0
    assert p.adjacent(a, b) and p.adjacent(b, a)  # only 9 said so
    assert p.listed[a] and not p.listed[b]
    assert p.deg[a] == 3 and p.ext[a] == 1  # 5 is us, 8 a row, 99 beyond us
    g.remove_peer(addr_of(8))
    assert p.find(0, 8) == -1 and not p.adjacent(a, b) and not p.adjacent(b, a)
    # the row goes to a newcomer, without 8's links; a full table recycles 9's
    ck.advance(10)
    g.receive(wire.encode_digest(11, []), addr_of(11))
    c = p.find(0, 11)
    assert c >= 0 and not p.adjacent(a, c)
    for nid in (12, 13):
        ck.advance(10)
        g.receive(wire.encode_digest(nid, []), addr_of(nid))  # the table holds 3: 9, heard longest ago, goes
    assert p.find(0, 9) == -1
    for k in range(p.n):
        assert not p.listed[k] and p.deg[k] == 0 and p.ext[k] == 0
        for j in range(p.n):
            assert not p.adjacent(j, k)


# -- the watch -----------------------------------------------------------------
def _relay_once(**kw):
    """Node 5 relays a message from 3; 9 relays too and outranks 5, but hears
    3 only through 5.  Returns (engine, frames sent, clock) with 5's relay
    just sent (the watch on it is armed)."""
    nodes = kw.pop("_nodes", None) or [(3, [5], False), (9, [5, 20, 21], True), (11, [5], False)]
    g, sent, ck = _engine(5, **kw)
    _meet(g, nodes)
    assert _relays(g)  # 3 and 11 hear nobody else
    g.receive(wire.encode_data(30, 1, b"m", sender=3, hops=1), addr_of(3), -70)
    _run(g, ck, g.config.relay_delay_ms)
    assert len(_data_frames(sent)) == 1, sent  # our relay
    return g, sent, ck


def _watch_long(g):
    return 16 * g.config.relay_delay_ms + 10  # the longest a watch waits, and more


def test_a_silent_backbone_neighbour_that_had_only_us_gets_it_again_once():
    g, sent, ck = _relay_once()
    _run(g, ck, 4 * _watch_long(g))
    assert len(_data_frames(sent)) == 2 and g.stats()["resent"] == 1  # ack_retries=1


def test_resends_stop_after_ack_retries():
    g, sent, ck = _relay_once(ack_retries=3)
    _run(g, ck, 8 * _watch_long(g))
    assert len(_data_frames(sent)) == 4 and g.stats()["resent"] == 3
    g, sent, ck = _relay_once(ack_retries=0)
    _run(g, ck, 4 * _watch_long(g))
    assert len(_data_frames(sent)) == 1 and g.stats()["resent"] == 0


def test_no_resend_when_a_relay_comes_back():
    # 9's own relay: it has it
    g, sent, ck = _relay_once()
    g.receive(wire.encode_data(30, 1, b"m", sender=9, hops=3), addr_of(9), -70)
    _run(g, ck, 4 * _watch_long(g))
    assert len(_data_frames(sent)) == 1 and g.stats()["resent"] == 0
    # 11's relay (11 is not 9, and 9 stays silent): our copy got through, and
    # in a crowd some relay is always lost; silence all round is what says ours was
    g, sent, ck = _relay_once()
    g.receive(wire.encode_data(30, 1, b"m", sender=11, hops=2), addr_of(11), -70)
    _run(g, ck, 4 * _watch_long(g))
    assert len(_data_frames(sent)) == 1 and g.stats()["resent"] == 0


def test_no_resend_to_a_neighbour_that_had_another_chance():
    # 3, which sent it to us, lists 9: 9 heard 3's copy too
    g, sent, ck = _relay_once(_nodes=[(3, [5, 9], False), (9, [5, 3, 20, 21], True), (11, [5], False)])
    _run(g, ck, 4 * _watch_long(g))
    assert g.stats()["resent"] == 0 and len(_data_frames(sent)) == 1


# -- what the digests say --------------------------------------------------------
def test_a_digest_lists_our_neighbours_and_says_whether_we_relay():
    g, sent, ck = _engine(5, cover_copies=1)
    d = wire.decode(g.digest())
    assert d["neighbours"] == [] and d["relays"]  # knows nobody: can't be pruned
    _meet(g, [(9, [5, 8, 20, 21, 22], True), (8, [5, 9, 23, 24], True)])
    d = wire.decode(g.digest())
    assert sorted(d["neighbours"]) == [8, 9] and not d["relays"]
    # on air: with a message about, a new neighbour goes out in the next digest
    g.publish(b"live")
    _run(g, ck, 3000)
    before = len(sent)
    g.receive(wire.encode_digest(0x00C40007, [], neighbours=[5]), addr_of(7))
    _run(g, ck, 2 * g.config.gossip_interval_ms + 10)
    out = [wire.decode(f) for f in sent[before:] if f[0] & 0x0F == _DIGEST]
    assert out and sorted(out[0]["neighbours"]) == [7, 8, 9], out
    assert out[0]["relays"]  # 7 hears neither 9 nor 8: 5 relays for it


def test_an_idle_mesh_stays_as_quiet_as_without_the_backbone():
    # no message about: a changed list alone sends no digest
    quiet = []
    for coverage in (True, False):
        net = Net(4, cfg=_cfg(coverage=coverage), links=[(0, 1), (1, 2), (2, 3)], seed=3)
        count_frames(net)
        net.run(600000, step=50)
        quiet.append([t[_DIGEST] for t in net.tx])
    assert quiet[0] == quiet[1] and max(quiet[0]) <= 1, quiet  # the hello, at most


def test_an_empty_digest_with_an_unchanged_list_is_not_sent():
    g, sent, ck = _engine(5)
    _meet(g, [(9, [5], False)])
    g.publish(b"m")  # a message about, so lists matter
    _run(g, ck, g.config.max_message_age_ms + g.config.prune_interval_ms + 1000, step=20)
    assert g.stats()["message_count"] == 0  # expired

    def digests():
        return len([f for f in sent if f[0] & 0x0F == _DIGEST])
    n = digests()
    _run(g, ck, 300000, step=50)
    assert digests() == n  # nothing to say
    g.receive(wire.encode_digest(7, [], neighbours=[5]), addr_of(7))  # a new neighbour, idle
    _run(g, ck, 300000, step=50)
    assert digests() == n  # a list alone is not worth a frame while nothing is about


def test_coverage_off_keeps_the_counter_rule():
    def copies(coverage):
        cfg = Config.small(coverage=coverage, relay_delay_ms=100, suppress_count=2, suppress_rssi=0,
                           rate_limit=0, origin_rate=0)
        ck = Clock(1000)
        g = Gossip(cfg, 5, ck.read, seeded_rand(3))
        sent = []
        g.on_forward(lambda f, to: sent.append(bytes(f)))
        g.start()
        g.receive(wire.encode_data(9, 1, b"m"), addr_of(9))
        g.receive(wire.encode_data(9, 1, b"m", sender=10, hops=1), addr_of(10))
        g.receive(wire.encode_data(9, 1, b"m", sender=11, hops=1), addr_of(11))
        _run(g, ck, 200)
        return len(_data_frames(sent)), g.stats()["suppressed"], wire.decode(g.digest())
    n, sup, d = copies(False)
    assert n == 0 and sup == 1  # two copies heard: cancelled
    assert not d["relays"] and d["neighbours"] == []  # and the digests say nothing of it
    n, sup, _d = copies(True)
    # with the backbone, copies don't cancel: none of 9, 10, 11 said whom it hears
    assert n == 1 and sup == 0
