# Dedup: the ids seen, in 4-way buckets; the watermark that remembers how
# recent its forgetting reaches.
from fwtest import no_alloc

from rumor.dedup import Dedup


def _one_bucket():
    """A table of one bucket (4 entries), and 5 ids: they all share it."""
    return Dedup(4), [(1, lo) for lo in range(5)]


def test_add_find_remove():
    d = Dedup(16)
    assert d.find(5, 6) == -1
    i = d.add(5, 6, 100)
    assert d.find(5, 6) == i and d.used == 1 and d.slot[i] == -1 and d.at[i] == 100
    d.remove(i)
    assert d.find(5, 6) == -1 and d.used == 0


def test_a_full_bucket_forgets_its_oldest_id_and_sets_the_watermark():
    d, ids = _one_bucket()
    for t, (hi, lo) in enumerate(ids[:4]):
        d.add(hi, lo, 10 * t)
    assert d.used == 4
    d.add(ids[4][0], ids[4][1], 50)
    assert d.used == 4 and d.find(*ids[0]) == -1  # the oldest went
    assert all(d.find(*x) >= 0 for x in ids[1:])
    # a message born no later than the forgotten id's first sighting may be
    # one already delivered: refused; one born after it cannot be
    assert d.forgotten(ids[0][0], ids[0][1], 0)
    assert not d.forgotten(ids[0][0], ids[0][1], 1)


def test_ids_with_a_body_are_kept_longer():
    d, ids = _one_bucket()
    for t, (hi, lo) in enumerate(ids[:4]):
        i = d.add(hi, lo, 10 * t)
        if t == 0:
            d.slot[i] = 3  # (the ring's link: the oldest still has its body)
    i = d.add(ids[4][0], ids[4][1], 50)
    assert d.find(*ids[0]) >= 0 and d.find(*ids[1]) == -1  # the oldest without a body went
    assert d.slot[i] == -1


def test_forget_older_keeps_ids_with_bodies_and_young_ones():
    d = Dedup(16)
    a = d.add(1, 1, 0)
    b = d.add(1, 2, 0)
    d.add(1, 3, 900)
    d.slot[b] = 0
    assert d.forget_older(1000, 500) == 1
    assert d.find(1, 1) == -1 and d.find(1, 2) == b and d.find(1, 3) >= 0
    assert d.used == 2 and a >= 0


def test_watermarks_expire():
    d, ids = _one_bucket()
    for t, (hi, lo) in enumerate(ids):
        d.add(hi, lo, t)
    assert d.forgotten(ids[0][0], ids[0][1], 0)
    d.expire_watermarks(100000, 1000)
    assert not d.forgotten(ids[0][0], ids[0][1], 0)


def test_lookups_and_inserts_allocate_nothing():
    d = Dedup(64)

    def run():
        n = 0
        for k in range(500):
            i = d.find(0x0A0B0C, (0x0D << 16) | k)
            if i < 0:
                d.add(0x0A0B0C, (0x0D << 16) | k, k)
                n += 1
        return n

    assert no_alloc(run, "dedup find/add") == 500
    assert d.used == 64
