"""rumor reset: a soft reset that leaves the node running."""

from __future__ import annotations

import click

from rumor_host.board import Board, BoardError


@click.command("reset")
@click.option("--port", "-p", required=True, help="the board's serial port, a swarm pty, or auto")
@click.option("--timeout", default=20.0, show_default=True, type=click.FloatRange(1, 300),
              help="seconds to wait for the node's boot event")
def reset_cmd(port: str, timeout: float) -> None:
    """Soft-reset the board on PORT and wait until the node runs again.

    Works on a running node and on one left at the REPL (after Ctrl-C or
    `mpremote ... resume`): Ctrl-C, Ctrl-B (out of a raw REPL), Ctrl-D;
    main.py then starts the node.  Prints its boot line; exit 1 when the
    node does not come back or says why it cannot start."""
    try:
        with Board(port, timeout=timeout) as b:
            ev = b.reset(timeout)
    except BoardError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"{port}: node {ev.get('node')} running again: {ev.get('board')} ({ev.get('chip')}), "
               f"radio {ev.get('radio')}, mode {ev.get('mode')}")
