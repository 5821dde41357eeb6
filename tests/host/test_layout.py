"""One idea per room (issue 9): no file of the core over 600 lines, no
function in firmware/ or host_tools/ over 100."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_CORE_FILE = 600
MAX_FUNCTION = 100


def long_files(root: Path = ROOT) -> list[str]:
    out = []
    for p in sorted((root / "firmware" / "rumor").glob("*.py")):
        n = p.read_text().count("\n")
        if n > MAX_CORE_FILE:
            out.append(f"{p.relative_to(root)}: {n} lines")
    return out


def long_functions(root: Path = ROOT) -> list[str]:
    out = []
    for base in ("firmware", "host_tools"):
        for p in sorted((root / base).rglob("*.py")):
            for node in ast.walk(ast.parse(p.read_text(), str(p))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    n = (node.end_lineno or node.lineno) - node.lineno + 1
                    if n > MAX_FUNCTION:
                        out.append(f"{p.relative_to(root)}:{node.lineno} {node.name}(): {n} lines")
    return out


def test_no_core_file_over_600_lines():
    assert not long_files(), "\n".join(long_files())


def test_no_function_over_100_lines():
    assert not long_functions(), "\n".join(long_functions())


def test_the_checks_see_a_long_function_and_a_long_file(tmp_path):
    core = tmp_path / "firmware" / "rumor"
    core.mkdir(parents=True)
    (tmp_path / "host_tools").mkdir()
    body = "".join(f"    x{i} = {i}\n" for i in range(100))
    (core / "big.py").write_text("def f():\n" + body + "\n" * 600)
    (core / "ok.py").write_text("def g():\n    return 1\n")
    assert long_files(tmp_path) == ["firmware/rumor/big.py: 701 lines"]
    assert long_functions(tmp_path) == ["firmware/rumor/big.py:1 f(): 101 lines"]
