"""rumor stats: a node's counters, airtime and free heap."""

from __future__ import annotations

import json
from typing import Any

import click

from rumor_host.board import Board, BoardError
from rumor_host.queryopts import query_options

ESPNOW_BPS = 1_000_000  # ESP-NOW's default PHY rate
ESPNOW_FRAME_US = 192 + 43 * 8  # long preamble + PLCP, and the vendor action frame around a payload


def airtime(radio: dict[str, Any]) -> list[str]:
    """What the radio's counters say about airtime and duty cycle."""
    kind = radio.get("radio")
    if "tx_airtime_ms" in radio:  # LoRa: the adapter counts it
        out = [f"airtime sent: {radio['tx_airtime_ms']} ms"]
        budget = radio.get("duty_budget_ms", -1)
        used = radio.get("duty_used_ms")
        win = radio.get("duty_window_ms")
        if isinstance(budget, int) and budget > 0 and isinstance(used, int):
            out.append(f"duty cycle: {used} ms of {budget} ms allowed in the last "
                       f"{(win or 0) / 60000:g} min ({100 * used / budget:.1f}% of the budget)")
        elif isinstance(used, int):
            out.append(f"duty cycle: {used} ms in the last {(win or 0) / 60000:g} min (no limit)")
        return out
    if kind == "espnow" and isinstance(radio.get("tx_frames"), int):
        us = radio["tx_frames"] * ESPNOW_FRAME_US + radio.get("tx_bytes", 0) * 8 * 1_000_000 // ESPNOW_BPS
        return [f"airtime sent: about {us / 1000:.0f} ms (estimated at 1 Mbit/s; ESP-NOW has no duty limit)"]
    return ["airtime: not measured by this radio (the virtual medium has none)"]


def _kv(d: dict[str, Any], width: int = 3) -> list[str]:
    items = [f"{k}={v}" for k, v in d.items()]
    return ["  " + "  ".join(items[i:i + width * 2]) for i in range(0, len(items), width * 2)]


def render(ev: dict[str, Any]) -> list[str]:
    core = ev.get("core") or {}
    radio = ev.get("radio") or {}
    out = [f"node {ev.get('node')}: delivered {core.get('delivered')}, published {core.get('published')}, "
           f"{core.get('peer_count')} peers ({core.get('active_peer_count')} active), "
           f"{core.get('message_count')} messages held"]
    free = ev.get("mem_free")
    out.append(f"free heap: {free} bytes" if free is not None else "free heap: not reported")
    out += airtime(radio)
    if ev.get("auth"):
        out.append(f"network key: fingerprint {ev.get('key_fp')}, network time {ev.get('net_time')}")
    out.append("core:")
    out += _kv(core)
    out.append(f"radio ({radio.get('radio', 'udp')}):")
    out += _kv({k: v for k, v in radio.items() if k != "radio"})
    return out


@click.command("stats")
@query_options("the node's stats event as JSON")
def stats_cmd(port: str, as_json: bool, timeout: float) -> None:
    """The counters of the node on PORT: the gossip core's (delivered,
    duplicates, frames in and out, ...), the radio's, airtime and duty cycle
    used (LoRa counts it; ESP-NOW's is estimated), and free heap."""
    try:
        with Board(port, timeout=timeout) as b:
            ev = b.stats()
    except BoardError as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        click.echo(json.dumps(ev))
        return
    for line in render(ev):
        click.echo(line)
