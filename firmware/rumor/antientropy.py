# Anti-entropy: digests, requests, their answers, and the Trickle timer
# that paces digests on a broadcast medium.
#
# A DIGEST lists the ids a node holds (newest first, as many as fit) with a
# summary of all of them: a 30-bit xor and a count.  A neighbour whose
# summary is equal is in sync and says nothing (Trickle counts it as a
# consistent transmission); one whose summary differs asks (REQUEST) for
# what the digest lists and it lacks, and pushes what it holds and the
# digest's span shows missing.  Differences younger than settle_ms are
# usually the relay wave still passing and are left alone.
#
# Trickle (RFC 6206): a digest is due at a random point of the second half of
# an interval that doubles, from gossip_interval_ms up to 2**digest_doublings
# times that, while nothing new is heard; it is skipped when _TRICKLE_K
# consistent digests were heard in the interval; an inconsistency resets the
# interval to the shortest.
#
# The live set: _summary(now) fills self._live (one byte per ring slot,
# LIVE on the slots a digest may list, 0 elsewhere) and returns the summary;
# its callers in this module then mark entries in that scratch as they go
# (LISTED: in the digest being built; 0: the neighbour has it).
# The summary is cached (most digests heard are consistent, and a digest is
# heard from every neighbour): it is computed again only when the ring
# changed (Ring.last), a live message may have grown too old, or the live
# set was marked since.
#
# With the backbone on (backbone.py), every digest also carries the sender's
# neighbour list (short ids, after the entries) and whether it relays: how
# nodes learn who their neighbours' neighbours are, from frames sent anyway.
# A node that learned a new neighbour, or joined or left the backbone, owes a
# digest.
#
# These are Gossip methods, bound into its class body (gossip.py).
try:
    from micropython import const
except ImportError:  # CPython
    const = lambda x: x  # noqa: E731

from array import array

from .counters import bump
from .message import put_id, put_u30, u30
from .ring import RELAY, UNSENDABLE, WATCH

_MASK = const(0x3FFFFFFF)
_HALF = const(0x20000000)
# wire.py's values (checked by tests/host/test_consts.py)
_VERSION = const(2)
_DIGEST = const(2)
_REQUEST = const(3)
_DIGEST_HDR = const(16)
_REQUEST_HDR = const(8)
_ID_LEN = const(6)
_DIGEST_ENTRY = const(7)  # id + age in 64 ms units (255: older)
_DIGEST_AGE_SHIFT = const(6)
_AGE_SHIFT = const(2)
_AGE_WIRE_MAX = const(0xFFFF)
_F_TRUNCATED = const(0x01)
_F_AUTH = const(0x80)
_F_SYNC = const(0x02)
_F_ECHO = const(0x04)
_F_RELAYS = const(0x08)
_ECHO_LEN = const(4)
_SYNCED = const(2)  # netclock.py's state
# a digest carries our neighbour list when it changed and in every
# _LIST_EVERY-th one besides, for a neighbour that missed it (the lists
# rarely change, and on LoRa every byte is airtime)
_LIST_EVERY = const(4)
# counters.py's indices
_DIGESTS_OUT = const(13)
_REQUESTS_OUT = const(14)
_ANSWERED = const(15)

# Trickle redundancy constant: a digest is skipped in an interval where this
# many consistent digests were heard (RFC 6206 calls it k).  Not 1: both ends
# of a single lossy link into a pocket of nodes would hear their own
# neighbourhood's consistent digests first and never talk across it.
_TRICKLE_K = const(2)

# self._live values
_LIVE = const(1)
_LISTED = const(2)


def _ae_init(self, c):
    """Gossip.__init__'s part for anti-entropy: settings, timers, scratch."""
    self._settle = c.settle_ms
    self._interval = c.gossip_interval_ms
    self._imax = c.gossip_interval_ms << c.digest_doublings
    self._t_i = c.gossip_interval_ms  # Trickle interval
    self._t_end = 0
    self._t_fire = 0
    self._t_heard = 0  # consistent digests heard this interval
    self._t_fired = False
    self._rot = 0  # where the older stretch of a truncated digest starts
    self._hello = False  # our first digest goes out even if empty: "I am new here"
    self._owe = False  # a digest is owed (to a neighbour whose clock lags: netclock.py)
    self._cur = array("h", [-1] * 4)  # digest building: a cursor per priority chain
    self._live = bytearray(c.ring_slots)  # the live set (above)
    # _summary()'s result: [0] xor, [1] count; its cache: [2] Ring.last then
    # (-1 once the live set is marked), [3] the tick until which no live id
    # can grow too old.  (Four ints take the heap block two would.)
    self._sum = array("i", [0, 0, -1, 0])
    self._nl_skip = 0  # digests sent since the last one with our neighbour list
    # bytes a digest has for entries and neighbour ids: what the mtu leaves
    # after the header and, with a key, the trailer and an echo
    self._droom = c.mtu - _DIGEST_HDR - self._trl - (_ECHO_LEN if self._trl else 0)


