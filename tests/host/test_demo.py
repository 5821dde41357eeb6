"""rumor demo: it stops when every (message, node) pair is in, counting
pairs (not delivery events: a rebooted board delivers old messages again),
and reports reboots."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from rumor_host.cli import main
from rumor_host.demo import all_in


def _inject(mid):
    return {"t": 1.0, "port": "p", "inject": {"id": mid, "payload": "x", "priority": 0, "via": "direct"}}


def _deliver(mid, node):
    return {"t": 2.0, "port": node, "ev": {"ev": "deliver", "node": node, "id": mid, "hops": 1}}


REACH = {n: {"00000001", "00000002", "00000003"} for n in ("00000001", "00000002", "00000003")}
A, B = "000000010001", "000000020001"


def test_pairs_not_events():
    recs = [_inject(A), _inject(B), _deliver(A, "00000002"), _deliver(A, "00000003"),
            _deliver(B, "00000001"),
            # node 3 rebooted and delivers A again: four deliveries, as many as wanted
            {"t": 3.0, "port": "00000003", "ev": {"ev": "boot", "node": "00000003"}},
            _deliver(A, "00000003")]
    assert not all_in(recs, REACH, 2)  # B never reached node 3
    assert all_in([*recs, _deliver(B, "00000003")], REACH, 2)
    assert not all_in(recs[1:], REACH, 2)  # an injection not answered yet: not done


def test_within_the_source_part_only():
    reach = {"00000001": {"00000001", "00000002"}, "00000002": {"00000001", "00000002"},
             "00000003": {"00000003"}}  # node 3 hears nobody
    assert all_in([_inject(A), _deliver(A, "00000002")], reach, 1)
    assert all_in([_inject("000000030001")], reach, 1)  # nobody else can get it


@pytest.mark.parametrize("args, message", [
    (["--set", "mode=bogus"], "Config.mode must be one of"),
    (["-t", "rgg", "-n", "4", "--degree", "4"], "below 4"),
])
def test_bad_options_one_line(tmp_path, args, message):
    r = CliRunner().invoke(main, ["demo", "--out", str(tmp_path / "d.jsonl"), *args])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert message in r.output.strip().splitlines()[-1]


def test_demo_stops_when_every_pair_is_in_and_reports_reboots(tmp_path):
    r = CliRunner().invoke(main, ["demo", "-n", "4", "-t", "line", "-m", "3", "--loss", "0",
                                  "--interval-ms", "20", "--settle-s", "60",
                                  "--out", str(tmp_path / "d.jsonl")], env={"COLUMNS": "160"})
    assert r.exit_code == 0, r.output
    assert "every (message, node) pair delivered" in r.output
    assert "100.0% (9 of 9 expected deliveries)" in r.output and "reboots 0" in r.output
    assert "latency from injection" in r.output


def test_demo_on_a_topology_that_is_not_connected_says_so(tmp_path):
    r = CliRunner().invoke(main, ["demo", "-n", "30", "-t", "rgg", "--degree", "6", "-m", "2",
                                  "--interval-ms", "20", "--settle-s", "20", "--loss", "0",
                                  "--out", str(tmp_path / "d.jsonl"), "--map", str(tmp_path / "m.png")],
                           env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "not connected: 2 parts" in r.output
    assert "within the source's component" in r.output
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"
