"""Bad input to the tools: one clear error line each, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

CASES = [
    (["inject", "--port", "/dev/no-such-port", "hi"], "no such port"),
    (["inject", "--port", "/dev/no-such-port", "--hex", "zz"], "not a hex payload"),
    (["inject", "--port", "/dev/no-such-port"], "give TEXT or --hex"),
    (["deploy", "--port", "/dev/no-such-port", "--board", "unix"], "no such port"),
    (["deploy", "--port", "/dev/no-such-port", "--board", "no-such-board"], "unknown board"),
    (["report", "/no/such/run.jsonl"], "cannot read"),
    (["inject", "--port", "/dev/no-such-port", '"' * 600], "command line longer than 1024 bytes"),
    (["listen", "--port", "/dev/no-such-port"], "no such port"),
    (["nodes", "--port", "/dev/no-such-port"], "no such port"),
    (["stats", "--port", "/dev/no-such-port"], "no such port"),
    (["reset", "--port", "/dev/no-such-port"], "no such port"),
    (["config", "--port", "/dev/no-such-port", "get"], "no such port"),
    (["config", "--port", "/dev/no-such-port", "set", "fanuot=3"], "did you mean fanout?"),
    (["config", "--port", "/dev/no-such-port", "set", "broadcast=false"], "takes it from its radio"),
]


def run_cli(args):
    return subprocess.run([sys.executable, "-m", "rumor_host.cli", *args], capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("args,words", CASES, ids=[" ".join(c[0][:1] + c[0][-1:]) for c in CASES])
def test_one_clear_error_line(args, words):
    p = run_cli(args)
    assert p.returncode != 0
    assert "Traceback" not in p.stderr + p.stdout
    err = [ln for ln in p.stderr.splitlines() if ln.startswith("Error")]
    assert len(err) == 1 and words in err[0], p.stderr


def test_bad_board_file(tmp_path):
    bad = tmp_path / "mine.json"
    bad.write_text('{"name": "mine", "chip": ')
    p = run_cli(["deploy", "--port", "/dev/no-such-port", "--board", str(bad)])
    assert p.returncode != 0 and "Traceback" not in p.stderr
    err = [ln for ln in p.stderr.splitlines() if ln.startswith("Error")]
    assert len(err) == 1 and "not valid JSON" in err[0], p.stderr


def test_bad_run_file(tmp_path):
    f = tmp_path / "run.jsonl"
    f.write_text("not json\n{}\n")
    p = run_cli(["report", str(f)])
    assert p.returncode != 0 and "Traceback" not in p.stderr
    assert "not a JSON line" in p.stderr
