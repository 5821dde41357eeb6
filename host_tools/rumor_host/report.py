"""rumor report: what a collected run (rumor logs JSONL) says about delivery.

Per message: which nodes got it, when (host time of the collected line,
relative to the origin's publish line) and in how many hops.  Overall:
delivery ratio (deliveries / (messages x other nodes)), latency p50/p99,
hops.  Latencies use the host stamps only: every virtual board shares the
host clock; the nodes' own ticks are informative.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click


class ReportError(Exception):
    pass


@dataclass
class Msg:
    id: str
    origin: str
    t0: float | None = None  # host time of the publish line (None: not seen)
    got: dict[str, tuple[float, int]] = field(default_factory=dict)  # node -> (host t, hops)


def percentile(xs: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100) of xs, None if empty."""
    if not xs:
        return None
    s = sorted(xs)
    k = max(0, math.ceil(p / 100.0 * len(s)) - 1)
    return s[k]


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ReportError(f"{path}: not a text file (is this a `rumor logs` file?)") from None
    except OSError as e:
        raise ReportError(f"{path}: cannot read: {e.strerror}") from None
    out = []
    lines = text.splitlines()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            if i == len(lines) or line.startswith('{"t":'):
                continue  # a record cut short by a crash (the last line, or before a new run)
            raise ReportError(f"{path}:{i}: not a JSON line (is this a `rumor logs` file?)") from None
        if isinstance(rec, dict):
            out.append(rec)
    return out


def analyse(records: list[dict[str, Any]]) -> dict[str, Any]:
    nodes: set[str] = set()
    msgs: dict[str, Msg] = {}
    disconnects = 0
    bad = 0
    ports: set[str] = set()  # every port the collector connected to
    named: set[str] = set()  # ports that printed an event naming their node
    for r in records:
        if r.get("collector") in ("connected", "reconnected"):
            ports.add(str(r.get("port")))
        if r.get("collector") == "disconnected":
            disconnects += 1
        ev = r.get("ev")
        if not isinstance(ev, dict):
            continue
        try:
            node = str(ev.get("node", "?"))
            if node not in ("00000000", "?"):
                nodes.add(node)
                named.add(str(r.get("port")))
            kind = ev.get("ev")
            t = float(r.get("t", 0.0))
            if kind == "publish":
                m = msgs.setdefault(ev["id"], Msg(ev["id"], ev.get("origin", node)))
                if m.t0 is None or t < m.t0:  # the first publish line, should one repeat
                    m.t0 = t
            elif kind == "deliver":
                m = msgs.setdefault(ev["id"], Msg(ev["id"], ev.get("origin", "?")))
                if node not in m.got:
                    m.got[node] = (t, int(ev.get("hops", 0)))
        except (KeyError, TypeError, ValueError):
            bad += 1  # an event missing its id, with a bad time or hop count: skipped
    # a board that never printed an event is a node that got nothing, not no node
    nodes |= {f"port:{p}" for p in ports - named}
    n = len(nodes)
    per: list[dict[str, Any]] = []
    lat_all: list[float] = []
    hops_all: list[int] = []
    delivered = expected = 0
    for m in sorted(msgs.values(), key=lambda m: (m.t0 if m.t0 is not None else math.inf, m.id)):
        others = nodes - {m.origin}
        got = {k: v for k, v in m.got.items() if k != m.origin}
        delivered += len(got.keys() & others)
        expected += len(others)
        lats = [(t - m.t0) * 1000.0 for t, _ in got.values()] if m.t0 is not None else []
        lat_all += lats
        hops = [h for _, h in got.values()]
        hops_all += hops
        per.append({
            "id": m.id, "origin": m.origin, "published": m.t0 is not None,
            "delivered": len(got), "of": len(others),
            "missing": sorted(others - got.keys()),
            "latency_ms_p50": _r(percentile(lats, 50)), "latency_ms_max": _r(max(lats) if lats else None),
            "hops_max": max(hops) if hops else None,
            "nodes": {k: {"ms": _r((t - m.t0) * 1000.0) if m.t0 is not None else None, "hops": h}
                      for k, (t, h) in sorted(got.items())},
        })
    return {
        "nodes": n,
        "messages": len(msgs),
        "deliveries": delivered,
        "delivery_ratio": round(delivered / expected, 4) if expected else None,
        "latency_ms_p50": _r(percentile(lat_all, 50)),
        "latency_ms_p99": _r(percentile(lat_all, 99)),
        "latency_ms_max": _r(max(lat_all) if lat_all else None),
        "hops_mean": round(sum(hops_all) / len(hops_all), 2) if hops_all else None,
        "hops_max": max(hops_all) if hops_all else None,
        "disconnects": disconnects,
        "bad_records": bad,
        "per_message": per,
        "_latencies": lat_all,
        "_hops": hops_all,
    }


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def public(rep: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rep.items() if not k.startswith("_")}


