# Ring: the message bodies this node keeps, in slots allocated at boot.
#
# Each slot is a bytearray with room for a whole frame (mtu bytes).  A stored
# frame is set with `frame_ba[0:] = frame`, which MicroPython does in place
# (the bytearray keeps its capacity as spare room), so the slot always has
# the exact length of its frame and can be handed to the radio as it is: no
# copy into a scratch buffer, no memoryview slice, no allocation.
#
# Beside the bodies, parallel arrays hold what the engine needs per message:
# priority, when it was born (local tick at age 0), the hop count it will be
# sent with, and its dissemination state (pending relay, copies heard, push
# rounds left).  When the ring is full the lowest-priority message goes
# first, the oldest among equals.
#
# The ring owns the link between a body and its id in the dedup table: put()
# writes the dedup entry's slot (link[dix] = s), free() clears it, so a body
# and its id can never point at each other one way only.
#
# State bits (state[s]) change only through these methods:
#
#   bit      set by                        cleared by
#   RELAY    arm(s, due, need)             cancel(s); free(s)
#   COVER    arm(s, due, 0, COVER)         cancel(s); free(s)
#   WATCH    arm(s, due, left, COVER|WATCH) cancel(s); free(s)   (need[s]: resends left)
#   PUSH     push(s, rounds), rounds > 0   pushed(s) once its rounds are used; free(s)
#   LIMITED  put(..., LIMITED)             free(s)
#   OWN      put(..., OWN)                 free(s)
#   HELD     hold(s)                       release(s); free(s)
#   QUAR     quarantine(s)                 release(s); free(s)
#
# A slot is sendable when none of LIMITED, HELD, QUAR is set (UNSENDABLE).
# COVER and WATCH qualify a pending relay (RELAY): backbone.py decides it at
# its due time from who was heard sending the message (by[], the senders'
# rows as a bitmap, set by heard_from() from the first copy on).
#
# last, a 30-bit counter, moves on whenever a slot is filled or emptied or an
# UNSENDABLE bit changes (put, free, hold, quarantine, release); order[s] is
# its value when s was filled, so last - order[s] orders slots by insertion.
# The anti-entropy summary depends on nothing else but time: it is cached
# on last.
from array import array

try:
    from micropython import const
except ImportError:  # CPython
    const = lambda x: x  # noqa: E731

from . import mem
from .ticks import MASK

_HALF = const(0x20000000)

# state bits
RELAY = const(1)  # a broadcast of this slot is due at due[s]
PUSH = const(2)  # this slot still takes part in unicast push rounds
LIMITED = const(4)  # it arrived at its hop limit: kept and delivered, never sent
OWN = const(8)  # published here: with a key, stamped and signed afresh at each send
HELD = const(16)  # own, published before the network time was known: not sent yet
QUAR = const(32)  # heard before the network time was known: not delivered nor sent yet
UNSENDABLE = const(52)  # LIMITED | HELD | QUAR
COVER = const(64)  # the pending relay goes only if a neighbour may still lack it
WATCH = const(128)  # sent already: the pending "relay" is the check for a silent forwarder


