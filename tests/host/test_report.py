"""rumor report's figures from a hand-made run."""

from __future__ import annotations

import json

from rumor_host.report import analyse, percentile, read_jsonl


def ev(t, port, **e):
    return {"t": t, "port": port, "ev": e}


RUN = [
    ev(10.0, "a", ev="boot", node="00000001"),
    ev(10.0, "b", ev="boot", node="00000002"),
    ev(10.0, "c", ev="boot", node="00000003"),
    ev(100.0, "a", ev="publish", node="00000001", origin="00000001", id="000000010001"),
    ev(100.010, "b", ev="deliver", node="00000002", origin="00000001", id="000000010001", hops=1),
    ev(100.030, "c", ev="deliver", node="00000003", origin="00000001", id="000000010001", hops=2),
    ev(100.500, "c", ev="deliver", node="00000003", origin="00000001", id="000000010001", hops=2),
    ev(101.0, "b", ev="publish", node="00000002", origin="00000002", id="000000020001"),
    ev(101.020, "a", ev="deliver", node="00000001", origin="00000002", id="000000020001", hops=1),
    {"t": 102.0, "port": "c", "collector": "disconnected", "why": "gone"},
]


def test_figures(tmp_path):
    f = tmp_path / "run.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in RUN) + '{"t": 103, "po')  # cut by a crash
    rep = analyse(read_jsonl(f))
    assert rep["nodes"] == 3 and rep["messages"] == 2
    assert rep["deliveries"] == 3 and rep["delivery_ratio"] == 0.75
    assert rep["latency_ms_p50"] == 20.0 and rep["latency_ms_p99"] == 30.0
    assert rep["hops_max"] == 2 and rep["disconnects"] == 1
    first, second = rep["per_message"]
    assert first["nodes"]["00000003"] == {"ms": 30.0, "hops": 2}  # the first copy counts
    assert second["missing"] == ["00000003"]


def test_percentile():
    assert percentile([], 50) is None
    assert percentile([5.0], 99) == 5.0
    assert percentile([float(i) for i in range(1, 101)], 99) == 99.0
    assert percentile([float(i) for i in range(1, 101)], 50) == 50.0


def test_review_findings_silent_boards_repeated_publish_bad_records(tmp_path):
    """A board that never printed counts as a node that got nothing; the first
    publish line sets t0; an event without an id is skipped, not a crash."""
    import json as _json

    from rumor_host.report import analyse, read_jsonl

    recs = [
        {"t": 1.0, "port": "/p1", "collector": "connected"},
        {"t": 1.0, "port": "/p2", "collector": "connected"},
        {"t": 1.0, "port": "/p3", "collector": "connected"},
        {"t": 2.0, "port": "/p1", "ev": {"ev": "publish", "node": "00000001", "origin": "00000001",
                                         "id": "000000010001"}},
        {"t": 2.5, "port": "/p1", "ev": {"ev": "publish", "node": "00000001", "origin": "00000001",
                                         "id": "000000010001"}},
        {"t": 2.1, "port": "/p2", "ev": {"ev": "deliver", "node": "00000002", "origin": "00000001",
                                         "id": "000000010001", "hops": 1}},
        {"t": 2.2, "port": "/p2", "ev": {"ev": "deliver", "node": "00000002", "hops": 1}},
    ]
    f = tmp_path / "run.jsonl"
    f.write_text("\n".join(_json.dumps(r) for r in recs[:3]) + "\n" + '{"t": 1.5, "port": "/p1", "li'
                 + "\n" + "\n".join(_json.dumps(r) for r in recs[3:]) + "\n")
    rep = analyse(read_jsonl(f))
    assert rep["nodes"] == 3  # /p3 printed nothing: still a node
    assert rep["delivery_ratio"] == 0.5  # node 2 got it, /p3 did not
    assert rep["latency_ms_p50"] == 100.0  # from the first publish line, not the repeat
    assert rep["bad_records"] == 1
