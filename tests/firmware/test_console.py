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
