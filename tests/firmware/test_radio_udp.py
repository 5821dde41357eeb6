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