class Ring:
    def __init__(self, slots, frame_cap, link, row_bytes=0):
        # link: the dedup table's slot array (dedup.Dedup.slot), kept in step;
        # row_bytes: bytes of a peer-row bitmap (peers.Peers.w), for by[]
        self.slots = slots
        self.w = row_bytes
        self.by = bytearray(slots * row_bytes)  # rows heard sending slot s: by[s*w:(s+1)*w]
        self.cap = frame_cap
        self._link = link
        self.frame = [bytearray(frame_cap) for _ in range(slots)]
        self.used = bytearray(slots)  # 1 when the slot holds a message
        self.prio = bytearray(slots)
        self.hops = bytearray(slots)  # hop count written into the frame when sent
        self.state = bytearray(slots)  # the bits above
        self.heard = bytearray(slots)  # copies heard while a relay was pending
        self.need = bytearray(slots)  # copies that cancel the pending relay (0: never)
        self.pushes = bytearray(slots)  # unicast push rounds left
        self.born = array("i", [0] * slots)  # local tick at which the age was 0
        self.due = array("i", [0] * slots)  # tick of the pending relay
        self.order = array("i", [0] * slots)  # last when filled (digests list newest first)
        self.dix = array("i", [-1] * slots)  # index of the id in the dedup table
        self.src = array("h", [-1] * slots)  # peer it came from, -1 for own/unknown
        # the origin of each message (bytes 8..11 of its frame, as 24 + 8
        # bits: small ints on a 32-bit board), for the per-origin quota
        self.ohi = array("i", [0] * slots)
        self.olo = bytearray(slots)
        # Slots are chained in insertion order, one chain per priority, so the
        # message to evict (oldest of the lowest priority) is a chain's head:
        # O(1), not a scan.  Free slots are chained through nxt too.
        self.nxt = array("h", [-1] * slots)
        self.prv = array("h", [-1] * slots)
        self.head = array("h", [-1] * 4)  # per priority: oldest
        self.tail = array("h", [-1] * 4)  # per priority: newest
        for s in range(slots - 1):
            self.nxt[s] = s + 1
        self.spare = 0  # head of the free chain (-1: the ring is full)
        self.count = 0
        self.last = 0  # the ring's change counter (the top of this file)
        for f in self.frame:
            f[0:] = b""  # length 0, capacity kept

    def memory_bytes(self):
        n = self.slots
        return (
            mem.lst(n) + n * mem.buf(self.cap)  # the bodies
            + 8 * mem.buf(n)  # used, prio, hops, state, heard, need, pushes, olo
            + 5 * mem.buf(4 * n)  # born, due, order, dix, ohi
            + 3 * mem.buf(2 * n)  # src, nxt, prv
            + 2 * mem.buf(8)  # head, tail
            + mem.buf(n * self.w)  # by
        )

    # -- slots ----------------------------------------------------------------
    def take(self, prio):
        """A slot for a message of priority prio.

        When used[slot] is set the slot still holds the message to evict (the
        oldest of the lowest priority): the caller frees it before put().
        Returns -1 when every slot holds a message of higher priority.
        (One int, not a tuple: this runs on the receive path, heap locked.)
        """
        if self.spare >= 0:
            return self.spare
        hd = self.head
        for p in range(prio + 1):
            if hd[p] >= 0:
                return hd[p]
        return -1

    def full(self):
        return self.spare < 0

    def over_quota(self, ohi, olo, prio, quota):
        """When origin (ohi, olo) holds quota slots or more: its oldest
        message of priority <= prio, the one a new message of it replaces
        (-2 if all of its messages outrank prio).  -1 when under quota."""
        used = self.used
        oh = self.ohi
        ol = self.olo
        od = self.order
        pr = self.prio
        n = 0
        best = -2
        bo = 0
        base = self.last
        for s in range(self.slots):
            if oh[s] == ohi and used[s] and ol[s] == olo:  # (the rarest test first)
                n += 1
                if pr[s] <= prio:
                    # ring changes since: a small int even after the counter wraps
                    v = (base - od[s]) & MASK
                    if best < 0 or v > bo:
                        best = s
                        bo = v
        return best if n >= quota else -1

    def put(self, s, frame, prio, hops, born, dix, src, state):
        """Store frame in free slot s (one take() returned), its id at index
        dix of the dedup table (linked here), with state bits state (0,
        OWN or LIMITED)."""
        nxt = self.nxt
        # off the free chain
        if self.spare == s:
            self.spare = nxt[s]
        else:  # not the head: walk to it (take() always hands out the head)
            k = self.spare
            while nxt[k] != s:
                k = nxt[k]
            nxt[k] = nxt[s]
        # onto the tail of its priority's chain
        t = self.tail[prio]
        self.prv[s] = t
        nxt[s] = -1
        if t >= 0:
            nxt[t] = s
        else:
            self.head[prio] = s
        self.tail[prio] = s
        self.frame[s][0:] = frame
        self.used[s] = 1
        self.count += 1
        self.prio[s] = prio
        self.hops[s] = hops
        self.state[s] = state
        self.heard[s] = 0
        self.pushes[s] = 0
        w = self.w
        by = self.by
        for b in range(s * w, s * w + w):
            by[b] = 0
        self.born[s] = born
        self.dix[s] = dix
        self._link[dix] = s
        self.src[s] = src
        self.ohi[s] = (frame[8] << 16) | (frame[9] << 8) | frame[10]
        self.olo[s] = frame[11]
        self.last = (self.last - MASK) & MASK
        self.order[s] = self.last

    def free(self, s):
        """Empty slot s (if used), unlinking its dedup entry: the id stays
        seen, its body is gone."""
        if not self.used[s]:
            return
        nxt = self.nxt
        prv = self.prv
        p = self.prio[s]
        a = prv[s]
        b = nxt[s]
        if a >= 0:
            nxt[a] = b
        else:
            self.head[p] = b
        if b >= 0:
            prv[b] = a
        else:
            self.tail[p] = a
        nxt[s] = self.spare
        self.spare = s
        self.used[s] = 0
        self.count -= 1
        self.state[s] = 0
        i = self.dix[s]
        if i >= 0:
            self._link[i] = -1
        self.dix[s] = -1
        self.frame[s][0:] = b""
        self.last = (self.last - MASK) & MASK

    def expire(self, now, age_max):
        """Free every slot older than age_max ms at tick now; how many."""
        born = self.born
        n = 0
        for s in range(self.slots):
            if self.used[s] and ((now - born[s] ^ _HALF) & MASK) - _HALF > age_max:
                self.free(s)
                n += 1
        return n

    # -- state bits (the table at the top) --------------------------------------
    def arm(self, s, due, need, how=0):
        """A broadcast of slot s is due at tick due, unless need copies
        (0: any number) are heard first; how: 0, COVER or COVER | WATCH."""
        self.due[s] = due
        self.heard[s] = 0
        self.need[s] = need
        self.state[s] = (self.state[s] & ~(COVER | WATCH)) | RELAY | how

    def cancel(self, s):
        """No broadcast of slot s is pending any more."""
        self.state[s] &= ~(RELAY | COVER | WATCH)

    def sent_by(self, s, k):
        """Row k was heard sending slot s's message."""
        return self.by[s * self.w + (k >> 3)] >> (k & 7) & 1

    def heard_from(self, s, k):
        """Row k was heard sending slot s's message (k < 0: unknown sender)."""
        if 0 <= k and self.w:
            self.by[s * self.w + (k >> 3)] |= 1 << (k & 7)

    def copy_heard(self, s):
        """One more copy of slot s heard while its relay waits: how many now
        (at most 255)."""
        h = self.heard[s]
        if h < 255:
            h += 1
            self.heard[s] = h
        return h

    def push(self, s, rounds):
        """Slot s takes part in the next `rounds` unicast push rounds."""
        self.pushes[s] = rounds
        if rounds:
            self.state[s] |= PUSH

    def pushed(self, s):
        """Slot s went out in one more push round."""
        left = self.pushes[s] - 1
        self.pushes[s] = left
        if left <= 0:
            self.state[s] &= ~PUSH

    def hold(self, s):
        """Own slot s waits for the network time before it is sent."""
        self.state[s] |= HELD
        self.last = (self.last - MASK) & MASK

    def quarantine(self, s):
        """Slot s, heard before the network time was known, is neither
        delivered nor sent until release()."""
        self.state[s] |= QUAR
        self.last = (self.last - MASK) & MASK

    def release(self, s):
        """Slot s leaves hold or quarantine."""
        self.state[s] &= ~(HELD | QUAR)
        self.last = (self.last - MASK) & MASK
