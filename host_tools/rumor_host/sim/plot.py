"""Plots of a report: delivery and transmissions per strategy, latency CDF."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_report(report: dict, out: str | Path, title: str | None = None) -> Path:
    res = report["results"]
    names = list(res)
    lat = report.get("latencies", {})
    bounds = report.get("bounds", {})
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(15, 4.5))
    colors = [f"C{i}" for i in range(len(names))]
    bars = a1.bar(names, [100.0 * res[s]["delivery_ratio"] for s in names], color=colors)
    a1.bar_label(bars, fmt="%.2f", fontsize=8)  # bars start at 0: the figure tells the small gaps
    a1.set_ylim(0.0, 108.0)
    a1.set_ylabel("delivery (%)")
    a1.set_title("delivery ratio")
    a2.bar(names, [res[s]["tx_per_message"] for s in names], color=colors)
    if bounds.get("cds_size"):
        a2.axhline(bounds["cds_size"], color="k", ls="--", lw=1, label="greedy CDS bound")
        a2.legend()
    a2.set_yscale("log")
    a2.set_ylabel("frames on air per message")
    a2.set_title("transmissions per message")
    for i, s in enumerate(names):
        v = lat.get(s) or []
        if v:
            ys = [(k + 1) / len(v) * res[s]["delivery_ratio"] for k in range(len(v))]
            a3.step([max(x, 1e-3) for x in v], ys, where="post", color=colors[i], label=s)
    if bounds.get("latency_floor_ms_max"):
        a3.axvline(bounds["latency_floor_ms_max"], color="k", ls="--", lw=1, label="hop floor (max)")
    a3.set_xscale("log")
    a3.set_xlabel("latency (ms)")
    a3.set_ylabel("fraction of expected deliveries")
    a3.set_title("latency CDF")
    a3.legend(fontsize=8)
    for ax in (a1, a2):
        ax.tick_params(axis="x", labelrotation=20)
    if title is None:
        p = report["params"]
        title = (f"{p['nodes']} nodes, {p['topology']}, loss {p['loss']}, {p.get('radio_model', p['radio'])}, "
                 f"{p['messages']} messages, seed {p['seed']}")
    fig.suptitle(title)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
