"""The host tools against the three things real boards do to them: a port that
vanishes, a board that prints garbage, a line cut in half.  Each is reported
in one line, counted, and nothing already collected is lost.

Boards here are real ptys (the test holds the master, the tool opens the
slave as it would a USB port), or a fake pyserial object that fails on cue."""

from __future__ import annotations

import json
import os
import pty
import random
import select
import signal
import subprocess
import sys
import termios
import time
import tty
from pathlib import Path

import pytest
import serial

from rumor_host.logs import Collector, describe
from rumor_host.report import analyse, read_jsonl
from rumor_host.serialio import MAX_LINE, LineReader, PortError, split_event

RUMOR = [sys.executable, "-m", "rumor_host.cli"]
WAIT = 5.0  # upper bound of every wait; nothing asserts on time


def ev_line(ev: str, node: int, **fields: object) -> bytes:
    d = {"ev": ev, "node": f"{node:08x}", **fields, "t": 1}
    return b"@rumor " + json.dumps(d, separators=(",", ":")).encode() + b"\r\n"


def deliver(node: int, origin: int, seq: int, hops: int = 1) -> bytes:
    return ev_line("deliver", node, origin=f"{origin:08x}", seq=seq, id=f"{origin:08x}{seq:04x}", hops=hops)


def publish(node: int, seq: int, req: int | None = None) -> bytes:
    return ev_line("publish", node, origin=f"{node:08x}", seq=seq, id=f"{node:08x}{seq:04x}",
                   priority=0, len=2, req=req)


class Board:
    """A pty standing in for a board: write() is what it prints; the tool
    opens .port.  vanish() closes our end (the USB cable pulled); with a
    symlink port, plug_in() makes the same path work again (a new pty)."""

    def __init__(self, link: Path | None = None):
        self.link = link
        self.m = -1
        self.plug_in()

    def plug_in(self) -> None:
        self.m, s = pty.openpty()
        tty.setraw(s)
        self.tty = os.ttyname(s)
        os.close(s)
        if self.link is not None:
            tmp = self.link.with_suffix(".tmp")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(self.tty)
            tmp.replace(self.link)

    @property
    def port(self) -> str:
        return str(self.link) if self.link is not None else self.tty

    def write(self, data: bytes) -> None:
        while data:
            n = os.write(self.m, data)
            data = data[n:]

    def read_until(self, want: bytes, timeout: float = WAIT) -> bytes:
        got = b""
        end = time.monotonic() + timeout
        while want not in got and time.monotonic() < end:
            r, _, _ = select.select([self.m], [], [], 0.05)
            if r:
                try:
                    got += os.read(self.m, 4096)
                except OSError:  # EIO: the tool has not opened its end yet
                    time.sleep(0.05)
        assert want in got, got
        return got

    def vanish(self) -> None:
        if self.link is not None:
            self.link.unlink(missing_ok=True)
        if self.m >= 0:
            os.close(self.m)
            self.m = -1


@pytest.fixture
def boards():
    made: list[Board] = []

    def make(link: Path | None = None) -> Board:
        b = Board(link)
        made.append(b)
        return b

    yield make
    for b in made:
        b.vanish()


def notes(col: Collector, port: str, kind: str) -> list[dict]:
    return [r for r in col.records if r.get("port") == port and r.get("collector") == kind]


def file_records(path: Path) -> list[dict]:
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


def wait_file(path: Path, pred, timeout: float = WAIT) -> list[dict]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists():
            recs = file_records(path)
            if pred(recs):
                return recs
        time.sleep(0.05)
    raise AssertionError(f"{path}: {path.read_text() if path.exists() else 'missing'}")


def connected(port: str):
    return lambda rs: any(r.get("port") == port and r.get("collector") in ("connected", "reconnected")
                          for r in rs)


# -- 1. a port that vanishes ---------------------------------------------------------


