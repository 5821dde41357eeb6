"""`rumor flash`: write MicroPython onto one or more boards through esptool.

Before anything touches a board the image is checked offline with esptool's
image-info: a file that is not an ESP image, or one built for another chip,
is refused with one line.  Then each port is erased and written at the
board's flash offset (boards/*.json), all ports in parallel, one progress bar
each.  --dry-run prints the esptool commands and touches nothing.

esptool runs as `python -m esptool` subprocesses (its supported interface;
one process per port is what makes the ports independent).  esptool 5 renamed
the commands (write_flash -> write-flash, ...); the names are picked from the
installed version.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

from rumor_host.boards import Board, BoardError, load_board

ESP_MAGIC = 0xE9
# Chip ids in the extended image header (esptool's IMAGE_CHIP_ID per target).
CHIP_IDS = {0: "esp32", 2: "esp32s2", 5: "esp32c3", 9: "esp32s3", 12: "esp32c2", 13: "esp32c6",
            16: "esp32h2", 18: "esp32p4"}
_FATAL = "A fatal error occurred:"
_PERCENT = re.compile(rb"(\d{1,3}(?:\.\d+)?)\s?%")


class FlashError(Exception):
    """A user-facing failure: one line, no traceback."""


def esptool_version() -> tuple[int, ...]:
    try:
        v = metadata.version("esptool")
    except metadata.PackageNotFoundError:
        raise FlashError("esptool is not installed (pip install esptool)") from None
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3])


def command_names(version: tuple[int, ...]) -> dict[str, str]:
    """esptool >= 5 spells its commands with dashes; 4.x with underscores."""
    if version[0] >= 5:
        return {"image_info": "image-info", "erase_flash": "erase-flash", "write_flash": "write-flash"}
    return {"image_info": "image_info", "erase_flash": "erase_flash", "write_flash": "write_flash"}


def esptool_argv() -> list[str]:
    return [sys.executable, "-m", "esptool"]


def fatal_line(output: str) -> str:
    """The one line worth showing from a failed esptool run."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for ln in lines:
        if _FATAL in ln:
            return ln.split(_FATAL, 1)[1].strip()
    # A crash inside esptool: its last line is the exception.
    return lines[-1] if lines else "esptool failed without saying why"


@dataclass
class ImageInfo:
    chip: str
    size: int


def check_image(firmware: Path, board: Board) -> ImageInfo:
    """Refuse a file that is not an ESP image for board.chip, with one line."""
    if not firmware.is_file():
        raise FlashError(f"{firmware}: no such file")
    data = firmware.read_bytes()[:24]
    if len(data) < 24 or data[0] != ESP_MAGIC:
        what = "too short" if len(data) < 24 else f"first byte is 0x{data[0]:02x}, not 0x{ESP_MAGIC:02X}"
        raise FlashError(f"{firmware}: not an ESP firmware image ({what})")
    names = command_names(esptool_version())
    argv = esptool_argv()
    if names["image_info"] == "image_info":  # esptool 4.x wants the chip and format
        argv += ["--chip", board.chip, "image_info", "--version", "2", str(firmware)]
    else:
        argv += ["image-info", str(firmware)]
    p = subprocess.run(argv, capture_output=True, text=True)
    out = p.stdout + "\n" + p.stderr
    if p.returncode != 0:
        raise FlashError(f"{firmware}: not a valid ESP image: {fatal_line(out)}")
    m = re.search(r"Chip ID:\s*(\d+)", out)
    chip = CHIP_IDS.get(int(m.group(1)), f"chip id {m.group(1)}") if m else None
    if chip is None:
        m2 = re.search(r"Detected image type:\s*(\S+)", out)
        chip = m2.group(1).lower().replace("-", "") if m2 else "unknown"
    if chip != board.chip:
        raise FlashError(f"{firmware}: image is for {chip}, but board '{board.name}' is an {board.chip}")
    return ImageInfo(chip=chip, size=firmware.stat().st_size)


def plan(port: str, board: Board, firmware: Path, baud: int) -> list[list[str]]:
    """The esptool commands that flash one board: erase, then write at the offset."""
    if board.flash_offset is None:
        raise FlashError(f"board '{board.name}' has nothing to flash (chip {board.chip})")
    names = command_names(esptool_version())
    base = esptool_argv() + ["--chip", board.chip, "--port", port, "--baud", str(baud)]
    return [
        base + [names["erase_flash"]],
        base + [names["write_flash"], f"0x{board.flash_offset:x}", str(firmware)],
    ]


