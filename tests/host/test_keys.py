"""Network keys: key files, `rumor deploy --key-file/--no-key`, and virtual
boards running an authenticated mesh.  The key itself must never appear in
any output: only its length and fingerprint."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from vboard import answer

from rumor_host.cli import main
from rumor_host.deploy import KeyFileError, fingerprint, parse_key, read_key_file
from rumor_host.logs import Collector, wait_ready
from rumor_host.swarm import Swarm, SwarmError

WAIT = 20.0  # upper bound for waits on events; no test asserts on time
KEY = os.urandom(32)
OTHER = os.urandom(32)


def secret_forms(key: bytes) -> list[str]:
    """Ways a key could show up in text output."""
    return [key.hex(), key.hex().upper(), repr(key), key.decode("latin-1"),
            " ".join(f"{b:02x}" for b in key)]


def assert_no_key(text: str, key: bytes) -> None:
    for form in secret_forms(key):
        assert form not in text


def fp(key: bytes) -> str:
    return hashlib.sha256(key).digest()[:4].hex()


# -- key files -------------------------------------------------------------------------

def test_raw_key_files_of_16_to_64_bytes():
    for n in (16, 32, 64):
        raw = bytes([0x80 | (i & 0x7F) for i in range(n)])  # binary: not text
        assert parse_key(raw) == raw
    assert parse_key(KEY) == KEY


def test_hex_key_files_ignore_whitespace_and_case():
    assert parse_key(KEY.hex().encode()) == KEY
    assert parse_key(KEY.hex().upper().encode() + b"\n") == KEY
    spaced = " ".join(KEY.hex()[i:i + 8] for i in range(0, 64, 8)).encode()
    assert parse_key(b"  " + spaced.replace(b" ", b"\n\t", 2) + b"\r\n") == KEY
    assert parse_key(b"ab" * 16) == b"\xab" * 16 and parse_key(b"cd" * 64) == b"\xcd" * 64


@pytest.mark.parametrize("data, words", [
    (b"", "empty"),
    (bytes([0x80 | i for i in range(15)]), "15 bytes of binary"),
    (bytes([0x80 | (i & 0x7F) for i in range(65)]), "65 bytes of binary"),
    (b"ab" * 15, "30 hex digits"),
    (b"ab" * 65, "130 hex digits"),
    (b"abc" * 11, "odd number of hex digits (33)"),
    (b"0x" + b"ab" * 16, "not hex: non-hex character number 2"),
    (b"ab" * 16 + b"g\n", "not hex: non-hex character number 33"),
    (b"correct horse battery staple\n", "not hex"),
    (b"3031323334353637383961626364656630", "is itself hex text"),  # hex of hex
])
def test_bad_key_files_are_refused_without_quoting_them(data, words):
    with pytest.raises(KeyFileError) as e:
        parse_key(data, "key file k")
    msg = str(e.value)
    assert words in msg and msg.startswith("key file k")
    if data:
        assert_no_key(msg, data)
        assert "horse" not in msg


def test_read_key_file(tmp_path):
    p = tmp_path / "net.key"
    p.write_text(KEY.hex() + "\n")
    assert read_key_file(p) == KEY
    with pytest.raises(KeyFileError, match="No such file"):
        read_key_file(tmp_path / "nope")
    p.write_bytes(b"a" * 100000)
    with pytest.raises(KeyFileError, match="far too big"):
        read_key_file(p)
    assert fingerprint(KEY) == fp(KEY) and len(fingerprint(KEY)) == 8


def test_deploy_refuses_a_bad_key_file_before_touching_the_board(tmp_path):
    bad = tmp_path / "bad.key"
    bad.write_text("not a key\n")
    r = CliRunner().invoke(main, ["deploy", "--port", str(tmp_path / "no-such-port"), "--board", "unix",
                                  "--key-file", str(bad)])
    assert r.exit_code == 1
    assert r.output.strip().splitlines() == [f"Error: key file {bad} is text but not hex: "
                                             "non-hex character number 1 (a key file holds 32..128 "
                                             "hex digits, or 16..64 raw bytes, e.g. from "
                                             "`head -c 32 /dev/urandom`)"]
    r = CliRunner().invoke(main, ["deploy", "--port", "x", "--board", "unix",
                                  "--key-file", str(bad), "--no-key"])
    assert r.exit_code == 2 and "exclude each other" in r.output
    for cmd in ("swarm", "demo"):
        r = CliRunner().invoke(main, [cmd, "--key-file", str(bad)])
        assert r.exit_code == 1 and "is text but not hex" in r.output, r.output
    with pytest.raises(SwarmError, match="has 5 bytes; a network key is 16..64"):
        Swarm(1, key=b"short")
    with pytest.raises(SwarmError, match="hex text"):
        Swarm(1, key=KEY.hex().encode())


def test_help_explains_keys():
    out = CliRunner().invoke(main, ["deploy", "--help"]).output
    assert "--key-file" in out and "--no-key" in out and "fingerprint" in out and "rumor.key" in out
    for cmd in ("swarm", "demo"):
        assert "--key-file" in CliRunner().invoke(main, [cmd, "--help"]).output


# -- virtual boards on an authenticated mesh ------------------------------------------------

@pytest.fixture(scope="module")
def swarm(tmp_path_factory):
    with Swarm(3, "line", 0.0, run_dir=tmp_path_factory.mktemp("swarm"), stats_interval_ms=0,
               log=lambda s: None, key=KEY) as sw:
        yield sw


def reboot(b) -> None:
    """Kill the board's process; the swarm starts it again, as a board reboots."""
    n = b.restarts
    assert b.proc is not None
    os.kill(b.proc.pid, signal.SIGTERM)
    end = time.monotonic() + WAIT
    while b.restarts == n:
        assert time.monotonic() < end, "the board did not restart"
        time.sleep(0.05)


