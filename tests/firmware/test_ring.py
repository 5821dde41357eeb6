# Ring: slots, the priority chains, the dedup link it owns, and the state
# bits, each changed only through the methods its table names.
from fwtest import no_alloc

from rumor import mem
from rumor.dedup import Dedup
from rumor.ring import COVER, HELD, LIMITED, OWN, PUSH, QUAR, RELAY, UNSENDABLE, WATCH, Ring


def _frame(origin, seq, body=b"x"):
    f = bytearray(16 + len(body))
    f[0] = 0x11
    for i in range(4):
        f[8 + i] = (origin >> (24 - 8 * i)) & 0xFF
    f[12] = seq >> 8
    f[13] = seq & 0xFF
    f[16:] = body
    return f


def _ring(slots=4, row_bytes=0):
    d = Dedup(16)
    return Ring(slots, 64, d.slot, row_bytes), d


def _store(r, d, origin, seq, prio=0, born=0, state=0):
    s = r.take(prio)
    assert s >= 0 and not r.used[s]
    hi = origin >> 8
    lo = ((origin & 0xFF) << 16) | seq
    i = d.add(hi, lo, born)
    r.put(s, _frame(origin, seq), prio, 1, born, i, -1, state)
    return s, i


def _chain(r, prio):
    out = []
    s = r.head[prio]
    while s >= 0:
        out.append(s)
        s = r.nxt[s]
    return out


def test_put_links_the_dedup_entry_and_free_unlinks_it():
    r, d = _ring()
    s, i = _store(r, d, 0x01020304, 7)
    assert d.slot[i] == s and r.dix[s] == i and r.used[s] and r.count == 1
    assert r.ohi[s] == 0x010203 and r.olo[s] == 0x04
    r.free(s)
    assert d.slot[i] == -1 and r.dix[s] == -1 and not r.used[s] and r.count == 0
    assert len(r.frame[s]) == 0 and r.state[s] == 0
    assert d.find(0x010203, (0x04 << 16) | 7) == i  # the id stays seen
    r.free(s)  # freeing a free slot changes nothing
    assert r.count == 0 and d.slot[i] == -1


def test_full_ring_offers_the_oldest_of_the_lowest_priority():
    r, d = _ring(4)
    a, _ = _store(r, d, 1, 1, prio=1)
    b, _ = _store(r, d, 1, 2, prio=0)
    c, _ = _store(r, d, 1, 3, prio=0)
    _store(r, d, 1, 4, prio=2)
    assert r.full() and r.spare == -1
    assert _chain(r, 0) == [b, c] and _chain(r, 1) == [a]
    assert r.take(0) == b  # the oldest of priority 0 goes first
    r.free(b)
    assert _chain(r, 0) == [c] and r.take(0) == b  # and its slot comes back
    # nothing below priority 0: a priority-0 message may not evict priority 1
    r2, d2 = _ring(2)
    _store(r2, d2, 1, 1, prio=1)
    _store(r2, d2, 1, 2, prio=1)
    assert r2.take(0) == -1 and r2.take(1) >= 0


def test_over_quota_names_the_origins_oldest_replaceable_message():
    r, d = _ring(4)
    s1, _ = _store(r, d, 5, 1, prio=0)
    _store(r, d, 5, 2, prio=0)
    _store(r, d, 6, 1, prio=0)
    assert r.over_quota(0, 5, 0, 3) == -1  # two of three: under quota
    assert r.over_quota(0, 5, 0, 2) == s1  # at quota: its oldest
    r3, d3 = _ring(4)
    _store(r3, d3, 5, 1, prio=2)
    _store(r3, d3, 5, 2, prio=2)
    assert r3.over_quota(0, 5, 0, 2) == -2  # all of its messages outrank the new one


def test_expire_frees_only_what_is_too_old():
    r, d = _ring(4)
    old, i = _store(r, d, 1, 1, born=0)
    young, _ = _store(r, d, 1, 2, born=900)
    assert r.expire(1000, 500) == 1
    assert not r.used[old] and r.used[young] and d.slot[i] == -1
    assert r.expire(1000, 500) == 0


def test_state_bits_change_through_their_methods():
    r, d = _ring(4)
    s, _ = _store(r, d, 1, 1, state=OWN)
    assert r.state[s] == OWN
    r.arm(s, 1234, 2)
    assert r.state[s] == OWN | RELAY and r.due[s] == 1234 and r.need[s] == 2 and r.heard[s] == 0
    assert r.copy_heard(s) == 1 and r.copy_heard(s) == 2
    r.cancel(s)
    assert r.state[s] == OWN
    r.push(s, 2)
    assert r.state[s] & PUSH
    r.pushed(s)
    assert r.state[s] & PUSH and r.pushes[s] == 1
    r.pushed(s)
    assert not r.state[s] & PUSH
    r.push(s, 0)  # no rounds: not pushed at all
    assert not r.state[s] & PUSH
    r.hold(s)
    assert r.state[s] & HELD and r.state[s] & UNSENDABLE
    r.release(s)
    assert r.state[s] == OWN
    t, _ = _store(r, d, 1, 2, state=LIMITED)
    r.quarantine(t)
    assert r.state[t] == LIMITED | QUAR
    r.release(t)
    assert r.state[t] == LIMITED and r.state[t] & UNSENDABLE
    r.free(t)
    assert r.state[t] == 0


