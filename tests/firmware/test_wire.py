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


def test_version_2_first_bytes():
    assert wire.VERSION == 2
    assert (wire.VT_DATA, wire.VT_DIGEST, wire.VT_REQUEST) == (0x21, 0x22, 0x23)
    assert wire.encode_data(1, 1, b"")[0] == 0x21
    assert wire.encode_digest(1, [])[0] == 0x22
    assert wire.encode_request(1, [(1, 1)])[0] == 0x23


def test_digest_neighbours_and_relays_roundtrip():
    ids = [(1, 2), (3, 4)]
    # short ids: the low 16 bits of each neighbour's node id
    f = wire.encode_digest(5, ids, summary=9, neighbours=[0x0A0B0C0D, 0xFFFF, 7], relays=True)
    assert len(f) == wire.DIGEST_HDR + wire.DIGEST_ENTRY * 2 + wire.NEIGHBOUR_LEN * 3
    assert f[wire.O_NEIGHBOURS] == 3 and f[wire.O_FLAGS] & wire.F_RELAYS
    # the list follows the entries, big-endian
    assert f[wire.DIGEST_HDR + wire.DIGEST_ENTRY * 2:] == b"\x0c\x0d\xff\xff\x00\x07"
    d = wire.decode(f)
    assert d["ids"] == ids and d["summary"] == 9 and d["live"] == 2
    assert d["neighbours"] == [0x0C0D, 0xFFFF, 7] and d["relays"] is True
    assert not d["truncated"]
    # and without: no list, flag clear, the v1 layout's length
    d = wire.decode(wire.encode_digest(5, ids, truncated=True))
    assert d["neighbours"] == [] and d["relays"] is False and d["truncated"]
    assert d["length"] == wire.DIGEST_HDR + wire.DIGEST_ENTRY * 2
    # a list with no ids, and a relays flag with no list
    d = wire.decode(wire.encode_digest(5, [], neighbours=[1, 2]))
    assert d["ids"] == [] and d["neighbours"] == [1, 2] and d["relays"] is False
    d = wire.decode(wire.encode_digest(5, [], relays=True))
    assert d["neighbours"] == [] and d["relays"] is True
    raises(ValueError, wire.encode_digest, 5, [], neighbours=range(256))


def test_tagged_digest_with_neighbours_and_echo():
    key = b"k" * 16
    ids = [(0x0B000001, 9)]
    f = wire.encode_digest(0x0B000002, ids, live=1, neighbours=[0x0B000001, 0x0B000003],
                           relays=True, key=key, stamp=1234, echo=0x2345)
    want = (wire.DIGEST_HDR + wire.DIGEST_ENTRY + 2 * wire.NEIGHBOUR_LEN + wire.ECHO_LEN
            + wire.STAMP_LEN + wire.TAG_LEN)
    assert len(f) == want
    d = wire.decode(f, key=key)
    assert d["tag_ok"] and d["stamp"] == 1234 and d["echo"] == 0x2345 and not d["ask"]
    assert d["ids"] == ids and d["neighbours"] == [1, 3] and d["relays"] is True
    # the list is under the tag
    bad = bytearray(f)
    bad[wire.DIGEST_HDR + wire.DIGEST_ENTRY + 1] ^= 1
    assert wire.decode(bytes(bad), key=key)["tag_ok"] is False
    # so is the relays flag
    bad = bytearray(f)
    bad[wire.O_FLAGS] ^= wire.F_RELAYS
    assert wire.decode(bytes(bad), key=key)["tag_ok"] is False
    # a question (no echo) with a list
    q = wire.decode(wire.encode_digest(7, [], neighbours=[5], key=key, stamp=99, ask=True), key=key)
    assert q["ask"] and q["tag_ok"] and q["neighbours"] == [5] and "echo" not in q


def test_decode_refuses_a_digest_whose_length_does_not_match_its_counts():
    f = wire.encode_digest(5, [(1, 2)], neighbours=[3, 4])
    for bad in (f[:-1], f[:-2], f + b"\x00", f + b"\x00\x00"):
        e = raises(ValueError, wire.decode, bad)
        assert "1 ids and 2 neighbours" in str(e), str(e)
    # a count byte that claims one neighbour too many or too few
    for n in (1, 3, 255):
        bad = bytearray(f)
        bad[wire.O_NEIGHBOURS] = n
        assert "ids" in str(raises(ValueError, wire.decode, bytes(bad)))
    # an id count too small for the entries that follow (an odd leftover is no list)
    bad = bytearray(wire.encode_digest(5, [(1, 2)]))
    bad[wire.O_COUNT] = 0
    raises(ValueError, wire.decode, bytes(bad))
    # tagged: the trailer is not taken for part of the list
    key = b"k" * 16
    t = wire.encode_digest(5, [(1, 2)], neighbours=[3], key=key, stamp=5)
    assert wire.decode(t, key=key)["neighbours"] == [3]
    bad = bytearray(t)
    bad[wire.O_NEIGHBOURS] = 2
    raises(ValueError, wire.decode, bytes(bad), key)


def test_decode_names_what_is_wrong():
    good = wire.encode_data(1, 1, b"x")
    assert "shorter" in str(raises(ValueError, wire.decode, good[:5]))
    v1 = bytes([(1 << 4) | wire.DATA]) + good[1:]  # version 1: no neighbour lists, no interworking
    assert "version" in str(raises(ValueError, wire.decode, v1))
    assert "type" in str(raises(ValueError, wire.decode, bytes([(wire.VERSION << 4) | 0x0F]) + good[1:]))
    assert "ids" in str(raises(ValueError, wire.decode, wire.encode_request(1, [(1, 1)])[:-1]))
    assert "hop_limit" in str(raises(ValueError, wire.decode, wire.encode_data(1, 1, b"", hops=5, hop_limit=4)))


def test_a_full_default_frame_is_250_bytes():
    f = wire.encode_data(1, 1, bytes(234))
    assert len(f) == wire.ESPNOW_MTU
