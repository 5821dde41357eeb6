"""`make fairness`: one node floods, ten publish normally; fairness on vs off.

    python -m rumor_host.sim.fairness --out bench/fairness.json

One ESP-NOW mesh (rgg), the real core on every node, all of them with the
network key.  One node publishes `flood_rate` messages a second for
`flood_ms` (a buggy or hijacked board: it holds the key, so authentication
does not stop it), while
`normal` nodes publish one message every `normal_every_ms` each, before,
during and after the flood.  The same scenario (topology, traffic, channel)
runs twice:

- fairness on: the defaults, origin_quota 0 (= ring_slots // 4),
  rate_limit 50 new messages/s per sender (burst 64) and, where the core has
  it, origin_rate (new messages/s per origin);
- fairness off: origin_quota = ring_slots (any origin may fill the ring),
  rate_limit 0 and origin_rate 0.

Measured from ground truth: delivery of the normal nodes' messages (every
node of the source's component but the source, first delivery), how many of
them were evicted from some node's ring (a capacity or quota eviction, not
an expiry) before every node had them, and the airtime the flood took (DATA
frames whose origin is the flooder, on every node's radio).  The evictions
are reported by the core itself, through Gossip.on_evict (a callback that
costs nothing when unset; the core's behaviour is the same with it).
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from rumor import Config
from rumor import wire as W

from ..engine import Engine, Hooks, Scenario, SimParams, build_scenario
from ..metrics import percentile
from ..report import md_rows
from ..strategies import STRATEGIES
from .common import (
    CONTEXT,
    NET_TIME0,
    NETWORK_KEY,
    scenario_options,
    stamp,
    targets_lines,
    write_report,
)


@dataclass
class FairnessParams:
    nodes: int = 100
    degree: float = 10.0
    loss: float = 0.1
    seed: int = 1
    flood_rate: int = 1000  # messages/s from the flooder
    flood_from_ms: int = 5000
    flood_ms: int = 10_000
    normal: int = 10  # nodes publishing at a normal rate
    normal_every_ms: int = 10_000
    normal_from_ms: int = 1000
    normal_until_ms: int = 31_000
    end_ms: int = 80_000
    payload: int = 32
    txq_limit: int = 32  # frames a radio holds for the air (ESP-IDF's default TX buffers)
    keyed: bool = True  # every node (the flooder too) has the network key

    def configs(self) -> dict[str, Config]:
        on = Config()
        off = on.replace(origin_quota=on.ring_slots, rate_limit=0, origin_rate=0)
        return {"on": on, "off": off}


def _traffic(fp: FairnessParams, main: list[int]) -> tuple[int, list[int], list[tuple[int, int]]]:
    """(flooder, normal nodes, [(t_us, node)] sorted)."""
    rng = random.Random(f"fairness/{fp.seed}")
    picks = rng.sample(main, fp.normal + 1)
    flooder, normal = picks[0], sorted(picks[1:])
    ev: list[tuple[int, int]] = []
    step = 1_000_000 // fp.flood_rate
    for i in range(fp.flood_ms * 1000 // step):
        ev.append((fp.flood_from_ms * 1000 + i * step, flooder))
    for v in normal:
        t = fp.normal_from_ms * 1000 + rng.randrange(fp.normal_every_ms * 1000)
        while t < fp.normal_until_ms * 1000:
            ev.append((t, v))
            t += fp.normal_every_ms * 1000
    ev.sort()
    return flooder, normal, ev



def _scenario(fp: FairnessParams) -> tuple[Scenario, int, list[int], list[tuple[int, int]]]:
    """The mesh with the fairness traffic in place: (scenario, flooder,
    normal nodes, [(t_us, node)] of every publish)."""
    sp = SimParams(nodes=fp.nodes, topology="rgg", degree=fp.degree, loss=fp.loss, radio="espnow",
                   messages=1, seed=fp.seed, payload=fp.payload, settle_ms=0, start_ms=0,
                   txq_limit=fp.txq_limit)
    sc = build_scenario(sp)
    flooder, normal, ev = _traffic(fp, sc.main)
    sp.messages = len(ev)
    sc.sources = [v for _t, v in ev]
    sc.publish_us = [t for t, _v in ev]
    sc.end_us = fp.end_ms * 1000
    return sc, flooder, normal, ev


class Watch:
    """What the run reports to the fairness measurement: publishes of the
    normal nodes, every frame on air (whose DATA it carries), and every
    eviction of a normal node's live message from some node's ring."""

    def __init__(self, fp: FairnessParams, flooder: int, normal: list[int]):
        self.flooder = flooder
        self.fl_id = flooder + 1  # node ids are index + 1
        self.normal_ids = {v + 1 for v in normal}
        self.flood_end = (fp.flood_from_ms + fp.flood_ms) * 1000
        # the time of the last publish or transmission seen: what an
        # eviction (inside a receive) is stamped with
        self.now = 0
        self.pub: dict[int, tuple[int, int]] = {}  # id -> (k, t_us) of normal messages
        self.evicted_at: dict[int, list[int]] = {}  # normal id -> t_us of each eviction (any node)
        self.by_flood: dict[int, list[int]] = {}  # the same, evictions that made room for a flood message
        self.air = {"flood_data": 0, "normal_data": 0, "other": 0}
        self.frames = {"flood_data": 0, "normal_data": 0, "other": 0}
        self.flooder_air = 0
        self.flood_after = 0  # flood DATA frames sent after the flooder stopped
        self.flood_last = 0  # t_us of the last of them

    def hooks(self, fp: FairnessParams, cfg: Config) -> Hooks:
        return Hooks(config=cfg, key=NETWORK_KEY if fp.keyed else None,
                     net_time0=NET_TIME0 if fp.keyed else None,
                     on_publish=self.on_publish, on_tx=self.on_tx, on_boot=self.on_boot,
                     keep_first=True)

    def on_publish(self, k: int, v: int, mid: int, payload: bytes, t: int) -> None:
        self.now = t
        if v + 1 in self.normal_ids:
            self.pub[mid] = (k, t)

    def on_tx(self, v: int, frame: bytes, a: int, t: int) -> None:
        self.now = t
        if frame[0] & 0x0F == W.DATA:
            o = int.from_bytes(frame[8:12], "big")
            kind = "flood_data" if o == self.fl_id else "normal_data" if o in self.normal_ids else "other"
        else:
            kind = "other"
        self.air[kind] += a
        self.frames[kind] += 1
        if v == self.flooder:
            self.flooder_air += a
        if kind == "flood_data" and t >= self.flood_end:
            self.flood_after += 1
            self.flood_last = t

    def on_boot(self, v: int, boot: int, g: Any, t: int) -> None:
        g.on_evict(self.on_evict)

    def on_evict(self, evicted: Any, incoming: Any) -> None:
        """The core's eviction hook: a live message leaves a ring for `incoming`."""
        if int.from_bytes(evicted[8:12], "big") in self.normal_ids:
            mid = int.from_bytes(evicted[8:14], "big")
            self.evicted_at.setdefault(mid, []).append(self.now)
            if int.from_bytes(incoming[8:12], "big") == self.fl_id:
                self.by_flood.setdefault(mid, []).append(self.now)


