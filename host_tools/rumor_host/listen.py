"""rumor listen: the messages boards deliver, as they arrive."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from rumor_host.board import BoardError, Mesh, Record, hold

HEADER = f"{'time':12s}  {'board':8s}  {'origin':8s}  {'id':12s}  {'hops':>4s}  {'age':>7s}  {'rssi':>4s}  payload"


def _clean(text: str, limit: int = 200) -> str:
    out = "".join(c if c.isprintable() else "?" for c in text[:limit])
    return out + (" ..." if len(text) > limit else "")


def delivery_line(rec: Record) -> str:
    """One line for a deliver record: time, board, origin, id, hops, age,
    RSSI, payload (text as it is, else hex:...)."""
    ev = rec["ev"]
    t = float(rec.get("t", time.time()))
    ts = time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t * 1000) % 1000:03d}"
    if "payload" in ev:
        p = str(ev["payload"])
        shown = ("hex:" + p) if ev.get("payload_hex") else _clean(p)
        if ev.get("payload_cut"):
            shown += " (cut)"
    else:
        shown = f"({ev.get('len', '?')} bytes; payload_in_events is off)"
    age = ev.get("age_ms")
    rssi = ev.get("rssi")
    return (f"{ts:12s}  {str(ev.get('node', '?')):8s}  {str(ev.get('origin', '?')):8s}  "
            f"{str(ev.get('id', '?')):12s}  {ev.get('hops', '?')!s:>4s}  "
            f"{(str(age) + ' ms') if age is not None else '-':>7s}  "
            f"{str(rssi) if rssi is not None else '-':>4s}  {shown}")


@click.command("listen")
@click.option("--port", "-p", "ports", multiple=True, required=True,
              help="a board's port (repeat for each; auto: the one board plugged in)")
@click.option("--duration", type=click.FloatRange(0), default=None,
              help="stop after this many seconds (default: Ctrl-C)")
@click.option("--count", "-n", type=click.IntRange(1), default=None, help="stop after COUNT deliveries")
@click.option("--all", "all_events", is_flag=True, help="every event, not only deliveries")
@click.option("--json", "as_json", is_flag=True, help="one JSON record per line (as rumor logs writes)")
def listen_cmd(ports: tuple[str, ...], duration: float | None, count: int | None,
               all_events: bool, as_json: bool) -> None:
    """Print the messages the boards on PORT deliver, as they arrive: time,
    board, origin, message id, hops, age, RSSI of the frame that brought it
    (where the radio gives one) and the payload (as text; hex when it is
    not printable).  Goes through `rumor logs` when it holds a port; else
    listen holds the ports itself the same way, so `rumor inject`, `stats`,
    ... on them work while it runs, and a board unplugged is read again when
    it is back."""
    from rumor_host.logs import describe
    from rumor_host.ports import resolve_port

    n = 0
    try:
        given = [resolve_port(p) for p in ports]
        with hold(given, warn=lambda s: click.echo(s, err=True)), Mesh(given) as mesh:
            if not as_json:
                click.echo(HEADER)
            for _b, rec in mesh.records(duration):
                ev: Any = rec.get("ev")
                is_deliver = isinstance(ev, dict) and ev.get("ev") == "deliver"
                if "collector" in rec:
                    click.echo(describe(rec), err=True)
                    continue
                if not (is_deliver or all_events):
                    continue
                if as_json:
                    click.echo(json.dumps(rec, separators=(",", ":")))
                elif is_deliver:
                    click.echo(delivery_line(rec))
                else:
                    click.echo(describe(rec))
                n += is_deliver
                if count is not None and n >= count:
                    break
    except BoardError as e:
        raise click.ClickException(str(e)) from None
    except KeyboardInterrupt:
        pass
