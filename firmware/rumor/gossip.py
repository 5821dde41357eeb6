# Gossip: the protocol engine.  Sans-IO: it reads no clock, radio or random
# source of its own; they are handed to it (see README "The core").
#
#   g = Gossip(cfg, node_id, clock=ticks_ms_fn, rand=getrandbits_fn)
#   g.on_forward(send)        # send(frame, to_peers): to_peers None = one broadcast
#   g.on_message(deliver)     # deliver(msg): msg is reused, valid during the call
#   g.start(); g.publish(b"hi"); g.receive(frame, from_peer); g.tick()
#
# Everything it keeps is allocated in __init__: the ring of bodies, the dedup
# table of ids, the peer table and one frame of scratch.  receive() of a
# duplicate, of a new message and of a digest allocates nothing (the unix-port
# tests hold micropython.heap_lock() around them), so the engine never
# fragments the heap of a board that runs for weeks.
#
# Frame layouts are in docs/wire.md and wire.py; the offsets are repeated here
# as private consts because MicroPython inlines only a module's own consts.
try:
    from micropython import const
except ImportError:  # CPython
    const = lambda x: x  # noqa: E731

from array import array

from . import mem
from .config import Config
from .dedup import Dedup
from .origins import Origins
from .peers import HEARD, STATIC, Peers
from .ring import HELD, LIMITED, OWN, PUSH, QUAR, RELAY, Ring

# Ticks and counters are 30-bit.  A 32-bit board's small ints stop at
# 2**30 - 1, and anything past it is a big int on the heap, so sums are
# written to stay below: (x - _MASK) & _MASK is x + 1 modulo 2**30,
# (t - _MASK + d - 1) & _MASK is t + d, and ((a - b ^ _HALF) & _MASK) - _HALF
# is a - b as a signed difference (the xor flips the bit a + _HALF would
# carry into, without the carry).
_MASK = const(0x3FFFFFFF)
_HALF = const(0x20000000)

_VERSION = const(1)
_T_DATA = const(1)
_T_DIGEST = const(2)
_T_REQUEST = const(3)
_HDR = const(16)  # DATA and DIGEST header
_REQ_HDR = const(8)  # REQUEST header
_ID = const(6)  # origin(4) + seq(2)
_DID = const(7)  # a DIGEST entry: id + age in 64 ms units (255: older)
_DAGE_SHIFT = const(6)
_AGE_SHIFT = const(2)  # age on the wire in 4 ms units
_AGE_WIRE_MAX = const(0xFFFF)
_PRIO_MASK = const(0x03)
_F_TRUNCATED = const(0x01)  # DIGEST flags: more live ids than listed
_F_AUTH = const(0x80)  # all types: a stamp and a tag end the frame
_F_SYNC = const(0x02)  # DIGEST flags: "tell me the time"; its stamp field is a nonce
_F_ECHO = const(0x04)  # DIGEST flags: the answer: a 4-byte echo of the nonce precedes the stamp
_ASKERS = const(4)  # questions for the time we answer at once
_CTL_SEEN = const(8)  # recent digests/requests remembered, against their replay
_NET_SHIFT = const(6)  # network time runs in 64 ms units
_STAMP = const(4)  # bytes of stamp in front of the tag (auth.STAMP)

# Trickle redundancy constant: a digest is skipped in an interval where this
# many consistent digests were heard (RFC 6206 calls it k).  Not 1: both ends
# of a single lossy link into a pocket of nodes would hear their own
# neighbourhood's consistent digests first and never talk across it.
_TRICKLE_K = const(2)

_FLOOD = const(0)
_HYBRID = const(1)
_GOSSIP = const(2)


def _u30(f, o):
    """The 30-bit big-endian value at f[o:o+4] (stamps, nonces, summaries)."""
    return ((f[o] & 0x3F) << 24) | (f[o + 1] << 16) | (f[o + 2] << 8) | f[o + 3]


def _no_radio(frame, to_peers):
    raise RuntimeError("no radio: call on_forward(cb)")


class Message:
    """What on_message callbacks get.  One instance per engine, reused: read
    it during the callback, copy what you keep (payload() makes a copy)."""

    def __init__(self):
        self.frame = bytearray(0)  # the whole frame, header (and tag) included
        self.end = _HDR  # where the payload ends in frame (a tag may follow)
        self.hops = 0  # transmissions it took to get here (1: from the origin)
        self.priority = 0
        self.age_ms = 0
        self.seq = 0
        self.origin_hi = 0
        self.origin_lo = 0

    @property
    def origin(self):
        return (self.origin_hi << 16) | self.origin_lo

    @property
    def id(self):
        """(origin << 16) | seq, as publish() returned it at the origin."""
        return (((self.origin_hi << 16) | self.origin_lo) << 16) | self.seq

    def payload(self):
        return bytes(self.frame[_HDR:self.end])

    def __len__(self):
        return self.end - _HDR