def _normal_delivery(fp: FairnessParams, sc: Scenario, w: Watch,
                     first: list[list[int]]) -> dict[str, Any]:
    """Delivery of the normal nodes' messages (pairs, during and after the
    flood, latencies) and how many were evicted before every node had them."""
    comp_of = sc.comp_of
    expected = delivered = 0
    evicted_before = 0
    flood_evicted_before = 0
    flood_window = (fp.flood_from_ms * 1000, (fp.flood_from_ms + fp.flood_ms) * 1000)
    during = [0, 0]
    after = [0, 0]
    lat: list[float] = []
    for mid, (k, t0) in w.pub.items():
        s = sc.sources[k]
        row = first[k]
        got = 0
        exp = 0
        last = t0
        for v in range(sc.topo.n):
            if v == s or comp_of[v] != comp_of[s]:
                continue
            exp += 1
            if row[v] >= 0:
                got += 1
                lat.append((row[v] - t0) / 1000.0)
                last = max(last, row[v])
        expected += exp
        delivered += got
        if flood_window[0] <= t0 < flood_window[1]:
            during[0] += got
            during[1] += exp
        elif t0 >= flood_window[1]:
            after[0] += got
            after[1] += exp
        ev_t = w.evicted_at.get(mid)
        if ev_t and (got < exp or min(ev_t) < last):
            evicted_before += 1
        ev_t = w.by_flood.get(mid)
        if ev_t and (got < exp or min(ev_t) < last):
            flood_evicted_before += 1
    lat.sort()
    return {
        "normal_messages": len(w.pub),
        "normal_delivery_ratio": round(delivered / expected, 6) if expected else 1.0,
        "normal_delivered_pairs": delivered,
        "normal_expected_pairs": expected,
        "normal_during_flood": during,
        "normal_after_flood": after,
        "normal_during_flood_delivery_ratio": round(during[0] / during[1], 6) if during[1] else 1.0,
        "normal_after_flood_delivery_ratio": round(after[0] / after[1], 6) if after[1] else 1.0,
        "normal_latency_ms_p50": round(percentile(lat, 50), 1),
        "normal_latency_ms_p99": round(percentile(lat, 99), 1),
        "normal_evicted_before_delivery": evicted_before,
        "normal_body_evictions": sum(len(x) for x in w.evicted_at.values()),
        "normal_evicted_by_flood_before_delivery": flood_evicted_before,
        "normal_body_evictions_by_flood": sum(len(x) for x in w.by_flood.values()),
    }


