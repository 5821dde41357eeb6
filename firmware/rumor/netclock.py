# NetClock: the network time of a keyed engine, the stamps and tags that
# carry it on the wire, learning it by nonce, and the quarantine of what was
# heard before it was known.  An engine without a key has none of this
# (Gossip._nc is None and nothing here is allocated).
#
# Network time runs in 64 ms units (30 bits): the largest stamp heard,
# advanced by our own clock.  Stamps are what make a replay of an old frame
# recognisable after its id has left the dedup table.  A node learns the time
# in one of three ways, each a step of its state:
#
#   state    meaning                                  how it is entered
#   NO_TIME  no clock: stamps cannot be judged        boot
#   FLOOR    a lower bound: restored (set_net_time)   set_net_time(), or the
#            or caught up from a stamp heard          first valid stamp heard
#   SYNCED   the mesh's time, for certain: held       the answer to our nonce,
#            messages go out, quarantine is released  or sync_wait_ms passed
#
# It never steps back.  Until SYNCED a node asks with its digests (F_SYNC: the
# stamp field carries a nonce) and neighbours that know answer (F_ECHO: the
# nonce echoed before their stamp).
#
# Gossip.__init__ imports this module only when it is given a key, as it does
# auth.py: an open mesh's board keeps the RAM their code takes.  The engine
# calls the methods at the end of NetClock with itself (g) as argument.
try:
    from micropython import const
except ImportError:  # CPython
    const = lambda x: x  # noqa: E731

from array import array

from .counters import bump
from .message import put_u30, u30
from .ring import HELD, QUAR, RELAY

_MASK = const(0x3FFFFFFF)
_HALF = const(0x20000000)
# wire.py's values (checked by tests/host/test_consts.py)
_DATA = const(1)
_DIGEST = const(2)
_F_SYNC = const(0x02)
_F_ECHO = const(0x04)
_NET_SHIFT = const(6)
_STAMP_LEN = const(4)
_ECHO_LEN = const(4)
# counters.py's indices
_DUPLICATES = const(5)
_EXPIRED = const(9)
_DIGESTS_OUT = const(13)
_BAD_TAG = const(16)
_STALE = const(17)

# the states (above)
NO_TIME = const(0)
FLOOR = const(1)
SYNCED = const(2)

_ASKERS = const(4)  # questions for the time we answer at once
_CTL_SEEN = const(8)  # recent digests/requests remembered, against their replay


def _ctl_key(f, n):
    """What identifies a digest or request among recent ones: its sender and
    the first tag bytes (with the stamp, see NetClock.replayed)."""
    return (f[4] << 22) ^ (f[5] << 14) ^ (f[6] << 6) ^ f[7] ^ (f[n - 1] << 8) ^ f[n - 2]


