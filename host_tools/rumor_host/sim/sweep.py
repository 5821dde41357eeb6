"""`rumor sim sweep MATRIX.toml`: every cell x seed x strategy of a matrix
(matrix.py), in parallel, resumable, summarised.

Each task (one strategy on one cell and seed) is one call of the simulator's
public `simulate()`; tasks run on a process pool (`--workers`, default all
cores) or, with `--dask tcp://HOST:8786`, on a Dask distributed cluster
(`pip install 'rumor-mesh[cluster]'`; the workers need rumor-mesh installed
too).  Every finished task is appended to the results file (JSONL, one
record a line, flushed at once), so an interrupted sweep loses only the
tasks under way: run it again and it does only what is missing.  A record
whose cell parameters or code changed since is not reused (its key holds a
hash of the parameters and of the core's and simulator's sources; Dask
workers must run the same code).  A final truncated line (a sweep killed
mid-write) is ignored.

From the records: matrix.json (per cell and strategy: delivery, p50/p99,
frames and airtime, each seed's and their mean, and the ratios to flood on
the same cell and seed), matrix.md (the same as tables, and a summary per
strategy: worst and median delivery, frames/flood, p99/flood) and a Pareto
plot (frames/flood against p99/flood, one point per cell and strategy).
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import click

from . import goals
from .engine import SimParams, simulate
from .matrix import Matrix, Task

DASK_CONNECT_S = 10  # how long to try reaching a Dask scheduler
DELIVERY_OK = 0.99  # the plot draws points that deliver less hollow

# the metrics a record keeps (the simulator's names)
KEEP = ("delivery_ratio", "delivery_ratio_at_settle", "latency_ms_p50", "latency_ms_p99",
        "latency_ms_max",
        "tx_per_message", "airtime_ms_per_message", "data_tx_per_message",
        "digest_tx_per_message", "request_tx_per_message", "duplicates_per_node",
        "duty_cycle_max", "delivered", "expected", "memory_bytes", "collided_rx_per_message",
        "cad_busy", "cad_forced", "relays_cancelled", "sim_ms")


class TaskError(RuntimeError):
    """A simulator run raised; str() names the run and the error."""


def run_task(task: Task) -> dict:
    """Run one task; its JSONL record."""
    t0 = time.perf_counter()
    try:
        report = simulate(SimParams(**task.params), [task.strategy])
    except Exception as e:  # noqa: BLE001 - named, for the one line the sweep prints
        raise TaskError(f"run {task.cell} seed {task.seed} {task.strategy} failed: "
                        f"{type(e).__name__}: {e}") from e
    m = report["results"][task.strategy]
    return {"key": task.key, "cell": task.cell, "seed": task.seed, "strategy": task.strategy,
            "params": task.params, "metrics": {k: m[k] for k in KEEP if k in m},
            "bounds": report.get("bounds", {}), "wall_s": round(time.perf_counter() - t0, 3)}


def read_records(path: Path) -> list[dict]:
    """The complete records of a results file (a torn last line is left out)."""
    out: list[dict] = []
    if not path.exists():
        return out
    with path.open() as f:
        for line in f:
            if not line.endswith("\n"):
                break  # killed mid-write: that task runs again
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict) and "key" in rec:
                out.append(rec)
    return out


def code_fingerprint() -> str:
    """A hash of the sources a run's figures depend on: the core (rumor)
    and the simulator (rumor_host.sim).  Records made by other code are stale."""
    import rumor

    h = hashlib.sha1()
    for d in (Path(rumor.__file__).parent, Path(__file__).parent):
        for f in sorted(d.rglob("*.py")):
            h.update(str(f.relative_to(d)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


def pending(matrix: Matrix, path: Path, code: str | None = None) -> tuple[list[Task], dict[str, dict], int]:
    """(the tasks still to run, longest first; the records already done, by
    key; how many records in the file are stale: other code or parameters)."""
    code = code_fingerprint() if code is None else code
    keys = {t.key for t in matrix.tasks(code)}
    recs = read_records(path)
    done = {r["key"]: r for r in recs if r["key"] in keys}
    todo = [t for t in matrix.tasks(code) if t.key not in done]
    todo.sort(key=lambda t: -t.cost())
    return todo, done, len(recs) - len(done)


def _repair(path: Path, keep: dict[str, dict], stale: int) -> None:
    """Cut a torn last line so appends start on a line of their own, and
    drop stale records (rewriting the file with the current ones)."""
    if not path.exists() or path.stat().st_size == 0:
        return
    if stale:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in keep.values()))
        tmp.replace(path)
        return
    data = path.read_bytes()
    if not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


def _local(tasks: list[Task], workers: int) -> Iterator[dict]:
    if workers <= 1:
        for t in tasks:
            yield run_task(t)
        return
    ex = ProcessPoolExecutor(max_workers=workers, initializer=_worker_init)
    try:
        futs: set[Future] = {ex.submit(run_task, t) for t in tasks}
        while futs:
            done, futs = wait(futs, return_when=FIRST_COMPLETED)
            for f in done:
                yield f.result()
    except BaseException:
        # interrupted (Ctrl-C, SIGTERM, the consumer gone) or a run failed:
        # stop the runs under way now rather than wait for them
        for proc in list(getattr(ex, "_processes", {}).values()):
            proc.terminate()
        raise
    finally:
        ex.shutdown(wait=False, cancel_futures=True)


def _worker_init() -> None:
    """Pool workers leave Ctrl-C to the sweep, which stops them with SIGTERM
    (its default action here, not the sweep's own handler inherited by fork)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _dask(tasks: list[Task], address: Any) -> Iterator[dict]:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise RuntimeError("--dask needs Dask distributed: pip install 'rumor-mesh[cluster]'") from None
    if hasattr(address, "submit"):
        client = address  # an already connected Client (tests)
    else:
        try:
            client = Client(address, timeout=DASK_CONNECT_S)
        except (OSError, TimeoutError, ValueError) as e:
            raise RuntimeError(f"cannot reach the Dask scheduler at {address}: {e}") from None
    try:
        futs = [client.submit(run_task, t, key=f"rumor-{t.key}", pure=False) for t in tasks]
        for f in as_completed(futs):
            yield f.result()
    finally:
        if client is not address:
            client.close()


def run_sweep(matrix: Matrix, results: Path, workers: int | None = None, dask: Any = None,
              on_record: Callable[[dict, int, int], None] | None = None,
              cells: Iterable[str] | None = None) -> list[dict]:
    """Run what is missing from `results` (only in `cells`, if given) and
    return every record of the matrix (old and new), in matrix order.
    on_record(record, done, total) is called after each new record is written."""
    code = code_fingerprint()
    todo, done, stale = pending(matrix, results, code)
    if cells is not None:
        keep = set(cells)
        todo = [t for t in todo if t.cell in keep]
    tasks = matrix.tasks(code)
    total = len(tasks)
    if todo:
        results.parent.mkdir(parents=True, exist_ok=True)
        _repair(results, done, stale)
        stream = _dask(todo, dask) if dask is not None else _local(todo, workers or os.cpu_count() or 1)
        with results.open("a") as f:
            for rec in stream:
                f.write(json.dumps(rec, sort_keys=True) + "\n")
                f.flush()
                done[rec["key"]] = rec
                if on_record is not None:
                    on_record(rec, len(done), total)
    return [done[t.key] for t in tasks if t.key in done]


# -- summary -------------------------------------------------------------------------
def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 4) if b else None