def run_case(fp: FairnessParams, case: str, cfg: Config) -> dict:
    """One seed, one case ("on" or "off" with its Config)."""
    t_wall = time.perf_counter()
    sc, flooder, normal, ev = _scenario(fp)
    w = Watch(fp, flooder, normal)
    res = Engine(sc, STRATEGIES["rumor"], w.hooks(fp, cfg)).run()
    first = res.pop("_first")  # first delivery of every message at every node
    res.pop("_latencies", None)
    n = sc.topo.n
    total_air = sum(w.air.values())
    ct = res["core_totals"]
    fk = [k for k, (_t, v) in enumerate(ev) if v == flooder]
    fl_got = sum(1 for k in fk for v in range(n) if v != flooder and first[k][v] >= 0)
    fl_exp = len(fk) * (sc.comp_size[sc.comp_of[flooder]] - 1)
    out: dict[str, Any] = {
        "case": case,
        "config": {k: v for k, v in cfg.to_dict().items()
                   if k in ("ring_slots", "origin_quota", "rate_limit", "rate_burst", "origin_rate",
                            "max_message_age_ms")},
    }
    out.update(_normal_delivery(fp, sc, w, first))
    out.update({
        "flood_messages": len(fk),
        "flood_delivery_ratio": round(fl_got / fl_exp, 6) if fl_exp else 1.0,
        "flood_airtime_s": round(w.air["flood_data"] / 1e6, 3),
        "flood_airtime_share": round(w.air["flood_data"] / total_air, 4) if total_air else 0.0,
        "flood_frames": w.frames["flood_data"],
        "flood_frames_after_it_stopped": w.flood_after,
        "flood_last_frame_s": round(w.flood_last / 1e6, 1),
        "flooder_airtime_s": round(w.flooder_air / 1e6, 3),
        "total_airtime_s": round(total_air / 1e6, 3),
        "frames": w.frames,
        "rate_limited": ct.get("rate_limited", 0),
        "quota_evicted": ct.get("quota_evicted", 0),
        "evicted": ct.get("evicted", 0),
        "forgotten": ct.get("forgotten", 0),
        "txq_dropped": res["txq_dropped"],
        "airtime_per_node": res["airtime_per_node"],
        "events": res["events"],
        "wall_s": round(time.perf_counter() - t_wall, 2),
    })
    return out


SUM = ("normal_messages", "normal_delivered_pairs", "normal_expected_pairs",
       "normal_evicted_before_delivery", "normal_body_evictions",
       "normal_evicted_by_flood_before_delivery", "normal_body_evictions_by_flood", "flood_messages", "flood_frames",
       "flood_frames_after_it_stopped", "rate_limited", "quota_evicted", "evicted", "forgotten",
       "txq_dropped", "events")
