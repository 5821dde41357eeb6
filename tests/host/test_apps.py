"""Applications on virtual boards (docs/apps.md): `rumor swarm --app` gives
boards that publish on their own (examples/apps/beacon.py), the sensor
example's struct readings reach the other boards, a faulty application is
one error event a second and the mesh goes on, and the host API (Board,
Mesh) publishes at one board and sees the delivery at another."""

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
from vboard import line_swarm

from rumor_host import Board, BoardError, Mesh
from rumor_host.appfile import AppFileError, parse_settings, read_app
from rumor_host.cli import main
from rumor_host.swarm import Swarm

ROOT = Path(__file__).resolve().parents[2]
APPS = ROOT / "examples" / "apps"
WAIT = 20.0  # upper bound for waits; nothing asserts on time


def _sensor():
    sys.path.insert(0, str(APPS))
    try:
        import sensor  # examples/apps/sensor.py: its decode() is the host's too
    finally:
        sys.path.remove(str(APPS))
    return sensor


@pytest.fixture(scope="module")
def beacons(tmp_path_factory):
    with line_swarm(3, tmp_path_factory.mktemp("swarm"), app=read_app(APPS / "beacon.py"),
                    app_settings={"interval_ms": 300}) as sw:
        yield sw


def test_beacon_boards_publish_on_their_own(beacons):
    far = beacons.ports[2]
    got: dict[str, list[int]] = {}
    with Board(far) as b:
        for ev in b.events(timeout=WAIT, kinds=("deliver",)):
            p = ev.get("payload", "")
            if p.startswith("beacon "):
                got.setdefault(ev["origin"], []).append(int(p.split()[1]))
            if len(got) == 2 and all(len(v) >= 3 for v in got.values()):
                break
    assert set(got) == {"00000001", "00000002"}, got  # the far end hears both others
    for nums in got.values():
        assert nums == sorted(nums) and len(set(nums)) == len(nums)  # counting up, no repeats


def test_board_publishes_at_one_board_and_another_delivers(beacons):
    with Mesh(beacons.ports) as m:
        mid = m[0].publish("hello from the host", priority=1)
        assert len(mid) == 12 and mid.startswith("00000001")
        seen = {}
        for port, ev in m.events(timeout=WAIT, kinds=("deliver",)):
            if ev["id"] == mid:
                seen[port] = ev
                if len(seen) == 2:
                    break
    assert set(seen) == set(beacons.ports[1:])
    far = seen[beacons.ports[2]]
    assert far["payload"] == "hello from the host" and far["priority"] == 1 and far["hops"] == 2


def test_stats_and_app_event_show_the_application(beacons):
    with Board(beacons.ports[1]) as b:
        s = b.stats()
        assert s["core"]["published"] >= 1  # its own beacons
        ev = b.reset()  # reboot: the node loads the app again and says so
        assert ev["ev"] == "boot"
        app = next(b.events(timeout=WAIT, kinds=("app",)))
        assert app["module"] == "app" and app["tasks"] == 1 and app["callbacks"] == 1


def test_sensor_readings_reach_the_other_boards(tmp_path):
    sensor = _sensor()
    with Swarm(2, "line", 0.0, run_dir=tmp_path, stats_interval_ms=0, log=lambda s: None,
               app=read_app(APPS / "sensor.py"), app_settings={"interval_ms": 200}) as sw:
        readings = []
        with Board(sw.ports[1]) as b:
            for ev in b.events(timeout=WAIT, kinds=("deliver",)):
                assert ev["origin"] == "00000001" and ev.get("payload_hex") is True, ev
                readings.append(sensor.decode(bytes.fromhex(ev["payload"])))
                if len(readings) >= 3:
                    break
    assert len(readings) >= 3
    samples = [r[2] for r in readings]
    assert samples == sorted(samples) and len(set(samples)) == len(samples)
    for version, source, _n, value in readings:
        assert version == sensor.VERSION and source == sensor.SRC_FAKE
        assert 21000 <= value <= 22000  # node 1: 20000 + 1000 * 1 + a wave of 0..1000


def test_a_faulty_app_is_one_error_a_second_and_the_mesh_goes_on(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def setup(node):\n"
                   "    node.every(50, lambda: 1 // 0)\n"
                   "    node.on_message(lambda msg: [][1])\n")
    with Swarm(2, "line", 0.0, run_dir=tmp_path / "sw", stats_interval_ms=0, log=lambda s: None,
               app=read_app(bad)) as sw, Mesh(sw.ports) as m:
        t0 = time.monotonic()
        errors = []
        mid = m[0].publish("still here")
        delivered = False
        for port, ev in m.events(timeout=3.0):
            if ev["ev"] == "error":
                errors.append(ev)
            if ev["ev"] == "deliver" and ev["id"] == mid and port == sw.ports[1]:
                delivered = True
        span = time.monotonic() - t0
    assert delivered  # the node still delivers, and its console still answers
    assert errors and all(e["cmd"] == "app" for e in errors), errors
    assert any("ZeroDivisionError" in e["msg"] for e in errors), errors
    # two boards, each at most one app error event a second (plus the first)
    assert len(errors) <= 2 * (span + 1), (len(errors), span)
    assert any("more faults" in e["msg"] for e in errors), errors


