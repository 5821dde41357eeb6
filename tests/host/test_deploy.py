"""rumor deploy to a virtual board: the files land in its folder and it
reboots into them."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from vboard import answer, line_swarm

from rumor_host.cli import main


@pytest.fixture(scope="module")
def swarm(tmp_path_factory):
    with line_swarm(1, tmp_path_factory.mktemp("swarm")) as sw:
        yield sw


def test_deploy_to_a_virtual_board(swarm):
    b = swarm.boards[0]
    before = json.loads((b.folder / "board.json").read_text())
    answer(b.port, "!help", "help")
    r = CliRunner().invoke(main, ["deploy", "--port", b.port, "--board", "unix", "--node-id", "0x2a"])
    assert r.exit_code == 0, r.output
    assert "network key: none (open mesh" in r.output  # the swarm was started without one
    assert not (b.folder / "rumor.key").exists()
    assert (b.folder / "main.py").is_file()
    mpys = sorted(p.name for p in (b.folder / "rumor").iterdir())
    assert "gossip.mpy" in mpys and "node.mpy" in mpys and not any(n.endswith(".py") for n in mpys)
    after = json.loads((b.folder / "board.json").read_text())
    assert after["node_id"] == 42 and after["name"] == "unix"
    assert after["radio"]["port"] == before["radio"]["port"]  # still finds its medium
    # it rebooted into the deployed files, with the new id
    assert answer(b.port, "!help", "help")["node"] == "0000002a"
    assert b.restarts >= 1
    # the node booted: what the deploy replaced (kept in case it did not) is gone
    assert not list(b.folder.glob("*.old")) and not list(b.folder.glob("*.new"))


def _files(folder):
    """Every file of a board's folder with its bytes (what a deploy may change)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in ("rumor.time", "rumor.time.tmp")}


def _one_error_line(r):
    lines = r.output.strip().splitlines()
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output and lines[-1].startswith("Error: "), r.output
    return lines[-1]


def test_deploy_refuses_a_board_file_for_another_chip_and_changes_nothing(swarm):
    b = swarm.boards[0]
    answer(b.port, "!help", "help")
    before = _files(b.folder)
    r = CliRunner().invoke(main, ["deploy", "-p", b.port, "-b", "esp32"])
    line = _one_error_line(r)
    assert "plugged in is unix" in line and "'esp32' is for esp32" in line and "boards for it: unix" in line
    assert _files(b.folder) == before  # nothing copied
    assert answer(b.port, "!help", "help")["ev"] == "help"  # and its node runs again


def test_deploy_says_the_exception_of_a_node_that_crashes_at_boot_and_puts_the_old_files_back(swarm):
    """The issue's case: an ESP-NOW board file on a board without `network`
    (forced past the check): deploy fails with the node's exception, and the
    board gets back the files it ran before (its medium port too)."""
    b = swarm.boards[0]
    answer(b.port, "!help", "help")
    before = _files(b.folder)
    r = CliRunner().invoke(main, ["deploy", "-p", b.port, "-b", "esp32", "--force", "--no-mip"])
    line = _one_error_line(r)
    assert "the node crashed at boot: ImportError: no module named 'network'" in line, line
    assert line.endswith("the previous files are back: node 0000002a runs unix again"), line
    assert "booted" not in r.output
    assert _files(b.folder) == before  # nothing staged, nothing kept as .old, nothing new
    assert answer(b.port, "!help", "help")["node"] == "0000002a"


def test_a_copy_that_fails_leaves_the_board_as_it_was(swarm, tmp_path):
    from rumor_host.deploy import DeployError, deploy

    b = swarm.boards[0]
    answer(b.port, "!help", "help")
    before = _files(b.folder)
    with pytest.raises(DeployError) as e:  # the last file cannot be read: mpremote stops there
        deploy(b.port, "unix", 7, echo=lambda s: None, extra=[(tmp_path / "gone.txt", "app.py")])
    assert "\n" not in str(e.value)
    after = _files(b.folder)
    staged = {k for k in after if k.startswith("rumor.new/") or k.endswith(".new")}
    assert {k: v for k, v in after.items() if k not in staged} == before
    assert json.loads((b.folder / "board.json").read_text())["node_id"] == 42  # not 7
    assert answer(b.port, "!help", "help")["node"] == "0000002a"  # running, as it was


