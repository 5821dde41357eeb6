"""The discrete-event engine: one real Gossip per node, a heap of events.

Time is an integer number of microseconds; each node's clock() returns it in
ms (the core masks it to 30 bits, as on the ESP32).  Each node gets its own
random.Random(...).getrandbits.  The engine hands every frame from
on_forward to the node's radio queue (node.py), lets the medium (channel.py)
say who hears it, calls receive() on those neighbours, and calls tick() at
next_deadline() (re-asked after every publish, tick and receive that can
move it).  The books are kept in accounting.py.

The event loop (events.py) hands each event to the handler its kind names
in `Engine.handlers()`: `_on_publish` (traffic), `_on_tick` (a node's
deadline), `_on_tx_try` (a node's radio tries to start its next frame:
carrier sense, duty-cycle budget), `_on_tx_end` (the frame has been on air:
deliver it, ACK/retry), `_on_down`/`_on_up` (churn), `_on_cut`/`_on_heal`
(the partition begins and ends), `_on_save` (a node writes its network clock
to flash).  Every random draw comes from a generator seeded from
SimParams.seed, so a run is a pure function of its parameters.

Hooks (hooks.py; optional, for the scenarios of scenarios/) give every node
a network key, replace the strategy's Config, put non-Gossip actors (an
attacker) on chosen nodes, model the network clock kept across reboots, and
report publishes, deliveries (with the boot they happened in and the node
whose transmission carried them) and transmissions.  A run without hooks
draws the same random numbers as before they existed.

The names other code imports from here (SimParams, simulate, Scenario,
build_scenario, Engine, Hooks, Actor, airtime_summary, duty_budget_check)
stay importable from this module.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from rumor import Gossip
from rumor import wire as W
from rumor.radio_lora import DutyCycle

from .accounting import CORE_TOTALS, DUTY_WINDOW_US, Ledger, airtime_summary, duty_budget_check
from .channel import Channel, Tx
from .events import (
    CUT,
    DOWN,
    HEAL,
    PUBLISH,
    RELAY,
    SAVE,
    TICK,
    TX_END,
    TX_TRY,
    UP,
    EventLoop,
    Handler,
)
from .hooks import Actor, ActorFactory, Hooks
from .lora_access import (
    AirState,
    CadBackoff,
    cad_duration_us,
    cad_listen_us,
    cad_slot_us,
    t_sym_us,
)
from .managed import PendingQueue, espnow_slot_us, lora_slot_us
from .mesh_mac import MeshtasticMac
from .node import NodeHost
from .params import SimParams
from .radio import LoRa
from .scenario import Scenario, build_scenario
from .strategies import STRATEGIES, Strategy

__all__ = ["CORE_TOTALS", "CUT", "DOWN", "DUTY_WINDOW_US", "HEAL", "PUBLISH", "RELAY", "SAVE", "TICK",
           "TX_END", "TX_TRY", "UP", "Actor", "ActorFactory", "Engine", "Hooks", "Scenario",
           "SimParams", "airtime_summary", "build_scenario", "duty_budget_check", "simulate"]

_T_DATA = W.DATA


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
        self.cur_tx = -1  # the node whose frame is being received

    # -- the run ---------------------------------------------------------------
    def run(self, progress: Callable[[float], None] | None = None) -> dict:
        self._setup()
        memory = self._start()
        end_us = self.end_us()
        self.loop.run(self.handlers(), end_us, progress)
        return self.ledger.result(self.sc, [h.g for h in self.hosts], self.loop.steps, memory,
                                  self.src_of, self.hk.keep_first, end_us)

    def end_us(self) -> int:
        """When the run stops: the scenario's end (last publish + settle), or
        for an `eventual` strategy (the seed's rounds) at least the messages'
        lifetime after the last publish, so what it would still deliver is."""
        sc = self.sc
        if not self.strategy.eventual or not sc.publish_us:
            return sc.end_us
        return max(sc.end_us, sc.publish_us[-1] + self.config.max_message_age_ms * 1000)

    def handlers(self) -> tuple[Handler, ...]:
        """The handler of each event kind, indexed by kind (events.py)."""
        table: dict[int, Handler] = {
            PUBLISH: self._on_publish, TICK: self._on_tick, TX_TRY: self._on_tx_try,
            TX_END: self._on_tx_end, DOWN: self._on_down, UP: self._on_up,
            HEAL: self._on_heal, CUT: self._on_cut, SAVE: self._on_save,
            RELAY: self._on_relay,
        }
        return tuple(table[k] for k in range(len(table)))

    def _setup(self) -> None:
        """The run's state: event loop, node hosts, medium, books."""
        sc = self.sc
        p = sc.params
        topo = sc.topo
        n = topo.n
        hk = self.hooks if self.hooks is not None else Hooks()
        self.hk = hk
        self.loop = EventLoop()
        duty = sc.radio.duty_cycle
        self.ledger = Ledger(n, p.messages, duty)
        self.hosts: list[NodeHost] = []
        radio = sc.radio
        lora = isinstance(radio, LoRa)
        cad_us = cad_duration_us(radio.sf, radio.bw_hz) if isinstance(radio, LoRa) and p.cad else 0
        self.channel = Channel(radio, p.loss, p.seed, self.hosts, self.ledger.ctr,
                               p.partition_ms > 0 and p.partition_start_ms == 0,
                               p.capture_db if lora and p.capture else None, cad_us,
                               cad_listen_us(radio.sf, radio.bw_hz) if isinstance(radio, LoRa) else 0.0,
                               t_sym_us(radio.sf, radio.bw_hz) if isinstance(radio, LoRa) else 0.0)
        # each node's ms clock has its own phase and origin, as real boards
        # booted at different times do (no two timers fire in lockstep)
        phase = random.Random(f"clock/{p.seed}")
        for v in range(n):
            # The LoRa adapter's own rolling-window budget (firmware/rumor/
            # radio_lora.py), in ms: no window of an hour holds more than
            # duty x 1 h of a node's airtime.
            dc = DutyCycle(duty, 3_600_000, 0) if duty else None
            self.hosts.append(NodeHost(self, v, phase.randrange(1_000_000_000),
                                       b"\x02\x00" + (v + 1).to_bytes(4, "big"), topo.adj[v],
                                       sc.rssi[v], topo.x[v] >= 0.5, dc))
        for h in self.hosts:
            h.nbh = [self.hosts[u] for u in h.nb]
        self._setup_mac(lora, cad_us)
        self.txq_limit = p.txq_limit
        self.src_of = list(sc.sources)
        self.key = hk.key
        self.on_deliver = hk.on_deliver
        self.on_tx = hk.on_tx
        self.rx_watch = hk.rx_watch if hk.rx_wrap is not None else set()
        self.rx_wrap = hk.rx_wrap
        self.save_ms = hk.time_save_ms if hk.key is not None else 0
        self.saved = [-1 if hk.net_time0 is None else hk.net_time0] * n  # net clock in flash
        save_rng = random.Random(f"save/{p.seed}")
        self.save_phase = ([save_rng.randrange(max(self.save_ms, 1) * 1000) for _ in range(n)]
                           if self.save_ms else [])

    def _setup_mac(self, lora: bool, cad_us: int) -> None:
        """LoRa's receivers and CAD (lora_access.py); managed flooding's
        held frames (mesh_mac.py)."""
        sc = self.sc
        p = sc.params
        radio = sc.radio
        if isinstance(radio, LoRa):
            slot = cad_slot_us(radio.sf, radio.bw_hz)
            for h in self.hosts:
                h.air = AirState(cad_us)
                if cad_us:
                    h.cad = CadBackoff(slot, p.cad_tries)
        self.mac: MeshtasticMac | None = None
        if self.strategy.mac == "meshtastic":
            if isinstance(radio, LoRa):
                slot = lora_slot_us(radio.sf, radio.bw_hz)
            else:
                slot = espnow_slot_us(sc.data_air_us, radio.difs_us, radio.slot_us, radio.cw)
            self.mac = MeshtasticMac(self, self.strategy.role, slot, radio.sf if lora else 0,
                                     p.seed)
            for h in self.hosts:
                h.pend = PendingQueue()

    def hold(self, h: NodeHost, frame: bytes) -> None:
        """NodeHost.send of managed flooding: the frame waits its delay."""
        assert self.mac is not None
        self.mac.hold(h, frame)

    def _start(self) -> int:
        """Boot every node and schedule the scenario; returns a node's memory."""
        sc = self.sc
        p = sc.params
        at = self.loop.at
        for h in self.hosts:
            self._boot(h)
        for k, t in enumerate(sc.publish_us):
            at(t, PUBLISH, k, None)
        for t, v in sc.reboots:
            at(t, DOWN, v, None)
        if p.partition_ms > 0:
            if p.partition_start_ms > 0:
                at(p.partition_start_ms * 1000, CUT, 0, None)
            at(p.partition_ms * 1000, HEAL, 0, None)
        for h in self.hosts:
            h.wake()
        return max(h.g.memory_bytes() for h in self.hosts)

    def _boot(self, h: NodeHost) -> None:
        """A fresh engine (or the scenario's actor) on node h: RAM lost."""
        v = h.v
        now = self.loop.now
        hk = self.hk
        r = random.Random(f"node/{self.sc.params.seed}/{v}/{h.epoch}")
        g: Any
        if v in hk.actors:
            g = hk.actors[v](v, v + 1, h.clock, r.getrandbits, h.forward)
            g.start()
            h.g = g
            if hk.on_boot is not None:
                hk.on_boot(v, h.epoch, g, now)
            return
        g = Gossip(self.config, v + 1, clock=h.clock, rand=r.getrandbits, key=self.key)
        g.on_forward(h.forward)
        g.on_message(h.deliver if self.on_deliver is None else h.deliver_hooked)
        if self.strategy.add_peers:
            for u in h.nb:
                g.add_peer(self.hosts[u].addr)
        g.start()
        if self.key is not None and self.saved[v] >= 0:
            # the clock the node restores from flash at boot (node.py)
            g.set_net_time(self.saved[v])
        h.g = g
        if self.save_ms:
            # node.py saves the clock every time_save_ms after its boot;
            # the first boot is of a node that has been running a while
            first_save = self.save_phase[v] if h.epoch == 0 else self.save_ms * 1000
            self.loop.at(now + first_save, SAVE, v, h.epoch)
        if hk.on_boot is not None:
            hk.on_boot(v, h.epoch, g, now)

    # -- the handlers, one per event kind ----------------------------------------
    def _on_publish(self, t: int, k: int, _arg: Any) -> None:
        """Message k of the traffic is published by its source."""
        hosts = self.hosts
        n = len(hosts)
        s = self.src_of[k]
        if not hosts[s].up:  # the source is rebooting: the next live node of its component
            comp_of = self.sc.comp_of
            c = comp_of[s]
            s2 = s
            while True:
                s2 = (s2 + 1) % n
                if s2 == s or (hosts[s2].up and comp_of[s2] == c and s2 not in self.hk.actors):
                    break
            s = s2
            self.src_of[k] = s
        hk = self.hk
        size = self.sc.params.payload
        if hk.payload is not None:
            payload = hk.payload(k)
        else:
            payload = (k.to_bytes(4, "big") * (size // 4 + 1))[:size]
        # frames from publish() are only queued: nobody receives this id
        # before the mapping exists
        h = hosts[s]
        mid = h.g.publish(payload)
        self.ledger.id_to_k[mid] = k
        self.ledger.first[k][s] = t
        if hk.on_publish is not None:
            hk.on_publish(k, s, mid, payload, t)
        h.wake()

    def _on_tick(self, t: int, v: int, epoch: int) -> None:
        """A node's deadline: tick() and ask for the next one (at least 1 ms on)."""
        h = self.hosts[v]
        if epoch != h.epoch or h.tick_at != t or not h.up:
            return  # stale: an earlier deadline replaced it, or a reboot
        h.tick_at = -1
        g = h.g
        g.tick()
        o = h.off
        ms = (t + o) // 1000
        tn = (ms + g.next_deadline()) * 1000 - o
        if tn <= t:
            tn = (ms + 1) * 1000 - o
        h.tick_at = tn
        loop = self.loop
        loop.push((tn, next(loop.seq), TICK, v, h.epoch))

    def _on_tx_try(self, t: int, v: int, epoch: int) -> None:
        """A node's radio tries to put the head of its queue on air."""
        h = self.hosts[v]
        if epoch != h.epoch or not h.up:
            return
        q = h.txq
        if not q:
            h.busy = False
            h.cad_from = -1
            return
        ch = self.channel
        loop = self.loop
        push = loop.push
        seq = loop.seq
        if h.cad is not None:
            # LoRa: listen before talk, one CAD long, then send or back off
            if h.cad_from < 0:
                h.cad_from = t
                push((t + ch.cad_us, next(seq), TX_TRY, v, epoch))
                return
            a = h.cad_from
            h.cad_from = -1
            if self._cad_defers(h, a, t):
                return
        else:
            busy_until = ch.sensed_busy(h, t)
            if busy_until:
                push((busy_until + ch.access(), next(seq), TX_TRY, v, epoch))
                return
        frame, dest, att, delivered = q[0]
        air = ch.airtime(len(frame))
        if h.dc is not None:
            w = h.duty_wait(t, air)
            if w > 0:
                self.ledger.ctr["duty_waits"] += 1
                push((t + w, next(seq), TX_TRY, v, epoch))
                return
            if w < 0:  # longer on air than the whole budget: never sent
                q.popleft()
                push((t + ch.access(), next(seq), TX_TRY, v, epoch))
                return
        q.popleft()
        tx = Tx(frame, dest, att, delivered, h.epoch)
        ch.transmit(h, tx, t, air)
        self.ledger.on_air(v, frame, att, air, t)
        if self.on_tx is not None:
            self.on_tx(v, frame, air, t)
        push((t + air, next(seq), TX_END, v, tx))

    def _cad_defers(self, h: NodeHost, a: int, t: int) -> bool:
        """The CAD h ran from a to t: True when the frame must wait (the
        adapter's backoff, or managed flooding's re-arm), False: send now."""
        busy = self.channel.cad_busy(h, a)
        ctr = self.ledger.ctr
        if self.mac is not None:
            if not busy:
                return False
            ctr["cad_busy"] += 1
            self.mac.cad_busy(h, t)
            return True
        w = h.cad.after_cad(busy, self.channel.randbits)
        if w == -1:
            return False
        ctr["cad_busy"] += 1
        if w == -2:
            ctr["cad_forced"] += 1
            return False
        self.loop.at(t + w, TX_TRY, h.v, h.epoch)
        return True

    def _on_tx_end(self, t: int, v: int, tx: Tx) -> None:
        """tx has been on air: hand it to whoever heard it; ACK or retry."""
        h = self.hosts[v]
        if tx.epoch != h.epoch:
            return  # the sender rebooted meanwhile
        self.cur_tx = v
        ch = self.channel
        wrap = self.rx_wrap if v in self.rx_watch else None
        frame = tx.frame
        is_data = (frame[0] & 15) == _T_DATA
        a = h.addr
        nbh = h.nbh
        rs = h.rssi
        if tx.dest < 0 and self.mac is not None and is_data:
            self._hand_managed(h, tx, wrap)
            after = t
        elif tx.dest < 0:
            for i in ch.hearers(h, tx):
                hu = nbh[i]
                if wrap is None:
                    if hu.g.receive(frame, a, rs[i]) or not is_data:
                        hu.wake()
                elif wrap(v, hu.v, hu.g, frame, a, rs[i]) or not is_data:
                    hu.wake()
            after = t
        else:
            ok = ch.unicast_heard(h, tx)
            if ok and not tx.delivered:
                i = h.nb.index(tx.dest)
                hu = nbh[i]
                if wrap is None:
                    if hu.g.receive(frame, a, rs[i]) or not is_data:
                        hu.wake()
                elif wrap(v, hu.v, hu.g, frame, a, rs[i]) or not is_data:
                    hu.wake()
            after = ch.acknowledge(h, tx, ok, t)
        if h.txq:
            loop = self.loop
            loop.push((after + ch.access(), next(loop.seq), TX_TRY, v, h.epoch))
        else:
            h.busy = False

    def _hand_managed(self, h: NodeHost, tx: Tx, wrap: Any) -> None:
        """A DATA broadcast under managed flooding reaches its hearers: a
        receiver's relay learns the rssi of its first copy (rx_now), and a
        copy of a known message cancels a relay still waiting."""
        frame = tx.frame
        a = h.addr
        nbh = h.nbh
        rs = h.rssi
        v = h.v
        mac = self.mac
        assert mac is not None
        for i in self.channel.hearers(h, tx):
            hu = nbh[i]
            hu.rx_now = rs[i]
            if wrap is None:
                new = hu.g.receive(frame, a, rs[i])
            else:
                new = wrap(v, hu.v, hu.g, frame, a, rs[i])
            hu.rx_now = None
            if new:
                hu.wake()
            else:
                mac.copy_heard(hu, frame)

    def _on_relay(self, t: int, v: int, epoch: int) -> None:
        """Managed flooding: a node's held frame has waited its delay."""
        if self.mac is not None:
            self.mac.on_relay(t, v, epoch)

    def _on_down(self, t: int, v: int, _arg: Any) -> None:
        """Node v loses power: its engine's counters are kept, its RAM is not."""
        h = self.hosts[v]
        if not h.up:
            return
        g = h.g
        self.ledger.retire(g)
        g.stop()
        h.up = False
        h.epoch += 1
        h.txq.clear()
        h.busy = False
        h.tick_at = -1
        h.cad_from = -1
        if h.cad is not None:
            h.cad.busy_run = 0
        if h.air is not None:
            h.air.locked = None
        if self.mac is not None:
            self.mac.reboot(h)
        self.loop.at(t + self.sc.params.downtime_ms * 1000, UP, v, None)

    def _on_up(self, t: int, v: int, _arg: Any) -> None:
        h = self.hosts[v]
        h.up = True
        self._boot(h)
        h.wake()

    def _on_heal(self, t: int, v: int, _arg: Any) -> None:
        self.channel.cut = False

    def _on_cut(self, t: int, v: int, _arg: Any) -> None:
        self.channel.cut = True

    def _on_save(self, t: int, v: int, epoch: int) -> None:
        """Node v writes its network clock to flash (restored at its next boot)."""
        h = self.hosts[v]
        if epoch != h.epoch or not h.up:
            return
        nt = h.g.net_time()
        if nt >= 0:
            self.saved[v] = nt
        self.loop.at(t + self.save_ms * 1000, SAVE, v, epoch)


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
