"""Board data files (boards/*.json): load and validate them.

One JSON file per board says what the host tools need to flash it (chip,
flash offset, mpy-cross arch) and what the firmware needs to run on it (radio
kind, pins, radio defaults, config preset).  Every field is checked on load;
a bad one raises BoardError naming the file and the field:

    boards/x.json: field 'radio.sf': must be 7..12, got 13

A LoRa board names its regulatory "region" (REGIONS in the firmware's
rumor/radio_lora.py, which this module reads, so the two cannot disagree):
its channel must lie inside the region's band, and an explicit "duty_cycle"
or "duty_window_ms" overrides the region's.  The loaded Board's radio always
states "duty_cycle": the file's, else the region's (1 for no limit).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rumor.radio_lora import REGIONS, duty_of, region_of

# chip -> (flash offset of MicroPython's .bin, mpy-cross -march)
CHIPS: dict[str, tuple[int | None, str | None]] = {
    "esp32": (0x1000, "xtensawin"),
    "esp32s3": (0x0, "xtensawin"),
    "esp32c3": (0x0, "rv32imc"),
    "unix": (None, None),
}
RADIO_KINDS = ("espnow", "lora", "udp")
CONFIG_PRESETS = ("small", "medium", "large")
LORA_MODEMS = ("sx1276", "sx1262")
# Bandwidths (kHz) as micropython-lib's lora drivers spell them (str(bw) lookup).
LORA_BW = ("7.8", "10.4", "15.6", "20.8", "31.25", "41.7", "62.5", "125", "250", "500")
# Regulatory regions: the firmware's presets (duty cycle, dwell time, band).
LORA_REGIONS: tuple[str, ...] = tuple(str(r[0]) for r in REGIONS)
_GPIO_MAX = 48  # ESP32-S3 has GPIO0..48

_TOP_KEYS = {"name", "description", "chip", "flash_offset", "mpy_arch", "radio", "pins",
             "config", "comment"}
_ESPNOW_KEYS = {"kind", "channel", "mtu"}
_LORA_KEYS = {"kind", "modem", "freq_khz", "sf", "bw", "coding_rate", "output_power",
              "preamble_len", "tx_ant", "dio2_rf_sw", "dio3_tcxo_millivolts", "duty_cycle",
              "duty_window_ms", "region", "tx_queue", "syncword", "mtu", "cad", "cad_tries"}
_LORA_PINS = {"spi", "sck", "mosi", "miso", "cs", "reset", "dio0", "dio1", "busy", "vext"}


class BoardError(ValueError):
    """A board name that does not exist, or a board file with a bad field."""


@dataclass(frozen=True)
class Board:
    name: str
    path: Path
    description: str
    chip: str
    flash_offset: int | None  # None: nothing to flash (unix)
    mpy_arch: str | None  # None: run .py as is (unix)
    radio: dict[str, Any] = field(default_factory=dict)
    pins: dict[str, int] = field(default_factory=dict)
    config: str = "medium"
    comment: str = ""

    @property
    def radio_kind(self) -> str:
        return str(self.radio["kind"])

    @property
    def flashable(self) -> bool:
        return self.flash_offset is not None


def boards_dir() -> Path:
    """boards/ at the repository root, or $RUMOR_BOARDS when the package is
    installed somewhere without the repository around it."""
    here = Path(__file__).resolve().parents[2] / "boards"
    if here.is_dir():
        return here
    env = os.environ.get("RUMOR_BOARDS")
    if env:
        return Path(env)
    raise BoardError(f"no boards directory: {here} does not exist and RUMOR_BOARDS is not set")


def list_boards() -> list[Board]:
    """Every board in boards_dir(), sorted by name (all validated)."""
    d = boards_dir()
    return [load_board(p) for p in sorted(d.glob("*.json"))]


def board_names() -> list[str]:
    try:
        return sorted(p.stem for p in boards_dir().glob("*.json"))
    except BoardError:
        return []


def load_board(name_or_path: str | os.PathLike[str]) -> Board:
    """A board by name ("heltec-v3") or by path to its JSON file."""
    s = os.fspath(name_or_path)
    if s.endswith(".json") or os.sep in s or "/" in s:
        path = Path(s)
        if not path.exists() and path.name == s and (boards_dir() / s).is_file():
            path = boards_dir() / s  # "heltec-v3.json": the board of that name
        elif not path.exists():
            raise BoardError(f"{s}: no such board file (a board is a name from `rumor boards`, "
                             "e.g. heltec-v3, or the path of a board JSON file)")
    else:
        path = boards_dir() / f"{s}.json"
        if not path.is_file():
            known = ", ".join(board_names()) or "none"
            raise BoardError(f"unknown board '{s}' (known: {known})")
    shown = _shown(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BoardError(f"{shown}: not UTF-8 text (a board file is JSON)") from None
    except OSError as e:
        raise BoardError(f"{shown}: cannot read: {e.strerror or e}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise BoardError(f"{shown}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    return _validate(data, path, shown)


def _shown(path: Path) -> str:
    """The path as error messages show it: relative to the repo root if inside it."""
    root = Path(__file__).resolve().parents[2]
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)


class _Checker:
    def __init__(self, shown: str):
        self.shown = shown

    def fail(self, fld: str, why: str) -> BoardError:
        return BoardError(f"{self.shown}: field '{fld}': {why}")

    def obj(self, v: Any, fld: str) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise self.fail(fld, f"must be an object, got {_js(v)}")
        return v

    def unknown(self, d: dict[str, Any], allowed: set[str], prefix: str) -> None:
        for k in d:
            if k not in allowed:
                raise self.fail(prefix + k, "unknown field (allowed: %s)" % ", ".join(sorted(allowed)))

    def string(self, d: dict[str, Any], key: str, prefix: str = "", choices: tuple[str, ...] = (),
               required: bool = True) -> str | None:
        fld = prefix + key
        if key not in d:
            if required:
                raise self.fail(fld, "missing")
            return None
        v = d[key]
        if not isinstance(v, str):
            raise self.fail(fld, f"must be a string, got {_js(v)}")
        if choices and v not in choices:
            raise self.fail(fld, f"must be one of {'/'.join(choices)}, got {_js(v)}")
        return v

    def integer(self, d: dict[str, Any], key: str, lo: int, hi: int, prefix: str = "",
                required: bool = True) -> int | None:
        fld = prefix + key
        if key not in d:
            if required:
                raise self.fail(fld, "missing")
            return None
        v = d[key]
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(fld, f"must be an integer {lo}..{hi}, got {_js(v)}")
        if not lo <= v <= hi:
            raise self.fail(fld, f"must be {lo}..{hi}, got {v}")
        return v


def _js(v: Any) -> str:
    return json.dumps(v) if not isinstance(v, (dict, list)) else type(v).__name__


def _validate(data: Any, path: Path, shown: str) -> Board:
    c = _Checker(shown)
    if not isinstance(data, dict):
        raise BoardError(f"{shown}: must hold a JSON object, got {_js(data)}")
    c.unknown(data, _TOP_KEYS, "")
    name = c.string(data, "name")
    if name != path.stem:
        raise c.fail("name", f"must match the file name '{path.stem}', got {_js(name)}")
    description = c.string(data, "description") or ""
    chip = c.string(data, "chip", choices=tuple(CHIPS))
    assert chip is not None
    want_offset, want_arch = CHIPS[chip]

    if "flash_offset" not in data:
        raise c.fail("flash_offset", "missing (null for a board with nothing to flash)")
    raw = data["flash_offset"]
    offset: int | None
    if want_offset is None:
        if raw is not None:
            raise c.fail("flash_offset", f"must be null for chip '{chip}', got {_js(raw)}")
        offset = None
    else:
        if not isinstance(raw, str) or not raw.lower().startswith("0x"):
            raise c.fail("flash_offset", f"must be a hex string such as \"0x{want_offset:x}\", got {_js(raw)}")
        try:
            offset = int(raw, 16)
        except ValueError:
            raise c.fail("flash_offset", f"not a hex number: {_js(raw)}") from None
        if offset != want_offset:
            raise c.fail("flash_offset",
                         f"MicroPython's image goes at 0x{want_offset:x} on {chip}, got {raw}")

    if "mpy_arch" not in data:
        raise c.fail("mpy_arch", "missing (null for the unix board)")
    arch = data["mpy_arch"]
    if arch != want_arch:
        raise c.fail("mpy_arch", f"must be {_js(want_arch)} for chip '{chip}', got {_js(arch)}")

    radio = c.obj(data.get("radio"), "radio")
    kind = c.string(radio, "kind", "radio.", RADIO_KINDS)
    if (kind == "udp") != (chip == "unix"):
        raise c.fail("radio.kind", f"'{kind}' does not go with chip '{chip}' (udp is for unix only)")
    pins = c.obj(data.get("pins", {}), "pins")
    if kind == "espnow":
        c.unknown(radio, _ESPNOW_KEYS, "radio.")
        c.integer(radio, "channel", 1, 14, "radio.")
        c.integer(radio, "mtu", 24, 250, "radio.", required=False)
    elif kind == "lora":
        _check_lora(c, radio, pins)
    # udp: radio_udp.py owns its settings; only "kind" is checked here.
    for k, v in pins.items():
        if k not in _LORA_PINS or kind != "lora":
            raise c.fail("pins." + k, "unknown pin" if kind == "lora" else f"no pins for a '{kind}' radio")
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= (_GPIO_MAX if k != "spi" else 2):
            raise c.fail("pins." + k, f"must be {'0..2' if k == 'spi' else f'a GPIO 0..{_GPIO_MAX}'}, got {_js(v)}")

    config = c.string(data, "config", choices=CONFIG_PRESETS)
    comment = c.string(data, "comment", required=kind == "lora") or ""
    radio = dict(radio)
    if kind == "lora" and "duty_cycle" not in radio:
        radio["duty_cycle"] = duty_of(radio)[0]  # the region's
    return Board(name=name, path=path, description=description, chip=chip, flash_offset=offset,
                 mpy_arch=want_arch, radio=radio, pins=dict(pins), config=config or "medium",
                 comment=comment)


def _check_lora(c: _Checker, radio: dict[str, Any], pins: dict[str, Any]) -> None:
    p = "radio."
    c.unknown(radio, _LORA_KEYS, p)
    modem = c.string(radio, "modem", p, LORA_MODEMS)
    need: tuple[str, ...]
    c.integer(radio, "freq_khz", 137000, 1020000, p)
    c.integer(radio, "sf", 7, 12, p)
    bw = radio.get("bw")
    if bw is None:
        raise c.fail(p + "bw", "missing")
    if str(bw) not in LORA_BW:
        raise c.fail(p + "bw", f"must be one of {'/'.join(LORA_BW)} (kHz), got {_js(bw)}")
    c.integer(radio, "coding_rate", 5, 8, p)
    c.integer(radio, "output_power", -9, 22, p)
    c.integer(radio, "preamble_len", 6, 65535, p)
    region = c.string(radio, "region", p, LORA_REGIONS, required=False)
    dc = radio.get("duty_cycle")
    if region is None and dc is None:
        raise c.fail(p + "region", f"missing (one of {'/'.join(LORA_REGIONS)}, "
                                   "or an explicit duty_cycle: the fraction of airtime allowed)")
    if region is not None:
        try:
            region_of(radio)
        except ValueError as e:  # the channel is outside the region's band
            raise c.fail(p + "freq_khz", str(e)) from None
    if dc is not None and (isinstance(dc, bool) or not isinstance(dc, (int, float)) or not 0 < dc <= 1):
        raise c.fail(p + "duty_cycle", f"must be a number in (0, 1], got {_js(dc)}")
    c.integer(radio, "duty_window_ms", 60000, 86400000, p, required=False)
    c.integer(radio, "tx_queue", 1, 32, p, required=False)
    c.integer(radio, "mtu", 24, 255, p, required=False)
    c.integer(radio, "syncword", 0, 0xFFFF, p, required=False)
    if "cad" in radio and not isinstance(radio["cad"], bool):
        raise c.fail(p + "cad", f"must be true or false, got {_js(radio['cad'])}")
    c.integer(radio, "cad_tries", 1, 100, p, required=False)
    if modem == "sx1276":
        c.string(radio, "tx_ant", p, ("PA_BOOST", "RFO"), required=False)
        for k in ("dio2_rf_sw", "dio3_tcxo_millivolts"):
            if k in radio:
                raise c.fail(p + k, "is for sx1262 only")
        need = ("spi", "sck", "mosi", "miso", "cs", "reset", "dio0")
    else:
        if "tx_ant" in radio:
            raise c.fail(p + "tx_ant", "is for sx1276 only (the SX1262 has one PA)")
        if "dio2_rf_sw" in radio and not isinstance(radio["dio2_rf_sw"], bool):
            raise c.fail(p + "dio2_rf_sw", f"must be true or false, got {_js(radio['dio2_rf_sw'])}")
        c.integer(radio, "dio3_tcxo_millivolts", 1600, 3300, p, required=False)
        need = ("spi", "sck", "mosi", "miso", "cs", "reset", "busy", "dio1")
    for k in need:
        if k not in pins:
            raise c.fail("pins." + k, f"missing (an {modem} board needs {', '.join(need)})")
    optional = ("dio1", "vext") if modem == "sx1276" else ("vext",)
    for k in pins:
        if k in _LORA_PINS and k not in need and k not in optional:
            raise c.fail("pins." + k, f"not used by an {modem}")
