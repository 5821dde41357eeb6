"""The options of a command that asks a board one thing and prints the
answer (`rumor nodes`, `rumor stats`): one place, so they cannot drift apart."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

PORT_HELP = "the board's serial port, a swarm pty, or auto"


def query_options(json_help: str) -> Callable[[F], F]:
    """--port/-p, --json (as_json; json_help: what it prints), --timeout
    (seconds a command waits for the node), in that order in --help."""

    def deco(f: F) -> F:
        # applied bottom up, as stacked @click.option lines are
        f = click.option("--timeout", default=5.0, show_default=True, type=click.FloatRange(0.1, 120))(f)
        f = click.option("--json", "as_json", is_flag=True, help=json_help)(f)
        return click.option("--port", "-p", required=True, help=PORT_HELP)(f)

    return deco
