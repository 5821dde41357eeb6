"""Issue 11's goals, checked per cell of a sweep's summary (sweep.summarize).

One strategy (default rumor) against flood on the same cell, from the
figures the summary already holds (worst seed for delivery, the mean over
seeds of the per-seed ratios for the rest, as matrix.md shows them):

- delivery: worst seed >= 99.9% and >= flood's worst seed;
- p99: p99/flood <= 1.25 on ESP-NOW, <= 2 on LoRa;
- frames: frames/flood (every frame on air) <= 0.5 where the mean degree is
  8 or more, <= 0.8 on sparser meshes (the degree measured on the drawn
  topology: bounds' mean_degree, else the topology rebuilt; so a grid, a
  line or clusters count by what they are, not by their name);
- airtime (LoRa only): airtime/flood <= 0.8;
- cds: frames per message <= 2.5 x the greedy connected dominating set
  (bounds' cds_size: what a good omniscient scheduler would send);
- loaded (LoRa cells named *-loaded only): delivery (worst seed) >=
  managed-flood's, with less airtime per message.

A goal that does not apply to a cell is None; one that applies but lacks
its figures (flood not run, say) is not met, with a note saying what is
missing, so a partial sweep cannot pass by omission.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict
from typing import Any

from .params import SimParams

DELIVERY_MIN = 0.999
P99_MAX = {"espnow": 1.25, "lora": 2.0}
DENSE_DEGREE = 8.0  # mean degree from which frames must halve
FRAMES_MAX_DENSE = 0.5
FRAMES_MAX_SPARSE = 0.8
AIRTIME_MAX_LORA = 0.8
CDS_MAX = 2.5
LOADED_SUFFIX = "-loaded"
LOADED_BASELINE = "managed-flood"

# the goals in the order matrix.md shows them
GOALS = ("delivery", "p99", "frames", "airtime", "cds", "loaded")



def _params(cell: dict) -> dict:
    """The cell's simulator parameters, SimParams' defaults for what it leaves out."""
    return {**asdict(SimParams()), **cell.get("params", {})}


def _goal(value: float | None, limit: float | None, ok: bool | None, **extra: Any) -> dict:
    out = {"value": value, "limit": limit, "ok": ok}
    out.update(extra)
    return out


def _missing(what: str, limit: float | None = None) -> dict:
    return _goal(None, limit, False, note=f"no {what}")


def mean_degree(cell: dict) -> float:
    """The cell's mean degree as drawn: the mean over seeds of bounds'
    mean_degree, else of the topology rebuilt from the cell's parameters."""
    vals = [b["mean_degree"] for b in cell.get("bounds", {}).values() if "mean_degree" in b]
    if vals:
        return round(statistics.fmean(vals), 3)
    from .topology import make_topology

    p = _params(cell)
    seeds = cell.get("seeds") or [1]
    degs = [make_topology(p["topology"], p["nodes"], p["degree"], sd).mean_degree() for sd in seeds]
    return round(statistics.fmean(degs), 3)


def _cds_ratio(cell: dict, runs: list[dict]) -> float | None:
    """Mean over seeds of frames per message / greedy CDS size."""
    bounds = cell.get("bounds", {})
    vals = []
    for r in runs:
        b = bounds.get(str(r["seed"]))
        if b and b.get("cds_size") and r.get("tx_per_message") is not None:
            vals.append(r["tx_per_message"] / b["cds_size"])
    return round(statistics.fmean(vals), 4) if vals else None


def _worst(runs: list[dict], key: str) -> float | None:
    v = [r[key] for r in runs if r.get(key) is not None]
    return max(v) if v else None


def _delivery(m: dict, fm: dict | None) -> dict:
    d = m["delivery_worst"]
    if fm is None:
        return _goal(d, DELIVERY_MIN, False, flood=None, note="no flood runs")
    f = fm["delivery_worst"]
    return _goal(d, DELIVERY_MIN, d >= DELIVERY_MIN and d >= f, flood=f)


def _ratio_goal(m: dict, runs: list[dict], key: str, limit: float) -> dict:
    v = m.get(key)
    if v is None:
        return _missing("ratio to flood", limit)
    return _goal(v, limit, v <= limit, worst_seed=_worst(runs, key))


def _loaded(name: str, lora: bool, m: dict, rows: dict) -> dict | None:
    if not (lora and name.endswith(LOADED_SUFFIX)):
        return None
    base = rows.get(LOADED_BASELINE)
    if base is None:
        return _missing(f"{LOADED_BASELINE} runs")
    bm = base["mean"]
    d, bd = m["delivery_worst"], bm["delivery_worst"]
    air, bair = m.get("airtime_ms_per_message"), bm.get("airtime_ms_per_message")
    if air is None or bair is None:
        return _missing("airtime figures")
    return _goal(round(air / bair, 4) if bair else None, 1.0, d >= bd and air < bair,
                 delivery=d, baseline_delivery=bd, airtime_ms=air, baseline_airtime_ms=bair)


