"""Everything a run shares across strategies: graph, radio, traffic, churn.

build_scenario() draws the topology, the per-link rssi, the message sources
and publish times, and the reboots from generators seeded by SimParams.seed;
the scenario scripts (scenarios/) build one and then replace its traffic.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from .bounds import compute_bounds
from .params import SimParams
from .radio import Radio, make_radio
from .topology import Topology, make_topology


@dataclass
class Scenario:
    params: SimParams
    topo: Topology
    radio: Radio
    rssi: list[list[int]]  # per link, as topo.adj: what the receiver measures
    sources: list[int]  # intended source of each message
    publish_us: list[int]
    reboots: list[tuple[int, int]]  # (time us, node)
    end_us: int
    main: list[int]  # largest component
    comp_of: list[int]  # component index of each node
    comp_size: list[int]
    data_air_us: int
    slot_ms: float
    maxdeg: int
    bounds: dict = field(default_factory=dict)


def _components(topo: Topology) -> tuple[list[int], list[int]]:
    """(component index of each node, size of each component)."""
    comp_of = [-1] * topo.n
    comp_size: list[int] = []
    for s in range(topo.n):
        if comp_of[s] < 0:
            c = topo.component(s)
            for v in c:
                comp_of[v] = len(comp_size)
            comp_size.append(len(c))
    return comp_of, comp_size


def build_scenario(p: SimParams) -> Scenario:
    p.check()
    radio = make_radio(p.radio, p.sf)
    topo = make_topology(p.topology, p.nodes, p.degree, p.seed)
    n = topo.n
    rssi = [[int(round(-40.0 - 30.0 * math.log10(max(d, 0.01) / 0.01))) for d in nd]
            for nd in topo.ndist]
    comp_of, comp_size = _components(topo)
    main = topo.largest_component()
    data_air = radio.airtime_us(16 + p.payload)
    slot_ms = data_air / 1000.0
    if p.interval_ms is None:
        interval_us = 100_000 if p.radio == "espnow" else int(200 * data_air)
    else:
        interval_us = int(p.interval_ms * 1000)
    if p.settle_ms is None:
        settle_us = 10_000_000 if p.radio == "espnow" else int(max(60_000_000, 400 * data_air))
    else:
        settle_us = int(p.settle_ms * 1000)
    rng = random.Random(f"traffic/{p.seed}")
    sources = [main[rng.randrange(len(main))] for _ in range(p.messages)]
    if p.source is not None:
        sources = [p.source] * p.messages
    start_us = p.start_ms * 1000
    publish_us = [start_us + k * interval_us for k in range(p.messages)]
    last = publish_us[-1]
    reboots: list[tuple[int, int]] = []
    if p.churn > 0:
        k = int(round(p.churn * n))
        for v in sorted(rng.sample(range(n), k)):
            reboots.append((start_us + int(rng.random() * max(last - start_us, 1)), v))
        reboots.sort()
    end_us = last + settle_us
    sc = Scenario(p, topo, radio, rssi, sources, publish_us, reboots, end_us, main, comp_of,
                  comp_size, data_air, slot_ms, max((len(a) for a in topo.adj), default=0))
    sc.bounds = compute_bounds(topo, sources, data_air)
    return sc
