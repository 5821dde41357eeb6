# The UDP radio adapter against a stand-in medium socket on 127.0.0.1.
import select
import socket

import fwtest

from rumor.radio_udp import BROADCAST, UdpRadio, addr_node, node_addr


def _medium():
    """A UDP socket on 127.0.0.1 at a free port (MicroPython has no getsockname)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for port in range(47300, 47400):
        try:
            s.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
        except OSError:
            continue
        s.settimeout(5)  # a hang fails the test instead of blocking it
        return s, port
    raise AssertionError("no free UDP port")


def _readable(sock):
    p = select.poll()
    p.register(sock, select.POLLIN)
    return bool(p.poll(5000))


def test_addresses():
    a = node_addr(0x0A0B0C0D)
    assert a == b"\x02\x00\x0a\x0b\x0c\x0d"
    assert addr_node(a) == 0x0A0B0C0D


def test_join_send_and_receive():
    med, port = _medium()
    r = UdpRadio({"kind": "udp", "port": port}, 7)
    try:
        r.join()
        data, where = med.recvfrom(512)
        assert data == node_addr(7) + node_addr(7)  # join: empty frame to itself
        assert r.send(b"\x10frame", None)
        data, _ = med.recvfrom(512)
        assert data == node_addr(7) + BROADCAST + b"\x10frame"
        assert r.send(b"uni", [node_addr(9), node_addr(10)])
        assert med.recvfrom(512)[0] == node_addr(7) + node_addr(9) + b"uni"
        assert med.recvfrom(512)[0] == node_addr(7) + node_addr(10) + b"uni"
        assert not r.send(b"x" * 251, None)  # over the mtu: refused, counted
        # medium -> node: src + rssi + frame
        med.sendto(node_addr(3) + b"\xc4" + b"\x11payload", where)
        assert _readable(r.sock)
        frame, src, rssi = r.recv_into()
        assert bytes(frame) == b"\x11payload" and bytes(src) == node_addr(3) and rssi == -60
        med.sendto(b"short", where)
        assert _readable(r.sock)
        assert r.recv_into() is None
        s = r.stats()
        assert s["frames_out"] == 3 and s["frames_in"] == 1 and s["rx_bad"] == 1
        assert s["send_errors"] == 1 and s["joins"] == 1
    finally:
        r.close()
        med.close()


def test_missing_port_is_a_clear_error():
    e = fwtest.raises(ValueError, UdpRadio, {"kind": "udp"}, 1)
    assert "port" in e.args[0]


def test_counters_wrap_at_30_bits_as_the_engines_do():
    # a board's small ints end at 2**30 - 1: the counters wrap there instead
    # of growing into big ints (a busy node's bytes_out passes 2**30 in days)
    med, port = _medium()
    r = UdpRadio({"kind": "udp", "port": port}, 0xC4123456)  # a MAC-sized id
    top = (1 << 30) - 1
    try:
        assert r.addr == b"\x02\x00\xc4\x12\x34\x56"
        r.frames_out = top
        r.bytes_out = top - 3
        r.joins = top
        r.join()
        where = med.recvfrom(512)[1]
        assert r.send(b"\x10" + bytes(9), None)
        med.recvfrom(512)
        assert r.frames_out == 0 and r.bytes_out == 6 and r.joins == 0
        r.send_errors = top
        assert not r.send(bytes(251), None)  # over the mtu
        r.frames_in = r.rx_bad = top
        med.sendto(node_addr(3) + b"\xc4\x11", where)
        assert _readable(r.sock) and r.recv_into() is not None
        med.sendto(b"short", where)
        assert _readable(r.sock) and r.recv_into() is None
        s = r.stats()
        assert s["send_errors"] == 0 and s["frames_in"] == 0 and s["rx_bad"] == 0
        assert all(0 <= v <= top for v in s.values())
    finally:
        r.close()
        med.close()