def check_cell(name: str, cell: dict, strategy: str = "rumor") -> dict | None:
    """The goals of one cell (None: the strategy has no runs there)."""
    rows = cell.get("strategies", {})
    row = rows.get(strategy)
    if row is None:
        return None
    m, runs = row["mean"], row["runs"]
    fm = rows["flood"]["mean"] if "flood" in rows else None
    radio = _params(cell)["radio"]
    lora = radio == "lora"
    deg = mean_degree(cell)
    frames_max = FRAMES_MAX_DENSE if deg >= DENSE_DEGREE else FRAMES_MAX_SPARSE
    cds = _cds_ratio(cell, runs)
    goals = {
        "delivery": _delivery(m, fm),
        "p99": _ratio_goal(m, runs, "p99_per_flood", P99_MAX["lora" if lora else "espnow"]),
        "frames": _ratio_goal(m, runs, "frames_per_flood", frames_max),
        "airtime": _ratio_goal(m, runs, "airtime_per_flood", AIRTIME_MAX_LORA) if lora else None,
        "cds": (_missing("CDS bound", CDS_MAX) if cds is None else _goal(cds, CDS_MAX, cds <= CDS_MAX)),
        "loaded": _loaded(name, lora, m, rows),
    }
    ok = all(g["ok"] for g in goals.values() if g is not None)
    return {"radio": radio, "mean_degree": deg, "goals": goals, "ok": ok}


def check(summary: dict, strategy: str = "rumor") -> dict:
    """Every cell's goals, and how many cells meet all of theirs."""
    cells: dict[str, dict] = {}
    missing: list[str] = []
    for name, c in summary.get("cells", {}).items():
        r = check_cell(name, c, strategy)
        if r is None:
            missing.append(name)
        else:
            cells[name] = r
    met = sum(1 for r in cells.values() if r["ok"])
    failing = [n for n, r in cells.items() if not r["ok"]]
    line = f"cells meeting every goal: {met} of {len(cells)}"
    if missing:
        line += f" ({len(missing)} cell(s) without {strategy} runs: {', '.join(missing)})"
    return {"strategy": strategy, "cells": cells, "met": met, "total": len(cells),
            "failing": failing, "missing": missing, "line": line}


# -- matrix.md's section -------------------------------------------------------------
def _mark(ok: bool | None) -> str:
    return "✓" if ok else "✗"


def _cell_text(key: str, g: dict | None) -> str:
    if g is None:
        return "-"
    if g["value"] is None:
        return f"{g.get('note', 'missing')} ✗"
    v = g["value"]
    if key == "delivery":
        fl = g.get("flood")
        return f"{v:.2%}" + (f" (flood {fl:.2%})" if fl is not None else "") + f" {_mark(g['ok'])}"
    if key == "loaded":
        return (f"{g['delivery']:.2%} vs {g['baseline_delivery']:.2%}, airtime {v:.2f}x "
                f"{_mark(g['ok'])}")
    return f"{v:.2f}x (≤{g['limit']:g}) {_mark(g['ok'])}"


def markdown_lines(result: dict) -> list[str]:
    """The "## Goals (issue 11)" section of matrix.md."""
    s = result["strategy"]
    out = ["## Goals (issue 11)", "",
           f"{s} against flood on each cell: delivery (worst seed) >= {DELIVERY_MIN:.1%} and >= "
           f"flood's; p99/flood <= {P99_MAX['espnow']:g} on ESP-NOW, <= {P99_MAX['lora']:g} on "
           f"LoRa; frames/flood <= {FRAMES_MAX_DENSE:g} at mean degree >= {DENSE_DEGREE:g}, <= "
           f"{FRAMES_MAX_SPARSE:g} below; airtime/flood <= {AIRTIME_MAX_LORA:g} on LoRa; frames "
           f"<= {CDS_MAX:g}x the greedy CDS; on the loaded LoRa cell, delivery >= "
           f"{LOADED_BASELINE}'s with less airtime (ratios: means over the seeds).", "",
           "| cell | mean degree | delivery | p99/flood | frames/flood | airtime/flood (LoRa) | "
           f"frames/CDS | loaded vs {LOADED_BASELINE} | all |",
           "|---|--:|--:|--:|--:|--:|--:|--:|:-:|"]
    for name, r in result["cells"].items():
        g = r["goals"]
        out.append(f"| {name} | {r['mean_degree']:.1f} | "
                   + " | ".join(_cell_text(k, g[k]) for k in GOALS) + f" | {_mark(r['ok'])} |")
    out += ["", result["line"][0].upper() + result["line"][1:] + "."]
    out.append("Failing: " + (", ".join(result["failing"]) if result["failing"] else "none") + ".")
    return out
