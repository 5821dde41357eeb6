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

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from rumor_host.boards import Board, BoardError, load_board
from rumor_host.serialio import PortError, open_port

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
# make /rumor, and remove .py files left there (they would win over the .mpy)
_PREPARE = ("import os\ntry:\n os.mkdir('rumor')\nexcept OSError:\n pass\n"
            "for f in os.listdir('rumor'):\n if f.endswith('.py'):\n  os.remove('rumor/'+f)\n")


def _remove_script(names: tuple[str, ...]) -> str:
    return ("import os\nfor f in %r:\n try:\n  os.remove(f)\n except OSError:\n  pass\n"
            % (names,))


def _board_state(out: str) -> tuple[dict[str, Any], tuple[int, str | None]]:
    """The board's board.json and (key size or -1, key fingerprint or None)
    from the output of _READ_OLD + _KEY_INFO."""
    key: tuple[int, str | None] = (-1, None)
    rest: list[str] = []
    for line in out.splitlines():
        if line.startswith("@@key "):
            f = line.split()
            try:
                key = (int(f[1]), f[2] if len(f) > 2 and f[2] != "-" else None)
            except (ValueError, IndexError):
                pass
        else:
            rest.append(line)
    try:
        old = json.loads("\n".join(rest).strip() or "{}")
    except ValueError:
        old = {}
    return (old if isinstance(old, dict) else {}), key


def deploy(port: str, board_name: str, node_id: int | None, mip: bool = True,
           echo: Any = print, key: bytes | None = None, remove_key: bool = False) -> dict[str, Any]:
    """Deploy to the board at port.  key: the network key to put on it
    (None: keep the board's); remove_key: take the board's key away."""
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
        files = compile_firmware(board, stage)
        echo(f"compiled {len(files) - 1} modules for {board.name} "
             f"({board.mpy_arch or 'bytecode, any arch'})")
        old, (old_size, old_fp) = _board_state(mpremote(port, "exec", _READ_OLD, "+",
                                                        "exec", _KEY_INFO))
        dev = device_board(board, node_id, old)
        (stage / "board.json").write_text(json.dumps(dev, indent=1) + "\n")
        mods = sorted(str(p) for p in (stage / "rumor").glob("*.mpy"))
        args = ["exec", _PREPARE, "+", "fs", "cp", *mods, ":rumor/", "+",
                "fs", "cp", str(stage / "main.py"), ":main.py", "+",
                "fs", "cp", str(stage / "board.json"), ":board.json"]
        # The network clock the node saved belongs to the mesh of its key: a
        # node moved to another mesh (or to none) starts without one.
        new_fp = fingerprint(key) if key is not None else None
        gone: tuple[str, ...] = ()
        if key is not None:
            write_secret(stage / KEY_FILE, key)  # the staging folder goes at the end
            args += ["+", "fs", "cp", str(stage / KEY_FILE), ":" + KEY_FILE]
            if new_fp != old_fp:
                gone = TIME_FILES
        elif remove_key and old_size >= 0:
            gone = (KEY_FILE, *TIME_FILES)
        if gone:
            args += ["+", "exec", _remove_script(gone)]
        mpremote(port, *args)
        echo(f"copied main.py, rumor/ ({len(files) - 1} .mpy) and board.json"
             f"{' and rumor.key' if key is not None else ''} to {port}")
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
    if board.radio_kind == "lora":
        pkgs = LORA_PACKAGES.get(str(board.radio.get("modem")), [])
        if mip and pkgs:
            for pkg in pkgs:
                mpremote(port, "mip", "install", pkg, timeout=300)
            echo(f"installed {', '.join(pkgs)} with mip")
        elif pkgs:
            echo(f"skipped mip install of {', '.join(pkgs)} (--no-mip)")
    if board.chip == "unix":
        # the unix port's machine has no reset(); soft_reset() ends the process
        # and the swarm starts it again: the virtual board reboots.
        mpremote(port, "exec", "--no-follow", "import machine; machine.soft_reset()")
    else:
        mpremote(port, "reset")
    echo(f"reset {port}: node {dev.get('node_id', 'from chip id')} boots {board.name}")
    return dev


_KEY_HELP = ("network key for an authenticated mesh: a file of 16..64 raw bytes, e.g. "
             "`head -c 32 /dev/urandom > net.key`, or a text file of 32..128 hex digits "
             "(whitespace ignored; a text file is always read as hex).  Every node of the mesh "
             "needs the same key: frames without a good tag are dropped.  It is copied to the "
             "board as rumor.key, never into board.json, and shown only as its length and "
             "fingerprint (first 4 bytes of its sha256).  Default: the board keeps the key it "
             "has, if any.")


@click.command("deploy")
@click.option("--port", "-p", required=True, help="the board's serial port (or a swarm pty)")
@click.option("--board", "-b", "board_name", required=True, help="board name (boards/*.json) or path")
@click.option("--node-id", default=None, help="node id (decimal or 0x hex; default: kept, else the chip's id)")
@click.option("--no-mip", is_flag=True, help="do not install the LoRa driver packages (offline)")
@click.option("--key-file", default=None, type=click.Path(dir_okay=False), metavar="PATH",
              help=_KEY_HELP)
@click.option("--no-key", is_flag=True,
              help="remove the board's network key: the node runs an open mesh again")
def deploy_cmd(port: str, board_name: str, node_id: str | None, no_mip: bool,
               key_file: str | None, no_key: bool) -> None:
    """Compile the firmware for BOARD and put it on the board at PORT.

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
    try:
        key = read_key_file(key_file) if key_file is not None else None
        deploy(port, board_name, nid, mip=not no_mip, echo=click.echo, key=key, remove_key=no_key)
    except (BoardError, DeployError) as e:
        raise click.ClickException(str(e)) from None
