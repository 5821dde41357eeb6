"""The discrete-event engine: one real Gossip per node, a heap of events.

Time is an integer number of microseconds; each node's clock() returns it in
ms (the core masks it to 30 bits, as on the ESP32).  Each node gets its own
random.Random(...).getrandbits.  The engine hands every frame from
on_forward to the node's radio queue, models the channel (radio.py), calls
receive() on the neighbours that hear a frame, and calls tick() at
next_deadline() (re-asked after every publish, tick and receive that can
move it).

Events: PUBLISH (traffic), TICK (a node's deadline), TX_TRY (a node's radio
tries to start its next frame: carrier sense, duty-cycle budget), TX_END
(the frame has been on air: deliver it, ACK/retry), DOWN/UP (churn), CUT and
HEAL (the partition begins and ends), SAVE (a node writes its network clock
to flash).  Ties are broken by insertion order, and every random draw comes
from a generator seeded from SimParams.seed, so a run is a pure function of
its parameters.

Hooks (optional, for the fault and fairness scenarios of resilience.py and
fairness.py) give every node a network key, replace the strategy's Config,
put non-Gossip actors (an attacker) on chosen nodes, model the network clock
kept across reboots, and report publishes, deliveries (with the boot they
happened in and the node whose transmission carried them) and transmissions.
A run without hooks draws the same random numbers as before they existed.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rumor import Config, Gossip
from rumor.radio_lora import DutyCycle

from .bounds import compute_bounds
from .metrics import run_metrics
from .radio import Radio, make_radio
from .strategies import STRATEGIES, Strategy
from .topology import Topology, make_topology

PUBLISH, TICK, TX_TRY, TX_END, DOWN, UP, HEAL, CUT, SAVE = range(9)
_T_DATA = 1
# EU868's duty cycle is a fraction of any one hour of airtime
DUTY_WINDOW_US = 3_600_000_000


@dataclass
class SimParams:
    nodes: int = 100
    topology: str = "rgg"
    degree: float = 10.0
    loss: float = 0.0
    radio: str = "espnow"
    sf: int = 7
    messages: int = 100
    seed: int = 1
    payload: int = 32  # bytes of each published payload
    interval_ms: float | None = None  # between publishes (None: 100 ms ESP-NOW, 200 airtimes LoRa)
    settle_ms: int | None = None  # simulated after the last publish (None: radio default)
    start_ms: int = 1000  # first publish
    churn: float = 0.0  # fraction of nodes that reboot (lose RAM) once during the traffic
    downtime_ms: int = 2000  # how long a rebooting node is off
    partition_ms: int = 0  # links across x = 0.5 are down from partition_start_ms until then
    partition_start_ms: int = 0  # when the partition begins (0: at the start)
    source: int | None = None  # every message from this node (None: random nodes)
    # frames a node's radio holds waiting for the air; a frame handed over when
    # it is full is dropped, as ESP-NOW's driver refuses a send when its TX
    # buffers are full (0: no limit)
    txq_limit: int = 0

    def check(self) -> None:
        if self.nodes < 2:
            raise ValueError(f"nodes must be >= 2, got {self.nodes}")
        if not 0.0 <= self.loss < 1.0:
            raise ValueError(f"loss must be in [0, 1), got {self.loss}")
        if self.messages < 1:
            raise ValueError(f"messages must be >= 1, got {self.messages}")
        if not 0 <= self.payload <= 200:
            raise ValueError(f"payload must be 0..200 bytes, got {self.payload}")
        if not 0.0 <= self.churn <= 1.0:
            raise ValueError(f"churn must be a fraction in [0, 1], got {self.churn}")
        if self.txq_limit < 0:
            raise ValueError(f"txq_limit must be >= 0, got {self.txq_limit}")
        if self.source is not None and not 0 <= self.source < self.nodes:
            raise ValueError(f"source must be a node index 0..{self.nodes - 1}, got {self.source}")
        if self.partition_ms < 0 or self.downtime_ms < 0 or self.start_ms < 0:
            raise ValueError("times must be >= 0")
        if self.partition_start_ms < 0 or (
                self.partition_start_ms and self.partition_start_ms >= self.partition_ms):
            raise ValueError(f"partition_start_ms must be in [0, partition_ms), got "
                             f"{self.partition_start_ms} (partition_ms {self.partition_ms})")


@dataclass
class Scenario:
    """Everything a run shares across strategies: graph, radio, traffic, churn."""

    params: SimParams
    topo: Topology
    radio: Radio
    rssi: list[list[int]]
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


def build_scenario(p: SimParams) -> Scenario:
    p.check()
    radio = make_radio(p.radio, p.sf)
    topo = make_topology(p.topology, p.nodes, p.degree, p.seed)
    n = topo.n
    rssi = [[int(round(-40.0 - 30.0 * math.log10(max(d, 0.01) / 0.01))) for d in nd]
            for nd in topo.ndist]
    comp_of = [-1] * n
    comp_size: list[int] = []
    for s in range(n):
        if comp_of[s] < 0:
            c = topo.component(s)
            for v in c:
                comp_of[v] = len(comp_size)
            comp_size.append(len(c))
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


class Actor:
    """A node that is not a Gossip: an attacker, a broken board.  The engine
    treats it as it treats a Gossip (receive, tick at next_deadline()), and
    `send(frame, to_peers)` (the engine's on_forward) puts its frames on air.
    It never publishes and never counts as a delivering node."""

    duplicates = 0
    frames_in = 0

    def __init__(self, v: int, node_id: int, clock: Callable[[], int],
                 rand: Callable[[int], int], send: Callable[[bytes, Any], None]):
        self.v = v
        self.node_id = node_id
        self.clock = clock
        self.rand = rand
        self.send = send

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def receive(self, frame: bytes, from_peer: bytes | None = None, rssi: int = 0) -> bool:
        return False

    def tick(self) -> None:
        pass

    def next_deadline(self) -> int:
        return 3_600_000

    def memory_bytes(self) -> int:
        return 0

    def stats(self) -> dict:
        return {}


ActorFactory = Callable[[int, int, Callable[[], int], Callable[[int], int],
                         Callable[[bytes, Any], None]], Actor]


@dataclass
class Hooks:
    """What a fault or fairness scenario adds to a run (all optional)."""

    key: bytes | None = None  # every Gossip gets this network key
    config: Config | None = None  # instead of the strategy's Config
    # every Gossip starts synced at this network time (64 ms units): a mesh
    # that has been running, each node having restored its saved clock
    net_time0: int | None = None
    # nodes save net_time() this often after each boot (node.py: 60 s) and a
    # reboot restores the value of the last save (0: nothing kept)
    time_save_ms: int = 0
    actors: dict[int, ActorFactory] = field(default_factory=dict)  # node index -> actor
    payload: Callable[[int], bytes] | None = None  # message k's payload
    on_publish: Callable[[int, int, int, bytes, int], None] | None = None  # (k, node, id, payload, t_us)
    # (node, boot, msg, t_us, transmitting node): msg is the core's reused Message
    on_deliver: Callable[[int, int, Any, int, int], None] | None = None
    on_boot: Callable[[int, int, Any, int], None] | None = None  # (node, boot, Gossip or Actor, t_us)
    on_tx: Callable[[int, bytes, int, int], None] | None = None  # (node, frame, airtime_us, t_us)
    # frames transmitted by the nodes in rx_watch are handed to their receivers
    # through rx_wrap(tx node, rx node, receiver, frame, from_peer, rssi) -> receive()'s
    # result, which must call receiver.receive(frame, from_peer, rssi) itself
    rx_watch: set[int] = field(default_factory=set)
    rx_wrap: Callable[[int, int, Any, bytes, bytes, int], bool] | None = None
    keep_first: bool = False  # return the first-delivery table (message x node, us or -1) as "_first"


class Engine:
    """One run of one strategy on a scenario."""

    def __init__(self, sc: Scenario, strategy: Strategy, hooks: Hooks | None = None):
        self.sc = sc
        self.strategy = strategy
        self.hooks = hooks
        if hooks is not None and hooks.config is not None:
            self.config = hooks.config
        else:
            self.config = strategy.config(sc.radio, sc.slot_ms, sc.maxdeg)

    # -- the run ---------------------------------------------------------------
    def run(self, progress: Callable[[float], None] | None = None) -> dict:
        sc = self.sc
        p = sc.params
        topo = sc.topo
        radio = sc.radio
        n = topo.n
        cfg = self.config
        strat = self.strategy
        adj = topo.adj
        rssi = sc.rssi
        loss = p.loss
        csma = radio.csma
        mac_ack = radio.mac_ack
        retries = radio.retries
        duty = radio.duty_cycle
        difs = radio.difs_us
        slot = radio.slot_us
        cw = radio.cw
        ack_us = radio.ack_us()
        end_us = sc.end_us
        mac = random.Random(f"mac/{p.seed}")  # channel: loss, backoff
        rand = mac.random
        randint = mac.randrange
        addr = [b"\x02\x00" + (v + 1).to_bytes(4, "big") for v in range(n)]
        side = [x >= 0.5 for x in topo.x]
        part = [p.partition_ms > 0 and p.partition_start_ms == 0]
        hk = self.hooks if self.hooks is not None else Hooks()
        key = hk.key
        actors = hk.actors
        on_deliver = hk.on_deliver
        on_tx = hk.on_tx
        save_ms = hk.time_save_ms if key is not None else 0
        saved = [-1 if hk.net_time0 is None else hk.net_time0] * n  # net clock in flash
        cur_tx = [-1]  # the node whose frame is being received
        rx_watch = hk.rx_watch if hk.rx_wrap is not None else set()
        rx_wrap = hk.rx_wrap

        heap: list = []
        push = heapq.heappush
        pop = heapq.heappop
        seq = [0]
        now = [0]  # us
        nodes: list = [None] * n
        up = [True] * n
        epoch = [0] * n
        txq: list[deque] = [deque() for _ in range(n)]
        busy = [False] * n
        tx_end = [0] * n
        rx_end = [0] * n
        rx_cur: list = [None] * n
        tick_at = [-1] * n
        # The LoRa adapter's own rolling-window budget (firmware/rumor/
        # radio_lora.py), in ms, one per node: no window of an hour holds
        # more than duty x 1 h of a node's airtime.
        dcs = [DutyCycle(duty, 3_600_000, 0) for _ in range(n)] if duty else []
        cap = 3600.0 * 1e6 * duty if duty else 0.0
        air_node = [0] * n
        air_cache: dict[int, int] = {}
        ctr = {"frames": 0, "data": 0, "digest": 0, "request": 0, "retries": 0, "bytes": 0,
               "airtime_us": 0, "ack_airtime_us": 0, "collided": 0, "lost": 0, "unacked": 0,
               "duty_waits": 0, "txq_dropped": 0}
        first = [[-1] * n for _ in range(p.messages)]
        id_to_k: dict[int, int] = {}
        src_of = list(sc.sources)
        retired_dups = [0]
        retired_frames_in = [0]
        retired: dict[str, int] = {}  # core counters of boots that ended
        txlog: list[list[tuple[int, int]]] = [[] for _ in range(n)] if duty else []

        def schedule(t, kind, v, arg):
            seq[0] += 1
            push(heap, (t, seq[0], kind, v, arg))

        # each node's ms clock has its own phase and origin, as real boards
        # booted at different times do (no two timers fire in lockstep)
        phase = random.Random(f"clock/{p.seed}")
        off = [phase.randrange(1_000_000_000) for _ in range(n)]

        def resched(v):
            g = nodes[v]
            o = off[v]
            t = ((now[0] + o) // 1000 + g.next_deadline()) * 1000 - o
            if t < now[0]:
                t = now[0]
            ta = tick_at[v]
            if ta >= now[0] and ta <= t:
                return
            tick_at[v] = t
            seq[0] += 1
            push(heap, (t, seq[0], TICK, v, epoch[v]))

        def access(v):
            return difs + randint(cw + 1) * slot if csma else 0

        txq_limit = p.txq_limit

        def enqueue(v, frame, dest):
            if txq_limit and len(txq[v]) >= txq_limit:
                ctr["txq_dropped"] += 1
                return
            txq[v].append((frame, dest, 0, False))
            if not busy[v]:
                busy[v] = True
                seq[0] += 1
                push(heap, (now[0] + access(v), seq[0], TX_TRY, v, epoch[v]))

        def make_fwd(v):
            def fwd(frame, to_peers):
                f = bytes(frame)
                if to_peers is None:
                    enqueue(v, f, -1)
                else:
                    for a in to_peers:
                        enqueue(v, f, int.from_bytes(a[2:6], "big") - 1)
            return fwd

        def make_deliver(v):
            fv = first

            if on_deliver is not None:
                hook = on_deliver

                def on_msg_hooked(m):
                    k = id_to_k.get(m.id)
                    if k is not None and fv[k][v] < 0:
                        fv[k][v] = now[0]
                    hook(v, epoch[v], m, now[0], cur_tx[0])
                return on_msg_hooked

            def on_msg(m):
                k = id_to_k.get(m.id)
                if k is not None and fv[k][v] < 0:
                    fv[k][v] = now[0]
            return on_msg

        fwds = [make_fwd(v) for v in range(n)]
        delivers = [make_deliver(v) for v in range(n)]

        save_rng = random.Random(f"save/{p.seed}")
        save_phase = [save_rng.randrange(max(save_ms, 1) * 1000) for _ in range(n)] if save_ms else []

        def boot(v: int) -> None:
            r = random.Random(f"node/{p.seed}/{v}/{epoch[v]}")
            o = off[v]
            g: Any
            if v in actors:
                g = actors[v](v, v + 1, lambda: (now[0] + o) // 1000, r.getrandbits, fwds[v])
                g.start()
                nodes[v] = g
                if hk.on_boot is not None:
                    hk.on_boot(v, epoch[v], g, now[0])
                return
            g = Gossip(cfg, v + 1, clock=lambda: (now[0] + o) // 1000, rand=r.getrandbits, key=key)
            g.on_forward(fwds[v])
            g.on_message(delivers[v])
            if strat.add_peers:
                for u in adj[v]:
                    g.add_peer(addr[u])
            g.start()
            if key is not None and saved[v] >= 0:
                # the clock the node restores from flash at boot (node.py)
                g.set_net_time(saved[v])
            nodes[v] = g
            if save_ms:
                # node.py saves the clock every time_save_ms after its boot;
                # the first boot is of a node that has been running a while
                first_save = save_phase[v] if epoch[v] == 0 else save_ms * 1000
                schedule(now[0] + first_save, SAVE, v, epoch[v])
            if hk.on_boot is not None:
                hk.on_boot(v, epoch[v], g, now[0])

        for v in range(n):
            boot(v)
        for k, t in enumerate(sc.publish_us):
            schedule(t, PUBLISH, k, None)
        for t, v in sc.reboots:
            schedule(t, DOWN, v, None)
        if p.partition_ms > 0:
            if p.partition_start_ms > 0:
                schedule(p.partition_start_ms * 1000, CUT, 0, None)
            schedule(p.partition_ms * 1000, HEAL, 0, None)
        for v in range(n):
            resched(v)
        memory = max(g.memory_bytes() for g in nodes)

        comp_of = sc.comp_of
        next_report = 0
        report_every = max(end_us // 200, 1)
        steps = 0
        while heap:
            t, _s, kind, v, arg = pop(heap)
            if t > end_us:
                break
            now[0] = t
            steps += 1
            if progress is not None and t >= next_report:
                progress(t / end_us)
                next_report = t + report_every
            if kind == TX_END:
                if arg[4] != epoch[v]:
                    continue
                frame, dest, att, was_delivered, _ep, bad = arg
                cur_tx[0] = v
                wrap = rx_wrap if v in rx_watch else None
                is_data = (frame[0] & 15) == _T_DATA
                a = addr[v]
                nb = adj[v]
                rs = rssi[v]
                pt = part[0]
                sv = side[v]
                if dest < 0:
                    for i in range(len(nb)):
                        u = nb[i]
                        if not up[u] or (pt and side[u] != sv):
                            continue
                        if bad is not None and u in bad:
                            ctr["collided"] += 1
                            continue
                        if loss and rand() < loss:
                            ctr["lost"] += 1
                            continue
                        if wrap is None:
                            if nodes[u].receive(frame, a, rs[i]) or not is_data:
                                resched(u)
                        elif wrap(v, u, nodes[u], frame, a, rs[i]) or not is_data:
                            resched(u)
                    after = t
                else:
                    u = dest
                    ok = up[u] and not (pt and side[u] != sv) and u in nb
                    if ok and bad is not None and u in bad:
                        ctr["collided"] += 1
                        ok = False
                    if ok and loss and rand() < loss:
                        ctr["lost"] += 1
                        ok = False
                    if ok and not was_delivered:
                        if wrap is None:
                            if nodes[u].receive(frame, a, rs[nb.index(u)]) or not is_data:
                                resched(u)
                        elif wrap(v, u, nodes[u], frame, a, rs[nb.index(u)]) or not is_data:
                            resched(u)
                    after = t
                    if mac_ack:
                        acked = ok
                        if ok:
                            ctr["ack_airtime_us"] += ack_us
                            after = t + ack_us
                            if loss and rand() < loss:
                                acked = False
                        else:
                            after = t + ack_us  # ACK timeout
                        if not acked:
                            if att < retries:
                                txq[v].appendleft((frame, dest, att + 1, was_delivered or ok))
                            else:
                                ctr["unacked"] += 1
                if txq[v]:
                    schedule(after + access(v), TX_TRY, v, epoch[v])
                else:
                    busy[v] = False
            elif kind == TICK:
                if arg != epoch[v] or tick_at[v] != t or not up[v]:
                    continue
                tick_at[v] = -1
                g = nodes[v]
                g.tick()
                o = off[v]
                ms = (t + o) // 1000
                tn = (ms + g.next_deadline()) * 1000 - o
                if tn <= t:
                    tn = (ms + 1) * 1000 - o
                tick_at[v] = tn
                schedule(tn, TICK, v, epoch[v])
            elif kind == TX_TRY:
                if arg != epoch[v] or not up[v]:
                    continue
                q = txq[v]
                if not q:
                    busy[v] = False
                    continue
                if csma and rx_end[v] > t:
                    schedule(rx_end[v] + access(v), TX_TRY, v, arg)
                    continue
                frame, dest, att, was_delivered = q[0]
                ln = len(frame)
                air = air_cache.get(ln)
                if air is None:
                    air = air_cache[ln] = radio.airtime_us(ln)
                if duty:
                    air_ms = (air + 999) // 1000
                    w = dcs[v].wait_ms((t // 1000) & 0x3FFFFFFF, air_ms)
                    if w > 0:
                        ctr["duty_waits"] += 1
                        schedule(t + w * 1000, TX_TRY, v, arg)
                        continue
                    if w < 0:  # longer on air than the whole budget: never sent
                        q.popleft()
                        schedule(t + access(v), TX_TRY, v, arg)
                        continue
                    # charged at its end, rounded up to the ms, as the adapter does
                    dcs[v].charge(((t + air + 999) // 1000) & 0x3FFFFFFF, air_ms)
                q.popleft()
                e = t + air
                tx_end[v] = e
                if rx_end[v] > t and rx_cur[v] is not None:
                    cur = rx_cur[v]  # half-duplex: what we were hearing is lost
                    if cur[5] is None:
                        cur[5] = {v}
                    else:
                        cur[5].add(v)
                rec = [frame, dest, att, was_delivered, epoch[v], None]
                pt = part[0]
                sv = side[v]
                for u in adj[v]:
                    if pt and side[u] != sv:
                        continue
                    if tx_end[u] > t or rx_end[u] > t:
                        if rec[5] is None:
                            rec[5] = {u}
                        else:
                            rec[5].add(u)
                        if rx_end[u] > t:
                            cur = rx_cur[u]
                            if cur is not None:
                                if cur[5] is None:
                                    cur[5] = {u}
                                else:
                                    cur[5].add(u)
                    if e > rx_end[u]:
                        rx_end[u] = e
                        rx_cur[u] = rec
                ctr["frames"] += 1
                if att:
                    ctr["retries"] += 1
                typ = frame[0] & 15
                if typ == _T_DATA:
                    ctr["data"] += 1
                elif typ == 2:
                    ctr["digest"] += 1
                else:
                    ctr["request"] += 1
                ctr["bytes"] += ln
                ctr["airtime_us"] += air
                air_node[v] += air
                if duty:
                    txlog[v].append((t, air))
                if on_tx is not None:
                    on_tx(v, frame, air, t)
                schedule(e, TX_END, v, rec)
            elif kind == PUBLISH:
                k = v
                s = src_of[k]
                if not up[s]:  # the source is rebooting: the next live node of its component
                    c = comp_of[s]
                    s2 = s
                    while True:
                        s2 = (s2 + 1) % n
                        if s2 == s or (up[s2] and comp_of[s2] == c and s2 not in actors):
                            break
                    s = s2
                    src_of[k] = s
                if hk.payload is not None:
                    payload = hk.payload(k)
                else:
                    payload = (k.to_bytes(4, "big") * (p.payload // 4 + 1))[: p.payload]
                # frames from publish() are only queued: nobody receives this
                # id before the mapping exists
                mid = nodes[s].publish(payload)
                id_to_k[mid] = k
                first[k][s] = t
                if hk.on_publish is not None:
                    hk.on_publish(k, s, mid, payload, t)
                resched(s)
            elif kind == DOWN:
                if not up[v]:
                    continue
                g = nodes[v]
                retired_dups[0] += g.duplicates
                retired_frames_in[0] += g.frames_in
                for key_, val in g.stats().items():
                    if key_ in _CORE_TOTALS:
                        retired[key_] = retired.get(key_, 0) + val
                g.stop()
                up[v] = False
                epoch[v] += 1
                txq[v].clear()
                busy[v] = False
                tick_at[v] = -1
                schedule(t + p.downtime_ms * 1000, UP, v, None)
            elif kind == UP:
                up[v] = True
                boot(v)
                resched(v)
            elif kind == HEAL:
                part[0] = False
            elif kind == CUT:
                part[0] = True
            elif kind == SAVE:
                if arg != epoch[v] or not up[v]:
                    continue
                nt = nodes[v].net_time()
                if nt >= 0:
                    saved[v] = nt
                schedule(t + save_ms * 1000, SAVE, v, arg)
        if progress is not None:
            progress(1.0)

        dups = retired_dups[0] + sum(g.duplicates for g in nodes)
        stats = {
            "sim_ms": end_us / 1000.0,
            "events": steps,
            "duplicates": dups,
            "memory_bytes": memory,
            "duty_cycle_max": max(air_node) / end_us if end_us else 0.0,
            "duty_cycle_mean": sum(air_node) / n / end_us if end_us else 0.0,
        }
        stats.update(ctr)
        out = run_metrics(sc, first, src_of, stats)
        # the engines' own counters, summed over every boot of every node
        totals: dict[str, int] = dict(retired)
        for g in nodes:
            for key_, val in g.stats().items():
                if key_ in _CORE_TOTALS:
                    totals[key_] = totals.get(key_, 0) + val
        out["core_totals"] = totals
        out["airtime_per_node"] = airtime_summary(air_node, end_us)
        out["txq_dropped"] = ctr["txq_dropped"]
        if hk.keep_first:
            out["_first"] = first
        if duty:
            out["duty_budget"] = duty_budget_check(txlog, duty, cap, end_us)
        return out


_CORE_TOTALS = ("delivered", "duplicates", "suppressed", "answered", "requests_out", "digests_out", "forgotten",
                "evicted", "expired", "hop_limited", "malformed", "bad_tag", "stale", "rate_limited",
                "quota_evicted")


def airtime_summary(air_node: Sequence[int], end_us: int, top: int = 5) -> dict:
    """Per-node airtime (every frame a node put on air, MAC retries included;
    ESP-NOW's ACKs are the receiver's and not counted): max, p99, p50, mean in
    ms and as a fraction of the simulated time, and the top nodes."""
    n = len(air_node)
    srt = sorted(air_node)
    span = end_us if end_us > 0 else 1

    def q(x: float) -> int:
        return srt[max(0, min(n - 1, math.ceil(x / 100.0 * n) - 1))] if n else 0

    mean = sum(srt) / n if n else 0.0
    vals = {"max": srt[-1] if n else 0, "p99": q(99), "p50": q(50), "mean": mean}
    out: dict[str, Any] = {}
    for name, val in vals.items():
        out[f"{name}_ms"] = round(val / 1000.0, 3)
        out[f"duty_{name}"] = round(val / span, 6)
    order = sorted(range(n), key=lambda v: (-air_node[v], v))[:top]
    out["top"] = [{"node": v, "airtime_ms": round(air_node[v] / 1000.0, 3),
                   "duty": round(air_node[v] / span, 6)} for v in order]
    return out


def duty_budget_check(txlog: Sequence[Sequence[tuple[int, int]]], duty: float, cap: float,
                      end_us: int, window_us: int = DUTY_WINDOW_US) -> dict:
    """Did any node exceed its duty-cycle budget?  From every transmission
    (start, airtime) of every node:

    - "ok": the regulation's check (EU868), which the engine's budget (the
      LoRa adapter's rolling window) must pass: in every window of
      `window_us` (1 h) a node's airtime is at most duty x window_us;
    - for information, "bucket_ok": whether a token bucket of `cap` = 1 h x
      duty, full at the start and refilled at `duty`, was ever overdrawn, and
      the worst 60 s window (a node may spend its hour's budget in a burst)."""
    worst_bucket = 0.0  # most negative balance seen (0: never overdrawn)
    worst_win = 0  # most airtime in one window_us window
    worst_win_node = -1
    worst_60 = 0
    for v, log in enumerate(txlog):
        b = cap
        last = 0
        for t, air in log:
            b = min(cap, b + (t - last) * duty)
            last = t
            b -= air
            if b < worst_bucket:
                worst_bucket = b
        for w, acc in ((window_us, "h"), (60_000_000, "m")):
            j = 0
            tot = 0
            best = 0
            for i in range(len(log)):
                tot += log[i][1]
                while log[i][0] - log[j][0] >= w:
                    tot -= log[j][1]
                    j += 1
                if tot > best:
                    best = tot
            if acc == "h":
                if best > worst_win:
                    worst_win = best
                    worst_win_node = v
            elif best > worst_60:
                worst_60 = best
    win = min(window_us, end_us) if end_us > 0 else window_us
    limit = duty * window_us
    return {
        "duty_cycle": duty,
        "window_s": window_us / 1e6,
        "bucket_ok": worst_bucket >= -1e-6,
        "window_ok": worst_win <= limit + 1e-6,
        "ok": worst_win <= limit + 1e-6,
        "worst_window_airtime_ms": round(worst_win / 1000.0, 3),
        "worst_window_node": worst_win_node,
        "window_limit_ms": round(limit / 1000.0, 3),
        "worst_window_fraction": round(worst_win / win, 6) if win else 0.0,
        "worst_60s_fraction": round(worst_60 / 60e6, 6),
    }


def simulate(params: SimParams, strategies: Sequence[str],
             progress: Callable[[str, float], None] | None = None) -> dict:
    """Run each strategy on the same scenario.  Returns the report:
    {"params", "bounds", "results": {name: metrics}, "latencies": {name: [ms...]}}
    (latencies, sorted, feed the plot; they are left out of the JSON)."""
    sc = build_scenario(params)
    results: dict[str, dict] = {}
    latencies: dict[str, list[float]] = {}
    for name in strategies:
        eng = Engine(sc, STRATEGIES[name])
        cb = None
        if progress is not None:
            def cb(f: float, name: str = name) -> None:
                progress(name, f)
        m = eng.run(cb)
        latencies[name] = m.pop("_latencies")
        m["config"] = eng.config.to_dict()
        results[name] = m
    pd = asdict(params)
    pd["radio_model"] = sc.radio.name
    return {"params": pd, "bounds": sc.bounds, "results": results, "latencies": latencies}