class Gossip:
    def __init__(self, config, node_id, clock, rand, key=None):
        if not isinstance(config, Config):
            raise ValueError("config must be a rumor.Config")
        if not isinstance(node_id, int) or node_id < 0 or node_id > 0xFFFFFFFF:
            raise ValueError("node_id must be an int in 0..0xFFFFFFFF, got %r" % (node_id,))
        for fn in (clock, rand):
            if not callable(fn):
                raise ValueError("clock and rand must be callables")
        c = config
        self.config = c
        self.node_id = node_id
        self._clock = clock
        self._rand = rand
        self._me_hi = node_id >> 16
        self._me_lo = node_id & 0xFFFF
        self._mode = ("flood", "hybrid", "gossip").index(c.mode)
        self._bcast = c.broadcast
        self._mtu = c.mtu
        # With a network key every frame ends in a stamp and a tag (auth.py,
        # imported only then: an open mesh's board keeps the RAM its code takes)
        self._auth = None
        if key is not None:
            from .auth import Auth

            self._auth = Auth(key, c.tag_len, c.mtu)
        self._trl = 0 if key is None else _STAMP + c.tag_len
        self._cfg_trl = _STAMP + c.tag_len  # what a keyless node strips from tagged frames
        mp = c.mtu - _HDR - self._trl
        self._max_payload = c.max_payload if c.max_payload < mp else mp
        # Network time (64 ms units, 30 bits): the largest stamp heard,
        # advanced by our own clock.  Stamps are what make a replay of an old
        # frame recognisable after its id has left the dedup table.
        self._net = 0
        self._net_at = 0
        self._synced = False  # a valid stamp heard since boot (or sync_wait_ms passed)
        self._floor = False  # the clock runs from a restored time (set_net_time)
        self._sync_by = 0  # tick at which an unsynced node stops waiting for one
        w = c.max_message_age_ms >> 1
        self._sync_wait = c.sync_wait_ms if c.sync_wait_ms < w else w
        self._owe = False  # a digest is owed (to a neighbour whose clock lags)
        # questions for the time waiting for our answer: nonce and asker's
        # peer row (for a unicast answer), answered in turn from tick()
        self._eq = array("i", [0] * _ASKERS)
        self._erow = array("h", [-1] * _ASKERS)
        self._en = 0
        self._e_at = 0  # when the next answer is due
        # nonces answered lately, and when: a question repeated (or replayed)
        # sooner than an asker asks again gets no second answer
        self._dq = array("i", [-1] * _ASKERS)
        self._dt = array("i", [0] * _ASKERS)
        self._di = 0
        self._ask_at = 0  # when we ask next, while we don't know the time
        self._ask_every = c.gossip_interval_ms >> 1 if c.gossip_interval_ms >= 100 else 50
        # recent DIGEST/REQUEST frames (sender, stamp, first tag bytes): an
        # exact repeat within auth_window_ms is a replay, dropped unhashed
        self._cc_s = array("i", [0] * _CTL_SEEN)
        self._cc_t = array("i", [-1] * _CTL_SEEN)
        self._cc_i = 0
        self._hello = False  # our first digest goes out even if empty: "I am new here"
        self._nonce = 0  # ours, while we ask
        self._stamp_age = 0  # ms: the age the stamp of the frame at hand says
        self._age_max_u = c.max_message_age_ms >> _NET_SHIFT
        self._window_u = c.auth_window_ms >> _NET_SHIFT
        self._quota = c.origin_quota or max(1, c.ring_slots // 4)
        self._rate = c.rate_limit
        self._burst = c.rate_burst
        self._orate = c.origin_rate
        self._age_max = c.max_message_age_ms
        self._hop_limit = c.hop_limit
        self._delay = c.relay_delay_ms
        self._k = c.suppress_count
        self._by_signal = c.delay_by_signal
        self._rssi_lo = c.rssi_floor
        self._rssi_hi = c.rssi_ceil
        self._near = c.suppress_rssi
        self._settle = c.settle_ms
        self._fanout = c.fanout
        self._interval = c.gossip_interval_ms
        self._imax = c.gossip_interval_ms << c.digest_doublings
        self._prune_every = c.prune_interval_ms
        self._peer_timeout = c.peer_timeout_ms
        # push_pull_ratio as a 16-bit threshold: no floats on the hot path
        self._push_q16 = int(c.push_pull_ratio * 65536 + 0.5)

        self._ring = Ring(c.ring_slots, c.mtu)
        self._dedup = Dedup(c.dedup_slots)
        self._peers = Peers(c.max_peers, c.addr_max)
        self._origins = Origins(c.max_peers)
        self._tx = bytearray(c.mtu)  # digest / request scratch, exact length when sent
        self._blank = bytes(c.mtu)  # restores _tx to full length without allocating
        # to_peers lists, one per length, reused: no list is built per send
        self._lists = [[None] * k for k in range(c.max_peers + 1)]
        self._cand = bytearray(c.max_peers)  # candidate rows for a round
        self._cur = array("h", [-1] * 4)  # digest building: a cursor per priority chain
        self._msg = Message()
        self._on_msg = None
        self._on_fwd = _no_radio
        self._running = False
        self._seq = 0
        self._seq0 = 0
        self._sum_n = 0  # live count found by the last _summary()
        self._rot = 0  # where the older stretch of a truncated digest starts

        # timers (ticks)
        self._next_prune = 0
        self._next_round = 0  # unicast rounds
        self._next_relay = 0  # earliest due[] among pending relays
        self._relay_pending = False
        self._t_i = c.gossip_interval_ms  # Trickle interval
        self._t_end = 0
        self._t_fire = 0
        self._t_heard = 0  # consistent digests heard this interval
        self._t_fired = False

        # stats: counters are 30-bit and wrap, as ticks do (readers that
        # sample them periodically unwrap them the same way).
        self.frames_in = 0
        self.frames_out = 0
        self.bytes_out = 0
        self.delivered = 0
        self.published = 0
        self.duplicates = 0
        self.malformed = 0
        self.bad_version = 0
        self.evicted = 0
        self.expired = 0
        self.suppressed = 0  # pending relays cancelled by copies heard
        self.hop_limited = 0
        self.forgotten = 0  # refused: possibly seen, and forgotten by a full dedup table
        self.digests_out = 0
        self.requests_out = 0
        self.answered = 0  # messages sent because a digest or request lacked them
        self.bad_tag = 0  # dropped: tag missing or wrong (with a key)
        self.stale = 0  # dropped: authenticated, but its stamp is too old (a replay)
        self.rate_limited = 0  # dropped: its sender was over rate_limit
        self.quota_evicted = 0  # own oldest replaced: its origin was at origin_quota

    # -- wiring ------------------------------------------------------------------
    def on_message(self, cb):
        self._on_msg = cb

    def on_forward(self, cb):
        self._on_fwd = cb

    def add_peer(self, addr):
        if not isinstance(addr, (bytes, bytearray)) or not 0 < len(addr) <= self.config.addr_max:
            raise ValueError(
                "peer address must be 1..%d bytes, got %r" % (self.config.addr_max, addr)
            )
        self._peers.add_static(addr, self._now())

    def remove_peer(self, addr):
        return self._peers.remove(addr)

    def start(self):
        if self._on_fwd is _no_radio:
            raise RuntimeError("call on_forward(cb) before start(): the engine has no radio")
        now = self._now()
        self._running = True
        # Sequence numbers start at random so that a rebooted node does not
        # reuse ids its neighbours still remember.
        self._seq = self._rand(16) & 0xFFFF
        self._seq0 = self._seq  # seqs from here to _seq are ours, from this boot
        self._next_prune = (now - _MASK + self._prune_every - 1) & _MASK
        self._next_round = (now - _MASK + self._rand(16) % self._interval - 1) & _MASK
        self._trickle_begin(now, self._interval)
        self._hello = True
        self._sync_by = (now - _MASK + self._sync_wait - 1) & _MASK
        if self._auth is not None:
            self._nonce = ((self._rand(16) << 14) ^ self._rand(16)) & _MASK
            self._ask_at = (now - _MASK + self._rand(16) % self._ask_every - 1) & _MASK

    def stop(self):
        self._running = False

    @property
    def running(self):
        return self._running

    def _now(self):
        return self._clock() & _MASK

    # -- network time -------------------------------------------------------------
    def _net_now(self, now):
        el = (now - self._net_at) & _MASK
        if el >= 1 << _NET_SHIFT:
            k = el >> _NET_SHIFT
            self._net = (self._net - _MASK + k - 1) & _MASK
            self._net_at = (self._net_at - _MASK + (k << _NET_SHIFT) - 1) & _MASK
        return self._net

    def net_time(self):
        """The mesh's clock in 64 ms units (30 bits), or -1 before this node
        has heard a valid stamp or been given set_net_time()."""
        if not (self._synced or self._floor):
            return -1
        return self._net_now(self._now())

    def set_net_time(self, t):
        """Restore the network time saved before a reboot.  It is a floor:
        frames stamped more than their age limit before it are refused as
        replays, and the clock still moves forward to the first valid stamp
        heard.  It never moves the clock backwards."""
        if not isinstance(t, int) or not 0 <= t <= _MASK:
            raise ValueError("network time must be an int in 0..2**30-1, got %r" % (t,))
        now = self._now()
        if (self._synced or self._floor) and ((t - self._net_now(now) ^ _HALF) & _MASK) - _HALF <= 0:
            return
        self._net = t
        self._net_at = now
        self._floor = True

    def _check_tag(self, f, n, t, now):
        """A tagged frame's stamp and tag: False (counted) for a replay or a
        forgery; else True, with the age its stamp says in _stamp_age.
        (Called only with a key.)"""
        auth = self._auth
        assert auth is not None
        o = n - self._trl
        st = _u30(f, o)
        # a node asking for the time has no clock: its stamp field is a nonce
        ask = t == _T_DIGEST and f[1] & _F_SYNC
        d = 0
        if t != _T_DATA and not ask:
            # an exact repeat of a digest or request heard lately: a replay
            sk = (f[4] << 22) ^ (f[5] << 14) ^ (f[6] << 6) ^ f[7] ^ (f[n - 1] << 8) ^ f[n - 2]
            cs = self._cc_s
            ct = self._cc_t
            for j in range(_CTL_SEEN):
                if ct[j] == st and cs[j] == sk:
                    self.duplicates = (self.duplicates - _MASK) & _MASK
                    return False
        if not ask and (self._synced or self._floor):
            d = ((self._net_now(now) - st ^ _HALF) & _MASK) - _HALF
            if d > (self._age_max_u if t == _T_DATA else self._window_u):
                self.stale = (self.stale - _MASK) & _MASK
                # A stale digest is a replay, or a neighbour whose clock
                # lags (it ran on its own after nobody told it the time):
                # our next digest, even an empty one, tells it.  (Once per
                # Trickle interval: a replayer can't make us send more.)
                # Anything else stale is dropped before hashing.
                if t == _T_DIGEST and self._synced and not self._owe and auth.verify(f, n, False):
                    self._owe = True  # (one hash per digest we send, at most)
                return False
        if not auth.verify(f, n, t == _T_DATA):
            self.bad_tag = (self.bad_tag - _MASK) & _MASK
            return False
        if ask:
            return True  # (answered in receive(), once the rate limit let it through)
        if t != _T_DATA:
            i = self._cc_i
            self._cc_s[i] = (f[4] << 22) ^ (f[5] << 14) ^ (f[6] << 6) ^ f[7] ^ (f[n - 1] << 8) ^ f[n - 2]
            self._cc_t[i] = st
            self._cc_i = (i + 1) % _CTL_SEEN
        if t == _T_DIGEST and f[1] & _F_ECHO:
            e = _u30(f, o - 4)
            if self._synced:
                self._answered(e)  # somebody else answered it: we need not
            elif e == self._nonce:
                # the answer to our question, from a key holder, made after
                # we asked: the network time, for certain
                self._net = st
                self._net_at = now
                self._sync(now)
                return True
        if d < 0 or not (self._synced or self._floor):
            # the mesh's clock is ahead of ours (or we had none): catch up
            self._net = st
            self._net_at = now
            self._floor = True
            d = 0
        # rounded up: a replay must never look younger than the first copy did
        self._stamp_age = (d + 1) << _NET_SHIFT
        return True

    def _sync(self, now):
        """We have the network time (or stopped waiting for it): send what we
        held, and deliver what we kept in quarantine, unless its stamp now
        shows it stale (a replay that came in while we could not tell)."""
        self._synced = True
        r = self._ring
        net = self._net_now(now)
        trl = self._trl
        for s in range(r.slots):
            if not r.used[s]:
                continue
            st = r.state[s]
            if st & HELD:
                r.state[s] = st & ~HELD
                self._disseminate(s, r.prio[s], now, True, 0)
            elif st & QUAR:
                f = r.frame[s]
                o = len(f) - trl
                d = ((net - _u30(f, o) ^ _HALF) & _MASK) - _HALF
                if d > self._age_max_u:
                    self.stale = (self.stale - _MASK) & _MASK
                    self._dedup.slot[r.dix[s]] = -1  # the id stays seen
                    r.free(s)
                    continue
                if ((now - r.born[s] ^ _HALF) & _MASK) - _HALF > self._age_max:
                    self.expired = (self.expired - _MASK) & _MASK  # too old by its wire age
                    self._dedup.slot[r.dix[s]] = -1
                    r.free(s)
                    continue
                r.state[s] = st & ~QUAR
                self._deliver(s, f, o, now)
                self._disseminate(s, r.prio[s], now, False, 0)

    def _to_answer(self, nonce, p, now):
        """Queue an answer to a question for the time (nonce, from row p)."""
        for j in range(self._en):
            if self._eq[j] == nonce:
                return
        for j in range(_ASKERS):
            if self._dq[j] == nonce and ((now - self._dt[j]) & _MASK) < (self._ask_every >> 1):
                return
        if self._en >= _ASKERS:
            return  # they ask again
        if self._en == 0:  # a short random wait: another neighbour's answer may do
            self._e_at = (now - _MASK + self._rand(16) % (2 * self._delay + 2) - 1) & _MASK
        self._eq[self._en] = nonce
        self._erow[self._en] = p
        self._en += 1

    def _answered(self, nonce):
        n = self._en
        for j in range(n):
            if self._eq[j] == nonce:
                for k in range(j, n - 1):
                    self._eq[k] = self._eq[k + 1]
                    self._erow[k] = self._erow[k + 1]
                self._en = n - 1
                return

    def _time_tick(self, now):
        """Ask for the time while we don't know it; answer those who ask."""
        if not self._synced:
            if ((now - self._sync_by ^ _HALF) & _MASK) - _HALF >= 0:
                self._sync(now)  # nobody told us the time: ours is the mesh's
            elif ((now - self._ask_at ^ _HALF) & _MASK) - _HALF >= 0:
                # in every mode, whatever Trickle would do: a question
                # suppressed by others' digests is a node left unsynced
                self._ask_at = (now - _MASK + self._ask_every - 1) & _MASK
                f = self._build_digest(now, -1)
                self.digests_out = (self.digests_out - _MASK) & _MASK
                if self._bcast:
                    self._send(f, None)
                else:
                    lst = self._peer_list(-1, now, 255)
                    if lst is not None:
                        self._send(f, lst)
            return
        if self._en and ((now - self._e_at ^ _HALF) & _MASK) - _HALF >= 0:
            nonce = self._eq[0]
            row = self._erow[0]
            self._answered(nonce)
            self._dq[self._di] = nonce
            self._dt[self._di] = now
            self._di = (self._di + 1) % _ASKERS
            f = self._build_digest(now, nonce)
            self.digests_out = (self.digests_out - _MASK) & _MASK
            if self._bcast:
                self._send(f, None)
            else:
                to = self._to_peer(row)
                if to is not None:
                    self._send(f, to)
            self._e_at = (now - _MASK) & _MASK

    def _stamp(self, f, end, st):
        f[end] = (st >> 24) & 0x3F
        f[end + 1] = (st >> 16) & 0xFF
        f[end + 2] = (st >> 8) & 0xFF
        f[end + 3] = st & 0xFF

    def _seal(self, f, end, now, data):
        """Finish frame f, whose body ends at end: stamp and tag with a key."""
        a = self._auth
        if a is None:
            f[end:] = b""
            return
        self._stamp(f, end, self._net_now(now))
        f[end + self._trl:] = b""
        a.sign(f, data)

    # -- sending ------------------------------------------------------------------
    def _send(self, frame, to):
        self.frames_out = (self.frames_out - _MASK) & _MASK
        self.bytes_out = (self.bytes_out - _MASK + len(frame) - 1) & _MASK
        self._on_fwd(frame, to)

    def _send_slot(self, s, now, to):
        """Send ring slot s with its age and hop count brought up to date.
        False (and nothing sent) when it has expired or reached the hop limit."""
        r = self._ring
        age = ((now - r.born[s] ^ _HALF) & _MASK) - _HALF
        if age > self._age_max:
            return False
        st = r.state[s]
        if st & (LIMITED | HELD | QUAR):
            if st & LIMITED:
                self.hop_limited = (self.hop_limited - _MASK) & _MASK
            return False
        f = r.frame[s]
        if st & OWN and self._auth is not None:
            # our own message is stamped afresh at every send, from the
            # network time now: publish time = now - its age
            self._stamp(f, len(f) - self._trl, (self._net_now(now) - ((age + 63) >> _NET_SHIFT)) & _MASK)
            self._auth.sign(f, True)
        f[2] = r.hops[s]
        # rounded up: an age must never come out younger than it is (the
        # dedup watermark and the expiry both trust it), and rounding down
        # at every hop would add up along a long path
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

    # -- publish ------------------------------------------------------------------
    def publish(self, payload, priority=0):
        """Originate a message; returns its id, (node_id << 16) | seq."""
        if not self._running:
            raise RuntimeError("publish() before start()")
        if not isinstance(priority, int) or not 0 <= priority <= 3:
            raise ValueError("priority must be 0..3, got %r" % (priority,))
        n = len(payload)
        if n > self._max_payload:
            raise ValueError("payload of %d bytes exceeds max_payload=%d" % (n, self._max_payload))
        now = self._now()
        seq = self._seq
        self._seq = (seq + 1) & 0xFFFF
        khi = (self._me_hi << 8) | (self._me_lo >> 8)
        klo = ((self._me_lo & 0xFF) << 16) | seq
        r = self._ring
        d = self._dedup
        i = d.find(khi, klo)
        if i >= 0:  # seq wrapped onto an id still remembered
            self._unlink(i)
        # our own message always gets a slot: it may evict even a message of
        # higher priority (the oldest of the lowest priority present), but
        # over our quota only one of our own
        s = self._slot_for(3, khi, klo >> 16)
        i = self._dedup_add(khi, klo, now)
        f = self._tx
        f[0:] = self._blank
        f[0] = (_VERSION << 4) | _T_DATA
        f[1] = priority if self._auth is None else priority | _F_AUTH
        f[2] = 0
        f[3] = self._hop_limit
        self._put_id(f, 4, self._me_hi, self._me_lo)
        self._put_id(f, 8, self._me_hi, self._me_lo)
        f[12] = seq >> 8
        f[13] = seq & 0xFF
        end = _HDR + n
        f[_HDR:end] = payload
        if self._auth is not None:  # room for the stamp and tag, written at each send
            f[end + self._trl:] = b""
        else:
            f[end:] = b""
        r.put(s, f, priority, 0, now, i, -1)
        r.state[s] = OWN
        d.slot[i] = s
        self.published = (self.published - _MASK) & _MASK
        if self._auth is not None and not self._synced:
            # our clock is not the mesh's yet: a stamp now could be far in
            # the past, and the tag would seal it in; send once synced
            r.state[s] = OWN | HELD
            return (self.node_id << 16) | seq
        self._disseminate(s, priority, now, True, 0)
        return (self.node_id << 16) | seq

    @staticmethod
    def _put_id(f, o, hi, lo):
        f[o] = hi >> 8
        f[o + 1] = hi & 0xFF
        f[o + 2] = lo >> 8
        f[o + 3] = lo & 0xFF

    # -- receive ------------------------------------------------------------------
    def receive(self, frame, from_peer=None, rssi=0):
        """Take a frame heard from the radio.  True when it carried a message
        new to this node.  Never raises on bad input: it counts and drops.
        rssi: dBm of this reception, 0 when the radio gives none."""
        self.frames_in = (self.frames_in - _MASK) & _MASK
        if not self._running:
            return False
        n = len(frame)
        if n < _REQ_HDR or n > self._mtu:
            self.malformed = (self.malformed - _MASK) & _MASK
            return False
        vt = frame[0]
        if vt >> 4 != _VERSION:
            self.bad_version = (self.bad_version - _MASK) & _MASK
            self.malformed = (self.malformed - _MASK) & _MASK
            return False
        t = vt & 0x0F
        # body: the frame without its stamp and tag
        fl = frame[1]
        if self._auth is not None:
            if not fl & _F_AUTH:  # untagged: it can't be ours
                self.bad_tag = (self.bad_tag - _MASK) & _MASK
                return False
            body = n - self._trl
        elif fl & _F_AUTH:  # tagged, and we have no key: carried as it is
            body = n - self._cfg_trl
        else:
            body = n
        if t == _T_DIGEST and fl & _F_ECHO and fl & _F_AUTH:
            body -= 4  # the echoed nonce
        if t == _T_DATA:
            if body < _HDR or frame[2] > frame[3]:
                self.malformed = (self.malformed - _MASK) & _MASK
                return False
        elif t == _T_DIGEST:
            if body < _HDR or body != _HDR + _DID * frame[2]:
                self.malformed = (self.malformed - _MASK) & _MASK
                return False
        elif t == _T_REQUEST:
            if body != _REQ_HDR + _ID * frame[2] or frame[2] == 0:
                self.malformed = (self.malformed - _MASK) & _MASK
                return False
        else:
            self.malformed = (self.malformed - _MASK) & _MASK
            return False
        shi = (frame[4] << 8) | frame[5]
        slo = (frame[6] << 8) | frame[7]
        if shi == self._me_hi and slo == self._me_lo:
            return False  # our own frame, echoed by the medium
        now = self._clock() & _MASK
        self._stamp_age = 0
        if self._auth is not None:
            if t == _T_DATA and self._synced and self._idle_copy(frame):
                # a copy of a message we hold with no relay pending: dropped
                # unread, so it needs no hash (most copies a node hears).
                # (Not before our clock is set: a node that has only
                # published hears only copies of its own, and syncs by them.)
                self.duplicates = (self.duplicates - _MASK) & _MASK
                return False
            # checked before the frame touches any table: a forgery changes nothing
            if not self._check_tag(frame, n, t, now):
                return False
        p = self._peers.hear(shi, slo, from_peer, now)
        if t == _T_DATA:
            return self._data(frame, body, p, now, rssi)
        if self._rate and p >= 0 and not self._peers.allow(p, now, self._rate, self._burst):
            self.rate_limited = (self.rate_limited - _MASK) & _MASK
            return False
        if t == _T_DIGEST and frame[1] & _F_SYNC and self._auth is not None:
            if self._synced:
                o = n - self._trl
                self._to_answer(_u30(frame, o), p, now)
        if t == _T_DIGEST:
            self._digest(frame, n, p, now)
        else:
            self._request(frame, n, p, now)
        return False

    def _idle_copy(self, f):
        """True when DATA frame f has an id we have seen and would do nothing
        with: no body left, or a body with no relay waiting to be cancelled."""
        i = self._dedup.find((f[8] << 16) | (f[9] << 8) | f[10], (f[11] << 16) | (f[12] << 8) | f[13])
        if i < 0:
            return False
        s = self._dedup.slot[i]
        return s < 0 or not self._ring.state[s] & RELAY

    def _data(self, f, n, p, now, rssi):
        # (n: where the payload ends; a stamp and tag may follow)
        khi = (f[8] << 16) | (f[9] << 8) | f[10]
        klo = (f[11] << 16) | (f[12] << 8) | f[13]
        d = self._dedup
        i = d.find(khi, klo)
        if i >= 0:
            # a duplicate: it may cancel our own pending rebroadcast
            self.duplicates = (self.duplicates - _MASK) & _MASK
            s = d.slot[i]
            if s >= 0:
                r = self._ring
                if r.state[s] & RELAY:
                    h = r.heard[s]
                    if h < 255:
                        h += 1
                        r.heard[s] = h
                    # (rssi 0 means the radio gave none: it can't say "close by")
                    if (r.need[s] and h >= r.need[s]) or (self._near and rssi and rssi >= self._near):
                        r.state[s] &= ~RELAY
                        self.suppressed = (self.suppressed - _MASK) & _MASK
            return False
        if n - _HDR > self._max_payload:
            self.malformed = (self.malformed - _MASK) & _MASK
            return False
        age = ((f[14] << 8) | f[15]) << _AGE_SHIFT
        if self._stamp_age > age:  # the authenticated stamp says older
            age = self._stamp_age
        if age > self._age_max:
            self.expired = (self.expired - _MASK) & _MASK
            return False
        if d.forgotten(khi, klo, (now - age) & _MASK):
            # born before the dedup table last forgot an id of its bucket: it
            # may be one we delivered already, so it is not delivered again
            self.forgotten = (self.forgotten - _MASK) & _MASK
            return False
        if (khi == (self._me_hi << 8) | (self._me_lo >> 8) and (klo >> 16) == self._me_lo & 0xFF
                and ((klo & 0xFFFF) - self._seq0) & 0xFFFF < (self._seq - self._seq0) & 0xFFFF):
            # ours, published since start(): a copy of one the dedup table
            # forgot (a node publishing faster than it remembers), never new
            self.duplicates = (self.duplicates - _MASK) & _MASK
            return False
        # The sender's limit first: a frame it refuses must not count
        # against the origin (a replayer could make any origin look like a
        # flooder); what the origin's then refuses is given back to the sender.
        # Not marked seen: another neighbour or anti-entropy brings it later.
        if self._rate and p >= 0 and not self._peers.allow(p, now, self._rate, self._burst):
            self.rate_limited = (self.rate_limited - _MASK) & _MASK
            return False
        if self._orate and not self._origins.allow(khi, klo >> 16, now, self._orate, self._burst,
                                                   self._age_max):
            if self._rate and p >= 0:
                self._peers.refund(p, self._burst)
            self.rate_limited = (self.rate_limited - _MASK) & _MASK
            return False
        prio = f[1] & _PRIO_MASK
        s = self._slot_for(prio, khi, klo >> 16)
        if s == -2:
            # not marked seen: once the origin's share frees up, a copy or
            # anti-entropy can still bring it
            self.evicted = (self.evicted - _MASK) & _MASK
            return False
        if s < 0:
            self.evicted = (self.evicted - _MASK) & _MASK
            self._dedup_add(khi, klo, now)  # seen (no body): not requested again
            return False
        if khi == (self._me_hi << 8) | (self._me_lo >> 8) and (klo >> 16) == self._me_lo & 0xFF:
            # one of our own messages from before a reboot: skip past its seq
            rs = klo & 0xFFFF
            if ((rs - self._seq) & 0xFFFF) < 0x8000:  # only ever forward
                self._seq = (rs + 1) & 0xFFFF
        i = self._dedup_add(khi, klo, now)
        born = (now - age) & _MASK
        hops = f[2]
        r = self._ring
        r.put(s, f, prio, hops + 1 if hops < 255 else 255, born, i, p)
        if hops >= f[3]:
            r.state[s] = LIMITED
        d.slot[i] = s
        # the stored copy is what we send: sender field = us
        g = r.frame[s]
        g[4] = self._me_hi >> 8
        g[5] = self._me_hi & 0xFF
        g[6] = self._me_lo >> 8
        g[7] = self._me_lo & 0xFF
        if not self._synced and self._auth is not None:
            # we can't tell yet whether its stamp is stale (our clock may lag
            # after a reboot): kept, neither delivered nor sent, until we have
            # the network time (_sync)
            r.state[s] |= QUAR
            return False
        self._deliver(s, g, n, now)
        self._disseminate(s, prio, now, False, rssi)
        return True

    def _deliver(self, s, g, end, now):
        """Hand ring slot s (its frame g, the payload ending at end) to the
        application."""
        self.delivered = (self.delivered - _MASK) & _MASK
        cb = self._on_msg
        if cb is not None:
            r = self._ring
            m = self._msg
            m.frame = g
            m.end = end
            m.hops = r.hops[s]
            m.priority = r.prio[s]
            m.age_ms = ((now - r.born[s] ^ _HALF) & _MASK) - _HALF
            m.seq = (g[12] << 8) | g[13]
            m.origin_hi = (g[8] << 8) | g[9]
            m.origin_lo = (g[10] << 8) | g[11]
            cb(m)

    def _slot_for(self, prio, ohi, olo):
        """A ring slot for a new message of origin (ohi, olo), evicting (and
        unlinking) if needed; -1 when none may be had."""
        r = self._ring
        s = r.take(prio)
        if s >= 0 and r.used[s] and (r.ohi[s] != ohi or r.olo[s] != olo):
            # fairness: the victim is another origin's; an origin at its
            # quota replaces its own messages only (when the victim is its
            # own already, as under its own flood, no count is needed)
            v = r.over_quota(ohi, olo, prio, self._quota)
            if v != -1:
                if v < 0:
                    return -2  # at quota, and all of its messages outrank this one
                self.evicted = (self.evicted - _MASK) & _MASK
                self.quota_evicted = (self.quota_evicted - _MASK) & _MASK
                self._dedup.slot[r.dix[v]] = -1
                r.free(v)
                return v
        if s >= 0 and r.used[s]:
            self.evicted = (self.evicted - _MASK) & _MASK
            self._dedup.slot[r.dix[s]] = -1
            r.free(s)
        return s

    def _dedup_add(self, khi, klo, now):
        d = self._dedup
        i = d.add(khi, klo, now)
        s = d.slot[i]
        if s >= 0:  # the entry replaced still had a body: drop the body too
            self.evicted = (self.evicted - _MASK) & _MASK
            self._ring.free(s)
            d.slot[i] = -1
        return i

    def _unlink(self, i):
        d = self._dedup
        s = d.slot[i]
        if s >= 0:
            self._ring.free(s)
            d.slot[i] = -1
        d.hi[i] = -1
        d.used -= 1

    def _disseminate(self, s, prio, now, own, rssi):
        """What to do with a message new to this node (own: we published it)."""
        r = self._ring
        mode = self._mode
        if r.state[s] & LIMITED:
            self.hop_limited = (self.hop_limited - _MASK) & _MASK
            return
        # high priority is flooded at once in every mode (seed's phase 2)
        if prio > 0 and mode != _FLOOD:
            self._everyone(s, now)
            return
        if mode == _FLOOD or (self._bcast and own):
            if own or self._delay == 0 or not self._bcast:
                self._everyone(s, now)
            else:
                self._relay_new(s, now, rssi)
            return
        # gossip (and hybrid's normal priority)
        if self._bcast:
            self._relay_new(s, now, rssi)
        else:
            r.pushes[s] = self.config.push_rounds
            if r.pushes[s]:
                r.state[s] |= PUSH
            if own:
                self._push_round_one(s, now)

    def _relay_new(self, s, now, rssi):
        """Schedule the one rebroadcast of a message just heard at rssi.
        (The first copy's strength only orders the relays; suppress_rssi
        applies to the copies heard while ours waits: see _data.)"""
        self._schedule(s, now, self._relay_wait(rssi), self._k)

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

    def _schedule(self, s, now, wait, need):
        r = self._ring
        due = (now - _MASK + wait - 1) & _MASK
        r.due[s] = due
        r.heard[s] = 0
        r.need[s] = need
        r.state[s] |= RELAY
        if not self._relay_pending or ((due - self._next_relay ^ _HALF) & _MASK) - _HALF < 0:
            self._next_relay = due
            self._relay_pending = True
        if wait == 0:
            self._relays(now)

    def _relays(self, now):
        """Send every pending relay that is due; work out the next due time."""
        r = self._ring
        st = r.state
        due = r.due
        nxt = 0
        pending = False
        for s in range(r.slots):
            if st[s] & RELAY:
                w = ((due[s] - now ^ _HALF) & _MASK) - _HALF
                if w <= 0:
                    st[s] &= ~RELAY
                    self._send_slot(s, now, None)
                elif not pending or ((due[s] - nxt ^ _HALF) & _MASK) - _HALF < 0:
                    nxt = due[s]
                    pending = True
        self._relay_pending = pending
        self._next_relay = nxt

    # -- anti-entropy ---------------------------------------------------------------
    def _summary(self, now):
        """(live count, 30-bit xor of live ids): equal summaries = in sync.
        Also leaves r.mark[s] = 1 on live slots and 0 elsewhere."""
        r = self._ring
        d = self._dedup
        x = 0
        n = 0
        for s in range(r.slots):
            r.mark[s] = 0
            # (a message at its hop limit can't be sent: not listed, not counted)
            if (r.used[s] and not r.state[s] & (LIMITED | HELD | QUAR)
                    and ((now - r.born[s] ^ _HALF) & _MASK) - _HALF <= self._age_max):
                i = r.dix[s]
                hi = d.hi[i]
                lo = d.lo[i]
                x ^= (hi ^ (lo << 6) ^ (lo >> 18) ^ (hi << 3)) & _MASK
                n += 1
                r.mark[s] = 1
        self._sum_n = n
        return x

    def _build_digest(self, now, echo=-1):
        """Fill _tx with a DIGEST of the live ids, newest first.  Returns it.
        When they don't all fit, the newest two thirds of the room are listed
        and span covers them; the last third lists older ids, a different
        stretch each time (_rot), so that every live id is advertised in
        turn: a neighbour that missed an old message can see it to ask."""
        x = self._summary(now)
        n = self._sum_n
        f = self._tx
        f[0:] = self._blank
        room = (self._mtu - _HDR - self._trl - (4 if self._trl else 0)) // _DID  # (4: an echo)
        if room > 255:
            room = 255
        r = self._ring
        od = r.order
        mark = r.mark
        prv = r.prv
        # newest first: merge the four priority chains from their tails
        cur = self._cur
        for p in range(4):
            cur[p] = r.tail[p]
        cnt = 0
        o = _HDR
        oldest_age = 0
        base = r._order
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
                    # insertions since: never negative, a small int even
                    # after the 30-bit counter wraps
                    v = (base - od[s]) & _MASK
                    if best < 0 or v < bo:
                        bo = v
                        best = s
                        bp = p
            if best < 0:
                break
            cur[bp] = prv[best]
            if mark[best] != 1:
                continue  # expired, awaiting the prune
            k += 1
            if head < k <= head + skip:
                continue  # (the older ids listed last time and before)
            mark[best] = 2
            g = r.frame[best]
            f[o] = g[8]
            f[o + 1] = g[9]
            f[o + 2] = g[10]
            f[o + 3] = g[11]
            f[o + 4] = g[12]
            f[o + 5] = g[13]
            age = ((now - r.born[best] ^ _HALF) & _MASK) - _HALF
            if age > oldest_age:
                oldest_age = age
            a = age >> _DAGE_SHIFT
            f[o + 6] = a if a < 255 else 255
            o += _DID
            cnt += 1
        # span: every live id younger than it is listed (receivers push what
        # we lack only below it).  Ring order is arrival, not age: an old
        # message fetched late sits among the newest, so take the youngest
        # live id left out, if any, rather than a position in the list.
        if cnt < n:
            left = -1
            for s in range(r.slots):
                if mark[s] == 1:
                    age = ((now - r.born[s] ^ _HALF) & _MASK) - _HALF
                    if left < 0 or age < left:
                        left = age
            if left >= 0:
                oldest_age = left
        f[0] = (_VERSION << 4) | _T_DIGEST
        fl = _F_TRUNCATED if cnt < n else 0
        if self._auth is not None:
            if not self._synced:
                fl |= _F_AUTH | _F_SYNC
            elif echo >= 0:
                fl |= _F_AUTH | _F_ECHO
            else:
                fl |= _F_AUTH
        f[1] = fl
        f[2] = cnt
        f[3] = 0
        self._put_id(f, 4, self._me_hi, self._me_lo)
        f[8] = (x >> 24) & 0x3F
        f[9] = (x >> 16) & 0xFF
        f[10] = (x >> 8) & 0xFF
        f[11] = x & 0xFF
        n = n if n < 0xFFFF else 0xFFFF
        f[12] = n >> 8
        f[13] = n & 0xFF
        a = oldest_age >> _AGE_SHIFT
        if a > _AGE_WIRE_MAX:
            a = _AGE_WIRE_MAX
        f[14] = a >> 8
        f[15] = a & 0xFF
        if self._auth is not None and not self._synced:
            # asking for the time: the stamp field carries our nonce instead
            self._stamp(f, o, self._nonce)
            f[o + self._trl:] = b""
            self._auth.sign(f, False)
            return f
        if echo >= 0:
            self._stamp(f, o, echo)
            o += 4
        self._seal(f, o, now, False)
        return f

    def _send_digest(self, now, to):
        f = self._build_digest(now)
        # an empty digest says nothing, unless it asks for the time or answers
        if f[2] == 0 and not f[1] & (_F_TRUNCATED | _F_SYNC) and not self._owe and not self._hello:
            return False
        self._hello = False
        self._owe = False
        self.digests_out = (self.digests_out - _MASK) & _MASK
        self._send(f, to)
        return True

    def _digest(self, f, n, p, now):
        x = self._summary(now)
        theirs = _u30(f, 8)
        their_n = (f[12] << 8) | f[13]
        if theirs == x and their_n == self._sum_n:
            self._t_heard += 1  # Trickle: a consistent transmission
            return
        if their_n == 0 and self._sum_n:
            # a node that holds nothing (new here, or rebooted): nothing to
            # compare, so our digest, soon, is what tells it what to ask for
            self._trickle_reset(now)
            return
        # Differences in messages younger than settle_ms are usually the relay
        # wave still passing: only settled differences are acted upon (and
        # only they reset Trickle), so digests don't chase the wave.
        r = self._ring
        d = self._dedup
        mark = r.mark  # 1 on our live slots (from _summary)
        settle = self._settle
        q = self._tx
        q[0:] = self._blank
        want = 0
        room = (self._mtu - _REQ_HDR - self._trl) // _ID
        o = _HDR
        for _e in range(f[2]):
            hi = (f[o] << 16) | (f[o + 1] << 8) | f[o + 2]
            lo = (f[o + 3] << 16) | (f[o + 4] << 8) | f[o + 5]
            i = d.find(hi, lo)
            if i < 0:
                a = f[o + 6] << _DAGE_SHIFT
                if (want < room and a >= settle and not d.forgotten(hi, lo, (now - a) & _MASK)
                        and not (self._orate and self._origins.busy(hi, f[o + 3], now, self._orate, self._burst))):
                    w = _REQ_HDR + want * _ID
                    for b in range(_ID):
                        q[w + b] = f[o + b]
                    want += 1
            else:
                s = d.slot[i]
                if s >= 0:
                    mark[s] = 0  # they have it
            o += _DID
        # what they lack: our settled messages their digest did not list, but
        # only those younger than its oldest entry: older ones they may have
        # evicted from a full ring (or not listed, when the list was cut
        # short); they ask for those themselves when our digests list them
        span = ((f[14] << 8) | f[15]) << _AGE_SHIFT
        to = self._to_peer(p)
        lacking = 0
        orate = self._orate
        for s in range(r.slots):
            if mark[s] == 1:
                age = ((now - r.born[s] ^ _HALF) & _MASK) - _HALF
                if age >= settle and age < span:
                    # not a flooding origin's: what its rate limit kept from
                    # our neighbours, we don't push to them behind its back
                    # (nor ask for it: see the requests above)
                    if orate and self._origins.busy(r.ohi[s], r.olo[s], now, orate, self._burst):
                        continue
                    self._answer(s, now, to)
                    lacking += 1
        if want:
            q[0] = (_VERSION << 4) | _T_REQUEST
            q[1] = 0 if self._auth is None else _F_AUTH
            q[2] = want
            q[3] = 0
            self._put_id(q, 4, self._me_hi, self._me_lo)
            self._seal(q, _REQ_HDR + want * _ID, now, False)
            if self._bcast:
                self.requests_out = (self.requests_out - _MASK) & _MASK
                self._send(q, None)
            elif to is not None:
                self.requests_out = (self.requests_out - _MASK) & _MASK
                self._send(q, to)
        if want or lacking:
            self._trickle_reset(now)

    def _answer(self, s, now, to):
        """Send slot s to a node that lacks it: on a broadcast medium after a
        short random wait, cancelled by one copy heard (several neighbours may
        lack it and several may answer); else unicast to `to` at once."""
        r = self._ring
        self.answered = (self.answered - _MASK) & _MASK
        if self._bcast:
            if not r.state[s] & RELAY:
                self._schedule(s, now, self._rand(16) % (self._delay + 1), 1)
        elif to is not None:
            self._send_slot(s, now, to)

    def _to_peer(self, p):
        """A reused one-peer list for row p, or None when it has no address."""
        if p < 0 or not len(self._peers.addr[p]):
            return None
        lst = self._lists[1]
        lst[0] = self._peers.addr[p]
        return lst

    def _request(self, f, n, p, now):
        self._trickle_reset(now)
        d = self._dedup
        r = self._ring
        to = self._to_peer(p)
        o = _REQ_HDR
        for _e in range(f[2]):
            hi = (f[o] << 16) | (f[o + 1] << 8) | f[o + 2]
            lo = (f[o + 3] << 16) | (f[o + 4] << 8) | f[o + 5]
            o += _ID
            i = d.find(hi, lo)
            if i < 0:
                continue
            s = d.slot[i]
            if s >= 0 and not r.state[s] & (LIMITED | HELD | QUAR):
                self._answer(s, now, to)

    # Trickle (RFC 6206) for digests on a broadcast medium
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

    # -- time ----------------------------------------------------------------------
    def tick(self):
        """Do whatever is due at clock(): relays, a round, a prune."""
        if not self._running:
            return
        now = self._now()
        if self._auth is not None:
            self._time_tick(now)
        if self._relay_pending and ((now - self._next_relay ^ _HALF) & _MASK) - _HALF >= 0:
            self._relays(now)
        if self._mode != _FLOOD:
            if self._bcast:
                self._trickle(now)
            elif ((now - self._next_round ^ _HALF) & _MASK) - _HALF >= 0:
                self._next_round = (self._next_round - _MASK + self._interval - 1) & _MASK
                if ((now - self._next_round ^ _HALF) & _MASK) - _HALF >= 0:
                    self._next_round = (now - _MASK + self._interval - 1) & _MASK  # we were late
                self._round(now)
        if ((now - self._next_prune ^ _HALF) & _MASK) - _HALF >= 0:
            self._next_prune = (now - _MASK + self._prune_every - 1) & _MASK
            self.prune(now)

    def _trickle(self, now):
        if not self._t_fired and ((now - self._t_fire ^ _HALF) & _MASK) - _HALF >= 0:
            self._t_fired = True
            if self._t_heard < _TRICKLE_K or self._owe:
                self._send_digest(now, None)
        if ((now - self._t_end ^ _HALF) & _MASK) - _HALF >= 0:
            i = self._t_i << 1
            if i > self._imax:
                i = self._imax
            self._trickle_begin(now, i)

    def _round(self, now):
        """One unicast gossip round: fanout peers, push or pull each."""
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
                left = r.pushes[s] - 1
                r.pushes[s] = left
                if left <= 0:
                    r.state[s] &= ~PUSH

    def _push_round_one(self, s, now):
        """A new own message is pushed to fanout peers at once."""
        lst = self._peer_list(-1, now, self._fanout)
        if lst is not None:
            self._send_slot(s, now, lst)

    def prune(self, now=None):
        """Drop expired bodies and ids seen long ago (tick() calls this)."""
        if now is None:
            now = self._now()
        r = self._ring
        d = self._dedup
        for s in range(r.slots):
            if r.used[s] and ((now - r.born[s] ^ _HALF) & _MASK) - _HALF > self._age_max:
                d.slot[r.dix[s]] = -1
                r.free(s)
                self.expired = (self.expired - _MASK) & _MASK
        # ids are kept twice as long as bodies: a frame older than that is
        # refused for its age anyway
        if self._auth is not None:
            self._net_now(now)  # (the clock must be advanced at least every 12 days)
        self._origins.expire(now)
        d.forget_older(now, 2 * self._age_max)
        d.expire_watermarks(now, self._age_max)
        self._peers.expire(now, self._peer_timeout)

    def next_deadline(self):
        """Milliseconds until tick() has something to do (>= 0)."""
        now = self._now()
        best = ((self._next_prune - now ^ _HALF) & _MASK) - _HALF
        if self._relay_pending:
            w = ((self._next_relay - now ^ _HALF) & _MASK) - _HALF
            if w < best:
                best = w
        if self._mode != _FLOOD:
            if self._bcast:
                t = self._t_end if self._t_fired else self._t_fire
            else:
                t = self._next_round
            w = ((t - now ^ _HALF) & _MASK) - _HALF
            if w < best:
                best = w
        if self._auth is not None:
            if not self._synced:
                for t in (self._ask_at, self._sync_by):
                    w = ((t - now ^ _HALF) & _MASK) - _HALF
                    if w < best:
                        best = w
            elif self._en:
                w = ((self._e_at - now ^ _HALF) & _MASK) - _HALF
                if w < best:
                    best = w
        return best if best > 0 else 0

    # -- reporting -----------------------------------------------------------------
    def stats(self):
        now = self._now()
        return {
            "message_count": self._ring.count,
            "seen_count": self._dedup.used,
            "peer_count": self._peers.count,
            "active_peer_count": self._peers.active_count(now, self._peer_timeout),
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "bytes_out": self.bytes_out,
            "delivered": self.delivered,
            "published": self.published,
            "duplicates": self.duplicates,
            "malformed": self.malformed,
            "bad_version": self.bad_version,
            "evicted": self.evicted,
            "expired": self.expired,
            "suppressed": self.suppressed,
            "hop_limited": self.hop_limited,
            "forgotten": self.forgotten,
            "digests_out": self.digests_out,
            "requests_out": self.requests_out,
            "answered": self.answered,
            "bad_tag": self.bad_tag,
            "stale": self.stale,
            "rate_limited": self.rate_limited,
            "quota_evicted": self.quota_evicted,
        }

    def memory_bytes(self):
        """Bytes of heap the engine's state takes, all of it allocated in
        __init__ (mem.py says how objects are counted)."""
        c = self.config
        n = c.max_peers
        return (
            self._ring.memory_bytes()
            + self._dedup.memory_bytes()
            + self._peers.memory_bytes()
            + 2 * mem.buf(c.mtu)  # _tx and _blank
            + mem.buf(n)  # _cand
            + mem.buf(8)  # _cur
            + mem.lst(n + 1) + sum(mem.lst(k) for k in range(n + 1))  # the to_peers lists
            + mem.inst(self) + mem.inst(self._msg) + mem.inst(self._ring)
            + mem.inst(self._dedup) + mem.inst(self._peers)
            + self._origins.memory_bytes() + mem.inst(self._origins)
            + (0 if self._auth is None else self._auth.memory_bytes(mem))
        )

    def peers(self):
        """[(address or None, node id or None, ms since heard or None, static)]"""
        now = self._now()
        p = self._peers
        out = []
        for k in range(p.n):
            if p.flags[k]:
                heard = None
                if p.flags[k] & HEARD:
                    heard = ((now - p.heard[k] ^ _HALF) & _MASK) - _HALF
                out.append((bytes(p.addr[k]) or None, p.node_id(k), heard, bool(p.flags[k] & STATIC)))
        return out
