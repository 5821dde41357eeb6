# The application hook (firmware/rumor/app_api.py, docs/apps.md): a user
# module's setup(node) gets an App; its faults are error events with
# "cmd":"app" and never stop the node; no app.py is normal; with no
# application a delivery costs nothing more.
import os
import sys

import fwtest

from rumor import app_api, node, wire
from rumor import console as con


class _Mod:
    """A uniquely named application module written to a temporary folder on
    sys.path (each test its own name: imports are cached)."""

    def __init__(self, source):
        import random

        self.dir = fwtest.tmp_dir("rumor-apptest")
        self.name = "app_t%08x" % random.getrandbits(32)
        with open("%s/%s.py" % (self.dir, self.name), "w") as f:
            f.write(source)
        sys.path.insert(0, self.dir)

    def close(self):
        sys.path.remove(self.dir)
        if self.name in sys.modules:
            del sys.modules[self.name]
        fwtest.rm_dir(self.dir)


def _node(app_settings=None, clock=None):
    b = {"name": "unix", "chip": "unix", "radio": {"kind": "udp", "port": 9},
         "config": "small", "node_id": 0x2A, "node": {"stats_interval_ms": 0}}
    if app_settings is not None:
        b["node"]["app"] = app_settings
    out = []
    n = node.Node(b, write=out.append, clock=(clock or fwtest.Clock(1000)).read)
    n.gossip.start()
    return n, out


def _events(out, kind=None):
    evs = [con.parse_event(s) for s in out]
    return [e for e in evs if e is not None and (kind is None or e["ev"] == kind)]


def _run(coro):
    import asyncio

    asyncio.run(coro)


async def _sleep(ms):
    import asyncio

    await asyncio.sleep(ms / 1000)


def test_setup_gets_id_settings_publish_and_stats():
    m = _Mod("seen = {}\n"
             "def setup(node):\n"
             "    seen['id'] = node.id\n"
             "    seen['settings'] = node.settings\n"
             "    seen['mid'] = node.publish('hello', priority=1)\n"
             "    seen['mid2'] = node.publish(b'\\x00\\x01')\n"
             "    seen['stats'] = node.stats()\n")
    try:
        n, out = _node({"interval_ms": 7})
        a = app_api.load(n, m.name)
        assert a is not None and n.app is a
        seen = sys.modules[m.name].seen
        assert seen["id"] == 0x2A and seen["settings"] == {"interval_ms": 7}
        mid = seen["mid"]
        assert mid >> 16 == 0x2A and seen["mid2"] == (0x2A << 16) | ((mid + 1) & 0xFFFF)
        assert seen["stats"]["core"]["published"] == 2 and "radio" in seen["stats"]
        pubs = _events(out, "publish")
        assert [p["id"] for p in pubs] == ["%012x" % mid, "%012x" % seen["mid2"]]
        assert pubs[0]["priority"] == 1 and pubs[0]["len"] == 5 and pubs[0]["app"] is True
        assert _events(out, "app")[0]["callbacks"] == 0
        assert _events(out, "error") == []
    finally:
        m.close()


def test_on_message_gets_each_new_message_and_a_faulty_callback_is_reported():
    m = _Mod("got = []\n"
             "def setup(node):\n"
             "    def cb(msg):\n"
             "        got.append((msg.origin, msg.seq, msg.id, msg.hops, msg.age_ms,\n"
             "                    msg.priority, msg.payload()))\n"
             "        if msg.payload() == b'boom':\n"
             "            raise ValueError('bad reading')\n"
             "    node.on_message(cb)\n")
    try:
        ck = fwtest.Clock(1000)
        n, out = _node(clock=ck)
        app_api.load(n, m.name)
        f = wire.encode_data(0x01020304, 5, b"hi there", priority=2, sender=0x01020304)
        assert n.gossip.receive(f, b"\x02\x00\x01\x02\x03\x04", -60)
        assert not n.gossip.receive(f, b"\x02\x00\x01\x02\x03\x04", -60)  # a duplicate: no call
        ck.advance(5000)
        assert n.gossip.receive(wire.encode_data(0x01020304, 6, b"boom", sender=0x01020304),
                                b"\x02\x00\x01\x02\x03\x04", -60)
        got = sys.modules[m.name].got
        assert got[0] == (0x01020304, 5, (0x01020304 << 16) | 5, 1, got[0][4], 2, b"hi there")
        assert len(got) == 2 and got[1][6] == b"boom"
        errs = _events(out, "error")
        assert len(errs) == 1 and errs[0]["cmd"] == "app", errs
        assert errs[0]["msg"].startswith("on_message: ValueError: bad reading"), errs[0]
        assert m.name + ".py:" in errs[0]["msg"], errs[0]  # where it was raised
        assert len(_events(out, "deliver")) == 2  # the node itself went on
        assert n.app.errors == 1
    finally:
        m.close()


