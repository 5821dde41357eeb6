"""rumor demo: a swarm of virtual boards, messages injected, every board's
log collected, and the delivery report, in one go."""

from __future__ import annotations

import contextlib
import json
import random
import signal
import time
from pathlib import Path
from typing import Any

import click

from rumor_host.appfile import app_from_options, app_options
from rumor_host.deploy import KeyFileError, describe_key, read_key_file
from rumor_host.logs import Collector, wait_ready
from rumor_host.report import analyse, plot, print_report, public, read_jsonl
from rumor_host.serialio import PortError
from rumor_host.swarm import Swarm, SwarmError, _parse_kv


def run_demo(nodes: int, messages: int, topology: str, loss: float, interval_ms: int, seed: int,
             out: Path, settle_s: float, echo: Any = print, node_config: dict[str, Any] | None = None,
             key: bytes | None = None, app: bytes | None = None,
             app_settings: dict[str, Any] | None = None, degree: float | None = None) -> dict[str, Any]:
    """The demo's figures (report.analyse, delivery counted within the
    source's connected part when the topology has several)."""
    rng = random.Random(seed)

    def warn(s: str) -> None:  # the swarm's warnings, not its boards' reboot chatter
        if s.startswith("warning:"):
            echo(s)

    with Swarm(nodes, topology, loss, seed, stats_interval_ms=0, node_config=node_config,
               log=warn, key=key, app=app, app_settings=app_settings, degree=degree) as sw:
        shape = f"{topology} (mean degree {sw.degree:g})" if topology == "rgg" else topology
        echo(f"swarm: {nodes} virtual boards, {shape}, {sw.topo.edges()} links, loss {loss:g}, "
             f"ports in {sw.dir}")
        if key is not None:
            echo(f"network key: {describe_key(key)}, on every board")
        with Collector(sw.ports, out) as col:
            missing = wait_ready(col, sw.ports)
            if missing:
                raise SwarmError(f"boards did not answer: {', '.join(missing)}")
            echo(f"all {nodes} boards answer; injecting {messages} messages, {interval_ms} ms apart")
            sent = 0
            for i in range(messages):
                port = sw.ports[rng.randrange(nodes)]
                try:
                    col.inject(port, text=f"demo #{i + 1}")
                    sent += 1
                except (PortError, ValueError) as e:
                    echo(f"inject #{i + 1}: {e}")
                time.sleep(interval_ms / 1000.0)
            reach = sw.reach()
            if col.wait_for(lambda rs: all_in(rs, reach, sent), settle_s):
                echo("every (message, node) pair delivered")
            else:
                echo(f"settle time over ({settle_s:g} s after the last injection)")
            since = len(col.records)
            for port in sw.ports:  # the boards' own counters: frames, bytes, airtime
                with contextlib.suppress(PortError):
                    col.send(port, "!stats")
            col.wait_for(lambda rs: len({r["port"] for r in rs[since:] if isinstance(r.get("ev"), dict)
                                         and r["ev"].get("ev") == "stats"}) >= len(sw.ports), 5.0)
    rep = analyse(read_jsonl(out), reach=reach if len(sw.parts) > 1 else None)
    rep["_topo"] = sw.topo  # for --map (not in the JSON: public() leaves "_" keys out)
    if rep.get("reboots"):
        echo(f"{rep['reboots']} board reboot(s) seen; a rebooted board may deliver old messages "
             "again: each (message, board) pair counts once")
    return rep


def demo_map(rep: dict[str, Any], out: str | Path, title: str) -> None:
    """The swarm's topology (the simulator's, as the medium relays it), each
    node coloured by the share of its messages it got, sources ringed."""
    from rumor_host.meshmap import draw, from_topology

    topo = rep["_topo"]
    labels = [f"{i + 1:08x}" for i in range(topo.n)]
    value = {bd["node"]: bd["ratio"] for bd in rep["per_board"]}
    m = from_topology(topo, labels, value, marks={p["origin"] for p in rep["per_message"]}, title=title,
                      note="ring: a message's source; white: no delivery figure (it sent every message)")
    draw(m, out)


