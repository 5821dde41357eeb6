"""One simulated board: the engine it runs and what its radio holds.

A NodeHost outlives reboots: `g` is the Gossip (or Actor) of the current
boot and `epoch` counts boots, so events scheduled by an earlier boot can
be recognised and dropped.  The host is what the core is wired to: its
`forward` is the core's on_forward (frames into the radio queue), its
`deliver` the core's on_message (first deliveries into the run's record).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from rumor.ticks import MASK as _MS_MASK  # the LoRa adapter reads ms masked to 30 bits

from .events import TICK, TX_TRY

if TYPE_CHECKING:
    from rumor.radio_lora import DutyCycle

    from .engine import Engine


class NodeHost:
    """A node: its engine, power, radio queue and duty-cycle budget.

    The fields tx_end, rx_end and rx_cur are the node's radio as the medium
    sees it; only channel.py reads or writes them."""

    __slots__ = (
        "v",  # node index
        "sim",  # the Engine running it
        "loop",  # its event loop (sim.loop, kept here: the clock reads it on every call)
        "first",  # the ledger's first-delivery table (sim.ledger.first)
        "id_to_k",  # the ledger's message id -> traffic index (sim.ledger.id_to_k)
        "g",  # Gossip or Actor of the current boot (None before the first)
        "up",  # powered (False between DOWN and UP)
        "epoch",  # boots so far; events carry the epoch that scheduled them
        "off",  # us: this board's clock phase (boards boot at different times)
        "addr",  # its 6-byte radio address
        "nb",  # neighbour indices (topology adjacency)
        "nbh",  # their NodeHosts, as nb (set once every host exists)
        "rssi",  # per neighbour, what this node measures of it (as nb)
        "side",  # True when x >= 0.5: the side of a partition
        "txq",  # (frame, dest or -1, attempt, delivered) waiting for the air
        "busy",  # a TX_TRY or TX_END is pending: the radio is working the queue
        "tick_at",  # us of the pending TICK, -1 when none is
        "dc",  # the LoRa adapter's DutyCycle (None: no duty cycle)
        "tx_end",  # us: end of its own current/last transmission
        "rx_end",  # us: end of the latest frame arriving here
        "rx_cur",  # the Tx that ends at rx_end (what it is hearing)
        # LoRa channel access (lora_access.py; None on ESP-NOW)
        "air",  # AirState: the frames on air here, the one it is locked on
        "cad",  # CadBackoff: the adapter's backoff after a busy CAD
        "cad_from",  # us: when the CAD under way began (-1: none)
        # managed flooding (managed.py; None for the other strategies)
        "pend",  # PendingQueue: frames waiting for their Meshtastic delay
        "relay_at",  # us of the pending RELAY event (-1: none)
        "heard",  # message id -> contention window of its first copy (a relay)
        "rx_now",  # rssi of the frame being handed to receive() (None: not in one)
    )

    def __init__(self, sim: Engine, v: int, off: int, addr: bytes, nb: list[int],
                 rssi: list[int], side: bool, dc: DutyCycle | None):
        self.sim = sim
        self.loop = sim.loop
        self.first = sim.ledger.first
        self.id_to_k = sim.ledger.id_to_k
        self.v = v
        self.g: Any = None
        self.up = True
        self.epoch = 0
        self.off = off
        self.addr = addr
        self.nb = nb
        self.nbh: list[NodeHost] = []
        self.rssi = rssi
        self.side = side
        self.txq: deque[tuple[bytes, int, int, bool]] = deque()
        self.busy = False
        self.tick_at = -1
        self.dc = dc
        self.tx_end = 0
        self.rx_end = 0
        self.rx_cur: Any = None
        self.air: Any = None
        self.cad: Any = None
        self.cad_from = -1
        self.pend: Any = None
        self.relay_at = -1
        self.heard: dict[bytes, int] = {}
        self.rx_now: Any = None

    # -- what the core is wired to -------------------------------------------
    def clock(self) -> int:
        """The board's ms clock (the core masks it to 30 bits)."""
        return (self.loop.now + self.off) // 1000

    def forward(self, frame: Any, to_peers: Any) -> None:
        """on_forward: one broadcast (to_peers None) or one unicast per peer."""
        f = bytes(frame)
        if to_peers is None:
            self.send(f, -1)
        else:
            for a in to_peers:
                self.send(f, int.from_bytes(a[2:6], "big") - 1)

    def send(self, frame: bytes, dest: int) -> None:
        """Into the radio queue (dropped when it is full, as ESP-NOW's driver
        refuses a send); an idle radio starts working it after channel access.
        Managed flooding: a broadcast waits its Meshtastic delay first."""
        if self.pend is not None and dest < 0:
            self.sim.hold(self, frame)
        else:
            self.queue(frame, dest)

    def queue(self, frame: bytes, dest: int) -> None:
        """Into the radio queue now."""
        sim = self.sim
        q = self.txq
        limit = sim.txq_limit
        if limit and len(q) >= limit:
            sim.ledger.ctr["txq_dropped"] += 1
            return
        q.append((frame, dest, 0, False))
        if not self.busy:
            self.busy = True
            loop = self.loop
            loop.push((loop.now + sim.channel.access(), next(loop.seq), TX_TRY, self.v, self.epoch))

    def deliver(self, m: Any) -> None:
        """on_message: the first delivery of a traffic message is recorded."""
        k = self.id_to_k.get(m.id)
        if k is not None:
            row = self.first[k]
            if row[self.v] < 0:
                row[self.v] = self.loop.now

    def deliver_hooked(self, m: Any) -> None:
        """on_message when the scenario watches every delivery (Hooks.on_deliver)."""
        self.deliver(m)
        sim = self.sim
        assert sim.on_deliver is not None  # (wired only when there is one)
        sim.on_deliver(self.v, self.epoch, m, self.loop.now, sim.cur_tx)

    # -- scheduling -----------------------------------------------------------
    def wake(self) -> None:
        """Schedule a TICK at the engine's next_deadline() unless one is
        already due no later (asked again after whatever can move it)."""
        loop = self.loop
        now = loop.now
        o = self.off
        t = ((now + o) // 1000 + self.g.next_deadline()) * 1000 - o
        if t < now:
            t = now
        ta = self.tick_at
        if ta >= now and ta <= t:
            return
        self.tick_at = t
        loop.push((t, next(loop.seq), TICK, self.v, self.epoch))

    def duty_wait(self, t: int, air: int) -> int:
        """Ask the duty-cycle budget for `air` us from t: 0 when it may go
        (then charged at its end, rounded up to the ms, as the LoRa adapter
        does), the us to wait, or -1 when it never can."""
        dc = self.dc
        assert dc is not None
        air_ms = (air + 999) // 1000
        w = dc.wait_ms((t // 1000) & _MS_MASK, air_ms)
        if w > 0:
            return w * 1000
        if w < 0:  # longer on air than the whole budget
            return -1
        dc.charge(((t + air + 999) // 1000) & _MS_MASK, air_ms)
        return 0