def plot(rep: dict[str, Any], out: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    lat = sorted(rep["_latencies"])
    if lat:
        a.step(lat, [(i + 1) / len(lat) for i in range(len(lat))], where="post")
    a.set_xlabel("latency (ms, host clock)")
    a.set_ylabel("fraction of deliveries")
    ratio = rep["delivery_ratio"]
    a.set_title(f"{rep['messages']} messages, {rep['nodes']} nodes, delivery "
                + (f"{ratio:.1%}" if ratio is not None else "n/a"))
    a.grid(True, alpha=0.3)
    hops = rep["_hops"]
    if hops:
        b.hist(hops, bins=range(1, max(hops) + 2), align="left", rwidth=0.8)
    b.set_xlabel("hops")
    b.set_ylabel("deliveries")
    b.set_title("hop count")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def print_report(rep: dict[str, Any], echo_table: bool = True) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console(highlight=False)
    if echo_table and rep["per_message"]:
        t = Table(title="deliveries per message")
        for col in ("id", "origin", "delivered", "p50 ms", "max ms", "max hops", "missing"):
            t.add_column(col, justify="right" if col not in ("id", "origin", "missing") else "left")
        for m in rep["per_message"]:
            t.add_row(m["id"], m["origin"], f"{m['delivered']}/{m['of']}", _f(m["latency_ms_p50"]),
                      _f(m["latency_ms_max"]), _f(m["hops_max"]),
                      " ".join(m["missing"][:6]) + (" ..." if len(m["missing"]) > 6 else ""))
        con.print(t)
    ratio = rep["delivery_ratio"]
    con.print(f"nodes {rep['nodes']}  messages {rep['messages']}  delivery ratio "
              f"{'n/a' if ratio is None else f'{ratio:.1%}'}  latency p50 {_f(rep['latency_ms_p50'])} ms"
              f"  p99 {_f(rep['latency_ms_p99'])} ms  hops mean {_f(rep['hops_mean'])} max "
              f"{_f(rep['hops_max'])}", markup=False)


def _f(x: Any) -> str:
    return "-" if x is None else str(x)


@click.command("report")
@click.argument("run", type=click.Path(dir_okay=False))
@click.option("--plot", "plot_out", default=None, type=click.Path(dir_okay=False), help="write a PNG plot")
@click.option("--json", "json_out", default=None, type=click.Path(dir_okay=False), help="write the figures as JSON")
def report_cmd(run: str, plot_out: str | None, json_out: str | None) -> None:
    """Per message: which nodes got it, when, in how many hops; delivery ratio and latency."""
    try:
        rep = analyse(read_jsonl(run))
    except ReportError as e:
        raise click.ClickException(str(e)) from None
    if not rep["messages"]:
        raise click.ClickException(f"{run}: no publish or deliver events in it")
    print_report(rep)
    try:
        if json_out:
            Path(json_out).write_text(json.dumps(public(rep), indent=1) + "\n")
        if plot_out:
            plot(rep, plot_out)
            click.echo(f"plot: {plot_out}")
    except OSError as e:
        raise click.ClickException(f"{e.filename or json_out or plot_out}: {e.strerror}") from None
