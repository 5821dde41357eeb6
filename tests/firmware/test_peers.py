# Peers: neighbours by node id and address, static rows that learning never
# takes, the per-sender token bucket, and the two-hop knowledge the backbone
# reads (neighbour lists as an adjacency bitmap, listed/ext/deg, RELAYS).
from fwtest import no_alloc, raises

from rumor.peers import HEARD, RELAYS, STATIC, Peers

A = b"\x02\x00\x00\x00\x00\x01"
B = b"\x02\x00\x00\x00\x00\x02"
C = b"\x02\x00\x00\x00\x00\x03"


def test_hear_learns_then_finds():
    p = Peers(4, 8)
    k = p.hear(0x0102, 0x0304, A, 100)
    assert k >= 0 and p.find(0x0102, 0x0304) == k and p.count == 1
    assert p.node_id(k) == 0x01020304 and bytes(p.addr[k]) == A
    assert p.flags[k] & HEARD and p.heard[k] == 100
    assert p.hear(0x0102, 0x0304, A, 200) == k and p.heard[k] == 200 and p.count == 1
    assert p.find(0x0102, 0x0305) == -1


def test_a_full_table_recycles_the_learned_peer_heard_longest_ago():
    p = Peers(2, 8)
    a = p.hear(1, 1, A, 0)
    b = p.hear(1, 2, B, 10)
    c = p.hear(1, 3, C, 20)
    assert c == a and p.find(1, 1) == -1 and p.find(1, 2) == b and p.count == 2


def test_static_peers_are_never_recycled():
    p = Peers(2, 8)
    s = p.add_static(A, 0)
    assert p.flags[s] & STATIC and p.node_id(s) is None  # known by address, not heard yet
    p.hear(1, 2, B, 10)
    k = p.hear(1, 3, C, 20)
    assert p.flags[s] & STATIC and bytes(p.addr[s]) == A and k != s
    # heard for the first time: the static row gets its node id
    assert p.hear(7, 7, A, 30) == s and p.node_id(s) == 0x00070007
    q = Peers(1, 8)
    q.add_static(A, 0)
    assert isinstance(raises(ValueError, q.add_static, B, 0), ValueError)


def test_an_address_that_moves_to_another_node_id_takes_its_row_along():
    p = Peers(4, 8)
    k = p.add_static(A, 0)
    p.hear(1, 1, A, 0)
    p.remove(A)
    assert p.find(1, 1) == -1 and p.count == 0
    k = p.hear(1, 1, A, 0)
    assert p.hear(2, 2, A, 5) == k  # re-flashed with a new id: same row
    assert p.find(2, 2) == k and p.find(1, 1) == -1


def test_active_and_expire():
    p = Peers(4, 8)
    k = p.hear(1, 1, A, 0)
    assert p.active(k, 1000, 5000) and p.active_count(1000, 5000) == 1
    assert not p.active(k, 6000, 5000) and p.active_count(6000, 5000) == 0
    p.expire(6000, 5000)
    assert not p.flags[k] & HEARD
    assert p.report(6000) == [(A, 0x00010001, None, False)]


def test_the_rate_limit_takes_a_frame_per_token_and_refills():
    p = Peers(4, 8)
    k = p.hear(1, 1, A, 0)
    # a new sender pays from the shared bucket first: burst 3 at 10/s
    took = sum(1 for _ in range(5) if p.allow(k, 0, 10, 3))
    assert took == 3
    p.refund(k, 3)
    assert p.allow(k, 0, 10, 3) and not p.allow(k, 0, 10, 3)
    # past the filling time it has a full bucket of its own
    t = 1000
    took = sum(1 for _ in range(5) if p.allow(k, t, 10, 3))
    assert took == 3
    assert p.allow(k, t + 100, 10, 3)  # 100 ms at 10/s: one token back
    assert not p.allow(k, t + 100, 10, 3)


def test_hearing_and_allowing_allocate_nothing():
    p = Peers(8, 8)
    addrs = [bytes((2, 0, 0, 0, 0, i)) for i in range(8)]
    for i in range(8):
        p.hear(1, i, addrs[i], 0)

    def run():
        n = 0
        for t in range(400):
            k = p.hear(1, t & 7, addrs[t & 7], t)
            if p.allow(k, t, 50, 8):
                n += 1
        return n

    assert no_alloc(run, "peers hear/allow") > 0


# -- two-hop knowledge --------------------------------------------------------
ME = 0x0077  # our own short id, as a list names us


def _list(*sids):
    """A neighbour list as a digest carries it: 2 bytes per short id, after
    3 bytes of something else (learn_list reads at an offset)."""
    f = bytearray(3 + 2 * len(sids))
    for i, x in enumerate(sids):
        f[3 + 2 * i] = x >> 8
        f[4 + 2 * i] = x & 0xFF
    return f


def _rows(p, n):
    """Rows for nodes 0x00090001 .. 0x0009000n (short ids 1..n)."""
    return [p.hear(9, i, bytes((2, 0, 0, 0, 0, i)), 0) for i in range(1, n + 1)]


def _links(p):
    return [(a, b) for a in range(p.n) for b in range(p.n) if p.adjacent(a, b)]


