# The node application: board.json -> radio adapter + Gossip engine + console,
# run together in one asyncio loop.  main.py calls run().
#
# board.json is what `rumor deploy` writes: the board's file (boards/*.json)
# plus "node_id" and an optional "node" object of settings:
#     {"level": "info", "stats_interval_ms": 10000, "config": {field: value}}
# (config: overrides of the preset's fields, e.g. {"mode": "flood"}).
import sys
import time

from . import console as con
from .config import Config
from .gossip import Gossip

_ADDR_HEX = "0123456789abcdef"


def _hex(b):
    return "".join(_ADDR_HEX[x >> 4] + _ADDR_HEX[x & 15] for x in b)


def _ticks_ms():
    return time.ticks_ms()


def load_board(path="board.json"):
    """The board dict; ValueError with a clear message if unusable."""
    import json

    try:
        with open(path) as f:
            board = json.load(f)
    except OSError:
        raise ValueError("no %s on this board (run `rumor deploy`)" % path)
    except ValueError:
        raise ValueError("%s is not valid JSON" % path)
    if not isinstance(board, dict) or not isinstance(board.get("radio"), dict):
        raise ValueError("%s has no radio object" % path)
    return board


def node_id_of(board):
    """board["node_id"] (int or hex string), else from the chip's unique id."""
    nid = board.get("node_id")
    if isinstance(nid, str):
        nid = int(nid, 16)
    if isinstance(nid, int):
        return nid & 0xFFFFFFFF
    try:
        import machine

        u = machine.unique_id()
        return ((u[-4] << 24) | (u[-3] << 16) | (u[-2] << 8) | u[-1]) & 0xFFFFFFFF
    except (ImportError, AttributeError):
        import random

        return random.getrandbits(16) << 16 | random.getrandbits(16)


def make_radio(board, node_id):
    cfg = board["radio"]
    kind = cfg.get("kind")
    if kind == "udp":
        from .radio_udp import UdpRadio

        return UdpRadio(cfg, node_id)
    if kind == "espnow":
        from .radio_espnow import EspNowRadio

        return EspNowRadio(cfg)
    if kind == "lora":
        from .radio_lora import LoRaRadio

        return LoRaRadio(cfg, board.get("pins", {}))
    raise ValueError("unknown radio kind %r" % (kind,))


def make_config(board, radio):
    preset = board.get("config", "medium")
    if preset not in ("small", "medium", "large"):
        raise ValueError("unknown config preset %r" % (preset,))
    cfg = getattr(Config, preset)()
    over = dict(board.get("node", {}).get("config", {}))
    over["broadcast"] = radio.broadcast
    over["mtu"] = radio.mtu
    return cfg.replace(**over)


