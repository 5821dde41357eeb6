"""LoRa channel access and reception at one node: listen before talk (CAD),
capture, half duplex.

What a real LoRa mesh does, and the simulator with it (channel.py calls in):

- **CAD before every frame** (as the LoRa adapter does, firmware/rumor/
  radio_lora.py and lora_cad.py): the radio listens for `cad_symbols(sf)`
  symbols (the SX126x detector settings of Semtech AN1200.48 that
  lora_cad.py uses: 2 symbols at SF7/SF8, 4 from SF9) plus about one symbol
  of processing, rounded up to the ms (`cad_duration_us`).  It reports busy
  if a frame it can hear was on air for at least one symbol of the
  listening part (an SX126x detects any LoRa symbol; an SX127x detects
  preambles, and the adapter counts a frame it is locked on as busy without
  a CAD: the same rule).  On busy the
  frame waits a random 1..2^k backoff slots (a slot: one CAD and a ms;
  k = 3 on the first busy CAD in a row, one more each time, at most 6) and
  tries again; after `cad_tries` busy CADs in a row it goes anyway
  (`CadBackoff`, the adapter's rule and constants).  A frame that starts
  less than a symbol before a node's listening ends, or while it processes,
  is not seen: that window (about two symbols and the rounding to the ms)
  is where CAD-equipped LoRa nodes still collide, with the forced sends.
- **Capture** (`AirState.arrive`): a receiver locks on the first frame it
  hears while idle.  When another frame overlaps it, the locked one survives
  if it is at least `capture_db` stronger (it keeps the demodulator); else
  both are lost (a stronger frame arriving second does not take over: the
  demodulator is past its preamble).  A frame that arrives while other (unlocked, already lost)
  frames are on air is locked only if it is `capture_db` stronger than the
  strongest of them.  `capture_db` None: no capture (any overlap loses
  both, the model before this module).
- **Half duplex**: a node that starts sending loses the frame it was
  receiving, and hears nothing that starts while it sends.

All times are integer microseconds.  Nothing here draws random numbers on
its own: the callers hand in their generator, so a run stays a pure
function of its parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# the LoRa adapter's CAD backoff (firmware/rumor/radio_lora.py _CW_MIN,
# _CW_MAX, _CAD_TRIES): 1..2^3 slots after the first busy CAD, up to 1..2^6
CW_MIN = 3
CW_MAX = 6
CAD_TRIES = 6

# SX126x CAD symbols by SF (AN1200.48's table for 125 kHz, as lora_cad.py)
_CAD_SYMBOLS = {7: 2, 8: 2, 9: 4, 10: 4, 11: 4, 12: 4}


def t_sym_us(sf: int, bw_hz: int) -> float:
    """One LoRa symbol, us: 2^SF / BW."""
    return (1 << sf) * 1e6 / bw_hz


def cad_symbols(sf: int) -> int:
    """Symbols one CAD listens for (SX126x, AN1200.48's settings)."""
    return _CAD_SYMBOLS[min(max(sf, 7), 12)]


def cad_duration_us(sf: int, bw_hz: int) -> int:
    """How long one CAD keeps the radio, us: its symbols and about one
    symbol of processing, rounded up to the ms (lora_cad._Cad.duration_ms)."""
    t = t_sym_us(sf, bw_hz) * (cad_symbols(sf) + 1)
    return int(-(-t // 1000)) * 1000


def cad_listen_us(sf: int, bw_hz: int) -> float:
    """The part of a CAD that listens (its symbols; the rest is processing)."""
    return t_sym_us(sf, bw_hz) * cad_symbols(sf)


def cad_slot_us(sf: int, bw_hz: int) -> int:
    """The adapter's backoff slot: one CAD and a millisecond to turn around."""
    return cad_duration_us(sf, bw_hz) + 1000


class CadBackoff:
    """The adapter's rule after a CAD, for one node's head frame."""

    __slots__ = ("slot_us", "tries", "busy_run")

    def __init__(self, slot_us: int, tries: int = CAD_TRIES):
        if not 1 <= tries <= 100:
            raise ValueError(f"cad_tries must be 1..100, got {tries}")
        self.slot_us = slot_us
        self.tries = tries
        self.busy_run = 0  # busy CADs in a row for the head frame

    def after_cad(self, busy: bool, randbits: Callable[[int], int]) -> int:
        """-1: send now (the channel is free); -2: send now anyway (the
        `tries`-th busy CAD in a row); otherwise the backoff (us) before the
        next CAD."""
        if not busy:
            self.busy_run = 0
            return -1
        self.busy_run += 1
        if self.busy_run >= self.tries:
            self.busy_run = 0
            return -2  # forced: goes anyway (the adapter's tx_cad_forced)
        k = CW_MIN + self.busy_run - 1
        if k > CW_MAX:
            k = CW_MAX
        return (1 + randbits(k)) * self.slot_us


class AirState:
    """What one node's receiver has on air: every frame it can hear that is
    on air or ended less than `keep_us` ago (a CAD looks back that far), and
    the one it is locked on."""

    __slots__ = ("frames", "locked", "locked_end", "locked_rssi", "keep_us")

    def __init__(self, keep_us: int):
        # [start us, end us, rssi, tx] per frame heard here, oldest first
        self.frames: list[list[Any]] = []
        self.locked: Any = None  # the frame being demodulated (None: idle)
        self.locked_end = 0
        self.locked_rssi = 0.0
        self.keep_us = keep_us

    def _prune(self, t: int) -> None:
        fr = self.frames
        lim = t - self.keep_us
        i = 0
        while i < len(fr) and fr[i][1] <= lim:
            i += 1
        if i:
            del fr[:i]

    def arrive(self, tx: Any, t: int, end: int, rssi: float, capture_db: float | None,
               sending: bool) -> tuple[bool, Any]:
        """Frame tx starts reaching this node at t (until end, at rssi);
        sending: this node is on air itself.  Returns (heard, lost): heard
        False when tx is lost here from the start; lost, the frame this node
        was locked on if tx destroyed it (else None)."""
        self._prune(t)
        self.frames.append([t, end, rssi, tx])
        if sending:
            return False, None
        lk = self.locked
        if lk is not None and self.locked_end > t:
            if capture_db is not None and self.locked_rssi - rssi >= capture_db:
                return False, None  # the locked frame keeps the receiver
            self.locked = None
            return False, lk  # too close (or the newcomer stronger): both lost
        self.locked = None
        # other frames on air here (already lost): tx must beat them all
        imax = None
        for f in self.frames:
            if f[1] > t and f[3] is not tx and (imax is None or f[2] > imax):
                imax = f[2]
        if imax is not None and (capture_db is None or rssi - imax < capture_db):
            return False, None
        self.locked = tx
        self.locked_end = end
        self.locked_rssi = rssi
        return True, None

    def sending(self, t: int) -> Any:
        """This node starts to send at t: the frame it was receiving (if
        any) is lost; returned so the caller can mark it."""
        lk = self.locked
        self.locked = None
        if lk is not None and self.locked_end > t:
            return lk
        return None

    def busy(self, a: int, b: int, min_us: float) -> bool:
        """Would a CAD listening from a to b (us) find the channel busy: was
        a frame this node can hear on air for at least min_us (a symbol) of
        that window?"""
        self._prune(b)
        for f in self.frames:
            s = f[0] if f[0] > a else a
            e = f[1] if f[1] < b else b
            if e - s >= min_us:
                return True
        return False
