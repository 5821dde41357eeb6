"""Topologies: who hears whom, and how far apart they are.

A Topology is the adjacency lists of N nodes plus, per link, the distance as
a fraction of the radio range (it becomes the rssi handed to receive()) and a
position per node (x picks the side of a partition).  Generators:

- rgg: random geometric graph in the unit square, range chosen for a target
  mean degree (edge effects included);
- grid: a near-square grid, 4 neighbours; line: a chain;
- complete: everyone hears everyone;
- clusters: two complete clusters joined by one bridge node that hears both.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field

TOPOLOGIES = ("rgg", "grid", "line", "complete", "clusters")


@dataclass
class Topology:
    name: str
    n: int
    adj: list[list[int]]
    ndist: list[list[float]]  # per link: distance / radio range, in (0, 1]
    x: list[float]  # position along x in 0..1 (partition side: x < 0.5)
    params: dict = field(default_factory=dict)
    # (x, y) of every node where the generator drew points (rgg, complete,
    # clusters), for maps; empty for grid and line, whose layout is implied
    pos: list[tuple[float, float]] = field(default_factory=list)

    def edges(self) -> int:
        return sum(len(a) for a in self.adj) // 2

    def mean_degree(self) -> float:
        return 2.0 * self.edges() / self.n if self.n else 0.0

    def component(self, src: int) -> list[int]:
        """Nodes reachable from src (src included)."""
        return list(bfs_hops(self.adj, src).keys())

    def largest_component(self) -> list[int]:
        seen = [False] * self.n
        best: list[int] = []
        for s in range(self.n):
            if not seen[s]:
                comp = self.component(s)
                for v in comp:
                    seen[v] = True
                if len(comp) > len(best):
                    best = comp
        return sorted(best)


def bfs_hops(adj: list[list[int]], src: int) -> dict[int, int]:
    """Hop distance from src to every node reachable from it."""
    dist = {src: 0}
    q = deque([src])
    while q:
        u = q.popleft()
        du = dist[u] + 1
        for v in adj[u]:
            if v not in dist:
                dist[v] = du
                q.append(v)
    return dist


def _from_points(name: str, pts: list[tuple[float, float]], r: float, params: dict) -> Topology:
    """Unit-disc graph of pts with range r, by a grid of r-sized cells."""
    n = len(pts)
    cells: dict[tuple[int, int], list[int]] = {}
    for i, (px, py) in enumerate(pts):
        cells.setdefault((int(px / r), int(py / r)), []).append(i)
    adj: list[list[int]] = [[] for _ in range(n)]
    nd: list[list[float]] = [[] for _ in range(n)]
    r2 = r * r
    for i, (px, py) in enumerate(pts):
        cx, cy = int(px / r), int(py / r)
        for gx in (cx - 1, cx, cx + 1):
            for gy in (cy - 1, cy, cy + 1):
                for j in cells.get((gx, gy), ()):
                    if j != i:
                        dx = pts[j][0] - px
                        dy = pts[j][1] - py
                        d2 = dx * dx + dy * dy
                        if d2 <= r2:
                            adj[i].append(j)
                            nd[i].append(max(math.sqrt(d2) / r, 1e-3))
    return Topology(name, n, adj, nd, [p[0] for p in pts], params, list(pts))


def _pair_within(r: float) -> float:
    """P(two uniform points of the unit square are within r), r <= 1."""
    return math.pi * r * r - 8.0 / 3.0 * r ** 3 + 0.5 * r ** 4


def rgg_radius(n: int, degree: float) -> float:
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if (n - 1) * _pair_within(mid) < degree:
            lo = mid
        else:
            hi = mid
    return hi


def rgg(n: int, degree: float, seed: int) -> Topology:
    if degree <= 0 or degree >= n:
        raise ValueError(f"rgg degree must be in (0, {n}), got {degree}")
    rng = random.Random(seed)
    r = rgg_radius(n, degree)
    pts = [(rng.random(), rng.random()) for _ in range(n)]
    return _from_points("rgg", pts, r, {"degree": degree, "radius": r})


def line(n: int) -> Topology:
    adj = [[j for j in (i - 1, i + 1) if 0 <= j < n] for i in range(n)]
    nd = [[0.8] * len(a) for a in adj]
    x = [i / max(n - 1, 1) for i in range(n)]
    return Topology("line", n, adj, nd, x)


def grid(n: int) -> Topology:
    w = max(1, int(math.ceil(math.sqrt(n))))
    adj: list[list[int]] = [[] for _ in range(n)]
    for i in range(n):
        r, c = divmod(i, w)
        for j in ((r - 1) * w + c, (r + 1) * w + c, i - 1 if c > 0 else -1, i + 1 if c < w - 1 else -1):
            if 0 <= j < n and j != i:
                adj[i].append(j)
    nd = [[0.8] * len(a) for a in adj]
    x = [(i % w) / max(w - 1, 1) for i in range(n)]
    return Topology("grid", n, adj, nd, x, {"width": w})


def complete(n: int, seed: int) -> Topology:
    rng = random.Random(seed)
    pts = []
    for _ in range(n):  # uniform in a disc of diameter 1 (the range)
        a = rng.random() * 2 * math.pi
        rr = 0.5 * math.sqrt(rng.random())
        pts.append((0.5 + rr * math.cos(a), 0.5 + rr * math.sin(a)))
    return _from_points("complete", pts, 1.0 + 1e-9, {})


def clusters(n: int, seed: int) -> Topology:
    """Two complete clusters of (n-1)//2 and the rest, joined by node 0 (the
    bridge), which hears every node of both; the clusters do not hear each other."""
    if n < 3:
        raise ValueError("clusters needs at least 3 nodes")
    rng = random.Random(seed)
    a = (n - 1) // 2
    pos: list[tuple[float, float]] = [(0.5, 0.5)]
    side_a = list(range(1, 1 + a))
    side_b = list(range(1 + a, n))
    for i in range(1, n):
        cx = 0.25 if i <= a else 0.75
        ang = rng.random() * 2 * math.pi
        rr = 0.1 * math.sqrt(rng.random())
        pos.append((cx + rr * math.cos(ang), 0.5 + rr * math.sin(ang)))
    adj: list[list[int]] = [[] for _ in range(n)]
    for group in (side_a, side_b):
        for i in group:
            adj[i] = [j for j in group if j != i] + [0]
            adj[0].append(i)
    rng_m = 0.4  # the bridge is at most 0.35 from anyone
    nd = [[max(math.dist(pos[i], pos[j]) / rng_m, 1e-3) for j in adj[i]] for i in range(n)]
    return Topology("clusters", n, adj, nd, [p[0] for p in pos], {"bridge": 0, "cluster_a": a},
                    list(pos))


def make_topology(name: str, n: int, degree: float = 10.0, seed: int = 1) -> Topology:
    if n < 2:
        raise ValueError(f"need at least 2 nodes, got {n}")
    if name == "rgg":
        return rgg(n, degree, seed)
    if name == "grid":
        return grid(n)
    if name == "line":
        return line(n)
    if name == "complete":
        return complete(n, seed)
    if name == "clusters":
        return clusters(n, seed)
    raise ValueError(f"unknown topology {name!r}: one of {', '.join(TOPOLOGIES)}")
