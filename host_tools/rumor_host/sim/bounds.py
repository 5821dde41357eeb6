"""Reference bounds no protocol can beat.

- Latency floor: a message cannot reach a node in fewer transmissions than
  its hop distance from the source, so the eccentricity of the source (in
  hops) times the airtime of one data frame is a floor on the time the last
  node gets it.
- Transmissions: an omniscient scheduler needs at least as many broadcasts as
  a connected dominating set has nodes (every node must hear one and the
  relays must be connected).  The minimum CDS is NP-hard; the greedy one
  (Guha & Khuller 1998, algorithm I) is within a log factor of it and is what
  we report: "transmissions a good omniscient scheduler would need".
"""

from __future__ import annotations

import heapq

from .topology import Topology, bfs_hops


def eccentricities(topo: Topology, sources: list[int]) -> dict[int, int]:
    """Hop eccentricity of each distinct source within its component."""
    out: dict[int, int] = {}
    for s in sources:
        if s not in out:
            out[s] = max(bfs_hops(topo.adj, s).values())
    return out


def greedy_cds(adj: list[list[int]], nodes: list[int]) -> list[int]:
    """A connected dominating set of the connected node set `nodes`."""
    if len(nodes) <= 1:
        return list(nodes)
    WHITE, GRAY, BLACK = 0, 1, 2
    color = {v: WHITE for v in nodes}
    white = len(nodes)
    start = max(nodes, key=lambda v: (len(adj[v]), -v))
    black: list[int] = []
    heap: list[tuple[int, int]] = []  # (-white neighbours, node) for gray nodes, lazy

    def blacken(u: int) -> None:
        nonlocal white
        if color[u] == WHITE:
            white -= 1
        color[u] = BLACK
        black.append(u)
        for v in adj[u]:
            if color.get(v) == WHITE:
                color[v] = GRAY
                white -= 1
        for v in adj[u]:
            if color.get(v) == GRAY:
                heapq.heappush(heap, (-_whites(v), v))
            # gray neighbours of newly gray nodes lost white neighbours: their
            # stale entries are rechecked when popped

    def _whites(v: int) -> int:
        return sum(1 for w in adj[v] if color.get(w) == WHITE)

    blacken(start)
    while white > 0 and heap:
        neg, v = heapq.heappop(heap)
        if color[v] != GRAY:
            continue
        w = _whites(v)
        if w != -neg:
            heapq.heappush(heap, (-w, v))
            continue
        if w == 0:
            continue
        blacken(v)
    return black


def compute_bounds(topo: Topology, sources: list[int], data_airtime_us: int) -> dict:
    """Bounds for a run whose messages come from `sources`."""
    ecc = eccentricities(topo, sources)
    per_msg = [ecc[s] for s in sources]
    main = topo.largest_component()
    cds = greedy_cds(topo.adj, main)
    hop_ms = data_airtime_us / 1000.0
    return {
        "component_size": len(main),
        "mean_degree": round(topo.mean_degree(), 3),
        "ecc_hops_mean": round(sum(per_msg) / len(per_msg), 3) if per_msg else 0.0,
        "ecc_hops_max": max(per_msg) if per_msg else 0,
        "data_airtime_ms": round(hop_ms, 4),
        "latency_floor_ms_mean": round(hop_ms * sum(per_msg) / len(per_msg), 3) if per_msg else 0.0,
        "latency_floor_ms_max": round(hop_ms * max(per_msg), 3) if per_msg else 0.0,
        "cds_size": len(cds),
    }