def _mean(vals: Iterable[float | None]) -> float | None:
    v = [x for x in vals if x is not None]
    return round(statistics.fmean(v), 6) if v else None


def summarize(matrix: Matrix, records: list[dict]) -> dict:
    """matrix.json's content: per cell and strategy, each seed's figures and
    ratios to flood (same cell and seed), their means, and the summary."""
    by = {(r["cell"], r["seed"], r["strategy"]): r for r in records}
    cells: dict[str, dict] = {}
    for c in matrix.cells:
        rows: dict[str, dict] = {}
        for s in c.strategies:
            runs = []
            for seed in c.seeds:
                r = by.get((c.name, seed, s))
                if r is None:
                    continue
                m = r["metrics"]
                fl = by.get((c.name, seed, "flood"))
                f = fl["metrics"] if fl else None
                runs.append({
                    "seed": seed, **m,
                    "frames_per_flood": _ratio(m["tx_per_message"], f["tx_per_message"]) if f else None,
                    "p99_per_flood": _ratio(m["latency_ms_p99"], f["latency_ms_p99"]) if f else None,
                    "airtime_per_flood": _ratio(m["airtime_ms_per_message"], f["airtime_ms_per_message"]) if f else None,
                    "wall_s": r.get("wall_s")})
            if runs:
                mean = {k: _mean(x.get(k) for x in runs) for k in (
                    "delivery_ratio", "latency_ms_p50", "latency_ms_p99", "tx_per_message",
                    "airtime_ms_per_message", "frames_per_flood", "p99_per_flood",
                    "airtime_per_flood")}
                mean["delivery_worst"] = min(x["delivery_ratio"] for x in runs)
                # at the common cut-off (last publish + settle): differs from
                # delivery_ratio only for a run that goes on (the seed's)
                mean["delivery_at_settle_worst"] = min(
                    x.get("delivery_ratio_at_settle", x["delivery_ratio"]) for x in runs)
                rows[s] = {"mean": mean, "runs": runs}
        bounds = {}  # per seed (the topology depends on it)
        for sd in c.seeds:
            for s in c.strategies:
                r = by.get((c.name, sd, s))
                if r is not None and r.get("bounds"):
                    bounds[str(sd)] = r["bounds"]
                    break
        cells[c.name] = {"params": c.params, "seeds": c.seeds, "bounds": bounds, "strategies": rows}
    out = {"title": matrix.title, "cells": cells, "summary": _summary(cells),
           "skipped": matrix.skipped, "skip_lines": matrix.skip_lines(),
           "wall_s_total": round(sum(r.get("wall_s", 0.0) for r in records), 1)}
    out["goals"] = goals.check(out)  # issue 11's, for rumor (goals.py)
    return out


