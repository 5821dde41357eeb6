"""What every scenario script shares: the network key of the honest nodes,
the mesh's clock at the start, and the command-line helper (the options
each script takes, the report's stamp and where it is written)."""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from ..report import seed_list

# A 32-byte network key, the same on every honest node (never on the attackers).
NETWORK_KEY = bytes(range(0x40, 0x60))
NET_TIME0 = 1_000_000  # the mesh's clock at the start, 64 ms units (~17.8 h of running)

CONTEXT = {"help_option_names": ["-h", "--help"]}


def _seeds(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    try:
        seeds = seed_list(value)
    except ValueError:
        seeds = []
    if not seeds:
        raise click.BadParameter(f"{value!r}: give a range such as 1-10 or a list such as 1,4,7",
                                 ctx=ctx, param=param)
    return seeds


def scenario_options(out: str, seeds: str, markdown_help: str) -> Callable[[Callable], Callable]:
    """The options every scenario command takes: --out FILE (JSON), --seeds
    (a range 1-10 or a list 1,4,7, handed over as a list of ints) and
    --markdown (also print the tables as Markdown, as `md`)."""
    def deco(f: Callable) -> Callable:
        f = click.option("--markdown", "md", is_flag=True, help=markdown_help)(f)
        f = click.option("--seeds", default=seeds, show_default=True, callback=_seeds,
                         help="Seeds: a range 1-10 or a list 1,4,7.")(f)
        return click.option("--out", type=click.Path(dir_okay=False), default=out,
                            show_default=True, help="Write the result here (JSON).")(f)
    return deco


def seeds_text(seeds: list[int]) -> str:
    """1-10 for a run of consecutive seeds, else 1,4,7."""
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def stamp(rep: dict[str, Any]) -> None:
    """Where the figures were made (they are timings too)."""
    rep["machine"] = platform.machine()
    rep["python"] = platform.python_version()


def targets_lines(targets: dict[str, bool]) -> list[str]:
    return [f"- {'met' if ok else 'MISSED'}: {name}" for name, ok in targets.items()]


def write_report(rep: dict[str, Any], out: str, console: Console) -> None:
    """The report as JSON (sorted keys, so runs diff cleanly) at out."""
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(rep, indent=2, sort_keys=True) + "\n")
    console.print(f"wrote {out}")