def test_a_list_links_rows_both_ways_and_counts_what_lies_beyond():
    p = Peers(8, 8)
    a, b, c = _rows(p, 3)
    assert _links(p) == [] and not p.listed[a]
    f = _list(2, ME, 0x0500, 0x0501)  # b, us, and two nodes we don't know
    assert p.learn_list(a, f, 3, 4, ME) is True
    assert p.adjacent(a, b) and p.adjacent(b, a)  # a named b: both ways
    assert not p.adjacent(a, c) and not p.adjacent(b, c)
    assert p.listed[a] and not p.listed[b]
    assert p.deg[a] == 4 and p.ext[a] == 2  # us not counted beyond, b is ours
    assert sorted(_links(p)) == sorted([(a, b), (b, a)])
    assert p.learn_list(a, f, 3, 4, ME) is False  # the same list again: nothing changed
    assert p.learn_list(a, _list(3, ME, 0x0500, 0x0501), 3, 4, ME) is True  # c instead of b
    assert p.adjacent(a, c) and not p.adjacent(a, b)
    assert p.learn_list(a, _list(3), 3, 1, ME) is True and p.deg[a] == 1 and p.ext[a] == 0
    # a list naming its own sender links nothing
    p.learn_list(b, _list(2, 1), 3, 2, ME)
    assert not p.adjacent(b, b) and p.adjacent(b, a) and p.deg[b] == 2


def test_a_list_only_links_names_known_when_it_is_heard():
    p = Peers(8, 8)
    a, = _rows(p, 1)
    p.learn_list(a, _list(2), 3, 1, ME)
    assert p.ext[a] == 1  # 2 is not a row yet
    b = p.hear(9, 2, B, 5)
    assert not p.adjacent(a, b)  # learned from a's next list, not guessed
    assert p.learn_list(a, _list(2), 3, 1, ME) is True and p.adjacent(a, b) and p.ext[a] == 0


def test_the_role_flag_follows_the_last_digest():
    p = Peers(4, 8)
    a, = _rows(p, 1)
    assert not p.flags[a] & RELAYS
    assert p.learn_role(a, True) is True and p.flags[a] & RELAYS
    assert p.learn_role(a, 8) is False and p.flags[a] & RELAYS  # (any true value: F_RELAYS)
    assert p.learn_role(a, 0) is True and not p.flags[a] & RELAYS
    assert p.flags[a] & HEARD  # the other bits stay


def test_dropping_a_row_forgets_its_links_row_and_column():
    p = Peers(3, 8)
    a, b, c = _rows(p, 3)
    p.learn_list(a, _list(2, 3), 3, 2, ME)
    p.learn_list(b, _list(1, 3), 3, 2, ME)
    p.learn_list(c, _list(1, 2), 3, 2, ME)
    p.learn_role(b, True)
    assert p.adjacent(a, b) and p.adjacent(b, c)
    assert p.remove(B)  # b named a and c (its row); a and c named b (its column)
    assert not any(p.adjacent(b, k) or p.adjacent(k, b) for k in range(p.n))
    assert p.adjacent(a, c) and not p.listed[b] and p.deg[b] == 0 and not p.flags[b]
    # its row, recycled by a newcomer, comes with no links and no role
    d = p.hear(9, 4, B, 10)
    assert d == b and not p.flags[d] & RELAYS and not p.listed[d]
    assert not p.adjacent(a, d) and not p.adjacent(c, d)
    # a full table recycles the row heard longest ago: its links go with it
    e = p.hear(9, 5, bytes((2, 0, 0, 0, 0, 5)), 20)
    assert e == a and not p.adjacent(e, c) and not p.listed[e] and p.ext[e] == 0
    # a static row whose address turns up with another node id starts afresh
    q = Peers(4, 8)
    s = q.add_static(A, 0)
    q.hear(9, 1, A, 0)
    t = q.hear(9, 2, B, 0)
    q.learn_list(s, _list(2), 3, 1, ME)
    assert q.adjacent(s, t) and q.listed[s]
    assert q.hear(9, 7, A, 5) == s  # re-flashed: same row, new id
    assert not q.adjacent(s, t) and not q.listed[s]
    p.clear()
    assert _links(p) == [] and not any(p.listed) and not any(p.deg)


def test_known_count_and_write_list_name_the_rows_with_an_id():
    p = Peers(6, 8)
    assert p.known_count() == 0 and not p.grown
    p.add_static(A, 0)  # known by address only: no short id to list
    assert p.known_count() == 0
    _rows(p, 3)
    assert p.grown  # learned rows: our list changed
    assert p.known_count() == 3
    f = bytearray(10)
    assert p.write_list(f, 2, 8) == 3
    assert sorted((f[i] << 8) | f[i + 1] for i in (2, 4, 6)) == [1, 2, 3]
    assert f[8] == f[9] == 0  # nothing past what it wrote
    g = bytearray(4)
    assert p.write_list(g, 0, 2) == 2  # at most room
    p.remove(B)
    assert p.known_count() == 2


def test_list_learning_allocates_nothing():
    p = Peers(16, 8)
    rows = _rows(p, 12)
    f = _list(*range(1, 13))
    g = _list(ME, 3, 0x0400, 5)
    out = bytearray(40)

    def run():
        n = 0
        for t in range(50):
            k = rows[t % 12]
            if p.learn_list(k, f if t & 1 else g, 3, 12 if t & 1 else 4, ME):
                n += 1
            p.learn_role(k, t & 2)
            n += p.adjacent(k, rows[(t + 1) % 12]) + p.known_count() + p.write_list(out, 0, 20)
        return n

    assert no_alloc(run, "peers learn_list/learn_role/adjacent/known_count/write_list") > 0
