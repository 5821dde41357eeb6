"""rumor deploy: compile the firmware for a board, copy it and board.json to
the board with mpremote, install the LoRa driver packages (mip), reset it.

On the board:  /main.py  /board.json  /rumor/*.mpy  and, on an authenticated
mesh, /rumor.key (the network key, raw bytes).
board.json is the board's file (boards/*.json) plus "node_id" and "node"
(docs/console.md).  What the board already has in its board.json is kept
where deploy is not told otherwise: the node id, the node settings, and for
a UDP radio (a virtual board) the medium's host and port.  Its rumor.key is
kept too unless --key-file replaces it or --no-key removes it.

The key never goes into board.json, onto a command line or into any output:
deploy prints its length and fingerprint (the first 4 bytes of its sha256).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import click

from rumor_host.appfile import AppFileError, app_from_options, app_options, deploy_files
from rumor_host.boards import Board, BoardError, list_boards, load_board
from rumor_host.serialio import LineReader, PortError, close_port, open_port, split_event

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
LORA_PACKAGES = {"sx1276": ["lora-sx127x", "lora-async"], "sx1262": ["lora-sx126x", "lora-async"]}


KEY_MIN = 16  # network key length, bytes (the node and the gossip core agree)
KEY_MAX = 64
KEY_FILE = "rumor.key"  # on the board
TIME_FILES = ("rumor.time", "rumor.time.tmp")  # the node's saved network clock


class DeployError(Exception):
    pass


class KeyFileError(DeployError):
    pass


_HEX = frozenset(b"0123456789abcdefABCDEF")
_TEXT = frozenset(range(0x20, 0x7F)) | frozenset(b"\t\n\r\v\f")


def check_key(key: bytes, name: str = "the network key") -> bytes:
    """key if the node will take it (firmware/rumor/node.py load_key): 16..64
    bytes, not all of them hex digits and whitespace (the node refuses those
    as hex text copied as it is).  KeyFileError otherwise."""
    if not KEY_MIN <= len(key) <= KEY_MAX:
        raise KeyFileError(f"{name} has {len(key)} bytes; a network key is {KEY_MIN}..{KEY_MAX}")
    if all(b in _HEX or b in b" \t\r\n" for b in key):
        raise KeyFileError(f"{name} is itself hex text (hex written twice?); "
                           "the node would refuse it")
    return bytes(key)


def parse_key(data: bytes, name: str = "key file") -> bytes:
    """The network key held in `data`, the contents of a key file:
    - text (printable ASCII and whitespace only): hex digits, whitespace
      ignored, 32..128 of them (16..64 bytes);
    - anything else: the raw key, 16..64 bytes.
    (A random key of 16 bytes or more is all printable ASCII with a chance
    below one in a million, so text means hex, and a typo in a hex file is
    an error rather than a different key.)  KeyFileError otherwise; its
    message never quotes the file's contents."""
    if not data:
        raise KeyFileError(f"{name} is empty")
    if all(b in _TEXT for b in data):
        digits = b"".join(data.split())
        for i, b in enumerate(digits):
            if b not in _HEX:
                raise KeyFileError(
                    f"{name} is text but not hex: non-hex character number {i + 1} "
                    f"(a key file holds {2 * KEY_MIN}..{2 * KEY_MAX} hex digits, "
                    f"or {KEY_MIN}..{KEY_MAX} raw bytes, e.g. from `head -c 32 /dev/urandom`)")
        if len(digits) % 2:
            raise KeyFileError(f"{name} has an odd number of hex digits ({len(digits)})")
        if not 2 * KEY_MIN <= len(digits) <= 2 * KEY_MAX:
            raise KeyFileError(f"{name} has {len(digits)} hex digits; a network key is "
                               f"{2 * KEY_MIN}..{2 * KEY_MAX} hex digits ({KEY_MIN}..{KEY_MAX} bytes)")
        return check_key(bytes.fromhex(digits.decode()), f"{name} (hex)")
    if not KEY_MIN <= len(data) <= KEY_MAX:
        raise KeyFileError(f"{name} holds {len(data)} bytes of binary; a raw network key is "
                           f"{KEY_MIN}..{KEY_MAX} bytes (or write {2 * KEY_MIN}..{2 * KEY_MAX} hex digits)")
    return bytes(data)


