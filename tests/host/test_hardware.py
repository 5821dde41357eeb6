"""Flash a real board: `pytest -m hardware --port /dev/ttyUSB0 [--port ...]`.

Needs RUMOR_HW_BOARD (a board name, e.g. heltec-v3) and RUMOR_HW_FIRMWARE
(the MicroPython .bin for it).  Skipped unless --port is given."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from rumor_host.flash import flash_cmd

pytestmark = pytest.mark.hardware


@pytest.fixture
def ports(request):
    ports = request.config.getoption("--port")
    if not ports:
        pytest.skip("no --port given: hardware tests need a real board")
    return ports


def test_flash_real_boards(ports):
    board = os.environ.get("RUMOR_HW_BOARD")
    firmware = os.environ.get("RUMOR_HW_FIRMWARE")
    if not board or not firmware:
        pytest.skip("set RUMOR_HW_BOARD and RUMOR_HW_FIRMWARE")
    args = ["--board", board, "--firmware", firmware]
    for p in ports:
        args += ["--port", p]
    r = CliRunner().invoke(flash_cmd, args)
    assert r.exit_code == 0, r.output
    assert f"flashed {len(ports)} board(s)" in r.output
