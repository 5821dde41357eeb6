"""`rumor sim`: compare strategies on one simulated mesh."""

from __future__ import annotations

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from .engine import SimParams, simulate
from .report import budget_text, rich_airtime_table, rich_table, write_json
from .strategies import DEFAULT_ORDER, STRATEGIES, strategies_option
from .topology import TOPOLOGIES


def _strategy_help() -> str:
    return "; ".join(f"{s.name}: {s.summary}" for s in STRATEGIES.values())


def run_with_progress(params: SimParams, names: list[str], console: Console,
                      show: bool = True) -> dict:
    if not show:
        return simulate(params, names)
    with Progress(TextColumn("{task.description:<14}"), BarColumn(),
                  TextColumn("{task.percentage:>5.1f}% of sim time"), TimeElapsedColumn(),
                  console=console, transient=False) as prog:
        tasks = {s: prog.add_task(s, total=1.0) for s in names}

        def cb(name: str, f: float) -> None:
            prog.update(tasks[name], completed=f)

        return simulate(params, names, cb)


@click.group("sim", invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]},
               epilog="Strategies: " + _strategy_help())
@click.option("--nodes", "-n", type=click.IntRange(min=2), default=100, show_default=True,
              help="Number of nodes.")
@click.option("--topology", type=click.Choice(TOPOLOGIES), default="rgg", show_default=True,
              help="rgg = random geometric graph in the unit square; clusters = two complete "
                   "clusters joined by one bridge node.")
@click.option("--degree", type=click.FloatRange(min=0, min_open=True), default=10.0,
              show_default=True, help="Target mean degree (rgg only).")
@click.option("--loss", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.0,
              show_default=True, help="Frame loss probability on every link (per reception).")
@click.option("--radio", type=click.Choice(["espnow", "lora"]), default="espnow",
              show_default=True, help="Radio model: ESP-NOW (CSMA, 1 Mbit/s, unicast ACK) "
                                      "or LoRa (ALOHA, Semtech airtime, EU868 1% duty cycle).")
@click.option("--sf", type=click.IntRange(7, 12), default=7, show_default=True,
              help="LoRa spreading factor (125 kHz, CR 4/5).")
@click.option("--strategy", "strategies", default=",".join(DEFAULT_ORDER), show_default=True,
              callback=strategies_option, help="Comma-separated strategies to compare, in order.")
@click.option("--messages", "-m", type=click.IntRange(min=1), default=100, show_default=True,
              help="Messages published, each from a random node.")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Seed of topology, traffic, channel and nodes: same seed, same numbers.")
@click.option("--payload", type=click.IntRange(0, 200), default=32, show_default=True,
              help="Payload bytes per message.")
@click.option("--interval-ms", type=click.FloatRange(min=0), default=None,
              help="Time between publishes [default: 100 ms on ESP-NOW, 200 data-frame "
                   "airtimes on LoRa].")
@click.option("--settle-ms", type=click.IntRange(min=0), default=None,
              help="Simulated time after the last publish [default: 10 s ESP-NOW, 60 s or "
                   "400 airtimes LoRa].")
@click.option("--churn", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True,
              help="Fraction of nodes that reboot (losing their RAM state) once during the traffic.")
@click.option("--downtime-ms", type=click.IntRange(min=0), default=2000, show_default=True,
              help="How long a rebooting node stays off.")
@click.option("--partition-ms", type=click.IntRange(min=0), default=0, show_default=True,
              help="Links across x = 0.5 are down until this time (0: none).")
@click.option("--partition-start-ms", type=click.IntRange(min=0), default=0, show_default=True,
              help="When the partition begins (0: at the start).")
@click.option("--txq-limit", type=click.IntRange(min=0), default=0, show_default=True,
              help="Frames a node's radio holds waiting for the air; more are dropped (0: no limit).")
@click.option("--cad/--no-cad", default=True, show_default=True,
              help="LoRa: listen before talk (the adapter's CAD and backoff).")
