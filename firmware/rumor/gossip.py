# Gossip: the protocol engine.  Sans-IO: it reads no clock, radio or random
# source of its own; they are handed to it (see README "The core").
#
#   g = Gossip(cfg, node_id, clock=ticks_ms_fn, rand=getrandbits_fn)
#   g.on_forward(send)        # send(frame, to_peers): to_peers None = one broadcast
#   g.on_message(deliver)     # deliver(msg): msg is reused, valid during the call
#   g.start(); g.publish(b"hi"); g.receive(frame, from_peer); g.tick()
#
# Everything it keeps is allocated in __init__.  receive() of a duplicate, of
# a new message and of a digest allocates nothing (the unix-port tests hold
# micropython.heap_lock() around them), so the engine never fragments the
# heap of a board that runs for weeks.
#
# This file holds the public API, receive() (checks, then dispatch by frame
# type), the store path (a slot, the dedup entry, delivery), tick() and the
# reports; docs/core-api.md maps the rest.  relay.py's and antientropy.py's
# functions are bound into the class body: entries of the class dict like any
# method (same call sites and per-call cost, no object added per engine).
# netclock.py is loaded only with a key.  Wire values are private const()
# copies (MicroPython inlines only a module's own), checked against wire.py
# by tests/host/test_consts.py.
try:
    from micropython import const
except ImportError:  # CPython
    const = lambda x: x  # noqa: E731

from . import mem
from .config import Config
from .counters import NAMES, add, bump
from .dedup import Dedup
from .message import Message, put_id, u30
from .origins import Origins
from .peers import Peers
from .ring import LIMITED, OWN, RELAY, Ring

# Ticks and counters are 30-bit, sums written to stay small ints (ticks.py):
# (t - _MASK + d - 1) & _MASK is t + d, ((a - b ^ _HALF) & _MASK) - _HALF is a - b.
_MASK = const(0x3FFFFFFF)
_HALF = const(0x20000000)

# wire.py's values
_VERSION = const(2)
_DATA = const(1)
_DIGEST = const(2)
_REQUEST = const(3)
_DATA_HDR = const(16)
_DIGEST_HDR = const(16)
_REQUEST_HDR = const(8)
_ID_LEN = const(6)
_DIGEST_ENTRY = const(7)
_AGE_SHIFT = const(2)
_PRIO_MASK = const(0x03)
_F_AUTH = const(0x80)
_F_SYNC = const(0x02)
_F_ECHO = const(0x04)
_STAMP_LEN = const(4)
_ECHO_LEN = const(4)

# counters.py's indices
_FRAMES_IN = const(0)
_DELIVERED = const(3)
_PUBLISHED = const(4)
_DUPLICATES = const(5)
_MALFORMED = const(6)
_BAD_VERSION = const(7)
_EVICTED = const(8)
_EXPIRED = const(9)
_FORGOTTEN = const(12)
_BAD_TAG = const(16)
_RATE_LIMITED = const(18)
_QUOTA_EVICTED = const(19)

_NO_TIME = const(0)  # netclock.py's states
_SYNCED = const(2)
_FLOOD = const(0)  # Config.mode, as _mode holds it
_MODES = ("flood", "hybrid", "gossip")


def _no_radio(frame, to_peers):
    raise RuntimeError("no radio: call on_forward(cb)")


