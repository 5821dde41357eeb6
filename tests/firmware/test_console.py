# The console protocol's node side: event lines, command parsing, dispatch.
import fwtest

from rumor import console as con


def _console(level=con.INFO):
    out = []
    c = con.Console(0x0A, lambda: 1234, out.append, level)
    return c, out


def test_event_line_is_prefixed_json_in_fixed_order():
    line = con.format_event("deliver", "0000000a", 99, ("origin", "00000003", "hops", 2,
                                                        "ok", True, "x", None, "l", [1, "a"]))
    assert line.startswith('@rumor {"ev":"deliver","node":"0000000a","origin":"00000003","hops":2')
    assert line.endswith(',"t":99}')
    d = con.parse_event("noise " + line)
    assert d["ev"] == "deliver" and d["hops"] == 2 and d["ok"] is True and d["x"] is None
    assert d["l"] == [1, "a"]
    assert con.parse_event(">>> print(1)") is None
    assert con.parse_event("@rumor {broken") is None


def test_text_is_escaped():
    line = con.format_event("error", "00000001", 0, ("msg", 'a "quoted"\nline'))
    assert con.parse_event(line)["msg"] == 'a "quoted"\nline'
    assert "\n" not in line


def test_parse_command():
    assert con.parse_command("!inject hello there\r") == ("inject", "hello there")
    assert con.parse_command("  !stats ") == ("stats", "")
    assert con.parse_command("print(1)") is None


def test_parse_inject_forms():
    assert con.parse_inject("hello") == (b"hello", 0, None)
    assert con.parse_inject('{"text":"hi","priority":2,"req":7}') == (b"hi", 2, 7)
    assert con.parse_inject('{"hex":"0a 0B ff"}') == (b"\x0a\x0b\xff", 0, None)


def test_parse_inject_errors_say_what_is_wrong():
    cases = [('{"hex":"zz"}', "non-hex"), ('{"hex":"abc"}', "odd"), ('{"text":"a","hex":"00"}', "not both"),
             ('{"text":"a","priority":4}', "0..3"), ('{"priority":1}', "text or hex"),
             ("{nope", "JSON"), ('{"text":""}', "empty"), ("x" * 40, "max_payload")]
    for arg, words in cases:
        e = fwtest.raises(ValueError, con.parse_inject, arg, 32)
        assert words in e.args[0], (arg, e.args[0])


def test_feed_dispatches_lines_and_reports_errors():
    c, out = _console()
    got = []
    c.commands = {"echo": got.append}

    def bad(arg):
        raise ValueError("nope: " + arg)

    c.commands["bad"] = bad
    c.feed(b"!echo one\r\n!ec")
    assert got == ["one"]
    c.feed(b"ho two\n\n>>> noise\n!bad x\n!what\n")
    assert got == ["one", "two"]
    errs = [con.parse_event(s) for s in out]
    assert [(e["ev"], e["cmd"]) for e in errs] == [("error", "bad"), ("error", "what")]
    assert errs[0]["msg"] == "nope: x"


def test_ctrl_c_interrupts():
    c, _ = _console()
    c.commands = {"x": lambda a: None}
    fwtest.raises(KeyboardInterrupt, c.feed, b"!x\r\x03\r\x01")


def test_long_line_is_refused_once():
    c, out = _console()
    c.commands = {"x": lambda a: None}
    c.feed(b"!x " + b"a" * 2000 + b"\n")
    assert len(out) == 1 and "longer" in con.parse_event(out[0])["msg"]


def test_levels_filter():
    c, out = _console(con.WARN)
    c.emit("deliver", "id", "x")  # info: filtered
    c.emit("drop", "reason", "r", level=con.WARN)
    c.emit("send", level=con.DEBUG)
    assert len(out) == 1 and con.parse_event(out[0])["ev"] == "drop"
    assert con.level_of("debug") == con.DEBUG and con.level_of("0") == con.ERROR
    fwtest.raises(ValueError, con.level_of, "loud")


# -- what a deliver event shows of the payload -------------------------------------------
def test_show_payload_text_hex_and_cut():
    assert con.show_payload(b"hello mesh") == ("hello mesh", False, False)
    assert con.show_payload("temp 21\xb0C".encode()) == ("temp 21\xb0C", False, False)
    assert con.show_payload(b"\x00\x01ab") == ("00016162", True, False)  # a control byte: hex
    assert con.show_payload(b"bad \xc3\x28") == ("62616420c328", True, False)  # not UTF-8: hex
    text, is_hex, cut = con.show_payload(b"x" * 500)
    assert (len(text), is_hex, cut) == (con.PAYLOAD_SHOW, False, True)
    # never through a UTF-8 character: the cut text is still text
    text, is_hex, cut = con.show_payload(("\xe9" * 300).encode())  # 2 bytes each
    assert not is_hex and cut and len(text.encode()) <= con.PAYLOAD_SHOW and set(text) == {"\xe9"}


