"""rumor deploy to a board whose firmware has the rumor package frozen in
(firmware/manifest.py): it copies main.py and board.json, not the package,
and takes away a rumor/ folder that would shadow the frozen one.  The board
is a virtual board running build/mp32-frozen/micropython (`make mp32`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from vboard import answer

import rumor_host.swarm as swarm_mod
from rumor_host.cli import main
from rumor_host.deploy import _FROZEN, BoardState
from rumor_host.swarm import Swarm

ROOT = Path(__file__).resolve().parents[2]
FROZEN_EXE = ROOT / "build" / "mp32-frozen" / "micropython"
needs_frozen = pytest.mark.skipif(not os.access(FROZEN_EXE, os.X_OK),
                                  reason="no build/mp32-frozen/micropython: `make mp32` builds it")


def _ask(exe: str, path: list[str]) -> BoardState:
    """Run deploy's frozen check under exe with MICROPYPATH=path."""
    env = dict(os.environ, MICROPYPATH=os.pathsep.join(path))
    p = subprocess.run([exe, "-c", _FROZEN], capture_output=True, text=True, env=env, timeout=30,
                       cwd=ROOT / "firmware")  # (a rumor/ folder right here, as on a deployed board)
    assert p.returncode == 0, p.stderr
    return BoardState(p.stdout)


def test_board_state_reads_the_frozen_lines():
    st = BoardState("{}\n@@frozen rumor/__init__.py\n@@frozen_lora 1\n")
    assert st.frozen == "rumor/__init__.py" and st.frozen_lora
    st = BoardState("{}\n@@frozen -\n@@frozen_lora 0\n")
    assert st.frozen == "" and not st.frozen_lora
    assert BoardState("{}\n").frozen == ""  # an old board that printed nothing: copy as before


@needs_frozen
def test_the_check_tells_frozen_from_files_by_rumor_file():
    # the frozen port: found in the image, even with firmware/rumor/ in the cwd
    st = _ask(str(FROZEN_EXE), [".frozen"])
    assert st.frozen == "rumor/__init__.py" and not st.frozen_lora
    # the wheel's port with the package on its path as files: not frozen
    wheel = swarm_mod.micropython_exe()
    assert _ask(wheel, [".frozen", str(ROOT / "firmware")]).frozen == ""


@pytest.fixture
def frozen_swarm(tmp_path, monkeypatch):
    monkeypatch.setattr(swarm_mod, "micropython_exe", lambda: str(FROZEN_EXE))
    with Swarm(1, "line", 0.0, run_dir=tmp_path / "swarm", stats_interval_ms=0,
               log=lambda s: None) as sw:
        yield sw


def _stop_node(port: str) -> None:
    """Stop the node and leave its REPL waiting.  The 1.28 unix port's REPL
    discards input that came before it started (tcsetattr TCSAFLUSH), and
    mpremote sends its Ctrl-A right after its Ctrl-C, so the first mpremote
    to reach a running virtual board on this port loses the Ctrl-A ("could
    not enter raw repl"); the next one finds the REPL.  (The wheel's 1.29 port
    and an ESP32's REPL keep that input.)"""
    mp = Path(sys.executable).parent / "mpremote"
    for _ in range(3):
        p = subprocess.run([str(mp), "connect", port, "resume", "exec", "pass"],
                           capture_output=True, text=True, timeout=60)
        if p.returncode == 0:
            return
    raise AssertionError(f"{port}: no raw REPL: {p.stderr[-300:]}")


@needs_frozen
def test_deploy_to_a_frozen_board_copies_no_package(frozen_swarm):
    b = frozen_swarm.boards[0]
    answer(b.port, "!help", "help")
    _stop_node(b.port)
    stale = b.folder / "rumor"  # from a deploy before the board got its frozen firmware
    stale.mkdir(exist_ok=True)
    (stale / "gossip.mpy").write_bytes(b"M\x06old")
    r = CliRunner().invoke(main, ["deploy", "--port", b.port, "--board", "unix", "--node-id", "0xc4123456"])
    assert r.exit_code == 0, r.output
    assert "rumor is frozen into the board's firmware (rumor/__init__.py)" in r.output
    assert "rumor/ (" not in r.output  # no modules copied
    assert (b.folder / "main.py").is_file()
    assert not stale.exists()  # it would have shadowed the frozen package
    assert json.loads((b.folder / "board.json").read_text())["node_id"] == 0xC4123456
    # it rebooted on its frozen package, with the new id
    assert answer(b.port, "!help", "help")["node"] == "c4123456"
    assert b.restarts >= 1
