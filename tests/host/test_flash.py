"""`rumor flash`: image checks (offline, through esptool), dry run, bad input."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from esp_image import build_image  # noqa: E402

from rumor_host import flash  # noqa: E402
from rumor_host.boards import load_board  # noqa: E402
from rumor_host.flash import flash_cmd  # noqa: E402


@pytest.fixture
def images(tmp_path):
    out = {}
    for chip in ("esp32", "esp32s3", "esp32c3"):
        p = tmp_path / f"{chip}.bin"
        p.write_bytes(build_image(chip))
        out[chip] = p
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"MZ\x90\x00" + bytes(300))
    out["junk"] = junk
    bad = tmp_path / "truncated.bin"
    bad.write_bytes(build_image("esp32")[:40])
    out["truncated"] = bad
    return out


def _run(args):
    return CliRunner().invoke(flash_cmd, list(args), terminal_width=200)


def test_check_image_accepts_right_chip(images):
    for chip, board in (("esp32", "heltec-v2"), ("esp32s3", "heltec-v3"), ("esp32c3", "esp32-c3")):
        info = flash.check_image(images[chip], load_board(board))
        assert info.chip == chip


def test_check_image_refuses_wrong_chip(images):
    with pytest.raises(flash.FlashError, match="image is for esp32s3, but board 'tbeam' is an esp32"):
        flash.check_image(images["esp32s3"], load_board("tbeam"))


def test_check_image_refuses_non_image(images):
    with pytest.raises(flash.FlashError, match="not an ESP firmware image"):
        flash.check_image(images["junk"], load_board("esp32"))
    with pytest.raises(flash.FlashError, match="not a valid ESP image"):
        flash.check_image(images["truncated"], load_board("esp32"))


def test_dry_run_prints_commands_for_each_port(images):
    r = _run(["--port", "/dev/ttyUSB7", "--port", "/dev/ttyUSB8", "--board", "heltec-v2",
              "--firmware", str(images["esp32"]), "--dry-run"])
    assert r.exit_code == 0, r.output
    lines = [ln for ln in r.output.splitlines() if "-m esptool" in ln]
    assert len(lines) == 4, r.output
    v5 = flash.esptool_version()[0] >= 5
    erase, write = ("erase-flash", "write-flash") if v5 else ("erase_flash", "write_flash")
    assert lines[0].endswith(f"--chip esp32 --port /dev/ttyUSB7 --baud 460800 {erase}")
    assert lines[1].endswith(f"--port /dev/ttyUSB7 --baud 460800 {write} 0x1000 {images['esp32']}")
    assert "/dev/ttyUSB8" in lines[2] and "/dev/ttyUSB8" in lines[3]


def test_dry_run_s3_offset_zero(images):
    r = _run(["--port", "/dev/ttyACM0", "--board", "t3-s3", "--firmware", str(images["esp32s3"]),
              "--dry-run", "--baud", "921600"])
    assert r.exit_code == 0, r.output
    assert "--chip esp32s3 --port /dev/ttyACM0 --baud 921600" in r.output
    assert " 0x0 " in r.output


@pytest.mark.parametrize("key, message", [
    ("junk", "not an ESP firmware image (first byte is 0x4d, not 0xE9)"),
    ("esp32s3", "image is for esp32s3, but board 'heltec-v2' is an esp32"),
])
def test_bad_file_one_line(images, key, message):
    r = _run(["--port", "/dev/ttyUSB0", "--board", "heltec-v2", "--firmware", str(images[key])])
    assert r.exit_code == 1
    assert r.output.strip().splitlines() == [f"Error: {images[key]}: {message}"], r.output


def test_unix_board_and_unknown_board(images):
    r = _run(["--port", "x", "--board", "unix", "--firmware", str(images["esp32"])])
    assert r.exit_code == 1 and "has nothing to flash" in r.output
    r = _run(["--port", "x", "--board", "nosuch", "--firmware", str(images["esp32"])])
    assert r.exit_code == 1 and r.output.startswith("Error: unknown board 'nosuch'")
    assert "Traceback" not in r.output


def test_bad_port_one_line_no_traceback(images, tmp_path):
    # Not a serial device: esptool itself fails to open it; its reason is shown.
    notaport = tmp_path / "notaport"
    notaport.write_text("")
    r = _run(["--port", "/dev/rumor-no-such-port", "--port", str(notaport), "--board", "esp32",
              "--firmware", str(images["esp32"])])
    assert r.exit_code == 1
    assert "Traceback" not in r.output
    errors = [ln for ln in r.output.splitlines() if ln.startswith("Error:")]
    assert errors[0] == "Error: /dev/rumor-no-such-port: no such serial port", errors
    assert errors[1].startswith(f"Error: {notaport}: Could not open {notaport}"), errors
    assert len(errors) == 2


def test_fatal_line():
    out = "esptool v5\nSerial port X:\n\nERROR: A fatal error occurred: Could not open X, busy.\n(more)"
    assert flash.fatal_line(out) == "Could not open X, busy."
    assert flash.fatal_line("a\nIndexError: index out of range\n") == "IndexError: index out of range"


def test_command_names():
    assert flash.command_names((5, 1, 0))["write_flash"] == "write-flash"
    assert flash.command_names((4, 8, 1))["erase_flash"] == "erase_flash"


def test_flash_takes_p_and_b_like_every_other_command(images):
    r = _run(["-p", "/dev/ttyUSB0", "-p", "/dev/ttyUSB1", "-b", "esp32",
              "--firmware", str(images["esp32"]), "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "/dev/ttyUSB0" in r.output and "/dev/ttyUSB1" in r.output