# -- the node's side: deliver payload, !info, !config, the peers table ---------------------
def _node(node_settings=None):
    from rumor import node

    b = {"name": "unix", "chip": "unix", "radio": {"kind": "udp", "port": 9},
         "config": "small", "node_id": 0x2A, "node": {"stats_interval_ms": 0}}
    b["node"].update(node_settings or {})
    out = []
    clock = fwtest.Clock(1000)
    n = node.Node(b, write=out.append, clock=clock.read)
    n.gossip.on_forward(lambda f, to: True)
    n.gossip.start()
    return n, out, clock


def _evs(out, kind):
    return [e for e in (con.parse_event(s) for s in out) if e and e["ev"] == kind]


def _addr(nid):
    return bytes([2, 0, nid >> 24 & 255, nid >> 16 & 255, nid >> 8 & 255, nid & 255])


def test_deliver_carries_payload_rssi_and_hex():
    from rumor import wire

    n, out, _ = _node()
    n.receive(wire.encode_data(0x0B, 1, b'say "hi"', sender=0x0B), _addr(0x0B), -71)
    n.receive(wire.encode_data(0x0B, 2, b"\x00\xff", sender=0x0B), _addr(0x0B), 0)
    d1, d2 = _evs(out, "deliver")
    assert d1["payload"] == 'say "hi"' and "payload_hex" not in d1 and d1["rssi"] == -71
    assert d1["id"] == "0000000b0001" and d1["len"] == 8
    assert d2["payload"] == "00ff" and d2["payload_hex"] is True and d2["rssi"] is None


def test_payload_in_events_off():
    from rumor import wire

    n, out, _ = _node({"payload_in_events": False})
    n.receive(wire.encode_data(0x0B, 1, b"secret-ish", sender=0x0B), _addr(0x0B), -60)
    (d,) = _evs(out, "deliver")
    assert "payload" not in d and d["len"] == 10


def test_info_and_config_answers():
    n, out, _ = _node({"config": {"fanout": 3}})
    n.console.feed(b"!info\n!config\n")
    (info,) = _evs(out, "info")
    assert info["v"] == con.VERSION and info["board"] == "unix" and info["node"] == "0000002a"
    (cfg,) = _evs(out, "config")
    assert cfg["preset"] == "small" and cfg["overrides"] == {"fanout": 3}
    assert cfg["config"]["fanout"] == 3 and cfg["config"]["mtu"] == n.config.mtu
    assert cfg["payload_in_events"] is True
    n.boot_event()
    (boot,) = _evs(out, "boot")
    assert boot["v"] == con.VERSION


def test_peers_rows_carry_the_signal_of_each_neighbour():
    from rumor import wire

    n, out, clock = _node()
    for s in range(3):
        n.receive(wire.encode_data(0x0C, s + 1, b"m", sender=0x0B), _addr(0x0B), -80 + s)
    n.receive(wire.encode_data(0x0C, 1, b"m", sender=0x0D), _addr(0x0D), -50)  # a copy, other sender
    n.receive(b"\x10\x00junk", _addr(0x0E), -40)  # malformed: no neighbour made of it
    n.receive(wire.encode_data(0x2A, 9, b"me", sender=0x2A), _addr(0x2A), -30)  # our own, echoed
    clock.advance(250)
    n.console.feed(b"!peers\n")
    (ev,) = _evs(out, "peers")
    rows = {r[1]: r for r in ev["peers"]}
    assert set(rows) == {"0000000b", "0000000d"}
    b = rows["0000000b"]
    assert len(b) == 7 and b[4] == -78 and b[5] is None and b[6] == 3 and b[2] == 250
    assert rows["0000000d"][4] == -50 and rows["0000000d"][6] == 1


def test_neighbour_table_is_bounded_and_replaces_the_oldest():
    from rumor.neighbours import Neighbours

    nb = Neighbours(2, me=1)
    f = bytearray(16)

    def hear(nid, now, rssi=-60):
        f[4:8] = bytes([nid >> 24 & 255, nid >> 16 & 255, nid >> 8 & 255, nid & 255])
        nb.hear(f, rssi, -20, now)

    hear(5, 100)
    hear(6, 200)
    hear(5, 300)  # 6 is now the one heard longest ago
    hear(7, 400, -90)
    assert sorted(nb.ids()) == [5, 7] and nb.count == 2
    assert nb.row(7, 500) == (-90, -20, 1, 100)
    hear(1, 500)  # our own id: not a neighbour
    assert sorted(nb.ids()) == [5, 7]
    big = 0x7FFFFFF0  # real boards' ids are >= 2**30
    hear(big, 600)
    assert big in nb.ids() and nb.row(big, 600)[2] == 1


def test_receive_with_neighbours_allocates_nothing_below_info():
    from rumor import wire

    n, out, _ = _node()
    n.console.level = con.WARN
    frames = [wire.encode_data(0x0B0B0B0B, s, b"payload", sender=0x0B0B0B0B) for s in range(20)]
    src = _addr(0x0B0B0B0B)

    def run():
        for f in frames:
            n.receive(f, src, -60)
        for f in frames:  # duplicates
            n.receive(f, src, -61)

    fwtest.no_alloc(run, "Node.receive and Neighbours.hear")
    assert n.gossip.stats()["delivered"] == 20 and out == []
    assert n.neighbours.row(0x0B0B0B0B, n.clock())[2] == 40