def read_key_file(path: str | os.PathLike[str]) -> bytes:
    """parse_key of the file at path; KeyFileError if unreadable or bad."""
    try:
        with open(path, "rb") as f:
            data = f.read(4 * KEY_MAX + 1024)  # room for hex with generous whitespace
            more = f.read(1)
    except OSError as e:
        raise KeyFileError(f"key file {os.fspath(path)}: {e.strerror}") from None
    if more:
        raise KeyFileError(f"key file {os.fspath(path)} is far too big for a network key "
                           f"({KEY_MIN}..{KEY_MAX} bytes)")
    return parse_key(data, f"key file {os.fspath(path)}")


def fingerprint(key: bytes) -> str:
    """What identifies a key in output: the first 4 bytes of its sha256, hex."""
    return hashlib.sha256(key).hexdigest()[:8]


def describe_key(key: bytes) -> str:
    return f"{len(key)} bytes, fingerprint {fingerprint(key)}"


def write_secret(path: Path, data: bytes) -> None:
    """Write data to path readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise DeployError(f"no `{name}` command: run `make setup`")
    return found


def compile_firmware(board: Board, out: Path) -> list[Path]:
    """mpy-cross every firmware/rumor/*.py for the board into out/rumor/;
    main.py is copied as it is (the board runs main.py, not main.mpy)."""
    files: list[Path] = []
    (out / "rumor").mkdir(parents=True, exist_ok=True)
    cross = tool("mpy-cross")
    for src in sorted((FIRMWARE / "rumor").glob("*.py")):
        dst = out / "rumor" / (src.stem + ".mpy")
        cmd = [cross, "-o", str(dst)]
        if board.mpy_arch:
            cmd.append(f"-march={board.mpy_arch}")
        cmd.append(str(src))
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise DeployError(f"mpy-cross {src.name}: {(p.stderr or p.stdout).strip().splitlines()[-1]}")
        files.append(dst)
    shutil.copy(FIRMWARE / "main.py", out / "main.py")
    files.append(out / "main.py")
    return files


def device_board(board: Board, node_id: int | None, old: dict[str, Any] | None) -> dict[str, Any]:
    """The board.json that goes on the device."""
    old = old or {}
    radio = dict(board.radio)
    if board.radio_kind == "udp":
        old_radio: dict[str, Any] = old["radio"] if isinstance(old.get("radio"), dict) else {}
        for k in ("host", "port"):
            if k in old_radio and k not in radio:
                radio[k] = old_radio[k]
    d: dict[str, Any] = {"name": board.name, "chip": board.chip, "radio": radio,
                         "pins": dict(board.pins), "config": board.config}
    nid = node_id if node_id is not None else old.get("node_id")
    if nid is not None:
        d["node_id"] = nid
    if isinstance(old.get("node"), dict):
        d["node"] = old["node"]
    return d


def mpremote(port: str, *args: str, timeout: float = 120) -> str:
    cmd = [tool("mpremote"), "connect", port, "resume", *args]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DeployError(f"mpremote {_what(args)}: no answer in {timeout:g} s") from None
    if p.returncode != 0:
        lines = (p.stderr.strip() or p.stdout.strip() or f"exit {p.returncode}").splitlines()
        raise DeployError(f"mpremote {_what(args)} failed: {lines[-1]}")
    return p.stdout


def _what(args: tuple[str, ...]) -> str:
    return " ".join(a if "\n" not in a else "<script>" for a in args[:3])


_READ_OLD = "try:\n print(open('board.json').read())\nexcept OSError:\n print('{}')\n"
# the board's network key as deploy may show it: "@@key <size> <fingerprint>"
# (size -1: none; no fingerprint if the key cannot be read or hashed)
_KEY_INFO = ("import os\ntry:\n n=os.stat('rumor.key')[6]\nexcept OSError:\n n=-1\nfp='-'\n"
             "if n>=0:\n try:\n  import hashlib,binascii\n"
             "  fp=binascii.hexlify(hashlib.sha256(open('rumor.key','rb').read()).digest()[:4]).decode()\n"
             " except Exception:\n  pass\nprint('@@key',n,fp)\n")
# What the board is, for the check before copying: "@@plat <sys.platform>",
# "@@mach <machine>" (os.uname().machine; the unix port has no os.uname) and
# "@@radio <kind> <1|0>" per radio kind: are its modules there?
_PLATFORM = ("import sys\ntry:\n import os\n m=os.uname().machine\nexcept Exception:\n"
             " m=getattr(sys.implementation,'_machine','?')\nprint('@@plat',sys.platform)\n"
             "print('@@mach',m)\n"
             "def _has(ns):\n try:\n  for n in ns:\n   a=n.split('.')\n   o=__import__(a[0])\n"
             "   for x in a[1:]:\n    o=getattr(o,x)\n  return 1\n except Exception:\n  return 0\n"
             "for k,ns in (('espnow',('network','espnow')),('lora',('machine.SPI','machine.Pin')),"
             "('udp',('socket',))):\n print('@@radio',k,_has(ns))\n")
# Is the rumor package frozen into the board's firmware (firmware/manifest.py,
# docs/firmware.md)?  Imported with only ".frozen" on sys.path (a rumor/
# folder on the filesystem comes first on the real path): "@@frozen
# <rumor.__file__>" (a frozen module's is its name in the image,
# "rumor/__init__.py") or "@@frozen -"; "@@frozen_lora 1|0": are
# micropython-lib's lora drivers frozen in too?
_FROZEN = ("import sys\nfor k in [k for k in sys.modules if k.split('.')[0] in ('rumor','lora')]:\n"
           " del sys.modules[k]\n_p=sys.path[:]\nsys.path[:]=['.frozen']\n"
           "try:\n import rumor\n print('@@frozen',rumor.__file__)\nexcept Exception:\n"
           " print('@@frozen -')\ntry:\n import lora\n print('@@frozen_lora 1')\n"
           "except Exception:\n print('@@frozen_lora 0')\nsys.path[:]=_p\n")
# Files go onto the board under temporary names (STAGE_SUFFIX, the modules in
# rumor.new/), then one script renames them into place: a deploy cut short
# (a pulled cable, a full filesystem) leaves the board's files as they were.
# What they replace is kept as NAME.old (rumor.old/) until the node boots
# with the new ones (the node removes them then: rumor.node.drop_old); if it
# does not, deploy puts them back (_ROLLBACK).
STAGE_SUFFIX = ".new"
OLD_SUFFIX = ".old"
_TREE = ("import os\ndef _x(p):\n try:\n  os.stat(p)\n  return 1\n except OSError:\n  return 0\n"
         "def _rmtree(d):\n for e in os.ilistdir(d):\n  p=d+'/'+e[0]\n"
         "  if e[1]==0x4000:\n   _rmtree(p)\n  else:\n   os.remove(p)\n os.rmdir(d)\n")
# make an empty rumor.new/, and take away what an earlier cut deploy staged
_PREPARE = (_TREE + "if _x('rumor.new'):\n _rmtree('rumor.new')\n"
            "for f in os.listdir():\n if f.endswith('.new'):\n  os.remove(f)\nos.mkdir('rumor.new')\n")


# NAME -> NAME.old (an older NAME.old goes first); a folder too
_KEEP = ("def _rm(p):\n try:\n  os.remove(p)\n except OSError:\n  _rmtree(p)\n"
         "def _keep(n):\n if _x(n+'.old'):\n  _rm(n+'.old')\n if _x(n):\n  os.rename(n,n+'.old')\n")


def _commit_script(names: list[str], gone: tuple[str, ...], modules: bool) -> str:
    """The script that puts the staged files in place: rumor/ becomes
    rumor.old/ and rumor.new/ rumor/, each NAME becomes NAME.old and NAME.new
    NAME, and each file in gone becomes gone.old.  It prints "@@committed"."""
    s = _TREE + _KEEP
    if modules:
        s += "_keep('rumor')\nos.rename('rumor.new','rumor')\n"
    s += "for n in %r:\n _keep(n)\n os.rename(n+%r,n)\n" % (names, STAGE_SUFFIX)
    s += "for n in %r:\n _keep(n)\nprint('@@committed')\n" % (gone,)
    return s


def _rollback_script(names: list[str], gone: tuple[str, ...]) -> str:
    """Undo _commit_script (names may include "rumor"): each NAME.old back
    as NAME; a NAME the board did not have before goes.  "@@rolledback"."""
    return (_TREE + _KEEP + "for n in %r:\n if _x(n+'.old'):\n  if _x(n):\n   _rm(n)\n"
            "  os.rename(n+'.old',n)\n elif n not in %r and _x(n):\n  _rm(n)\n"
            "print('@@rolledback')\n" % ([*names, *gone], gone))


def _remove_script(names: tuple[str, ...]) -> str:
    return ("import os\nfor f in %r:\n try:\n  os.remove(f)\n except OSError:\n  pass\n"
            % (names,))


class BoardState:
    """What deploy reads from a board before copying anything."""

    def __init__(self, out: str):
        self.key: tuple[int, str | None] = (-1, None)  # key size (-1: none), fingerprint
        self.platform = self.machine = ""
        self.radios: dict[str, bool] = {}
        self.frozen = ""  # rumor.__file__ of the package frozen into the firmware, if it is
        self.frozen_lora = False
        rest: list[str] = []
        for line in out.splitlines():
            f = line.split()
            if line.startswith("@@key "):
                try:
                    self.key = (int(f[1]), f[2] if len(f) > 2 and f[2] != "-" else None)
                except (ValueError, IndexError):
                    pass
            elif line.startswith("@@plat "):
                self.platform = line[7:].strip()
            elif line.startswith("@@mach "):
                self.machine = line[7:].strip()
            elif line.startswith("@@radio ") and len(f) == 3:
                self.radios[f[1]] = f[2] == "1"
            elif line.startswith("@@frozen ") and len(f) == 2:
                self.frozen = "" if f[1] == "-" else f[1]
            elif line.startswith("@@frozen_lora "):
                self.frozen_lora = f[-1] == "1"
            else:
                rest.append(line)
        try:
            old = json.loads("\n".join(rest).strip() or "{}")
        except ValueError:
            old = {}
        self.old: dict[str, Any] = old if isinstance(old, dict) else {}

    @property
    def chip(self) -> str:
        """The chip the board says it is: esp32, esp32s3, ..., unix, or ''."""
        if self.platform in ("linux", "darwin", "freebsd", "unix"):
            return "unix"
        if self.platform != "esp32":
            return ""
        mcu = self.machine.rsplit(" with ", 1)[-1].upper().replace("-", "")
        m = re.search(r"ESP32([SCHP]\d)", mcu)
        return "esp32" + m.group(1).lower() if m else "esp32"


def _board_state(out: str) -> tuple[dict[str, Any], tuple[int, str | None]]:
    st = BoardState(out)
    return st.old, st.key


_RADIO_NEEDS = {"espnow": ("ESP-NOW", "espnow module"), "lora": ("LoRa", "machine.SPI"),
                "udp": ("UDP", "socket module")}


def check_platform(board: Board, st: BoardState, port: str) -> None:
    """DeployError (one line) unless the board at port is what board names:
    its chip (sys.platform and machine) and the modules its radio needs."""
    seen = st.chip
    if not st.platform:
        raise DeployError(f"{port}: the board did not say what it is (sys.platform); "
                          "is MicroPython running on it? (--force skips this check)")
    if seen != board.chip:
        what = f"sys.platform {st.platform!r}" + (f", machine {st.machine!r}" if st.machine else "")
        fits = [b.name for b in list_boards() if b.chip == seen] if seen else []
        hint = f"; boards for it: {', '.join(fits)}" if fits else ""
        raise DeployError(f"{port}: the board plugged in is {seen or 'unknown'} ({what}), but board "
                          f"'{board.name}' is for {board.chip}{hint} (--force skips this check)")
    kind = board.radio_kind
    if kind in st.radios and not st.radios[kind]:
        name, need = _RADIO_NEEDS.get(kind, (kind, kind))
        raise DeployError(f"{port}: board '{board.name}' needs {name}, but this MicroPython "
                          f"has no {need} (--force skips this check)")


def _stage_args(stage: Path, files: list[tuple[Path, str]]) -> list[str]:
    """mpremote arguments that copy every (local, board path) of files to
    its temporary name: modules (board path rumor/...) into rumor.new/."""
    args = ["exec", _PREPARE]
    mods = [str(p) for p, dst in files if dst.startswith("rumor/")]
    if mods:
        args += ["+", "fs", "cp", *mods, ":rumor.new/"]
    for p, dst in files:
        if not dst.startswith("rumor/"):
            args += ["+", "fs", "cp", str(p), ":" + dst + STAGE_SUFFIX]
    return args


def deploy(port: str, board_name: str, node_id: int | None, mip: bool = True,
           echo: Any = print, key: bytes | None = None, remove_key: bool = False,
           force: bool = False, boot_timeout: float = 30.0,
           extra: list[tuple[Path, str]] | None = None, app: bytes | None = None,
           app_settings: dict[str, Any] | None = None, remove_app: bool = False) -> dict[str, Any]:
    """Deploy to the board at port, then wait for the node's boot event.
    key: the network key to put on it (None: keep the board's); remove_key:
    take the board's key away; force: skip the check that the board is what
    board_name says; extra: more (local file, board path) to copy; app: the
    source of app.py (compiled to app.mpy), app_settings: board.json node.app,
    remove_app: take the board's application away (docs/apps.md).
    DeployError (one line) on any failure; before the copy, nothing changed."""
    if key is not None and remove_key:
        raise DeployError("give a key or remove it, not both")
    if key is not None:
        check_key(key)
    board = load_board(board_name)
    try:
        open_port(port).close()  # a clear error for a bad or busy port, before any work
    except PortError as e:
        raise DeployError(str(e)) from None
    with tempfile.TemporaryDirectory(prefix="rumor-deploy-") as tmp:
        stage = Path(tmp)
        compiled = compile_firmware(board, stage)
        nmods = sum(1 for p in compiled if p.parent.name == "rumor")
        echo(f"compiled {nmods} modules for {board.name} "
             f"({board.mpy_arch or 'bytecode, any arch'})")
        try:
            app_files, app_gone = deploy_files(stage, board.mpy_arch, app, remove_app)
        except AppFileError as e:
            raise DeployError(str(e)) from None
        st = BoardState(mpremote(port, "exec", _READ_OLD, "+", "exec", _KEY_INFO, "+",
                                 "exec", _PLATFORM, "+", "exec", _FROZEN))
        if st.frozen:  # the firmware has the package: copy main.py and board.json only
            compiled = [p for p in compiled if p.parent.name != "rumor"]
            echo(f"rumor is frozen into the board's firmware ({st.frozen}): "
                 f"not copying the {nmods} modules")
            nmods = 0
        old_size, old_fp = st.key
        new_fp = fingerprint(key) if key is not None else None
        try:
            if force:
                echo(f"not checked that {port} is a {board.chip} (--force)")
            else:
                check_platform(board, st, port)
            files = [(p, f"rumor/{p.name}" if p.parent.name == "rumor" else p.name) for p in compiled]
            dev, placed, gone = _install(port, board, stage, st, node_id, key, remove_key,
                                         files + app_files + list(extra or []), app_gone, app_settings)
            if st.frozen:  # a rumor/ folder left from before would shadow the frozen package
                mpremote(port, "exec", _TREE + _KEEP + "_keep('rumor')\n")
                placed.append("rumor")
        except DeployError:
            _restart_quietly(port)  # mpremote stopped the node: the board runs as it was
            raise
        names = [dst for _, dst in files if not dst.startswith("rumor/") and dst != KEY_FILE]
        echo(f"copied {', '.join(names)}, board.json{f', rumor/ ({nmods} .mpy)' if nmods else ''}"
             f"{', rumor.key' if key is not None else ''} to {port}")
        if app is not None or remove_app:
            echo("application: " + ("removed (app.py/app.mpy)" if app is None else
                                    f"app.mpy, compiled from {len(app)} bytes of source"
                                    + (f", settings {json.dumps(app_settings)}"
                                       if app_settings is not None else "")))
    _say_key(echo, key, remove_key, old_size, old_fp, new_fp)
    if board.radio_kind == "lora":
        pkgs = LORA_PACKAGES.get(str(board.radio.get("modem")), [])
        if pkgs and st.frozen_lora:
            echo(f"not installing {', '.join(pkgs)}: the lora drivers are frozen into the firmware")
        elif mip and pkgs:
            for pkg in pkgs:
                mpremote(port, "mip", "install", pkg, timeout=300)
            echo(f"installed {', '.join(pkgs)} with mip")
        elif pkgs:
            echo(f"skipped mip install of {', '.join(pkgs)} (--no-mip)")
    # the unix port's machine has no reset(): what the board is decides, not the file
    soft = (st.chip or board.chip) == "unix"
    try:
        ev = reset_and_wait(port, soft, boot_timeout)
        _check_boot(ev, board, dev, port)
    except DeployError as e:
        raise DeployError(f"{e}; {_roll_back(port, placed, gone, soft, st.old)}") from None
    echo(f"node {ev.get('node')} booted {board.name} on {port}: radio {ev.get('radio')}, "
         f"mode {ev.get('mode')}, memory {ev.get('memory_bytes')} bytes, "
         f"auth {'on' if ev.get('auth') else 'off'}")
    return dev


def _install(port: str, board: Board, stage: Path, st: BoardState, node_id: int | None,
             key: bytes | None, remove_key: bool, files: list[tuple[Path, str]],
             gone_more: tuple[str, ...] = (), app_settings: dict[str, Any] | None = None
             ) -> tuple[dict[str, Any], list[str], tuple[str, ...]]:
    """Copy files, board.json and the key to temporary names on the board,
    then rename them all into place in one script (and remove gone_more);
    the board.json written, the board paths put in place and those removed
    (kept as .old until the node boots: _roll_back)."""
    dev = device_board(board, node_id, st.old)
    if app_settings is not None:
        dev["node"] = dict(dev.get("node") or {}, app=app_settings)
    (stage / "board.json").write_text(json.dumps(dev, indent=1) + "\n")
    files = [*files, (stage / "board.json", "board.json")]
    # The network clock the node saved belongs to the mesh of its key: a
    # node moved to another mesh (or to none) starts without one.
    gone: tuple[str, ...] = ()
    if key is not None:
        write_secret(stage / KEY_FILE, key)  # the staging folder goes at the end
        files.append((stage / KEY_FILE, KEY_FILE))
        if fingerprint(key) != st.key[1]:
            gone = TIME_FILES
    elif remove_key and st.key[0] >= 0:
        gone = (KEY_FILE, *TIME_FILES)
    gone = (*gone, *gone_more)
    files = list({dst: (src, dst) for src, dst in files}.values())  # one copy per board path: the last
    names = [dst for _, dst in files if not dst.startswith("rumor/")]
    modules = any(d.startswith("rumor/") for _, d in files)
    out = mpremote(port, *_stage_args(stage, files), "+", "exec", _commit_script(names, gone, modules))
    if "@@committed" not in out:
        raise DeployError(f"{port}: the files were copied but not put in place; "
                          "the board keeps its old ones (deploy again)")
    return dev, [*(["rumor"] if modules else []), *names], gone


def _roll_back(port: str, placed: list[str], gone: tuple[str, ...], soft: bool,
               old: dict[str, Any]) -> str:
    """Put back what the deploy replaced (its .old copies) and restart the
    node on it; what happened, for the end of deploy's error line."""
    try:
        out = mpremote(port, "exec", _rollback_script(placed, gone))
        if "@@rolledback" not in out:
            raise DeployError("the rollback script did not finish")
    except DeployError as e:
        return f"the previous files could not be put back ({e})"
    if not old:
        return "the board had no board.json before: its files are back as they were"
    try:
        ev = reset_and_wait(port, soft, 20.0)
    except DeployError as e:
        return f"the previous files are back, but they do not boot either ({e})"
    return f"the previous files are back: node {ev.get('node')} runs {ev.get('board')} again"


def _say_key(echo: Any, key: bytes | None, remove_key: bool, old_size: int, old_fp: str | None,
             new_fp: str | None) -> None:
    if key is not None:
        was = ("" if old_size < 0 else " (unchanged)" if new_fp == old_fp
               else f" (replaces fingerprint {old_fp or '?'})")
        echo(f"network key: {describe_key(key)}{was}")
    elif remove_key:
        echo("network key: " + (f"removed (was fingerprint {old_fp or '?'}); the node runs an open mesh"
                                if old_size >= 0 else "none (open mesh)"))
    elif old_size < 0:
        echo("network key: none (open mesh; --key-file adds one)")
    elif KEY_MIN <= old_size <= KEY_MAX:
        echo(f"network key: kept, {old_size} bytes, fingerprint {old_fp or '?'}")
    else:
        echo(f"warning: the board's rumor.key has {old_size} bytes (a key is {KEY_MIN}..{KEY_MAX}): "
             "the node will refuse to start; deploy with --key-file or --no-key")


def _check_boot(ev: dict[str, Any], board: Board, dev: dict[str, Any], port: str) -> None:
    """DeployError unless the boot event is of the board.json just copied."""
    nid = dev.get("node_id")
    if ev.get("board") != board.name or (nid is not None and ev.get("node") != f"{int(nid):08x}"):
        raise DeployError(f"{port}: the node booted as {ev.get('node')} board {ev.get('board')}, not "
                          f"{'from chip id' if nid is None else f'{int(nid):08x}'} board {board.name}: "
                          "it did not read the board.json just copied")


# raw REPL: Ctrl-C twice stops what runs, Ctrl-A enters it, Ctrl-D runs the code
_RAW_PROMPT = b"raw REPL; CTRL-B to exit\r\n>"
_EXC = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b(:.*)?$")


def _raw_run(ser: Any, code: str, timeout: float = 5.0) -> bytes:
    """Run code at the board's raw REPL without waiting for it to finish;
    what came after the code was accepted ("OK") is returned."""
    ser.write(b"\r\x03\x03")
    time.sleep(0.1)
    ser.reset_input_buffer()
    ser.write(b"\x01")
    buf = b""
    end = time.monotonic() + timeout
    while _RAW_PROMPT not in buf:
        if time.monotonic() > end:
            raise DeployError(f"{ser.port}: no raw REPL prompt in {timeout:g} s (is MicroPython running?)")
        buf += ser.read(ser.in_waiting or 1)
    ser.write(code.encode() + b"\x04")
    buf = b""
    while b"OK" not in buf:
        if time.monotonic() > end:
            raise DeployError(f"{ser.port}: the raw REPL did not take the reset command")
        buf += ser.read(ser.in_waiting or 1)
    return buf.split(b"OK", 1)[1]


def reset_and_wait(port: str, soft: bool, timeout: float = 30.0) -> dict[str, Any]:
    """Reset the board and read what it prints until the node's boot event,
    which is returned.  soft: Ctrl-D at the friendly REPL (main.py runs only
    after a soft reset from there; on the unix port it ends the process and
    the swarm starts it again); else machine.reset() from the raw REPL.
    DeployError, one line, when it crashes or stops at the REPL instead (the
    exception's last line), says a boot error, or is silent for timeout s."""
    try:
        ser = open_port(port)
    except PortError as e:
        raise DeployError(f"cannot reset: {e}") from None
    try:
        if soft:
            ser.write(b"\r\x03\x03")  # stop whatever runs
            time.sleep(0.1)
            ser.write(b"\x02")  # out of a raw REPL, if in one
            time.sleep(0.1)
            ser.reset_input_buffer()
            ser.write(b"\x04")
            rest = b""
        else:
            rest = _raw_run(ser, "import machine\nmachine.reset()")
        return _watch_boot(port, ser, rest, timeout)
    except (OSError, ValueError) as e:  # pyserial's write on a port that went away
        raise DeployError(f"{port}: reset failed: {e}") from None
    finally:
        close_port(ser)


def _watch_boot(port: str, ser: Any, first: bytes, timeout: float) -> dict[str, Any]:
    reader = LineReader(ser)
    reader._buf = first  # noqa: SLF001 - what the reset command's read already took
    end = time.monotonic() + timeout
    tb = False
    prompt_at: float | None = None
    while time.monotonic() < end:
        try:
            lines = reader.read_lines()
        except PortError:  # a native-USB board's port goes away on reset: open it again
            close_port(ser)
            ser = _reopen(port, end)
            reader = LineReader(ser)
            continue
        for ln in lines:
            ev, _, _ = split_event(ln)
            if ev is not None and ev.get("ev") == "boot":
                return ev
            if ev is not None and ev.get("ev") == "error" and ev.get("cmd") == "boot":
                raise DeployError(f"{port}: the node did not start: {ev.get('msg')}")
            text = ln.strip()
            if text.startswith("Traceback (most recent call last)"):
                tb = True
            elif tb and _EXC.match(text):
                raise DeployError(f"{port}: the node crashed at boot: {text}")
        tail = bytes(reader._buf)  # noqa: SLF001 - the REPL's prompt ends no line
        if tail.endswith(b">>> ") and prompt_at is None:
            prompt_at = time.monotonic()
        elif prompt_at is not None and time.monotonic() - prompt_at > 1.0:
            raise DeployError(f"{port}: the node stopped at the REPL without starting "
                              "(no boot event; is main.py Rumor's?)")
    raise DeployError(f"{port}: no boot event from the node in {timeout:g} s after the reset "
                      f"(`rumor logs -p {port}` shows what it prints)")


def _restart_quietly(port: str) -> None:
    """Soft-reset the board so that its node runs again after mpremote
    stopped it, without waiting for more than its boot; errors are ignored
    (the error that made deploy stop is what the user must see)."""
    with contextlib.suppress(DeployError, PortError, OSError):
        reset_and_wait(port, True, 10.0)


def _reopen(port: str, end: float) -> Any:
    while True:
        try:
            return open_port(port)
        except PortError as e:
            if time.monotonic() > end:
                raise DeployError(f"{port}: did not come back after the reset ({e})") from None
            time.sleep(0.2)


@contextlib.contextmanager
def port_lent(port: str, echo: Any = print) -> Iterator[None]:
    """Inside the block, a running `rumor logs` that holds port lets go of it
    (and takes it back after): deploy needs the port alone."""
    from rumor_host.control import lookup

    holder = lookup(port)
    if holder is None:
        yield
        return
    from rumor_host.board import Board as LiveBoard
    from rumor_host.board import BoardError as LiveBoardError

    try:
        with LiveBoard(port) as b, b.lend("rumor deploy", timeout=10.0):
            echo(f"{port} is held by rumor logs (pid {holder.pid}): it lets go of it meanwhile")
            yield
    except LiveBoardError as e:
        raise DeployError(str(e)) from None


_KEY_HELP = ("network key for an authenticated mesh: a file of 16..64 raw bytes, e.g. "
             "`head -c 32 /dev/urandom > net.key`, or a text file of 32..128 hex digits "
             "(whitespace ignored; a text file is always read as hex).  Every node of the mesh "
             "needs the same key: frames without a good tag are dropped.  It is copied to the "
             "board as rumor.key, never into board.json, and shown only as its length and "
             "fingerprint (first 4 bytes of its sha256).  Default: the board keeps the key it "
             "has, if any.")


@click.command("deploy")
@click.option("--port", "-p", required=True,
              help="the board's serial port (or a swarm pty; `auto`: the one board plugged in)")
@click.option("--board", "-b", "board_name", required=True, metavar="BOARD",
              help="a board name from `rumor boards` (boards/NAME.json), or the path of a board "
                   "file of your own (its \"name\" must match its file name, e.g. my-heltec.json "
                   "says \"name\": \"my-heltec\")")
@click.option("--node-id", default=None, help="node id (decimal or 0x hex; default: kept, else the chip's id)")
@click.option("--no-mip", is_flag=True, help="do not install the LoRa driver packages (offline)")
@click.option("--key-file", default=None, type=click.Path(dir_okay=False), metavar="PATH",
              help=_KEY_HELP)
@click.option("--no-key", is_flag=True,
              help="remove the board's network key: the node runs an open mesh again")
@click.option("--force", is_flag=True,
              help="skip the check that the board plugged in is the chip BOARD is for (sys.platform, "
                   "machine) and has the modules its radio needs")
@click.option("--boot-timeout", default=30.0, show_default=True, type=click.FloatRange(1.0, 600.0),
              metavar="S", help="how long to wait for the node's boot event after the reset")
@app_options
@click.option("--no-app", is_flag=True, help="remove the board's application (app.py/app.mpy)")
def deploy_cmd(port: str, board_name: str, node_id: str | None, no_mip: bool,
               key_file: str | None, no_key: bool, force: bool, boot_timeout: float,
               app_file: str | None, app_sets: tuple[str, ...], no_app: bool) -> None:
    """Compile the firmware for BOARD and put it on the board at PORT.

    Before copying, deploy checks that the board plugged in is what BOARD is
    for (a refused board is left as it was, its node running again); the
    files go onto the board under temporary names and are renamed into
    place at the end, so a copy cut short leaves the board's files as they
    were.  Then it resets the board and waits for the node's boot event: a
    node that crashes at boot (its exception), says a boot error or stays
    silent makes deploy fail with that one line, and the files it replaced
    (kept until the node boots with the new ones) are put back and the
    board restarted on them.

    With --key-file the node signs every frame it sends with the network key
    and drops frames that are not signed with it."""
    nid: int | None = None
    if node_id is not None:
        try:
            nid = int(node_id, 0)
        except ValueError:
            raise click.BadParameter(f"not a number: {node_id!r}", param_hint="--node-id") from None
        if not 0 <= nid <= 0xFFFFFFFF:
            raise click.BadParameter("must fit in 32 bits", param_hint="--node-id")
    if key_file is not None and no_key:
        raise click.UsageError("--key-file and --no-key exclude each other")
    if app_file is not None and no_app:
        raise click.UsageError("--app and --no-app exclude each other")
    app, app_settings = app_from_options(app_file, app_sets)
    from rumor_host.ports import resolve_port

    port = resolve_port(port)
    try:
        key = read_key_file(key_file) if key_file is not None else None
        with port_lent(port, click.echo):
            deploy(port, board_name, nid, mip=not no_mip, echo=click.echo, key=key, remove_key=no_key,
                   force=force, boot_timeout=boot_timeout, app=app, app_settings=app_settings,
                   remove_app=no_app)
    except (BoardError, DeployError) as e:
        raise click.ClickException(str(e)) from None