def test_rumor_logs_one_stderr_line_for_a_vanished_port_the_other_keeps_going(boards, tmp_path):
    a, b = boards(), boards()
    out = tmp_path / "run.jsonl"
    p = subprocess.Popen([*RUMOR, "logs", "-p", a.port, "-p", b.port, "-o", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_file(out, lambda rs: connected(a.port)(rs) and connected(b.port)(rs))
        a.write(deliver(1, 2, 1))
        b.write(deliver(3, 2, 1))
        wait_file(out, lambda rs: sum("ev" in r for r in rs) == 2)
        a.vanish()
        wait_file(out, lambda rs: any(r.get("collector") == "disconnected" for r in rs))
        b.write(deliver(3, 2, 2))  # the other board is still read
        wait_file(out, lambda rs: sum("ev" in r for r in rs) == 3)
        p.send_signal(signal.SIGTERM)  # stops as Ctrl-C does
        stdout, stderr = p.communicate(timeout=WAIT)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0, stderr
    assert "Traceback" not in stderr + stdout
    about_a = [ln for ln in stderr.splitlines() if a.port in ln]
    assert len(about_a) == 2 and about_a[0].endswith(f"{a.port}: connected"), stderr
    gone = about_a[1]
    assert "disconnected" in gone and ("Errno" in gone or "device" in gone), gone  # names the cause
    recs = file_records(out)
    got = [(r["port"], r["ev"]["seq"]) for r in recs if "ev" in r]
    assert sorted(got[:2]) == sorted([(a.port, 1), (b.port, 1)]) and got[2:] == [(b.port, 2)]
    assert "lines appended" in stdout


def test_rumor_logs_killed_outright_loses_no_line(boards, tmp_path):
    """Every line is flushed as it is read: a SIGKILL (a crash) leaves them all."""
    a = boards()
    out = tmp_path / "run.jsonl"
    p = subprocess.Popen([*RUMOR, "logs", "-q", "-p", a.port, "-o", str(out)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_file(out, connected(a.port))
        for seq in range(1, 51):
            a.write(deliver(1, 2, seq))
        wait_file(out, lambda rs: sum("ev" in r for r in rs) == 50)
    finally:
        p.kill()
        p.wait()
    raw = out.read_bytes()
    assert raw.endswith(b"\n")  # no half-written record
    assert [r["ev"]["seq"] for r in file_records(out) if "ev" in r] == list(range(1, 51))


def test_rumor_logs_no_reconnect_ends_with_an_error_and_keeps_the_lines(boards, tmp_path):
    a = boards()
    out = tmp_path / "run.jsonl"
    p = subprocess.Popen([*RUMOR, "logs", "--no-reconnect", "-p", a.port, "-o", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_file(out, connected(a.port))
        a.write(deliver(1, 2, 7))
        wait_file(out, lambda rs: any("ev" in r for r in rs))
        a.vanish()
        stdout, stderr = p.communicate(timeout=WAIT)  # it ends by itself
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 1 and "Traceback" not in stderr
    assert [ln for ln in stderr.splitlines() if "gone" in ln and a.port in ln], stderr
    assert stderr.strip().splitlines()[-1].startswith("Error: no port left")
    assert [r["ev"]["seq"] for r in file_records(out) if "ev" in r] == [7]


def test_rumor_logs_help_says_what_reconnect_does():
    p = subprocess.run([*RUMOR, "logs", "--help"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0
    assert "--reconnect / --no-reconnect" in p.stdout and "default: reconnect" in p.stdout


def test_a_port_that_comes_back_is_read_again_and_only_one_line_said_meanwhile(boards, tmp_path):
    a = boards(tmp_path / "a.tty")  # a stable path, as the swarm and udev give
    out = tmp_path / "run.jsonl"
    col = Collector([a.port], out, retry_s=0.05)
    col.start()
    try:
        assert col.wait_for(connected(a.port), WAIT)
        a.write(deliver(1, 2, 1) + b"half a line")
        assert col.wait_for(lambda rs: len(col.events()) == 1, WAIT)
        time.sleep(0.2)  # the half line is read too
        a.vanish()
        assert col.wait_for(lambda rs: notes(col, a.port, "disconnected"), WAIT)
        time.sleep(0.5)  # away for a while: ten retries, and not one more line about it
        assert notes(col, a.port, "waiting") == []
        a.plug_in()
        assert col.wait_for(lambda rs: notes(col, a.port, "reconnected"), WAIT)
        a.write(deliver(1, 2, 2))
        assert col.wait_for(lambda rs: len(col.events()) == 2, WAIT)
    finally:
        col.stop()
    recs = read_jsonl(out)
    assert "run" in recs[0]  # the run header, then what the port said
    kinds = [r.get("collector") or r.get("line") or r["ev"]["seq"] for r in recs[1:]]
    assert kinds == ["connected", 1, "half a line", "disconnected", "reconnected", 2]
    assert [r for r in recs if r.get("line")][0]["cut"] is True


class FlakySerial:
    """A pyserial stand-in: gives its chunks, then raises `fail` on read."""

    def __init__(self, port: str, chunks: list[bytes], fail: BaseException):
        self.port = port
        self.chunks = list(chunks)
        self.fail = fail
        self.closed = False

    @property
    def in_waiting(self) -> int:
        return len(self.chunks[0]) if self.chunks else 0

    def read(self, n: int = 1) -> bytes:
        if self.chunks:
            return self.chunks.pop(0)
        raise self.fail

    def write(self, data: bytes) -> int:
        raise self.fail

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True
        raise OSError(5, "Input/output error")  # closing a vanished port can fail too


@pytest.mark.parametrize("fail", [
    serial.SerialException("device reports readiness to read but returned no data "
                           "(device disconnected or multiple access on port?)"),
    OSError(5, "Input/output error"),
    TypeError("'NoneType' object cannot be interpreted as an integer"),  # a driver's surprise
], ids=["SerialException", "OSError", "TypeError"])
def test_line_reader_turns_any_read_failure_into_one_line(fail):
    r = LineReader(FlakySerial("/dev/ttyUSB3", [b"one\r\ntw"], fail))  # type: ignore[arg-type]
    assert r.read_lines() == ["one"]
    with pytest.raises(PortError) as e:
        r.read_lines()
    msg = str(e.value)
    assert msg.startswith("/dev/ttyUSB3: disconnected (") and "\n" not in msg
    assert str(fail).split()[0] in e.value.detail
    assert r.take_tail().text == "tw"  # the bytes read before it are still there
    with pytest.raises(PortError) as e:
        r.write_line("!stats")
    # the port is gone only if the error says so (EIO); the others are one failed write
    want = "disconnected" if isinstance(fail, OSError) and fail.errno == 5 else "write failed"
    assert str(e.value).startswith(f"/dev/ttyUSB3: {want} (") and "\n" not in str(e.value)


def _wrapped(cause: OSError) -> serial.SerialException:
    """What pyserial's write raises for an OSError: a SerialException raised
    inside the except, the OSError its context, its text naming the errno."""
    try:
        raise cause
    except OSError as c:
        try:
            raise serial.SerialException(f"write failed: {c}")
        except serial.SerialException as e:
            return e


class FailingWrite(FlakySerial):
    """write() or flush() (pyserial's tcdrain) raises `fail`."""

    def __init__(self, fail: BaseException, on_flush: bool = False):
        super().__init__("/dev/ttyACM0", [], fail)
        self.on_flush = on_flush

    def write(self, data: bytes) -> int:
        if not self.on_flush:
            raise self.fail
        return len(data)

    def flush(self) -> None:
        if self.on_flush:
            raise self.fail


@pytest.mark.parametrize("fail, on_flush, want", [
    (OSError(5, "Input/output error"), False, "disconnected"),
    (OSError(6, "No such device or address"), False, "disconnected"),
    (OSError(19, "No such device"), False, "disconnected"),
    (OSError(9, "Bad file descriptor"), False, "disconnected"),
    (_wrapped(OSError(5, "Input/output error")), False, "disconnected"),
    (serial.SerialException("write failed: [Errno 6] No such device or address"), False, "disconnected"),
    (serial.PortNotOpenError(), False, "disconnected"),
    (termios.error(5, "Input/output error"), True, "disconnected"),
    (OSError(28, "No space left on device"), False, "write failed"),
    (_wrapped(OSError(22, "Invalid argument")), False, "write failed"),
    (serial.SerialTimeoutException("Write timeout"), False, "write failed"),
    (termios.error(4, "Interrupted system call"), True, "write failed"),
    (TypeError("'NoneType' object cannot be interpreted as an integer"), False, "write failed"),
], ids=["EIO", "ENXIO", "ENODEV", "EBADF", "SerialException-EIO", "SerialException-ENXIO",
        "PortNotOpen", "tcdrain-EIO", "ENOSPC", "SerialException-EINVAL", "timeout",
        "tcdrain-EINTR", "TypeError"])
def test_a_write_to_a_gone_port_says_disconnected_as_a_read_does(fail, on_flush, want):
    r = LineReader(FailingWrite(fail, on_flush))  # type: ignore[arg-type]
    with pytest.raises(PortError) as e:
        r.write_line("!stats")
    msg = str(e.value)
    assert msg.startswith(f"/dev/ttyACM0: {want} (") and msg.endswith(")") and "\n" not in msg
    if isinstance(fail, termios.error):  # said as an OSError would say it
        assert e.value.detail == f"[Errno {fail.args[0]}] {fail.args[1]}"


def test_a_write_to_a_real_pty_whose_far_end_closed_says_disconnected():
    m, s = pty.openpty()
    tty.setraw(s)
    ser = serial.Serial(os.ttyname(s), timeout=0)
    os.close(s)
    try:
        os.close(m)  # the board unplugged: the slave's writes now fail (EIO on Linux)
        with pytest.raises(PortError) as e:
            LineReader(ser).write_line("!stats")
        assert str(e.value).startswith(f"{ser.port}: disconnected ("), str(e.value)
    finally:
        ser.close()


def test_collector_survives_read_failures_and_keeps_every_port(monkeypatch, tmp_path):
    """Fake ports that fail on read the three ways pyserial does: each failure is
    one note, the port is reopened, the healthy port never notices."""
    import rumor_host.logs as logs

    plan = {
        "/flaky": [FlakySerial("/flaky", [deliver(1, 9, 1)], serial.SerialException("read failed: EIO")),
                   FlakySerial("/flaky", [deliver(1, 9, 2)], TypeError("fd is None")),
                   FlakySerial("/flaky", [deliver(1, 9, 3)], OSError(19, "No such device"))],
        "/fine": [FlakySerial("/fine", [deliver(2, 9, s) for s in range(1, 4)], OSError(5, "EIO"))],
    }
    opened: list[FlakySerial] = []

    def fake_open(port: str, timeout: float = 0.1):
        if not plan[port]:
            raise PortError(f"{port}: no such port", "no such port")
        s = plan[port].pop(0)
        opened.append(s)
        return s

    monkeypatch.setattr(logs, "open_port", fake_open)
    out = tmp_path / "run.jsonl"
    with Collector(["/flaky", "/fine"], out, retry_s=0.01) as col:
        assert col.wait_for(lambda rs: len(notes(col, "/flaky", "disconnected")) == 3
                            and len(notes(col, "/fine", "disconnected")) == 1, WAIT)
    assert all(s.closed for s in opened)
    why = [r["why"] for r in notes(col, "/flaky", "disconnected")]
    assert why == ["read failed: EIO", "TypeError: fd is None", "[Errno 19] No such device"]
    assert [r["collector"] for r in col.records if r["port"] == "/flaky" and "collector" in r] == \
        ["connected", "disconnected", "reconnected", "disconnected", "reconnected", "disconnected"]
    got = {(r["port"], r["ev"]["seq"]) for r in read_jsonl(out) if "ev" in r}
    assert got == {("/flaky", 1), ("/flaky", 2), ("/flaky", 3), ("/fine", 1), ("/fine", 2), ("/fine", 3)}


def test_an_unwritable_log_is_said_once_and_reading_goes_on(boards):
    a = boards()
    said: list[str] = []
    col = Collector([a.port], "/dev/full", retry_s=0.05, warn=said.append)  # every write: ENOSPC
    col.start()
    try:
        assert col.wait_for(connected(a.port), WAIT)
        for seq in (1, 2, 3):
            a.write(deliver(1, 2, seq))
        assert col.wait_for(lambda rs: len(col.events("deliver")) == 3, WAIT)
    finally:
        col.stop()
    assert len(said) == 1 and said[0].startswith("/dev/full: cannot write") and "\n" not in said[0]


def test_rumor_inject_to_a_port_that_vanishes_midway(boards):
    a = boards()
    p = subprocess.Popen([*RUMOR, "inject", "-p", a.port, "-n", "2", "--interval-ms", "0", "hi"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        a.read_until(b'"req":1}\n')
        # an answer to some earlier command first: not ours, not printed
        a.write(publish(5, 40, req=9) + b"\xff\xfe boot noise \x00\r\n" + publish(5, 41, req=1))
        a.read_until(b'"req":2}\n')
        a.vanish()  # unplugged before it answers the second
        stdout, stderr = p.communicate(timeout=WAIT)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 1 and "Traceback" not in stderr
    assert stdout.split() == ["000000050029"]  # the first id stands, and it is the right one
    err = [ln for ln in stderr.splitlines() if ln.strip()]
    # the board may vanish while inject's write of the second command is still
    # draining (the pty's tcdrain returns EIO then) or while it waits for the
    # answer: either way the same one line that names the port and what happened
    assert len(err) == 1 and err[0].startswith(f"Error: {a.port}: disconnected ("), stderr


def test_rumor_inject_to_a_dangling_port(tmp_path):
    link = tmp_path / "node01.tty"
    link.symlink_to("/dev/pts/999999")  # what a swarm leaves when a board is unplugged
    p = subprocess.run([*RUMOR, "inject", "-p", str(link), "hi"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines() == [f"Error: {link}: no such port (is the board plugged in? "
                                             "`rumor swarm` prints its ports)"]


# -- 2. a board that prints garbage ------------------------------------------------------


def test_garbage_is_kept_marked_and_bounded_and_events_still_come_through(boards, tmp_path):
    a = boards()
    rng = random.Random(7)
    noise = bytes(rng.randrange(256) for _ in range(3000)).replace(b"\n", b"")  # one long line of it
    endless = b"A" * (3 * MAX_LINE + 123)  # a board printing without a newline for ever
    out = tmp_path / "run.jsonl"
    col = Collector([a.port], out, retry_s=0.05)
    col.start()
    try:
        assert col.wait_for(connected(a.port), WAIT)
        a.write(b"\x1b[2J\xe2\x80\x9cfine\xe2\x80\x9d ESC is ok\r\n")  # valid UTF-8 and an ANSI escape
        a.write(noise + b"\r\n")
        a.write(b"bad utf-8 \xc3\x28 here\r\n")
        a.write(deliver(1, 2, 1))
        a.write(endless)
        a.write(b"\r\n" + deliver(1, 2, 2))
        assert col.wait_for(lambda rs: len(col.events()) == 2, WAIT)
    finally:
        col.stop()
    recs = read_jsonl(out)
    lines = [r for r in recs if "line" in r]
    assert all(len(r["line"].encode("utf-8")) <= MAX_LINE for r in lines)
    assert not lines[0].get("garbage")
    assert lines[1].get("garbage") and lines[2].get("garbage") and "\ufffd" in lines[2]["line"]
    long = [r for r in lines if r.get("long")]
    assert "".join(r["line"] for r in long) == endless.decode()  # cut in pieces, not one byte lost
    assert len(long) == 4
    assert [r["ev"]["seq"] for r in recs if "ev" in r] == [1, 2]  # both events, in order
    assert col.counts["garbage"] == 2 and col.counts["long"] == 4
    for r in recs:  # what the terminal is shown: no control character gets through
        shown = describe(r)
        assert all(c.isprintable() or c == "\t" for c in shown), shown


def test_a_long_line_is_never_cut_inside_a_character():
    text = "é" * 40 + "\n"
    r = LineReader(FlakySerial("/p", [text.encode()], OSError(5, "EIO")), max_line=15)  # type: ignore[arg-type]
    pieces = r.read()
    assert "".join(p.text for p in pieces) == text[:-1]
    assert all("\ufffd" not in p.text and p.long for p in pieces)


# -- 3. a line cut in half ---------------------------------------------------------------


def test_split_event():
    whole = deliver(3, 1, 5).decode().strip()
    assert split_event(whole)[0]["seq"] == 5
    cut = whole[:40]
    ev, before, after = split_event(cut + whole)  # a reset mid-print, then the whole line
    assert ev is not None and ev["seq"] == 5 and before == cut and after == ""
    ev, before, after = split_event(whole + "ets Jun  8 2016 00:22:57")  # a reset just after it
    assert ev is not None and ev["seq"] == 5 and after == "ets Jun  8 2016 00:22:57"
    for k in range(len(whole)):  # no prefix of an event is ever taken for one
        assert split_event(whole[:k])[0] is None
        assert split_event(whole[:k] + "\x00\xff rst:0x1 (POWERON_RESET)")[0] is None


def test_a_board_reset_mid_print_is_counted_not_misattributed(boards, tmp_path):
    a = boards()
    out = tmp_path / "run.jsonl"
    col = Collector([a.port], out, retry_s=0.05)
    col.start()
    try:
        assert col.wait_for(connected(a.port), WAIT)
        a.write(publish(1, 1))
        a.write(deliver(2, 1, 1)[:50] + b"\x00\x00" + ev_line("boot", 2, board="esp32"))
        a.write(deliver(2, 1, 1).rstrip() + b"ets Jun  8 2016 00:22:57\r\n")
        a.write(deliver(2, 1, 2)[:60])  # and unplugged mid-line
        time.sleep(0.3)
        a.vanish()
        assert col.wait_for(lambda rs: notes(col, a.port, "disconnected"), WAIT)
    finally:
        col.stop()
    recs = read_jsonl(out)
    assert [r["ev"]["ev"] for r in recs if "ev" in r] == ["publish", "boot", "deliver"]
    cut = [r for r in recs if r.get("cut")]
    assert len(cut) == 2 and all(r["line"].startswith("@rumor ") for r in cut)
    rep = analyse(recs)
    assert rep["cut_events"] == 2 and rep["messages"] == 1 and rep["deliveries"] == 1
    assert rep["per_message"][0]["nodes"]["00000002"]["hops"] == 1


# -- the report reads what is left -------------------------------------------------------


def rec(t: float, port: str, raw: bytes) -> str:
    return json.dumps({"t": t, "port": port, "ev": json.loads(raw.decode().split(" ", 1)[1])})


def test_report_skips_and_counts_what_it_cannot_use_in_one_line(tmp_path):
    good = [
        rec(1.0, "/a", publish(1, 1)),
        rec(1.1, "/b", deliver(2, 1, 1)),
        rec(1.2, "/c", deliver(3, 1, 1, hops=2)),
    ]
    bad = [
        # a board's bytes mangled inside the id: would be a phantom message
        '{"t": 1.3, "port": "/c", "ev": {"ev": "deliver", "node": "00000003", "origin": "00000001",'
        ' "id": "0000\\ufffd0010001", "hops": 1}, "garbage": true}',
        # an id that is not its origin's
        '{"t": 1.4, "port": "/b", "ev": {"ev": "deliver", "node": "00000002", "origin": "00000001",'
        ' "id": "000000090001", "hops": 1}}',
        # a node that is not a node id, and a time that is not a time
        '{"t": 1.5, "port": "/b", "ev": {"ev": "deliver", "node": "0002", "origin": "00000001",'
        ' "id": "000000010001", "hops": 1}}',
        '{"t": "soon", "port": "/b", "ev": {"ev": "boot", "node": "00000004"}}',
    ]
    board_lines = [
        '{"t": 1.6, "port": "/a", "line": "@rumor {\\"ev\\":\\"deliver\\",\\"node\\":\\"0000", "cut": true}',
        '{"t": 1.7, "port": "/a", "line": "\\u0000\\ufffd\\ufffd", "garbage": true}',
    ]
    body = "\n".join(good[:1] + bad + good[1:] + board_lines) + "\n"
    f = tmp_path / "run.jsonl"
    f.write_bytes(body.encode() + b"\xff\xfe\x00 garbage from a dying disk\n\x00\x00\x00\n"
                  + good[0][:25].encode())  # and the last record cut by a crash
    rep = analyse(read_jsonl(f))
    assert rep["nodes"] == 3 and rep["messages"] == 1 and rep["delivery_ratio"] == 1.0
    assert rep["bad_records"] == 4 and rep["skipped_lines"] == 2
    assert rep["cut_events"] == 1 and rep["garbage_lines"] == 2
    p = subprocess.run([*RUMOR, "report", str(f), "--json", str(tmp_path / "r.json")],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    said = [ln for ln in p.stdout.splitlines() if ln.startswith("skipped:")]
    assert said == ["skipped: 2 unreadable in the file (cut by a crash?), 1 cut events (a board reset "
                    "mid-line?), 2 garbage from the boards, 4 events with bad fields"]
    figures = json.loads((tmp_path / "r.json").read_text())
    assert figures["skipped_lines"] == 2 and figures["bad_records"] == 4


def test_report_of_a_clean_run_says_it_skipped_nothing(tmp_path):
    f = tmp_path / "run.jsonl"
    f.write_text(rec(1.0, "/a", publish(1, 1)) + "\n" + rec(1.1, "/b", deliver(2, 1, 1)) + "\n")
    p = subprocess.run([*RUMOR, "report", str(f)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and "skipped: nothing" in p.stdout


def test_report_of_a_file_that_is_not_a_run(tmp_path):
    f = tmp_path / "run.png"
    f.write_bytes(bytes(range(256)) * 8)
    p = subprocess.run([*RUMOR, "report", str(f)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines() == [f"Error: {f}: not a text file (is this a `rumor logs` file?)"]