def _summary(self, now):
    """The summary of our live ids, as a reused array: [0] the 30-bit xor,
    [1] how many.  Equal summaries: in sync.  Leaves self._live set (above)."""
    r = self._ring
    sm = self._sum
    if sm[2] == r.last and ((now - sm[3] ^ _HALF) & _MASK) - _HALF <= 0:
        return sm  # (the cache: see the top of this file)
    d = self._dedup
    live = self._live
    # (the tables as locals: this runs for every digest heard and sent)
    used = r.used
    st = r.state
    born = r.born
    dix = r.dix
    dhi = d.hi
    dlo = d.lo
    amax = self._age_max
    left = _HALF - 1  # ms until the first live id is too old
    x = 0
    n = 0
    for s in range(r.slots):
        # (a message at its hop limit can't be sent: not listed, not counted)
        if used[s] and not st[s] & UNSENDABLE:
            a = amax - (((now - born[s] ^ _HALF) & _MASK) - _HALF)
            if a >= 0:
                i = dix[s]
                hi = dhi[i]
                lo = dlo[i]
                x ^= (hi ^ (lo << 6) ^ (lo >> 18) ^ (hi << 3)) & _MASK
                n += 1
                live[s] = _LIVE
                if a < left:
                    left = a
                continue
        live[s] = 0
    sm[0] = x
    sm[1] = n
    sm[2] = r.last
    sm[3] = (now - _MASK + left - 1) & _MASK
    return sm


def _list_ids(self, f, now, room, n):
    """Write the entries of a digest into f (newest first, at most room of
    the n live ids, marking them LISTED); return how many.  When they don't
    all fit, the newest two thirds of the room are listed; the last third
    lists older ids, a different stretch each time (_rot), so that every live
    id is advertised in turn: a neighbour that missed an old message can see
    it to ask."""
    r = self._ring
    od = r.order
    live = self._live
    self._sum[2] = -1  # (live is marked below)
    prv = r.prv
    # newest first: merge the four priority chains from their tails
    cur = self._cur
    for p in range(4):
        cur[p] = r.tail[p]
    cnt = 0
    o = _DIGEST_HDR
    base = r.last
    head = room
    skip = 0
    if n > room:
        head = room - room // 3
        skip = self._rot % (n - head)
        self._rot = skip + room - head
    k = 0  # live entries walked
    while cnt < room:
        best = -1
        bp = 0
        bo = 0
        for p in range(4):
            s = cur[p]
            if s >= 0:
                # ring changes since: never negative, a small int even after
                # the 30-bit counter wraps
                v = (base - od[s]) & _MASK
                if best < 0 or v < bo:
                    bo = v
                    best = s
                    bp = p
        if best < 0:
            break
        cur[bp] = prv[best]
        if live[best] != _LIVE:
            continue  # expired, awaiting the prune
        k += 1
        if head < k <= head + skip:
            continue  # (the older ids listed last time and before)
        live[best] = _LISTED
        g = r.frame[best]
        f[o] = g[8]  # the id: origin and seq
        f[o + 1] = g[9]
        f[o + 2] = g[10]
        f[o + 3] = g[11]
        f[o + 4] = g[12]
        f[o + 5] = g[13]
        a = (((now - r.born[best] ^ _HALF) & _MASK) - _HALF) >> _DIGEST_AGE_SHIFT
        f[o + 6] = a if a < 255 else 255
        o += _DIGEST_ENTRY
        cnt += 1
    return cnt


def _span(self, now, truncated):
    """The age below which a digest lists every live id (receivers push
    what we lack only below it): the oldest listed; when not all were
    listed, the youngest left out.  (Ring order is arrival, not age: an old
    message fetched late sits among the newest.)"""
    r = self._ring
    live = self._live
    oldest = 0
    left = -1
    for s in range(r.slots):
        m = live[s]
        if m:
            age = ((now - r.born[s] ^ _HALF) & _MASK) - _HALF
            if m == _LISTED:
                if age > oldest:
                    oldest = age
            elif truncated and (left < 0 or age < left):
                left = age
    return left if left >= 0 else oldest


