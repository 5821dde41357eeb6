"""rumor inject: publish messages at a board through its console.

Through a running `rumor logs` that holds the port (its control socket,
control.py) when there is one: the collector then writes each injection
into its JSONL with the host time, and `rumor report` measures latency
from it.  Else the port is opened here."""

from __future__ import annotations

import time

import click

from rumor_host.board import Board, BoardError, check_line, inject_line


def inject_args(text: str | None, hex_payload: str | None, priority: int, req: int | None = None) -> str:
    """The !inject command line (checks the payload first: one clear error)."""
    if (text is None) == (hex_payload is None):
        raise click.UsageError("give TEXT or --hex PAYLOAD (one of them)")
    try:
        return inject_line(text, hex_payload, priority, req)
    except ValueError as e:
        hint = "--hex" if hex_payload is not None else "TEXT"
        raise click.BadParameter(str(e), param_hint=hint) from None


def _texts(text: str | None, hex_payload: str | None, count: int) -> list[str | bytes]:
    if hex_payload is not None:
        return [bytes.fromhex(hex_payload.replace(" ", ""))] * count
    assert text is not None
    return [text if count == 1 else f"{text} #{i + 1}" for i in range(count)]


@click.command("inject")
@click.option("--port", "-p", required=True, help="the board's serial port, a swarm pty, or auto")
@click.option("--count", "-n", default=1, show_default=True, type=click.IntRange(1))
@click.option("--interval-ms", default=500, show_default=True, type=click.IntRange(0))
@click.option("--priority", "-k", default=0, show_default=True, type=click.IntRange(0, 3))
@click.option("--hex", "hex_payload", default=None, help="payload as hex instead of TEXT")
@click.option("--timeout", default=5.0, show_default=True, type=click.FloatRange(0.1, 120),
              help="seconds to wait for the node's answer")
@click.argument("text", required=False)
def inject_cmd(port: str, count: int, interval_ms: int, priority: int, hex_payload: str | None,
               timeout: float, text: str | None) -> None:
    """Publish TEXT (COUNT times) at the board on PORT; prints each message id.

    With --count > 1 each text gets " #i" appended, so the messages differ.
    While `rumor logs` holds the port, the message goes through it and is
    written into its log with the host time (rumor report measures latency
    from that).  A port that is not there or vanishes midway, or a node that
    refuses: one error line, exit 1 (the ids printed before it stand)."""
    inject_args(text, hex_payload, priority)  # bad payload: an error before opening anything
    texts = _texts(text, hex_payload, count)
    if text is not None:
        for t in texts:  # the longest line, as the node will count it
            try:
                check_line(inject_line(str(t), None, priority, 99999))
            except ValueError as e:
                raise click.BadParameter(str(e), param_hint="TEXT") from None
    try:
        with Board(port, timeout=timeout) as b:
            h = b.holder
            if h is not None:
                click.echo(f"through rumor logs (pid {h.pid}), recorded in {h.out or 'its log'}",
                           err=True)
            for i, t in enumerate(texts):
                click.echo(b.publish(t, priority))
                if i + 1 < count and interval_ms:
                    time.sleep(interval_ms / 1000.0)
    except BoardError as e:
        raise click.ClickException(str(e)) from None
