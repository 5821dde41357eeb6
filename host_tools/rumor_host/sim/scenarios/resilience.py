"""`make resilience`: the real core under faults and attacks, checked against
ground truth.

    python -m rumor_host.sim.resilience --out bench/resilience.json

One simulated ESP-NOW mesh (rgg), every honest node sharing a network key, and
at once:

- frame loss on every reception;
- reboots during dissemination: a node loses its RAM (a fresh Gossip) and,
  as node.py does, restores at boot the network clock it last saved (saves
  every 60 s after each boot);
- a partition: the links across x = 0.5 are down for a while, then heal;
- a replayer and a forger (attackers.py): nodes without the key;
- messages published by several honest nodes before, during and after the
  partition.

What counts is measured from ground truth (truth.py: what was published, by
whom and when; what each node's application was handed, in which boot,
carried by whose transmission), never from the nodes' own counters; those
are reported beside it.  The definitions are in DEFINITIONS and in the JSON.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from rumor import Config

from ..engine import Engine, Hooks, Scenario, SimParams, build_scenario
from ..metrics import percentile
from ..report import md_rows
from ..strategies import STRATEGIES
from ..topology import Topology, bfs_hops
from .attackers import FORGE_KINDS, Forger, Replayer
from .common import (
    CONTEXT,
    NET_TIME0,
    NETWORK_KEY,
    scenario_options,
    seeds_text,
    stamp,
    targets_lines,
    write_report,
)
from .truth import DEFINITIONS, Truth, nest

__all__ = ["DEFINITIONS", "FORGE_KINDS", "NET_TIME0", "NETWORK_KEY", "Forger", "Replayer",
           "ResilienceParams", "Truth", "main", "run", "run_many"]


@dataclass
class ResilienceParams:
    nodes: int = 150
    degree: float = 10.0
    loss: float = 0.3
    seed: int = 1
    reboot_fraction: float = 0.1  # of honest nodes, each reboots once during the traffic
    downtime_ms: int = 5000
    time_save_ms: int = 60_000  # node.py's save period of the network clock
    partition_start_ms: int = 40_000
    partition_for_ms: int = 60_000
    publishers: int = 8
    messages_per_phase: int = 20  # before, during and after the partition
    end_ms: int = 330_000
    max_message_age_ms: int = 120_000
    ring_slots: int = 64
    dedup_slots: int = 512
    replay_delays_ms: tuple[int, ...] = (1000, 5000, 30_000, 90_000, 130_000, 180_000)
    replay_every: int = 3  # the replayer records one DIGEST/REQUEST in this many
    forge_interval_ms: int = 100  # the forger sends a frame this often
    replayer: bool = True
    forger: bool = True
    txq_limit: int = 32  # frames a radio holds for the air (ESP-IDF's default TX buffers)

    def phases(self) -> list[tuple[str, int, int]]:
        """(name, first publish ms, last publish ms) of each traffic phase."""
        a = self.partition_start_ms
        b = a + self.partition_for_ms
        return [("before", 5000, a - 5000), ("during", a + 5000, b - 5000),
                ("after", b + 5000, b + 35_000)]

    def config(self) -> Config:
        # ESP-NOW's rumor strategy (the default Config) with longer-lived
        # messages and a ring that holds everything live at once (see README)
        return Config(max_message_age_ms=self.max_message_age_ms, ring_slots=self.ring_slots,
                      dedup_slots=self.dedup_slots)



# -- the scenario -----------------------------------------------------------------------

def _honest_component(topo: Topology, bad: set[int]) -> list[int]:
    """Component index of each node in the graph without the `bad` nodes (-1 for them)."""
    adj = [[u for u in a if u not in bad] if v not in bad else [] for v, a in enumerate(topo.adj)]
    comp = [-1] * topo.n
    c = 0
    for s in range(topo.n):
        if s in bad or comp[s] >= 0:
            continue
        for v in bfs_hops(adj, s):
            comp[v] = c
        c += 1
    return comp


def _place_attackers(topo: Topology, main: list[int], k: int) -> list[int]:
    """k attackers among the best-connected nodes near the middle (x ~ 0.5,
    so one of them sits by the partition), none of them a cut vertex of the
    honest graph."""
    chosen: list[int] = []
    ranked = sorted(main, key=lambda v: (abs(topo.x[v] - 0.5) * 4 - len(topo.adj[v]) / 10.0, v))
    size = len(main)
    for v in ranked:
        if len(chosen) == k:
            break
        if any(v in topo.adj[u] for u in chosen):
            continue  # not neighbours of each other
        comp = _honest_component(topo, set(chosen) | {v})
        sizes: dict[int, int] = {}
        for u in main:
            if comp[u] >= 0:
                sizes[comp[u]] = sizes.get(comp[u], 0) + 1
        if max(sizes.values()) == size - len(chosen) - 1:
            chosen.append(v)
    return chosen



@dataclass
class Setup:
    """One seed's mesh, attackers, traffic and ground-truth recorder."""

    sc: Scenario
    bad: dict[int, str]  # attacker node -> "replayer" or "forger"
    comp: list[int]  # component of each node among honest nodes (-1: an attacker)
    honest_main: list[int]
    pubs: list[int]  # the publishing nodes
    traffic: list[tuple[int, str]]  # (t_ms, phase) of every message
    truth: Truth