class Gossip:
    # the other modules' methods (top of this file); isort would list them one a line
    # isort: off
    from .antientropy import _ae_init, _build_digest, _digest, _request, _send_digest, digest
    from .antientropy import _trickle, _trickle_begin
    from .backbone import _ack_heard, _all_have, _bb_init, _relays_now, _silent_forwarder
    from .relay import _copy_heard, _disseminate, _peer_list, _relay_init, _relays, _round
    from .relay import _schedule, _send, _send_slot, _to_peer
    # isort: on
    # what _relay_init and _ae_init set up that is read here (for type checkers)
    _delay: int
    _interval: int
    _next_relay: int
    _relay_pending: bool
    _lists: list
    _t_fire: int
    _t_end: int
    _t_fired: bool

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
        self._mode = _MODES.index(c.mode)
        self._bcast = c.broadcast
        self._mtu = c.mtu
        # With a network key every frame ends in a stamp and a tag, and the
        # engine keeps a network clock (auth.py and netclock.NetClock,
        # allocated only then: an open mesh's board keeps that RAM)
        self._auth = None
        self._nc = None
        if key is not None:
            from .auth import Auth
            from .netclock import NetClock

            self._auth = Auth(key, c.tag_len, c.mtu)
            self._nc = NetClock(c, self._auth)
        self._trl = 0 if key is None else _STAMP_LEN + c.tag_len
        self._cfg_trl = _STAMP_LEN + c.tag_len  # what a keyless node strips from tagged frames
        mp = c.mtu - _DATA_HDR - self._trl
        self._max_payload = c.max_payload if c.max_payload < mp else mp
        # the Config fields the store path reads, as attributes
        self._quota = c.origin_quota or max(1, c.ring_slots // 4)
        self._rate = c.rate_limit
        self._burst = c.rate_burst
        self._orate = c.origin_rate
        self._age_max = c.max_message_age_ms
        self._hop_limit = c.hop_limit
        self._prune_every = c.prune_interval_ms
        self._peer_timeout = c.peer_timeout_ms
        # the tables
        self._dedup = Dedup(c.dedup_slots)
        self._peers = Peers(c.max_peers, c.addr_max)
        self._ring = Ring(c.ring_slots, c.mtu, self._dedup.slot, self._peers.w)
        self._origins = Origins(c.max_peers)
        self._tx = bytearray(c.mtu)  # digest / request scratch, exact length when sent
        self._blank = bytes(c.mtu)  # restores _tx to full length without allocating
        # counters.NAMES[i] is counter i (30-bit: they wrap as ticks do); a list,
        # as CPython indexes lists fastest, holding small ints: no allocation
        self.counters = [0] * len(NAMES)
        self._msg = Message()
        self._on_msg = None
        self._on_fwd = _no_radio
        self._on_evict = None
        self._running = False
        self._seq = 0
        self._seq0 = 0
        self._next_prune = 0  # tick of the next prune()
        self._relay_init(c)  # (relay.py)
        self._ae_init(c)  # (antientropy.py)
        self._bb_init(c)  # (backbone.py)

    # -- wiring ------------------------------------------------------------------
    def on_message(self, cb):
        self._on_msg = cb

    def on_forward(self, cb):
        self._on_fwd = cb

    def on_evict(self, cb):
        """cb(evicted, incoming): a live stored message (its frame, valid
        during the call) leaves the ring to make room for the frame incoming
        (ring or dedup bucket full, or its origin at quota; not on expiry).
        None: no callback."""
        self._on_evict = cb

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
        if self._nc is not None:
            self._nc.start(now, self._rand)

    def stop(self):
        self._running = False

    @property
    def running(self):
        return self._running

    @property
    def synced(self):
        """True once a keyed engine has the network time for certain (heard
        it, or stopped waiting for it); False without a key."""
        return self._nc is not None and self._nc.state == _SYNCED

    def _now(self):
        return self._clock() & _MASK

    def net_time(self):
        """The mesh's clock in 64 ms units (30 bits); -1 without a key, or
        before a valid stamp was heard or set_net_time() was called."""
        nc = self._nc
        return -1 if nc is None or nc.state == _NO_TIME else nc.now(self._now())

    def set_net_time(self, t):
        """Restore the network time saved before a reboot: a floor (frames
        stamped more than their age limit before it are replays); it never
        moves the clock back.  Without a key there is none: nothing happens."""
        if not isinstance(t, int) or not 0 <= t <= _MASK:
            raise ValueError("network time must be an int in 0..2**30-1, got %r" % (t,))
        if self._nc is not None:
            self._nc.restore(t, self._now())

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
        d = self._dedup
        i = d.find(khi, klo)
        if i >= 0:  # seq wrapped onto an id still remembered: forget it
            if d.slot[i] >= 0:
                self._ring.free(d.slot[i])
            d.remove(i)
        f = self._tx
        f[0:] = self._blank
        f[0] = (_VERSION << 4) | _DATA
        f[1] = priority if self._nc is None else priority | _F_AUTH
        f[2] = 0
        f[3] = self._hop_limit
        put_id(f, 4, self._me_hi, self._me_lo)
        put_id(f, 8, self._me_hi, self._me_lo)
        f[12] = seq >> 8
        f[13] = seq & 0xFF
        end = _DATA_HDR + n
        f[_DATA_HDR:end] = payload
        # (with a key: room for the stamp and tag, written at each send)
        f[end + self._trl:] = b""
        # our own message always gets a slot: it may evict even a message of
        # higher priority (the oldest of the lowest priority present), but
        # over our quota only one of our own
        s = self._slot_for(3, f, now)
        i = self._dedup_add(khi, klo, now, f)
        self._ring.put(s, f, priority, 0, now, i, -1, OWN)
        bump(self.counters, _PUBLISHED)
        if self._nc is not None and self._nc.state != _SYNCED:
            # our clock is not the mesh's yet: a stamp now could be far in
            # the past, and the tag would seal it in; sent once synced
            self._ring.hold(s)
        else:
            self._disseminate(s, priority, now, True, 0)
        return (self.node_id << 16) | seq

    # -- receive ------------------------------------------------------------------
    def receive(self, frame, from_peer=None, rssi=0):
        """Take a frame heard from the radio.  True when it carried a message
        new to this node.  Never raises on bad input: it counts and drops.
        rssi: dBm of this reception, 0 when the radio gives none."""
        c = self.counters
        # (bump() inlined here and in _data's duplicate path: run for every frame heard)
        c[_FRAMES_IN] = (c[_FRAMES_IN] - _MASK) & _MASK
        if not self._running:
            return False
        n = len(frame)
        if n < _REQUEST_HDR or n > self._mtu:
            c[_MALFORMED] = (c[_MALFORMED] - _MASK) & _MASK
            return False
        vt = frame[0]
        if vt >> 4 != _VERSION:
            bump(c, _BAD_VERSION)
            bump(c, _MALFORMED)
            return False
        t = vt & 0x0F
        # body: the frame without its stamp and tag
        fl = frame[1]
        nc = self._nc
        if nc is not None:
            if not fl & _F_AUTH:  # untagged: it can't be ours
                bump(c, _BAD_TAG)
                return False
            body = n - self._trl
        elif fl & _F_AUTH:  # tagged, and we have no key: carried as it is
            body = n - self._cfg_trl
        else:
            body = n
        if t == _DIGEST and fl & _F_ECHO and fl & _F_AUTH:
            body -= _ECHO_LEN  # the echoed nonce
        if t == _DATA:
            ok = body >= _DATA_HDR and frame[2] <= frame[3]
        elif t == _DIGEST:
            ok = body >= _DIGEST_HDR and body == _DIGEST_HDR + _DIGEST_ENTRY * frame[2] + 2 * frame[3]
        elif t == _REQUEST:
            ok = body == _REQUEST_HDR + _ID_LEN * frame[2] and frame[2] != 0
        else:
            ok = False
        if not ok:
            c[_MALFORMED] = (c[_MALFORMED] - _MASK) & _MASK
            return False
        shi = (frame[4] << 8) | frame[5]
        slo = (frame[6] << 8) | frame[7]
        if shi == self._me_hi and slo == self._me_lo:
            return False  # our own frame, echoed by the medium
        now = self._clock() & _MASK
        age = 0  # the age an authenticated stamp says (ms)
        if nc is not None:
            if t == _DATA and nc.state == _SYNCED and nc.idle_copy(self, frame):
                # a copy of a message we hold with no relay pending: dropped
                # unhashed (most copies a node hears).  Not before our clock is
                # set: a node that has only published syncs by copies of its own.
                c[_DUPLICATES] = (c[_DUPLICATES] - _MASK) & _MASK
                return False
            # checked before the frame touches any table: a forgery changes nothing
            age = nc.check_tag(self, frame, n, t, now)
            if age < 0:
                return False
        p = self._peers.hear(shi, slo, from_peer, now)
        if t == _DATA:
            return self._data(frame, body, p, now, rssi, age)
        if self._rate and p >= 0 and not self._peers.allow(p, now, self._rate, self._burst):
            bump(c, _RATE_LIMITED)
            return False
        if t == _DIGEST:
            if nc is not None and fl & _F_SYNC and nc.state == _SYNCED:
                # a question for the time (its stamp field is the nonce),
                # answered after a short random wait: another neighbour's
                # answer may do
                nc.to_answer(u30(frame, n - nc.trl), p, now, self._rand, 2 * self._delay + 2)
            self._digest(frame, n, p, now)
        else:
            self._request(frame, n, p, now)
        return False

    def _data(self, f, n, p, now, rssi, stamp_age):
        """A DATA frame from row p whose payload ends at n (a stamp and tag
        may follow); stamp_age: the age its authenticated stamp says (ms)."""
        khi = (f[8] << 16) | (f[9] << 8) | f[10]
        klo = (f[11] << 16) | (f[12] << 8) | f[13]
        c = self.counters
        d = self._dedup
        i = d.find(khi, klo)
        if i >= 0:
            # a duplicate: it may cancel our own pending rebroadcast
            c[_DUPLICATES] = (c[_DUPLICATES] - _MASK) & _MASK
            s = d.slot[i]
            if s >= 0 and self._ring.state[s] & RELAY:
                self._copy_heard(s, rssi, p, now)
            return False
        if n - _DATA_HDR > self._max_payload:
            bump(c, _MALFORMED)
            return False
        age = ((f[14] << 8) | f[15]) << _AGE_SHIFT
        if stamp_age > age:  # the authenticated stamp says older
            age = stamp_age
        if age > self._age_max:
            bump(c, _EXPIRED)
            return False
        if d.forgotten(khi, klo, (now - age) & _MASK):
            # born before the dedup table last forgot an id of its bucket: it
            # may be one we delivered already, so it is not delivered again
            bump(c, _FORGOTTEN)
            return False
        mine = khi == (self._me_hi << 8) | (self._me_lo >> 8) and (klo >> 16) == self._me_lo & 0xFF
        if mine and ((klo & 0xFFFF) - self._seq0) & 0xFFFF < (self._seq - self._seq0) & 0xFFFF:
            # ours, published since start(): a copy of one the dedup table
            # forgot (a node publishing faster than it remembers), never new
            bump(c, _DUPLICATES)
            return False
        # The sender's limit first: what it refuses must not count against the
        # origin (a replayer could make any origin look like a flooder); what the
        # origin's refuses is given back.  Not marked seen: it can come again.
        if self._rate and p >= 0 and not self._peers.allow(p, now, self._rate, self._burst):
            bump(c, _RATE_LIMITED)
            return False
        if self._orate and not self._origins.allow(khi, klo >> 16, now, self._orate, self._burst,
                                                   self._age_max):
            if self._rate and p >= 0:
                self._peers.refund(p, self._burst)
            bump(c, _RATE_LIMITED)
            return False
        prio = f[1] & _PRIO_MASK
        s = self._slot_for(prio, f, now)
        if s < 0:
            bump(c, _EVICTED)
            if s == -1:
                self._dedup_add(khi, klo, now, f)  # seen (no body): not requested again
            # (-2: not marked seen: once the origin's share frees up, a copy
            # or anti-entropy can still bring it)
            return False
        if mine:
            # one of our own messages from before a reboot: skip past its seq
            rs = klo & 0xFFFF
            if ((rs - self._seq) & 0xFFFF) < 0x8000:  # only ever forward
                self._seq = (rs + 1) & 0xFFFF
        i = self._dedup_add(khi, klo, now, f)
        hops = f[2]
        r = self._ring
        r.put(s, f, prio, hops + 1 if hops < 255 else 255, (now - age) & _MASK, i, p,
              LIMITED if hops >= f[3] else 0)
        # the stored copy is what we send: sender field = us
        g = r.frame[s]
        g[4] = self._me_hi >> 8
        g[5] = self._me_hi & 0xFF
        g[6] = self._me_lo >> 8
        g[7] = self._me_lo & 0xFF
        if self._nc is not None and self._nc.state != _SYNCED:
            # we can't tell yet whether its stamp is stale (our clock may lag
            # after a reboot): kept, neither delivered nor sent, until we have
            # the network time (NetClock.sync)
            r.quarantine(s)
            return False
        self._deliver(s, g, n, now)
        self._disseminate(s, prio, now, False, rssi)
        return True

    def _deliver(self, s, g, end, now):
        """Hand ring slot s (frame g, its payload ending at end) to the app."""
        bump(self.counters, _DELIVERED)
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

    # -- room in the tables ----------------------------------------------------------
    def _slot_for(self, prio, f, now):
        """A free ring slot for new frame f (priority prio), evicting if
        needed; -1 when every slot holds a message of higher priority, -2
        when f's origin is at its quota and all of its messages outrank f."""
        r = self._ring
        s = r.take(prio)
        if s < 0 or not r.used[s]:
            return s
        ohi = (f[8] << 16) | (f[9] << 8) | f[10]
        olo = f[11]
        if r.ohi[s] != ohi or r.olo[s] != olo:
            # fairness: the victim is another origin's; an origin at its
            # quota replaces its own messages only (when the victim is its
            # own already, as under its own flood, no count is needed)
            v = r.over_quota(ohi, olo, prio, self._quota)
            if v != -1:
                if v < 0:
                    return -2
                bump(self.counters, _QUOTA_EVICTED)
                s = v
        self._evict(s, f, now)
        return s

    def _evict(self, s, f, now):
        """Free ring slot s to make room for frame f (on_evict hears of it if
        it was live)."""
        bump(self.counters, _EVICTED)
        cb = self._on_evict
        if cb is not None and ((now - self._ring.born[s] ^ _HALF) & _MASK) - _HALF <= self._age_max:
            cb(self._ring.frame[s], f)
        self._ring.free(s)

    def _dedup_add(self, khi, klo, now, f):
        """Mark id (khi, klo) of frame f seen; its index in the dedup table."""
        d = self._dedup
        i = d.add(khi, klo, now)
        s = d.slot[i]
        if s >= 0:  # the entry replaced still had a body: drop the body too
            self._evict(s, f, now)
        return i

    # -- time ----------------------------------------------------------------------
    def tick(self):
        """Do whatever is due at clock(): relays, a round, a prune."""
        if not self._running:
            return
        now = self._clock() & _MASK  # (_now() inlined here and below: once a tick)
        if self._nc is not None:
            self._nc.tick(self, now)
        if self._relay_pending and ((now - self._next_relay ^ _HALF) & _MASK) - _HALF >= 0:
            self._relays(now)
        if self._mode != _FLOOD:
            if self._bcast:
                self._trickle(now)
            elif ((now - self._next_round ^ _HALF) & _MASK) - _HALF >= 0:
                self._round(now)
        if ((now - self._next_prune ^ _HALF) & _MASK) - _HALF >= 0:
            self._next_prune = (now - _MASK + self._prune_every - 1) & _MASK
            self.prune(now)

    def prune(self, now=None):
        """Drop expired bodies and ids seen long ago (tick() calls this)."""
        if now is None:
            now = self._now()
        n = self._ring.expire(now, self._age_max)
        if n:
            add(self.counters, _EXPIRED, n)
        d = self._dedup
        # ids are kept twice as long as bodies: a frame older than that is
        # refused for its age anyway
        if self._nc is not None:
            self._nc.now(now)  # (the clock must be advanced at least every 12 days)
        self._origins.expire(now)
        d.forget_older(now, 2 * self._age_max)
        d.expire_watermarks(now, self._age_max)
        self._peers.expire(now, self._peer_timeout)

    def next_deadline(self):
        """Milliseconds until tick() has something to do (>= 0)."""
        now = self._clock() & _MASK
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
        if self._nc is not None:
            best = self._nc.deadline(now, best)
        return best if best > 0 else 0

    # -- reporting -----------------------------------------------------------------
    def stats(self):
        now = self._now()
        s = {
            "message_count": self._ring.count,
            "seen_count": self._dedup.used,
            "peer_count": self._peers.count,
            "active_peer_count": self._peers.active_count(now, self._peer_timeout),
        }
        c = self.counters
        for i in range(len(NAMES)):
            s[NAMES[i]] = c[i]
        return s

    def memory_bytes(self):
        """Bytes of heap the state takes, all allocated in __init__ (see mem.py)."""
        c = self.config
        n = c.max_peers
        return (
            self._ring.memory_bytes()
            + self._dedup.memory_bytes()
            + self._peers.memory_bytes()
            + 2 * mem.buf(c.mtu) + mem.lst(len(NAMES))  # _tx, _blank; counters
            + 3 * mem.buf(n) + mem.buf(8) + mem.buf(c.ring_slots) + mem.buf(16)  # _cand, _senders, _mark, _cur, _live, _sum
            + mem.lst(len(self._lists)) + sum(mem.lst(len(x)) for x in self._lists)  # to_peers lists
            + mem.inst(self) + mem.inst(self._msg) + mem.inst(self._ring)
            + mem.inst(self._dedup) + mem.inst(self._peers)
            + self._origins.memory_bytes() + mem.inst(self._origins)
            + (0 if self._nc is None else self._nc.memory_bytes(mem))
        )

    def tables(self):
        """(ring, dedup, peers, origins), for tests and tools: read them only."""
        return self._ring, self._dedup, self._peers, self._origins

    def peers(self):
        """[(address or None, node id or None, ms since heard or None, static)]"""
        return self._peers.report(self._now())
