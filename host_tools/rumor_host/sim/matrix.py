"""A sweep's matrix: named cells (simulator parameters) x seeds x strategies,
read from a TOML file (bench/matrix.toml is the public one).

    seeds = [1, 2, 3]
    strategies = ["flood", "managed-flood", "seed", "rumor"]

    [defaults]                 # SimParams fields every cell starts from
    messages = 50

    [[cell]]
    name = "espnow-rgg-n20-d5-l0.1"
    nodes = 20
    degree = 5
    loss = 0.1

A cell takes any field of SimParams (nodes, topology, degree, loss, radio,
sf, messages, payload, interval_ms, settle_ms, ...), and may set its own
`seeds` and `strategies`.  `publish_every_s = T` makes the traffic "every
node publishes once per T seconds": one message every T/nodes seconds from a
random node, `messages` of them (the simulator draws each message's source
at random; it has no per-node schedule).

Strategies the simulator does not have are kept in the matrix and skipped,
with a line saying so (`Matrix.skipped`), so a matrix can name a baseline
before it exists.  Anything else wrong (an unknown key, a bad value, a
duplicate name) is a MatrixError naming the cell and the key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (pyproject installs tomli there)
    import tomli as tomllib

from .engine import SimParams
from .strategies import STRATEGIES

_TOP_KEYS = {"seeds", "strategies", "defaults", "cell", "title"}
_CELL_EXTRA = {"name", "seeds", "strategies", "publish_every_s"}


class MatrixError(ValueError):
    pass


@dataclass(frozen=True)
class Task:
    """One simulator run: one strategy on one cell and seed."""

    cell: str
    seed: int
    strategy: str
    params: dict  # SimParams keyword arguments, seed included
    code: str = ""  # fingerprint of the simulator and core sources (sweep.code_fingerprint)

    @property
    def key(self) -> str:
        blob = json.dumps([self.params, self.code], sort_keys=True).encode()
        return f"{self.cell}|{self.seed}|{self.strategy}|{hashlib.sha1(blob).hexdigest()[:10]}"

    def cost(self) -> float:
        """A rough relative run time, to start the longest first."""
        p = self.params
        deg = p.get("degree", 10.0) if p.get("topology", "rgg") == "rgg" else 4.0
        if p.get("topology") == "clusters":
            deg = p.get("nodes", 100) / 2
        c = p.get("nodes", 100) * p.get("messages", 100) * max(deg, 1.0)
        if self.strategy == "seed":
            c *= 8  # tens of unicast frames per node per message
        if p.get("radio") == "lora":
            c *= 2
        return c


@dataclass
class Cell:
    name: str
    params: dict
    seeds: list[int]
    strategies: list[str]


@dataclass
class Matrix:
    title: str
    cells: list[Cell]
    skipped: dict[str, list[str]] = field(default_factory=dict)  # strategy -> cells

    def tasks(self, code: str = "") -> list[Task]:
        out = []
        for c in self.cells:
            for seed in c.seeds:
                for s in c.strategies:
                    if s in STRATEGIES:
                        out.append(Task(c.name, seed, s, dict(c.params, seed=seed), code))
        return out

    def skip_lines(self) -> list[str]:
        known = ", ".join(STRATEGIES)
        return [f"skipping strategy {s!r} (in {len(cells)} cell(s)): this simulator has no such "
                f"strategy (it has {known})" for s, cells in self.skipped.items()]


_FIELDS = {f.name: f for f in dataclasses.fields(SimParams)}


def _check_seeds(v: Any, where: str) -> list[int]:
    if not isinstance(v, list) or not v or not all(isinstance(s, int) and not isinstance(s, bool)
                                                   for s in v):
        raise MatrixError(f"{where}: seeds must be a non-empty list of integers, got {v!r}")
    return list(dict.fromkeys(v))


def _check_strategies(v: Any, where: str) -> list[str]:
    if not isinstance(v, list) or not v or not all(isinstance(s, str) and s for s in v):
        raise MatrixError(f"{where}: strategies must be a non-empty list of names, got {v!r}")
    return list(dict.fromkeys(v))


def _params(raw: dict, where: str) -> dict:
    out = {}
    for k, v in raw.items():
        if k not in _FIELDS:
            raise MatrixError(f"{where}: unknown key {k!r} (simulator parameters: "
                              f"{', '.join(_FIELDS)}; also {', '.join(sorted(_CELL_EXTRA))})")
        out[k] = v
    return out


def _cell(raw: Any, i: int, defaults: dict, seeds: list[int], strategies: list[str]) -> Cell:
    if not isinstance(raw, dict):
        raise MatrixError(f"cell {i + 1}: must be a table")
    name = raw.get("name")
    if not isinstance(name, str) or not name or "|" in name:
        raise MatrixError(f"cell {i + 1}: needs a name (a string without '|')")
    where = f"cell {name!r}"
    params = dict(defaults)
    params.update(_params({k: v for k, v in raw.items() if k not in _CELL_EXTRA}, where))
    every = raw.get("publish_every_s")
    if every is not None:
        if isinstance(every, bool) or not isinstance(every, (int, float)) or every <= 0:
            raise MatrixError(f"{where}: publish_every_s must be a positive number, got {every!r}")
        params["interval_ms"] = round(1000.0 * every / params.get("nodes", 100), 3)
    if "seed" in params:
        raise MatrixError(f"{where}: give seeds = [...], not seed")
    try:
        p = SimParams(**params)
        p.check()
    except (TypeError, ValueError) as e:
        raise MatrixError(f"{where}: {e}") from None
    if p.topology == "rgg" and p.degree >= p.nodes:
        raise MatrixError(f"{where}: degree {p.degree} must be below nodes {p.nodes}")
    return Cell(name, params,
                _check_seeds(raw["seeds"], where) if "seeds" in raw else seeds,
                _check_strategies(raw["strategies"], where) if "strategies" in raw else strategies)


def load_matrix(path: str | Path) -> Matrix:
    """Read and check a matrix file.  MatrixError (one line) if it is bad."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as e:
        raise MatrixError(f"{path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise MatrixError(f"{path}: not valid TOML: {e}") from None
    return parse_matrix(data, str(path))


def parse_matrix(data: dict, where: str = "matrix") -> Matrix:
    bad = set(data) - _TOP_KEYS
    if bad:
        raise MatrixError(f"{where}: unknown top-level key(s) {', '.join(sorted(bad))} "
                          f"(valid: {', '.join(sorted(_TOP_KEYS))})")
    seeds = _check_seeds(data.get("seeds", [1]), where)
    strategies = _check_strategies(data.get("strategies", list(STRATEGIES)), where)
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise MatrixError(f"{where}: [defaults] must be a table")
    defaults = _params(defaults, f"{where} [defaults]")
    raw_cells = data.get("cell", [])
    if not isinstance(raw_cells, list) or not raw_cells:
        raise MatrixError(f"{where}: no [[cell]] tables")
    cells = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_cells):
        c = _cell(raw, i, defaults, seeds, strategies)
        if c.name in seen:
            raise MatrixError(f"{where}: two cells named {c.name!r}")
        seen.add(c.name)
        cells.append(c)
    skipped: dict[str, list[str]] = {}
    for c in cells:
        for s in c.strategies:
            if s not in STRATEGIES:
                skipped.setdefault(s, []).append(c.name)
    return Matrix(str(data.get("title", where)), cells, skipped)