def _traffic(rp: ResilienceParams) -> list[tuple[int, str]]:
    traffic: list[tuple[int, str]] = []  # (t_ms, phase)
    for name, a, b in rp.phases():
        m = rp.messages_per_phase
        for i in range(m):
            traffic.append((a + (b - a) * i // max(m - 1, 1), name))
    return traffic


def _setup(rp: ResilienceParams) -> Setup:
    """The mesh, where the attackers sit, who publishes when, who reboots."""
    traffic = _traffic(rp)
    sp = SimParams(nodes=rp.nodes, topology="rgg", degree=rp.degree, loss=rp.loss,
                   radio="espnow", messages=len(traffic), seed=rp.seed,
                   downtime_ms=rp.downtime_ms,
                   partition_start_ms=rp.partition_start_ms,
                   partition_ms=rp.partition_start_ms + rp.partition_for_ms,
                   settle_ms=0, start_ms=0, txq_limit=rp.txq_limit)
    sc = build_scenario(sp)
    topo = sc.topo
    rng = random.Random(f"resilience/{rp.seed}")
    kinds = [k for k, on in (("replayer", rp.replayer), ("forger", rp.forger)) if on]
    spots = _place_attackers(topo, sc.main, len(kinds))
    if len(spots) < len(kinds):
        raise ValueError("no room for the attackers: every candidate is a cut vertex")
    bad = dict(zip(spots, kinds, strict=True))
    comp = _honest_component(topo, set(bad))
    honest_main = [v for v in sc.main if v not in bad]
    # publishers and rebooting nodes: honest nodes of the main component, at random
    pubs = rng.sample(honest_main, rp.publishers)
    sc.sources = [pubs[i % len(pubs)] for i in range(len(traffic))]
    rng.shuffle(sc.sources)
    sc.publish_us = [t * 1000 for t, _ in traffic]
    nre = int(round(rp.reboot_fraction * len(honest_main)))
    first_pub, last_pub = traffic[0][0] * 1000, traffic[-1][0] * 1000
    sc.reboots = sorted((first_pub + int(rng.random() * (last_pub - first_pub)), v)
                        for v in rng.sample(honest_main, nre))
    sc.end_us = rp.end_ms * 1000
    return Setup(sc, bad, comp, honest_main, pubs, traffic, Truth(rp, topo.n, bad))


def _hooks(rp: ResilienceParams, s: Setup) -> Hooks:
    """Keys on every honest node, the attackers as actors, the truth's ears."""
    actors: dict[int, Any] = {}
    for v, kind in s.bad.items():
        if kind == "replayer":
            actors[v] = partial(Replayer, delays_ms=rp.replay_delays_ms, every=rp.replay_every)
        else:
            actors[v] = partial(Forger, interval_ms=rp.forge_interval_ms, seed=rp.seed)
    traffic = s.traffic

    def payload(k: int) -> bytes:
        return (b"msg %05d phase %s " % (k, traffic[k][1].encode())).ljust(32, b".")

    t = s.truth
    return Hooks(key=NETWORK_KEY, config=rp.config(), net_time0=NET_TIME0,
                 time_save_ms=rp.time_save_ms, actors=actors, payload=payload,
                 on_publish=t.on_publish, on_deliver=t.on_deliver, on_boot=t.on_boot,
                 on_tx=t.on_tx, rx_watch=set(s.bad), rx_wrap=t.rx_wrap)


def _delivery(rp: ResilienceParams, s: Setup) -> dict[str, Any]:
    """Delivery from ground truth: pairs, by phase, latencies, the worst
    messages, missing pairs, and what reached nodes published while down."""
    sc, truth, traffic, comp, bad = s.sc, s.truth, s.traffic, s.comp, s.bad
    down_at_end = {v for t, v in sc.reboots if t + rp.downtime_ms * 1000 > sc.end_us}
    by_k = {k: (v, t) for _mid, (v, _p, t, k) in truth.published.items()}
    expected = delivered = 0
    per_phase: dict[str, list[int]] = {name: [0, 0] for name, _a, _b in rp.phases()}
    lat: list[float] = []
    worst: list[tuple[float, int]] = []
    missing: list[dict] = []
    for k in range(len(traffic)):
        if k not in by_k:
            continue
        src, t0 = by_k[k]
        got = exp = 0
        for v in range(sc.topo.n):
            if v == src or v in bad or v in down_at_end or comp[v] != comp[src] or comp[src] < 0:
                continue
            exp += 1
            t = truth.first.get((k, v))
            if t is not None:
                got += 1
                lat.append((t - t0) / 1000.0)
            elif len(missing) < 50:
                missing.append({"message": k, "phase": traffic[k][1], "node": v,
                                "source": src, "node_rebooted": any(u == v for _t, u in sc.reboots)})
        expected += exp
        delivered += got
        per_phase[traffic[k][1]][0] += got
        per_phase[traffic[k][1]][1] += exp
        worst.append((got / exp if exp else 1.0, k))
    lat.sort()
    worst.sort()
    # recovery: the messages published while a node was down, which only its
    # new boot can have delivered
    rec_exp = rec_got = 0
    for t_down, v in sc.reboots:
        t_up = t_down + rp.downtime_ms * 1000
        for k, (src, t0) in by_k.items():
            if t_down <= t0 < t_up and v != src and comp[v] == comp[src] and v not in down_at_end:
                rec_exp += 1
                rec_got += (k, v) in truth.in_boot
    return {
        "delivery_ratio": round(delivered / expected, 6) if expected else 1.0,
        "delivered_pairs": delivered,
        "expected_pairs": expected,
        "delivery_by_phase": {name: {"ratio": round(a / b, 6) if b else 1.0, "delivered": a,
                                     "expected": b} for name, (a, b) in per_phase.items()},
        "worst_messages": [{"message": k, "phase": traffic[k][1], "ratio": round(r, 4)}
                           for r, k in worst[:5]],
        "latency_ms_p50": round(percentile(lat, 50), 1),
        "latency_ms_p99": round(percentile(lat, 99), 1),
        "latency_ms_max": round(lat[-1], 1) if lat else 0.0,
        "missing_pairs": missing,
        "published_while_down": {"expected": rec_exp, "delivered_after_reboot": rec_got},
    }


def _topology(s: Setup) -> dict[str, Any]:
    topo, bad, honest_main = s.sc.topo, s.bad, s.honest_main
    n = topo.n
    return {"nodes": n, "mean_degree": round(topo.mean_degree(), 2),
            "main_component": len(s.sc.main),
            "honest_in_main": len(honest_main),
            "attackers": {kind: {"node": v, "degree": len(topo.adj[v]),
                                 "x": round(topo.x[v], 3)} for v, kind in bad.items()},
            "cross_links": sum(1 for v in range(n) for u in topo.adj[v]
                               if v < u and (topo.x[v] >= 0.5) != (topo.x[u] >= 0.5)),
            "side_sizes": [sum(1 for v in honest_main if topo.x[v] < 0.5),
                           sum(1 for v in honest_main if topo.x[v] >= 0.5)]}


def run(rp: ResilienceParams, progress=None) -> dict:
    """One run of the scenario; the result as a JSON-able dict."""
    t_wall = time.perf_counter()
    cfg = rp.config()
    s = _setup(rp)
    res = Engine(s.sc, STRATEGIES["rumor"], _hooks(rp, s)).run(progress)
    res.pop("_latencies", None)
    wall = time.perf_counter() - t_wall
    sc, truth, bad = s.sc, s.truth, s.bad
    bad_replays = [r for r in truth.replayed if r["via"] == "replayer"]
    out: dict[str, Any] = {
        "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(rp).items()},
        "config": cfg.to_dict(),
        "definitions": DEFINITIONS,
        "topology": _topology(s),
        "publishers": sorted(s.pubs),
        "phases": [{"name": a, "first_ms": b, "last_ms": c, "messages": rp.messages_per_phase}
                   for a, b, c in rp.phases()],
        "reboots": [{"t_ms": t / 1000.0, "node": v} for t, v in sc.reboots],
    }
    out.update(_delivery(rp, s))
    out.update({
        "forged_deliveries": len(truth.forged),
        "replayed_deliveries": len(truth.replayed),
        "replayed_deliveries_via_replayer": len(bad_replays),
        "replayed_examples": truth.replayed[:10],
        "forged_examples": truth.forged[:10],
        "deliveries": truth.deliveries,
        "deliveries_via": truth.by_tx,
        "redelivered_after_reboot": truth.redelivered_after_reboot,
        "rebooted_nodes": len(sc.reboots),
        "replayer_sent": {"stale": truth.stale_replays, "fresh": truth.fresh_replays},
        "attackers": {kind: truth.nodes[v].stats() for v, kind in bad.items()},
        "attacker_frames_at_receivers": nest(truth.rx),
        "core_totals": res["core_totals"],
        "transmissions": {"total": sum(truth.tx.values()),
                          "by": truth.tx, "honest_by_type": truth.tx_kind,
                          "airtime_ms_by": {k: round(v / 1000.0, 1) for k, v in truth.air_us.items()}},
        "tx_per_message": round(truth.tx["honest"] / max(1, len(truth.published)), 1),
        "txq_dropped": res["txq_dropped"],
        "airtime_per_node": res["airtime_per_node"],
        "sim_ms": res["sim_ms"],
        "events": res["events"],
        "wall_s": round(wall, 2),
    })
    out["targets"] = {
        "delivery >= 99.9%": out["delivery_ratio"] >= 0.999,
        "zero forged deliveries": out["forged_deliveries"] == 0,
        "zero replayed deliveries": out["replayed_deliveries"] == 0,
    }
    return out


# -- many seeds --------------------------------------------------------------------------

SUMMED = ("delivered_pairs", "expected_pairs", "forged_deliveries", "replayed_deliveries",
          "replayed_deliveries_via_replayer", "rebooted_nodes", "redelivered_after_reboot",
          "deliveries")


def run_many(rp: ResilienceParams, seeds: list[int], progress=None) -> dict:
    """The scenario on several seeds (topology, placement, traffic, reboots,
    channel all change); every run and their total."""
    runs = []
    for s in seeds:
        r = run(ResilienceParams(**dict(asdict(rp), seed=s)))
        runs.append(r)
        if progress is not None:
            progress(r)
    tot: dict[str, Any] = {k: sum(r[k] for r in runs) for k in SUMMED}
    tot["delivery_ratio"] = round(tot["delivered_pairs"] / tot["expected_pairs"], 6)
    tot["min_run_delivery_ratio"] = min(r["delivery_ratio"] for r in runs)
    ct: dict[str, int] = {}
    for r in runs:
        for k, v in r["core_totals"].items():
            ct[k] = ct.get(k, 0) + v
    tot["core_totals"] = ct
    rx: dict[tuple[str, str, str], int] = {}
    for r in runs:
        for a, by in r["attacker_frames_at_receivers"].items():
            for b, outs in by.items():
                for c, v in outs.items():
                    rx[(a, b, c)] = rx.get((a, b, c), 0) + v
    tot["attacker_frames_at_receivers"] = nest(rx)
    tot["honest_tx"] = sum(r["transmissions"]["by"]["honest"] for r in runs)
    tot["messages"] = sum(3 * rp.messages_per_phase for _ in runs)
    tot["tx_per_message"] = round(tot["honest_tx"] / tot["messages"], 1)
    tot["replayer_sent"] = {k: sum(r["replayer_sent"][k] for r in runs) for k in ("stale", "fresh")}
    tot["forger_sent"] = sum(sum(v for k, v in r["attackers"].get("forger", {}).items()
                                 if k in FORGE_KINDS) for r in runs)
    tot["wall_s"] = round(sum(r["wall_s"] for r in runs), 1)
    tot["published_while_down"] = {k: sum(r["published_while_down"][k] for r in runs)
                                   for k in ("expected", "delivered_after_reboot")}
    tot["txq_dropped"] = sum(r["txq_dropped"] for r in runs)
    tot["targets"] = {
        "delivery >= 99.9% (every run)": all(r["delivery_ratio"] >= 0.999 for r in runs),
        "zero forged deliveries": tot["forged_deliveries"] == 0,
        "zero replayed deliveries": tot["replayed_deliveries"] == 0,
    }
    return {"params": runs[0]["params"] | {"seed": seeds}, "config": runs[0]["config"],
            "definitions": DEFINITIONS, "total": tot, "runs": runs}


# -- output ------------------------------------------------------------------------------

RUN_HEAD = ["seed", "delivery", "missed pairs", "forged", "replayed", "bad_tag", "stale",
            "reboots", "got while down", "honest tx/msg", "replayer stale/fresh sent", "forger sent",
            "wall s"]


def run_rows(rep: dict) -> list[list[str]]:
    rows = []
    for r in rep["runs"]:
        fs = sum(v for k, v in r["attackers"].get("forger", {}).items() if k in FORGE_KINDS)
        rows.append([str(r["params"]["seed"]), f"{r['delivery_ratio']:.3%}",
                     str(r["expected_pairs"] - r["delivered_pairs"]), str(r["forged_deliveries"]),
                     str(r["replayed_deliveries"]), str(r["core_totals"].get("bad_tag", 0)),
                     str(r["core_totals"].get("stale", 0)), str(r["rebooted_nodes"]),
                     f"{r['published_while_down']['delivered_after_reboot']}/"
                     f"{r['published_while_down']['expected']}", f"{r['tx_per_message']:.0f}",
                     f"{r['replayer_sent']['stale']}/{r['replayer_sent']['fresh']}", str(fs),
                     f"{r['wall_s']:.1f}"])
    t = rep["total"]
    rows.append(["all", f"{t['delivery_ratio']:.3%}", str(t["expected_pairs"] - t["delivered_pairs"]),
                 str(t["forged_deliveries"]), str(t["replayed_deliveries"]),
                 str(t["core_totals"].get("bad_tag", 0)), str(t["core_totals"].get("stale", 0)),
                 str(t["rebooted_nodes"]),
                 f"{t['published_while_down']['delivered_after_reboot']}/{t['published_while_down']['expected']}",
                 f"{t['tx_per_message']:.0f}",
                 f"{t['replayer_sent']['stale']}/{t['replayer_sent']['fresh']}",
                 str(t["forger_sent"]), f"{t['wall_s']:.1f}"])
    return rows


OUTCOMES = ("delivered", "processed", "duplicates", "bad_tag", "stale", "malformed", "expired",
            "forgotten", "rate_limited", "own_sender", "ignored")


def outcome_rows(rep: dict) -> tuple[list[str], list[list[str]]]:
    """What honest receivers did with the attackers' frames (every reception)."""
    rx = rep["total"]["attacker_frames_at_receivers"]
    cols = [c for c in OUTCOMES if any(c in outs for by in rx.values() for outs in by.values())]
    rows = []
    for a, by in rx.items():
        for b, outs in by.items():
            rows.append([f"{a} {b}"] + [str(outs.get(c, 0)) for c in cols])
    return ["frames received from"] + cols, rows


def title(rep: dict) -> str:
    p = rep["params"]
    return (f"resilience: {p['nodes']} nodes (rgg, degree {p['degree']:g}), ESP-NOW, loss {p['loss']:g}, "
            f"{p['reboot_fraction']:.0%} reboots, {p['partition_for_ms'] // 1000} s partition, "
            f"replayer + forger, {len(p['seed'])} seeds")


def rich_tables(rep: dict) -> list[Table]:
    t = Table(title=title(rep), caption="missed pairs: expected (message, node) pairs never "
                                        "delivered; bad_tag/stale: the honest cores' drop counters; "
                                        "got while down: messages published while a node was off "
                                        "that its new boot delivered")
    for i, h in enumerate(RUN_HEAD):
        t.add_column(h, justify="left" if i == 0 else "right")
    for r in run_rows(rep):
        t.add_row(*r)
    head, rows = outcome_rows(rep)
    o = Table(title="what honest receivers did with the attackers' frames (all seeds)",
              caption="duplicates: an id already known, dropped before the tag is checked; "
                      "processed: a DIGEST/REQUEST fresh enough to act on; own_sender: a frame "
                      "naming the receiver as its sender, dropped unread as an echo")
    for i, h in enumerate(head):
        o.add_column(h, justify="left" if i == 0 else "right")
    for r in rows:
        o.add_row(*r)
    return [t, o]


def markdown(rep: dict) -> str:
    head, rows = outcome_rows(rep)
    return "\n".join(md_rows(RUN_HEAD, run_rows(rep)) + [""] + md_rows(head, rows))



@click.command(context_settings=CONTEXT)
@scenario_options(out="bench/resilience.json", seeds="1-10",
                  markdown_help="Also print the tables as Markdown.")
@click.option("--nodes", type=click.IntRange(min=20), default=200, show_default=True)
@click.option("--loss", type=click.FloatRange(0.0, 0.9), default=0.3, show_default=True)
def main(out: str, seeds: list[int], md: bool, nodes: int, loss: float) -> None:
    """Run the resilience scenario (faults + replayer + forger) and check the targets."""
    rp = ResilienceParams(nodes=nodes, loss=loss)
    console = Console(stderr=True)
    console.print(f"resilience: {nodes} nodes, {rp.end_ms // 1000} s simulated per seed, seeds "
                  f"{seeds_text(seeds)}")

    def tell(r: dict) -> None:
        console.print(f"  seed {r['params']['seed']}: delivery {r['delivery_ratio']:.3%}, "
                      f"forged {r['forged_deliveries']}, replayed {r['replayed_deliveries']} "
                      f"({r['wall_s']:.1f} s)")

    rep = run_many(rp, seeds, tell)
    stamp(rep)
    con = Console(width=170)
    for t in rich_tables(rep):
        con.print(t)
    for r in rep["runs"]:
        for e in r["replayed_examples"]:
            con.print(f"replayed delivery, seed {r['params']['seed']}: node {e['node']} (boot {e['boot']}, "
                      f"booted at {e['booted_at_ms'] / 1000:.1f} s) got id {e['id']:#x} via the "
                      f"{e['via']} at {e['t_ms'] / 1000:.1f} s: {e['why']}, true age "
                      f"{e['true_age_ms'] / 1000:.1f} s, the core's {e['core_age_ms'] / 1000:.1f} s"
                      + ("" if e["node_clock_lag_ms"] is None else
                         f" (its network clock {e['node_clock_lag_ms'] / 1000:.1f} s behind)"))
    for name, text in DEFINITIONS.items():
        con.print(f"[bold]{name}[/bold]: {text}")
    for line in targets_lines(rep["total"]["targets"]):
        con.print(line)
    if md:
        print(markdown(rep))
    write_report(rep, out, console)


if __name__ == "__main__":
    main()
