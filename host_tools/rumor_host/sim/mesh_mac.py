"""Managed flooding's radio interface in the run: the engine's side of
managed.py (the Meshtastic rules in numbers).

A node of a `mac="meshtastic"` strategy hands every broadcast DATA frame its
core forwards (the core floods at once: relay_delay_ms 0) to `hold()`
instead of the radio queue.  The frame waits in the node's PendingQueue:
a relay (forwarded while receive() handled the first copy) for the client
or router delay of its copy's SNR, the node's own message for the
own-packet delay.  When the earliest wait is over (a RELAY event,
`on_relay`) the frame goes to the radio queue: on ESP-NOW through CSMA/CA
as any frame; on LoRa the CAD before it (engine `_on_tx_try`) decides, and a
busy channel sends it back to wait a fresh delay (`cad_busy`, Meshtastic's
re-arm) instead of the adapter's backoff.  Every copy heard of a message
whose relay still waits, in the PendingQueue or in the radio queue (not yet
on air), cancels that relay (`copy_heard`), unless the role is ROUTER.

Delays draw from their own generator, `relay/<seed>`, so adding this MAC
moves no other stream.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from rumor import wire as W

from . import managed as M
from .events import RELAY, TX_TRY

if TYPE_CHECKING:
    from .node import NodeHost

_T_DATA = W.DATA


class MeshtasticMac:
    """Managed flooding's delays, re-arm and cancel for one run."""

    def __init__(self, engine: Any, role: str, slot_us: int, sf: int, seed: int):
        self.eng = engine
        self.role = role
        self.cancels = role != M.ROUTER
        self.slot = slot_us
        self.sf = sf
        self.randbits = random.Random(f"relay/{seed}").getrandbits
        self.own_worst = M.worst_slots(M.cw_from_snr(0))  # own packets: rx_snr 0

    # -- a frame from the core ------------------------------------------------
    def hold(self, h: NodeHost, frame: bytes) -> None:
        """A broadcast the core forwarded: DATA waits its delay; anything
        else (no core of flood mode sends it) goes to the radio at once."""
        if (frame[0] & 15) != _T_DATA or len(frame) < 14:
            h.queue(frame, -1)
            return
        key = frame[8:14]
        now = self.eng.loop.now
        rb = self.randbits
        if h.rx_now is not None:  # forwarded from receive(): a relay
            cw = M.cw_from_snr(M.snr_db(h.rx_now, self.sf))
            h.heard[key] = cw
            slots = M.relay_slots(cw, self.role, rb)
        else:  # published here
            cw = -1
            slots = M.own_slots(0.0, rb)
        h.pend.push(now + slots * self.slot, frame, key, cw)
        self._schedule(h)

    def _schedule(self, h: NodeHost) -> None:
        """A RELAY event at the earliest wait's end, unless one is due sooner."""
        nt = h.pend.next_at()
        if nt < 0:
            return
        now = self.eng.loop.now
        if nt < now:
            nt = now
        ra = h.relay_at
        if ra >= now and ra <= nt:
            return
        h.relay_at = nt
        self.eng.loop.at(nt, RELAY, h.v, h.epoch)

    # -- the events -----------------------------------------------------------
    def on_relay(self, t: int, v: int, epoch: int) -> None:
        """The wait of a node's earliest held frame(s) is over: to the radio."""
        h = self.eng.hosts[v]
        if epoch != h.epoch or not h.up or t != h.relay_at:
            return  # stale: rebooted, or replaced by an earlier RELAY
        h.relay_at = -1
        p = h.pend
        while len(p) and p.next_at() <= t:
            h.queue(p.pop()[2], -1)
        self._schedule(h)

    def cad_busy(self, h: NodeHost, t: int) -> None:
        """The CAD before the radio queue's head found the channel busy:
        Meshtastic draws the wait again and holds the frame meanwhile."""
        frame = h.txq.popleft()[0]
        key = frame[8:14]
        cw = h.heard.get(key, -1) if (frame[0] & 15) == _T_DATA else -2
        if cw == -2:  # not DATA: back at the head, after one more slot
            h.txq.appendleft((frame, -1, 0, False))
            self.eng.loop.at(t + self.slot, TX_TRY, h.v, h.epoch)
            return
        rb = self.randbits
        if cw >= 0:
            add = M.relay_slots(cw, self.role, rb)
            worst = M.worst_slots(cw)
        else:
            add = M.own_slots(0.0, rb)
            worst = self.own_worst
        h.pend.push(M.rearm(t, add * self.slot, worst * self.slot), frame, key, cw)
        self._schedule(h)
        if h.txq:
            self.eng.loop.at(t, TX_TRY, h.v, h.epoch)
        else:
            h.busy = False

    def copy_heard(self, h: NodeHost, frame: Any) -> None:
        """h heard a copy of a message it knew (receive() said not new):
        its relay, if one still waits, is cancelled."""
        if not self.cancels or len(frame) < 14 or (frame[0] & 15) != _T_DATA:
            return
        key = bytes(frame[8:14])
        if key not in h.heard:
            return  # not one we relay (our own, or never heard new)
        n = h.pend.cancel(key)
        q = h.txq
        if q:
            keep = [it for it in q if it[0][8:14] != key]
            if len(keep) != len(q):
                n += len(q) - len(keep)
                q.clear()
                q.extend(keep)
        if n:
            self.eng.ledger.ctr["relays_cancelled"] += n

    def reboot(self, h: NodeHost) -> None:
        """h lost power: what it held is gone."""
        h.pend.clear()
        h.relay_at = -1
        h.heard.clear()
        h.rx_now = None
