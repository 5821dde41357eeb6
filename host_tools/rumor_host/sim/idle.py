"""What a mesh sends when nobody publishes: frames per node per hour.

    python -m rumor_host.sim.idle --nodes 100 --degree 10 [--hours 1] [--warmup 10]
    python -m rumor_host.sim.idle --bench --out bench      (make bench-idle)

The simulator's scenario always has traffic (SimParams.messages >= 1), so an
idle run keeps the scenario's one message but never publishes it (its
publish is scheduled after the run's end), and the run stops at the idle
window's end whatever the strategy (an `eventual` strategy's run would
otherwise go on to the message's lifetime and publish it).  With --warmup N
the mesh first carries N messages of ordinary traffic, and the window opens
at the scenario's settle time after the last of them: what the mesh keeps
sending once it is quiet again (digests of what it holds, until it expires).

Frames are counted by kind (data, digest, request: every frame on air, MAC
retries included, as the ledger counts them) from the engine's on_tx hook,
from the window's start; per node per hour is count / nodes / hours.  The
"steady" figures count only the window's second half (a Trickle timer that
has backed off, or a mesh that has fallen silent).
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from rumor import wire as W

from .engine import Engine, Hooks, SimParams, build_scenario
from .strategies import STRATEGIES, strategies_option
from .topology import TOPOLOGIES

KINDS = ("data", "digest", "request")
HOUR_US = 3_600_000_000

# make bench-idle's meshes (name, SimParams fields)
BENCH_MESHES = (
    ("espnow-rgg-n100-d10", {"nodes": 100, "degree": 10.0}),
    ("espnow-grid-7x7", {"nodes": 49, "topology": "grid"}),
    ("lora-sf8-n40-d6", {"nodes": 40, "degree": 6.0, "radio": "lora", "sf": 8}),
)
BENCH_SEEDS = (1, 2, 3)
BENCH_WARMUP = 10  # messages of the "after traffic" runs


class _IdleEngine(Engine):
    """An Engine whose run ends at a fixed time, eventual strategy or not."""

    def __init__(self, sc: Any, strategy: Any, hooks: Hooks, stop_us: int):
        super().__init__(sc, strategy, hooks)
        self.stop_us = stop_us

    def end_us(self) -> int:
        return self.stop_us


class _Counter:
    """The on_tx hook: frames and airtime by kind from `t0` on, and in the
    window's second half (from `half`)."""

    def __init__(self, t0: int, half: int):
        self.t0, self.half = t0, half
        self.n = dict.fromkeys(KINDS, 0)
        self.late = dict.fromkeys(KINDS, 0)
        self.air_us = 0
        self.last_us = -1

    def __call__(self, v: int, frame: bytes, air: int, t: int) -> None:
        if t < self.t0:
            return
        typ = frame[0] & 15
        kind = "data" if typ == W.DATA else "digest" if typ == W.DIGEST else "request"
        self.n[kind] += 1
        if t >= self.half:
            self.late[kind] += 1
        self.air_us += air
        self.last_us = t


def _rates(counts: dict[str, int], nodes: int, hours: float) -> dict[str, float]:
    r = {k: round(c / nodes / hours, 4) for k, c in counts.items()}
    r["frames"] = round(sum(counts.values()) / nodes / hours, 4)
    return r


