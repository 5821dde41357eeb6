"""rumor config: read and change a node's settings.

get      the node's `!config` answer: every Config field in force (those
         board.json's node.config sets marked), without stopping it;
set      FIELD=VALUE ...: checked against Config on the host (with the
         board's preset and radio) before anything is written, then
         board.json's node.config is rewritten through mpremote (a
         temporary file renamed over it) and the node restarted; if it
         does not come back, the old board.json is put back;
--export FILE / --import FILE: the whole board.json.  Import keeps the
         board's own node id (and a virtual board's medium port).

Through `rumor logs` when it holds the port: it lets go of the port while
mpremote works and reads it again afterwards.
"""

from __future__ import annotations

import difflib
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import click

from rumor.config import _FIELDS, Config
from rumor_host.board import Board, BoardError

FIELDS = [f[0] for f in _FIELDS]
RADIO_FIELDS = ("mtu", "broadcast")  # the node takes them from its radio, never from node.config
NODE_SETTINGS = {"level": str, "stats_interval_ms": int, "time_save_ms": int, "payload_in_events": bool}
PRESETS = ("small", "medium", "large")

_READ = "try:\n print(open('board.json').read())\nexcept OSError:\n print('{}')\n"
_RENAME = ("import os\ntry:\n os.rename('board.json.new','board.json')\nexcept OSError:\n"
           " os.remove('board.json')\n os.rename('board.json.new','board.json')\n")


class ConfigError(Exception):
    pass


