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


def _write(path, recs):
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


def _header(t, rid, ports=("a", "b", "c")):
    return {"t": t, "run": {"id": rid, "v": 1, "ports": list(ports), "argv": ["rumor", "logs"]}}


def _inject(t, port, mid):
    return {"t": t, "port": port, "inject": {"id": mid, "payload": "x", "priority": 0, "via": "collector"}}


def test_latency_runs_from_the_injection_record(tmp_path):
    recs = [_header(9.0, "aaaaaaaaaaaa"), _inject(99.9, "a", "000000010001"), *RUN]
    rep = analyse(read_jsonl(_write(tmp_path / "r.jsonl", recs)))
    first = rep["per_message"][0]
    assert first["injected"] and first["nodes"]["00000002"]["ms"] == 110.0  # 100.010 - 99.9
    assert rep["per_message"][1]["nodes"]["00000001"]["ms"] == 20.0  # no injection: from its publish
    assert rep["latency_from"] == "injection, else publish event"


def test_injected_at_a_board_not_logged_still_has_a_start(tmp_path):
    """The issue's case: the injecting board left out of `logs` gave `p50 -`."""
    recs = [_inject(50.0, "/dev/x", "000000090001"),
            ev(50.2, "b", ev="deliver", node="00000002", origin="00000009", id="000000090001", hops=1)]
    rep = analyse(read_jsonl(_write(tmp_path / "r.jsonl", recs)))
    assert rep["latency_ms_p50"] == 200.0 and rep["per_message"][0]["of"] == 1


def test_a_file_with_two_runs_is_refused_and_run_picks_one(tmp_path):
    from click.testing import CliRunner

    from rumor_host.cli import main

    f = _write(tmp_path / "r.jsonl", [_header(1.0, "111111111111"), *RUN[:6],
                                      _header(200.0, "222222222222"), *RUN[7:9]])
    r = CliRunner().invoke(main, ["report", str(f)])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "holds 2 runs" in r.output and "111111111111" in r.output and "--run" in r.output
    r = CliRunner().invoke(main, ["report", str(f), "--run", "2222"])
    assert r.exit_code == 0, r.output
    assert "run 222222222222" in r.output and "000000020001" in r.output and "000000010001" not in r.output
    r = CliRunner().invoke(main, ["report", str(f), "--run", "3333"])
    assert r.exit_code == 1 and "no run '3333'" in r.output
    r = CliRunner().invoke(main, ["report", str(f), "--run", "all"])
    assert r.exit_code == 0 and "counted as one" in r.output


def test_stats_are_summed_over_reboots_and_reboots_counted(tmp_path):
    def st(t, fo, air):
        return ev(t, "a", ev="stats", node="00000001", core={"frames_out": fo, "frames_in": 1, "bytes_out": 10 * fo},
                  radio={"tx_airtime_ms": air, "duty_used_ms": air, "duty_window_ms": 1000})

    recs = [ev(1.0, "a", ev="boot", node="00000001"), st(2.0, 5, 50), st(3.0, 7, 70),
            ev(4.0, "a", ev="boot", node="00000001"), st(5.0, 2, 20), *RUN[3:7]]
    rep = analyse(read_jsonl(_write(tmp_path / "r.jsonl", recs)))
    a = next(b for b in rep["per_board"] if b["node"] == "00000001")
    assert a["reboots"] == 1 and a["frames_out"] == 9 and a["airtime_ms"] == 90 and a["bytes_out"] == 90
    assert a["duty"] == 0.02 and a["stats_reports"] == 2
    assert rep["reboots"] == 1
    b = next(b for b in rep["per_board"] if b["node"] == "00000002")
    assert b["frames_out"] is None and b["got"] == 1 and b["of"] == 1


def test_cdf_is_over_expected_deliveries_and_ends_at_the_ratio(tmp_path):
    rep = analyse(read_jsonl(_write(tmp_path / "r.jsonl", RUN)))
    assert rep["_timed_expected"] == 4 and len(rep["_latencies"]) == 3  # ends at 3/4 = the ratio
    from rumor_host.report import plot

    plot(rep, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 0


def test_ids_are_never_cut_in_a_narrow_terminal(tmp_path):
    from click.testing import CliRunner

    from rumor_host.cli import main

    f = _write(tmp_path / "r.jsonl", RUN)
    for width in ("30", "60", "120"):
        r = CliRunner().invoke(main, ["report", str(f)], env={"COLUMNS": width})
        assert r.exit_code == 0, r.output
        for mid in ("000000010001", "000000020001", "00000003"):
            assert mid in r.output, (width, r.output)
        assert "…" not in r.output
