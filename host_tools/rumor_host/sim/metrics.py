"""What a run measured, from the engine's records.

- delivery_ratio: delivered (message, node) pairs / expected pairs, where a
  message is expected at every node of its source's connected component
  (the graph with every link up) except the source;
- delivery_ratio_at_settle: the same, counting only what was delivered by
  the scenario's end (last publish + settle); it differs from
  delivery_ratio only for a strategy whose run goes on (Strategy.eventual:
  the seed's rounds, run until max_message_age_ms after the last publish);
- latency_ms_p50/p99/max over delivered pairs (publish to first delivery);
- tx_per_message: every frame put on air (data, digest, request, and each
  MAC retry) / messages; airtime_ms_per_message and bytes_per_message alike
  (airtime includes MAC ACKs on ESP-NOW);
- duplicates_per_node: data frames received for an id already known, per
  node per message;
- memory_bytes: Gossip.memory_bytes() of a node.
"""

from __future__ import annotations

import math


def percentile(sorted_vals: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an ascending list; 0 if empty."""
    if not sorted_vals:
        return 0.0
    k = max(0, min(len(sorted_vals) - 1, math.ceil(q / 100.0 * len(sorted_vals)) - 1))
    return sorted_vals[k]


def run_metrics(sc, first: list[list[int]], sources: list[int], stats: dict) -> dict:
    n = sc.topo.n
    m = len(first)
    comp_of = sc.comp_of
    expected = 0
    delivered = 0
    by_settle = 0
    cutoff = sc.end_us
    lat: list[float] = []
    for k in range(m):
        s = sources[k]
        c = comp_of[s]
        t0 = sc.publish_us[k]
        row = first[k]
        expected += sc.comp_size[c] - 1
        for v in range(n):
            if v != s and comp_of[v] == c and row[v] >= 0:
                delivered += 1
                if row[v] <= cutoff:
                    by_settle += 1
                lat.append((row[v] - t0) / 1000.0)
    lat.sort()
    r = {
        "delivery_ratio": round(delivered / expected, 6) if expected else 1.0,
        "delivery_ratio_at_settle": round(by_settle / expected, 6) if expected else 1.0,
        "latency_ms_p50": round(percentile(lat, 50), 3),
        "latency_ms_p99": round(percentile(lat, 99), 3),
        "latency_ms_max": round(lat[-1], 3) if lat else 0.0,
        "tx_per_message": round(stats["frames"] / m, 3),
        "airtime_ms_per_message": round((stats["airtime_us"] + stats["ack_airtime_us"]) / 1000.0 / m, 3),
        "duplicates_per_node": round(stats["duplicates"] / (n * m), 4),
        "memory_bytes": stats["memory_bytes"],
        # the detail behind those
        "delivered": delivered,
        "expected": expected,
        "bytes_per_message": round(stats["bytes"] / m, 1),
        "data_tx_per_message": round(stats["data"] / m, 3),
        "digest_tx_per_message": round(stats["digest"] / m, 3),
        "request_tx_per_message": round(stats["request"] / m, 3),
        "retries_per_message": round(stats["retries"] / m, 3),
        "collided_rx_per_message": round(stats["collided"] / m, 3),
        "lost_rx_per_message": round(stats["lost"] / m, 3),
        "unacked": stats["unacked"],
        "cad_busy": stats.get("cad_busy", 0),
        "cad_forced": stats.get("cad_forced", 0),
        "relays_cancelled": stats.get("relays_cancelled", 0),
        "duty_cycle_max": round(stats["duty_cycle_max"], 6),
        "duty_cycle_mean": round(stats["duty_cycle_mean"], 6),
        "duty_cycle_waits": stats["duty_waits"],
        "sim_ms": stats["sim_ms"],
        "events": stats["events"],
        "_latencies": lat,
    }
    return r
