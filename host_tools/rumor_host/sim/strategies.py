"""The strategies compared, all in one place.

Each is a Config of the one core (firmware/rumor/): no second implementation
of any protocol lives in the simulator.  A Strategy also says whether the
engine registers every radio neighbour with add_peer() (the seed's unicast
gossip needs peer addresses, as ESP-NOW does) and how it maps rssi onto the
core's relay-delay window (managed flood).

Times scale with the radio: a relay delay must span several frame airtimes
for random delays to separate transmissions, so LoRa's windows are in units
of the data-frame airtime (`slot_ms`), ESP-NOW's are a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import click

from rumor import Config
from rumor.config import MAX_AGE_MS

from .radio import Radio


@dataclass(frozen=True)
class Strategy:
    name: str
    summary: str
    config: Callable[[Radio, float, int], Config]  # (radio, slot_ms, max degree) -> Config
    add_peers: bool = False  # add_peer() every radio neighbour (unicast gossip)
    # "meshtastic": the node's broadcasts wait Meshtastic's relay delay in the
    # host (managed.py) before the radio queue, and a copy heard cancels them
    mac: str = ""
    role: str = "client"  # managed.py's CLIENT or ROUTER delays
    # the run goes on until max_message_age_ms after the last publish (at
    # least), so delivery is eventual; the delivery at the common settle
    # cut-off is reported beside it (delivery_ratio_at_settle)
    eventual: bool = False


def _is_lora(radio: Radio) -> bool:
    return radio.name.startswith("lora")


def _flood(radio: Radio, slot_ms: float, maxdeg: int) -> Config:
    # every node rebroadcasts each new message once, after a small jitter
    # (ESP-NOW's CSMA backoff does the rest; LoRa has no carrier sense, so
    # the jitter is a couple of airtimes, as plain flooding firmwares use)
    jitter = int(2 * slot_ms) + 1 if _is_lora(radio) else 5
    return Config(mode="flood", relay_delay_ms=jitter, suppress_count=0, hop_limit=254,
                  delay_by_signal=False, suppress_rssi=0, **_common(radio))


def _seed(radio: Radio, slot_ms: float, maxdeg: int) -> Config:
    # the seed's design: unicast push/pull to fanout 4 random peers every 1 s
    return Config(mode="gossip", broadcast=False, fanout=4, gossip_interval_ms=1000,
                  push_pull_ratio=0.7, max_peers=min(250, max(16, maxdeg)), hop_limit=32,
                  **_common(radio))


def _managed_flood(hop_limit: int) -> Callable[[Radio, float, int], Config]:
    # Meshtastic's managed flooding: the core floods (its dedup and hop
    # limit decide what is new and who relays), handing every new message to
    # the radio at once; the Meshtastic delay, CAD re-arm and cancel on a
    # copy heard happen in the host (Strategy.mac, managed.py)
    def config(radio: Radio, slot_ms: float, maxdeg: int) -> Config:
        return Config(mode="flood", relay_delay_ms=0, suppress_count=0, hop_limit=hop_limit,
                      delay_by_signal=False, suppress_rssi=0, **_common(radio))
    return config


def _rumor(radio: Radio, slot_ms: float, maxdeg: int) -> Config:
    # our default configuration: an elected relay backbone (two-hop
    # knowledge from the digests' neighbour lists), implicit acknowledgements
    # that resend to a silent backbone neighbour, and Trickle-timed digests
    # that heal the rest (ESP-NOW: Config() as it is; its timings are
    # ESP-NOW's)
    if _is_lora(radio):
        # LoRa's airtime is tens of ms: windows in frame airtimes, and the
        # anti-entropy waits for the slower relay wave to pass; messages live
        # long enough for that repair (SF10: a wave of ten hops takes most
        # of a minute), and digests back off further (doublings), as every
        # byte they carry is airtime out of a 1% duty cycle
        return Config(relay_delay_ms=int(16 * slot_ms) + 1, rssi_ceil=-85, suppress_rssi=0,
                      gossip_interval_ms=max(1000, int(60 * slot_ms)),
                      settle_ms=max(500, int(40 * slot_ms)),
                      max_message_age_ms=min(MAX_AGE_MS, max(60000, int(800 * slot_ms))),
                      digest_doublings=4,
                      **_common(radio))
    return Config(**_common(radio))


def _common(radio: Radio) -> dict:
    return {}


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("flood", "every node rebroadcasts each new message once", _flood),
        Strategy("seed", "unicast push/pull 70/30 to fanout 4 every 1 s (eventual delivery)",
                 _seed, add_peers=True, eventual=True),
        Strategy("managed-flood", "Meshtastic: SNR contention window, CAD, 1 copy cancels, "
                 "hop limit 3", _managed_flood(3), mac="meshtastic"),
        Strategy("managed-flood-7", "as managed-flood with hop limit 7 (Meshtastic's maximum)",
                 _managed_flood(7), mac="meshtastic"),
        Strategy("rumor", "elected relay backbone + implicit acks + Trickle digests (the default)", _rumor),
    )
}

DEFAULT_ORDER = ("flood", "seed", "managed-flood", "rumor")


def parse_strategies(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise ValueError("no strategy named")
    bad = [s for s in names if s not in STRATEGIES]
    if bad:
        raise ValueError(
            f"unknown strateg{'y' if len(bad) == 1 else 'ies'} {', '.join(bad)}: "
            f"choose from {', '.join(STRATEGIES)}"
        )
    seen: list[str] = []
    for s in names:
        if s not in seen:
            seen.append(s)
    return seen


def strategies_option(ctx: click.Context, param: click.Parameter, value: str) -> list[str]:
    """parse_strategies() as a click option callback: one clear line for a bad name."""
    try:
        return parse_strategies(value)
    except ValueError as e:
        raise click.BadParameter(str(e), ctx=ctx, param=param) from None
