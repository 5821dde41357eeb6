"""rumor nodes: a board's neighbours, with how well it hears them."""

from __future__ import annotations

import json
from typing import Any

import click

from rumor_host.board import Board, BoardError
from rumor_host.queryopts import query_options


def _ago(ms: Any) -> str:
    if not isinstance(ms, (int, float)):
        return "-"
    return f"{ms / 1000:.1f} s ago" if ms < 120000 else f"{ms / 60000:.0f} min ago"


def _snr(v: Any) -> str:
    return f"{v / 4:.1f}" if isinstance(v, (int, float)) else "-"


def table(node: str, rows: list[dict[str, Any]]) -> list[str]:
    out = [f"node {node}: {len(rows)} neighbour{'s' if len(rows) != 1 else ''}"]
    if not rows:
        return out + ["(none heard yet: a node hears its neighbours within a gossip interval or two)"]
    out.append(f"{'node':8s}  {'address':12s}  {'rssi':>5s}  {'snr dB':>6s}  {'last heard':>12s}  "
               f"{'frames':>6s}")
    rows = sorted(rows, key=lambda r: (r.get("rssi") is None, -(r.get("rssi") or 0)))
    for r in rows:
        rssi = r.get("rssi")
        out.append(f"{r.get('node') or '?':8s}  {r.get('addr') or '-':12s}  "
                   f"{str(rssi) if rssi is not None else '-':>5s}  {_snr(r.get('snr')):>6s}  "
                   f"{_ago(r.get('last_heard_ms')):>12s}  {r.get('frames') or 0:>6d}"
                   + ("  static" if r.get("static") else ""))
    return out


@click.command("nodes")
@query_options("the neighbours as a JSON list")
def nodes_cmd(port: str, as_json: bool, timeout: float) -> None:
    """The neighbours of the board on PORT: node id, address, RSSI and SNR
    of the last frame heard from each, when that was, and how many frames
    came from it (the node's `peers` answer, docs/console.md)."""
    try:
        with Board(port, timeout=timeout) as b:
            rows = b.peers()
            node = b.node_id
    except BoardError as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        click.echo(json.dumps(rows))
        return
    for line in table(node, rows):
        click.echo(line)