def test_every_runs_on_the_loop_and_survives_a_faulty_call():
    m = _Mod("calls = []\n"
             "def setup(node):\n"
             "    def tick():\n"
             "        calls.append(1)\n"
             "        if len(calls) == 2:\n"
             "            raise OSError(5)\n"
             "        node.publish('tick %d' % len(calls))\n"
             "    node.every(node.settings['ms'], tick)\n"
             "    async def once():\n"
             "        raise KeyError('k')\n"
             "    node.task(once())\n")
    try:
        n, out = _node({"ms": 10})

        async def main():
            a = app_api.load(n, m.name)
            assert a is not None
            for _ in range(50):
                await _sleep(10)
                if len(sys.modules[m.name].calls) >= 4:
                    break
            a.close()

        _run(main())
        assert len(sys.modules[m.name].calls) >= 4
        assert len(_events(out, "publish")) >= 3
        errs = [e["msg"] for e in _events(out, "error")]
        # the task's KeyError, then tick's OSError within the same second:
        # counted, not printed (one error event a second at most)
        assert len(errs) == 1 and errs[0].startswith("task: KeyError"), errs
        assert n.app.errors == 2
    finally:
        m.close()


def test_setup_that_raises_leaves_the_node_running_without_the_app():
    m = _Mod("def setup(node):\n"
             "    node.on_message(print)\n"
             "    1 // 0\n")
    try:
        n, out = _node()
        assert app_api.load(n, m.name) is None and n.app is None
        errs = _events(out, "error")
        assert len(errs) == 1 and errs[0]["cmd"] == "app"
        assert errs[0]["msg"].startswith("setup: ZeroDivisionError"), errs
        n.gossip.receive(wire.encode_data(9, 1, b"x", sender=9), b"\x02\x00\x00\x00\x00\x09", -60)
        assert len(_events(out, "deliver")) == 1
    finally:
        m.close()


def test_a_missing_app_is_normal_but_a_broken_one_is_reported():
    n, out = _node()
    assert app_api.load(n, "app_not_there_at_all") is None
    assert _events(out) == []
    for src, what in (("import no_such_module_xyz\n", "'no_such_module_xyz'"),
                      ("def setup(:\n", "SyntaxError"),
                      ("x = 1\n", "no setup(node)")):
        m = _Mod(src)
        try:
            n, out = _node()
            assert app_api.load(n, m.name) is None
            errs = _events(out, "error")
            assert len(errs) == 1 and errs[0]["cmd"] == "app", (src, errs)
            assert errs[0]["msg"].startswith("import: ") and what in errs[0]["msg"], errs
        finally:
            m.close()


def test_node_loads_app_py_from_its_folder_only_when_there():
    d = fwtest.tmp_dir("rumor-apptest")
    old = os.getcwd()
    try:
        os.chdir(d)
        n, out = _node()
        n.load_app()
        assert n.app is None and _events(out) == []
        with open("app.py", "w") as f:
            f.write("def setup(node):\n    node.on_message(lambda m: None)\n")
        n.load_app()
        assert n.app is not None and _events(out, "app")[0]["callbacks"] == 1
    finally:
        os.chdir(old)
        if "app" in sys.modules:
            del sys.modules["app"]
        fwtest.rm_dir(d)


def test_bad_settings_are_one_error_and_an_empty_dict():
    m = _Mod("got = []\ndef setup(node):\n    got.append(node.settings)\n")
    try:
        n, out = _node("fast")
        app_api.load(n, m.name)
        assert sys.modules[m.name].got == [{}]
        errs = _events(out, "error")
        assert len(errs) == 1 and "node.app" in errs[0]["msg"], errs
    finally:
        m.close()


def test_delivery_without_an_app_allocates_nothing_more():
    # Node._deliver formats its deliver event (that allocates); at warn level
    # it prints nothing, and then the app hook must add no allocation.
    if not fwtest.MICROPYTHON:
        fwtest.skip("heap_lock exists only on MicroPython")
    n, out = _node()
    n.console.level = con.WARN
    frames = [wire.encode_data(0x0B0B0B0B, s, b"payload", sender=0x0B0B0B0B) for s in range(20)]
    src = b"\x02\x00\x0b\x0b\x0b\x0b"
    g = n.gossip

    def run():
        for f in frames:
            g.receive(f, src, -60)

    fwtest.no_alloc(run, "Node._deliver with no application")
    assert g.stats()["delivered"] == 20 and out == []


