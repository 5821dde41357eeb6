"""`make bench`'s simulator matrix: writes <out>/sim.json, sim.md and plots.

    python -m rumor_host.sim.bench --out bench [--quick]

ESP-NOW: N = 100, 1000, 5000 on rgg (degree 10) with loss 0, 0.1, 0.3;
LoRa: N = 100, 500 at SF7 and SF10; and the speed of the simulator itself
(10 000 nodes x 100 messages, rgg degree 10, the rumor strategy), timed.
At N = 5000 the seed strategy (tens of unicast frames per node per message)
runs 20 messages instead of 100, in its own row, to keep the matrix in minutes.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from .engine import SimParams, simulate
from .plot import plot_report
from .report import json_report, markdown_table

ALL = ("flood", "seed", "managed-flood", "rumor")
NO_SEED = ("flood", "managed-flood", "rumor")


@dataclass
class Case:
    key: str
    params: SimParams
    strategies: tuple[str, ...]


def matrix(quick: bool = False) -> list[Case]:
    cases = []
    for n in (100, 1000) if quick else (100, 1000, 5000):
        for loss in (0.0, 0.1, 0.3):
            key = f"espnow-n{n}-loss{loss}"
            if n >= 5000:
                cases.append(Case(key, SimParams(nodes=n, loss=loss), NO_SEED))
                cases.append(Case(key + "-seed20", SimParams(nodes=n, loss=loss, messages=20),
                                  ("flood", "seed")))
            else:
                cases.append(Case(key, SimParams(nodes=n, loss=loss), ALL))
    for n in (100,) if quick else (100, 500):
        for sf in (7, 10):
            cases.append(Case(f"lora-sf{sf}-n{n}", SimParams(nodes=n, radio="lora", sf=sf), ALL))
    return cases


def speed_case(nodes: int = 10_000, messages: int = 100) -> Case:
    return Case(f"speed-n{nodes}", SimParams(nodes=nodes, messages=messages), ("rumor",))


def targets(runs: dict) -> list[str]:
    """The issue's targets, checked against the matrix (reported, not asserted)."""
    out = []
    r = runs.get("espnow-n1000-loss0.1")
    if r:
        ru, fl, b = r["results"]["rumor"], r["results"]["flood"], r["bounds"]
        checks = [
            ("delivery >= 99.9%", ru["delivery_ratio"] >= 0.999, f"{ru['delivery_ratio']:.4%}"),
            ("tx <= 0.45x flood", ru["tx_per_message"] <= 0.45 * fl["tx_per_message"],
             f"{ru['tx_per_message'] / fl['tx_per_message']:.3f}x"),
            ("p99 <= 1.25x flood", ru["latency_ms_p99"] <= 1.25 * fl["latency_ms_p99"],
             f"{ru['latency_ms_p99'] / fl['latency_ms_p99']:.2f}x "
             f"({ru['latency_ms_p99']} vs {fl['latency_ms_p99']} ms)"),
            ("tx <= 2x greedy CDS", ru["tx_per_message"] <= 2 * b["cds_size"],
             f"{ru['tx_per_message'] / b['cds_size']:.2f}x ({ru['tx_per_message']} vs {b['cds_size']})"),
        ]
        out.append("rumor at N=1000, rgg degree 10, loss 0.1, ESP-NOW:")
        out += [f"- {'met' if ok else 'MISSED'}: {name}: {got}" for name, ok, got in checks]
        sd = r["results"].get("seed")
        if sd:
            out.append(f"- the seed (fanout 4 unicast push/pull): delivery {sd['delivery_ratio']:.2%}, "
                       f"p99 {sd['latency_ms_p99']:.0f} ms, {sd['tx_per_message']:.0f} frames/message")
    for key, r in runs.items():
        if key.startswith("lora"):
            ru, fl = r["results"]["rumor"], r["results"]["flood"]
            budget = all(m.get("duty_budget", {}).get("ok", True) for m in r["results"].values())
            ok = ru["duty_cycle_max"] < 0.01 and ru["delivery_ratio"] >= 0.99 and budget
            out.append(f"- {key}: {'met' if ok else 'MISSED'}: rumor duty max {ru['duty_cycle_max']:.3%}, "
                       f"{'no node of any strategy over its duty budget in any hour' if budget else 'a node OVER its duty budget'}, "
                       f"delivery {ru['delivery_ratio']:.2%}; flood collided receptions/message "
                       f"{fl['collided_rx_per_message']}, delivery {fl['delivery_ratio']:.2%}")
    return out


SPEED_KEY = "speed-n10000"
SPEED_HEAD = "## Simulator speed"


def speed_run(console: Console) -> dict:
    """The speed case, timed: wall and CPU seconds, with the 1-minute load
    average before it (the CPU may be shared: a loaded machine is slower)."""
    c = speed_case()
    load = os.getloadavg()[0]
    console.print(f"speed: {c.params.nodes} nodes x {c.params.messages} messages, rgg degree "
                  f"{c.params.degree:g}, {', '.join(c.strategies)} (load average {load:.2f})")
    t0 = time.perf_counter()
    c0 = time.process_time()
    rep = simulate(c.params, c.strategies)
    rec = json_report(rep)
    rec["wall_s"] = round(time.perf_counter() - t0, 2)
    rec["cpu_s"] = round(time.process_time() - c0, 2)
    rec["load_1m_before"] = round(load, 2)
    return rec


