"""boards/*.json and the loader (rumor_host.boards), and `rumor boards`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rumor_host.boards import Board, BoardError, list_boards, load_board
from rumor_host.cmd_boards import boards_cmd

EXPECTED = {
    # name: (chip, offset, arch, radio kind, modem)
    "esp32": ("esp32", 0x1000, "xtensawin", "espnow", None),
    "esp32-s3": ("esp32s3", 0x0, "xtensawin", "espnow", None),
    "esp32-c3": ("esp32c3", 0x0, "rv32imc", "espnow", None),
    "heltec-v2": ("esp32", 0x1000, "xtensawin", "lora", "sx1276"),
    "heltec-v3": ("esp32s3", 0x0, "xtensawin", "lora", "sx1262"),
    "tbeam": ("esp32", 0x1000, "xtensawin", "lora", "sx1276"),
    "t3-s3": ("esp32s3", 0x0, "xtensawin", "lora", "sx1262"),
    "unix": ("unix", None, None, "udp", None),
}


def test_every_board_loads_as_expected():
    boards = {b.name: b for b in list_boards()}
    assert set(boards) == set(EXPECTED)
    for name, (chip, offset, arch, kind, modem) in EXPECTED.items():
        b = boards[name]
        assert isinstance(b, Board)
        assert (b.chip, b.flash_offset, b.mpy_arch, b.radio_kind) == (chip, offset, arch, kind)
        assert b.radio.get("modem") == modem
        assert b.config in ("small", "medium", "large")


def test_lora_pins_as_wired():
    v3 = load_board("heltec-v3")
    assert v3.pins == {"spi": 1, "sck": 9, "mosi": 10, "miso": 11, "cs": 8, "reset": 12,
                       "busy": 13, "dio1": 14, "vext": 36}
    assert v3.radio["dio3_tcxo_millivolts"] == 1800
    tb = load_board("tbeam")
    assert (tb.pins["reset"], tb.pins["dio0"], tb.pins["dio1"]) == (23, 26, 33)
    for name in ("heltec-v2", "heltec-v3", "tbeam", "t3-s3"):
        b = load_board(name)
        assert b.radio["freq_khz"] == 868100 and "meshtastic" in b.comment


def _write(tmp_path: Path, fname: str, **changes) -> Path:
    data = json.loads(load_board("heltec-v2").path.read_text())
    data["name"] = fname
    for dotted, value in changes.items():
        d = data
        *parents, last = dotted.split("__")
        for p in parents:
            d = d[p]
        if value is _DELETE:
            del d[last]
        else:
            d[last] = value
    p = tmp_path / f"{fname}.json"
    p.write_text(json.dumps(data))
    return p


_DELETE = object()


@pytest.mark.parametrize("changes, message", [
    ({"radio__sf": 13}, "field 'radio.sf': must be 7..12, got 13"),
    ({"radio__sf": "9"}, "field 'radio.sf': must be an integer 7..12, got \"9\""),
    ({"radio__bw": "100"}, "field 'radio.bw': must be one of"),
    ({"radio__kind": "wifi"}, "field 'radio.kind': must be one of espnow/lora/udp"),
    ({"chip": "esp8266"}, "field 'chip': must be one of"),
    ({"flash_offset": "0x0"}, "field 'flash_offset': MicroPython's image goes at 0x1000 on esp32"),
    ({"mpy_arch": "rv32imc"}, "field 'mpy_arch': must be \"xtensawin\""),
    ({"pins__busy": 13}, "field 'pins.busy': not used by an sx1276"),
    ({"pins__dio0": _DELETE}, "field 'pins.dio0': missing"),
    ({"pins__cs": 99}, "field 'pins.cs': must be a GPIO 0..48, got 99"),
    ({"radio__duty_cycle": 0}, "field 'radio.duty_cycle'"),
    ({"radio__region": "EU915"},
     "field 'radio.region': must be one of EU868/EU868-G3/EU433/US915/AU915/AS923/IN865, got \"EU915\""),
    ({"radio__region": _DELETE}, "field 'radio.region': missing (one of EU868/EU868-G3/"),
    ({"radio__freq_khz": 869525}, "field 'radio.freq_khz': LoRa channel 869525 kHz (bw 125 kHz) "
                                  "is outside region EU868 (868000-868600 kHz)"),
    ({"radio__region": "US915"}, "field 'radio.freq_khz': LoRa channel 868100 kHz"),
    ({"radio__tx_queue": 0}, "field 'radio.tx_queue': must be 1..32, got 0"),
    ({"config": "huge"}, "field 'config': must be one of small/medium/large"),
    ({"radio__fs": 9}, "field 'radio.fs': unknown field"),
    ({"name": "other"}, "field 'name': must match the file name"),
])
def test_bad_field_named(tmp_path, changes, message):
    p = _write(tmp_path, "x", **changes)
    with pytest.raises(BoardError) as e:
        load_board(p)
    assert str(e.value).startswith(f"{p}: "), str(e.value)
    assert message in str(e.value), str(e.value)


def test_sx1262_pin_set(tmp_path):
    # pins.busy is fine on an sx1262 board, which then needs dio1 and busy
    p = _write(tmp_path, "y", radio__modem="sx1262", radio__tx_ant=_DELETE)
    with pytest.raises(BoardError, match="field 'pins.busy': missing"):
        load_board(p)


def test_bad_json_and_unknown_name(tmp_path):
    p = tmp_path / "z.json"
    p.write_text("{ nope")
    with pytest.raises(BoardError, match=r"z.json: not valid JSON"):
        load_board(p)
    with pytest.raises(BoardError, match="unknown board 'nope' \\(known: esp32, "):
        load_board("nope")


def test_rumor_boards_lists_them():
    r = CliRunner().invoke(boards_cmd, [], terminal_width=200)
    assert r.exit_code == 0, r.output
    for name in EXPECTED:
        assert name in r.output
    assert "SX1262" in r.output and "0x1000" in r.output


def test_lora_boards_name_their_region():
    from rumor.radio_lora import duty_of

    for name in ("heltec-v2", "heltec-v3", "tbeam", "t3-s3"):
        b = load_board(name)
        raw = json.loads(b.path.read_text())["radio"]
        assert raw["region"] == "EU868" and "duty_cycle" not in raw  # the region says it
        assert b.radio["duty_cycle"] == 0.01  # ... and the loaded board states it
        assert duty_of(raw) == (0.01, 3600000, 0)  # as the firmware reads the file


def test_region_overrides_and_other_regions(tmp_path):
    # an explicit duty_cycle overrides the region's (and is kept as written)
    b = load_board(_write(tmp_path, "a", radio__duty_cycle=0.005))
    assert b.radio["duty_cycle"] == 0.005 and b.radio["region"] == "EU868"
    # sub-band g3 at 869.525 MHz: 10%
    b = load_board(_write(tmp_path, "b", radio__region="EU868-G3", radio__freq_khz=869525))
    assert b.radio["duty_cycle"] == 0.1
    # US915: no duty-cycle limit (its dwell time is the firmware's to enforce)
    b = load_board(_write(tmp_path, "c", radio__region="US915", radio__freq_khz=915000))
    assert b.radio["duty_cycle"] == 1
    # no region but an explicit duty cycle: fine, as before regions
    b = load_board(_write(tmp_path, "d", radio__region=_DELETE, radio__duty_cycle=0.01))
    assert "region" not in b.radio and b.radio["duty_cycle"] == 0.01