def _build_digest(self, now, echo=-1):
    """Fill _tx with a DIGEST of the live ids, newest first.  Returns it.
    echo >= 0: the answer to the question for the time with that nonce."""
    sm = _summary(self, now)
    x = sm[0]
    n = sm[1]
    f = self._tx
    f[0:] = self._blank
    nc = self._nc
    avail = self._droom
    nl = 0  # neighbour ids listed (backbone.py)
    if self._cover and (self._peers.grown or not self._nl_skip):
        nl = self._peers.known_count()
        if nl > self._list_cap:
            nl = self._list_cap
    room = (avail - 2 * nl) // _DIGEST_ENTRY
    if room > 255:
        room = 255
    cnt = _list_ids(self, f, now, room, n)
    span = _span(self, now, cnt < n)
    o = _DIGEST_HDR + cnt * _DIGEST_ENTRY
    if nl:
        nl = self._peers.write_list(f, o, nl)
        o += 2 * nl
    f[0] = (_VERSION << 4) | _DIGEST
    fl = _F_TRUNCATED if cnt < n else 0
    if nc is not None:
        if nc.state != _SYNCED:
            fl |= _F_AUTH | _F_SYNC
        elif echo >= 0:
            fl |= _F_AUTH | _F_ECHO
        else:
            fl |= _F_AUTH
    if self._cover and self._relays_now():
        fl |= _F_RELAYS
    f[1] = fl
    f[2] = cnt
    f[3] = nl
    put_id(f, 4, self._me_hi, self._me_lo)
    put_u30(f, 8, x)
    n = n if n < 0xFFFF else 0xFFFF
    f[12] = n >> 8
    f[13] = n & 0xFF
    a = span >> _AGE_SHIFT
    if a > _AGE_WIRE_MAX:
        a = _AGE_WIRE_MAX
    f[14] = a >> 8
    f[15] = a & 0xFF
    if nc is not None and nc.state != _SYNCED:
        # asking for the time: the stamp field carries our nonce instead
        put_u30(f, o, nc.nonce)
        f[o + nc.trl:] = b""
        nc.auth.sign(f, False)
        return f
    if echo >= 0:
        put_u30(f, o, echo)
        o += _ECHO_LEN
    _seal(self, f, o, now)
    return f


def digest(self):
    """The DIGEST this node would send now, as bytes (for tests and tools;
    it moves on the stretch of old ids a truncated digest lists)."""
    return bytes(self._build_digest(self._now()))


def _send_digest(self, now, to):
    f = self._build_digest(now)
    # an empty digest says nothing, unless it asks for the time or answers;
    # a neighbour list alone does not make it worth sending (an idle mesh
    # needs no lists: it stays as quiet as it was; while messages are held
    # a digest lists some, or is truncated, and goes with its list)
    if f[2] == 0 and not f[1] & (_F_TRUNCATED | _F_SYNC) and not self._owe and not self._hello:
        return False
    if f[3]:
        self._peers.grown = False
    self._nl_skip = (self._nl_skip + 1) % _LIST_EVERY
    self._hello = False
    self._owe = False
    bump(self.counters, _DIGESTS_OUT)
    self._send(f, to)
    return True


def _digest(self, f, n, p, now):
    """A DIGEST heard from row p."""
    if p >= 0 and self._cover:  # its role and neighbour list (backbone.py)
        pe = self._peers
        ch = pe.learn_role(p, f[1] & _F_RELAYS)
        if f[3] and pe.learn_list(p, f, _DIGEST_HDR + _DIGEST_ENTRY * f[2], f[3], self._me_lo):
            ch = True
        if ch:
            self._stale = True
    sm = _summary(self, now)
    mine = sm[1]
    theirs = u30(f, 8)
    their_n = (f[12] << 8) | f[13]
    if theirs == sm[0] and their_n == mine:
        self._t_heard += 1  # Trickle: a consistent transmission
        return
    if their_n == 0 and mine:
        # a node that holds nothing (new here, or rebooted): nothing to
        # compare, so our digest, soon, is what tells it what to ask for
        _trickle_reset(self, now)
        return
    # Differences in messages younger than settle_ms are usually the relay
    # wave still passing: only settled differences are acted upon (and only
    # they reset Trickle), so digests don't chase the wave.
    want = _wanted(self, f, now)
    # what they lack: our settled messages their digest did not list, but
    # only those younger than its oldest entry: older ones they may have
    # evicted from a full ring (or not listed, when the list was cut short);
    # they ask for those themselves when our digests list them
    span = ((f[14] << 8) | f[15]) << _AGE_SHIFT
    to = self._to_peer(p)
    r = self._ring
    live = self._live
    settle = self._settle
    lacking = 0
    orate = self._orate
    for s in range(r.slots):
        if live[s] == _LIVE:
            age = ((now - r.born[s] ^ _HALF) & _MASK) - _HALF
            if age >= settle and age < span:
                # not a flooding origin's: what its rate limit kept from our
                # neighbours, we don't push to them behind its back (nor ask
                # for it: see _wanted)
                if orate and self._origins.busy(r.ohi[s], r.olo[s], now, orate, self._burst):
                    continue
                _answer(self, s, now, to)
                lacking += 1
    if want:
        _send_request(self, want, now, to)
    if want or lacking:
        _trickle_reset(self, now)


