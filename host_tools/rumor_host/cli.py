"""The `rumor` command line."""

from __future__ import annotations

import click

from rumor_host import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rumor")
def main() -> None:
    """Rumor: gossip-mesh firmware for MicroPython radio boards, and its host tools."""


if __name__ == "__main__":
    main()
