"""What a fault or fairness scenario may add to a run: Hooks, and Actor for
nodes that are not a Gossip (an attacker, a broken board).

A run without hooks draws the same random numbers as a run with empty ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rumor import Config


class Actor:
    """A node that is not a Gossip: an attacker, a broken board.  The engine
    treats it as it treats a Gossip (receive, tick at next_deadline()), and
    `send(frame, to_peers)` (the engine's on_forward) puts its frames on air.
    It never publishes and never counts as a delivering node; its stats()
    are its own (none of the core's counters)."""

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
