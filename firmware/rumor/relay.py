# Relay: how a message this node holds goes out again.
#
# On a broadcast medium (ESP-NOW broadcast, LoRa) a new message is
# rebroadcast once, after a random delay, unless enough copies of it were
# heard meanwhile (counter-based suppression, as Trickle, RFC 6206) or one
# came from close by (suppress_rssi).  A weaker first copy means a farther
# sender and a shorter delay: the node at the edge of the last broadcast
# covers the most new ground, so it goes first.  With coverage on (the
# default, backbone.py) only the nodes of an elected relay backbone relay,
# and a watch after a broadcast resends it when a backbone neighbour that
# depended on it stays silent.  On a unicast medium the seed
# design's rounds run instead: every gossip_interval_ms, fanout peers are
# each pushed the recent messages or pulled with a digest.  High priority is
# flooded at once in every mode.
#
# These are Gossip methods, bound into its class body (gossip.py): the same
# call sites and per-call cost as methods defined there, no object added per
# engine.  They send through _send() alone, which counts what goes out.
try:
    from micropython import const
except ImportError:  # CPython
    const = lambda x: x  # noqa: E731

from .counters import add, bump
from .peers import STATIC
from .ring import COVER, LIMITED, OWN, PUSH, RELAY, UNSENDABLE, WATCH

_MASK = const(0x3FFFFFFF)
_HALF = const(0x20000000)
# wire.py's values (checked by tests/host/test_consts.py)
_AGE_SHIFT = const(2)
_AGE_WIRE_MAX = const(0xFFFF)
# counters.py's indices
_FRAMES_OUT = const(1)
_BYTES_OUT = const(2)
_SUPPRESSED = const(10)
_HOP_LIMITED = const(11)
_RESENT = const(20)

_FLOOD = const(0)  # Config.mode, as Gossip._mode holds it


def _relay_init(self, c):
    """Gossip.__init__'s part for relaying: settings, timers, buffers."""
    self._delay = c.relay_delay_ms
    self._k = c.suppress_count
    self._by_signal = c.delay_by_signal
    self._rssi_lo = c.rssi_floor
    self._rssi_hi = c.rssi_ceil
    self._near = c.suppress_rssi
    self._fanout = c.fanout
    # push_pull_ratio as a 16-bit threshold: no floats on the hot path
    self._push_q16 = int(c.push_pull_ratio * 65536 + 0.5)
    self._next_round = 0  # tick of the next unicast round
    self._next_relay = 0  # earliest due[] among pending relays
    self._relay_pending = False
    # to_peers lists, one per length, reused: no list is built per send
    # (a broadcast medium sends to lists of one peer at most: the others,
    # max_peers ** 2 / 2 words, would only take RAM)
    self._lists = [[None] * k for k in range((c.max_peers if not c.broadcast else 1) + 1)]
    self._cand = bytearray(c.max_peers)  # candidate rows for a round


def _send(self, frame, to):
    """Put frame on the radio: to a list of peer addresses, or None for one
    broadcast."""
    c = self.counters
    bump(c, _FRAMES_OUT)
    add(c, _BYTES_OUT, len(frame))
    self._on_fwd(frame, to)


def _send_slot(self, s, now, to):
    """Send ring slot s with its age and hop count brought up to date.
    False (and nothing sent) when it has expired or may not be sent."""
    r = self._ring
    age = ((now - r.born[s] ^ _HALF) & _MASK) - _HALF
    if age > self._age_max:
        return False
    st = r.state[s]
    if st & UNSENDABLE:
        if st & LIMITED:
            bump(self.counters, _HOP_LIMITED)
        return False
    f = r.frame[s]
    nc = self._nc
    if st & OWN and nc is not None:
        # our own message is stamped afresh at every send, from the network
        # time now: publish time = now - its age
        nc.stamp_own(f, age, now)
    f[2] = r.hops[s]
    # rounded up: an age must never come out younger than it is (the dedup
    # watermark and the expiry both trust it), and rounding down at every hop
    # would add up along a long path
    a = (age + (1 << _AGE_SHIFT) - 1) >> _AGE_SHIFT
    if a > _AGE_WIRE_MAX:
        a = _AGE_WIRE_MAX
    f[14] = a >> 8
    f[15] = a & 0xFF
    self._send(f, to)
    return True


