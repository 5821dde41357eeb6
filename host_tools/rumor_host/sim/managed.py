"""Managed flooding as Meshtastic's firmware does it: when a relay goes.

The `managed-flood` rows run the core in flood mode with no relay delay of
its own (every new message is handed to the radio at once, hop limit 3 or
7, the core's dedup deciding what is new); what Meshtastic's radio
interface then does with the frame is this module (its router and radio
interface restated from the firmware's behaviour, no code of it):

- **the wait before a relay**: a contention window CW from the SNR of the
  copy heard, Arduino's integer `map(snr, -20, 10, 3, 8)` (SNR truncated to
  an integer, no clamping: SNR 16 gives 9), so a node close to the sender
  (high SNR) waits longer and the far ones go first.  A CLIENT waits
  2 * CWmax slots plus U[0, 2^CW - 1] slots (the first 16 slots are left
  to routers); a ROUTER waits U[0, 2 * CW - 1] slots.  A node's own
  message waits U[0, 2^CWu - 1] slots, CWu from the channel utilisation
  (`map(util %, 0, 100, 3, 8)`: 3 on a quiet channel);
- **the slot**: CAD time + propagation + turnaround + MAC processing, from
  the modem settings: `floor(2.5 Tsym + 7.6 ms)` on sub-GHz LoRa (2 CAD
  symbols + half a symbol; 0.2 ms propagation, 0.4 ms turnaround, 7 ms of
  processing), e.g. 12 ms at SF8/125 kHz, 48 ms at SF11/125 kHz, 28 ms for
  LONG_FAST (SF11/250 kHz).  ESP-NOW has no LoRa preset: there a slot is
  the time one relay takes through the medium, one data frame's airtime
  plus DIFS and the mean CSMA backoff (`espnow_slot_us`), the shortest wait
  after which a node can have heard a copy that started a slot earlier;
- **when the timer fires**: if the channel is busy (CAD, or a frame being
  received) the wait is drawn again (`rearm`: from now, capped at twice the
  worst case for that SNR); else the frame goes at once;
- **cancel**: one copy heard of a message whose relay is still waiting
  (for the timer, or behind CAD) removes it (client roles; a ROUTER never
  cancels);
- **hop limit**: the core's (Config.hop_limit: 3, Meshtastic's default, or
  7, its maximum): a node at hop distance d relays while d <= hop_limit.

`PendingQueue` holds one node's waiting frames; engine.py drives it.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

CW_MIN = 3
CW_MAX = 8
SNR_MIN = -20  # the map's input range, dB
SNR_MAX = 10
CLIENT = "client"
ROUTER = "router"

# LoRa demodulation floor (SNR at sensitivity), dB, by SF (Semtech datasheets)
_SNR_FLOOR = {6: -5.0, 7: -7.5, 8: -10.0, 9: -12.5, 10: -15.0, 11: -17.5, 12: -20.0}
# a receiver's reported packet SNR saturates near +10 dB on strong signals
SNR_CEIL = 10.0
# the simulator's rssi at the range edge (radio.rssi_at, scenario.py)
RSSI_EDGE = -100.0


def _cmap(x: int, in_lo: int, in_hi: int, out_lo: int, out_hi: int) -> int:
    """Arduino's map() on C longs: integer, truncating toward zero."""
    num = (x - in_lo) * (out_hi - out_lo)
    den = in_hi - in_lo
    q = abs(num) // abs(den)
    return (q if (num >= 0) == (den > 0) else -q) + out_lo


def snr_db(rssi: float, sf: int) -> float:
    """The SNR a LoRa receiver reports for a frame at rssi: the SF's
    demodulation floor at the range edge (RSSI_EDGE), one dB more per dB
    above it, saturating at SNR_CEIL.  ESP-NOW (sf 0): the rssi window from
    the edge to 30 dB above it mapped onto SNR_MIN..SNR_MAX."""
    floor = _SNR_FLOOR.get(sf, float(SNR_MIN))
    s = floor + (rssi - RSSI_EDGE)
    return s if s < SNR_CEIL else SNR_CEIL


