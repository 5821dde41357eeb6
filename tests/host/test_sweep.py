"""`rumor sim sweep`: the matrix file, the runs (process pool, Dask
LocalCluster), resuming after an interruption, and the summary."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from rumor_host.sim.engine import SimParams, simulate
from rumor_host.sim.matrix import MatrixError, Task, load_matrix, parse_matrix
from rumor_host.sim.strategies import STRATEGIES
from rumor_host.sim.sweep import markdown, read_records, run_sweep, summarize, sweep_cmd

ROOT = Path(__file__).resolve().parents[2]

TINY = """
title = "tiny"
seeds = [1, 2]
strategies = ["flood", "rumor", "no-such-strategy"]

[defaults]
messages = 3

[[cell]]
name = "a"
nodes = 8
degree = 3

[[cell]]
name = "b"
topology = "line"
nodes = 6
loss = 0.1
strategies = ["flood", "managed-flood"]
"""


def _write(tmp_path: Path, text: str, name: str = "m.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_public_matrix_has_the_issues_cells():
    m = load_matrix(ROOT / "bench" / "matrix.toml")
    cells = {c.name: c.params for c in m.cells}
    assert len(cells) == 14
    want = {  # (radio, topology, nodes, degree or None, loss, sf or None)
        "espnow-rgg-n20-d5-l0.1": ("espnow", "rgg", 20, 5, 0.1, None),
        "espnow-rgg-n50-d8-l0.05": ("espnow", "rgg", 50, 8, 0.05, None),
        "espnow-rgg-n150-d12-l0.15": ("espnow", "rgg", 150, 12, 0.15, None),
        "espnow-rgg-n500-d5-l0.1": ("espnow", "rgg", 500, 5, 0.1, None),
        "espnow-rgg-n500-d20-l0.3": ("espnow", "rgg", 500, 20, 0.3, None),
        "espnow-rgg-n1500-d10-l0.1": ("espnow", "rgg", 1500, 10, 0.1, None),
        "espnow-grid-7x7-l0.1": ("espnow", "grid", 49, None, 0.1, None),
        "espnow-grid-12x12-l0.3": ("espnow", "grid", 144, None, 0.3, None),
        "espnow-line-15-l0.1": ("espnow", "line", 15, None, 0.1, None),
        "espnow-clusters-40-l0.1": ("espnow", "clusters", 40, None, 0.1, None),
        "lora-sf8-n40-d6-l0.1": ("lora", "rgg", 40, 6, 0.1, 8),
        "lora-sf10-n120-d10-l0.05": ("lora", "rgg", 120, 10, 0.05, 10),
        "lora-sf11-n25-d4-l0.1": ("lora", "rgg", 25, 4, 0.1, 11),
        "lora-sf8-n40-d6-l0.1-loaded": ("lora", "rgg", 40, 6, 0.1, 8),
    }
    for name, (radio, topo, n, deg, loss, sf) in want.items():
        p = cells[name]
        assert (p["radio"], p["topology"], p["nodes"], p["loss"]) == (radio, topo, n, loss), name
        if deg is not None:
            assert p["degree"] == deg, name
        if sf is not None:
            assert p["sf"] == sf, name
    # every node publishes once per 100 s: 40 nodes, a message every 2.5 s
    assert cells["lora-sf8-n40-d6-l0.1-loaded"]["interval_ms"] == 2500
    assert all(c.seeds == [1, 2, 3] for c in m.cells)
    names = ["flood", "managed-flood", "managed-flood-7", "seed", "rumor"]
    assert all(c.strategies == names for c in m.cells)
    known = [s for s in names if s in STRATEGIES]
    assert len(m.tasks()) == 14 * 3 * len(known)
    assert set(m.skipped) == {s for s in names if s not in STRATEGIES}
    for s in m.skipped:
        assert any(repr(s) in line and "skipping" in line for line in m.skip_lines())


@pytest.mark.parametrize("text,msg", [
    ("[[cell]]\nname = 'x'\nnodez = 5\n", "unknown key 'nodez'"),
    ("[[cell]]\nname = 'x'\nloss = 1.5\n", "loss must be in [0, 1)"),
    ("[[cell]]\nname = 'x'\n[[cell]]\nname = 'x'\n", "two cells named 'x'"),
    ("[[cell]]\nnodes = 5\n", "needs a name"),
    ("seeds = []\n[[cell]]\nname = 'x'\n", "seeds must be a non-empty list"),
    ("[[cell]]\nname = 'x'\nnodes = 5\ndegree = 6\n", "degree 6 must be below nodes 5"),
    ("[[cell]]\nname = 'x'\nseed = 4\n", "give seeds = [...]"),
    ("[[cell]]\nname = 'x'\npublish_every_s = 0\n", "publish_every_s must be a positive"),
    ("cels = 1\n[[cell]]\nname = 'x'\n", "unknown top-level key(s) cels"),
    ("title = 'no cells'\n", "no [[cell]] tables"),
    ("[[cell]\nname = 'x'\n", "not valid TOML"),
])
def test_bad_matrix_is_one_clear_line(tmp_path, text, msg):
    p = _write(tmp_path, text)
    with pytest.raises(MatrixError) as ei:
        load_matrix(p)
    assert msg in str(ei.value), str(ei.value)
    r = CliRunner().invoke(sweep_cmd, [str(p), "--plan"])
    assert r.exit_code == 1 and msg in r.output, r.output
    assert not (tmp_path / "m.jsonl").exists()


def test_tiny_sweep_on_a_process_pool(tmp_path):
    p = _write(tmp_path, TINY)
    r = CliRunner().invoke(sweep_cmd, [str(p), "--workers", "2", "-q"])
    assert r.exit_code == 0, r.output
    assert "skipping strategy 'no-such-strategy'" in r.output
    recs = read_records(tmp_path / "m.jsonl")
    assert sorted((x["cell"], x["seed"], x["strategy"]) for x in recs) == sorted(
        [("a", s, st) for s in (1, 2) for st in ("flood", "rumor")]
        + [("b", s, st) for s in (1, 2) for st in ("flood", "managed-flood")])
    # a record is what simulate() says for that cell, seed and strategy
    one = next(x for x in recs if (x["cell"], x["seed"], x["strategy"]) == ("a", 2, "rumor"))
    direct = simulate(SimParams(nodes=8, degree=3, messages=3, seed=2), ["rumor"])["results"]["rumor"]
    for k in ("delivery_ratio", "latency_ms_p99", "tx_per_message", "airtime_ms_per_message"):
        assert one["metrics"][k] == direct[k], k
    summary = json.loads((tmp_path / "m.json").read_text())
    fl = summary["cells"]["a"]["strategies"]["flood"]["mean"]
    ru = summary["cells"]["a"]["strategies"]["rumor"]["mean"]
    assert fl["frames_per_flood"] == 1.0 and fl["p99_per_flood"] == 1.0
    runs = summary["cells"]["a"]["strategies"]["rumor"]["runs"]
    want = sum(x["tx_per_message"] / y["tx_per_message"] for x, y in zip(
        runs, summary["cells"]["a"]["strategies"]["flood"]["runs"], strict=True)) / 2
    assert abs(ru["frames_per_flood"] - want) < 1e-3
    md = (tmp_path / "m.md").read_text()
    assert "| a | rumor |" in md and "| b | managed-flood |" in md and "Summary per strategy" in md
    assert (tmp_path / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "rumor" in r.output and "delivery worst/median" in r.output
    # one cell alone: --cell picks it; a pattern matching nothing is one line
    r1 = CliRunner().invoke(sweep_cmd, [str(p), "--cell", "zz*", "--plan"])
    assert r1.exit_code == 1 and "--cell 'zz*' matches no cell (cells: a, b)" in r1.output, r1.output
    # run again: nothing left to do, same records
    r2 = CliRunner().invoke(sweep_cmd, [str(p), "-q"])
    assert r2.exit_code == 0 and "8 done" in r2.output and "0 to run" in r2.output, r2.output
    assert len(read_records(tmp_path / "m.jsonl")) == 8


@pytest.mark.parametrize("workers", ["1", "2"])
def test_interrupted_sweep_resumes_where_it_stopped(tmp_path, workers):
    cells = "".join(f"[[cell]]\nname = 'c{k}'\nnodes = 40\ndegree = 6\nloss = 0.1\n"
                    for k in range(4))
    p = _write(tmp_path, "seeds = [1, 2]\nstrategies = ['flood', 'rumor']\n"
                         "[defaults]\nmessages = 15\n" + cells)
    out = tmp_path / "m.jsonl"
    cmd = [sys.executable, "-m", "rumor_host.sim.sweep", str(p), "--workers", workers, "-q"]
    env = dict(os.environ)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    t0 = time.monotonic()
    while not (out.exists() and out.read_text().count("\n") >= 2):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < 120, "no record written"
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _o, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, (proc.returncode, err)
    assert "interrupted" in err and "run the same command again to resume" in err, err
    assert "Traceback" not in err, err  # pool workers leave Ctrl-C to the sweep
    first = read_records(out)
    assert 2 <= len(first) < 16, len(first)
    before = out.read_bytes()
    with out.open("a") as f:  # and a record torn by a kill in mid-write
        f.write('{"key": "c3|2|rumor|')
    proc2 = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc2.returncode == 0, proc2.stderr
    assert f"{len(first)} done" in proc2.stderr and f"{16 - len(first)} to run" in proc2.stderr, \
        proc2.stderr
    recs = read_records(out)
    keys = [x["key"] for x in recs]
    assert len(keys) == 16 and len(set(keys)) == 16
    assert out.read_bytes().startswith(before)  # what was done stays, nothing ran twice
    assert not out.read_text().count('{"key": "c3|2|rumor|\n')


def test_sweep_on_a_dask_local_cluster(tmp_path):
    distributed = pytest.importorskip("distributed", reason="the [cluster] extra (dask + distributed)")
    m = parse_matrix({"seeds": [1, 2], "strategies": ["flood", "rumor"],
                      "defaults": {"messages": 3},
                      "cell": [{"name": "d", "nodes": 8, "degree": 3}]})
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        recs = run_sweep(m, tmp_path / "dask.jsonl", dask=cluster.scheduler_address)
    assert len(recs) == 4 and len(read_records(tmp_path / "dask.jsonl")) == 4
    local = run_sweep(m, tmp_path / "local.jsonl", workers=1)
    assert [x["metrics"] for x in recs] == [x["metrics"] for x in local]  # same runs, same figures


def test_only_the_chosen_cells_run(tmp_path):
    p = _write(tmp_path, TINY)
    r = CliRunner().invoke(sweep_cmd, [str(p), "--cell", "b", "-q"])
    assert r.exit_code == 0 and "4 to run" in r.output, r.output
    recs = read_records(tmp_path / "m.jsonl")
    assert sorted({x["cell"] for x in recs}) == ["b"] and len(recs) == 4
    summary = json.loads((tmp_path / "m.json").read_text())
    assert summary["cells"]["a"]["strategies"] == {} and summary["cells"]["b"]["strategies"]
    r2 = CliRunner().invoke(sweep_cmd, [str(p), "--plan"])
    assert "4 done" in r2.output and "4 to run" in r2.output, r2.output


def test_records_of_other_code_are_not_reused(tmp_path, monkeypatch):
    from rumor_host.sim import sweep

    m = parse_matrix({"seeds": [1], "strategies": ["flood", "rumor"], "defaults": {"messages": 2},
                      "cell": [{"name": "s", "nodes": 6, "degree": 3}]})
    out = tmp_path / "s.jsonl"
    runs = []
    real = sweep.run_task
    monkeypatch.setattr(sweep, "run_task", lambda t: runs.append(t.key) or real(t))
    run_sweep(m, out, workers=1)
    run_sweep(m, out, workers=1)
    assert len(runs) == 2  # the second found both done
    monkeypatch.setattr(sweep, "code_fingerprint", lambda: "other-code")
    recs = run_sweep(m, out, workers=1)
    assert len(runs) == 4 and len(recs) == 2
    assert [r["key"] for r in read_records(out)] == runs[2:]  # the stale two were dropped


def test_a_failing_run_is_one_line_and_keeps_the_others(tmp_path, monkeypatch):
    from rumor_host.sim import sweep

    p = _write(tmp_path, TINY)
    real = sweep.simulate

    def flaky(params, names):
        if names == ["rumor"] and params.seed == 2:
            raise ZeroDivisionError("boom")
        return real(params, names)

    monkeypatch.setattr(sweep, "simulate", flaky)
    r = CliRunner().invoke(sweep_cmd, [str(p), "--workers", "1", "-q"])
    assert r.exit_code == 1, r.output
    assert "run a seed 2 rumor failed: ZeroDivisionError: boom" in r.output, r.output
    assert "Traceback" not in r.output
    done = read_records(tmp_path / "m.jsonl")
    assert 0 < len(done) < 8 and all(x["strategy"] != "rumor" or x["seed"] != 2 for x in done)


def test_summary_arithmetic_without_simulating(tmp_path):
    m = parse_matrix({"seeds": [1, 2], "strategies": ["flood", "rumor"],
                      "cell": [{"name": "x", "nodes": 10, "degree": 4},
                               {"name": "y", "nodes": 10, "degree": 4, "loss": 0.1}]})

    def rec(cell, seed, s, d, p99, tx):
        t = Task(cell, seed, s, {})
        return {"key": t.key, "cell": cell, "seed": seed, "strategy": s, "wall_s": 1.0,
                "metrics": {"delivery_ratio": d, "latency_ms_p50": p99 / 2, "latency_ms_p99": p99,
                            "tx_per_message": tx, "airtime_ms_per_message": tx}}

    recs = [rec("x", 1, "flood", 0.9, 10, 100), rec("x", 2, "flood", 0.8, 20, 100),
            rec("x", 1, "rumor", 1.0, 20, 50), rec("x", 2, "rumor", 0.99, 20, 25),
            rec("y", 1, "flood", 1.0, 10, 10), rec("y", 2, "flood", 1.0, 10, 10),
            rec("y", 1, "rumor", 0.95, 30, 10), rec("y", 2, "rumor", 1.0, 10, 20)]
    s = summarize(m, recs)
    x = s["cells"]["x"]["strategies"]["rumor"]["mean"]
    assert x["frames_per_flood"] == pytest.approx(0.375) and x["p99_per_flood"] == pytest.approx(1.5)
    assert x["delivery_worst"] == 0.99 and x["delivery_ratio"] == pytest.approx(0.995)
    su = s["summary"]["rumor"]
    assert su["delivery_worst"] == 0.95 and su["delivery_median"] == pytest.approx(0.97)
    assert su["frames_per_flood_worst"] == pytest.approx(1.5)  # y: (1 + 2) / 2
    assert su["frames_per_flood_median"] == pytest.approx((0.375 + 1.5) / 2)
    assert su["p99_per_flood_worst"] == pytest.approx(2.0)  # y: (3 + 1) / 2
    assert s["summary"]["flood"]["delivery_worst"] == 0.8
    md = markdown(s)
    assert "| rumor | 2 | 95.00% | 97.00% |" in md, md
    assert "| x | rumor | 99.00% |" in md


def test_summary_carries_issue_11s_goals_and_matrix_md_shows_them():
    m = parse_matrix({"seeds": [1], "strategies": ["flood", "rumor"],
                      "cell": [{"name": "g", "topology": "grid", "nodes": 9},
                               {"name": "f", "nodes": 10, "degree": 4, "strategies": ["flood"]}]})

    def rec(cell, s, d, p99, tx):
        t = Task(cell, 1, s, {})
        return {"key": t.key, "cell": cell, "seed": 1, "strategy": s, "wall_s": 1.0,
                "bounds": {"mean_degree": 2.67, "cds_size": 3},
                "metrics": {"delivery_ratio": d, "latency_ms_p50": p99 / 2, "latency_ms_p99": p99,
                            "tx_per_message": tx, "airtime_ms_per_message": tx}}

    s = summarize(m, [rec("g", "flood", 0.9, 10, 9), rec("g", "rumor", 1.0, 12, 7),
                      rec("f", "flood", 1.0, 10, 10)])
    g = s["goals"]
    assert g["strategy"] == "rumor" and (g["met"], g["total"]) == (1, 1) and g["missing"] == ["f"]
    cell = g["cells"]["g"]
    assert cell["mean_degree"] == pytest.approx(2.67)
    assert cell["goals"]["frames"]["value"] == pytest.approx(7 / 9, abs=1e-4)  # <= 0.8: sparse
    assert cell["goals"]["cds"]["value"] == pytest.approx(7 / 3, abs=1e-4)
    json.dumps(s)  # matrix.json holds it
    md = markdown(s)
    assert md.index("## Summary per strategy") < md.index("## Goals (issue 11)") < md.index("## Cells")
    assert "| g | 2.7 | 100.00% (flood 90.00%) ✓ | 1.20x (≤1.25) ✓ | 0.78x (≤0.8) ✓ | - | 2.33x (≤2.5) ✓ | - | ✓ |" in md
    assert "Cells meeting every goal: 1 of 1" in md and "Failing: none." in md
    # a matrix without rumor has no goals section
    s2 = summarize(m, [rec("f", "flood", 1.0, 10, 10)])
    assert "## Goals" not in markdown(s2) and s2["goals"]["total"] == 0
