"""The event queue: a heap of (time us, sequence, kind, node, arg).

Ties at one time are broken by the order events were scheduled (the
sequence number), so a run is a pure function of its parameters.  The
loop pops events in order and hands each to the handler its kind names in
a table (`Engine.handlers()`), h11-style: what happens for each kind lives
in one function, the loop itself knows nothing about radios or nodes.

Kinds:

- PUBLISH  arg None, node = message index k: the scenario's traffic
- TICK     arg = boot epoch: a node's next_deadline() has come
- TX_TRY   arg = boot epoch: the node's radio tries to start its next frame
           (carrier sense, duty-cycle budget)
- TX_END   arg = the Tx on air: deliver it to those who heard it, ACK/retry
- DOWN, UP churn: a node loses power, comes back with a fresh engine
- HEAL, CUT the partition ends, begins
- SAVE     arg = boot epoch: a node writes its network clock to flash
- RELAY    arg = boot epoch: managed flooding: the earliest of the node's
           held frames has waited its Meshtastic delay (managed.py)

An event carrying a boot epoch that is no longer the node's is stale (it was
scheduled before a reboot) and is dropped by its handler.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from functools import partial
from itertools import count
from typing import Any

PUBLISH, TICK, TX_TRY, TX_END, DOWN, UP, HEAL, CUT, SAVE, RELAY = range(10)
KINDS = ("publish", "tick", "tx_try", "tx_end", "down", "up", "heal", "cut", "save", "relay")

_push = heapq.heappush
_pop = heapq.heappop

Handler = Callable[[int, int, Any], None]  # (t_us, node, arg)


class EventLoop:
    """The simulated clock (`now`, us) and the heap of what happens next.

    `at()` schedules an event; the hot paths (a node's radio and deadline,
    thousands of times a simulated second) push the same tuple themselves,
    `loop.push((t, next(loop.seq), kind, v, arg))`, through C-level callables
    only: the heap push bound to this heap and the sequence counter."""

    __slots__ = ("heap", "push", "seq", "now", "steps")

    def __init__(self) -> None:
        self.heap: list[tuple[int, int, int, int, Any]] = []
        self.push = partial(_push, self.heap)
        self.seq = count(1)  # the tie-break: events at one time run in the order scheduled
        self.now = 0  # us; what every node's clock reads
        self.steps = 0  # events handled

    def at(self, t: int, kind: int, v: int, arg: Any) -> None:
        """Schedule `kind` for node (or message) v at t us."""
        self.push((t, next(self.seq), kind, v, arg))

    def run(self, handlers: Sequence[Handler], end_us: int,
            progress: Callable[[float], None] | None = None) -> None:
        """Hand every event up to end_us to handlers[kind], in order; the
        first event after end_us ends the run (it is not handled)."""
        heap = self.heap
        pop = _pop
        steps = self.steps
        next_report = 0
        report_every = max(end_us // 200, 1)
        while heap:
            t, _s, kind, v, arg = pop(heap)
            if t > end_us:
                break
            self.now = t
            steps += 1
            if progress is not None and t >= next_report:
                progress(t / end_us)
                next_report = t + report_every
            handlers[kind](t, v, arg)
        self.steps = steps
        if progress is not None:
            progress(1.0)