def _num(x: int) -> str:
    return f"{x:,}".replace(",", " ")


def speed_lines(rec: dict) -> list[str]:
    """sim.md's section on the simulator's own speed."""
    r = rec["results"]["rumor"]
    p = rec["params"]
    return [SPEED_HEAD, "",
            f"{_num(p['nodes'])} nodes x {p['messages']} messages, rgg degree {p['degree']:g}, "
            f"rumor: {rec['wall_s']} s wall, {rec['cpu_s']} s CPU ({_num(r['events'])} events, "
            f"delivery {r['delivery_ratio']:.4%}; target <= 60 s; load average "
            f"{rec['load_1m_before']} before it: on a shared CPU the wall time grows)",
            ""]


def merge_speed(outdir: Path, rec: dict) -> None:
    """Put a speed run into an existing sim.json and sim.md (the matrix's
    figures are kept): `--speed-only` times the simulator without the matrix."""
    js = outdir / "sim.json"
    data = json.loads(js.read_text()) if js.exists() else {"runs": {}}
    data.update(machine=platform.machine(), python=platform.python_version())
    data["runs"][SPEED_KEY] = rec
    js.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    md = outdir / "sim.md"
    lines = md.read_text().split("\n") if md.exists() else ["# Simulator benchmark", ""]
    if SPEED_HEAD in lines:  # replace the old section (up to the next heading)
        i = lines.index(SPEED_HEAD)
        j = next((k for k in range(i + 1, len(lines)) if lines[k].startswith("#")), len(lines))
        lines[i:j] = speed_lines(rec)
    else:
        lines += speed_lines(rec)
    md.write_text("\n".join(lines))


def run_matrix(cases: list[Case], outdir: Path, console: Console) -> tuple[dict, list[str]]:
    """Every case of the matrix: (runs by key, sim.md's lines), sim.json
    rewritten after each case."""
    runs: dict[str, dict] = {}
    md = ["# Simulator benchmark", "",
          "Generated by `python -m rumor_host.sim.bench`; the real core from firmware/rumor/ "
          "on every node.  Ratios: tx/flood and p99/flood against the flood row, tx/CDS "
          "against the greedy connected dominating set, p99/floor against the largest "
          "source eccentricity times one data-frame airtime.", ""]
    with Progress(TextColumn("{task.description:<34}"), BarColumn(),
                  TextColumn("{task.percentage:>5.1f}%"), TimeElapsedColumn(),
                  console=console) as prog:
        total = prog.add_task("matrix", total=sum(len(c.strategies) for c in cases))
        cur = prog.add_task("", total=1.0)
        for c in cases:
            def cb(name: str, f: float, key: str = c.key) -> None:
                prog.update(cur, description=f"{key} {name}", completed=f)
                if f >= 1.0:
                    prog.advance(total)

            t0 = time.perf_counter()
            rep = simulate(c.params, c.strategies, cb)
            wall = round(time.perf_counter() - t0, 2)
            runs[c.key] = json_report(rep)
            runs[c.key]["wall_s"] = wall
            plot_report(rep, outdir / f"sim-{c.key}.png")
            md.append(markdown_table(rep, title=f"{c.key} ({c.params.messages} messages, "
                                                f"{wall} s wall)"))
            (outdir / "sim.json").write_text(json.dumps(
                {"machine": platform.machine(), "python": platform.python_version(),
                 "runs": runs}, indent=2, sort_keys=True) + "\n")
    return runs, md


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--out", type=click.Path(file_okay=False), default="bench", show_default=True,
              help="Directory for sim.json, sim.md and the plots.")
@click.option("--quick", is_flag=True, help="N <= 1000 ESP-NOW and N = 100 LoRa only.")
@click.option("--no-speed", is_flag=True, help="Skip the 10 000-node speed run.")
@click.option("--speed-only", is_flag=True,
              help="Only the 10 000-node speed run, merged into an existing sim.json and sim.md.")
@click.option("--only", default=None, help="Run only cases whose key contains this text.")
def main(out: str, quick: bool, no_speed: bool, speed_only: bool, only: str | None) -> None:
    """Run the simulator's benchmark matrix, then time the simulator itself
    (10 000 nodes x 100 messages)."""
    outdir = Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True)
    if speed_only:
        rec = speed_run(console)
        merge_speed(outdir, rec)
        console.print(speed_lines(rec)[2])
        console.print(f"wrote {outdir / 'sim.json'} and {outdir / 'sim.md'}")
        return
    cases = matrix(quick)
    if only:
        cases = [c for c in cases if only in c.key]
    runs, md = run_matrix(cases, outdir, console)
    tl = targets(runs)
    if tl:
        md += ["## Targets", ""] + tl + [""]
    (outdir / "sim.md").write_text("\n".join(md))
    console.print("\n".join(tl))
    if not no_speed and (not only or only in SPEED_KEY):
        rec = speed_run(console)
        merge_speed(outdir, rec)
        console.print(speed_lines(rec)[2])
    console.print(f"wrote {outdir / 'sim.json'}, {outdir / 'sim.md'} and plots")


if __name__ == "__main__":
    main()
