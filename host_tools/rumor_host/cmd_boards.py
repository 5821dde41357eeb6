"""`rumor boards`: the boards in boards/, as a table."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from rumor_host.boards import BoardError, list_boards


def _radio(radio: dict) -> str:
    kind = radio["kind"]
    if kind == "espnow":
        return f"ESP-NOW ch {radio['channel']}"
    if kind == "lora":
        return (f"LoRa {radio['modem'].upper()} {radio['freq_khz'] / 1000:g} MHz "
                f"SF{radio['sf']} BW{radio['bw']} CR4/{radio['coding_rate']} "
                f"{radio['output_power']} dBm, duty {radio['duty_cycle'] * 100:g}%")
    return kind.upper()


@click.command("boards")
def boards_cmd() -> None:
    """List the boards Rumor knows (boards/*.json)."""
    try:
        boards = list_boards()
    except BoardError as e:
        raise click.ClickException(str(e)) from None
    table = Table(title="Rumor boards")
    for col in ("name", "chip", "offset", "arch", "radio", "config", "description"):
        table.add_column(col)
    for b in boards:
        table.add_row(b.name, b.chip,
                      "-" if b.flash_offset is None else f"0x{b.flash_offset:x}",
                      b.mpy_arch or "-", _radio(b.radio), b.config, b.description)
    Console().print(table)