def _summary(cells: dict) -> dict:
    per: dict[str, dict[str, list[float]]] = {}
    for c in cells.values():
        for s, row in c["strategies"].items():
            d = per.setdefault(s, {"delivery": [], "frames": [], "p99": [], "air": []})
            m = row["mean"]
            d["delivery"].append(m["delivery_worst"])
            for k, src in (("frames", "frames_per_flood"), ("p99", "p99_per_flood"),
                           ("air", "airtime_per_flood")):
                if m[src] is not None:
                    d[k].append(m[src])
    out = {}
    for s, d in per.items():
        out[s] = {
            "cells": len(d["delivery"]),
            "delivery_worst": min(d["delivery"]),
            "delivery_median": round(statistics.median(d["delivery"]), 6),
            "frames_per_flood_median": round(statistics.median(d["frames"]), 4) if d["frames"] else None,
            "frames_per_flood_worst": max(d["frames"]) if d["frames"] else None,
            "p99_per_flood_median": round(statistics.median(d["p99"]), 4) if d["p99"] else None,
            "p99_per_flood_worst": max(d["p99"]) if d["p99"] else None,
            "airtime_per_flood_median": round(statistics.median(d["air"]), 4) if d["air"] else None,
        }
    return out


def _f(v: float | None, fmt: str) -> str:
    return "-" if v is None else fmt.format(v)


