"""The Rumor simulator: the real core (firmware/rumor/) under CPython, one
Gossip per node, on a discrete-event clock and a modelled radio.

    from rumor_host.sim import SimParams, simulate
    report = simulate(SimParams(nodes=100, topology="rgg", degree=10, loss=0.1),
                      ["flood", "rumor"])

One module per idea: radio (airtime, MAC), topology (graphs, partition, churn),
strategies (the Configs compared), engine (the event loop), bounds (reference
figures), metrics (what a run measured), plot, bench (`make bench`), cli,
resilience (`make resilience`: faults and attackers) and fairness (`make
fairness`: one node flooding).
"""

from .engine import SimParams, simulate

__all__ = ["SimParams", "simulate"]