def all_in(records: list[dict[str, Any]], reach: dict[str, set[str]], sent: int) -> bool:
    """Every injected message (its injection record) delivered at every other
    node of its source's part: (message, node) pairs, not delivery events (a
    rebooted board delivers old messages again; an --app publishes its own)."""
    ids = [r["inject"]["id"] for r in records if isinstance(r.get("inject"), dict)]
    if len(ids) < sent:
        return False
    got = {(r["ev"].get("id"), r["ev"].get("node")) for r in records
           if isinstance(r.get("ev"), dict) and r["ev"].get("ev") == "deliver"}
    return all((mid, n) in got for mid in ids for n in reach.get(mid[:8], set()) - {mid[:8]})


@click.command("demo")
@click.option("--nodes", "-n", default=12, show_default=True, type=click.IntRange(2, 100))
@click.option("--messages", "-m", default=20, show_default=True, type=click.IntRange(1, 10000))
@click.option("--topology", "-t", default="grid", show_default=True,
              type=click.Choice(["grid", "line", "rgg", "complete", "clusters"]))
@click.option("--loss", "-l", default=0.1, show_default=True, type=click.FloatRange(0.0, 0.99))
@click.option("--interval-ms", default=200, show_default=True, type=click.IntRange(0))
@click.option("--degree", "-d", default=None, type=click.FloatRange(0, min_open=True), metavar="D",
              help="rgg: the mean number of neighbours (default: 10, or NODES-1 below 11 nodes)")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE",
              help="a gossip Config field for every node, e.g. --set mode=flood (checked first)")
@click.option("--seed", default=1, show_default=True)
@click.option("--settle-s", default=20.0, show_default=True, type=click.FloatRange(0),
              help="after the last injection, wait at most this long for every (message, node) "
                   "pair to be delivered")
@click.option("--out", "out", default="demo-run.jsonl", show_default=True, type=click.Path(dir_okay=False),
              help="the collected log (JSONL, replaced)")
@click.option("--json", "json_out", default=None, type=click.Path(dir_okay=False), help="write the figures as JSON")
@click.option("--plot", "plot_out", default=None, type=click.Path(dir_okay=False), help="write a PNG plot")
@click.option("--map", "map_out", default=None, type=click.Path(dir_okay=False),
              help="write a PNG of the topology, nodes coloured by their delivery ratio")
@click.option("--key-file", default=None, type=click.Path(dir_okay=False), metavar="PATH",
              help="run the mesh authenticated with this network key on every board "
                   "(16..64 raw bytes or 32..128 hex digits, as for `rumor deploy --key-file`)")
@app_options
def demo_cmd(nodes: int, messages: int, topology: str, loss: float, interval_ms: int,
             degree: float | None, sets: tuple[str, ...], seed: int, settle_s: float, out: str, json_out: str | None, plot_out: str | None,
             map_out: str | None, key_file: str | None, app_file: str | None, app_sets: tuple[str, ...]) -> None:
    """Swarm + inject + logs + report in one go: prints the delivery table.

    It stops as soon as every (message, node) pair is delivered, or when
    --settle-s is over; on a topology that is not connected (it says so)
    delivery is counted within each message's source's part."""
    p = Path(out)
    try:
        key = read_key_file(key_file) if key_file is not None else None
    except KeyFileError as e:
        raise click.ClickException(str(e)) from None
    app, app_settings = app_from_options(app_file, app_sets)
    try:
        node_config = _parse_kv(sets)
    except ValueError as e:
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
                       node_config=node_config, key=key, app=app, app_settings=app_settings, degree=degree)
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
        if map_out:
            demo_map(rep, map_out, f"rumor demo: {nodes} virtual boards, {topology}, loss {loss:g}")
            click.echo(f"map: {map_out}")
    except OSError as e:
        raise click.ClickException(f"{e.filename or json_out or plot_out or map_out}: {e.strerror}") from None
