"""Rumor host tools: flash, deploy, inject, logs, swarm, simulate, report."""

__version__ = "0.1.0"