class Node:
    def __init__(self, board, write=None, clock=None):
        import random

        self.board = board
        self.clock = clock or _ticks_ms
        self.node_id = node_id_of(board)
        settings = board.get("node", {})
        self.console = c = con.Console(self.node_id, self.clock, write,
                                       con.level_of(settings.get("level", "info")))
        self.stats_interval_ms = settings.get("stats_interval_ms", 10000)
        self.radio = make_radio(board, self.node_id)
        self.config = make_config(board, self.radio)
        if sys.platform != "esp32":
            # the unix port starts every process on the same sequence; the
            # ESP32's is seeded from its hardware RNG, better left alone
            random.seed(self.node_id)
        self.gossip = g = Gossip(self.config, self.node_id, clock=self.clock,
                                 rand=random.getrandbits)
        g.on_message(self._deliver)
        g.on_forward(self._forward)
        c.commands = {"inject": self.cmd_inject, "stats": self.cmd_stats,
                      "peers": self.cmd_peers, "level": self.cmd_level, "help": self.cmd_help}
        self._dup = 0
        self._bad = 0

    # -- engine callbacks ------------------------------------------------------
    def _deliver(self, msg):
        o = msg.origin
        self.console.emit("deliver", "origin", "%08x" % o, "seq", msg.seq,
                          "id", "%08x%04x" % (o, msg.seq), "hops", msg.hops,
                          "age_ms", msg.age_ms, "priority", msg.priority, "len", len(msg))

    def _forward(self, frame, to_peers):
        ok = self.radio.send(frame, to_peers)
        c = self.console
        if not ok:
            c.emit("drop", "reason", "radio_send", "len", len(frame), level=con.WARN)
        elif c.level >= con.DEBUG:
            c.emit("send", "type", frame[0] & 15, "len", len(frame),
                   "to", "*" if to_peers is None else [_hex(p) for p in to_peers],
                   level=con.DEBUG)

    def _heard(self, is_new, frame, src):
        # The receive path: nothing is formatted here below debug level.
        c = self.console
        if c.level < con.DEBUG or is_new:
            return
        g = self.gossip
        reason = None
        if g.duplicates != self._dup:
            reason = "duplicate"
        elif g.malformed != self._bad:
            reason = "malformed"
        self._dup = g.duplicates
        self._bad = g.malformed
        if reason:
            c.emit("drop", "reason", reason, "len", len(frame), "from", _hex(src), level=con.DEBUG)

    # -- commands ----------------------------------------------------------------
    def cmd_inject(self, arg):
        payload, prio, req = con.parse_inject(arg, self.config.max_payload)
        mid = self.gossip.publish(payload, prio)
        seq = mid & 0xFFFF
        self.console.emit("publish", "origin", self.console.node_hex, "seq", seq,
                          "id", "%s%04x" % (self.console.node_hex, seq), "priority", prio,
                          "len", len(payload), "req", req, level=con.ERROR)

    def cmd_stats(self, arg=""):
        self.emit_stats(con.ERROR)

    def cmd_peers(self, arg=""):
        rows = []
        for addr, nid, ms, static in self.gossip.peers():
            rows.append([_hex(addr) if addr else None, "%08x" % nid if nid is not None else None,
                         ms, static])
        self.console.emit("peers", "peers", rows, level=con.ERROR)

    def cmd_level(self, arg):
        if arg:
            self.console.level = con.level_of(arg)
        self.console.emit("level", "level", con.LEVELS[self.console.level], level=con.ERROR)

    def cmd_help(self, arg=""):
        self.console.emit("help", "commands", sorted(self.console.commands), level=con.ERROR)

    def emit_stats(self, level=con.INFO):
        import gc

        s = self.gossip.stats()
        try:
            free = gc.mem_free()
        except AttributeError:
            free = None
        self.console.emit("stats", "core", s, "radio", self.radio.stats(), "mem_free", free,
                          level=level)

    # -- the loop ----------------------------------------------------------------
    def boot_event(self):
        b = self.board
        self.console.emit("boot", "board", b.get("name"), "chip", b.get("chip"),
                          "radio", b["radio"].get("kind"), "mode", self.config.mode,
                          "mtu", self.config.mtu, "memory_bytes", self.gossip.memory_bytes(),
                          "level", con.LEVELS[self.console.level], level=con.ERROR)

    async def _ticker(self):
        import asyncio

        g = self.gossip
        while True:
            g.tick()
            d = g.next_deadline()
            # A receive can bring a deadline closer than the one we sleep
            # towards; waking every 10 ms at most bounds the lateness.
            await asyncio.sleep_ms(d if d < 10 else 10)

    async def _stats(self):
        import asyncio

        while True:
            await asyncio.sleep_ms(self.stats_interval_ms)
            self.emit_stats()

    async def run(self):
        import asyncio

        self.gossip.start()
        self.boot_event()
        asyncio.create_task(self._ticker())
        if self.stats_interval_ms:
            asyncio.create_task(self._stats())
        if self.board["radio"].get("kind") == "udp":
            asyncio.create_task(self.radio.run(self.gossip, self._heard))  # pyright: ignore[reportCallIssue]  # only UdpRadio.run takes on_frame; kind udp is UdpRadio
        else:
            asyncio.create_task(self.radio.run(self.gossip))
        await self.console.run()


def run(path="board.json"):
    """Boot from board.json and run until Ctrl-C (then the REPL takes over)."""
    import asyncio

    try:
        node = Node(load_board(path))
    except ValueError as e:
        sys.stdout.write(con.format_event("error", "00000000", _ticks_ms(),
                                          ("cmd", "boot", "msg", str(e.args[0] if e.args else e)))
                         + "\n")
        return None
    try:
        asyncio.run(node.run())
    except KeyboardInterrupt:
        sys.stdout.write("rumor: stopped (Ctrl-C); the REPL is yours\r\n")
    finally:
        asyncio.new_event_loop()
    return node
