"""The Rumor simulator: the real core (firmware/rumor/) under CPython, one
Gossip per node, on a discrete-event clock and a modelled radio.

    from rumor_host.sim import SimParams, simulate
    report = simulate(SimParams(nodes=100, topology="rgg", degree=10, loss=0.1),
                      ["flood", "rumor"])

One module per idea (docs/simulator.md): params and scenario (what a run
does), topology, radio (airtime, MAC in numbers), strategies (the Configs
compared), events (the event loop), engine (its handlers, simulate()), node
(a board: engine, power, radio queue, duty cycle), channel (access,
collisions, half duplex, loss, ACK/retry), accounting (counters, airtime,
first deliveries), metrics and bounds (what a run measured, reference
figures), hooks (what scenarios add), scenarios/ (resilience, attackers,
ground truth, fairness), report, plot, cli, bench (`make bench-sim`), matrix
and sweep (`rumor sim sweep`).
"""

from .engine import SimParams, simulate

__all__ = ["SimParams", "simulate"]
