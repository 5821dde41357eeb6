# Backbone: which nodes relay, elected from two-hop knowledge.
#
# Every node's digests list its neighbours and say whether it relays
# (peers.py keeps what they say: one adjacency bitmap per row, the row's
# neighbour count, its RELAYS flag).  From that alone each node decides
# whether it belongs to the mesh's relay backbone, with no frame of its own
# (Wu and Dai's coverage condition, static, with priorities):
#
#   priority    more neighbours first; the higher short id breaks a tie
#   prune       a node is not needed when the neighbours of higher
#               priority than its own are connected among themselves and
#               every other neighbour hears one of them: they carry any
#               message across its neighbourhood without it
#   cover       it joins again when a neighbour hears fewer than
#               cover_copies backbone nodes (that we know of) and it is
#               that neighbour's best candidate (the highest priority among
#               its non-backbone neighbours we know), unless it hears nobody
#               else (a leaf): on a lossy link one relay is one chance, and
#               a node needs a couple
#
# The highest priority node of any neighbourhood can't be pruned, so the
# backbone stays connected.  A neighbour whose list we never heard can't be
# ranked: it is never one of those that could replace us, which can only keep
# us relaying (with no lists at all, just booted, every node relays).
#
# A backbone node relays each new message once, after a short wait (the
# weaker the first copy, the sooner: the farther node covers more); the
# others don't.  After our broadcast a watch (Lou and Wu's implicit
# acknowledgement) checks the backbone neighbours that had no other chance
# we know of to hear it: one that stays silent missed it, and gets it again,
# at most ack_retries times.  The tail is repaired within a few frame times,
# not by the next digest.
#
# These are Gossip methods, bound into its class body (gossip.py).
from .peers import RELAYS


def _bb_init(self, c):
    """Gossip.__init__'s part for the backbone."""
    self._cover = c.coverage and c.broadcast and c.mode != "flood"  # (a flood relays all)
    self._copies = c.cover_copies
    self._retries = c.ack_retries
    # How long a watch waits: twice the time the neighbours' first relay
    # took to come back after our broadcasts, averaged (in 1/16 ms), so a
    # busy channel's queues lengthen it; from the relay window at first
    d = c.relay_delay_ms
    self._watch_lo = d + 2  # never shorter: a neighbour may wait that long
    self._watch_hi = 16 * d + 2
    self._ack16 = (d >> 1) << 4
    self._watch_ms = d + (d >> 1) + 2
    # neighbour ids a digest lists: at most a quarter of its room
    # (antientropy.py's _droom: 2 bytes an id)
    self._list_cap = self._droom >> 3
    self._relay = True  # in the backbone: until an election says otherwise
    self._stale = True  # a list or a role heard changed since the election last ran
    self._rev = -1  # Peers.rev when it last ran (rows learned or dropped since: it runs again)
    self._senders = bytearray(c.max_peers)  # scratch: rows heard sending a slot
    self._mark = bytearray(c.max_peers)  # scratch of the election


def _heard_rows(self, s):
    """Fill _senders with the rows heard sending slot s; return how many."""
    r = self._ring
    w = r.w
    by = r.by
    snd = self._senders
    n = 0
    b0 = s * w
    for b in range(w):
        v = by[b0 + b]
        j = b << 3
        while v:
            if v & 1:
                snd[n] = j
                n += 1
            v >>= 1
            j += 1
    return n


def _outranks(self, k, me):
    """Row k has a higher priority than ours (me: our neighbour count, as
    our digests say it)."""
    d = self._peers.deg[k]
    return d > me or (d == me and self._peers.lo[k] > self._me_lo)