def test_deploy_takes_a_board_file_path_and_explains_a_bad_one(swarm, tmp_path):
    from rumor_host.boards import boards_dir

    b = swarm.boards[0]
    mine = tmp_path / "unix.json"
    mine.write_bytes((boards_dir() / "unix.json").read_bytes())
    r = CliRunner().invoke(main, ["deploy", "-p", b.port, "-b", str(mine)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["deploy", "-p", b.port, "-b", str(tmp_path / "nope.json")])
    line = _one_error_line(r)
    assert "no such board file" in line and "rumor boards" in line
    assert "path" in CliRunner().invoke(main, ["deploy", "--help"]).output


def test_a_main_py_that_is_not_rumor_stops_at_the_repl_and_deploy_says_so(swarm, tmp_path):
    from rumor_host.deploy import DeployError, deploy

    b = swarm.boards[0]
    answer(b.port, "!help", "help")
    other = tmp_path / "main.py"
    other.write_text("print('my own program')\n")
    try:
        with pytest.raises(DeployError) as e:
            deploy(b.port, "unix", 42, echo=lambda s: None, extra=[(other, "main.py")], boot_timeout=10)
        assert "stopped at the REPL without starting" in str(e.value) and "\n" not in str(e.value)
    finally:
        r = CliRunner().invoke(main, ["deploy", "-p", b.port, "-b", "unix"])
        assert r.exit_code == 0, r.output
    assert answer(b.port, "!help", "help")["node"] == "0000002a"


def test_deploy_while_rumor_logs_holds_the_port(swarm, tmp_path):
    from rumor_host.logs import Collector, wait_ready

    b = swarm.boards[0]
    with Collector([b.port], tmp_path / "run.jsonl") as col:
        assert wait_ready(col, [b.port]) == []
        r = CliRunner().invoke(main, ["deploy", "-p", b.port, "-b", "unix", "--node-id", "43"])
        assert r.exit_code == 0, r.output
        assert "held by rumor logs" in r.output and "booted unix" in r.output
        since = len(col.records)
        col.send(b.port, "!help")  # the collector reads the port again, the node runs the new id
        assert col.wait_for(lambda rs: any(r.get("ev", {}).get("ev") == "help" and
                                           r["ev"]["node"] == "0000002b" for r in rs[since:]), 20)
    CliRunner().invoke(main, ["deploy", "-p", b.port, "-b", "unix", "--node-id", "42"])


@pytest.mark.parametrize("platform, machine, chip", [
    ("esp32", "Generic ESP32 module with ESP32", "esp32"),
    ("esp32", "ESP32 module (spiram) with ESP32", "esp32"),
    ("esp32", "Generic ESP32S3 module with ESP32S3", "esp32s3"),
    ("esp32", "LILYGO T3-S3 with ESP32-S3", "esp32s3"),
    ("esp32", "ESP32C3 module with ESP32C3", "esp32c3"),
    ("linux", "linux [GCC 14.2.1] version", "unix"),
    ("rp2", "Raspberry Pi Pico with RP2040", ""),
])
def test_the_chip_a_board_says_it_is(platform, machine, chip):
    from rumor_host.deploy import BoardState

    assert BoardState(f"{{}}\n@@plat {platform}\n@@mach {machine}\n").chip == chip


def test_the_platform_check_names_what_is_wrong():
    from rumor_host.boards import load_board
    from rumor_host.deploy import BoardState, DeployError, check_platform

    s3 = "{}\n@@plat esp32\n@@mach Generic ESP32S3 module with ESP32S3\n@@radio espnow 1\n@@radio lora 1\n"
    check_platform(load_board("esp32-s3"), BoardState(s3), "P")  # the right board: no error
    with pytest.raises(DeployError, match="is esp32s3 .* 'esp32' is for esp32; boards for it: esp32-s3"):
        check_platform(load_board("esp32"), BoardState(s3), "P")
    with pytest.raises(DeployError, match="needs ESP-NOW, but this MicroPython has no espnow module"):
        check_platform(load_board("esp32-s3"), BoardState(s3.replace("espnow 1", "espnow 0")), "P")
    with pytest.raises(DeployError, match="did not say what it is"):
        check_platform(load_board("esp32"), BoardState("{}\n"), "P")