def parse_items(items: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """FIELD=VALUE items -> (Config overrides, node settings); ConfigError
    naming the first bad one.  VALUE is JSON (6, true, "x") or else text."""
    cfg: dict[str, Any] = {}
    node: dict[str, Any] = {}
    for it in items:
        k, sep, v = it.partition("=")
        k = k.strip()
        if not sep or not k:
            raise ConfigError(f"{it!r}: use FIELD=VALUE")
        try:
            val: Any = json.loads(v)
        except ValueError:
            val = v
        if k.startswith("node."):
            name = k[5:]
            typ = NODE_SETTINGS.get(name)
            if typ is None:
                raise ConfigError(f"{k}: not a node setting (known: "
                                  f"{', '.join('node.' + n for n in NODE_SETTINGS)})")
            _check_setting(name, val)
            node[name] = val
        elif k in RADIO_FIELDS:
            raise ConfigError(f"{k}: the node takes it from its radio (board.json radio.{k}), "
                              "not from node.config")
        elif k not in FIELDS:
            near = difflib.get_close_matches(k, FIELDS, 1)
            raise ConfigError(f"{k}: no such Config field" + (f" (did you mean {near[0]}?)" if near else
                                                              " (rumor config get lists them)"))
        else:
            cfg[k] = val
    return cfg, node


def _check_setting(name: str, val: Any) -> None:
    from rumor.console import LEVELS

    typ = NODE_SETTINGS[name]
    if typ is bool and not isinstance(val, bool):
        raise ConfigError(f"node.{name} must be true or false, not {val!r}")
    if typ is int and (not isinstance(val, int) or isinstance(val, bool) or val < 0):
        raise ConfigError(f"node.{name} must be a number of milliseconds >= 0, not {val!r}")
    if name == "level" and val not in LEVELS:
        raise ConfigError(f"node.level must be one of {'/'.join(LEVELS)}, not {val!r}")


def check_config(preset: str, overrides: dict[str, Any], mtu: int, broadcast: bool) -> Config:
    """The Config these overrides give on a board of this preset and radio,
    as the node will build it; ConfigError with Config's own message."""
    if preset not in PRESETS:
        raise ConfigError(f"config preset {preset!r} is not one of {'/'.join(PRESETS)}")
    try:
        return getattr(Config, preset)().replace(**dict(overrides, mtu=mtu, broadcast=broadcast))
    except (ValueError, TypeError) as e:
        raise ConfigError(str(e)) from None


def check_board(d: Any, name: str) -> dict[str, Any]:
    """A whole board.json (for --import), checked as the node will read it."""
    if not isinstance(d, dict) or not isinstance(d.get("radio"), dict):
        raise ConfigError(f"{name}: not a board.json (no radio object)")
    node = d.get("node", {})
    if not isinstance(node, dict):
        raise ConfigError(f"{name}: node must be an object")
    over = node.get("config", {})
    if not isinstance(over, dict):
        raise ConfigError(f"{name}: node.config must be an object")
    for k, v in node.items():
        if k in NODE_SETTINGS:
            _check_setting(k, v)
    bad = [k for k in over if k in RADIO_FIELDS or k not in FIELDS]
    if bad:
        raise ConfigError(f"{name}: node.config has {', '.join(bad)}: not settable Config fields")
    radio = d["radio"]
    check_config(str(d.get("config", "medium")), over, int(radio.get("mtu", 250)),
                 bool(radio.get("broadcast", True)))
    return d


# -- the board's file, through mpremote -------------------------------------------------------
def _mpremote(port: str, *args: str, timeout: float = 60) -> str:
    from rumor_host.paths import tool

    try:
        p = subprocess.run([tool("mpremote"), "connect", port, "resume", *args],
                           capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ConfigError(f"{port}: mpremote: {e}") from None
    if p.returncode != 0:
        lines = (p.stderr.strip() or p.stdout.strip() or f"exit {p.returncode}").splitlines()
        raise ConfigError(f"{port}: mpremote failed: {lines[-1]}")
    return p.stdout


def read_board_json(port: str) -> dict[str, Any]:
    out = _mpremote(port, "exec", _READ)
    try:
        d = json.loads(out.strip() or "{}")
    except ValueError:
        raise ConfigError(f"{port}: the board's board.json is not valid JSON") from None
    if not isinstance(d, dict):
        raise ConfigError(f"{port}: the board's board.json is not an object")
    return d


def write_board_json(port: str, d: dict[str, Any]) -> None:
    """board.json.new, then renamed over board.json: never half a file."""
    with tempfile.TemporaryDirectory(prefix="rumor-config-") as tmp:
        f = Path(tmp) / "board.json"
        f.write_text(json.dumps(d, indent=1) + "\n")
        _mpremote(port, "fs", "cp", str(f), ":board.json.new", "+", "exec", _RENAME)


def rewrite(b: Board, change: Any, echo: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read board.json, change(old) -> new, write it, restart the node; if it
    does not start, put the old one back.  (old, boot event)."""
    with b.lend("rumor config"):
        old = read_board_json(b.port)
        new = change(old)
        if new is not None:
            write_board_json(b.port, new)
    try:
        boot = b.reset()
    except BoardError as e:
        if new is None:
            raise
        cause = str(e).split(": ", 1)[-1]
        echo(f"{b.port}: the node did not start with the new board.json ({cause}); putting the old "
             "one back", err=True)
        with b.lend("rumor config (undo)"):
            write_board_json(b.port, old)
        b.reset()
        raise ConfigError(f"{b.port}: the node did not start with the new settings ({cause}); "
                          "its old board.json is back and it runs again") from None
    return old, boot


# -- the command ------------------------------------------------------------------------------
def _get(b: Board, names: tuple[str, ...], as_json: bool) -> None:
    ev = b.config()
    cfg = ev.get("config") or {}
    over = ev.get("overrides") or {}
    bad = [n for n in names if n not in cfg]
    if bad:
        raise ConfigError(f"{bad[0]}: no such Config field (fields: {', '.join(sorted(cfg))})")
    shown = {n: cfg[n] for n in (names or sorted(cfg))}
    if as_json:
        click.echo(json.dumps({"preset": ev.get("preset"), "config": shown, "overrides": over,
                               "payload_in_events": ev.get("payload_in_events")}))
        return
    if not names:
        click.echo(f"node {ev.get('node')}: preset {ev.get('preset')}; * = set in board.json node.config")
    for k, v in shown.items():
        click.echo(f"{k}={json.dumps(v)}{'  *' if k in over else ''}")


def _set(b: Board, items: tuple[str, ...]) -> None:
    cfg_new, node_new = parse_items(items)
    if not items:
        raise ConfigError("set what? give FIELD=VALUE (e.g. fanout=6, node.level=debug)")
    ev = b.config()  # the node as it runs: preset, overrides, its radio's mtu
    cur = ev.get("config") or {}
    over = dict(ev.get("overrides") or {}, **cfg_new)
    check_config(str(ev.get("preset")), over, int(cur.get("mtu", 250)), bool(cur.get("broadcast", True)))

    def change(old: dict[str, Any]) -> dict[str, Any]:
        # checked again against the file itself: the preset is the file's
        node = dict(old.get("node") or {})
        merged = dict(node.get("config") or {}, **cfg_new)
        radio = old.get("radio") or {}
        check_config(str(old.get("config", "medium")), merged, int(cur.get("mtu", radio.get("mtu", 250))),
                     bool(cur.get("broadcast", True)))
        node["config"] = merged
        node.update(node_new)
        return dict(old, node=node)

    rewrite(b, change, click.echo)
    now = b.config()
    changed = ", ".join(f"{k}={json.dumps(v)}" for k, v in {**cfg_new, **{"node." + k: v for k, v in node_new.items()}}.items())
    was = ", ".join(f"{k} was {json.dumps(cur.get(k))}" for k in cfg_new if cur.get(k) != cfg_new[k])
    click.echo(f"{b.port}: node {now.get('node')} restarted with {changed}" + (f" ({was})" if was else ""))


def _export(b: Board, path: str) -> None:
    got: dict[str, Any] = {}

    def keep(old: dict[str, Any]) -> None:
        got.update(old)

    rewrite(b, keep, click.echo)
    text = json.dumps(got, indent=1) + "\n"
    if path == "-":
        click.echo(text, nl=False)
        return
    try:
        Path(path).write_text(text)
    except OSError as e:
        raise ConfigError(f"{path}: cannot write: {e.strerror}") from None
    click.echo(f"{b.port}: board.json of node {got.get('node_id', '?')} written to {path}")


def _import(b: Board, path: str) -> None:
    try:
        d = json.loads(Path(path).read_text())
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    except ValueError:
        raise ConfigError(f"{path}: not valid JSON") from None
    check_board(d, path)  # before the board is touched

    def change(old: dict[str, Any]) -> dict[str, Any]:
        new = dict(d)
        if "node_id" in old:
            new["node_id"] = old["node_id"]  # never two nodes with one id
        else:
            new.pop("node_id", None)
        o_radio = old.get("radio") if isinstance(old.get("radio"), dict) else {}
        if new["radio"].get("kind") == "udp" and o_radio:
            new["radio"] = dict(new["radio"], **{k: o_radio[k] for k in ("host", "port") if k in o_radio})
        return new

    rewrite(b, change, click.echo)
    click.echo(f"{b.port}: board.json from {path} written (node id and medium port kept); node restarted")


@click.command("config")
@click.option("--port", "-p", required=True, help="the board's serial port, a swarm pty, or auto")
@click.option("--export", "export_to", default=None, metavar="FILE",
              help="write the board's whole board.json to FILE (- for stdout)")
@click.option("--import", "import_from", default=None, metavar="FILE",
              type=click.Path(dir_okay=False), help="put FILE on the board as its board.json "
              "(checked first; the board keeps its node id)")
@click.option("--json", "as_json", is_flag=True, help="get: as JSON")
@click.option("--timeout", default=10.0, show_default=True, type=click.FloatRange(0.5, 120))
@click.argument("action", required=False, type=click.Choice(["get", "set"]))
@click.argument("items", nargs=-1)
def config_cmd(port: str, export_to: str | None, import_from: str | None, as_json: bool,
               timeout: float, action: str | None, items: tuple[str, ...]) -> None:
    """Read or change the node's settings on PORT.

    \b
    rumor config -p P get [FIELD ...]          every Config field in force (or those)
    rumor config -p P set FIELD=VALUE ...      e.g. fanout=6 mode=flood node.level=debug
    rumor config -p P --export board.json      the whole board.json
    rumor config -p P --import board.json

    set checks the values against Config (with the board's preset and radio)
    before anything is written, rewrites board.json's node.config and restarts
    the node; a node that does not start with them gets its old board.json
    back.  Settings of the node itself: node.level, node.stats_interval_ms,
    node.payload_in_events, node.time_save_ms."""
    given = sum(x is not None for x in (action, export_to, import_from))
    if given != 1:
        raise click.UsageError("give one of: get, set FIELD=VALUE ..., --export FILE, --import FILE")
    if action == "get" and any("=" in i for i in items):
        raise click.UsageError("get takes field names; to change them: set FIELD=VALUE")
    if action == "set":
        try:
            parse_items(items)  # bad input: one line before the board is touched
        except ConfigError as e:
            raise click.ClickException(str(e)) from None
    try:
        with Board(port, timeout=timeout) as b:
            if action == "get":
                _get(b, items, as_json)
            elif action == "set":
                _set(b, items)
            elif export_to is not None:
                _export(b, export_to)
            else:
                assert import_from is not None
                _import(b, import_from)
    except (BoardError, ConfigError) as e:
        raise click.ClickException(str(e)) from None
