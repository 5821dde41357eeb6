"""rumor inject: publish messages at a board through its console."""

from __future__ import annotations

import json
import time

import click

from rumor_host.serialio import LineReader, PortError, close_port, command, open_port


def inject_args(text: str | None, hex_payload: str | None, priority: int, req: int | None = None) -> str:
    """The !inject command line (checks the payload first: one clear error)."""
    if (text is None) == (hex_payload is None):
        raise click.UsageError("give TEXT or --hex PAYLOAD (one of them)")
    d: dict[str, object] = {}
    if hex_payload is not None:
        h = hex_payload.replace(" ", "")
        try:
            if not h:
                raise ValueError
            bytes.fromhex(h)
        except ValueError:
            raise click.BadParameter(f"not a hex payload: {hex_payload!r}", param_hint="--hex") from None
        d["hex"] = h
    else:
        assert text is not None
        if not text:
            raise click.BadParameter("empty message", param_hint="TEXT")
        d["text"] = text
    d["priority"] = priority
    if req is not None:
        d["req"] = req
    return "!inject " + json.dumps(d, separators=(",", ":"))


@click.command("inject")
@click.option("--port", "-p", required=True, help="the board's serial port (or a swarm pty)")
@click.option("--count", "-n", default=1, show_default=True, type=click.IntRange(1))
@click.option("--interval-ms", default=500, show_default=True, type=click.IntRange(0))
@click.option("--priority", "-k", default=0, show_default=True, type=click.IntRange(0, 3))
@click.option("--hex", "hex_payload", default=None, help="payload as hex instead of TEXT")
@click.argument("text", required=False)
def inject_cmd(port: str, count: int, interval_ms: int, priority: int, hex_payload: str | None,
               text: str | None) -> None:
    """Publish TEXT (COUNT times) at the board on PORT; prints each message id.

    With --count > 1 each text gets " #i" appended, so the messages differ.
    A port that is not there or vanishes midway: one error line, exit 1 (the
    ids printed before it stand)."""
    inject_args(text, hex_payload, priority)  # bad payload: an error before opening anything
    try:
        ser = open_port(port)
    except PortError as e:
        raise click.ClickException(str(e)) from None
    try:
        r = LineReader(ser)
        for i in range(count):
            t = text if (text is None or count == 1) else f"{text} #{i + 1}"

            def ours(ev: dict[str, object], req: int = i + 1) -> bool:
                # this command's answer, not an earlier one still in the pipe
                if ev.get("ev") == "error":
                    return ev.get("cmd") in ("inject", None)
                return ev.get("req") in (req, None)

            ev = command(ser, inject_args(t, hex_payload, priority, req=i + 1), ("publish",),
                         reader=r, accept=ours)
            if ev["ev"] == "error":
                raise click.ClickException(f"{port}: the node refused: {ev.get('msg')}")
            mid = ev.get("id")
            if not isinstance(mid, str):
                raise click.ClickException(f"{port}: the node's publish line has no message id: {ev}")
            click.echo(mid)
            if i + 1 < count and interval_ms:
                time.sleep(interval_ms / 1000.0)
    except PortError as e:
        raise click.ClickException(str(e)) from None
    finally:
        close_port(ser)
