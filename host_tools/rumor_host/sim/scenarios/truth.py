"""Ground truth of the resilience scenario: every publish and every delivery,
checked as it happens, from what the simulator knows and the nodes don't
(who published what and when, whose transmission carried a frame); the
nodes' own counters are reported beside it, never used for it.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from rumor import wire as W
from rumor.counters import NAMES as COUNTER_NAMES

from .common import NET_TIME0

if TYPE_CHECKING:
    from .resilience import ResilienceParams

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
        self.now = t
        self.published[mid] = (v, bytes(payload), t, k)

    def on_boot(self, v: int, boot: int, g: Any, t: int) -> None:
        self.boots[v] = boot
        self.boot_at[v] = t
        self.nodes[v] = g

    def true_net_time(self, t: int) -> int:
        """The mesh's clock at t (every honest node started at NET_TIME0 at 0
        and none runs ahead of it), 64 ms units."""
        return NET_TIME0 + t // (W.NET_UNIT_MS * 1000)

    # the core counters that say why a frame was dropped, in the order they
    # are looked at, and their indices in Gossip.counters (rumor/counters.py)
    _OUTCOMES = ("bad_tag", "malformed", "stale", "duplicates", "expired", "forgotten",
                 "rate_limited")
    _AT = tuple(COUNTER_NAMES.index(k) for k in _OUTCOMES)

    def rx_wrap(self, txv: int, u: int, g: Any, frame: bytes, a: bytes, rssi: int) -> bool:
        """Receive an attacker's frame at u, and note what the core did with it."""
        if u in self.bad:
            return g.receive(frame, a, rssi)
        before = [g.counters[i] for i in self._AT]
        r = g.receive(frame, a, rssi)
        if r:
            what = "delivered"
        else:
            c = g.counters
            for k, i, b in zip(self._OUTCOMES, self._AT, before, strict=True):
                if c[i] != b:
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


def nest(d: dict[tuple[str, str, str], int]) -> dict[str, dict[str, dict[str, int]]]:
    out: dict[str, dict[str, dict[str, int]]] = {}
    for (a, b, c), v in sorted(d.items()):
        out.setdefault(a, {}).setdefault(b, {})[c] = v
    return out