def _wanted(self, f, now):
    """Write into _tx (as a REQUEST's ids) the settled ids digest f lists
    and we lack; return how many.  The ids we hold leave the live set: the
    sender has them."""
    d = self._dedup
    live = self._live
    self._sum[2] = -1  # (live is marked below)
    settle = self._settle
    q = self._tx
    q[0:] = self._blank
    want = 0
    room = (self._mtu - _REQUEST_HDR - self._trl) // _ID_LEN
    o = _DIGEST_HDR
    for _e in range(f[2]):
        hi = (f[o] << 16) | (f[o + 1] << 8) | f[o + 2]
        lo = (f[o + 3] << 16) | (f[o + 4] << 8) | f[o + 5]
        i = d.find(hi, lo)
        if i < 0:
            a = f[o + 6] << _DIGEST_AGE_SHIFT
            if (want < room and a >= settle and not d.forgotten(hi, lo, (now - a) & _MASK)
                    and not (self._orate and self._origins.busy(hi, f[o + 3], now, self._orate, self._burst))):
                w = _REQUEST_HDR + want * _ID_LEN
                for b in range(_ID_LEN):
                    q[w + b] = f[o + b]
                want += 1
        else:
            s = d.slot[i]
            if s >= 0:
                live[s] = 0  # they have it
        o += _DIGEST_ENTRY
    return want


def _seal(self, f, end, now):
    """Finish control frame f, whose body ends at end: with a key, its stamp
    and tag."""
    if self._nc is None:
        f[end:] = b""
    else:
        self._nc.seal(f, end, now, False)


def _send_request(self, want, now, to):
    """Send the REQUEST for the want ids _wanted() wrote into _tx."""
    q = self._tx
    q[0] = (_VERSION << 4) | _REQUEST
    q[1] = 0 if self._nc is None else _F_AUTH
    q[2] = want
    q[3] = 0
    put_id(q, 4, self._me_hi, self._me_lo)
    _seal(self, q, _REQUEST_HDR + want * _ID_LEN, now)
    if self._bcast:
        bump(self.counters, _REQUESTS_OUT)
        self._send(q, None)
    elif to is not None:
        bump(self.counters, _REQUESTS_OUT)
        self._send(q, to)


def _answer(self, s, now, to):
    """Send slot s to a node that lacks it: on a broadcast medium after a
    short random wait, cancelled by one copy heard (several neighbours may
    lack it and several may answer); else unicast to `to` at once."""
    bump(self.counters, _ANSWERED)
    if self._bcast:
        st = self._ring.state[s]
        if not st & RELAY or st & WATCH:  # (a watch gives way to the answer)
            self._schedule(s, now, self._rand(16) % (self._delay + 1), 1)
    elif to is not None:
        self._send_slot(s, now, to)


def _request(self, f, n, p, now):
    """A REQUEST heard from row p: answer with what we hold of it."""
    _trickle_reset(self, now)
    d = self._dedup
    r = self._ring
    to = self._to_peer(p)
    o = _REQUEST_HDR
    for _e in range(f[2]):
        hi = (f[o] << 16) | (f[o + 1] << 8) | f[o + 2]
        lo = (f[o + 3] << 16) | (f[o + 4] << 8) | f[o + 5]
        o += _ID_LEN
        i = d.find(hi, lo)
        if i < 0:
            continue
        s = d.slot[i]
        if s >= 0 and not r.state[s] & UNSENDABLE:
            _answer(self, s, now, to)


# -- Trickle (RFC 6206) for digests on a broadcast medium ---------------------
def _trickle_begin(self, now, interval):
    self._t_i = interval
    half = interval >> 1
    self._t_fire = (now - _MASK + half + self._rand(16) % (half + 1) - 1) & _MASK
    self._t_end = (now - _MASK + interval - 1) & _MASK
    self._t_heard = 0
    self._t_fired = False


def _trickle_reset(self, now):
    if self._t_i > self._interval:
        self._trickle_begin(now, self._interval)


def _trickle(self, now):
    if self._cover and self._peers.grown and self._t_i > self._interval:
        # a new neighbour (or our backbone role changed): it goes out within
        # Imin, not after a long interval (once per change: the digest that
        # carries it clears grown)
        _trickle_begin(self, now, self._interval)
    if not self._t_fired and ((now - self._t_fire ^ _HALF) & _MASK) - _HALF >= 0:
        self._t_fired = True
        if self._t_heard < _TRICKLE_K or self._owe or (self._cover and self._peers.grown):
            self._send_digest(now, None)
    if ((now - self._t_end ^ _HALF) & _MASK) - _HALF >= 0:
        i = self._t_i << 1
        if i > self._imax:
            i = self._imax
        self._trickle_begin(now, i)
