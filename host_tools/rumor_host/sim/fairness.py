"""`python -m rumor_host.sim.fairness` (`make fairness`): the scenario lives
in scenarios/fairness.py; this module keeps the old name importable and
runnable."""

from __future__ import annotations

from .scenarios.fairness import FairnessParams, Watch, main, markdown, rich_table, run, run_case

__all__ = ["FairnessParams", "Watch", "main", "markdown", "rich_table", "run", "run_case"]

if __name__ == "__main__":
    main()
