"""Radio models: how long a frame is on air and what the MAC does with it.

Times are integer microseconds throughout the simulator.

ESP-NOW (802.11 vendor action frames, 1 Mbit/s DSSS as ESP-NOW's default rate):
CSMA/CA (carrier sense, DIFS, random backoff in slots), broadcast reaches every
neighbour in range with no acknowledgement, unicast is acknowledged by the MAC
and retried.  LoRa: airtime from the Semtech formula (AN1200.13, SX127x
datasheet section 4.1.1.6), no MAC ACK, and the EU868 1 % duty-cycle budget
per node; its listen before talk (CAD) and capture are lora_access.py's.
Both radios are half-duplex; on ESP-NOW a reception is lost when two
transmissions overlap at the receiver (no capture).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def lora_airtime_ms(payload_len: int, sf: int = 7, bw_hz: int = 125_000, cr: int = 1,
                    preamble: int = 8, explicit_header: bool = True, crc: bool = True,
                    ldro: bool | None = None) -> float:
    """Time on air of one LoRa packet in ms (Semtech AN1200.13).

    cr is the coding rate index 1..4 (4/5..4/8).  ldro (low data rate
    optimisation) defaults to on when a symbol lasts 16 ms or more (SF11 and
    SF12 at 125 kHz), as the Semtech drivers and LoRaWAN do.
    """
    if not 6 <= sf <= 12:
        raise ValueError(f"spreading factor must be 6..12, got {sf}")
    if not 1 <= cr <= 4:
        raise ValueError(f"coding rate index must be 1..4 (4/5..4/8), got {cr}")
    if not 0 <= payload_len <= 255:
        raise ValueError(f"LoRa payload must be 0..255 bytes, got {payload_len}")
    t_sym = (1 << sf) / bw_hz * 1000.0  # ms
    if ldro is None:
        ldro = t_sym >= 16.0
    de = 1 if ldro else 0
    ih = 0 if explicit_header else 1
    t_preamble = (preamble + 4.25) * t_sym
    num = 8 * payload_len - 4 * sf + 28 + 16 * (1 if crc else 0) - 20 * ih
    n_payload = 8 + max(math.ceil(num / (4 * (sf - 2 * de))) * (cr + 4), 0)
    return t_preamble + n_payload * t_sym


@dataclass(frozen=True)
class Radio:
    """What the engine needs from a radio model."""

    name: str
    csma: bool  # carrier sense before transmitting
    mac_ack: bool  # unicast acknowledged and retried by the MAC
    retries: int  # retransmissions after the first attempt (mac_ack only)
    duty_cycle: float | None  # fraction of time a node may be on air (None: no limit)
    slot_us: int = 20
    difs_us: int = 50
    sifs_us: int = 10
    cw: int = 31  # backoff drawn in 0..cw slots
    bitrate: int = 1_000_000
    range_m: float = 100.0  # range at which rssi reaches rssi_floor
    sf: int = 0

    def airtime_us(self, nbytes: int) -> int:
        raise NotImplementedError

    def ack_us(self) -> int:
        return 0

    def mtu(self) -> int:
        return 250


@dataclass(frozen=True)
class EspNow(Radio):
    # 802.11 MAC header 24 + category 1 + OUI 3 + random 4 + vendor element 7
    # (id, length, OUI, type, version) + FCS 4 around the ESP-NOW payload
    overhead_bytes: int = 43
    plcp_us: int = 192  # long preamble + PLCP header at 1 Mbit/s

    def airtime_us(self, nbytes: int) -> int:
        return self.plcp_us + (nbytes + self.overhead_bytes) * 8 * 1_000_000 // self.bitrate

    def ack_us(self) -> int:
        # SIFS + a 14-byte ACK at 1 Mbit/s
        return self.sifs_us + self.plcp_us + 14 * 8

    def mtu(self) -> int:
        return 250


@dataclass(frozen=True)
class LoRa(Radio):
    bw_hz: int = 125_000
    cr: int = 1
    preamble: int = 8

    def airtime_us(self, nbytes: int) -> int:
        return int(round(lora_airtime_ms(nbytes, self.sf, self.bw_hz, self.cr, self.preamble) * 1000))

    def mtu(self) -> int:
        return 250


def espnow() -> EspNow:
    return EspNow(name="espnow", csma=True, mac_ack=True, retries=7, duty_cycle=None)


def lora(sf: int = 7) -> LoRa:
    if not 7 <= sf <= 12:
        raise ValueError(f"LoRa spreading factor must be 7..12, got {sf}")
    return LoRa(name=f"lora-sf{sf}", csma=False, mac_ack=False, retries=0, duty_cycle=0.01,
                sf=sf, range_m=2000.0)


def make_radio(name: str, sf: int = 7) -> Radio:
    if name == "espnow":
        return espnow()
    if name == "lora":
        return lora(sf)
    raise ValueError(f"unknown radio {name!r} (espnow or lora)")


def rssi_at(dist: float, rng: float) -> int:
    """RSSI in dBm at dist for a link whose range is rng: log-distance path
    loss (exponent 3) from -40 dBm at rng/100 down to -100 dBm at rng, the
    window Gossip maps onto its relay delay (rssi_floor..rssi_ceil)."""
    d0 = rng / 100.0
    d = dist if dist > d0 else d0
    return int(round(-40.0 - 30.0 * math.log10(d / d0)))
