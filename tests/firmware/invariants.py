# State invariants of a Gossip engine, checked after every frame by the fuzz
# tests: the ring, its priority chains, the dedup table and the peer table
# agree with one another and never exceed what was allocated.


def check(g):
    r, d, p, _o = g.tables()
    cfg = g.config
    used = [s for s in range(r.slots) if r.used[s]]
    assert r.count == len(used) <= cfg.ring_slots, (r.count, len(used))
    # every body is linked both ways with its id
    for s in used:
        i = r.dix[s]
        assert 0 <= i < d.slots and d.slot[i] == s and d.hi[i] != -1, (s, i)
        assert len(r.frame[s]) >= 16
        assert r.prio[s] <= 3
    for i in range(d.slots):
        if d.slot[i] >= 0:
            assert r.used[d.slot[i]] and r.dix[d.slot[i]] == i
    assert d.used == sum(1 for i in range(d.slots) if d.hi[i] != -1) <= cfg.dedup_slots
    # the priority chains hold exactly the used slots, oldest first; the free chain the rest
    seen = []
    for prio in range(4):
        s = r.head[prio]
        prev = -1
        while s >= 0:
            assert r.used[s] and r.prio[s] == prio and r.prv[s] == prev
            seen.append(s)
            prev = s
            s = r.nxt[s]
        assert r.tail[prio] == prev
    assert sorted(seen) == used
    free = []
    s = r.spare
    while s >= 0:
        assert not r.used[s]
        free.append(s)
        s = r.nxt[s]
    assert sorted(free + seen) == list(range(r.slots))
    # peers
    rows = [k for k in range(p.n) if p.flags[k]]
    assert p.count == len(rows) <= cfg.max_peers
    for k in rows:
        if p.hi[k] != -1:
            assert p.find(p.hi[k], p.lo[k]) == k
    # counters add up
    s = g.stats()
    assert s["message_count"] == r.count and s["seen_count"] == d.used
    assert s["delivered"] <= s["frames_in"]
    # every frame is counted at most once among the ways of dropping it
    dropped = s["malformed"] + s["bad_tag"] + s["stale"] + s["rate_limited"] + s["forgotten"]
    assert s["delivered"] + dropped <= s["frames_in"], s
    assert s["bad_tag"] == 0 or g._auth is not None  # (white-box: only a keyed engine checks tags)
