"""Meshtasticator's placements and traffic, for comparing our managed-flood
rows with the Meshtastic project's own simulator (docs/simulator.md).

Meshtasticator (github.com/meshtastic/Meshtasticator) places N nodes one by
one, uniformly in a 15 km x 15 km square, a node at least 10 m from every
other and accepted once some node already placed hears it; links follow the
3GPP suburban macro-cell path loss (TR 36.942) at 1 m antenna height, 0 dBi,
30 dBm (the US power limit) on 908.75 MHz (US, channel 27 of LONG_FAST), a
link existing where the received power reaches LONG_FAST's sensitivity,
-131.5 dBm.  Every node publishes a 40-byte broadcast with exponential gaps
of mean 100 s; LONG_FAST is SF11, 250 kHz, CR 4/5, a 16-symbol preamble;
the US region has no duty cycle.  This module rebuilds that setting here
(its own code, from that description), or takes Meshtasticator's own node
coordinates, and runs any of our strategies on it:

    python -m rumor_host.sim.meshtasticator --nodes 10,25,50 --seeds 1-5

The rssi handed to the core is the received power shifted so that the
sensitivity is our models' range edge (-100 dBm): what SNR, capture and the
relay windows see is the link margin, as on a real radio.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from collections.abc import Sequence

from .bounds import compute_bounds
from .engine import Engine
from .params import SimParams
from .radio import LoRa
from .scenario import Scenario, build_scenario
from .strategies import STRATEGIES
from .topology import Topology

SIZE_M = 15_000.0
MIN_DIST_M = 10.0
HEIGHT_M = 1.0
PTX_DBM = 30.0
FREQ_HZ = 902.0e6 + 250e3 * 27
SENSITIVITY_DBM = -131.5  # LONG_FAST
PERIOD_MS = 100_000
PAYLOAD = 40
_EDGE = -100.0  # our rssi at the range edge (radio.rssi_at)


def path_loss_db(dist_m: float, freq_hz: float = FREQ_HZ, h_tx: float = HEIGHT_M,
                 h_rx: float = HEIGHT_M) -> float:
    """3GPP suburban macro-cell path loss (TR 36.942), d in m, f in Hz."""
    d = max(dist_m, 0.001)
    f_mhz = math.log10(freq_hz) - 6.0
    return ((44.9 - 6.55 * math.log10(h_tx)) * (math.log10(d) - 3.0) + 45.5
            + (35.46 - 1.1 * h_rx) * f_mhz - 13.82 * math.log10(h_rx) + 0.7 * h_rx)


def rx_dbm(dist_m: float) -> float:
    return PTX_DBM - path_loss_db(dist_m)


def place(n: int, seed: int) -> list[tuple[float, float]]:
    """N positions (m) by Meshtasticator's rule: uniform in the square, 10 m
    from every other node, heard by some node already placed."""
    rng = random.Random(f"meshtasticator/{seed}")
    pts: list[tuple[float, float]] = []
    while len(pts) < n:
        x = (rng.random() - 0.5) * SIZE_M
        y = (rng.random() - 0.5) * SIZE_M
        if not pts:
            pts.append((x, y))
            continue
        ok = False
        for px, py in pts:
            d = math.hypot(px - x, py - y)
            if d < MIN_DIST_M:
                ok = False
                break
            if rx_dbm(d) >= SENSITIVITY_DBM:
                ok = True
        if ok:
            pts.append((x, y))
    return pts


def scenario(pts: Sequence[tuple[float, float]], seed: int, sim_s: float = 600.0,
             settle_s: float = 60.0, cad: bool = True, capture: bool = True) -> Scenario:
    """Our Scenario on those positions: LONG_FAST, Meshtasticator's traffic."""
    n = len(pts)
    rng = random.Random(f"meshtasticator-traffic/{seed}")
    events: list[tuple[int, int]] = []
    for v in range(n):
        t = rng.expovariate(1.0 / PERIOD_MS)
        while t < sim_s * 1000:
            events.append((int(t * 1000), v))
            t += rng.expovariate(1.0 / PERIOD_MS)
    events.sort()
    p = SimParams(nodes=n, radio="lora", sf=11, messages=max(1, len(events)), seed=seed,
                  payload=PAYLOAD, loss=0.0, start_ms=0, settle_ms=int(settle_s * 1000),
                  topology="complete", cad=cad, capture=capture)
    sc = build_scenario(p)
    adj: list[list[int]] = [[] for _ in range(n)]
    rssi: list[list[int]] = [[] for _ in range(n)]
    nd: list[list[float]] = [[] for _ in range(n)]
    for i in range(n):
        for j in range(n):
            if i != j:
                r = rx_dbm(math.hypot(pts[i][0] - pts[j][0], pts[i][1] - pts[j][1]))
                if r >= SENSITIVITY_DBM:
                    adj[i].append(j)
                    rssi[i].append(int(round(r - SENSITIVITY_DBM + _EDGE)))
                    nd[i].append(1.0)
    xs = [(x + SIZE_M / 2) / SIZE_M for x, _ in pts]
    sc.topo = Topology("meshtasticator", n, adj, nd, xs, {"size_m": SIZE_M})
    sc.rssi = rssi
    sc.radio = LoRa(name="lora-sf11", csma=False, mac_ack=False, retries=0, duty_cycle=None,
                    sf=11, bw_hz=250_000, cr=1, preamble=16, range_m=2000.0)
    sc.sources = [v for _, v in events]
    sc.publish_us = [t for t, _ in events]
    sc.end_us = (events[-1][0] if events else 0) + int(settle_s * 1e6)
    comp = [-1] * n
    sizes: list[int] = []
    for s in range(n):
        if comp[s] < 0:
            c = sc.topo.component(s)
            for v in c:
                comp[v] = len(sizes)
            sizes.append(len(c))
    sc.comp_of, sc.comp_size = comp, sizes
    sc.main = sc.topo.largest_component()
    sc.data_air_us = sc.radio.airtime_us(16 + PAYLOAD)
    sc.slot_ms = sc.data_air_us / 1000.0
    sc.maxdeg = max((len(a) for a in adj), default=0)
    sc.reboots = []
    sc.bounds = compute_bounds(sc.topo, sc.sources, sc.data_air_us)
    return sc


