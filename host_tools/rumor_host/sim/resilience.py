"""`python -m rumor_host.sim.resilience` (`make resilience`): the scenario
lives in scenarios/resilience.py (with attackers.py and truth.py); this
module keeps the old name importable and runnable."""

from __future__ import annotations

from .scenarios.attackers import FORGE_KINDS, Forger, Replayer
from .scenarios.common import NET_TIME0, NETWORK_KEY
from .scenarios.resilience import ResilienceParams, main, markdown, rich_tables, run, run_many
from .scenarios.truth import DEFINITIONS, Truth

__all__ = ["DEFINITIONS", "FORGE_KINDS", "NET_TIME0", "NETWORK_KEY", "Forger", "Replayer",
           "ResilienceParams", "Truth", "main", "markdown", "rich_tables", "run", "run_many"]

if __name__ == "__main__":
    main()
