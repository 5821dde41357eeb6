# Origins: a token bucket per message origin, whichever neighbour relays it;
# a flooder keeps its row and its penalty.
from fwtest import no_alloc

from rumor.origins import Origins


def test_an_origin_gets_a_full_bucket_then_runs_dry():
    o = Origins(4)
    took = sum(1 for _ in range(10) if o.allow(0x010203, 4, 0, 10, 5, 2000))
    assert took == 5
    assert o.busy(0x010203, 4, 0, 10, 5)  # ran dry: flooding, for the penalty
    assert not o.busy(0x010203, 5, 0, 10, 5)  # another origin (same hi, other lo)


def test_the_bucket_refills_at_the_rate():
    o = Origins(4)
    for _ in range(5):
        o.allow(1, 1, 0, 10, 5, 2000)
    assert not o.allow(1, 1, 0, 10, 5, 2000)
    assert o.allow(1, 1, 100, 10, 5, 2000)  # 100 ms at 10/s: one message
    assert not o.allow(1, 1, 100, 10, 5, 2000)


def test_the_penalty_ends_and_is_expired():
    o = Origins(4)
    for _ in range(6):
        o.allow(1, 1, 0, 10, 5, 2000)
    assert o.busy(1, 1, 1000, 10, 5)
    o.expire(3000)
    assert not o.busy(1, 1, 3000, 10, 5)  # (full again, and the penalty is over)


def test_a_new_origin_takes_the_row_idle_longest_but_not_a_flooders():
    o = Origins(2)
    for _ in range(6):
        o.allow(9, 9, 0, 10, 5, 100000)  # a flooder, under penalty
    o.allow(1, 1, 10, 10, 5, 100000)
    o.allow(2, 2, 5000, 10, 5, 100000)  # takes 1's row: the flooder keeps its own
    assert o.busy(9, 9, 5000, 10, 5)
    assert list(o.hi).count(1) == 0 and 9 in list(o.hi) and 2 in list(o.hi)


def test_allow_allocates_nothing():
    o = Origins(8)

    def run():
        n = 0
        for t in range(400):
            if o.allow(t & 15, 1, t, 20, 8, 5000):
                n += 1
        return n

    assert no_alloc(run, "origins allow") > 0