def check_port(port: str) -> None:
    """A local device path that does not exist fails here, before esptool."""
    if port.startswith("/dev/") and not os.path.exists(port):
        raise FlashError("no such serial port")


def run_plan(cmds: list[list[str]], on_progress: Callable[[str, float], None]) -> None:
    """Run the commands in order; raise FlashError with esptool's one-line reason."""
    for i, argv in enumerate(cmds):
        stage = "erasing" if i == 0 else "writing"
        on_progress(stage, 0.0)
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert p.stdout is not None
        seen = bytearray()
        while True:
            chunk = p.stdout.read1(4096) if hasattr(p.stdout, "read1") else p.stdout.read(4096)
            if not chunk:
                break
            seen += chunk
            found = _PERCENT.findall(chunk)
            if found and stage == "writing":
                on_progress(stage, min(100.0, float(found[-1])))
        if p.wait() != 0:
            raise FlashError(fatal_line(seen.decode("utf-8", "replace")))
        on_progress(stage, 100.0)


def flash_ports(ports: list[str], board: Board, firmware: Path, baud: int,
                console: Console) -> dict[str, str | None]:
    """Flash every port in parallel; returns port -> None (ok) or the error line."""
    results: dict[str, str | None] = {}
    lock = threading.Lock()
    with Progress(TextColumn("{task.fields[port]}"), TextColumn("{task.description}"),
                  BarColumn(), TaskProgressColumn(), console=console, transient=False) as progress:
        tasks = {p: progress.add_task("waiting", total=200, port=p) for p in ports}

        def one(port: str) -> None:
            task = tasks[port]

            def on_progress(stage: str, pct: float) -> None:
                done = pct if stage == "erasing" else 100 + pct
                progress.update(task, description=stage, completed=done)

            try:
                check_port(port)
                run_plan(plan(port, board, firmware, baud), on_progress)
            except FlashError as e:
                progress.update(task, description="[red]failed")
                with lock:
                    results[port] = str(e)
                return
            progress.update(task, description="[green]done", completed=200)
            with lock:
                results[port] = None

        with ThreadPoolExecutor(max_workers=len(ports)) as pool:
            list(pool.map(one, ports))
    return results


@click.command("flash")
@click.option("--port", "-p", "ports", multiple=True, required=True, metavar="PORT",
              help="Serial port of a board (repeat to flash several at once; `auto`: the one "
                   "board plugged in).")
@click.option("--board", "-b", "board_name", required=True, metavar="BOARD",
              help="Board name from boards/ (see `rumor boards`) or a path to a board JSON file.")
@click.option("--firmware", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="MicroPython firmware .bin for that board's chip.")
@click.option("--baud", type=click.IntRange(9600, 5_000_000), default=460800, show_default=True)
@click.option("--dry-run", is_flag=True, help="Print the esptool commands; touch no board.")
def flash_cmd(ports: tuple[str, ...], board_name: str, firmware: Path, baud: int,
              dry_run: bool) -> None:
    """Erase and write MicroPython onto boards through esptool."""
    from rumor_host.ports import resolve_port

    console = Console()
    ports = tuple(resolve_port(p) for p in ports)
    try:
        board = load_board(board_name)
        if board.flash_offset is None:
            raise FlashError(f"board '{board.name}' has nothing to flash (chip {board.chip})")
        if len(set(ports)) != len(ports):
            raise FlashError("the same --port is given twice")
        info = check_image(firmware, board)
        cmds = {p: plan(p, board, firmware, baud) for p in ports}
    except (BoardError, FlashError) as e:
        raise click.ClickException(str(e)) from None
    console.print(f"{firmware}: {info.chip} image, {info.size} bytes -> "
                  f"{board.name} at 0x{board.flash_offset:x}", highlight=False)
    if dry_run:
        for p in ports:
            for argv in cmds[p]:
                click.echo(shlex.join(argv))
        return
    results = flash_ports(list(ports), board, firmware, baud, console)
    failed = {p: err for p, err in results.items() if err}
    for p, err in failed.items():
        click.echo(f"Error: {p}: {err}", err=True)
    if failed:
        raise click.exceptions.Exit(1)
    console.print(f"flashed {len(ports)} board(s)", highlight=False)
