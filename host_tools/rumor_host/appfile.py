"""The application file of `rumor deploy/swarm/demo --app FILE` (docs/apps.md):
read and checked on the host, so a typo is one clear line before any board
is touched, then put on the board as app.py.

`--app-set KEY=VALUE` (repeatable) fills the board.json `node.app` object the
application reads as node.settings (VALUE is JSON if it parses, else text).
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
from pathlib import Path
from typing import Any, Callable, TypeVar

import click

APP_FILE = "app.py"  # on the board (its filesystem root; a virtual board's folder)
APP_FILES = ("app.py", "app.mpy")  # what the node looks for; a stale one is removed
MAX_APP_BYTES = 64 * 1024  # far more than a board's heap takes to compile


class AppFileError(Exception):
    pass


def read_app(path: str | os.PathLike[str]) -> bytes:
    """The source of the application at path, checked: readable, UTF-8,
    valid Python, with a top-level setup(node).  AppFileError otherwise."""
    name = os.fspath(path)
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise AppFileError(f"app file {name}: {e.strerror}") from None
    if len(data) > MAX_APP_BYTES:
        raise AppFileError(f"app file {name} has {len(data)} bytes (at most {MAX_APP_BYTES}): "
                           "a board could not compile it")
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise AppFileError(f"app file {name} is not UTF-8 text") from None
    try:
        tree = ast.parse(text, name)
    except SyntaxError as e:
        raise AppFileError(f"app file {name}, line {e.lineno}: {e.msg}") from None
    if not any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == "setup"
               for n in tree.body):
        raise AppFileError(f"app file {name} has no setup(node) function "
                           "(the node calls it once the mesh runs; see docs/apps.md)")
    return data


def parse_settings(items: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """KEY=VALUE items as the node.app object; ValueError for a bad one."""
    out: dict[str, Any] = {}
    for it in items:
        k, sep, v = it.partition("=")
        if not sep or not k:
            raise ValueError(f"--app-set {it!r}: use KEY=VALUE, e.g. interval_ms=1000")
        try:
            out[k] = json.loads(v)
        except ValueError:
            out[k] = v
    return out


def put_in_folder(folder: Path, source: bytes | None) -> None:
    """A virtual board's filesystem gets the application (None: none; a
    folder reused from an earlier run loses its old one)."""
    for f in APP_FILES:
        with contextlib.suppress(FileNotFoundError):
            (folder / f).unlink()
    if source is not None:
        (folder / APP_FILE).write_bytes(source)


def deploy_files(stage: Path, arch: str | None, source: bytes | None,
                 remove: bool = False) -> tuple[list[tuple[Path, str]], tuple[str, ...]]:
    """What `rumor deploy` copies and removes for the application:
    ([(local file, board path)], board paths to remove).  The source is
    compiled with mpy-cross for the board (arch None: bytecode for any) into
    app.mpy, so the board does not compile it (that takes RAM), and the
    app.py an earlier deploy or mpremote left is removed (it would win).
    AppFileError if mpy-cross refuses it."""
    import subprocess

    from rumor_host.deploy import DeployError, tool

    if source is None:
        return [], (APP_FILES if remove else ())
    src = stage / APP_FILE
    src.write_bytes(source)
    out = stage / "app.mpy"
    try:
        cmd = [tool("mpy-cross"), "-s", APP_FILE, "-o", str(out)]
    except DeployError as e:
        raise AppFileError(str(e)) from None
    if arch:
        cmd.append(f"-march={arch}")
    p = subprocess.run([*cmd, str(src)], capture_output=True, text=True)
    if p.returncode != 0:
        lines = (p.stderr or p.stdout).strip().splitlines() or [f"exit {p.returncode}"]
        raise AppFileError(f"mpy-cross {APP_FILE}: {lines[-1]}")
    return [(out, "app.mpy")], ("app.py",)


F = TypeVar("F", bound=Callable[..., Any])


def app_options(fn: F) -> F:
    """--app FILE and --app-set KEY=VALUE, for deploy, swarm and demo."""
    fn = click.option("--app-set", "app_sets", multiple=True, metavar="KEY=VALUE",
                      help="a setting of the application (board.json node.app, node.settings "
                           "on the board), e.g. --app-set interval_ms=1000; repeatable")(fn)
    fn = click.option("--app", "app_file", default=None, type=click.Path(dir_okay=False),
                      metavar="FILE",
                      help="an application (a Python file with setup(node), docs/apps.md) the "
                           "node imports once the mesh runs, e.g. examples/apps/beacon.py")(fn)
    return fn


def app_from_options(app_file: str | None,
                     app_sets: tuple[str, ...]) -> tuple[bytes | None, dict[str, Any] | None]:
    """(source or None, settings or None) of --app/--app-set; click errors if bad."""
    try:
        settings = parse_settings(app_sets) if app_sets else None
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--app-set") from None
    try:
        source = read_app(app_file) if app_file is not None else None
    except AppFileError as e:
        raise click.ClickException(str(e)) from None
    return source, settings