def compare(nodes: Sequence[int], seeds: Sequence[int], strategies: Sequence[str],
            coords: dict | None = None, **kw) -> list[dict]:
    """Run each strategy on each placement; coords: {(n, seed): points} to
    use Meshtasticator's own placements instead of ours."""
    rows = []
    for n in nodes:
        for s in seeds:
            pts = coords.get((n, s)) if coords else None
            if pts is None:
                pts = place(n, s)
            sc = scenario(pts, s, **kw)
            for name in strategies:
                m = Engine(sc, STRATEGIES[name]).run()
                rows.append({"nodes": n, "seed": s, "strategy": name,
                             "messages": len(sc.publish_us),
                             "delivery": m["delivery_ratio"],
                             "frames_per_msg": m["tx_per_message"],
                             "p50_ms": m["latency_ms_p50"], "p99_ms": m["latency_ms_p99"],
                             "mean_degree": sc.topo.mean_degree()})
    return rows


def _seeds(text: str) -> list[int]:
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(x) for x in text.split(",")]


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", default="10,25,50")
    ap.add_argument("--seeds", default="1-5")
    ap.add_argument("--strategy", default="managed-flood,managed-flood-7")
    ap.add_argument("--sim-s", type=float, default=600.0)
    ap.add_argument("--no-cad", action="store_true")
    ap.add_argument("--no-capture", action="store_true")
    ap.add_argument("--coords", help="JSON list of {n, rep, coords}: Meshtasticator's placements")
    ap.add_argument("--json", help="write the rows here")
    a = ap.parse_args(argv)
    coords = None
    if a.coords:
        with open(a.coords) as f:
            coords = {(r["n"], r["rep"]): [tuple(p) for p in r["coords"]] for r in json.load(f)}
    nodes = [int(x) for x in a.nodes.split(",")]
    rows = compare(nodes, _seeds(a.seeds), a.strategy.split(","), coords, sim_s=a.sim_s,
                   cad=not a.no_cad, capture=not a.no_capture)
    print("| nodes | strategy | delivery (mean of seeds) | frames/msg | p50 ms | mean degree |")
    print("|--:|---|--:|--:|--:|--:|")
    for n in nodes:
        for name in a.strategy.split(","):
            rs = [r for r in rows if r["nodes"] == n and r["strategy"] == name]
            k = len(rs)
            print(f"| {n} | {name} | {sum(r['delivery'] for r in rs) / k:.1%} | "
                  f"{sum(r['frames_per_msg'] for r in rs) / k:.2f} | "
                  f"{sum(r['p50_ms'] for r in rs) / k:.0f} | "
                  f"{sum(r['mean_degree'] for r in rs) / k:.1f} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