@click.option("--capture-db", type=click.FloatRange(0.0, 60.0), default=6.0, show_default=True,
              help="LoRa: a frame locked first survives an overlap this many dB weaker.")
@click.option("--no-capture", is_flag=True, help="LoRa: no capture (any overlap loses both frames).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the report as JSON here.")
@click.option("--plot", "plot_out", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Draw delivery, transmissions and a latency CDF into this image (PNG).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_context
def sim(ctx: click.Context, nodes: int, topology: str, degree: float, loss: float, radio: str, sf: int,
        strategies: list[str], messages: int, seed: int, payload: int, interval_ms: float | None,
        settle_ms: int | None, churn: float, downtime_ms: int, partition_ms: int,
        partition_start_ms: int, txq_limit: int, cad: bool, capture_db: float, no_capture: bool,
        json_out: str | None, plot_out: str | None, quiet: bool) -> None:
    """Simulate a mesh running the real gossip core and compare strategies.

    Every node runs firmware/rumor's Gossip under CPython with a simulated
    clock and radio.  All strategies see the same topology, seed and traffic.
    Prints one row per strategy with its ratios to flood and to the reference
    bounds (hop-eccentricity latency floor, greedy connected-dominating-set
    transmissions).

    Example: rumor sim --nodes 1000 --topology rgg --degree 10 --loss 0.1
    --radio espnow --messages 100 --seed 1 --json out.json --plot out.png

    `rumor sim sweep MATRIX.toml` runs a whole matrix of meshes instead.
    """
    if ctx.invoked_subcommand is not None:
        return  # `rumor sim sweep ...`
    if topology == "rgg" and degree >= nodes:
        raise click.BadParameter(f"must be below --nodes ({nodes})", param_hint="--degree")
    if topology == "clusters" and nodes < 3:
        raise click.BadParameter("clusters needs at least 3 nodes", param_hint="--nodes")
    params = SimParams(nodes=nodes, topology=topology, degree=degree, loss=loss, radio=radio,
                       sf=sf, messages=messages, seed=seed, payload=payload,
                       interval_ms=interval_ms, settle_ms=settle_ms, churn=churn,
                       downtime_ms=downtime_ms, partition_ms=partition_ms,
                       partition_start_ms=partition_start_ms, txq_limit=txq_limit, cad=cad,
                       capture=not no_capture, capture_db=capture_db)
    console = Console(stderr=True)
    try:
        params.check()
        report = run_with_progress(params, strategies, console, show=not quiet)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    out = Console()
    if not out.is_terminal:
        out = Console(width=180)
    out.print(rich_table(report, title=f"rumor sim: {nodes} nodes, {topology}, loss {loss}, "
                                             f"{report['params']['radio_model']}, seed {seed}"))
    out.print(rich_airtime_table(report))
    for name, m in report["results"].items():
        if m.get("duty_budget"):
            ok = m["duty_budget"]["ok"]
            out.print(f"duty budget, {name}: {'no node exceeded it' if ok else 'EXCEEDED'} "
                      f"({budget_text(m)})")
    if json_out:
        write_json(report, json_out)
        console.print(f"wrote {json_out}")
    if plot_out:
        from .plot import plot_report

        plot_report(report, plot_out)
        console.print(f"wrote {plot_out}")  # and the topology, drawn as swarm and report draw theirs
        from rumor_host.meshmap import MAX_SIM_MAP, map_path, sim_map

        drawn = sim_map(report, map_path(plot_out))
        console.print(f"wrote {drawn}" if drawn else f"no topology map above {MAX_SIM_MAP} nodes")


from .sweep import sweep_cmd  # noqa: E402 - the subcommand, after the group it joins

sim.add_command(sweep_cmd)
from .idle import idle_cmd  # noqa: E402 - the subcommand, after the group it joins

sim.add_command(idle_cmd)
