"""rumor ports and --port auto: serial ports with what is on them, virtual
boards of a running swarm, the one board picked when there is one."""

from __future__ import annotations

import json
import os
import tempfile

import pytest
from serial.tools.list_ports_common import ListPortInfo
from vboard import line_swarm, one_error, ready, rumor

from rumor_host import ports as ports_mod
from rumor_host.logs import Collector, wait_ready
from rumor_host.swarm import Swarm


@pytest.fixture(scope="module")
def swarm(tmp_path_factory):
    with line_swarm(2, tmp_path_factory.mktemp("swarm"), private=True) as sw:
        yield sw


def no_usb() -> bool:
    return not [p for p in ports_mod._usb_ports() if p.kind == "usb"]


def test_ports_lists_virtual_boards_with_their_nodes(swarm, tmp_path):
    r = rumor("ports", "--json")
    assert r.returncode == 0, r.stderr
    got = {d["port"]: d for d in map(json.loads, r.stdout.splitlines())}
    for i, p in enumerate(swarm.ports):
        d = got[p]
        assert d["kind"] == "virtual" and d["node"] == f"{i + 1:08x}"
        assert d["board"] == "unix" and d["chip"] == "unix" and d["radio"] == "udp"
    # a port a collector holds says so, and is still probed (through it)
    with Collector(swarm.ports[:1], tmp_path / "run.jsonl") as col:
        assert wait_ready(col, swarm.ports[:1]) == []
        r = rumor("ports")
        assert r.returncode == 0, r.stderr
        (line,) = [ln for ln in r.stdout.splitlines() if ln.startswith(swarm.ports[0] + " ")]
        assert f"held by rumor logs pid {os.getpid()}" in line and "node 00000001: unix" in line
    r = rumor("ports", "--no-probe", "--json")
    assert all("node" not in json.loads(x) for x in r.stdout.splitlines())


def test_port_auto_with_two_boards_says_so(swarm):
    if not no_usb():
        pytest.skip("a USB serial port is plugged in here")
    assert "--port auto: 2 boards found" in one_error(rumor("stats", "-p", "auto"))


def test_port_auto_picks_the_one_board_and_none_is_one_line(tmp_path, monkeypatch):
    if not no_usb():
        pytest.skip("a USB serial port is plugged in here")
    d = tempfile.mkdtemp(prefix="rrt-")
    monkeypatch.setenv("RUMOR_RUNTIME_DIR", d)
    assert "--port auto: no board found" in one_error(rumor("nodes", "-p", "auto"))
    with Swarm(1, "line", 0.0, run_dir=tmp_path / "one", stats_interval_ms=0, log=lambda s: None) as sw:
        ready(sw.ports)
        r = rumor("stats", "-p", "auto", "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["node"] == "00000001"
        r = rumor("inject", "-p", "auto", "auto hello")
        assert r.returncode == 0 and r.stdout.startswith("00000001"), r.stderr
    from rumor_host.control import virtual_ports

    assert virtual_ports() == []  # the swarm's entry went with it


def _fake(device, vid=None, pid=None, sn=None, product=None, desc="n/a"):
    p = ListPortInfo(device, skip_link_detection=True)
    p.vid, p.pid, p.serial_number, p.product, p.description = vid, pid, sn, product, desc
    return p


def test_usb_ports_are_named_by_their_ids(monkeypatch):
    from serial.tools import list_ports

    fakes = [_fake("/dev/ttyUSB0", 0x10C4, 0xEA60, "0001", "CP2102 USB to UART", "CP2102"),
             _fake("/dev/ttyACM0", 0x303A, 0x1001, "AA:BB", None, "USB JTAG/serial debug unit"),
             _fake("/dev/ttyS0"),  # a legacy port with nothing behind it
             _fake("/dev/ttyUSB1", 0x1234, 0x5678, None, "Gadget", "Gadget")]
    monkeypatch.setattr(list_ports, "comports", lambda: fakes)
    monkeypatch.setenv("RUMOR_RUNTIME_DIR", tempfile.mkdtemp(prefix="rrt-"))  # no swarm
    infos = {i.port: i for i in ports_mod._usb_ports()}
    assert set(infos) == {"/dev/ttyUSB0", "/dev/ttyACM0", "/dev/ttyUSB1"}
    assert infos["/dev/ttyUSB0"].bridge == "CP210x USB-UART" and infos["/dev/ttyUSB0"].usb == "10c4:ea60"
    assert "ESP32-S3" in (infos["/dev/ttyACM0"].bridge or "")
    row = ports_mod._row(infos["/dev/ttyUSB1"])
    assert row == "/dev/ttyUSB1  usb  usb 1234:5678; Gadget"
    with pytest.raises(ValueError, match="3 boards found"):
        ports_mod.resolve_auto()