def markdown(summary: dict) -> str:
    """matrix.md: the summary table, issue 11's goals, then one table per cell."""
    out = [f"# {summary['title']}", "",
           "Delivery is the worst seed's; the other figures are means over the seeds; ratios are "
           "to flood on the same cell and seed (frames: every frame put on air). Delivery is "
           "counted at the end of the run; the seed's run goes on until its messages' lifetime "
           "(max_message_age_ms) after the last publish (eventual delivery), and \"at settle\" "
           "is what every strategy had delivered by the common cut-off (last publish + settle). "
           f"{summary.get('wall_s_total', 0):.0f} s of simulator runs in all.", "",
           "## Summary per strategy", "",
           "| strategy | cells | delivery worst | delivery median | frames/flood median | "
           "frames/flood worst | p99/flood median | p99/flood worst |",
           "|---|--:|--:|--:|--:|--:|--:|--:|"]
    for s, d in summary["summary"].items():
        out.append(f"| {s} | {d['cells']} | {d['delivery_worst']:.2%} | {d['delivery_median']:.2%} | "
                   f"{_f(d['frames_per_flood_median'], '{:.2f}x')} | {_f(d['frames_per_flood_worst'], '{:.2f}x')} | "
                   f"{_f(d['p99_per_flood_median'], '{:.2f}x')} | {_f(d['p99_per_flood_worst'], '{:.2f}x')} |")
    for line in summary.get("skip_lines", []):
        out += ["", f"_{line}_"]
    g = summary.get("goals") or goals.check(summary)
    if g["total"]:  # a matrix without rumor runs has no goals to show
        out += [""] + goals.markdown_lines(g)
    out += ["", "## Cells", "",
            "| cell | strategy | delivery | at settle | p50 ms | p99 ms | frames/msg | airtime ms/msg | "
            "frames/flood | p99/flood | airtime/flood |",
            "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for name, c in summary["cells"].items():
        for s, row in c["strategies"].items():
            m = row["mean"]
            at = m.get("delivery_at_settle_worst", m["delivery_worst"])
            out.append(f"| {name} | {s} | {m['delivery_worst']:.2%} | {at:.2%} | "
                       f"{_f(m['latency_ms_p50'], '{:.1f}')} | "
                       f"{_f(m['latency_ms_p99'], '{:.1f}')} | {_f(m['tx_per_message'], '{:.1f}')} | "
                       f"{_f(m['airtime_ms_per_message'], '{:.1f}')} | {_f(m['frames_per_flood'], '{:.2f}x')} | "
                       f"{_f(m['p99_per_flood'], '{:.2f}x')} | {_f(m['airtime_per_flood'], '{:.2f}x')} |")
    out.append("")
    return "\n".join(out)


def pareto_plot(summary: dict, path: str | Path) -> None:
    """frames/flood (y) against p99/flood (x), one point per cell and strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 6))
    markers = "osD^vP*X"
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, s in enumerate(summary["summary"]):
        pts = []
        for c in summary["cells"].values():
            m = c["strategies"].get(s, {}).get("mean")
            if m and m["p99_per_flood"] and m["frames_per_flood"]:
                pts.append((m["p99_per_flood"], m["frames_per_flood"],
                            m["delivery_worst"] >= DELIVERY_OK))
        if not pts:
            continue
        col = colors[i % len(colors)]
        mk = markers[i % len(markers)]
        ok = [(x, y) for x, y, good in pts if good]
        bad = [(x, y) for x, y, good in pts if not good]
        n_ok = len(ok)
        label = f"{s} ({n_ok} of {len(pts)} cells >= {DELIVERY_OK:.0%} delivered)"
        if ok:
            ax.scatter([x for x, _ in ok], [y for _, y in ok], marker=mk, color=col, alpha=0.8,
                       s=42, label=label)
        if bad:  # hollow: a cheap, fast point that does not deliver is no bargain
            ax.scatter([x for x, _ in bad], [y for _, y in bad], marker=mk, facecolors="none",
                       edgecolors=col, s=42, label=None if ok else label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.axvline(1.0, color="grey", lw=0.8, ls="--")
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("p99 latency / flood's (same cell and seed, mean over seeds)")
    ax.set_ylabel("frames on air / flood's")
    ax.set_title(f"{summary['title']}: cheaper is lower, faster is left\n"
                 f"(hollow: worst seed delivered under {DELIVERY_OK:.0%})", fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(summary: dict, json_out: Path | None, md_out: Path | None,
                  plot_out: Path | None) -> list[Path]:
    written = []
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(summary, indent=1, sort_keys=False) + "\n")
        written.append(json_out)
    if md_out:
        md_out.parent.mkdir(parents=True, exist_ok=True)
        md_out.write_text(markdown(summary))
        written.append(md_out)
    if plot_out:
        plot_out.parent.mkdir(parents=True, exist_ok=True)
        pareto_plot(summary, plot_out)
        written.append(plot_out)
    return written


# -- the command ---------------------------------------------------------------------
def _outputs(matrix_path: Path, out_dir: Path | None) -> dict[str, Path]:
    d = out_dir if out_dir is not None else matrix_path.parent
    stem = matrix_path.stem
    return {ext: d / f"{stem}.{ext}" for ext in ("jsonl", "json", "md", "png")}


@click.command("sweep", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("matrix_file", metavar="MATRIX.toml",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory for NAME.jsonl (the records), NAME.json, NAME.md and NAME.png "
                   "[default: the matrix file's directory; NAME: its stem].")
@click.option("--workers", "-j", type=click.IntRange(min=1), default=None,
              help="Processes to run tasks on [default: all cores].")
@click.option("--dask", "dask_address", metavar="ADDRESS", default=None,
              help="Run on a Dask distributed scheduler instead (e.g. tcp://HOST:8786); needs "
                   "the [cluster] extra here and rumor-mesh on the workers.")
@click.option("--cell", "cell_patterns", multiple=True, metavar="PATTERN",
              help="Run only the cells whose name matches (shell pattern, repeatable); the "
                   "summary covers every cell with records.")
@click.option("--fresh", is_flag=True, help="Discard the records of an earlier sweep first.")
@click.option("--plan", is_flag=True, help="Only say what is done and what would run.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def sweep_cmd(matrix_file: Path, out_dir: Path | None, workers: int | None,
              dask_address: str | None, cell_patterns: tuple[str, ...], fresh: bool, plan: bool,
              quiet: bool) -> None:
    """Run every cell x seed x strategy of MATRIX.toml, in parallel.

    Each finished run is appended to NAME.jsonl at once, so an interrupted
    sweep (Ctrl-C, a crash, a lost cluster) resumes where it stopped: run the
    same command again.  Then NAME.json and NAME.md hold per cell and
    strategy the delivery, p50/p99 latency, frames and airtime and their
    ratios to flood, and a summary per strategy (worst and median delivery,
    frames/flood, p99/flood); NAME.png is the Pareto plot (frames/flood
    against p99/flood).  Strategies the simulator lacks are skipped, said so.

    Example: rumor sim sweep bench/matrix.toml --workers 2
    """
    from rich.console import Console

    from .matrix import MatrixError, load_matrix

    err = Console(stderr=True, soft_wrap=True)
    try:
        matrix = load_matrix(matrix_file)
    except MatrixError as e:
        raise click.ClickException(str(e)) from None
    outs = _outputs(matrix_file, out_dir)
    if fresh and outs["jsonl"].exists() and not plan:
        outs["jsonl"].unlink()
    for line in matrix.skip_lines():
        err.print(line, highlight=False)
    cells = _select(matrix, cell_patterns)
    todo, done, stale = pending(matrix, outs["jsonl"])
    if cells is not None:
        todo = [t for t in todo if t.cell in cells]
    total = len(matrix.tasks())
    err.print(f"{matrix.title}: {len(matrix.cells)} cells, {total} runs; {total - len(todo)} done "
              f"in {outs['jsonl']}"
              + (f" ({stale} stale records of other code or parameters are dropped)" if stale else "")
              + f", {len(todo)} to run"
              + (f" on {dask_address}" if dask_address and todo else
                 f" on {workers or os.cpu_count()} worker(s)" if todo else ""), highlight=False)
    if plan:
        return
    records = _run_with_progress(matrix, outs["jsonl"], workers, dask_address, err, quiet,
                                 total - len(todo), total, cells)
    summary = summarize(matrix, records)
    for p in write_outputs(summary, outs["json"], outs["md"], outs["png"]):
        err.print(f"wrote {p}", highlight=False)
    click.echo(summary_text(summary))


def _select(matrix: Matrix, patterns: tuple[str, ...]) -> set[str] | None:
    """The cell names --cell picks (None: all); ClickException for a pattern
    that matches none."""
    if not patterns:
        return None
    from fnmatch import fnmatchcase

    names = [c.name for c in matrix.cells]
    out: set[str] = set()
    for pat in patterns:
        hit = [n for n in names if fnmatchcase(n, pat)]
        if not hit:
            raise click.ClickException(f"--cell {pat!r} matches no cell (cells: {', '.join(names)})")
        out.update(hit)
    return out


def _run_with_progress(matrix: Matrix, results: Path, workers: int | None, dask: str | None,
                       err: Any, quiet: bool, already: int, total: int,
                       cells: set[str] | None = None) -> list[dict]:
    import signal

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    def _term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, _term)
    prog = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err, disable=quiet)
    count = [already]
    try:
        with prog:
            bar = prog.add_task("sweep", total=total, completed=already)

            def on_record(rec: dict, n: int, tot: int) -> None:
                count[0] = n
                prog.update(bar, completed=n,
                            description=f"{rec['cell']} seed {rec['seed']} {rec['strategy']}")

            return run_sweep(matrix, results, workers, dask, on_record, cells)
    except KeyboardInterrupt:
        # Exit at once: the process pool's own atexit hook would otherwise write
        # to the pipe of a pool already torn down and print a traceback after
        # our one line (the results are on disk already, a line each).
        click.echo(f"Error: interrupted: {count[0]} of {total} runs are in {results}; run the "
                   "same command again to resume", err=True)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
    except TaskError as e:
        raise click.ClickException(
            f"{e}; the {count[0]} runs done are kept in {results} (rerun resumes)") from None
    except RuntimeError as e:
        raise click.ClickException(str(e)) from None
    finally:
        signal.signal(signal.SIGTERM, old)


def summary_text(summary: dict) -> str:
    lines = ["strategy          cells  delivery worst/median  frames/flood median/worst  "
             "p99/flood median/worst"]
    for s, d in summary["summary"].items():
        lines.append(f"{s:<17} {d['cells']:>5}  {d['delivery_worst']:>7.2%} / {d['delivery_median']:<7.2%}"
                     f"     {_f(d['frames_per_flood_median'], '{:.2f}x'):>7} / "
                     f"{_f(d['frames_per_flood_worst'], '{:.2f}x'):<7}"
                     f"          {_f(d['p99_per_flood_median'], '{:.2f}x'):>7} / "
                     f"{_f(d['p99_per_flood_worst'], '{:.2f}x')}")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m rumor_host.sim.sweep MATRIX.toml (as `rumor sim sweep`)
    sweep_cmd()
