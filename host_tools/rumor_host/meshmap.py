"""A picture of the mesh: who hears whom, drawn the same way for a real run
(`rumor report --map`, from the boards' `peers` snapshots), a simulated one
(`rumor sim --plot`) and a swarm of virtual boards (`rumor swarm --map`).

Nodes are dots (coloured by a value in 0..1 when there is one: the share
of the messages they should have got that they did get), links are lines
shaded by their RSSI (grey where no RSSI is known, dashed where only one
side heard the other).  Positions come from the simulator when it has
them, else from a force-directed layout of the links (deterministic).
matplotlib, Agg backend: no display needed.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

RSSI_RANGE = (-110.0, -40.0)  # dBm, the colour scale's ends when the data has no spread


@dataclass
class MeshMap:
    """What to draw.  heard[(a, b)] = RSSI at which a heard b (None: heard,
    RSSI unknown); a link is drawn once for both directions."""

    nodes: list[str]
    heard: dict[tuple[str, str], float | None] = field(default_factory=dict)
    pos: dict[str, tuple[float, float]] | None = None
    value: dict[str, float | None] = field(default_factory=dict)  # node -> 0..1, None: no data
    value_label: str = "delivery ratio"
    marks: set[str] = field(default_factory=set)  # nodes drawn with a ring (sources)
    groups: list[list[str]] = field(default_factory=list)  # else: colour by group (connected parts)
    title: str = ""
    note: str = ""  # a line under the picture: what is missing, what the colours mean

    def links(self) -> list[tuple[str, str, float | None, bool]]:
        """(a, b, rssi, both ways) per pair of nodes that heard each other;
        rssi is the mean of the two directions' where both are known."""
        out: dict[tuple[str, str], list[Any]] = {}
        for (a, b), r in self.heard.items():
            if a == b:
                continue
            key = (a, b) if a < b else (b, a)
            out.setdefault(key, []).append(r)
        res = []
        for (a, b), rs in sorted(out.items()):
            known = [float(r) for r in rs if r is not None]
            res.append((a, b, sum(known) / len(known) if known else None, len(rs) > 1))
        return res


def layout(nodes: list[str], links: list[tuple[str, str]], seed: int = 1,
           iterations: int = 150, fixed_x: dict[str, float] | None = None) -> dict[str, tuple[float, float]]:
    """Fruchterman-Reingold positions in the unit square: linked nodes pull
    together, all nodes push apart.  The same input gives the same picture.
    fixed_x: the nodes' known x (the simulator's); only y is then laid out."""
    import numpy as np

    n = len(nodes)
    if n == 0:
        return {}
    idx = {v: i for i, v in enumerate(nodes)}
    rng = np.random.default_rng(seed)
    ang = 2 * np.pi * np.arange(n) / n  # start on a circle (a line has no crossing to undo)
    p = np.stack([0.5 + 0.4 * np.cos(ang), 0.5 + 0.4 * np.sin(ang)], axis=1)
    p += rng.uniform(-0.01, 0.01, p.shape)
    fx = None
    if fixed_x is not None:
        fx = np.array([fixed_x.get(v, 0.5) for v in nodes], dtype=float)
        p[:, 0] = fx
        p[:, 1] = rng.uniform(0.0, 1.0, n)
    e = np.array([(idx[a], idx[b]) for a, b in links if a in idx and b in idx and a != b],
                 dtype=int).reshape(-1, 2)
    k = math.sqrt(1.0 / n)
    t = 0.1
    for _ in range(iterations if n > 1 else 0):
        delta = p[:, None, :] - p[None, :, :]
        dist = np.maximum(np.linalg.norm(delta, axis=2), 1e-6)
        disp = (delta / dist[:, :, None] * (k * k / dist)[:, :, None]).sum(axis=1)
        if len(e):
            d = p[e[:, 0]] - p[e[:, 1]]
            ln = np.maximum(np.linalg.norm(d, axis=1), 1e-6)
            f = (d / ln[:, None]) * (ln * ln / k)[:, None]
            np.add.at(disp, e[:, 0], -f)
            np.add.at(disp, e[:, 1], f)
        disp -= (p - p.mean(axis=0)) * (3.0 * k)  # gravity: parts that hear nobody stay near
        ln = np.maximum(np.linalg.norm(disp, axis=1), 1e-9)
        p += disp / ln[:, None] * np.minimum(ln, t)[:, None]
        if fx is not None:
            p[:, 0] = fx
        t = max(t * 0.97, 0.002)
    if fx is not None:  # x as given; y into 0..1
        lo_y, span_y = p[:, 1].min(), max(float(np.ptp(p[:, 1])), 1e-9)
        return {v: (float(p[i, 0]), float((p[i, 1] - lo_y) / span_y)) for v, i in idx.items()}
    lo, span = p.min(axis=0), p.max(axis=0) - p.min(axis=0)
    s = max(float(span.max()), 1e-9)
    q = (p - lo) / s + (1 - span / s) / 2
    return {v: (float(q[i, 0]), float(q[i, 1])) for v, i in idx.items()}