SUM_F = ("flood_airtime_s", "flooder_airtime_s", "total_airtime_s", "wall_s")


def _pool(runs: list[dict]) -> dict:
    """The runs of one case on every seed, pooled: pairs and counts summed,
    ratios of the sums, latencies the worst seed's."""
    out: dict[str, Any] = {"case": runs[0]["case"], "config": runs[0]["config"], "seeds": len(runs)}
    for k in SUM:
        out[k] = sum(r[k] for r in runs)
    for k in SUM_F:
        out[k] = round(sum(r[k] for r in runs), 3)
    out["normal_delivery_ratio"] = round(out["normal_delivered_pairs"] / out["normal_expected_pairs"], 6)
    for w in ("during", "after"):
        a = sum(r[f"normal_{w}_flood"][0] for r in runs)
        b = sum(r[f"normal_{w}_flood"][1] for r in runs)
        out[f"normal_{w}_flood_delivery_ratio"] = round(a / b, 6) if b else 1.0
    out["normal_delivery_by_seed"] = [r["normal_delivery_ratio"] for r in runs]
    out["normal_latency_ms_p50"] = max(r["normal_latency_ms_p50"] for r in runs)
    out["normal_latency_ms_p99"] = max(r["normal_latency_ms_p99"] for r in runs)
    out["flood_airtime_share"] = round(out["flood_airtime_s"] / out["total_airtime_s"], 4)
    out["flood_delivery_ratio"] = round(sum(r["flood_delivery_ratio"] for r in runs) / len(runs), 6)
    out["flood_last_frame_s"] = max(r["flood_last_frame_s"] for r in runs)
    return out


def run(fp: FairnessParams, seeds: list[int] | None = None, progress=None) -> dict:
    """Both cases on every seed (topology, flooder, normal nodes, channel change)."""
    seeds = seeds or [fp.seed]
    per: dict[str, list[dict]] = {}
    floods: list[dict] = []
    for seed in seeds:
        f = FairnessParams(**dict(asdict(fp), seed=seed))
        sc = build_scenario(SimParams(nodes=f.nodes, degree=f.degree, seed=seed, messages=1))
        flooder, normal, _ev = _traffic(f, sc.main)
        floods.append({"seed": seed, "flooder": flooder, "normal_nodes": normal})
        for name, cfg in f.configs().items():
            r = run_case(f, name, cfg)
            r["seed"] = seed
            per.setdefault(name, []).append(r)
            if progress is not None:
                progress(r)
    cases = {name: _pool(runs) for name, runs in per.items()}
    on, off = cases["on"], cases["off"]
    return {
        "params": dict(asdict(fp), seed=seeds),
        "nodes_by_seed": floods,
        "cases": cases,
        "runs": per,
        "on_beats_off": on["normal_delivery_ratio"] > off["normal_delivery_ratio"],
    }


ROWS = (
    # label, key, format
    ("normal messages: delivery", "normal_delivery_ratio", "{:.2%}"),
    ("  per seed", None, None),
    ("  published during the flood", "normal_during_flood_delivery_ratio", "{:.2%}"),
    ("  published after it", "normal_after_flood_delivery_ratio", "{:.2%}"),
    ("normal messages evicted before every node had them", None, None),
    ("  of those, evicted to make room for a flood message", None, None),
    ("normal bodies evicted from rings (all nodes, any cause)", "normal_body_evictions", "{}"),
    ("  to make room for a flood message", "normal_body_evictions_by_flood", "{}"),
    ("normal latency p50 / p99 ms (worst seed)", None, None),
    ("flood messages published / delivery", None, None),
    ("airtime of the flood's DATA frames (all nodes)", "flood_airtime_s", "{:.1f} s"),
    ("  share of all airtime", "flood_airtime_share", "{:.1%}"),
    ("  flood frames sent after it stopped / last at", None, None),
    ("the flooder's own airtime", "flooder_airtime_s", "{:.1f} s"),
    ("rate_limited / quota_evicted / forgotten (core counters)", None, None),
    ("frames dropped by full radio queues", "txq_dropped", "{}"),
    ("events / wall", None, None),
)


