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
- a replayer: a node without the key that records frames it hears and
  rebroadcasts them later, both soon after and after they expired, DATA with
  its unauthenticated age (and hops) reset to 0;
- a forger: a node without the key that sends random DATA with wrong tags,
  genuine frames with their payload or stamp altered, untagged frames, and
  forged DIGESTs and REQUESTs;
- messages published by several honest nodes before, during and after the
  partition.

What counts is measured from ground truth (what was published, by whom and
when; what each node's application was handed, in which boot, carried by
whose transmission), never from the nodes' own counters; those are reported
beside it.  The definitions are in DEFINITIONS and in the JSON.
"""

from __future__ import annotations

import heapq
import json
import platform
import random
import struct
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from rumor import Config
from rumor import wire as W

from .engine import Actor, Engine, Hooks, SimParams, build_scenario
from .metrics import percentile
from .report import md_rows, seed_list
from .strategies import STRATEGIES
from .topology import Topology, bfs_hops

# A 32-byte network key, the same on every honest node (never on the attackers).
NETWORK_KEY = bytes(range(0x40, 0x60))
NET_TIME0 = 1_000_000  # the mesh's clock at the start, 64 ms units (~17.8 h of running)

DEFINITIONS = {
    "delivery_ratio": (
        "delivered pairs / expected pairs.  Expected: (message, node) for every message an "
        "honest node published and every honest node that is up at the end of the run, is "
        "connected to the message's source in the graph of honest nodes with every link up, "
        "and is not its source.  Delivered: the node's application was handed that message "
        "(same origin, seq and payload) at least once, in any of its boots."),
    "forged_deliveries": (
        "deliveries, at any honest node in any boot, of an (origin, seq, payload) that no "
        "honest node published."),
    "replayed_deliveries": (
        "deliveries of an id the node had already delivered in the same boot, plus deliveries "
        "whose true age (delivery time - publish time, simulated clock) exceeds "
        "max_message_age_ms.  A redelivery after a reboot is not one (the node lost its RAM)."),
    "stale_replays_sent": (
        "frames the replayer sent that carried a stamp older than the receiver's limit: DATA "
        "more than max_message_age_ms after its publish, DIGEST/REQUEST more than "
        "auth_window_ms after they were first sent."),
}


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


# -- the attackers ----------------------------------------------------------------------

class Replayer(Actor):
    """Records frames it hears and puts them on air again later, unchanged but
    for DATA's unauthenticated fields: every other replay of a DATA frame has
    its age and hops reset to 0 and the replayer as sender (the tag does not
    cover them, so a receiver can't tell); the rest go out byte for byte."""

    def __init__(self, v: int, node_id: int, clock: Callable[[], int], rand: Callable[[int], int],
                 send: Callable[[bytes, Any], None], delays_ms: tuple[int, ...] = (1000,),
                 every: int = 3, cap: int = 5000):
        super().__init__(v, node_id, clock, rand, send)
        self.delays = tuple(delays_ms)
        self.every = every
        self.cap = cap
        self.heap: list[tuple[int, int, bytes]] = []
        self.seen: set[bytes] = set()
        self.k = 0
        self.n = 0
        self.counts = {"heard": 0, "recorded": 0, "replayed": 0, "replayed_data": 0}

    def _at(self, due: int, frame: bytes) -> None:
        self.n += 1
        heapq.heappush(self.heap, (due, self.n, frame))

    def receive(self, frame, from_peer=None, rssi=0):
        self.counts["heard"] += 1
        if len(frame) < 8 or len(self.heap) >= self.cap:
            return False
        now = self.clock()
        t = frame[0] & 0x0F
        if t == W.DATA and len(frame) >= W.DATA_HDR:
            mid = bytes(frame[8:14])
            if mid in self.seen:
                return False
            self.seen.add(mid)
            self.counts["recorded"] += 1
            for j, d in enumerate(self.delays):
                f = bytearray(frame)
                if j % 2 == 0:
                    f[2] = 0  # hops
                    f[4:8] = struct.pack(">I", self.node_id)
                    f[14:16] = b"\0\0"  # age
                self._at(now + d, bytes(f))
            return True
        if t in (W.DIGEST, W.REQUEST):
            self.k += 1
            if self.k % self.every:
                return False
            self.counts["recorded"] += 1
            self._at(now + self.delays[(self.k // self.every) % len(self.delays)], bytes(frame))
            return True
        return False

    def tick(self):
        now = self.clock()
        while self.heap and self.heap[0][0] <= now:
            _due, _n, f = heapq.heappop(self.heap)
            self.counts["replayed"] += 1
            if f[0] & 0x0F == W.DATA:
                self.counts["replayed_data"] += 1
            self.send(f, None)

    def next_deadline(self):
        if not self.heap:
            return 3_600_000
        return max(0, self.heap[0][0] - self.clock())

    def stats(self):
        return dict(self.counts)


FORGE_KINDS = ("random_data_bad_tag", "payload_altered", "stamp_altered", "untagged_data",
               "forged_digest", "forged_request", "digest_altered", "truncated_tag")


class Forger(Actor):
    """Sends a frame every interval_ms, cycling through FORGE_KINDS.  Without
    the key it can only guess tags; it copies what it can (the newest stamp it
    heard, genuine frames and ids) to make its frames look fresh and real."""

    def __init__(self, v: int, node_id: int, clock: Callable[[], int], rand: Callable[[int], int],
                 send: Callable[[bytes, Any], None], interval_ms: int = 100, seed: int = 0):
        super().__init__(v, node_id, clock, rand, send)
        self.interval = interval_ms
        self.rng = random.Random(f"forger/{seed}")
        self.next = 0
        self.i = 0
        self.stamp = NET_TIME0  # the newest stamp heard (stamps are not secret)
        self.data: list[bytes] = []  # genuine DATA frames heard (a few)
        self.digests: list[bytes] = []
        self.ids: list[tuple[int, int]] = []
        self.counts = {k: 0 for k in FORGE_KINDS}
        self.counts["heard"] = 0

    def start(self):
        self.next = self.clock() + self.interval

    def receive(self, frame, from_peer=None, rssi=0):
        self.counts["heard"] += 1
        if len(frame) < 8 + 12 or not frame[1] & W.F_AUTH:
            return False
        body = len(frame) - W.STAMP_LEN - W.TAG_LEN
        st = struct.unpack(">I", frame[body:body + 4])[0] & 0x3FFFFFFF
        if st > self.stamp:
            self.stamp = st
        t = frame[0] & 0x0F
        if t == W.DATA and body >= W.DATA_HDR + 1:
            self._keep(self.data, bytes(frame))
            self.ids.append(struct.unpack(">IH", frame[8:14]))
            del self.ids[:-64]
        elif t == W.DIGEST:
            self._keep(self.digests, bytes(frame))
        return False

    def _keep(self, lst: list[bytes], f: bytes) -> None:
        lst.append(f)
        del lst[:-16]

    def _tag(self) -> bytes:
        return bytes(self.rng.getrandbits(8) for _ in range(W.TAG_LEN))

    def _trailer(self, stamp: int | None = None) -> bytes:
        return struct.pack(">I", (self.stamp if stamp is None else stamp) & 0x3FFFFFFF) + self._tag()

    def _some_ids(self, k: int) -> list[tuple[int, int]]:
        r = self.rng
        out = [self.ids[r.randrange(len(self.ids))] for _ in range(min(k, len(self.ids)))]
        while len(out) < k:
            out.append((r.randrange(1, 1 << 32), r.randrange(1 << 16)))
        return out

    def forge(self) -> tuple[str, bytes]:
        r = self.rng
        kind = FORGE_KINDS[self.i % len(FORGE_KINDS)]
        self.i += 1
        if kind == "payload_altered" and not self.data:
            kind = "random_data_bad_tag"
        if kind == "stamp_altered" and not self.data:
            kind = "untagged_data"
        if kind == "digest_altered" and not self.digests:
            kind = "forged_digest"
        me = self.node_id
        if kind == "random_data_bad_tag":
            # a made-up message, or a real id with other words, with a guessed tag
            origin, seq = self._some_ids(1)[0] if r.random() < 0.5 else (r.randrange(1, 1 << 32), r.randrange(1 << 16))
            payload = b"FORGED" + bytes(r.getrandbits(8) for _ in range(26))
            f = W.encode_data(origin, seq, payload, sender=me, hop_limit=128)
            f = bytes([f[0], f[1] | W.F_AUTH]) + f[2:] + self._trailer()
        elif kind == "payload_altered":
            g = bytearray(self.data[r.randrange(len(self.data))])
            body = len(g) - W.STAMP_LEN - W.TAG_LEN
            i = r.randrange(W.DATA_HDR, body)
            g[i] ^= 1 << r.randrange(8)
            g[2] = 0
            g[14:16] = b"\0\0"
            f = bytes(g)
        elif kind == "stamp_altered":
            # a genuine frame made to look fresh: its stamp set to the newest heard
            g = bytearray(self.data[r.randrange(len(self.data))])
            body = len(g) - W.STAMP_LEN - W.TAG_LEN
            g[body:body + 4] = struct.pack(">I", self.stamp + 1)
            g[14:16] = b"\0\0"
            f = bytes(g)
        elif kind == "untagged_data":
            origin, seq = self._some_ids(1)[0]
            f = W.encode_data(origin, seq, b"UNTAGGED" + bytes(24), sender=me)
        elif kind == "forged_digest":
            ids = self._some_ids(1 + r.randrange(12))
            f = W.encode_digest(me, ids, summary=r.getrandbits(30), live=len(ids) + 5,
                                span_ms=200_000, ages_ms=[r.randrange(600, 100_000) for _ in ids])
            f = bytes([f[0], f[1] | W.F_AUTH]) + f[2:] + self._trailer()
        elif kind == "forged_request":
            ids = self._some_ids(1 + r.randrange(20))
            f = W.encode_request(me, ids)
            f = bytes([f[0], f[1] | W.F_AUTH]) + f[2:] + self._trailer()
        elif kind == "digest_altered":
            g = bytearray(self.digests[r.randrange(len(self.digests))])
            g[8] ^= 0x01  # summary
            f = bytes(g)
        else:  # truncated_tag: a genuine-looking frame cut short of its tag
            origin, seq = self._some_ids(1)[0]
            f = W.encode_data(origin, seq, b"SHORT", sender=me)
            f = bytes([f[0], f[1] | W.F_AUTH]) + f[2:] + self._trailer()[:W.STAMP_LEN + 3]
        self.counts[kind] += 1
        return kind, f

    def tick(self):
        now = self.clock()
        while now - self.next >= 0:
            self.next += self.interval
            _kind, f = self.forge()
            self.send(f, None)

    def next_deadline(self):
        return max(0, self.next - self.clock())

    def stats(self):
        return dict(self.counts)


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


class Truth:
    """Ground truth: every publish and every delivery, checked as it happens."""

    def __init__(self, rp: ResilienceParams, n: int, bad: dict[int, str]):
        self.rp = rp
        self.n = n
        self.bad = bad
        self.max_age_us = rp.max_message_age_ms * 1000
        self.window_us = rp.config().auth_window_ms * 1000
        self.published: dict[int, tuple[int, bytes, int, int]] = {}  # id -> (node, payload, t_us, k)
        self.first: dict[tuple[int, int], int] = {}  # (k, node) -> t_us of first delivery
        self.in_boot: dict[tuple[int, int], int] = {}  # (k, node) -> first boot > 0 it came in
        self.boot_seen: dict[tuple[int, int], set[int]] = {}  # (node, boot) -> ids delivered
        self.forged: list[dict] = []
        self.replayed: list[dict] = []
        self.deliveries = 0
        self.redelivered_after_reboot = 0
        self.by_tx = {"honest": 0, "replayer": 0, "forger": 0}
        self.tx = {"honest": 0, "replayer": 0, "forger": 0}
        self.tx_kind = {"data": 0, "digest": 0, "request": 0}
        self.air_us = {"honest": 0, "replayer": 0, "forger": 0}
        self.stale_replays = 0
        self.fresh_replays = 0
        self.first_sent: dict[bytes, int] = {}  # DIGEST/REQUEST body -> first t_us on air
        self.boots: dict[int, int] = {}  # node -> last boot number
        self.boot_at: dict[int, int] = {}  # node -> t_us of its last boot
        self.nodes: dict[int, Any] = {}  # node -> its Gossip (or actor) of the current boot
        self.now = 0
        # what became of attackers' frames at honest receivers: (attacker, type, outcome) -> n
        self.rx: dict[tuple[str, str, str], int] = {}

    def who(self, v: int) -> str:
        return self.bad.get(v, "honest")

    def on_publish(self, k: int, v: int, mid: int, payload: bytes, t: int) -> None:
        self.published[mid] = (v, bytes(payload), t, k)

    def on_boot(self, v: int, boot: int, g: Any, t: int) -> None:
        self.boots[v] = boot
        self.boot_at[v] = t
        self.nodes[v] = g

    def true_net_time(self, t: int) -> int:
        """The mesh's clock at t (every honest node started at NET_TIME0 at 0
        and none runs ahead of it), 64 ms units."""
        return NET_TIME0 + t // (W.NET_UNIT_MS * 1000)

    _OUTCOMES = ("bad_tag", "malformed", "stale", "duplicates", "expired", "forgotten",
                 "rate_limited")

    def rx_wrap(self, txv: int, u: int, g: Any, frame: bytes, a: bytes, rssi: int) -> bool:
        """Receive an attacker's frame at u, and note what the core did with it."""
        if u in self.bad:
            return g.receive(frame, a, rssi)
        before = [getattr(g, k) for k in self._OUTCOMES]
        r = g.receive(frame, a, rssi)
        if r:
            what = "delivered"
        else:
            for k, b in zip(self._OUTCOMES, before, strict=True):
                if getattr(g, k) != b:
                    what = k
                    break
            else:
                if len(frame) >= 8 and struct.unpack(">I", frame[4:8])[0] == g.node_id:
                    what = "own_sender"  # dropped unread as the medium's echo of our own frame
                elif (frame[0] & 0x0F) != W.DATA:
                    what = "processed"
                else:
                    what = "ignored"
        key = (self.bad[txv], W.TYPES.get(frame[0] & 0x0F, "other"), what)
        self.rx[key] = self.rx.get(key, 0) + 1
        return r

    def on_deliver(self, v: int, boot: int, m: Any, t: int, tx: int) -> None:
        self.deliveries += 1
        src = self.who(tx)
        self.by_tx[src] += 1
        mid = m.id
        pub = self.published.get(mid)
        rec = {"node": v, "boot": boot, "id": mid, "t_ms": t / 1000.0, "via": src, "via_node": tx}
        if pub is None or pub[1] != m.payload():
            self.forged.append(rec)
            return
        seen = self.boot_seen.setdefault((v, boot), set())
        age = t - pub[2]
        if mid in seen or age > self.max_age_us:
            g = self.nodes.get(v)
            lag = None
            if g is not None and g.net_time() >= 0:
                lag = (self.true_net_time(t) - g.net_time()) * W.NET_UNIT_MS
            self.replayed.append(dict(
                rec, why="twice in one boot" if mid in seen else "older than max_message_age_ms",
                true_age_ms=age / 1000.0, core_age_ms=m.age_ms, node_clock_lag_ms=lag,
                booted_at_ms=self.boot_at.get(v, 0) / 1000.0))
        seen.add(mid)
        key = (pub[3], v)
        if key not in self.first:
            self.first[key] = t
        elif boot > 0 and key not in self.in_boot:
            self.redelivered_after_reboot += 1
        if boot > 0:
            self.in_boot.setdefault(key, boot)

    def on_tx(self, v: int, frame: bytes, air: int, t: int) -> None:
        self.now = t
        who = self.who(v)
        self.tx[who] += 1
        self.air_us[who] += air
        typ = frame[0] & 0x0F
        if who == "honest":
            self.tx_kind[W.TYPES.get(typ, "data")] += 1
            if typ != W.DATA and frame[1] & W.F_AUTH:
                self.first_sent.setdefault(bytes(frame), t)
            return
        if who != "replayer":
            return
        if typ == W.DATA and len(frame) >= 14:
            origin, seq = struct.unpack(">IH", frame[8:14])
            pub = self.published.get(W.message_id(origin, seq))
            old = pub is not None and t - pub[2] > self.max_age_us
        else:
            t0 = self.first_sent.get(bytes(frame))
            old = t0 is not None and t - t0 > self.window_us
        if old:
            self.stale_replays += 1
        else:
            self.fresh_replays += 1


def _nest(d: dict[tuple[str, str, str], int]) -> dict[str, dict[str, dict[str, int]]]:
    out: dict[str, dict[str, dict[str, int]]] = {}
    for (a, b, c), v in sorted(d.items()):
        out.setdefault(a, {}).setdefault(b, {})[c] = v
    return out


def run(rp: ResilienceParams, progress=None) -> dict:
    """One run of the scenario; the result as a JSON-able dict."""
    t_wall = time.perf_counter()
    cfg = rp.config()
    phases = rp.phases()
    traffic: list[tuple[int, str]] = []  # (t_ms, phase)
    for name, a, b in phases:
        m = rp.messages_per_phase
        for i in range(m):
            traffic.append((a + (b - a) * i // max(m - 1, 1), name))
    sp = SimParams(nodes=rp.nodes, topology="rgg", degree=rp.degree, loss=rp.loss,
                   radio="espnow", messages=len(traffic), seed=rp.seed,
                   downtime_ms=rp.downtime_ms,
                   partition_start_ms=rp.partition_start_ms,
                   partition_ms=rp.partition_start_ms + rp.partition_for_ms,
                   settle_ms=0, start_ms=0, txq_limit=rp.txq_limit)
    sc = build_scenario(sp)
    topo = sc.topo
    n = topo.n
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

    truth = Truth(rp, n, bad)
    actors: dict[int, Any] = {}
    for v, kind in bad.items():
        if kind == "replayer":
            def mk_r(v_, nid, clock, rand, send):
                return Replayer(v_, nid, clock, rand, send, delays_ms=rp.replay_delays_ms,
                                every=rp.replay_every)
            actors[v] = mk_r
        else:
            def mk_f(v_, nid, clock, rand, send):
                return Forger(v_, nid, clock, rand, send, interval_ms=rp.forge_interval_ms,
                              seed=rp.seed)
            actors[v] = mk_f

    def payload(k: int) -> bytes:
        return (b"msg %05d phase %s " % (k, traffic[k][1].encode())).ljust(32, b".")

    live = truth.nodes

    def on_publish(k: int, v: int, mid: int, pl: bytes, t: int) -> None:
        truth.now = t
        truth.on_publish(k, v, mid, pl, t)

    hooks = Hooks(key=NETWORK_KEY, config=cfg, net_time0=NET_TIME0, time_save_ms=rp.time_save_ms,
                  actors=actors, payload=payload, on_publish=on_publish,
                  on_deliver=truth.on_deliver, on_boot=truth.on_boot, on_tx=truth.on_tx,
                  rx_watch=set(bad), rx_wrap=truth.rx_wrap)
    eng = Engine(sc, STRATEGIES["rumor"], hooks)
    res = eng.run(progress)
    res.pop("_latencies", None)
    wall = time.perf_counter() - t_wall

    # -- ground truth ---------------------------------------------------------------
    down_at_end = {v for t, v in sc.reboots if t + rp.downtime_ms * 1000 > sc.end_us}
    by_k = {k: (v, t) for _mid, (v, _p, t, k) in truth.published.items()}
    expected = delivered = 0
    per_phase: dict[str, list[int]] = {name: [0, 0] for name, _a, _b in phases}
    lat: list[float] = []
    worst: list[tuple[float, int]] = []
    missing: list[dict] = []
    for k in range(len(traffic)):
        if k not in by_k:
            continue
        s, t0 = by_k[k]
        got = exp = 0
        for v in range(n):
            if v == s or v in bad or v in down_at_end or comp[v] != comp[s] or comp[s] < 0:
                continue
            exp += 1
            t = truth.first.get((k, v))
            if t is not None:
                got += 1
                lat.append((t - t0) / 1000.0)
            elif len(missing) < 50:
                missing.append({"message": k, "phase": traffic[k][1], "node": v,
                                "source": s, "node_rebooted": any(u == v for _t, u in sc.reboots)})
        expected += exp
        delivered += got
        per_phase[traffic[k][1]][0] += got
        per_phase[traffic[k][1]][1] += exp
        worst.append((got / exp if exp else 1.0, k))
    lat.sort()
    worst.sort()
    rebooted = [v for _t, v in sc.reboots]
    # recovery: the messages published while a node was down, which only its
    # new boot can have delivered
    rec_exp = rec_got = 0
    for t_down, v in sc.reboots:
        t_up = t_down + rp.downtime_ms * 1000
        for k, (s, t0) in by_k.items():
            if t_down <= t0 < t_up and v != s and comp[v] == comp[s] and v not in down_at_end:
                rec_exp += 1
                rec_got += (k, v) in truth.in_boot
    ct = res["core_totals"]
    adv_stats = {kind: live[v].stats() for v, kind in bad.items()}
    bad_replays = [r for r in truth.replayed if r["via"] == "replayer"]
    out: dict[str, Any] = {
        "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(rp).items()},
        "config": cfg.to_dict(),
        "definitions": DEFINITIONS,
        "topology": {"nodes": n, "mean_degree": round(topo.mean_degree(), 2),
                     "main_component": len(sc.main),
                     "honest_in_main": len(honest_main),
                     "attackers": {kind: {"node": v, "degree": len(topo.adj[v]),
                                          "x": round(topo.x[v], 3)} for v, kind in bad.items()},
                     "cross_links": sum(1 for v in range(n) for u in topo.adj[v]
                                        if v < u and (topo.x[v] >= 0.5) != (topo.x[u] >= 0.5)),
                     "side_sizes": [sum(1 for v in honest_main if topo.x[v] < 0.5),
                                    sum(1 for v in honest_main if topo.x[v] >= 0.5)]},
        "publishers": sorted(pubs),
        "phases": [{"name": a, "first_ms": b, "last_ms": c, "messages": rp.messages_per_phase}
                   for a, b, c in phases],
        "reboots": [{"t_ms": t / 1000.0, "node": v} for t, v in sc.reboots],
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
        "forged_deliveries": len(truth.forged),
        "replayed_deliveries": len(truth.replayed),
        "replayed_deliveries_via_replayer": len(bad_replays),
        "replayed_examples": truth.replayed[:10],
        "forged_examples": truth.forged[:10],
        "deliveries": truth.deliveries,
        "deliveries_via": truth.by_tx,
        "redelivered_after_reboot": truth.redelivered_after_reboot,
        "published_while_down": {"expected": rec_exp, "delivered_after_reboot": rec_got},
        "rebooted_nodes": len(rebooted),
        "replayer_sent": {"stale": truth.stale_replays, "fresh": truth.fresh_replays},
        "attackers": adv_stats,
        "attacker_frames_at_receivers": _nest(truth.rx),
        "core_totals": ct,
        "transmissions": {"total": sum(truth.tx.values()),
                          "by": truth.tx, "honest_by_type": truth.tx_kind,
                          "airtime_ms_by": {k: round(v / 1000.0, 1) for k, v in truth.air_us.items()}},
        "tx_per_message": round(truth.tx["honest"] / max(1, len(truth.published)), 1),
        "txq_dropped": res["txq_dropped"],
        "airtime_per_node": res["airtime_per_node"],
        "sim_ms": res["sim_ms"],
        "events": res["events"],
        "wall_s": round(wall, 2),
    }
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
    tot["attacker_frames_at_receivers"] = _nest(rx)
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


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--out", type=click.Path(dir_okay=False), default="bench/resilience.json",
              show_default=True, help="Write the result here (JSON).")
@click.option("--nodes", type=click.IntRange(min=20), default=200, show_default=True)
@click.option("--seeds", default="1-10", show_default=True, help="Seeds: 1-10 or 1,4,7.")
@click.option("--loss", type=click.FloatRange(0.0, 0.9), default=0.3, show_default=True)
@click.option("--markdown", "md", is_flag=True, help="Also print the tables as Markdown.")
def main(out: str, nodes: int, seeds: str, loss: float, md: bool) -> None:
    """Run the resilience scenario (faults + replayer + forger) and check the targets."""
    rp = ResilienceParams(nodes=nodes, loss=loss)
    console = Console(stderr=True)
    sl = seed_list(seeds)
    console.print(f"resilience: {nodes} nodes, {rp.end_ms // 1000} s simulated per seed, seeds {seeds}")

    def tell(r: dict) -> None:
        console.print(f"  seed {r['params']['seed']}: delivery {r['delivery_ratio']:.3%}, "
                      f"forged {r['forged_deliveries']}, replayed {r['replayed_deliveries']} "
                      f"({r['wall_s']:.1f} s)")

    rep = run_many(rp, sl, tell)
    rep["machine"] = platform.machine()
    rep["python"] = platform.python_version()
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
    for name, ok in rep["total"]["targets"].items():
        con.print(f"- {'met' if ok else 'MISSED'}: {name}")
    if md:
        print(markdown(rep))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(rep, indent=2, sort_keys=True) + "\n")
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