def components(nodes: list[str], links: list[tuple[str, str]]) -> list[list[str]]:
    """The connected parts of the graph, largest first."""
    adj: dict[str, set[str]] = {v: set() for v in nodes}
    for a, b in links:
        if a in adj and b in adj:
            adj[a].add(b)
            adj[b].add(a)
    seen: set[str] = set()
    out: list[list[str]] = []
    for v in nodes:
        if v in seen:
            continue
        comp, stack = [], [v]
        seen.add(v)
        while stack:
            u = stack.pop()
            comp.append(u)
            for w in adj[u] - seen:
                seen.add(w)
                stack.append(w)
        out.append(sorted(comp))
    return sorted(out, key=lambda c: (-len(c), c))


def draw(m: MeshMap, out: str | os.PathLike[str]) -> None:
    """Write the picture of m to out (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize

    links = m.links()
    pos = dict(m.pos or {})
    missing = [v for v in m.nodes if v not in pos]
    if missing:
        pos.update(layout(m.nodes, [(a, b) for a, b, _, _ in links]))
    n = len(m.nodes)
    big = n > 40
    note = m.note
    fig, ax = plt.subplots(figsize=(8, 7.4))
    rs = [r for _, _, r, _ in links if r is not None]
    lo, hi = (min(rs), max(rs)) if rs and max(rs) - min(rs) >= 3 else RSSI_RANGE
    rnorm = Normalize(lo, hi)
    rmap = plt.get_cmap("viridis")
    width = 0.6 if big else 2.2
    for dashed in (False, True):
        segs, cols = [], []
        for a, b, r, both in links:
            if (not both) != dashed:
                continue
            segs.append([pos[a], pos[b]])
            cols.append(rmap(rnorm(r)) if r is not None else (0.6, 0.6, 0.6, 1.0))
        if segs:
            ax.add_collection(LineCollection(segs, colors=cols, linewidths=width,
                                             linestyles="dashed" if dashed else "solid",
                                             alpha=0.5 if big else 0.9, zorder=1))
    if rs:
        sm = plt.cm.ScalarMappable(norm=rnorm, cmap=rmap)
        fig.colorbar(sm, ax=ax, orientation="horizontal", fraction=0.035, pad=0.02,
                     aspect=40).set_label("link RSSI (dBm)")
    vmap = plt.get_cmap("RdYlGn")
    xs = [pos[v][0] for v in m.nodes]
    ys = [pos[v][1] for v in m.nodes]
    has_value = any(m.value.get(v) is not None for v in m.nodes)
    vals = [m.value.get(v) for v in m.nodes]
    face = [vmap(x) if x is not None else (1.0, 1.0, 1.0, 1.0) for x in vals]
    if not has_value and len(m.groups) > 1:
        gmap = plt.get_cmap("tab10")
        colour = {v: gmap(k % 10) for k, g in enumerate(m.groups) for v in g}
        face = [colour.get(v, (1, 1, 1, 1)) for v in m.nodes]
        for k, g in enumerate(m.groups[:10]):
            ax.scatter([], [], s=60, color=gmap(k), label=f"part {k + 1}: {len(g)} node{'s' * (len(g) > 1)}")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, title="not connected",
                  title_fontsize=8, borderaxespad=0)
    size = 18 if big else 260
    ax.scatter(xs, ys, s=size, c=face, edgecolors=["black" if v in m.marks else "0.35" for v in m.nodes],
               linewidths=[2.5 if v in m.marks else 0.8 for v in m.nodes], zorder=2)
    if has_value:
        sm = plt.cm.ScalarMappable(norm=Normalize(0, 1), cmap=vmap)
        fig.colorbar(sm, ax=ax, fraction=0.035, pad=0.02).set_label(m.value_label)
    if not big:
        short = n > 16 and all(len(v) == 8 for v in m.nodes) and len({v[-4:] for v in m.nodes}) == n
        for v, x, y in zip(m.nodes, xs, ys, strict=True):
            ax.annotate(v[-4:] if short else v, (x, y), xytext=(0, 11), textcoords="offset points", ha="center",
                        fontsize=8 if n <= 16 else 7, family="monospace", zorder=3)
        if short:
            note = (note + "; " if note else "") + "labels: the node ids' last 4 hex digits"
    ax.set_xlim(-0.08, 1.08)
    ax.set_ylim(-0.08, 1.08)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(m.title, fontsize=11)
    if note:
        fig.text(0.5, 0.015, note, ha="center", fontsize=8, wrap=True)
    fig.tight_layout(rect=(0, 0.04 if note else 0, 1, 1))
    fig.savefig(out, dpi=100)
    plt.close(fig)


def from_topology(topo: Any, labels: list[str] | None = None, value: dict[str, float | None] | None = None,
                  marks: set[str] | None = None, title: str = "", note: str = "") -> MeshMap:
    """The MeshMap of a simulator Topology (rumor_host.sim.topology): its
    links with the RSSI the simulator gives them, its positions (`pos`, else
    x with a layout for y)."""
    from rumor_host.sim.radio import rssi_at

    n = topo.n
    names = labels or [str(i) for i in range(n)]
    heard: dict[tuple[str, str], float | None] = {}
    for i in range(n):
        for j, d in zip(topo.adj[i], topo.ndist[i], strict=True):
            heard[(names[i], names[j])] = float(rssi_at(d, 1.0))
    return MeshMap(names, heard, topology_positions(topo, names), value or {}, marks=marks or set(),
                   title=title, note=note)


def topology_positions(topo: Any, names: list[str]) -> dict[str, tuple[float, float]]:
    """Where the simulator put each node: its `pos` when the Topology has
    them; else its x (the real one), with y from the grid's rows, the middle
    for a line, or a layout of the links."""
    n = topo.n
    p = getattr(topo, "pos", None)
    if p is not None and len(p) == n:
        return {names[i]: (float(p[i][0]), float(p[i][1])) for i in range(n)}
    if topo.name == "line":
        return {names[i]: (float(topo.x[i]), 0.5) for i in range(n)}
    if topo.name == "grid":
        w = int(topo.params.get("width", max(1, math.ceil(math.sqrt(n)))))
        rows = max((n - 1) // w, 1)
        return {names[i]: (float(topo.x[i]), 1.0 - (i // w) / rows) for i in range(n)}
    links = [(names[i], names[j]) for i in range(n) for j in topo.adj[i] if i < j]
    return layout(names, links, iterations=150 if n <= 1000 else 60,
                  fixed_x={names[i]: float(topo.x[i]) for i in range(n)})


MAX_SIM_MAP = 3000  # nodes: above this a picture says nothing and its layout costs minutes


def map_path(plot_out: str | os.PathLike[str]) -> str:
    """Where `rumor sim --plot X.png` puts the topology: X-map.png."""
    root, ext = os.path.splitext(os.fspath(plot_out))
    return f"{root}-map{ext or '.png'}"


def sim_map(report: dict[str, Any], out: str | os.PathLike[str]) -> str | None:
    """Draw the topology of a `rumor sim` run (the simulator's own scenario:
    its links with the RSSI it gave them, its positions, the messages'
    sources ringed, a colour per connected part); the file written, or None
    when the mesh is too big to draw."""
    import dataclasses

    from rumor_host.sim.engine import SimParams
    from rumor_host.sim.scenario import build_scenario

    p = report["params"]
    if int(p["nodes"]) > MAX_SIM_MAP:
        return None
    known = {f.name for f in dataclasses.fields(SimParams)}
    sc = build_scenario(SimParams(**{k: v for k, v in p.items() if k in known}))
    topo = sc.topo
    names = [str(i) for i in range(topo.n)]
    heard: dict[tuple[str, str], float | None] = {
        (names[i], names[j]): float(sc.rssi[i][k]) for i in range(topo.n) for k, j in enumerate(topo.adj[i])}
    parts = components(names, [(a, b) for a, b in heard])
    shape = f"rgg, mean degree {p.get('degree')}" if p["topology"] == "rgg" else p["topology"]
    note = (f"{topo.edges()} links; ring: a message's source; "
            + (f"{len(parts)} connected parts: delivery is counted within the source's part"
               if len(parts) > 1 else "connected"))
    m = MeshMap(names, heard, topology_positions(topo, names), {}, marks={names[s] for s in sc.sources},
                groups=parts, title=f"rumor sim: {topo.n} nodes, {shape}, seed {p['seed']}", note=note)
    draw(m, out)
    return os.fspath(out)
