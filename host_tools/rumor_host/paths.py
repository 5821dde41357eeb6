"""Where the project's files are, from an editable install or a checkout."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
BENCH = ROOT / "bench"


def tool(name: str) -> str:
    """An executable installed beside this Python (the venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"`{name}` not found: run `make setup`")
    return found


def micropython_env(*paths: Path) -> dict[str, str]:
    """Environment for a unix-port `micropython` that imports from paths
    (".frozen" first: asyncio and friends are frozen into the port)."""
    env = dict(os.environ)
    env["MICROPYPATH"] = os.pathsep.join([".frozen", *map(str, paths)])
    return env