def _elect(self):
    """Decide whether we relay (the top of this file); True: we do.  At
    most max_peers ** 2 bit tests: it may run on the receive path."""
    self._stale = False
    p = self._peers
    n = p.n
    w = p.w
    adj = p.adj
    hi = p.hi
    mark = self._mark
    known = p.known_count()
    me = known if known < self._list_cap else self._list_cap
    # H: the neighbours that outrank us (mark 1).  A row whose list we never
    # heard can't be ranked: it stays out of H, and must be heard by H like
    # any other (its links are known from the lists that name it)
    for k in range(n):
        mark[k] = 0
        if hi[k] >= 0 and p.listed[k] and _outranks(self, k, me):
            mark[k] = 1
    first = -1
    for k in range(n):
        if hi[k] < 0:
            continue
        if mark[k]:
            if first < 0:
                first = k
            continue
        # a neighbour outside H must hear one of H (adjacent(), inlined)
        kb = k * w
        kc = k >> 3
        km = 1 << (k & 7)
        for h in range(n):
            if mark[h] and (adj[kb + (h >> 3)] >> (h & 7) & 1 or adj[h * w + kc] & km):
                break
        else:
            return True
    if first < 0:
        return True  # nobody outranks us
    # H connected among itself: a depth-first walk from its first member,
    # marking what it reaches 2 (_senders is the stack)
    stack = self._senders
    mark[first] = 2
    stack[0] = first
    top = 1
    while top:
        top -= 1
        k = stack[top]
        kb = k * w
        kc = k >> 3
        km = 1 << (k & 7)
        for h in range(n):
            if mark[h] == 1 and (adj[kb + (h >> 3)] >> (h & 7) & 1 or adj[h * w + kc] & km):
                mark[h] = 2
                stack[top] = h
                top += 1
    for k in range(n):
        if mark[k] == 1:
            return True
    # (our relay can bring a neighbour something only if we hear some other
    # node too: a leaf would only ever relay to it what it heard from it)
    return known > 1 and _needed_for_cover(self, me)


def _needed_for_cover(self, me):
    """A neighbour hears fewer than cover_copies backbone nodes (that we
    know of) and we are its best candidate: True."""
    p = self._peers
    n = p.n
    w = p.w
    adj = p.adj
    hi = p.hi
    fl = p.flags
    need = self._copies
    for x in range(n):
        if hi[x] < 0:
            continue
        xb = x * w
        xc = x >> 3
        xm = 1 << (x & 7)
        cnt = 0
        best = True
        for y in range(n):
            if y == x or hi[y] < 0:
                continue
            if not (adj[xb + (y >> 3)] >> (y & 7) & 1 or adj[y * w + xc] & xm):
                continue  # (adjacent(), inlined: this is n * n)
            if fl[y] & RELAYS:
                cnt += 1
                if cnt >= need:
                    break
            elif best and _outranks(self, y, me):
                best = False
        if cnt < need and best:
            return True
    return False


def _ack_heard(self, left):
    """A relay came back left ms before our watch was due: the watch adapts
    (_bb_init)."""
    e = self._watch_ms - left
    if e < 0:
        e = 0
    a = self._ack16
    a += ((e << 4) - a) >> 3
    self._ack16 = a
    w = (a >> 3) + (self._delay >> 1) + 1
    lo = self._watch_lo
    hi = self._watch_hi
    self._watch_ms = lo if w < lo else (hi if w > hi else w)


def _relays_now(self):
    """Whether we relay, electing again first if what it reads changed."""
    if self._stale or self._rev != self._peers.rev:
        self._rev = self._peers.rev
        r = _elect(self)
        if r != self._relay:
            self._relay = r
            self._peers.grown = True  # our digest's RELAYS flag changed: it owes one
    return self._relay


def _all_have(self, s):
    """Every neighbour we know was heard sending slot s, and we know all of
    their lists (so, as far as anyone can tell, all of our neighbours)."""
    p = self._peers
    w = p.w
    by = self._ring.by
    b0 = s * w
    for k in range(p.n):
        if p.hi[k] >= 0 and (not p.listed[k] or not by[b0 + (k >> 3)] >> (k & 7) & 1):
            return False
    return True


def _silent_forwarder(self, s):
    """True when a backbone neighbour for which our broadcast of slot s was
    the only chance we know of was not heard sending it."""
    p = self._peers
    w = p.w
    adj = p.adj
    hi = p.hi
    fl = p.flags
    by = self._ring.by
    b0 = s * w
    snd = self._senders
    m = _heard_rows(self, s)
    for k in range(p.n):
        if hi[k] < 0 or not fl[k] & RELAYS:
            continue
        kc = k >> 3
        km = 1 << (k & 7)
        if by[b0 + kc] & km:
            continue
        kb = k * w
        for i in range(m):
            j = snd[i]
            if adj[kb + (j >> 3)] >> (j & 7) & 1 or adj[j * w + kc] & km:
                break  # another sender gave it a chance too
        else:
            return True
    return False
