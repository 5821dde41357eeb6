"""Flash a real board: `pytest -m hardware --port /dev/ttyUSB0 [--port ...]`.

Needs RUMOR_HW_BOARD (a board name, e.g. heltec-v3) and RUMOR_HW_FIRMWARE
(the MicroPython .bin for it).  Skipped unless --port is given."""

from __future__ import annotations

import os
import subprocess
import sys
import time

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


# Channel activity detection on real LoRa boards (rumor/lora_cad.py):
# `pytest -m hardware --port A [--port B]` on boards `rumor deploy` has set up
# (board.json with a LoRa radio, micropython-lib's lora package installed).
# One port: on a quiet channel every CAD finishes (its CadDone interrupt or
# flag comes) and few find activity.  Two ports: while B transmits long
# frames back to back, A's CADs find the channel busy.
_CAD_SCRIPT = """
import asyncio, json
from rumor.radio_lora import make_modem
from rumor.lora_cad import cad_for
b = json.load(open('board.json'))
m = make_modem(b['radio'], b['pins'])
cad = cad_for(m)
async def main():
    busy = 0
    for _ in range(%d):
        busy += 1 if await cad.busy() else 0
        await asyncio.sleep_ms(%d)
    print('@@CAD', cad.runs, busy, cad.timeouts, type(cad).__name__)
asyncio.run(main())
"""
_TX_SCRIPT = """
import asyncio, json
from rumor.radio_lora import make_modem
b = json.load(open('board.json'))
m = make_modem(b['radio'], b['pins'])
async def main():
    for _ in range(%d):
        await m.send(bytes(200))
asyncio.run(main())
"""


def _mpremote(port: str, code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mpremote", "connect", port, "exec", code],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _cad_result(proc: subprocess.Popen, timeout: float) -> tuple[int, int, int, str]:
    out, _ = proc.communicate(timeout=timeout)
    line = next((x for x in out.splitlines() if x.startswith("@@CAD")), None)
    assert line, out
    _tag, runs, busy, timeouts, kind = line.split()
    return int(runs), int(busy), int(timeouts), kind


def test_lora_cad_on_a_real_board(ports):
    runs, busy, timeouts, kind = _cad_result(_mpremote(ports[0], _CAD_SCRIPT % (40, 50)),
                                             120)
    assert kind in ("Sx127xCad", "Sx126xCad")
    assert runs + busy >= 40 and timeouts == 0, (runs, busy, timeouts)
    assert busy <= 8, f"{busy} of 40 CADs busy on a channel that should be quiet"
    if len(ports) < 2:
        pytest.skip("one --port: the busy-channel half needs a second board")
    tx = _mpremote(ports[1], _TX_SCRIPT % 30)
    try:
        time.sleep(3)  # the sender's boot and first frame
        runs, busy, timeouts, _kind = _cad_result(_mpremote(ports[0], _CAD_SCRIPT % (20, 20)),
                                                  120)
    finally:
        tx.kill()
        tx.communicate()
    assert busy >= 14, f"only {busy} of 20 CADs heard a board sending back to back"