def _everyone(self, s, now):
    """Send slot s to every neighbour: one broadcast, or one unicast per peer."""
    if self._bcast:
        return self._send_slot(s, now, None)
    lst = self._peer_list(self._ring.src[s], now, 255)
    if lst is None:
        return False
    return self._send_slot(s, now, lst)


def _peer_list(self, exclude, now, limit):
    """Up to `limit` peers with an address, at random, as a reused list
    (None when there is none).  Static peers count even unheard."""
    p = self._peers
    fl = p.flags
    cand = self._cand
    m = 0
    for k in range(p.n):
        if k != exclude and fl[k] and len(p.addr[k]) and (fl[k] & STATIC or p.active(k, now, self._peer_timeout)):
            cand[m] = k
            m += 1
    if m == 0:
        return None
    if limit > m:
        limit = m
    lst = self._lists[limit]
    for i in range(limit):
        j = i + self._rand(16) % (m - i)
        k = cand[j]
        cand[j] = cand[i]
        cand[i] = k
        lst[i] = p.addr[k]
    return lst


def _to_peer(self, p):
    """A reused one-peer list for row p, or None when it has no address."""
    if p < 0 or not len(self._peers.addr[p]):
        return None
    lst = self._lists[1]
    lst[0] = self._peers.addr[p]
    return lst


def _disseminate(self, s, prio, now, own, rssi):
    """What to do with a message new to this node (own: we published it)."""
    r = self._ring
    mode = self._mode
    if r.state[s] & LIMITED:
        bump(self.counters, _HOP_LIMITED)
        return
    # high priority is flooded at once in every mode (seed's phase 2)
    if prio > 0 and mode != _FLOOD:
        _everyone(self, s, now)
        return
    if mode == _FLOOD or (self._bcast and own):
        if own or self._delay == 0 or not self._bcast:
            if _everyone(self, s, now) and self._cover:  # (never in flood mode)
                _watch(self, s, now, self._retries)  # ours too: a backbone neighbour may miss it
        else:
            _relay_new(self, s, now, rssi)
        return
    # gossip (and hybrid's normal priority)
    if self._bcast:
        _relay_new(self, s, now, rssi)
    else:
        r.push(s, self.config.push_rounds)
        if own:
            _push_round_one(self, s, now)


# -- broadcast relays ---------------------------------------------------------
def _relay_new(self, s, now, rssi):
    """Schedule the one rebroadcast of a message just heard at rssi.  (The
    first copy's strength only orders the relays; suppress_rssi applies to
    the copies heard while ours waits: see _copy_heard.)"""
    if self._cover:
        # backbone.py: only a backbone node relays, within half the window
        r = self._ring
        r.heard_from(s, r.src[s])
        if self._relays_now():
            _schedule(self, s, now, _relay_wait(self, rssi) >> 1, 0, COVER)
        return
    _schedule(self, s, now, _relay_wait(self, rssi), self._k)


def _watch(self, s, now, left):
    """After our broadcast of slot s: check for a silent backbone neighbour
    in watch_ms (backbone.py), left more resends allowed."""
    if left > 0:
        _schedule(self, s, now, self._watch_ms, left, COVER | WATCH)


