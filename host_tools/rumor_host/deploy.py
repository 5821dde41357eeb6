"""rumor deploy: compile the firmware for a board, copy it and board.json to
the board with mpremote, install the LoRa driver packages (mip), reset it.

On the board:  /main.py  /board.json  /rumor/*.mpy
board.json is the board's file (boards/*.json) plus "node_id" and "node"
(docs/console.md).  What the board already has in its board.json is kept
where deploy is not told otherwise: the node id, the node settings, and for
a UDP radio (a virtual board) the medium's host and port.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from rumor_host.boards import Board, BoardError, load_board
from rumor_host.serialio import PortError, open_port

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
LORA_PACKAGES = {"sx1276": ["lora-sx127x", "lora-async"], "sx1262": ["lora-sx126x", "lora-async"]}


class DeployError(Exception):
    pass


def tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise DeployError(f"no `{name}` command: run `make setup`")
    return found


def compile_firmware(board: Board, out: Path) -> list[Path]:
    """mpy-cross every firmware/rumor/*.py for the board into out/rumor/;
    main.py is copied as it is (the board runs main.py, not main.mpy)."""
    files: list[Path] = []
    (out / "rumor").mkdir(parents=True, exist_ok=True)
    cross = tool("mpy-cross")
    for src in sorted((FIRMWARE / "rumor").glob("*.py")):
        dst = out / "rumor" / (src.stem + ".mpy")
        cmd = [cross, "-o", str(dst)]
        if board.mpy_arch:
            cmd.append(f"-march={board.mpy_arch}")
        cmd.append(str(src))
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise DeployError(f"mpy-cross {src.name}: {(p.stderr or p.stdout).strip().splitlines()[-1]}")
        files.append(dst)
    shutil.copy(FIRMWARE / "main.py", out / "main.py")
    files.append(out / "main.py")
    return files


def device_board(board: Board, node_id: int | None, old: dict[str, Any] | None) -> dict[str, Any]:
    """The board.json that goes on the device."""
    old = old or {}
    radio = dict(board.radio)
    if board.radio_kind == "udp":
        old_radio: dict[str, Any] = old["radio"] if isinstance(old.get("radio"), dict) else {}
        for k in ("host", "port"):
            if k in old_radio and k not in radio:
                radio[k] = old_radio[k]
    d: dict[str, Any] = {"name": board.name, "chip": board.chip, "radio": radio,
                         "pins": dict(board.pins), "config": board.config}
    nid = node_id if node_id is not None else old.get("node_id")
    if nid is not None:
        d["node_id"] = nid
    if isinstance(old.get("node"), dict):
        d["node"] = old["node"]
    return d


def mpremote(port: str, *args: str, timeout: float = 120) -> str:
    cmd = [tool("mpremote"), "connect", port, "resume", *args]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DeployError(f"mpremote {_what(args)}: no answer in {timeout:g} s") from None
    if p.returncode != 0:
        lines = (p.stderr.strip() or p.stdout.strip() or f"exit {p.returncode}").splitlines()
        raise DeployError(f"mpremote {_what(args)} failed: {lines[-1]}")
    return p.stdout


def _what(args: tuple[str, ...]) -> str:
    return " ".join(a if "\n" not in a else "<script>" for a in args[:3])


_READ_OLD = "try:\n print(open('board.json').read())\nexcept OSError:\n print('{}')\n"
# make /rumor, and remove .py files left there (they would win over the .mpy)
_PREPARE = ("import os\ntry:\n os.mkdir('rumor')\nexcept OSError:\n pass\n"
            "for f in os.listdir('rumor'):\n if f.endswith('.py'):\n  os.remove('rumor/'+f)\n")


def deploy(port: str, board_name: str, node_id: int | None, mip: bool = True,
           echo: Any = print) -> dict[str, Any]:
    board = load_board(board_name)
    try:
        open_port(port).close()  # a clear error for a bad or busy port, before any work
    except PortError as e:
        raise DeployError(str(e)) from None
    with tempfile.TemporaryDirectory(prefix="rumor-deploy-") as tmp:
        stage = Path(tmp)
        files = compile_firmware(board, stage)
        echo(f"compiled {len(files) - 1} modules for {board.name} "
             f"({board.mpy_arch or 'bytecode, any arch'})")
        out = mpremote(port, "exec", _READ_OLD)
        try:
            old = json.loads(out.strip() or "{}")
        except ValueError:
            old = {}
        dev = device_board(board, node_id, old if isinstance(old, dict) else {})
        (stage / "board.json").write_text(json.dumps(dev, indent=1) + "\n")
        mods = sorted(str(p) for p in (stage / "rumor").glob("*.mpy"))
        mpremote(port, "exec", _PREPARE, "+", "fs", "cp", *mods, ":rumor/", "+",
                 "fs", "cp", str(stage / "main.py"), ":main.py", "+",
                 "fs", "cp", str(stage / "board.json"), ":board.json")
        echo(f"copied main.py, rumor/ ({len(files) - 1} .mpy) and board.json to {port}")
    if board.radio_kind == "lora":
        pkgs = LORA_PACKAGES.get(str(board.radio.get("modem")), [])
        if mip and pkgs:
            for pkg in pkgs:
                mpremote(port, "mip", "install", pkg, timeout=300)
            echo(f"installed {', '.join(pkgs)} with mip")
        elif pkgs:
            echo(f"skipped mip install of {', '.join(pkgs)} (--no-mip)")
    if board.chip == "unix":
        # the unix port's machine has no reset(); soft_reset() ends the process
        # and the swarm starts it again: the virtual board reboots.
        mpremote(port, "exec", "--no-follow", "import machine; machine.soft_reset()")
    else:
        mpremote(port, "reset")
    echo(f"reset {port}: node {dev.get('node_id', 'from chip id')} boots {board.name}")
    return dev


@click.command("deploy")
@click.option("--port", "-p", required=True, help="the board's serial port (or a swarm pty)")
@click.option("--board", "-b", "board_name", required=True, help="board name (boards/*.json) or path")
@click.option("--node-id", default=None, help="node id (decimal or 0x hex; default: kept, else the chip's id)")
@click.option("--no-mip", is_flag=True, help="do not install the LoRa driver packages (offline)")
def deploy_cmd(port: str, board_name: str, node_id: str | None, no_mip: bool) -> None:
    """Compile the firmware for BOARD and put it on the board at PORT."""
    nid: int | None = None
    if node_id is not None:
        try:
            nid = int(node_id, 0)
        except ValueError:
            raise click.BadParameter(f"not a number: {node_id!r}", param_hint="--node-id") from None
        if not 0 <= nid <= 0xFFFFFFFF:
            raise click.BadParameter("must fit in 32 bits", param_hint="--node-id")
    try:
        deploy(port, board_name, nid, mip=not no_mip, echo=click.echo)
    except (BoardError, DeployError) as e:
        raise click.ClickException(str(e)) from None
