"""The collector keeps a board's last words and never glues two runs together."""

import os
import pty
import time
import tty

from rumor_host.logs import Collector
from rumor_host.report import read_jsonl


def _board():
    m, s = pty.openpty()
    tty.setraw(s)
    name = os.ttyname(s)
    os.close(s)
    return m, name


def test_a_cut_last_line_is_kept_when_the_board_vanishes(tmp_path):
    m, name = _board()
    out = tmp_path / "run.jsonl"
    col = Collector([name], out, retry_s=0.05)
    col.start()
    try:
        assert col.wait_for(lambda rs: any(r.get("collector") == "connected" for r in rs), 5)
        os.write(m, b'@rumor {"ev":"stats","node":"00000001","t":1}\r\n')
        os.write(m, b"Traceback (most recent call last):\r\nOSError: [Errno 5] EIO")  # no newline
        time.sleep(0.5)  # read by the collector
        os.close(m)  # the board vanishes
        assert col.wait_for(lambda rs: any(r.get("collector") == "disconnected" for r in rs), 5)
    finally:
        col.stop()
    recs = read_jsonl(out)
    cut = [r for r in recs if r.get("cut")]
    assert [r["line"] for r in cut] == ["OSError: [Errno 5] EIO"]
    assert any("ev" in r for r in recs)


def test_appending_after_a_crash_starts_on_a_new_line(tmp_path):
    out = tmp_path / "run.jsonl"
    out.write_text('{"t": 1.0, "port": "/p", "collector": "connected"}\n{"t": 2.0, "port": "/p", "li')
    m, name = _board()
    col = Collector([name], out, retry_s=0.05, append=True)
    col.start()
    try:
        assert col.wait_for(lambda rs: any(r.get("collector") == "connected" for r in rs), 5)
    finally:
        col.stop()
        os.close(m)
    lines = out.read_text().splitlines()
    assert lines[1] == '{"t": 2.0, "port": "/p", "li'  # the fragment alone on its line
    recs = read_jsonl(out)  # and the file still reads
    assert recs[0].get("collector") == "connected" and recs[1]["run"]["id"] == col.run_id
    assert recs[2].get("collector") == "connected"


# -- runs: the header, another run's file, a port twice, a port that never opened ---------
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402

from rumor_host.logs import RunFileError  # noqa: E402


def _rumor(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "rumor_host.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_a_new_file_starts_with_the_run_header_and_another_run_is_refused(tmp_path):
    m, name = _board()
    out = tmp_path / "run.jsonl"
    try:
        with Collector([name, name], out, retry_s=0.05, argv=["rumor", "logs"]) as col:
            assert col.ports == [name]  # the same port twice is one port
            assert col.wait_for(lambda rs: any(r.get("collector") == "connected" for r in rs), 5)
        first = json.loads(out.read_text().splitlines()[0])
        assert first["run"] == {"id": col.run_id, "v": 1, "ports": [name], "argv": ["rumor", "logs"]}
        size = out.stat().st_size
        with pytest.raises(RunFileError, match=f"already holds run {col.run_id} of .*--append"):
            Collector([name], out)
        assert out.stat().st_size == size  # nothing written to it
        with Collector([name], out, append=True) as col2:
            assert col2.wait_for(lambda rs: any(r.get("collector") == "connected" for r in rs), 5)
        runs = [r["run"]["id"] for r in read_jsonl(out) if "run" in r]
        assert runs == [col.run_id, col2.run_id]
    finally:
        os.close(m)


def test_logs_cli_refuses_another_runs_file_in_one_line(tmp_path):
    out = tmp_path / "run.jsonl"
    out.write_text('{"t": 1.0, "port": "/p", "line": "old"}\n')
    p = _rumor("logs", "-p", "/dev/no-such-port", "--out", str(out), "--duration", "1")
    assert p.returncode == 1 and "Traceback" not in p.stderr
    (err,) = [ln for ln in p.stderr.splitlines() if ln.startswith("Error")]
    assert "already holds records of an earlier run" in err and "--append" in err
    assert out.read_text() == '{"t": 1.0, "port": "/p", "line": "old"}\n'


def test_logs_with_no_port_that_ever_opened_exits_non_zero(tmp_path):
    out = tmp_path / "run.jsonl"
    p = _rumor("logs", "-p", "/dev/no-such-port", "-p", "/dev/no-such-port", "--out", str(out),
               "--duration", "1")
    assert p.returncode == 1 and "Traceback" not in p.stderr
    (err,) = [ln for ln in p.stderr.splitlines() if ln.startswith("Error")]
    assert err.startswith("Error: no port ever opened: /dev/no-such-port (no such port")
    assert "given more than once: read once" in p.stderr


def test_nodes_every_asks_each_board_for_its_peers(tmp_path):
    m, name = _board()
    try:
        with Collector([name], None, retry_s=0.05, nodes_every=0.2, control=False) as col:
            assert col.wait_for(lambda rs: any(r.get("collector") == "connected" for r in rs), 5)
            got = b""
            end = time.monotonic() + 5
            while got.count(b"!peers") < 2 and time.monotonic() < end:
                try:
                    got += os.read(m, 100)
                except BlockingIOError:
                    time.sleep(0.05)
        assert got.count(b"!peers\n") >= 2
    finally:
        os.close(m)