def restore(b) -> None:
    """Give the board the swarm's key back and reboot it; return once it runs
    (so that no later write to its rumor.key races its boot)."""
    (b.folder / "rumor.key").write_bytes(KEY)
    reboot(b)
    assert answer(b.port, "!stats", "stats")["key_fp"] == fp(KEY)


def events(col: Collector, port: str, ev: str, since: int = 0) -> list[dict]:
    """port's events named ev, from the since-th record collected on."""
    return [r["ev"] for r in col.records[since:] if "ev" in r and r["ev"]["ev"] == ev
            and r["port"] == port]


def delivered(col: Collector, mid: str) -> set[str]:
    return {r["ev"]["node"] for r in col.events("deliver") if r["ev"]["id"] == mid}


def inject(col: Collector, port: str, text: str) -> str:
    n = len(col.events("publish"))
    col.send(port, '!inject {"text":"%s"}' % text)
    assert col.wait_for(lambda rs: len(col.events("publish")) > n, WAIT)
    return col.events("publish")[n]["ev"]["id"]


def test_every_board_gets_the_key_and_the_mesh_runs_authenticated(swarm, tmp_path):
    for b in swarm.boards:
        k = b.folder / "rumor.key"
        assert k.read_bytes() == KEY and stat.S_IMODE(k.stat().st_mode) == 0o600
        assert "key" not in (b.folder / "board.json").read_text()
    assert_no_key("\n".join(swarm.describe()), KEY)
    assert f"network key: 32 bytes, fingerprint {fp(KEY)}, on every board" in swarm.describe()
    out = tmp_path / "run.jsonl"
    with Collector(swarm.ports, out) as col:
        assert wait_ready(col, swarm.ports) == []
        b0 = swarm.boards[0]
        reboot(b0)
        assert col.wait_for(lambda rs: events(col, b0.port, "boot") != [], WAIT)
        boot = events(col, b0.port, "boot")[0]
        assert boot["auth"] is True and boot["key_fp"] == fp(KEY)
        assert wait_ready(col, [b0.port]) == []
        mid = inject(col, b0.port, "signed")
        assert col.wait_for(lambda rs: delivered(col, mid) == {"00000002", "00000003"}, WAIT)
        col.send(swarm.ports[1], "!stats")
        assert col.wait_for(lambda rs: events(col, swarm.ports[1], "stats") != [], WAIT)
        st = events(col, swarm.ports[1], "stats")[0]
        assert st["auth"] is True and st["key_fp"] == fp(KEY) and st["net_time"] >= 0
        assert st["core"]["bad_tag"] == 0
    assert_no_key(out.read_text(encoding="utf-8"), KEY)


