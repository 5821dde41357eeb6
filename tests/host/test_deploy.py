"""rumor deploy to a virtual board: the files land in its folder and it
reboots into them."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from vboard import answer

from rumor_host.cli import main
from rumor_host.swarm import Swarm


@pytest.fixture(scope="module")
def swarm(tmp_path_factory):
    with Swarm(1, "line", 0.0, run_dir=tmp_path_factory.mktemp("swarm"), stats_interval_ms=0,
               log=lambda s: None) as sw:
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