def idle_run(params: SimParams, strategy: str = "rumor", hours: float = 1.0,
             warmup: int = 0) -> dict:
    """One strategy on one mesh with no traffic for `hours` (after `warmup`
    messages, if any).  ValueError (one line) for bad input."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r} (known: {', '.join(STRATEGIES)})")
    if not hours > 0:
        raise ValueError(f"hours must be > 0, got {hours}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0 messages, got {warmup}")
    p = replace(params, messages=max(warmup, 1))
    sc = build_scenario(p)
    window = int(hours * HOUR_US)
    t0 = sc.end_us if warmup else 0  # warmup: the last publish + the scenario's settle
    stop = t0 + window
    if not warmup:
        sc.publish_us = [stop + 1]  # the one message the scenario must have, never published
    sc.end_us = stop
    ctr = _Counter(t0, t0 + window // 2)
    res = _IdleEngine(sc, STRATEGIES[strategy], Hooks(on_tx=ctr), stop).run()
    n = sc.topo.n
    return {
        "strategy": strategy, "nodes": n, "hours": hours, "warmup": warmup,
        "window_start_s": t0 / 1e6, "counts": dict(ctr.n),
        "per_node_per_hour": _rates(ctr.n, n, hours),
        "steady_per_node_per_hour": _rates(ctr.late, n, hours / 2),
        "airtime_ms_per_node_per_hour": round(ctr.air_us / 1000.0 / n / hours, 3),
        "last_frame_s": round((ctr.last_us - t0) / 1e6, 3) if ctr.last_us >= 0 else None,
        # the whole run's ledger (warmup traffic included): with no warmup
        # these are the same frames the hook counted
        "ledger": {"frames": res["tx_per_message"] * p.messages,
                   "data": res["data_tx_per_message"] * p.messages,
                   "digest": res["digest_tx_per_message"] * p.messages,
                   "request": res["request_tx_per_message"] * p.messages},
        "warmup_delivery": res["delivery_ratio"] if warmup else None,
    }


def _mean_runs(runs: list[dict]) -> dict:
    """The mean over seeds of the per-node-per-hour figures."""
    out: dict[str, Any] = {}
    for key in ("per_node_per_hour", "steady_per_node_per_hour"):
        out[key] = {k: round(statistics.fmean(r[key][k] for r in runs), 4)
                    for k in ("frames", *KINDS)}
    out["airtime_ms_per_node_per_hour"] = round(
        statistics.fmean(r["airtime_ms_per_node_per_hour"] for r in runs), 3)
    return out


def bench(strategies: list[str], hours: float = 1.0, seeds: tuple[int, ...] = BENCH_SEEDS,
          meshes: tuple = BENCH_MESHES, warmup: int = BENCH_WARMUP) -> dict:
    """make bench-idle's figures: every mesh x strategy x mode (cold: no
    traffic since boot; after: once `warmup` messages have settled), each
    the mean over `seeds`."""
    t = time.perf_counter()
    rows = []
    for name, fields in meshes:
        for s in strategies:
            for mode, w in (("cold", 0), ("after", warmup)):
                runs = [idle_run(SimParams(seed=sd, **fields), s, hours, w) for sd in seeds]
                rows.append({"mesh": name, "params": fields, "strategy": s, "mode": mode,
                             "warmup": w, "seeds": list(seeds), **_mean_runs(runs),
                             "runs": runs})
    from .sweep import code_fingerprint

    return {"hours": hours, "code": code_fingerprint(), "rows": rows,
            "wall_s": round(time.perf_counter() - t, 2)}


def markdown(rep: dict) -> str:
    out = ["# Idle traffic", "",
           f"Frames per node per hour with no traffic, over {rep['hours']:g} simulated hour(s), "
           f"mean over seeds. cold: no message since boot; after: the window opens once "
           f"{BENCH_WARMUP} messages have been delivered and the scenario's settle time has "
           "passed. steady: the window's second half only. "
           f"{rep['wall_s']:.0f} s of simulator runs.", "",
           "| mesh | strategy | mode | frames | data | digests | requests | steady frames | "
           "airtime ms/node/h |",
           "|---|---|---|--:|--:|--:|--:|--:|--:|"]
    for r in rep["rows"]:
        f, st = r["per_node_per_hour"], r["steady_per_node_per_hour"]
        out.append(f"| {r['mesh']} | {r['strategy']} | {r['mode']} | {f['frames']:.2f} | "
                   f"{f['data']:.2f} | {f['digest']:.2f} | {f['request']:.2f} | "
                   f"{st['frames']:.2f} | {r['airtime_ms_per_node_per_hour']:.1f} |")
    out.append("")
    return "\n".join(out)


def run_line(r: dict) -> str:
    """One idle run as a line of text."""
    f = r["per_node_per_hour"]
    last = "none" if r["last_frame_s"] is None else f"at {r['last_frame_s']:.1f} s"
    return (f"{r['strategy']:<16} frames/node/h {f['frames']:.2f} (data {f['data']:.2f}, "
            f"digests {f['digest']:.2f}, requests {f['request']:.2f}); steady "
            f"{r['steady_per_node_per_hour']['frames']:.2f}; last frame {last}")


@click.command("idle", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--nodes", "-n", type=click.IntRange(min=2), default=100, show_default=True)
@click.option("--topology", type=click.Choice(TOPOLOGIES), default="rgg", show_default=True)
@click.option("--degree", type=click.FloatRange(min=0, min_open=True), default=10.0,
              show_default=True, help="Target mean degree (rgg only).")
@click.option("--loss", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.0,
              show_default=True)
@click.option("--radio", type=click.Choice(["espnow", "lora"]), default="espnow", show_default=True)
@click.option("--sf", type=click.IntRange(7, 12), default=7, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--strategy", "strategies", default="rumor,flood", show_default=True,
              callback=strategies_option, help="Comma-separated strategies.")
@click.option("--hours", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="Simulated hours of idle time.")
@click.option("--warmup", type=click.IntRange(min=0), default=0, show_default=True,
              help="Messages of traffic first; the window opens once they have settled.")
@click.option("--bench", "bench_mode", is_flag=True,
              help=f"Run make bench-idle's meshes ({', '.join(m for m, _ in BENCH_MESHES)}; "
                   "seeds 1-3; cold and after traffic) instead of the mesh options, and write "
                   "OUT/idle.json and OUT/idle.md.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("bench"),
              show_default=True, help="With --bench: the directory written.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Without --bench: write the runs as JSON here.")
def idle_cmd(nodes: int, topology: str, degree: float, loss: float, radio: str, sf: int,
             seed: int, strategies: list[str], hours: float, warmup: int, bench_mode: bool,
             out: Path, json_out: Path | None) -> None:
    """Frames per node per hour a mesh sends with no traffic (data, digests,
    requests), for each strategy."""
    if bench_mode:
        rep = bench(strategies, hours)
        out.mkdir(parents=True, exist_ok=True)
        (out / "idle.json").write_text(json.dumps(rep, indent=1) + "\n")
        md = markdown(rep)
        (out / "idle.md").write_text(md)
        click.echo(md)
        click.echo(f"wrote {out / 'idle.json'}, {out / 'idle.md'}", err=True)
        return
    params = SimParams(nodes=nodes, topology=topology, degree=degree, loss=loss, radio=radio,
                       sf=sf, seed=seed)
    try:
        runs = [idle_run(params, s, hours, warmup) for s in strategies]
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    for r in runs:
        click.echo(run_line(r))
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(runs, indent=1) + "\n")
        click.echo(f"wrote {json_out}", err=True)


if __name__ == "__main__":
    idle_cmd()
