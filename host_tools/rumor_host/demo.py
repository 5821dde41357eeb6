"""rumor demo: a swarm of virtual boards, messages injected, every board's
log collected, and the delivery report, in one go."""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path
from typing import Any

import click

from rumor_host.deploy import KeyFileError, describe_key, read_key_file
from rumor_host.logs import Collector, wait_ready
from rumor_host.report import analyse, plot, print_report, public, read_jsonl
from rumor_host.serialio import PortError
from rumor_host.swarm import Swarm, SwarmError


def run_demo(nodes: int, messages: int, topology: str, loss: float, interval_ms: int, seed: int,
             out: Path, settle_s: float, echo: Any = print, node_config: dict[str, Any] | None = None,
             key: bytes | None = None) -> dict[str, Any]:
    rng = random.Random(seed)
    with Swarm(nodes, topology, loss, seed, stats_interval_ms=0, node_config=node_config,
               log=lambda s: None, key=key) as sw:
        echo(f"swarm: {nodes} virtual boards, {topology}, loss {loss:g}, ports in {sw.dir}")
        if key is not None:
            echo(f"network key: {describe_key(key)}, on every board")
        with Collector(sw.ports, out) as col:
            missing = wait_ready(col, sw.ports)
            if missing:
                raise SwarmError(f"boards did not answer: {', '.join(missing)}")
            echo(f"all {nodes} boards answer; injecting {messages} messages, {interval_ms} ms apart")
            for i in range(messages):
                port = sw.ports[rng.randrange(nodes)]
                try:
                    col.send(port, '!inject {"text":"demo #%d","req":%d}' % (i + 1, i + 1))
                except PortError as e:
                    echo(f"inject #{i + 1}: {e}")
                time.sleep(interval_ms / 1000.0)
            want = messages * (nodes - 1)

            def done(rs: list[dict[str, Any]]) -> bool:
                return sum(1 for r in rs if "ev" in r and r["ev"]["ev"] == "deliver") >= want

            col.wait_for(done, settle_s)
    return analyse(read_jsonl(out))


@click.command("demo")
@click.option("--nodes", "-n", default=12, show_default=True, type=click.IntRange(2, 100))
@click.option("--messages", "-m", default=20, show_default=True, type=click.IntRange(1, 10000))
@click.option("--topology", "-t", default="grid", show_default=True,
              type=click.Choice(["grid", "line", "rgg", "complete", "clusters"]))
@click.option("--loss", "-l", default=0.1, show_default=True, type=click.FloatRange(0.0, 0.99))
@click.option("--interval-ms", default=200, show_default=True, type=click.IntRange(0))
@click.option("--seed", default=1, show_default=True)
@click.option("--settle-s", default=20.0, show_default=True, help="wait at most this long for deliveries")
@click.option("--out", "out", default="demo-run.jsonl", show_default=True, type=click.Path(dir_okay=False),
              help="the collected log (JSONL, replaced)")
@click.option("--json", "json_out", default=None, type=click.Path(dir_okay=False), help="write the figures as JSON")
@click.option("--plot", "plot_out", default=None, type=click.Path(dir_okay=False), help="write a PNG plot")
@click.option("--key-file", default=None, type=click.Path(dir_okay=False), metavar="PATH",
              help="run the mesh authenticated with this network key on every board "
                   "(16..64 raw bytes or 32..128 hex digits, as for `rumor deploy --key-file`)")
def demo_cmd(nodes: int, messages: int, topology: str, loss: float, interval_ms: int, seed: int,
             settle_s: float, out: str, json_out: str | None, plot_out: str | None,
             key_file: str | None) -> None:
    """Swarm + inject + logs + report in one go: prints the delivery table."""
    p = Path(out)
    try:
        key = read_key_file(key_file) if key_file is not None else None
    except KeyFileError as e:
        raise click.ClickException(str(e)) from None

    def _term(*_: object) -> None:
        # SIGTERM/SIGHUP unwind through the `with Swarm` blocks like Ctrl-C
        # does: the boards and the medium run in sessions of their own and
        # would outlive us otherwise
        raise KeyboardInterrupt

    old = {s: signal.signal(s, _term) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        p.unlink(missing_ok=True)
        rep = run_demo(nodes, messages, topology, loss, interval_ms, seed, p, settle_s, click.echo,
                       key=key)
    except KeyboardInterrupt:
        raise click.Abort() from None
    except SwarmError as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
        raise click.ClickException(f"{out}: {e.strerror}") from None
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    print_report(rep)
    try:
        if json_out:
            Path(json_out).write_text(json.dumps(public(rep), indent=1) + "\n")
            click.echo(f"figures: {json_out}")
        if plot_out:
            plot(rep, plot_out)
            click.echo(f"plot: {plot_out}")
    except OSError as e:
        raise click.ClickException(f"{e.filename or json_out or plot_out}: {e.strerror}") from None