class NetClock:
    def __init__(self, c, auth):
        self.auth = auth  # auth.Auth: the key's HMAC
        self.trl = _STAMP_LEN + c.tag_len  # stamp + tag at the end of every frame
        self.net = 0  # network time at tick at
        self.at = 0
        self.state = NO_TIME
        self.sync_by = 0  # tick at which a node not SYNCED stops waiting
        w = c.max_message_age_ms >> 1
        self.wait = c.sync_wait_ms if c.sync_wait_ms < w else w
        self.nonce = 0  # ours, while we ask
        self.ask_at = 0  # when we ask next, while not SYNCED
        self.ask_every = c.gossip_interval_ms >> 1 if c.gossip_interval_ms >= 100 else 50
        self.age_max_u = c.max_message_age_ms >> _NET_SHIFT
        self.window_u = c.auth_window_ms >> _NET_SHIFT
        # questions for the time waiting for our answer: nonce and asker's
        # peer row (for a unicast answer), answered in turn from tick()
        self.eq = array("i", [0] * _ASKERS)
        self.erow = array("h", [-1] * _ASKERS)
        self.en = 0
        self.e_at = 0  # when the next answer is due
        # nonces answered lately, and when: a question repeated (or replayed)
        # sooner than an asker asks again gets no second answer
        self.dq = array("i", [-1] * _ASKERS)
        self.dt = array("i", [0] * _ASKERS)
        self.di = 0
        # recent DIGEST/REQUEST frames (sender, stamp, first tag bytes): an
        # exact repeat within auth_window_ms is a replay, dropped unhashed
        self.cs = array("i", [0] * _CTL_SEEN)
        self.ct = array("i", [-1] * _CTL_SEEN)
        self.ci = 0

    def memory_bytes(self, mem):
        return (mem.inst(self) + 3 * mem.buf(4 * _ASKERS) + mem.buf(2 * _ASKERS)  # eq, dq, dt; erow
                + 2 * mem.buf(4 * _CTL_SEEN) + self.auth.memory_bytes(mem))  # cs, ct

    def start(self, now, rand):
        self.sync_by = (now - _MASK + self.wait - 1) & _MASK
        self.nonce = ((rand(16) << 14) ^ rand(16)) & _MASK
        self.ask_at = (now - _MASK + rand(16) % self.ask_every - 1) & _MASK

    def now(self, now):
        """The network time at tick now (advancing it)."""
        el = (now - self.at) & _MASK
        if el >= 1 << _NET_SHIFT:
            k = el >> _NET_SHIFT
            self.net = (self.net - _MASK + k - 1) & _MASK
            self.at = (self.at - _MASK + (k << _NET_SHIFT) - 1) & _MASK
        return self.net

    def set(self, t, now):
        """The network time is t at tick now (no state change)."""
        self.net = t
        self.at = now

    def restore(self, t, now):
        """set_net_time(t): a floor, never a step back."""
        if self.state != NO_TIME and ((t - self.now(now) ^ _HALF) & _MASK) - _HALF <= 0:
            return
        self.net = t
        self.at = now
        if self.state == NO_TIME:
            self.state = FLOOR

    def age(self, st, now):
        """How far stamp st lies behind the network time (64 ms units,
        signed: negative when it is ahead)."""
        return ((self.now(now) - st ^ _HALF) & _MASK) - _HALF

    # -- control frames heard lately --------------------------------------------
    def replayed(self, f, n, st):
        """True when digest/request f (n bytes, stamp st) repeats one heard
        lately."""
        sk = _ctl_key(f, n)
        cs = self.cs
        ct = self.ct
        for j in range(_CTL_SEEN):
            if ct[j] == st and cs[j] == sk:
                return True
        return False

    def remember(self, f, n, st):
        i = self.ci
        self.cs[i] = _ctl_key(f, n)
        self.ct[i] = st
        self.ci = (i + 1) % _CTL_SEEN

    # -- answering questions for the time ---------------------------------------
    def to_answer(self, nonce, p, now, rand, span):
        """Queue an answer to a question for the time (nonce, from row p):
        the first one queued is due after a random wait below span ms."""
        for j in range(self.en):
            if self.eq[j] == nonce:
                return
        for j in range(_ASKERS):
            if self.dq[j] == nonce and ((now - self.dt[j]) & _MASK) < (self.ask_every >> 1):
                return
        if self.en >= _ASKERS:
            return  # they ask again
        if self.en == 0:  # a short random wait: another neighbour's answer may do
            self.e_at = (now - _MASK + rand(16) % span - 1) & _MASK
        self.eq[self.en] = nonce
        self.erow[self.en] = p
        self.en += 1

    def answered(self, nonce):
        """The question with nonce needs no answer (any more) from us."""
        n = self.en
        for j in range(n):
            if self.eq[j] == nonce:
                for k in range(j, n - 1):
                    self.eq[k] = self.eq[k + 1]
                    self.erow[k] = self.erow[k + 1]
                self.en = n - 1
                return

    def deadline(self, now, best):
        """best, or the ms until our next question or answer if sooner."""
        if self.state != SYNCED:
            w = ((self.ask_at - now ^ _HALF) & _MASK) - _HALF
            if w < best:
                best = w
            w = ((self.sync_by - now ^ _HALF) & _MASK) - _HALF
            if w < best:
                best = w
        elif self.en:
            w = ((self.e_at - now ^ _HALF) & _MASK) - _HALF
            if w < best:
                best = w
        return best

    def next_answer(self, now):
        """The nonce of the question to answer now (dequeued and remembered
        as answered), or -1.  (Its asker's row was erow[0].)"""
        if not self.en or ((now - self.e_at ^ _HALF) & _MASK) - _HALF < 0:
            return -1
        nonce = self.eq[0]
        self.answered(nonce)
        self.dq[self.di] = nonce
        self.dt[self.di] = now
        self.di = (self.di + 1) % _ASKERS
        return nonce

    # -- what the engine hands over (g: the Gossip) ----------------------------
    def idle_copy(self, g, f):
        """True when DATA frame f has an id we have seen and would do nothing
        with: no body left, or a body with no relay waiting to be cancelled."""
        i = g._dedup.find((f[8] << 16) | (f[9] << 8) | f[10], (f[11] << 16) | (f[12] << 8) | f[13])
        if i < 0:
            return False
        s = g._dedup.slot[i]
        return s < 0 or not g._ring.state[s] & RELAY

    def check_tag(self, g, f, n, t, now):
        """A tagged frame's stamp and tag: -1 (counted) for a replay or a
        forgery; else the age in ms its stamp says (0 when it says nothing)."""
        c = g.counters
        o = n - self.trl
        st = u30(f, o)
        # a node asking for the time has no clock: its stamp field is a nonce
        ask = t == _DIGEST and f[1] & _F_SYNC
        d = 0
        if t != _DATA and not ask and self.replayed(f, n, st):
            bump(c, _DUPLICATES)
            return -1
        if not ask and self.state != NO_TIME:
            d = self.age(st, now)
            if d > (self.age_max_u if t == _DATA else self.window_u):
                bump(c, _STALE)
                # A stale digest is a replay, or a neighbour whose clock lags (it
                # ran on its own after nobody told it the time): our next digest,
                # even an empty one, tells it.  (Once per Trickle interval: a
                # replayer can't make us send more.)  Anything else stale is
                # dropped before hashing.
                if t == _DIGEST and self.state == SYNCED and not g._owe and self.auth.verify(f, n, False):
                    g._owe = True  # (one hash per digest we send, at most)
                return -1
        if not self.auth.verify(f, n, t == _DATA):
            bump(c, _BAD_TAG)
            return -1
        if ask:
            return 0  # (answered in receive(), once the rate limit let it through)
        if t != _DATA:
            self.remember(f, n, st)
        if t == _DIGEST and f[1] & _F_ECHO:
            e = u30(f, o - _ECHO_LEN)
            if self.state == SYNCED:
                self.answered(e)  # somebody else answered it: we need not
            elif e == self.nonce:
                # the answer to our question, from a key holder, made after we
                # asked: the network time, for certain
                self.set(st, now)
                self.sync(g, now)
                return 0
        if d < 0 or self.state == NO_TIME:
            # the mesh's clock is ahead of ours (or we had none): catch up
            self.set(st, now)
            if self.state == NO_TIME:
                self.state = FLOOR
            d = 0
        # rounded up: a replay must never look younger than the first copy did
        return (d + 1) << _NET_SHIFT

    def sync(self, g, now):
        """We have the network time (or stopped waiting for it): send what we
        held, and deliver what we kept in quarantine, unless its stamp now shows
        it stale (a replay that came in while we could not tell)."""
        self.state = SYNCED
        r = g._ring
        c = g.counters
        net = self.now(now)
        trl = self.trl
        for s in range(r.slots):
            if not r.used[s]:
                continue
            st = r.state[s]
            if st & HELD:
                r.release(s)
                g._disseminate(s, r.prio[s], now, True, 0)
            elif st & QUAR:
                f = r.frame[s]
                o = len(f) - trl
                if ((net - u30(f, o) ^ _HALF) & _MASK) - _HALF > self.age_max_u:
                    bump(c, _STALE)
                    r.free(s)  # (the id stays seen)
                    continue
                if ((now - r.born[s] ^ _HALF) & _MASK) - _HALF > g._age_max:
                    bump(c, _EXPIRED)  # too old by its wire age
                    r.free(s)
                    continue
                r.release(s)
                g._deliver(s, f, o, now)
                g._disseminate(s, r.prio[s], now, False, 0)

    def tick(self, g, now):
        """Ask for the time while we don't know it; answer those who ask."""
        if self.state != SYNCED:
            if ((now - self.sync_by ^ _HALF) & _MASK) - _HALF >= 0:
                self.sync(g, now)  # nobody told us the time: ours is the mesh's
            elif ((now - self.ask_at ^ _HALF) & _MASK) - _HALF >= 0:
                # in every mode, whatever Trickle would do: a question suppressed
                # by others' digests is a node left unsynced
                self.ask_at = (now - _MASK + self.ask_every - 1) & _MASK
                f = g._build_digest(now, -1)
                c = g.counters
                bump(c, _DIGESTS_OUT)
                if g._bcast:
                    g._send(f, None)
                else:
                    lst = g._peer_list(-1, now, 255)
                    if lst is not None:
                        g._send(f, lst)
            return
        row = self.erow[0]
        nonce = self.next_answer(now)
        if nonce >= 0:
            f = g._build_digest(now, nonce)
            c = g.counters
            bump(c, _DIGESTS_OUT)
            if g._bcast:
                g._send(f, None)
            else:
                to = g._to_peer(row)
                if to is not None:
                    g._send(f, to)
            self.e_at = (now - _MASK) & _MASK  # the next one waits a millisecond at least

    def seal(self, f, end, now, data):
        """Finish frame f, whose body ends at end: stamp and tag it."""
        put_u30(f, end, self.now(now))
        f[end + self.trl:] = b""
        self.auth.sign(f, data)

    def stamp_own(self, f, age, now):
        """Stamp and sign our own DATA frame f, age ms old, as it goes out:
        publish time = now - its age, in network time."""
        put_u30(f, len(f) - self.trl, (self.now(now) - ((age + 63) >> _NET_SHIFT)) & _MASK)
        self.auth.sign(f, True)