def test_app_file_and_settings_are_checked_before_any_board_is_touched(tmp_path):
    (tmp_path / "nosetup.py").write_text("x = 1\n")
    (tmp_path / "broken.py").write_text("def setup(node:\n")
    with pytest.raises(AppFileError, match="no setup"):
        read_app(tmp_path / "nosetup.py")
    with pytest.raises(AppFileError, match="line 1"):
        read_app(tmp_path / "broken.py")
    with pytest.raises(AppFileError, match="No such file"):
        read_app(tmp_path / "absent.py")
    assert parse_settings(["interval_ms=1000", "name=roof", "on=true"]) == \
        {"interval_ms": 1000, "name": "roof", "on": True}
    for argv in (["swarm", "--app", str(tmp_path / "broken.py")],
                 ["demo", "--app", str(tmp_path / "nosetup.py")],
                 ["swarm", "--app", str(APPS / "beacon.py"), "--app-set", "oops"]):
        r = CliRunner().invoke(main, argv)
        assert r.exit_code != 0 and "Traceback" not in r.output, r.output
        assert r.output.strip().splitlines()[-1].startswith("Error"), r.output


def test_rumor_swarm_app_beacon_from_the_command_line(tmp_path):
    """`rumor swarm --app examples/apps/beacon.py` as a user runs it."""
    rumor = Path(sys.executable).parent / "rumor"
    p = subprocess.Popen([str(rumor), "swarm", "-n", "2", "-t", "line", "--dir", str(tmp_path),
                          "--stats-ms", "0", "--app", str(APPS / "beacon.py"),
                          "--app-set", "interval_ms=250"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    try:
        port = str(tmp_path / "node02.tty")
        end = time.monotonic() + WAIT
        while not os.path.exists(port) and time.monotonic() < end:
            time.sleep(0.1)
        got = []
        with Board(port) as b:
            for ev in b.events(timeout=WAIT, kinds=("deliver",)):
                if ev.get("payload", "").startswith("beacon "):
                    got.append(ev["payload"])
                    if len(got) >= 3:
                        break
        assert len(got) >= 3, got
        app_py = (tmp_path / "node01" / "app.py").read_text()
        assert app_py == (APPS / "beacon.py").read_text()
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        out, _ = p.communicate(timeout=20)
    assert "application: app.py" in out and "interval_ms" in out, out
    assert "swarm stopped." in out


def test_board_errors_are_one_line(tmp_path):
    with pytest.raises(BoardError) as e:
        Board(str(tmp_path / "no-such.tty")).open()
    assert "\n" not in str(e.value) and "no-such.tty" in str(e.value)


def test_deploy_app_compiles_it_onto_the_board_and_no_app_removes_it(tmp_path):
    with Swarm(1, "line", 0.0, run_dir=tmp_path, stats_interval_ms=0, log=lambda s: None) as sw:
        vb = sw.boards[0]
        (vb.folder / "app.py").write_text("def setup(node):\n    pass\n")  # an older one
        r = CliRunner().invoke(main, ["deploy", "-p", vb.port, "-b", "unix", "--app",
                                      str(APPS / "beacon.py"), "--app-set", "interval_ms=300"])
        assert r.exit_code == 0, r.output
        assert "app.mpy" in r.output and '"interval_ms": 300' in r.output, r.output
        assert (vb.folder / "app.mpy").is_file() and not (vb.folder / "app.py").exists()
        board = json.loads((vb.folder / "board.json").read_text())
        assert board["node"]["app"] == {"interval_ms": 300}
        with Board(vb.port) as b:  # the node runs the compiled beacon on its own
            pubs = []
            for ev in b.events(timeout=WAIT, kinds=("publish",)):
                if ev.get("app"):
                    pubs.append(ev)
                    if len(pubs) >= 2:
                        break
        assert len(pubs) >= 2, pubs
        r = CliRunner().invoke(main, ["deploy", "-p", vb.port, "-b", "unix", "--no-app"])
        assert r.exit_code == 0, r.output
        assert "application: removed" in r.output
        assert not (vb.folder / "app.mpy").exists() and not (vb.folder / "app.py").exists()
        r = CliRunner().invoke(main, ["deploy", "-p", vb.port, "-b", "unix", "--app",
                                      str(APPS / "beacon.py"), "--no-app"])
        assert r.exit_code == 2 and "exclude each other" in r.output


def test_rumor_demo_with_an_app(tmp_path):
    out = tmp_path / "demo.jsonl"
    r = CliRunner().invoke(main, ["demo", "-n", "3", "-m", "3", "-t", "line", "--loss", "0",
                                  "--interval-ms", "400", "--settle-s", "15", "--out", str(out),
                                  "--app", str(APPS / "beacon.py"), "--app-set", "interval_ms=300"])
    assert r.exit_code == 0, r.output
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    evs = [x["ev"] for x in recs if "ev" in x]
    beacons = [e for e in evs if e["ev"] == "publish" and e.get("app")]
    assert beacons and all(e["req"] is None for e in beacons)  # the app published on its own
    injected = {e["id"] for e in evs if e["ev"] == "publish" and e.get("req") is not None}
    assert len(injected) == 3
    got = {(e["id"], e["node"]) for e in evs if e["ev"] == "deliver" and e["id"] in injected}
    assert len(got) == 3 * 2  # the demo waited for its own messages, not the beacons
