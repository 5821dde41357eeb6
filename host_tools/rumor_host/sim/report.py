"""The tables a run prints (rich) and writes (Markdown), and its JSON."""

from __future__ import annotations

import json
from pathlib import Path

from rich.table import Table

COLUMNS = (
    # header, key, format
    ("delivery", "delivery_ratio", "{:.2%}"),
    ("p50 ms", "latency_ms_p50", "{:.1f}"),
    ("p99 ms", "latency_ms_p99", "{:.1f}"),
    ("max ms", "latency_ms_max", "{:.1f}"),
    ("tx/msg", "tx_per_message", "{:.1f}"),
    ("airtime ms/msg", "airtime_ms_per_message", "{:.1f}"),
    ("dups/node", "duplicates_per_node", "{:.2f}"),
    ("mem B", "memory_bytes", "{:d}"),
)


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def rows(report: dict) -> tuple[list[str], list[list[str]]]:
    res = report["results"]
    b = report["bounds"]
    flood = res.get("flood")
    head = ["strategy"] + [c[0] for c in COLUMNS]
    head += ["tx/flood", "p99/flood", "tx/CDS", "p99/floor", "duty max"]
    out = []
    for name, m in res.items():
        r = [name] + [fmt.format(m[key]) for _h, key, fmt in COLUMNS]
        r.append(_ratio(m["tx_per_message"], flood["tx_per_message"]) if flood else "-")
        r.append(_ratio(m["latency_ms_p99"], flood["latency_ms_p99"]) if flood else "-")
        r.append(_ratio(m["tx_per_message"], b["cds_size"]))
        r.append(_ratio(m["latency_ms_p99"], b["latency_floor_ms_max"]))
        r.append(f"{m['duty_cycle_max']:.3%}")
        out.append(r)
    return head, out


def bounds_line(report: dict) -> str:
    b = report["bounds"]
    n, comp = report.get("params", {}).get("nodes"), b["component_size"]
    where = "" if not n else f" (its largest: {comp} of {n} nodes{'' if comp >= n else ', NOT connected'})"
    return (f"delivery: within each message's source's component{where}; "
            f"bounds: component {b['component_size']} nodes, mean degree {b['mean_degree']}, "
            f"source eccentricity {b['ecc_hops_mean']} hops mean / {b['ecc_hops_max']} max "
            f"(latency floor {b['latency_floor_ms_max']} ms), greedy CDS {b['cds_size']} transmissions")


def rich_table(report: dict, title: str | None = None) -> Table:
    head, body = rows(report)
    t = Table(title=title, caption=bounds_line(report))
    for i, h in enumerate(head):
        t.add_column(h, justify="left" if i == 0 else "right")
    for r in body:
        t.add_row(*r)
    return t


def md_rows(head: list[str], body: list[list[str]]) -> list[str]:
    """A Markdown table: the first column left-aligned, the rest right."""
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join(["---"] + ["--:"] * (len(head) - 1)) + "|"]
    return lines + ["| " + " | ".join(r) + " |" for r in body]


def seed_list(text: str) -> list[int]:
    """--seeds: a range 1-10 or a list 1,4,7."""
    if "-" in text and "," not in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(x) for x in text.split(",") if x.strip()]


def markdown_table(report: dict, title: str | None = None) -> str:
    head, body = rows(report)
    lines = []
    if title:
        lines += [f"### {title}", ""]
    lines += md_rows(head, body)
    lines += ["", bounds_line(report), ""]
    return "\n".join(lines)


AIRTIME_HEAD = ["strategy", "max ms", "p99 ms", "p50 ms", "mean ms", "duty max", "duty p99",
                "duty p50", "duty mean", "top 5 nodes (ms)", "duty budget"]


def budget_text(m: dict) -> str:
    """The duty-cycle verdict of one strategy's run ('-' with no duty cycle)."""
    d = m.get("duty_budget")
    if not d:
        return "-"
    win = f"{d['window_s'] / 3600:g} h" if d["window_s"] >= 3600 else f"{d['window_s']:g} s"
    if d["ok"]:
        return (f"ok: at most {d['worst_window_airtime_ms']:.0f} of {d['window_limit_ms']:.0f} ms "
                f"in any {win}")
    return (f"EXCEEDED: node {d['worst_window_node']} {d['worst_window_airtime_ms']:.0f} ms "
            f"> {d['window_limit_ms']:.0f} ms in one {win}"
            + ("" if d["bucket_ok"] else ", bucket overdrawn"))


def airtime_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    """One row per strategy: the per-node airtime summary (engine.airtime_summary)."""
    out = []
    for name, m in report["results"].items():
        a = m.get("airtime_per_node")
        if not a:
            continue
        top = " ".join(f"{e['node']}:{e['airtime_ms']:.0f}" for e in a["top"])
        out.append([name] + [f"{a[k]:.1f}" for k in ("max_ms", "p99_ms", "p50_ms", "mean_ms")]
                   + [f"{a[k]:.3%}" for k in ("duty_max", "duty_p99", "duty_p50", "duty_mean")]
                   + [top, budget_text(m)])
    return AIRTIME_HEAD, out


def rich_airtime_table(report: dict, title: str | None = "airtime per node") -> Table:
    head, body = airtime_rows(report)
    t = Table(title=title, caption="every frame a node put on air (retries included), over the "
                                   "simulated time; duty budget: LoRa's 1% of any hour")
    for i, h in enumerate(head):
        t.add_column(h, justify="left" if i in (0, len(head) - 2, len(head) - 1) else "right")
    for r in body:
        t.add_row(*r)
    return t


def json_report(report: dict) -> dict:
    """The report without the raw latency lists (the plot's input)."""
    return {k: v for k, v in report.items() if k != "latencies"}


def write_json(report: dict, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_report(report), indent=2, sort_keys=True) + "\n")
