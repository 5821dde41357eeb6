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
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from rumor.console import PREFIX


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


class Records(list[dict[str, Any]]):
    """The records of a run file, and how many of its lines were not records."""

    skipped_lines: int = 0


def read_jsonl(path: str | Path) -> Records:
    """The records of a `rumor logs` file.  Lines that are not JSON objects (a
    record cut short by a crash, bytes a dying disk or a power cut left) are
    skipped and counted in .skipped_lines; a file with no record at all is
    not a run (ReportError, naming its first bad line)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ReportError(f"{path}: cannot read: {e.strerror}") from None
    out = Records()
    first_bad: int | None = None
    binary = 0
    for i, raw in enumerate(data.split(b"\n"), 1):
        raw = raw.strip(b" \t\r\x00")  # a power cut can leave NULs where a record was
        if not raw:
            continue
        try:
            rec = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            rec, binary = None, binary + 1
        except ValueError:
            rec = None
        if isinstance(rec, dict):
            out.append(rec)
            continue
        out.skipped_lines += 1
        if first_bad is None:
            first_bad = i
    if first_bad is not None and not any("t" in r and "port" in r for r in out):
        where = f"{path}: not a text file" if binary else f"{path}:{first_bad}: not a JSON line"
        raise ReportError(f"{where} (is this a `rumor logs` file?)")
    return out


_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
_HEX12 = re.compile(r"[0-9a-fA-F]{12}")


def _node(v: Any) -> str:
    if not isinstance(v, str) or not _HEX8.fullmatch(v):
        raise ValueError("node")
    return v.lower()


def _time(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError("t")
    return float(v)


def _hops(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError("hops")
    return v


def _msg_id(ev: dict[str, Any]) -> tuple[str, str]:
    """(id, origin) of a publish or deliver event: the id is 12 hex digits and
    starts with the origin, or the event is not trusted."""
    mid = ev.get("id")
    if not isinstance(mid, str) or not _HEX12.fullmatch(mid):
        raise ValueError("id")
    mid = mid.lower()
    origin = ev.get("origin", mid[:8])
    if _node(origin) != mid[:8]:
        raise ValueError("origin")
    return mid, mid[:8]


def analyse(records: list[dict[str, Any]]) -> dict[str, Any]:
    nodes: set[str] = set()
    msgs: dict[str, Msg] = {}
    disconnects = 0
    bad = 0
    garbage = cut_events = long_lines = 0
    ports: set[str] = set()  # every port the collector connected to
    named: set[str] = set()  # ports that printed an event naming their node
    for r in records:
        if r.get("collector") in ("connected", "reconnected"):
            ports.add(str(r.get("port")))
        if r.get("collector") == "disconnected":
            disconnects += 1
        if r.get("garbage") or (isinstance(r.get("line"), str) and "\ufffd" in r["line"]):
            garbage += 1
        if r.get("long"):
            long_lines += 1
        line = r.get("line")
        if isinstance(line, str) and PREFIX in line:
            cut_events += 1  # an event the board did not finish (a reset mid-print) or that came garbled
        ev = r.get("ev")
        if not isinstance(ev, dict):
            continue
        try:
            node = _node(ev.get("node"))
            kind = ev.get("ev")
            t = _time(r.get("t"))
            if kind == "publish":
                mid, origin = _msg_id(ev)
                if origin != node:
                    raise ValueError("a node publishing another's message")
            elif kind == "deliver":
                mid, origin = _msg_id(ev)
                nhops = _hops(ev.get("hops"))
        except (KeyError, TypeError, ValueError):
            bad += 1  # an event with a garbled node, id, time or hop count: skipped, not guessed at
            continue
        if node != "00000000":
            nodes.add(node)
            named.add(str(r.get("port")))
        if kind == "publish":
            m = msgs.setdefault(mid, Msg(mid, origin))
            if m.t0 is None or t < m.t0:  # the first publish line, should one repeat
                m.t0 = t
        elif kind == "deliver":
            m = msgs.setdefault(mid, Msg(mid, origin))
            if node not in m.got:
                m.got[node] = (t, nhops)
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
        "skipped_lines": getattr(records, "skipped_lines", 0),
        "cut_events": cut_events,
        "garbage_lines": garbage,
        "long_lines": long_lines,
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


def skipped_line(rep: dict[str, Any]) -> str:
    """One line: what the report could not use, and why."""
    parts = [(rep.get("skipped_lines", 0), "unreadable in the file (cut by a crash?)"),
             (rep.get("cut_events", 0), "cut events (a board reset mid-line?)"),
             (rep.get("garbage_lines", 0), "garbage from the boards"),
             (rep.get("long_lines", 0), "pieces of over-long lines"),
             (rep.get("bad_records", 0), "events with bad fields")]
    said = [f"{n} {what}" for n, what in parts if n]
    return "skipped: " + (", ".join(said) if said else "nothing")


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
    con.print(skipped_line(rep), markup=False, soft_wrap=True)


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
