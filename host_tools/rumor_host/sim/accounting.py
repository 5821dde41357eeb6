"""What a run counts: frames, bytes, airtime (per node and in all), the
channel's losses, the cores' own counters across reboots, and the first
delivery of every message at every node.

The Ledger is filled while the run goes (by the engine, the channel and the
node hosts) and turned into the result dict at the end (`result`), with
metrics.py's delivery and latency figures, the per-node airtime summary and,
on a duty-cycled radio, the check that no node exceeded its budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rumor import wire as W

from .metrics import run_metrics
from .scenario import Scenario

# EU868's duty cycle is a fraction of any one hour of airtime
DUTY_WINDOW_US = 3_600_000_000

# the cores' counters summed over every boot of every node ("core_totals")
CORE_TOTALS = ("delivered", "duplicates", "suppressed", "answered", "requests_out", "digests_out",
               "forgotten", "evicted", "expired", "hop_limited", "malformed", "bad_tag", "stale",
               "rate_limited", "quota_evicted", "resent")

_T_DATA = W.DATA
_T_DIGEST = W.DIGEST

# the run's counters, all of them integers (the channel and the node hosts
# increment theirs in place)
COUNTERS = ("frames", "data", "digest", "request", "retries", "bytes", "airtime_us",
            "ack_airtime_us", "collided", "lost", "unacked", "duty_waits", "txq_dropped",
            "cad_busy", "cad_forced", "relays_cancelled")


class Ledger:
    """The books of one run."""

    def __init__(self, n: int, messages: int, duty: float | None):
        self.ctr: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.air = [0] * n  # us on air of every node (MAC retries included, ACKs not)
        # per node (start us, airtime us) of every frame, for the duty-cycle check
        self.txlog: list[list[tuple[int, int]]] = [[] for _ in range(n)] if duty else []
        self.duty = duty
        # first delivery of message k at node v, us (-1: never); the source's
        # entry is its publish time
        self.first = [[-1] * n for _ in range(messages)]
        self.id_to_k: dict[int, int] = {}  # message id -> k, set at publish
        self.retired_dups = 0  # duplicates counted by engines of boots that ended
        self.retired: dict[str, int] = {}  # CORE_TOTALS of boots that ended

    def on_air(self, v: int, frame: bytes, att: int, air: int, t: int) -> None:
        """Node v put frame on air at t for air us (att: its MAC retry number)."""
        ctr = self.ctr
        ctr["frames"] += 1
        if att:
            ctr["retries"] += 1
        typ = frame[0] & 15
        if typ == _T_DATA:
            ctr["data"] += 1
        elif typ == _T_DIGEST:
            ctr["digest"] += 1
        else:
            ctr["request"] += 1
        ctr["bytes"] += len(frame)
        ctr["airtime_us"] += air
        self.air[v] += air
        if self.duty:
            self.txlog[v].append((t, air))

    def retire(self, g: Any) -> None:
        """An engine's boot ended (its node went down): keep its counters."""
        st = g.stats()
        self.retired_dups += st.get("duplicates", 0)
        _add_core(self.retired, st)

    def result(self, sc: Scenario, engines: Sequence[Any], steps: int, memory: int,
               sources: list[int], keep_first: bool, end_us: int | None = None) -> dict:
        """The run's result dict (see metrics.py for the delivery figures);
        end_us: when the run stopped (None: the scenario's end)."""
        if end_us is None:
            end_us = sc.end_us
        n = len(self.air)
        final = [g.stats() for g in engines]  # (an Actor's stats hold none of the core's counters)
        stats: dict[str, Any] = {
            "sim_ms": end_us / 1000.0,
            "events": steps,
            "duplicates": self.retired_dups + sum(st.get("duplicates", 0) for st in final),
            "memory_bytes": memory,
            "duty_cycle_max": max(self.air) / end_us if end_us else 0.0,
            "duty_cycle_mean": sum(self.air) / n / end_us if end_us else 0.0,
        }
        stats.update(self.ctr)
        out = run_metrics(sc, self.first, sources, stats)
        totals = dict(self.retired)
        for st in final:
            _add_core(totals, st)
        out["core_totals"] = totals
        out["airtime_per_node"] = airtime_summary(self.air, end_us)
        out["txq_dropped"] = self.ctr["txq_dropped"]
        if keep_first:
            out["_first"] = self.first
        if self.duty:
            cap = 3600.0 * 1e6 * self.duty
            out["duty_budget"] = duty_budget_check(self.txlog, self.duty, cap, end_us)
        return out


def _add_core(totals: dict[str, int], st: dict[str, int]) -> None:
    for key, val in st.items():
        if key in CORE_TOTALS:
            totals[key] = totals.get(key, 0) + val


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


def _worst_window(log: Sequence[tuple[int, int]], w: int) -> int:
    """Most airtime of one node's frames (start, air) starting within w us."""
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
    return best


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
        best = _worst_window(log, window_us)
        if best > worst_win:
            worst_win = best
            worst_win_node = v
        worst_60 = max(worst_60, _worst_window(log, 60_000_000))
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
