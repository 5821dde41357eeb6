"""goals.py: issue 11's goals per cell, on synthetic sweep summaries (each
goal met on one cell and missed on another), and matrix.md's section."""

from __future__ import annotations

import pytest

from rumor_host.sim import goals


def _row(delivery=1.0, p99=1.0, frames=1.0, air=1.0, tx=10.0, air_ms=10.0, seeds=(1, 2)):
    """A summary row (sweep.summarize's shape) whose seeds all have these figures."""
    runs = [{"seed": s, "delivery_ratio": delivery, "tx_per_message": tx,
             "airtime_ms_per_message": air_ms, "frames_per_flood": frames,
             "p99_per_flood": p99, "airtime_per_flood": air} for s in seeds]
    mean = {"delivery_ratio": delivery, "delivery_worst": delivery, "tx_per_message": tx,
            "airtime_ms_per_message": air_ms, "frames_per_flood": frames, "p99_per_flood": p99,
            "airtime_per_flood": air, "latency_ms_p99": 10.0 * p99}
    return {"mean": mean, "runs": runs}


def _cell(rumor, flood=None, radio="espnow", degree=10.0, cds=10, extra=None, params=None):
    rows = {"flood": flood if flood is not None else _row(delivery=0.95, tx=40.0, air_ms=40.0),
            "rumor": rumor}
    rows.update(extra or {})
    p = {"radio": radio, "topology": "rgg", "nodes": 100, "degree": 10}
    p.update(params or {})
    return {"params": p, "seeds": [1, 2],
            "bounds": {"1": {"mean_degree": degree, "cds_size": cds},
                       "2": {"mean_degree": degree, "cds_size": cds}},
            "strategies": rows}


GOOD = dict(delivery=1.0, p99=1.2, frames=0.45, air=0.45, tx=20.0)  # cds 10: 2.0x


def _check(cell, name="c"):
    return goals.check({"cells": {name: cell}})["cells"][name]


def test_a_cell_meeting_every_goal():
    r = _check(_cell(_row(**GOOD)))
    g = r["goals"]
    assert r["ok"] is True
    assert g["delivery"]["ok"] and g["p99"]["ok"] and g["frames"]["ok"] and g["cds"]["ok"]
    assert g["airtime"] is None and g["loaded"] is None  # ESP-NOW, not the loaded cell
    assert g["cds"]["value"] == pytest.approx(2.0)
    assert g["frames"]["limit"] == 0.5


@pytest.mark.parametrize("change, goal", [
    ({"delivery": 0.998}, "delivery"),  # above flood's 0.95 but under 99.9%
    ({"p99": 1.3}, "p99"),
    ({"frames": 0.55}, "frames"),
    ({"tx": 26.0}, "cds"),  # 2.6x the CDS of 10
])
def test_each_goal_can_fail(change, goal):
    r = _check(_cell(_row(**{**GOOD, **change})))
    assert r["goals"][goal]["ok"] is False
    assert r["ok"] is False
    assert [k for k, g in r["goals"].items() if g is not None and not g["ok"]] == [goal]


def test_delivery_must_also_match_floods():
    r = _check(_cell(_row(**{**GOOD, "delivery": 0.9995}), flood=_row(delivery=1.0, tx=40.0)))
    assert r["goals"]["delivery"]["ok"] is False and r["goals"]["delivery"]["flood"] == 1.0
    r = _check(_cell(_row(**{**GOOD, "delivery": 0.9995}), flood=_row(delivery=0.999, tx=40.0)))
    assert r["goals"]["delivery"]["ok"] is True


def test_lora_allows_twice_floods_p99_and_checks_airtime():
    slow = {**GOOD, "p99": 1.9}
    assert _check(_cell(_row(**slow)))["goals"]["p99"]["ok"] is False  # ESP-NOW: 1.25
    r = _check(_cell(_row(**slow), radio="lora"))
    assert r["goals"]["p99"]["ok"] is True and r["goals"]["p99"]["limit"] == 2.0
    assert r["goals"]["airtime"]["ok"] is True and r["ok"] is True
    r = _check(_cell(_row(**{**slow, "air": 0.85}), radio="lora"))
    assert r["goals"]["airtime"]["ok"] is False and r["ok"] is False
    assert _check(_cell(_row(**{**GOOD, "p99": 2.1}), radio="lora"))["goals"]["p99"]["ok"] is False


