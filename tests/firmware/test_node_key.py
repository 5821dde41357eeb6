# The node's network key (rumor.key) and network clock (rumor.time): how
# they are read at boot, what the events say of them, and that the key
# itself never appears in any output.
import hashlib
import os

import fwtest

from rumor import console as con
from rumor import node

KEY = bytes(range(0xA0, 0xA0 + 32))


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def _board():
    return {"name": "unix", "chip": "unix", "radio": {"kind": "udp", "port": 9},
            "config": "small", "node_id": 7, "node": {"stats_interval_ms": 0}}


def _hexof(b):
    return "".join("%02x" % x for x in b)


def _secret_forms(key):
    h = _hexof(key)
    return (h, h.upper(), str(key), str(list(key)))


def _fp(key):
    return _hexof(hashlib.sha256(key).digest()[:4])


def test_load_key_reads_raw_bytes_and_none_without_a_file():
    d = fwtest.tmp_dir("rumor-fwtest")
    try:
        assert node.load_key(d + "/rumor.key") is None
        for n in (16, 32, 64):
            _write(d + "/rumor.key", KEY[:16] * 4 if n == 64 else KEY[:n])
            assert len(node.load_key(d + "/rumor.key")) == n
    finally:
        fwtest.rm_dir(d)


def test_load_key_refuses_a_bad_length_without_quoting_it():
    d = fwtest.tmp_dir("rumor-fwtest")
    try:
        for data in (b"", b"short-key!", KEY[:15], KEY + KEY + b"x"):
            _write(d + "/rumor.key", data)
            e = fwtest.raises(ValueError, node.load_key, d + "/rumor.key")
            msg = e.args[0]
            assert "rumor.key" in msg and "16..64" in msg and "not starting" in msg, msg
            assert ("%d bytes" % len(data)) in msg, msg
            for s in _secret_forms(data) if data else ():
                assert s not in msg
            assert "short-key" not in msg
    finally:
        fwtest.rm_dir(d)


def test_load_key_refuses_hex_text_copied_as_it_is():
    d = fwtest.tmp_dir("rumor-fwtest")
    try:
        for text in (_hexof(KEY).encode(), _hexof(KEY[:20]).upper().encode() + b"\n"):
            _write(d + "/rumor.key", text)
            e = fwtest.raises(ValueError, node.load_key, d + "/rumor.key")
            assert "hex text" in e.args[0] and "not starting" in e.args[0]
            assert _hexof(KEY[:16]) not in e.args[0]
        _write(d + "/rumor.key", b"0123456789abcdef" + b"\x00")  # one byte that is not hex
        assert node.load_key(d + "/rumor.key") == b"0123456789abcdef\x00"
        _write(d + "/rumor.key", bytes(range(0x10, 0x20)))  # control bytes, not text
        assert node.load_key(d + "/rumor.key") == bytes(range(0x10, 0x20))
    finally:
        fwtest.rm_dir(d)


def test_boot_with_a_bad_key_does_not_start():
    d = fwtest.tmp_dir("rumor-fwtest")
    try:
        _write(d + "/board.json", b'{"name":"unix","chip":"unix","radio":{"kind":"udp","port":9}}')
        _write(d + "/rumor.key", b"0123456789")
        e = fwtest.raises(ValueError, node.boot, d + "/board.json", d + "/rumor.key",
                          d + "/rumor.time")
        assert "rumor.key has 10 bytes" in e.args[0]
        os.remove(d + "/rumor.key")
        n = node.boot(d + "/board.json", d + "/rumor.key", d + "/rumor.time", write=lambda s: None)
        assert n.auth is False
    finally:
        fwtest.rm_dir(d)


def _node(key, time_path="/nonexistent/rumor.time", clock=None):
    out = []
    n = node.Node(_board(), write=out.append, clock=(clock or fwtest.Clock(1000)).read,
                  key=key, time_path=time_path)
    return n, out


def test_events_say_auth_and_fingerprint_never_the_key():
    n, out = _node(KEY)
    n.gossip.on_forward(lambda f, to: True)
    n.gossip.start()
    n.boot_event()
    n.emit_stats(con.ERROR)
    boot, stats = [con.parse_event(s) for s in out]
    assert boot["ev"] == "boot" and boot["auth"] is True and boot["key_fp"] == _fp(KEY)
    assert stats["auth"] is True and stats["key_fp"] == _fp(KEY) and stats["core"]["bad_tag"] == 0
    assert boot["net_time"] == -1  # nothing heard, nothing restored
    text = "".join(out)
    for s in _secret_forms(KEY):
        assert s not in text
    for name in dir(n):  # the node keeps what names the key, not the key
        assert getattr(n, name) != KEY, name

    n, out = _node(None)
    n.boot_event()
    boot = con.parse_event(out[0])
    assert boot["auth"] is False and boot["key_fp"] is None


def test_net_time_file_round_trip_and_damage():
    d = fwtest.tmp_dir("rumor-fwtest")
    p = d + "/rumor.time"
    try:
        assert node.load_net_time(p) == -1
        node.save_net_time(123456, p)
        assert node.load_net_time(p) == 123456
        assert "rumor.time.tmp" not in os.listdir(d)  # renamed into place
        node.save_net_time(123999, p)
        assert node.load_net_time(p) == 123999
        for bad in (b"12345", b"", b"\n", b"12a4\n", b"-5\n", b"%d\n" % (1 << 30)):
            _write(p, bad)
            assert node.load_net_time(p) == -1, bad
        # a rename that removed the old file first and was cut short
        os.remove(p)
        _write(p + ".tmp", b"4242\n")
        assert node.load_net_time(p) == 4242
    finally:
        fwtest.rm_dir(d)


def test_node_restores_the_network_clock_and_saves_it_when_it_moved():
    d = fwtest.tmp_dir("rumor-fwtest")
    p = d + "/rumor.time"
    try:
        node.save_net_time(5000, p)
        clock = fwtest.Clock(1000)
        n, out = _node(KEY, p, clock)
        g = n.gossip
        assert g.net_time() == 5000  # restored before start()
        g.on_forward(lambda f, to: True)
        g.start()
        assert n.save_time() is False  # not moved: no write (flash wear)
        clock.advance(64 * 10)
        assert g.net_time() == 5010
        assert n.save_time() is True and node.load_net_time(p) == 5010
        assert n.save_time() is False
        assert n.time_save_ms >= 60000

        # an open mesh neither restores nor saves a network clock
        os.remove(p)
        node.save_net_time(5000, p)
        n, out = _node(None, p, clock)
        assert n.gossip.net_time() == -1 and n.save_time() is False
    finally:
        fwtest.rm_dir(d)


def test_time_save_interval_is_never_below_a_minute():
    b = _board()
    b["node"]["time_save_ms"] = 1000
    n = node.Node(b, write=lambda s: None, key=KEY)
    assert n.time_save_ms == 60000
    b["node"]["time_save_ms"] = 600000
    n = node.Node(b, write=lambda s: None, key=KEY)
    assert n.time_save_ms == 600000
