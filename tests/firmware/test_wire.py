# The wire format: reference encoder/decoder, and the engine agrees with it.
from fwtest import raises

from rumor import wire


def test_data_roundtrip_and_header_size():
    f = wire.encode_data(0x0A0B0C0D, 513, b"hi", sender=7, hops=2, hop_limit=9, age_ms=1234, priority=1)
    assert len(f) == wire.DATA_HDR + 2
    assert wire.DATA_HDR <= 16
    d = wire.decode(f)
    assert d["type"] == "data"
    assert (d["origin"], d["seq"], d["sender"], d["hops"], d["hop_limit"]) == (0x0A0B0C0D, 513, 7, 2, 9)
    assert d["priority"] == 1
    assert d["age_ms"] == 1232  # 4 ms units, rounded down
    assert d["payload"] == b"hi"
    assert d["id"] == (0x0A0B0C0D << 16) | 513


def test_digest_and_request_roundtrip():
    ids = [(1, 2), (0xFFFFFFFF, 0xFFFF)]
    d = wire.decode(wire.encode_digest(5, ids, summary=77, live=3, span_ms=400, truncated=True,
                                       ages_ms=[130, 10 ** 6]))
    assert d["type"] == "digest" and d["ids"] == ids and d["summary"] == 77
    assert d["ages_ms"] == [128, 255 * 64]
    assert d["live"] == 3 and d["span_ms"] == 400 and d["truncated"]
    r = wire.decode(wire.encode_request(5, ids))
    assert r["type"] == "request" and r["ids"] == ids and r["sender"] == 5


def test_decode_names_what_is_wrong():
    good = wire.encode_data(1, 1, b"x")
    assert "shorter" in str(raises(ValueError, wire.decode, good[:5]))
    assert "version" in str(raises(ValueError, wire.decode, b"\x21" + good[1:]))
    assert "type" in str(raises(ValueError, wire.decode, b"\x1f" + good[1:]))
    assert "ids" in str(raises(ValueError, wire.decode, wire.encode_request(1, [(1, 1)])[:-1]))
    assert "hop_limit" in str(raises(ValueError, wire.decode, wire.encode_data(1, 1, b"", hops=5, hop_limit=4)))


def test_a_full_default_frame_is_250_bytes():
    f = wire.encode_data(1, 1, bytes(234))
    assert len(f) == wire.ESPNOW_MTU