def test_the_network_clock_is_saved_at_a_clean_stop_and_restored_at_boot(swarm, tmp_path):
    # the middle of the line: it hears both ends' digests.  (An end node that
    # published the only message may hear nothing but copies of it, dropped
    # unchecked, and so not take the mesh's clock while the mesh is quiet.)
    b = swarm.boards[1]
    end = time.monotonic() + WAIT
    while (t1 := answer(b.port, "!stats", "stats")["net_time"]) < 0:
        # not synced until it hears a tagged frame it checks (a digest)
        assert time.monotonic() < end, "the node never took the mesh's clock"
        time.sleep(0.2)
    # mpremote stops the node with Ctrl-C, as a person at the REPL does
    mpremote = str(Path(sys.executable).parent / "mpremote")
    p = subprocess.run([mpremote, "connect", b.port, "resume", "exec", "print(6 * 7)"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.split() == ["42"], p.stderr
    saved = (b.folder / "rumor.time").read_text()
    assert saved.endswith("\n") and int(saved) >= t1
    assert not (b.folder / "rumor.time.tmp").exists()
    with Collector([b.port], tmp_path / "run.jsonl") as col:
        since = len(col.records)
        reboot(b)
        assert col.wait_for(lambda rs: events(col, b.port, "boot", since) != [], WAIT)
        # restored before the engine started, before any frame was heard
        assert events(col, b.port, "boot", since)[0]["net_time"] >= int(saved)
    (b.folder / "rumor.time").unlink()
    reboot(b)
    assert answer(b.port, "!help", "help")["node"] == "00000002"


def test_a_board_with_another_key_hears_nothing(swarm, tmp_path):
    b = swarm.boards[2]
    try:
        (b.folder / "rumor.key").write_bytes(OTHER)
        with Collector(swarm.ports, tmp_path / "run.jsonl") as col:
            assert wait_ready(col, swarm.ports) == []
            reboot(b)
            assert col.wait_for(lambda rs: events(col, b.port, "boot") != [], WAIT)
            assert events(col, b.port, "boot")[0]["key_fp"] == fp(OTHER)
            assert wait_ready(col, [b.port]) == []
            mid = inject(col, swarm.ports[0], "not for you")
            assert col.wait_for(lambda rs: "00000002" in delivered(col, mid), WAIT)
            assert not col.wait_for(lambda rs: "00000003" in delivered(col, mid), 3.0)
            col.send(b.port, "!stats")
            assert col.wait_for(lambda rs: events(col, b.port, "stats") != [], WAIT)
            assert events(col, b.port, "stats")[0]["core"]["bad_tag"] > 0
        assert_no_key((tmp_path / "run.jsonl").read_text(encoding="utf-8"), OTHER)
    finally:
        restore(b)


def test_a_board_with_a_bad_key_refuses_to_start(swarm, tmp_path):
    b = swarm.boards[2]
    try:
        (b.folder / "rumor.key").write_bytes(b"0123456789")
        out = tmp_path / "run.jsonl"
        with Collector([b.port], out) as col:
            assert wait_ready(col, [b.port]) == []
            since = len(col.records)
            reboot(b)
            assert col.wait_for(lambda rs: events(col, b.port, "error", since) != [], WAIT)
            col.wait_for(lambda rs: False, 1.0)  # anything more it would say
            text = out.read_text(encoding="utf-8")
            assert "Traceback" not in text and "0123456789" not in text
            col.send(b.port, "!help")  # the node is not running: the REPL gets this
            col.wait_for(lambda rs: False, 1.0)
            errors = events(col, b.port, "error", since)
            assert len(errors) == 1, errors
            assert errors[0]["cmd"] == "boot"
            assert errors[0]["msg"].startswith("rumor.key has 10 bytes, a network key has 16..64: "
                                               "not starting")
            assert events(col, b.port, "boot", since) == [] and events(col, b.port, "help", since) == []
    finally:
        restore(b)


def test_deploy_puts_the_key_on_a_virtual_board_and_never_prints_it(swarm, tmp_path):
    b = swarm.boards[1]
    key3 = os.urandom(48)
    kf = tmp_path / "net.key"
    kf.write_text(key3.hex() + "\n")
    try:
        r = CliRunner().invoke(main, ["deploy", "--port", b.port, "--board", "unix", "--key-file", str(kf)])
        assert r.exit_code == 0, r.output
        assert f"network key: 48 bytes, fingerprint {fp(key3)} (replaces fingerprint {fp(KEY)})" in r.output
        assert_no_key(r.output, key3)
        assert (b.folder / "rumor.key").read_bytes() == key3
        dev = (b.folder / "board.json").read_text()
        assert "key" not in json.loads(dev) and key3.hex() not in dev
        assert not (b.folder / "rumor.time").exists()  # the old mesh's clock went with its key
        st = answer(b.port, "!stats", "stats")
        assert st["auth"] is True and st["key_fp"] == fp(key3)

        r = CliRunner().invoke(main, ["deploy", "--port", b.port, "--board", "unix"])
        assert r.exit_code == 0, r.output
        assert f"network key: kept, 48 bytes, fingerprint {fp(key3)}" in r.output
        assert_no_key(r.output, key3)
        assert (b.folder / "rumor.key").read_bytes() == key3

        r = CliRunner().invoke(main, ["deploy", "--port", b.port, "--board", "unix", "--no-key"])
        assert r.exit_code == 0, r.output
        assert f"network key: removed (was fingerprint {fp(key3)})" in r.output
        assert not (b.folder / "rumor.key").exists()
        st = answer(b.port, "!stats", "stats")
        assert st["auth"] is False and st["key_fp"] is None
    finally:
        restore(b)
