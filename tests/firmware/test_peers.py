# Peers: neighbours by node id and address, static rows that learning never
# takes, and the per-sender token bucket.
from fwtest import no_alloc, raises

from rumor.peers import HEARD, STATIC, Peers

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
