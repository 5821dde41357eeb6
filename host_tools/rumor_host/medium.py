"""The virtual radio medium: relays UDP frames between virtual boards along a
topology, with per-link loss and a small delay (docs/virtual.md).

    python -m rumor_host.medium --nodes 1,2,3 --topology line --loss 0.1

It binds 127.0.0.1 (port 0 = any) and prints `PORT <n>` as its first line of
stdout, so whoever starts it (rumor swarm) knows where the nodes must send.
Datagrams (the node side is firmware/rumor/radio_udp.py):
    node -> medium: src (6) + dst (6, ff*6 = broadcast) + frame; an empty
                    frame is a join (the medium learns where src listens)
    medium -> node: src (6) + rssi (1, signed dBm) + frame
A node's address is b"\\x02\\x00" + node id (4 bytes, big-endian).
"""

from __future__ import annotations

import argparse
import heapq
import random
import select
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from rumor_host.sim.radio import rssi_at

BROADCAST = b"\xff" * 6


def node_addr(node_id: int) -> bytes:
    return b"\x02\x00" + node_id.to_bytes(4, "big")


def make_links(topology: str, n: int, seed: int = 1, degree: float = 10.0) -> Any:
    """The simulator's Topology the medium relays along (rumor swarm makes
    the same call to draw it and to warn when it is not connected); one node
    has no links.  ValueError (one line) for a topology that cannot be made."""
    from rumor_host.sim.topology import Topology, make_topology

    if n < 2:
        return Topology(topology, n, [[] for _ in range(n)], [[] for _ in range(n)], [0.5] * n)
    if topology == "rgg" and not 0 < degree < n:
        raise ValueError(f"an rgg of {n} nodes takes a mean degree above 0 and below {n}, got {degree:g}")
    return make_topology(topology, n, degree=degree, seed=seed)


def neighbours(topology: str, n: int, seed: int = 1, degree: float = 10.0) -> tuple[list[list[int]], list[list[float]]]:
    """Adjacency lists (node index -> neighbour indices) and per-link distance
    as a fraction of the radio range."""
    t = make_links(topology, n, seed, degree)
    return [list(a) for a in t.adj], [list(d) for d in t.ndist]


@dataclass
class Medium:
    node_ids: list[int]
    adj: list[list[int]]
    ndist: list[list[float]]
    loss: float = 0.0
    delay_ms: tuple[float, float] = (1.0, 4.0)
    seed: int = 1
    host: str = "127.0.0.1"
    port: int = 0
    sock: socket.socket = field(init=False)
    stats: dict[str, int] = field(default_factory=lambda: {"in": 0, "out": 0, "lost": 0, "bad": 0, "joins": 0})

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.index = {node_addr(nid): i for i, nid in enumerate(self.node_ids)}
        self.where: dict[int, tuple[str, int]] = {}  # node index -> its socket address
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((self.host, self.port))
        self.port = self.sock.getsockname()[1]
        self.sock.setblocking(False)
        self.queue: list[tuple[float, int, tuple[str, int], bytes]] = []
        self._n = 0

    def rssi(self, i: int, k: int) -> int:
        # the simulator's path loss (-100 dBm at the range edge), which the
        # core's default rssi thresholds are tuned to
        d = self.ndist[i][k] if k < len(self.ndist[i]) else 0.5
        return max(-127, min(0, rssi_at(d, 1.0)))

    def handle(self, data: bytes, sender: tuple[str, int], now: float) -> None:
        if len(data) < 12:
            self.stats["bad"] += 1
            return
        src, dst, frame = data[:6], data[6:12], data[12:]
        i = self.index.get(src)
        if i is None:
            self.stats["bad"] += 1
            return
        self.where[i] = sender
        if not frame:
            self.stats["joins"] += 1
            return
        self.stats["in"] += 1
        for pos, k in enumerate(self.adj[i]):
            if dst != BROADCAST and node_addr(self.node_ids[k]) != dst:
                continue
            to = self.where.get(k)
            if to is None:
                continue  # not joined yet: nobody listening there
            if self.loss and self.rng.random() < self.loss:
                self.stats["lost"] += 1
                continue
            lo, hi = self.delay_ms
            at = now + self.rng.uniform(lo, hi) / 1000.0
            self._n += 1
            heapq.heappush(self.queue, (at, self._n, to, src + bytes([self.rssi(i, pos) & 0xFF]) + frame))

    def flush(self, now: float) -> None:
        while self.queue and self.queue[0][0] <= now:
            _, _, to, dgram = heapq.heappop(self.queue)
            try:
                self.sock.sendto(dgram, to)
                self.stats["out"] += 1
            except OSError:
                self.stats["lost"] += 1

    def serve(self, stop: list[bool] | None = None) -> None:
        stop = stop if stop is not None else [False]
        while not stop[0]:
            now = time.monotonic()
            self.flush(now)
            wait = 0.5
            if self.queue:
                wait = max(0.0, min(wait, self.queue[0][0] - now))
            r, _, _ = select.select([self.sock], [], [], wait)
            if r:
                for _ in range(64):
                    try:
                        data, sender = self.sock.recvfrom(2048)
                    except (BlockingIOError, ConnectionRefusedError):
                        break
                    self.handle(data, sender, time.monotonic())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="rumor-medium", description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", required=True, help="comma-separated node ids (decimal), in topology order")
    ap.add_argument("--topology", default="grid")
    ap.add_argument("--loss", type=float, default=0.0)
    ap.add_argument("--delay-ms", default="1,4", help="min,max per-hop delay")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--degree", type=float, default=10.0, help="rgg: mean degree")
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args(argv)
    ids = [int(x) for x in a.nodes.split(",") if x]
    try:
        adj, nd = neighbours(a.topology, len(ids), a.seed, a.degree)
    except ValueError as e:
        print(f"medium: {e}", file=sys.stderr, flush=True)
        return 2
    lo, hi = (float(x) for x in a.delay_ms.split(","))
    m = Medium(ids, adj, nd, loss=a.loss, delay_ms=(lo, hi), seed=a.seed, port=a.port)
    print(f"PORT {m.port}", flush=True)
    edges = sum(len(x) for x in adj) // 2
    shape = f"{a.topology}, mean degree {a.degree:g}" if a.topology == "rgg" else a.topology
    print(f"medium: 127.0.0.1:{m.port}, {len(ids)} nodes, {shape} ({edges} links), loss {a.loss}",
          file=sys.stderr, flush=True)
    # who hears whom, one line per link: "link <node id> <node id> rssi <dBm>" (ids in hex)
    for i, nbrs in enumerate(adj):
        for pos, k in enumerate(nbrs):
            if i < k:
                print(f"link {ids[i]:08x} {ids[k]:08x} rssi {m.rssi(i, pos)}", file=sys.stderr)
    sys.stderr.flush()
    stop = [False]

    def _stop(*_: object) -> None:
        stop[0] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    m.serve(stop)
    print(f"medium: stopped {m.stats}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
