"""rumor ports: the serial ports, and what is on them; `--port auto`.

A port is listed with its USB ids (vendor:product, serial number), the
USB-serial chip those ids name, which program holds it (a `rumor logs` of
ours), and, unless --no-probe, what the node on it says of itself (`!info`:
node id, board, chip, radio).  Virtual boards of a running `rumor swarm`
are listed too (control.py's registry).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import click

# USB ids of the bridges and native USB ports ESP32 boards come with
USB_CHIPS = {
    (0x10C4, 0xEA60): "CP210x USB-UART",
    (0x1A86, 0x7523): "CH340 USB-UART",
    (0x1A86, 0x55D4): "CH9102 USB-UART",
    (0x1A86, 0x55D3): "CH343 USB-UART",
    (0x0403, 0x6001): "FT232R USB-UART",
    (0x0403, 0x6010): "FT2232 USB-UART",
    (0x0403, 0x6015): "FT231X USB-UART",
    (0x303A, 0x1001): "Espressif USB-Serial/JTAG (ESP32-S3/C3/C6)",
    (0x303A, 0x0002): "Espressif native USB (ESP32-S2)",
    (0x303A, 0x4001): "Espressif native USB (MicroPython CDC)",
    (0x2E8A, 0x0005): "Raspberry Pi RP2040 (MicroPython)",
}


@dataclass
class PortInfo:
    port: str
    kind: str  # "usb", "serial", "virtual"
    usb: str | None = None  # "10c4:ea60"
    serial_number: str | None = None
    bridge: str | None = None  # what the USB ids name
    description: str | None = None
    held_by: str | None = None  # "rumor logs pid 123 (run.jsonl)"
    node: str | None = None  # from the node's info event
    board: str | None = None
    chip: str | None = None
    radio: str | None = None
    probe: str | None = None  # why the node did not say (no answer, busy, ...)


def _usb_ports() -> list[PortInfo]:
    from serial.tools import list_ports

    out: list[PortInfo] = []
    for p in sorted(list_ports.comports(), key=lambda p: p.device):
        if p.vid is None:
            if p.description in (None, "", "n/a"):
                continue  # a legacy ttyS without hardware behind it
            out.append(PortInfo(p.device, "serial", description=p.description))
            continue
        out.append(PortInfo(p.device, "usb", usb=f"{p.vid:04x}:{p.pid or 0:04x}",
                            serial_number=p.serial_number,
                            bridge=USB_CHIPS.get((p.vid, p.pid or 0)),
                            description=p.product or p.description))
    return out


def list_all(probe: bool = True, timeout: float = 1.0) -> list[PortInfo]:
    import os

    from rumor_host.control import holders, lookup, virtual_ports

    infos = _usb_ports()
    infos += [PortInfo(p, "virtual", description=f"rumor swarm board ({d})") for p, d in virtual_ports()]
    known = {os.path.realpath(i.port) for i in infos}
    infos += [PortInfo(h.port, "serial", description="a port rumor logs reads")
              for h in holders() if os.path.realpath(h.port) not in known]
    for info in infos:
        h = lookup(info.port)
        if h is not None:
            info.held_by = f"rumor logs pid {h.pid}" + (f" ({h.out})" if h.out else "")
        if probe and (info.kind != "serial" or info.held_by):
            _probe(info, timeout)
    return infos


def _probe(info: PortInfo, timeout: float) -> None:
    """Ask the node on the port what it is (through its collector if held)."""
    from rumor_host.board import Board, BoardError

    try:
        with Board(info.port, timeout=timeout) as b:
            ev = b.info()
    except BoardError as e:
        msg = str(e)
        info.probe = ("busy" if "busy" in msg else "no answer (no node running?)"
                      if "no answer" in msg else msg.split(": ", 1)[-1])
        return
    info.node = ev.get("node")
    info.board = ev.get("board")
    info.chip = ev.get("chip")
    info.radio = ev.get("radio")


def resolve_auto() -> str:
    """The one board plugged in (USB or virtual), for `--port auto`;
    ValueError (one line) when there is none or more than one."""
    from rumor_host.control import virtual_ports

    usb = [p.port for p in _usb_ports() if p.kind == "usb"]
    virt = [p for p, _ in virtual_ports()]
    found = usb + virt
    if len(found) == 1:
        return found[0]
    if not found:
        raise ValueError("--port auto: no board found (no USB serial port, no running "
                         "`rumor swarm`); plug one in, or give --port")
    raise ValueError(f"--port auto: {len(found)} boards found ({', '.join(found[:6])}"
                     f"{', ...' if len(found) > 6 else ''}): give --port")


def resolve_port(port: str) -> str:
    """port, or for "auto" the one board there is; click.ClickException if not."""
    if port != "auto":
        return port
    try:
        return resolve_auto()
    except ValueError as e:
        raise click.ClickException(str(e)) from None


def _row(i: PortInfo) -> str:
    what = []
    if i.usb:
        what.append(f"usb {i.usb}" + (f" sn {i.serial_number}" if i.serial_number else ""))
    if i.bridge:
        what.append(i.bridge)
    elif i.description:
        what.append(i.description)
    if i.node:
        what.append(f"node {i.node}: {i.board or '?'} ({i.chip or '?'}, {i.radio or '?'})")
    elif i.probe:
        what.append(i.probe)
    if i.held_by:
        what.append(f"held by {i.held_by}")
    return f"{i.port}  {i.kind}  " + "; ".join(what)


@click.command("ports")
@click.option("--no-probe", is_flag=True,
              help="do not ask the nodes (!info): only what the USB ids say")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per port")
@click.option("--timeout", default=1.0, show_default=True, type=click.FloatRange(0.1, 30),
              help="seconds to wait for each node's answer")
def ports_cmd(no_probe: bool, as_json: bool, timeout: float) -> None:
    """List serial ports and what is on them: USB ids, the USB-serial chip,
    the node (id, board, chip, radio) when one answers, and which `rumor
    logs` holds the port.  Virtual boards of a running `rumor swarm` too.

    `--port auto` (every command) picks the one board when exactly one is
    plugged in."""
    infos = list_all(probe=not no_probe, timeout=timeout)
    if as_json:
        for i in infos:
            click.echo(json.dumps({k: v for k, v in asdict(i).items() if v is not None}))
        return
    if not infos:
        click.echo("no serial ports (plug a board in, or start `rumor swarm`)")
        return
    for i in infos:
        click.echo(_row(i))


def as_dict(i: PortInfo) -> dict[str, Any]:
    return asdict(i)