def table_rows(rep: dict) -> list[list[str]]:
    out = []
    for label, key, fmt in ROWS:
        row = [label]
        for case in ("on", "off"):
            c = rep["cases"][case]
            if key is not None and fmt is not None:
                row.append(fmt.format(c[key]))
            elif label.strip() == "per seed":
                row.append(" ".join(f"{x:.1%}" for x in c["normal_delivery_by_seed"]))
            elif label.startswith("normal messages evicted"):
                row.append(f"{c['normal_evicted_before_delivery']} of {c['normal_messages']}")
            elif label.strip().startswith("of those, evicted"):
                row.append(f"{c['normal_evicted_by_flood_before_delivery']} of {c['normal_messages']}")
            elif label.startswith("normal latency"):
                row.append(f"{c['normal_latency_ms_p50']:.0f} / {c['normal_latency_ms_p99']:.0f}")
            elif label.startswith("flood messages"):
                row.append(f"{c['flood_messages']} / {c['flood_delivery_ratio']:.1%}")
            elif label.strip().startswith("flood frames sent after"):
                row.append(f"{c['flood_frames_after_it_stopped']} / {c['flood_last_frame_s']:.0f} s")
            elif label.startswith("rate_limited"):
                row.append(f"{c['rate_limited']} / {c['quota_evicted']} / {c['forgotten']}")
            else:
                row.append(f"{c['events']} / {c['wall_s']:.0f} s")
        out.append(row)
    return out


HEAD = ["", "fairness on (defaults)", "fairness off (quota = ring, no rate limits)"]


def rich_table(rep: dict) -> Table:
    p = rep["params"]
    t = Table(title=(f"fairness: {p['nodes']} nodes (rgg, degree {p['degree']:g}), ESP-NOW"
                     f"{', keyed' if p['keyed'] else ''}, loss "
                     f"{p['loss']:g}; one node floods {p['flood_rate']} msg/s for "
                     f"{p['flood_ms'] // 1000} s, {p['normal']} nodes publish every "
                     f"{p['normal_every_ms'] / 1000:g} s; {len(p['seed'])} seeds pooled"),
              caption="delivery: (message, node) pairs, every node of the source's component; "
                      "evicted: a ring eviction (not an expiry) of the message somewhere before "
                      "its last first delivery, or with nodes never reached; the ring holds 32, "
                      "normal traffic alone keeps ~60 live")
    for i, h in enumerate(HEAD):
        t.add_column(h, justify="left" if i == 0 else "right")
    for r in table_rows(rep):
        t.add_row(*r)
    return t


def markdown(rep: dict) -> str:
    return "\n".join(md_rows(HEAD, table_rows(rep)))



@click.command(context_settings=CONTEXT)
@scenario_options(out="bench/fairness.json", seeds="1-5",
                  markdown_help="Also print the table as Markdown.")
@click.option("--nodes", type=click.IntRange(min=20), default=100, show_default=True)
@click.option("--flood-rate", type=click.IntRange(min=1, max=1000), default=1000, show_default=True)
def main(out: str, seeds: list[int], md: bool, nodes: int, flood_rate: int) -> None:
    """Compare fairness on and off with one flooding node."""
    fp = FairnessParams(nodes=nodes, flood_rate=flood_rate)
    console = Console(stderr=True)

    def tell(c: dict) -> None:
        console.print(f"  seed {c['seed']}, fairness {c['case']}: normal delivery "
                      f"{c['normal_delivery_ratio']:.2%} ({c['wall_s']:.0f} s)")

    rep = run(fp, seeds, tell)
    stamp(rep)
    Console(width=150).print(rich_table(rep))
    for line in targets_lines({"fairness on delivers more of the normal nodes' messages than "
                               "fairness off": rep["on_beats_off"]}):
        console.print(line)
    if md:
        print(markdown(rep))
    write_report(rep, out, console)


if __name__ == "__main__":
    main()