def _relay_wait(self, rssi):
    d = self._delay
    if d == 0:
        return 0
    if self._by_signal and rssi:
        # weaker signal -> farther away -> covers more new ground: go first
        lo = self._rssi_lo
        hi = self._rssi_hi
        if rssi <= lo:
            base = 0
        elif rssi >= hi:
            base = d
        else:
            base = int((rssi - lo) * d // (hi - lo))  # int(): a driver may hand a float
        # a little jitter breaks ties between nodes at the same distance
        return base + self._rand(16) % (d // 16 + 1)
    return self._rand(16) % d


def _schedule(self, s, now, wait, need, how=0):
    """Broadcast slot s in wait ms, unless need copies are heard first
    (how: COVER, decided at the due time instead; see ring.py)."""
    due = (now - _MASK + wait - 1) & _MASK
    self._ring.arm(s, due, need, how)
    if not self._relay_pending or ((due - self._next_relay ^ _HALF) & _MASK) - _HALF < 0:
        self._next_relay = due
        self._relay_pending = True
    if wait == 0:
        self._relays(now)


def _copy_heard(self, s, rssi, p, now):
    """A copy of slot s was heard (at rssi, from row p): it may cancel our
    pending rebroadcast."""
    r = self._ring
    if r.state[s] & COVER:
        if r.state[s] & WATCH and not r.heard[s] and p >= 0 and not r.sent_by(s, p):
            # the first relay heard after our broadcast, from a node not
            # known to have it before: how long the neighbours take to
            # relay it, here and now (the watch adapts)
            self._ack_heard(((r.due[s] - now ^ _HALF) & _MASK) - _HALF)
            r.heard[s] = 1
        r.heard_from(s, p)  # judged at the due time (backbone.py)
    elif r.state[s] & RELAY:
        h = r.copy_heard(s)
        # (rssi 0 means the radio gave none: it can't say "close by")
        if (r.need[s] and h >= r.need[s]) or (self._near and rssi and rssi >= self._near):
            r.cancel(s)
            bump(self.counters, _SUPPRESSED)


def _relays(self, now):
    """Send every pending relay that is due; work out the next due time."""
    r = self._ring
    st = r.state
    due = r.due
    nxt = 0
    pending = False
    for s in range(r.slots):
        if st[s] & RELAY:
            if ((due[s] - now ^ _HALF) & _MASK) - _HALF <= 0:
                if st[s] & COVER:
                    _due_cover(self, s, now)
                else:
                    r.cancel(s)
                    self._send_slot(s, now, None)
            if st[s] & RELAY:  # not due yet, or a watch was armed: due later
                t = due[s]
                if not pending or ((t - nxt ^ _HALF) & _MASK) - _HALF < 0:
                    nxt = t
                    pending = True
    self._relay_pending = pending
    self._next_relay = nxt


def _due_cover(self, s, now):
    """A backbone relay (or its watch) of slot s is due: send it, or not."""
    r = self._ring
    left = r.need[s]
    watch = r.state[s] & WATCH
    r.cancel(s)
    if watch:
        # Only when no relay at all came back: in a crowd some relays
        # always collide, and silence from one neighbour says little; a
        # neighbour that depended on us alone, and silence all round, says
        # our copy was lost
        if not r.heard[s] and self._silent_forwarder(s) and self._send_slot(s, now, None):
            bump(self.counters, _RESENT)
            _watch(self, s, now, left - 1)
    elif self._all_have(s):
        bump(self.counters, _SUPPRESSED)  # every neighbour sent it already
    elif self._send_slot(s, now, None):
        _watch(self, s, now, self._retries)


# -- unicast rounds (the seed design) -----------------------------------------
def _round(self, now):
    """One unicast gossip round (due at _next_round): fanout peers, push or
    pull each."""
    self._next_round = (self._next_round - _MASK + self._interval - 1) & _MASK
    if ((now - self._next_round ^ _HALF) & _MASK) - _HALF >= 0:
        self._next_round = (now - _MASK + self._interval - 1) & _MASK  # we were late
    k = self._fanout
    if self.config.adaptive_fanout:
        a = self._peers.active_count(now, self._peer_timeout)
        # grows as log2 of the neighbourhood, never below the configured fanout
        b = 1
        while (1 << b) < a:
            b += 1
        if b + 1 > k:
            k = b + 1
    lst = self._peer_list(-1, now, k)
    if lst is None:
        return
    r = self._ring
    one = self._lists[1]
    for addr in lst:
        one[0] = addr
        if (self._rand(16) & 0xFFFF) < self._push_q16:
            for s in range(r.slots):
                if r.state[s] & PUSH:
                    self._send_slot(s, now, one)
        else:
            self._send_digest(now, one)
    # a push round used: fewer left
    for s in range(r.slots):
        if r.state[s] & PUSH:
            r.pushed(s)


def _push_round_one(self, s, now):
    """A new own message is pushed to fanout peers at once."""
    lst = self._peer_list(-1, now, self._fanout)
    if lst is not None:
        self._send_slot(s, now, lst)
