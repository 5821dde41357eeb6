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
    col = Collector([name], out, retry_s=0.05)
    col.start()
    try:
        assert col.wait_for(lambda rs: any(r.get("collector") == "connected" for r in rs), 5)
    finally:
        col.stop()
        os.close(m)
    lines = out.read_text().splitlines()
    assert lines[1] == '{"t": 2.0, "port": "/p", "li'  # the fragment alone on its line
    recs = read_jsonl(out)  # and the file still reads
    assert [r.get("collector") for r in recs][:2] == ["connected", "connected"]