def test_frames_limit_follows_the_measured_mean_degree():
    mid = {**GOOD, "frames": 0.7}
    # nominal degree 10, but the drawn mesh has 7.9: sparse, 0.8 allowed
    r = _check(_cell(_row(**mid), degree=7.9))
    assert r["mean_degree"] == pytest.approx(7.9)
    assert r["goals"]["frames"]["limit"] == 0.8 and r["goals"]["frames"]["ok"] is True
    r = _check(_cell(_row(**mid), degree=8.0))
    assert r["goals"]["frames"]["limit"] == 0.5 and r["goals"]["frames"]["ok"] is False
    r = _check(_cell(_row(**{**GOOD, "frames": 0.85}), degree=3.0))
    assert r["goals"]["frames"]["ok"] is False


def test_mean_degree_without_bounds_rebuilds_the_topology():
    cell = _cell(_row(**GOOD), params={"topology": "grid", "nodes": 49})
    cell["bounds"] = {}
    # a 7x7 grid has 2 x 7 x 6 = 84 links
    assert goals.mean_degree(cell) == pytest.approx(2 * 84 / 49, abs=1e-3)
    r = _check(cell)
    assert r["goals"]["frames"]["limit"] == 0.8
    assert r["goals"]["cds"]["ok"] is False and "CDS" in r["goals"]["cds"]["note"]


def test_loaded_lora_cell_against_managed_flood():
    name = "lora-x-loaded"

    def run(rumor_delivery, rumor_air, managed=True):
        extra = {"managed-flood": _row(delivery=0.9, air_ms=20.0)} if managed else {}
        cell = _cell(_row(**{**GOOD, "delivery": rumor_delivery, "air_ms": rumor_air}),
                     flood=_row(delivery=0.9, tx=40.0, air_ms=40.0), radio="lora", extra=extra)
        return _check(cell, name)["goals"]["loaded"]

    good = run(0.9995, 15.0)
    assert good["ok"] is True and good["value"] == pytest.approx(0.75)
    assert run(0.9995, 25.0)["ok"] is False  # more airtime than managed flood
    assert run(0.9995, 20.0)["ok"] is False  # not less
    bad = run(0.85, 15.0)
    assert bad["ok"] is False and bad["baseline_delivery"] == 0.9
    assert run(0.9995, 15.0, managed=False)["ok"] is False
    # the same figures on a cell not named -loaded: no such goal
    cell = _cell(_row(**GOOD), radio="lora", extra={"managed-flood": _row(air_ms=1.0)})
    assert _check(cell, "lora-x")["goals"]["loaded"] is None


def test_a_missing_flood_is_not_a_pass():
    cell = _cell(_row(**GOOD))
    del cell["strategies"]["flood"]
    for k in ("p99", "frames"):
        cell["strategies"]["rumor"]["mean"][f"{k}_per_flood"] = None
    r = _check(cell)
    assert r["ok"] is False
    assert r["goals"]["delivery"]["ok"] is False and r["goals"]["p99"]["ok"] is False


def test_the_count_and_the_markdown_section():
    summary = {"cells": {
        "good": _cell(_row(**GOOD)),
        "slow": _cell(_row(**{**GOOD, "p99": 3.0})),
        "lora": _cell(_row(**GOOD), radio="lora"),
        "floodonly": {"params": {}, "seeds": [1], "bounds": {}, "strategies": {"flood": _row()}},
    }}
    res = goals.check(summary)
    assert (res["met"], res["total"]) == (2, 3)
    assert res["failing"] == ["slow"] and res["missing"] == ["floodonly"]
    assert res["line"].startswith("cells meeting every goal: 2 of 3")
    md = "\n".join(goals.markdown_lines(res))
    assert md.startswith("## Goals (issue 11)")
    assert "| slow | 10.0 | 100.00% (flood 95.00%) ✓ | 3.00x (≤1.25) ✗ |" in md
    assert "| lora | 10.0 |" in md and "0.45x (≤0.8) ✓" in md
    assert "Cells meeting every goal: 2 of 3" in md and "Failing: slow." in md
    other = goals.check(summary, strategy="flood")
    assert other["strategy"] == "flood" and other["total"] == 4