def test_examples_beacon_and_sensor_on_the_unix_board():
    # examples/apps/*.py as a board runs them (the sensor's fake source here)
    here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
    ex = here + "/../../examples/apps"
    sys.path.insert(0, ex)
    try:
        n, out = _node({"interval_ms": 10})
        sent = []
        publish = n.gossip.publish

        def spy(payload, priority=0):
            sent.append(bytes(payload))
            return publish(payload, priority)

        n.gossip.publish = spy

        async def main():
            a = app_api.load(n, "beacon")
            b = app_api.load(n, "sensor")
            assert a is not None and b is not None
            for _ in range(100):
                await _sleep(10)
                if len(sent) >= 8:
                    break
            a.close()
            b.close()

        _run(main())
        beacons = [p for p in sent if p.startswith(b"beacon ")]
        readings = [p for p in sent if not p.startswith(b"beacon ")]
        assert beacons[:3] == [b"beacon 1", b"beacon 2", b"beacon 3"], sent
        sensor = sys.modules["sensor"]
        vals = [sensor.decode(p) for p in readings]
        assert len(vals) >= 3 and all(len(p) == 8 for p in readings), sent
        assert [v[2] for v in vals[:3]] == [1, 2, 3]  # sample numbers
        for version, source, _sample, value in vals:
            assert version == 1 and source == sensor.SRC_FAKE
            assert 22000 <= value <= 23000  # node id 42: 20000 + 1000 * 2 + a wave of 0..1000
        assert _events(out, "error") == []
    finally:
        sys.path.remove(ex)
        for name in ("beacon", "sensor"):
            if name in sys.modules:
                del sys.modules[name]


class _FakeAdc:
    """machine.ADC as the ESP32 port has it (atten, read_uv)."""

    ATTN_11DB = 3

    def __init__(self, pin):
        self.pin = pin
        self.att = None

    def atten(self, a):
        self.att = a

    def read_uv(self):
        return 1234567


class _FakeMachine:
    ADC = _FakeAdc

    def Pin(self, n):  # noqa: N802 - machine.Pin
        return ("pin", n)


class _FakeEsp32:
    def __init__(self, temp):
        if temp is not None:
            self.mcu_temperature = lambda: temp


def test_sensor_reads_the_esp32_temperature_sensor_or_its_adc():
    here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
    sys.path.insert(0, here + "/../../examples/apps")
    saved = {k: sys.modules.get(k) for k in ("esp32", "machine")}
    try:
        import sensor

        n, _ = _node({"adc_pin": 36})
        a = app_api.App(n)
        sys.modules["machine"] = _FakeMachine()
        sys.modules["esp32"] = _FakeEsp32(41.5)  # an S3: mcu_temperature() in degrees C
        kind, read = sensor._source(a, "esp32")
        assert kind == sensor.SRC_TEMP and read() == 41500
        sys.modules["esp32"] = _FakeEsp32(None)  # the classic ESP32: no such sensor
        kind, read = sensor._source(a, "esp32")
        assert kind == sensor.SRC_ADC and read() == 1234  # millivolts
        kind, read = sensor._source(a, "linux")
        assert kind == sensor.SRC_FAKE and 22000 <= read() <= 23000
    finally:
        sys.path.pop(0)
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
        sys.modules.pop("sensor", None)


def test_publishing_from_inside_on_message_keeps_the_engine_whole():
    # An application that answers every message (an ack, a relay to another
    # channel) publishes from inside the engine's receive path: the engine's
    # tables must stay consistent, and both the received and the answers kept.
    import invariants

    m = _Mod("def setup(node):\n"
             "    def ack(msg):\n"
             "        node.publish(b'ack %d' % msg.seq, priority=msg.priority)\n"
             "    node.on_message(ack)\n")
    try:
        ck = fwtest.Clock(1000)
        n, out = _node(clock=ck)
        app_api.load(n, m.name)
        g = n.gossip
        src = b"\x02\x00\x0c\x0c\x0c\x0c"
        for s in range(60):
            ck.advance(100)  # 10 a second: within the rate limits
            # one message of each of 60 origins (the ring's per-origin quota
            # would refuse more of one origin, with or without an application)
            # (priority 0: a full ring of higher priorities refuses a lower one)
            f = wire.encode_data(0x0C0C0000 + s, 1, b"reading %d" % s, sender=0x0C0C0C0C)
            assert g.receive(f, src, -60)
            invariants.check(g)
            g.tick()
            invariants.check(g)
        st = g.stats()
        assert st["delivered"] == 60 and st["published"] == 60, st
        assert len(_events(out, "publish")) == 60 and _events(out, "error") == []
    finally:
        m.close()
