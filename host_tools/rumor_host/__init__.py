"""Rumor host tools: flash, deploy, inject, logs, swarm, simulate, report.

The host Python API (docs/host-api.md):

    from rumor_host import Board, Mesh, BoardError
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Board", "BoardError", "Mesh", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from rumor_host.board import Board, BoardError, Mesh


def __getattr__(name: str) -> Any:
    # imported on first use: `python -m rumor_host.medium` and the simulator
    # need neither pyserial nor the firmware's console module
    if name in ("Board", "BoardError", "Mesh"):
        from rumor_host import board

        return getattr(board, name)
    raise AttributeError(f"module 'rumor_host' has no attribute {name!r}")