def test_copies_heard_stop_counting_at_255():
    r, d = _ring(1)
    s, _ = _store(r, d, 1, 1)
    r.arm(s, 0, 0)
    for _ in range(300):
        h = r.copy_heard(s)
    assert h == 255


def test_the_ring_cycles_without_allocating():
    r, d = _ring(4)
    frames = [_frame(9, k) for k in range(8)]

    def run():
        for k in range(400):
            f = frames[k & 7]
            s = r.take(0)
            if r.used[s]:
                r.free(s)
            i = d.add(0, (9 << 16) | (k & 0xFFFF), k)
            if d.slot[i] >= 0:
                r.free(d.slot[i])
            r.put(s, f, 0, 1, k, i, -1, 0)
            r.arm(s, k, 1)
            r.cancel(s)

    no_alloc(run, "ring put/free/arm")
    used = [s for s in range(4) if r.used[s]]
    assert r.count == len(used) > 0
    for s in used:  # every body still linked both ways with its id
        assert d.slot[r.dix[s]] == s


def test_cover_and_watch_qualify_a_pending_relay_and_go_with_it():
    r, d = _ring(4)
    s, _ = _store(r, d, 1, 1, state=OWN)
    r.arm(s, 100, 0, COVER)
    assert r.state[s] == OWN | RELAY | COVER and r.due[s] == 100 and r.need[s] == 0
    r.copy_heard(s)
    r.arm(s, 200, 1, COVER | WATCH)  # the watch after our broadcast
    assert r.state[s] == OWN | RELAY | COVER | WATCH and r.need[s] == 1 and r.heard[s] == 0
    r.arm(s, 300, 1)  # a plain relay (an answer) drops both
    assert r.state[s] == OWN | RELAY
    r.arm(s, 400, 0, COVER | WATCH)
    r.cancel(s)
    assert r.state[s] == OWN  # cancel clears RELAY, COVER and WATCH, nothing else
    t, _ = _store(r, d, 1, 2, state=LIMITED)
    r.arm(t, 0, 0, COVER)
    r.free(t)
    assert r.state[t] == 0
    assert COVER & (RELAY | UNSENDABLE | OWN | PUSH) == 0 and WATCH & (RELAY | UNSENDABLE | OWN | PUSH | COVER) == 0


def test_by_records_the_rows_heard_sending_each_slot():
    r, d = _ring(4, row_bytes=2)  # up to 16 rows
    s, _ = _store(r, d, 1, 1)
    t, _ = _store(r, d, 1, 2)
    assert not any(r.sent_by(s, k) for k in range(16))
    for k in (0, 7, 8, 15):
        r.heard_from(s, k)
    r.heard_from(s, -1)  # an unknown sender: nothing to record
    assert [k for k in range(16) if r.sent_by(s, k)] == [0, 7, 8, 15]
    assert not any(r.sent_by(t, k) for k in range(16))  # slots don't share bits
    r.heard_from(t, 3)
    assert [k for k in range(16) if r.sent_by(t, k)] == [3]
    r.arm(s, 0, 0, COVER)
    r.cancel(s)
    assert r.sent_by(s, 15)  # arm/cancel leave it
    # a slot filled again starts with nobody
    r.free(s)
    i = d.add(0, (1 << 16) | 9, 0)
    u = r.take(0)
    assert u == s
    r.put(u, _frame(1, 9), 0, 1, 0, i, -1, 0)
    assert not any(r.sent_by(u, k) for k in range(16)) and r.sent_by(t, 3)
    # without a peer bitmap (row_bytes 0) there is nothing to record, nor room for it
    r0, d0 = _ring(4)
    s0, _ = _store(r0, d0, 1, 1)
    r0.heard_from(s0, 3)
    assert len(r0.by) == 0
    assert r.memory_bytes() - r0.memory_bytes() == mem.buf(4 * 2) - mem.buf(0)


def test_arming_and_recording_senders_allocate_nothing():
    r, d = _ring(4, row_bytes=4)
    slots = [_store(r, d, 1, k)[0] for k in range(4)]

    def run():
        n = 0
        for k in range(400):
            s = slots[k & 3]
            r.arm(s, k, k & 1, COVER | (WATCH if k & 2 else 0))
            r.heard_from(s, k & 31)
            n += r.sent_by(s, k & 31)
            r.cancel(s)
        return n

    assert no_alloc(run, "ring arm(how)/heard_from/sent_by/cancel") == 400
    for j, s in enumerate(slots):  # slot j heard rows j, j + 4, ...: those only
        assert [k for k in range(32) if r.sent_by(s, k)] == list(range(j, 32, 4))
