"""Every private copy of a shared constant agrees with its one definition.

MicroPython inlines only a module's own const()s, so the engine's modules,
the radio adapters and config.py keep copies (`_DATA_HDR = const(16)`) of
what wire.py (frame layout), ticks.py (tick arithmetic), counters.py
(counter indices), ring.py (slot state bits) and netclock.py (clock states)
define.  A copy is a module-level `_NAME = const(v)` (or `_NAME = v`) whose
NAME is one of those definitions' names; config.py's copies are public
(DATA_HDR...), as other code imports them.  The simulator's copies are
checked too, wherever they are in its package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUMOR = ROOT / "firmware" / "rumor"
SIM = ROOT / "host_tools" / "rumor_host" / "sim"
REFERENCES = ("wire", "ticks", "counters", "ring", "netclock")
ALIASES = {"T_DATA": "DATA"}  # names copies go by elsewhere
PUBLIC_COPIES = ("config",)  # modules whose copies are public names


def _module_ints(tree: ast.Module, env: dict[str, int] | None = None) -> dict[str, int]:
    """NAME -> value of the module-level int assignments (const() or plain)."""
    out: dict[str, int] = {}
    scope = dict(env or {})
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)):
            continue
        v = node.value
        if isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id == "const":
            v = v.args[0]
        try:
            val = eval(compile(ast.Expression(v), "<const>", "eval"), {"__builtins__": {}}, scope)
        except Exception:
            continue
        if isinstance(val, int) and not isinstance(val, bool):
            name = node.targets[0].id
            out[name] = val
            scope[name] = val
    return out


def reference() -> dict[str, tuple[str, int]]:
    """Public NAME -> (defining module, value)."""
    ref: dict[str, tuple[str, int]] = {}
    for mod in REFERENCES:
        for name, val in _module_ints(ast.parse((RUMOR / f"{mod}.py").read_text())).items():
            if name.startswith("_") or not name.isupper():
                continue
            if name in ref and ref[name][1] != val:
                raise AssertionError(f"{name} means {ref[name][1]} in {ref[name][0]}.py "
                                     f"and {val} in {mod}.py: copies could not be checked")
            ref.setdefault(name, (mod, val))
    return ref


def check_source(path: str, src: str, ref: dict[str, tuple[str, int]]) -> tuple[int, list[str]]:
    """(copies checked, one line per copy that disagrees) for one module."""
    n = 0
    bad = []
    mod = Path(path).stem
    for name, val in _module_ints(ast.parse(src)).items():
        if not name.startswith("_") and mod not in PUBLIC_COPIES:
            continue  # its own public name (console.VERSION is not wire.VERSION)
        key = ALIASES.get(name.lstrip("_"), name.lstrip("_"))
        if key not in ref:
            continue
        n += 1
        home, want = ref[key]
        if val != want:
            bad.append(f"{path}: {name} = {val:#x}, but {home}.{key} = {want:#x}")
    return n, bad


def _files() -> list[Path]:
    return sorted(RUMOR.glob("*.py")) + sorted(SIM.rglob("*.py"))


def test_every_copy_matches_its_definition():
    ref = reference()
    per_file: dict[str, int] = {}
    bad: list[str] = []
    for p in _files():
        n, b = check_source(str(p.relative_to(ROOT)), p.read_text(), ref)
        per_file[p.stem] = per_file.get(p.stem, 0) + n
        bad += b
    assert not bad, "\n".join(bad)
    # the copies are really found (a checker that sees none passes nothing)
    for mod in ("gossip", "relay", "antientropy", "netclock", "message", "radio_lora", "config",
                "counters"):
        assert per_file.get(mod, 0) > 0, f"no copies found in {mod}.py: {per_file}"


def test_a_wrong_copy_is_caught():
    ref = reference()
    src = ("from micropython import const\n_DATA_HDR = const(17)\n_DUPLICATES = const(5)\n"
           "_MASK = const(0x3FFFFFFF)\n_T_DATA = 2\nOTHER = const(3)\nVERSION = 7\n")
    n, bad = check_source("fake.py", src, ref)
    assert n == 4
    assert len(bad) == 2 and "DATA_HDR" in bad[0] and "T_DATA" in bad[1], bad


def test_counter_names_follow_their_indices():
    ref = _module_ints(ast.parse((RUMOR / "counters.py").read_text()))
    tree = ast.parse((RUMOR / "counters.py").read_text())
    names = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                 and isinstance(n.targets[0], ast.Name) and n.targets[0].id == "NAMES")
    idx = {k: v for k, v in ref.items() if k.isupper() and not k.startswith("_")}
    assert sorted(idx.values()) == list(range(len(names)))
    for k, v in idx.items():
        assert names[v] == k.lower(), (k, v, names[v])


@pytest.mark.parametrize("mod", ["wire"])
def test_reference_has_the_layout(mod):
    # the names the engine's copies rely on exist in the reference
    ref = reference()
    for name in ("DATA_HDR", "DIGEST_ENTRY", "AGE_SHIFT", "VT_DATA", "O_AGE", "F_ECHO", "MASK",
                 "HALF", "DUPLICATES", "UNSENDABLE", "SYNCED", "F_RELAYS", "NEIGHBOUR_LEN",
                 "O_NEIGHBOURS", "RESENT", "COVER", "WATCH"):
        assert name in ref, name
    # version 2 (the digests' neighbour lists): docs/wire.md's byte 0 values
    assert ref["VERSION"][1] == 2
    assert (ref["VT_DATA"][1], ref["VT_DIGEST"][1], ref["VT_REQUEST"][1]) == (0x21, 0x22, 0x23)
    assert ref["O_AGE"][1] == 14 and ref["O_NEIGHBOURS"][1] == 3 and ref["F_RELAYS"][1] == 0x08