def cw_from_snr(snr: float) -> int:
    """The contention window exponent for a copy heard at snr."""
    return _cmap(int(snr), SNR_MIN, SNR_MAX, CW_MIN, CW_MAX)


def cw_from_util(util_percent: float) -> int:
    """The window exponent for a node's own message, by channel utilisation."""
    return _cmap(int(util_percent), 0, 100, CW_MIN, CW_MAX)


def relay_slots(cw: int, role: str, randbits: Callable[[int], int]) -> int:
    """Slots a relay waits (random)."""
    if role == ROUTER:
        return _below(2 * cw, randbits)
    return 2 * CW_MAX + _below(1 << cw, randbits)


def own_slots(util_percent: float, randbits: Callable[[int], int]) -> int:
    """Slots a node's own message waits (random)."""
    return _below(1 << cw_from_util(util_percent), randbits)


def worst_slots(cw: int) -> int:
    """The longest a relay heard with window cw waits, in slots."""
    return 2 * CW_MAX + (1 << cw)


def _below(n: int, randbits: Callable[[int], int]) -> int:
    """A uniform integer in [0, n) from getrandbits (rejection)."""
    if n <= 1:
        return 0
    k = (n - 1).bit_length()
    while True:
        r = randbits(k)
        if r < n:
            return r


def lora_slot_us(sf: int, bw_hz: int) -> int:
    """Meshtastic's slot time for a sub-GHz LoRa preset, us (whole ms)."""
    t_sym_ms = (1 << sf) * 1000.0 / bw_hz
    return int(2.5 * t_sym_ms + 7.6) * 1000


def espnow_slot_us(data_air_us: int, difs_us: int, slot_us: int, cw: int) -> int:
    """A slot on ESP-NOW: one data frame on air plus DIFS and the mean
    CSMA backoff (cw/2 slots of slot_us)."""
    return data_air_us + difs_us + cw * slot_us // 2


def rearm(now: int, add: int, worst: int) -> int:
    """When a timer that found the channel busy fires next: the wait drawn
    again from now, at most twice the worst case for its SNR from now."""
    t = now + add
    cap = now + 2 * worst
    return t if t < cap else cap


class PendingQueue:
    """One node's frames waiting for their time (Meshtastic's TX queue with
    a tx_after per packet): [tx_after us, seq, frame, key, cw], earliest
    first; key is the message id (frame bytes 8..13), cw -1 for a node's
    own message."""

    __slots__ = ("heap", "seq", "cancelled")

    def __init__(self) -> None:
        self.heap: list[list[Any]] = []
        self.seq = 0
        self.cancelled = 0  # relays removed by a copy heard

    def __len__(self) -> int:
        return len(self.heap)

    def push(self, at: int, frame: bytes, key: bytes, cw: int) -> None:
        self.seq += 1
        heapq.heappush(self.heap, [at, self.seq, frame, key, cw])

    def next_at(self) -> int:
        """tx_after of the earliest frame (-1: none waits)."""
        return self.heap[0][0] if self.heap else -1

    def head(self) -> list[Any]:
        return self.heap[0]

    def pop(self) -> list[Any]:
        return heapq.heappop(self.heap)

    def delay_head(self, at: int) -> None:
        """The earliest frame found the channel busy: it goes no sooner than at."""
        it = heapq.heappop(self.heap)
        it[0] = at
        self.seq += 1
        it[1] = self.seq
        heapq.heappush(self.heap, it)

    def cancel(self, key: bytes) -> int:
        """Remove the relays of message `key` (a copy was heard); returns
        how many.  A node's own messages (cw -1) are not cancelled."""
        h = self.heap
        keep = [it for it in h if it[3] != key or it[4] < 0]
        n = len(h) - len(keep)
        if n:
            heapq.heapify(keep)
            self.heap = keep
            self.cancelled += n
        return n

    def clear(self) -> None:
        self.heap.clear()
