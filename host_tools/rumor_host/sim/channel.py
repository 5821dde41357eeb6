"""The medium: channel access, collisions, half duplex, loss, ACK and retry.

What the radio model (radio.py) says in numbers, this module does in time:

- access: before each frame an ESP-NOW radio waits DIFS plus a random
  backoff of 0..cw slots (CSMA/CA) and, while it hears a frame, until that
  frame ends (carrier sense); LoRa listens before it talks with the LoRa
  adapter's CAD and backoff (the engine's TX_TRY, `cad_busy` here,
  lora_access.py; `SimParams.cad`);
- collisions: on ESP-NOW a reception is lost when another frame overlaps it
  at the receiver (no capture: both are lost), whoever sent the other one;
  on LoRa each receiver's AirState decides (lora_access.py): the frame it
  locked on first survives an overlap `capture_db` weaker (capture);
- half duplex: a node that starts sending loses what it was hearing, and
  does not hear what arrives while it sends;
- loss: each reception that survived is lost with probability `loss`
  (independently per receiver; a unicast's ACK may be lost too);
- ACK and retry: an ESP-NOW unicast is acknowledged by the receiver's MAC
  (SIFS + ACK airtime); unacknowledged, it is sent again up to `retries`
  times (the receiver hands a retry's frame to its core only if no earlier
  attempt got through); broadcasts are never acknowledged.

Every random draw (loss, backoff) comes from one generator, `mac/<seed>`,
in the order the events happen.  The per-node radio state (tx_end, rx_end,
rx_cur) lives on the NodeHost and is only touched here.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .radio import Radio

if TYPE_CHECKING:
    from .node import NodeHost


class Tx:
    """A frame on air, from TX_TRY to TX_END."""

    __slots__ = (
        "frame",
        "dest",  # receiver index, -1 for a broadcast
        "att",  # attempt: 0 first, then MAC retries
        "delivered",  # an earlier attempt of this unicast reached the receiver's core
        "epoch",  # the sender's boot: a frame of a node that went down is never delivered
        "bad",  # receivers at which it collided (None: none yet)
    )

    def __init__(self, frame: bytes, dest: int, att: int, delivered: bool, epoch: int):
        self.frame = frame
        self.dest = dest
        self.att = att
        self.delivered = delivered
        self.epoch = epoch
        self.bad: set[int] | None = None

    def spoil(self, u: int) -> None:
        """Receiver u will not hear this frame (an overlap, or u's own send)."""
        if self.bad is None:
            self.bad = {u}
        else:
            self.bad.add(u)


class Channel:
    """The shared medium of one run: who hears which frame."""

    def __init__(self, radio: Radio, loss: float, seed: int, hosts: list[NodeHost],
                 ctr: dict[str, int], cut: bool, capture_db: float | None = None,
                 cad_us: int = 0, cad_listen_us: float = 0.0, t_sym_us: float = 0.0):
        self.radio = radio
        # LoRa (lora_access.py): receptions by AirState, with capture at
        # capture_db (None: none); cad_us: one CAD (0: no listen before talk)
        self.lora = radio.name.startswith("lora")
        self.capture_db = capture_db
        self.cad_us = cad_us
        self.cad_listen_us = cad_listen_us  # the part of a CAD that listens
        self.t_sym_us = t_sym_us  # a frame must be on air that long of it to be seen
        self.csma = radio.csma
        self.mac_ack = radio.mac_ack
        self.retries = radio.retries
        self.difs = radio.difs_us
        self.slot = radio.slot_us
        self.cw = radio.cw
        self.ack_us = radio.ack_us()
        self.loss = loss
        mac = random.Random(f"mac/{seed}")  # channel: loss, backoff
        self.rand = mac.random
        self.randint = mac.randrange
        self.randbits = mac.getrandbits
        self.hosts = hosts
        self.ctr = ctr  # the run's counters (accounting.py): collided, lost, unacked, ack airtime
        self.cut = cut  # the partition is on: no link across x = 0.5
        # airtime of a frame of each length a radio can send (0..255 bytes)
        self.air_us = [radio.airtime_us(b) for b in range(256)]

    # -- access ---------------------------------------------------------------
    def access(self) -> int:
        """us from wanting the air to trying it: DIFS + backoff (CSMA), else 0."""
        return self.difs + self.randint(self.cw + 1) * self.slot if self.csma else 0

    def sensed_busy(self, h: NodeHost, t: int) -> int:
        """Carrier sense at t: the end of the frame h hears (0: idle or no sensing)."""
        if self.csma and h.rx_end > t:
            return h.rx_end
        return 0

    def airtime(self, nbytes: int) -> int:
        """us on air of a frame of nbytes."""
        return self.air_us[nbytes] if nbytes < 256 else self.radio.airtime_us(nbytes)

    # -- on air ---------------------------------------------------------------
    def transmit(self, h: NodeHost, tx: Tx, t: int, air: int) -> None:
        """h starts sending tx at t for air us: mark what it spoils."""
        if self.lora:
            self._transmit_lora(h, tx, t, air)
            return
        e = t + air
        h.tx_end = e
        if h.rx_end > t and h.rx_cur is not None:
            h.rx_cur.spoil(h.v)  # half duplex: what h was hearing is lost
        cut = self.cut
        sv = h.side
        for hu in h.nbh:
            if cut and hu.side != sv:
                continue
            if hu.tx_end > t or hu.rx_end > t:
                # hu is sending (half duplex) or hearing another frame: it
                # gets neither (Tx.spoil, inline: this loop runs for every
                # neighbour of every frame)
                b = tx.bad
                if b is None:
                    tx.bad = {hu.v}
                else:
                    b.add(hu.v)
                if hu.rx_end > t:
                    cur = hu.rx_cur
                    if cur is not None:
                        b = cur.bad
                        if b is None:
                            cur.bad = {hu.v}
                        else:
                            b.add(hu.v)
            if e > hu.rx_end:
                hu.rx_end = e
                hu.rx_cur = tx

    def _transmit_lora(self, h: NodeHost, tx: Tx, t: int, air: int) -> None:
        """transmit() on LoRa: each receiver's AirState decides (capture,
        half duplex), and what it was locked on may be lost."""
        e = t + air
        h.tx_end = e
        lost = h.air.sending(t)  # half duplex: what h was receiving is lost
        if lost is not None:
            lost.spoil(h.v)
        cut = self.cut
        sv = h.side
        cap = self.capture_db
        rs = h.rssi  # (links are symmetric: what h measures of u, u of h)
        nbh = h.nbh
        for i in range(len(nbh)):
            hu = nbh[i]
            if cut and hu.side != sv:
                continue
            heard, lost = hu.air.arrive(tx, t, e, rs[i], cap, hu.tx_end > t)
            if not heard:
                tx.spoil(hu.v)
            if lost is not None:
                lost.spoil(hu.v)
            if e > hu.rx_end:
                hu.rx_end = e
                hu.rx_cur = tx

    def cad_busy(self, h: NodeHost, a: int) -> bool:
        """A CAD by h that began at a: was a frame h can hear on air for a
        symbol of its listening part?  (Frames from across a partition never
        reach h's AirState.)"""
        return h.air.busy(a, a + self.cad_listen_us, self.t_sym_us)

    # -- at the end of a frame -------------------------------------------------
    def hearers(self, h: NodeHost, tx: Tx) -> Iterator[int]:
        """The neighbours (as indices into h.nb) that receive broadcast tx,
        lazily: each one's loss is drawn after the previous one was handed
        its frame, so a receiver's reaction draws in between, in order."""
        ctr = self.ctr
        cut = self.cut
        sv = h.side
        bad = tx.bad
        loss = self.loss
        rand = self.rand
        nbh = h.nbh
        for i in range(len(nbh)):
            hu = nbh[i]
            if not hu.up or (cut and hu.side != sv):
                continue
            if bad is not None and hu.v in bad:
                ctr["collided"] += 1
                continue
            if loss and rand() < loss:
                ctr["lost"] += 1
                continue
            yield i

    def unicast_heard(self, h: NodeHost, tx: Tx) -> bool:
        """Does the addressed receiver get unicast tx?"""
        u = tx.dest
        hu = self.hosts[u]
        ok = hu.up and not (self.cut and hu.side != h.side) and u in h.nb
        if ok and tx.bad is not None and u in tx.bad:
            self.ctr["collided"] += 1
            ok = False
        if ok and self.loss and self.rand() < self.loss:
            self.ctr["lost"] += 1
            ok = False
        return ok

    def acknowledge(self, h: NodeHost, tx: Tx, ok: bool, t: int) -> int:
        """The MAC's ACK of unicast tx (heard: ok): requeue a retry at the
        head of h's queue if unacknowledged; returns when h's radio is free."""
        if not self.mac_ack:
            return t
        acked = ok
        if ok:
            self.ctr["ack_airtime_us"] += self.ack_us
            if self.loss and self.rand() < self.loss:
                acked = False
        # (unheard: the sender waits as long for an ACK that never comes)
        if not acked:
            if tx.att < self.retries:
                h.txq.appendleft((tx.frame, tx.dest, tx.att + 1, tx.delivered or ok))
            else:
                self.ctr["unacked"] += 1
        return t + self.ack_us
