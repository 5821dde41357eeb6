"""idle.py: frames per node per hour with no traffic, from the frames the
run put on air (the ledger's count agrees), on tiny meshes and minutes of
simulated time."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from rumor_host.sim import idle
from rumor_host.sim.engine import SimParams

MESH = SimParams(nodes=8, degree=3.0, seed=2)
HOURS = 5 / 60  # five simulated minutes


def test_rates_are_the_frames_on_air_per_node_per_hour():
    r = idle.idle_run(MESH, "rumor", HOURS)
    c, led = r["counts"], r["ledger"]
    assert c["digest"] > 0  # rumor announces itself at boot: something to count
    # no traffic at all: the hook saw exactly the frames the ledger counted
    assert c == {k: led[k] for k in idle.KINDS}
    assert sum(c.values()) == led["frames"]
    f = r["per_node_per_hour"]
    assert f["digest"] == pytest.approx(led["digest"] / 8 / HOURS, abs=1e-4)
    assert f["frames"] == pytest.approx(led["frames"] / 8 / HOURS, abs=1e-4)
    assert f["data"] == 0 and led["data"] == 0  # nothing was published
    assert r["last_frame_s"] is not None and 0 <= r["last_frame_s"] <= HOURS * 3600
    assert r["window_start_s"] == 0 and r["warmup"] == 0


def test_flood_sends_nothing_when_idle():
    r = idle.idle_run(MESH, "flood", HOURS)
    assert r["per_node_per_hour"]["frames"] == 0 and r["last_frame_s"] is None


def test_warmup_traffic_is_not_counted():
    r = idle.idle_run(MESH, "rumor", HOURS, warmup=3)
    assert r["window_start_s"] > 0 and r["warmup_delivery"] > 0
    assert r["ledger"]["data"] > 0 and r["counts"]["data"] < r["ledger"]["data"]
    assert sum(r["counts"].values()) < r["ledger"]["frames"]


def test_an_eventual_strategy_stops_at_the_window_and_publishes_nothing():
    r = idle.idle_run(MESH, "seed", 1 / 60)
    assert r["ledger"]["data"] == 0
    assert r["counts"]["digest"] > 0 and r["last_frame_s"] <= 60


def test_bad_input_is_one_line():
    with pytest.raises(ValueError, match="unknown strategy 'nope'"):
        idle.idle_run(MESH, "nope")
    with pytest.raises(ValueError, match="hours must be > 0"):
        idle.idle_run(MESH, "rumor", 0)


def test_bench_and_cli(tmp_path):
    rep = idle.bench(["rumor", "flood"], HOURS, seeds=(1, 2),
                     meshes=(("tiny", {"nodes": 6, "degree": 3.0}),), warmup=2)
    assert [(r["strategy"], r["mode"]) for r in rep["rows"]] == [
        ("rumor", "cold"), ("rumor", "after"), ("flood", "cold"), ("flood", "after")]
    cold = rep["rows"][0]
    assert cold["per_node_per_hour"]["frames"] == pytest.approx(
        sum(r["per_node_per_hour"]["frames"] for r in cold["runs"]) / 2, abs=1e-4)
    assert "| tiny | rumor | cold |" in idle.markdown(rep)
    out = tmp_path / "runs.json"
    res = CliRunner().invoke(idle.idle_cmd, ["--nodes", "6", "--degree", "3", "--hours", "0.05",
                                             "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "rumor" in res.output and "flood" in res.output
    assert [r["strategy"] for r in json.loads(out.read_text())] == ["rumor", "flood"]
    res = CliRunner().invoke(idle.idle_cmd, ["--strategy", "nope"])
    assert res.exit_code == 2 and "unknown strategy nope" in res.output
