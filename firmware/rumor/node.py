# The node application: board.json -> radio adapter + Gossip engine + console,
# run together in one asyncio loop.  main.py calls run().
#
# board.json is what `rumor deploy` writes: the board's file (boards/*.json)
# plus "node_id" and an optional "node" object of settings:
#     {"level": "info", "stats_interval_ms": 10000, "config": {field: value}}
# (config: overrides of the preset's fields, e.g. {"mode": "flood"}; app: the
# settings of the user's application).
#
# app.py (or app.mpy), if the board has one, is the user's application
# (docs/apps.md): imported once the engine runs, its setup(node) gets a
# rumor.app_api.App.  Without one, app_api is never imported.
#
# rumor.key, if the board has one, is the network key (16..64 raw bytes,
# `rumor deploy --key-file`): every frame is then tagged with it and frames
# without a good tag are dropped.  A rumor.key that cannot be used stops the
# node at boot: it must not run open when it was meant to be authenticated.
# The key is never printed; events name it by its fingerprint.
#
# rumor.time holds the network clock (Gossip.net_time()) saved now and then,
# restored at boot so that a rebooted node still refuses replays of frames
# older than what it had seen.
import gc
import os
import sys
import time

from . import console as con
from .config import Config
from .counters import BAD_TAG, DUPLICATES, MALFORMED
from .gossip import Gossip
from .neighbours import NO_SNR, Neighbours

_ADDR_HEX = "0123456789abcdef"
KEY_FILE = "rumor.key"
TIME_FILE = "rumor.time"
_HEX_TEXT = b"0123456789abcdefABCDEF \t\r\n"
KEY_MIN = 16
KEY_MAX = 64
# Flash wear: every save of rumor.time rewrites a small file.  littlefs (the
# ESP32 port's filesystem) puts each rewrite in a new block and spreads the
# erases over the whole partition; FAT rewrites the same sectors.  So the
# clock is saved at most once a minute (node.time_save_ms may make that
# rarer, never more often), only when it moved, and at a clean stop.
TIME_SAVE_MIN_MS = 60000


def _hex(b):
    return "".join(_ADDR_HEX[x >> 4] + _ADDR_HEX[x & 15] for x in b)


def _ticks_ms():
    return time.ticks_ms()


def _boot_entropy():
    import os

    try:
        b = os.urandom(4)
    except (AttributeError, OSError):
        return int(time.time()) & 0x3FFFFFFF
    return ((b[0] & 0x3F) << 24) | (b[1] << 16) | (b[2] << 8) | b[3]


def load_key(path=KEY_FILE):
    """The network key in path (raw bytes), or None if there is no such
    file; ValueError with a clear message (never the key) if unusable."""
    import os

    try:
        size = os.stat(path)[6]
    except OSError:
        return None
    if not KEY_MIN <= size <= KEY_MAX:
        raise ValueError("%s has %d bytes, a network key has %d..%d: not starting "
                         "(`rumor deploy --key-file` puts a good one, `--no-key` removes it)"
                         % (path, size, KEY_MIN, KEY_MAX))
    try:
        with open(path, "rb") as f:
            key = f.read(KEY_MAX + 1)
    except OSError:
        raise ValueError("%s cannot be read: not starting" % path)
    if not KEY_MIN <= len(key) <= KEY_MAX:
        raise ValueError("%s has %d bytes, a network key has %d..%d: not starting"
                         % (path, len(key), KEY_MIN, KEY_MAX))
    for b in key:
        if b not in _HEX_TEXT:
            return key
    # hex text copied as it is (`rumor deploy --key-file` converts it): its
    # bytes would be another key than the one every other node has
    raise ValueError("%s holds hex text, not the raw key: not starting "
                     "(`rumor deploy --key-file` puts it on the board as it must be)" % path)


def fingerprint(key):
    """What names a key in events: the first 4 bytes of its sha256, hex."""
    import hashlib

    return _hex(hashlib.sha256(key).digest()[:4])


def _read_time(path):
    try:
        with open(path) as f:
            s = f.read(16)
    except OSError:
        return -1
    # "<digits>\n": without its newline the file was cut short
    if not 2 <= len(s) <= 11 or s[-1] != "\n" or not s[:-1].isdigit():
        return -1
    t = int(s[:-1])
    return t if t < 1 << 30 else -1


def load_net_time(path=TIME_FILE):
    """The network clock save_net_time() left in path, or -1 (none, or not
    readable).  The .tmp is the fallback for a filesystem (FAT) whose rename
    removes the old file first: if that was interrupted, the new one is whole."""
    t = _read_time(path)
    return t if t >= 0 else _read_time(path + ".tmp")


def save_net_time(t, path=TIME_FILE):
    """Write t to path through a temporary file and a rename, so a crash or a
    power cut mid-write leaves the old value or the new one, never a mix."""
    import os

    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % t)
    os.rename(tmp, path)


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
    """key: the network key (None: an open mesh).  time_path: where the
    network clock is kept (authenticated meshes only)."""

    def __init__(self, board, write=None, clock=None, key=None, time_path=TIME_FILE):
        import random

        self.board = board
        self.clock = clock or _ticks_ms
        self.node_id = node_id_of(board)
        settings = board.get("node", {})
        self.console = c = con.Console(self.node_id, self.clock, write,
                                       con.level_of(settings.get("level", "info")))
        self.stats_interval_ms = settings.get("stats_interval_ms", 10000)
        # deliver events carry the payload (node.payload_in_events: false on busy meshes)
        self.payload_in_events = settings.get("payload_in_events", True) is not False
        save_ms = settings.get("time_save_ms", TIME_SAVE_MIN_MS)
        if not isinstance(save_ms, int):
            raise ValueError("node.time_save_ms must be a number of milliseconds")
        self.time_save_ms = save_ms if save_ms > TIME_SAVE_MIN_MS else TIME_SAVE_MIN_MS
        self.time_path = time_path
        self.radio = make_radio(board, self.node_id)
        self.config = make_config(board, self.radio)
        if sys.platform != "esp32":
            # the unix port starts every process on the same sequence; the
            # ESP32's is seeded from its hardware RNG, better left alone.
            # Not the node id alone: a rebooted node would start on the same
            # sequence numbers, ids its neighbours remember as seen.
            random.seed(self.node_id ^ _boot_entropy())
        # The engine allocates all its tables now, once, for good: collect
        # first, so that they are laid out in one piece of heap rather than
        # in the gaps that loading and parsing the modules and board.json
        # left (fragmentation, not the number of modules, is what fails a
        # tight heap; see docs/core-api.md).
        gc.collect()
        self.gossip = g = Gossip(self.config, self.node_id, clock=self.clock,
                                 rand=random.getrandbits, key=key)
        # only what names the key is kept here; the engine holds the key
        self.auth = key is not None
        self.key_fp = fingerprint(key) if key is not None else None
        self.saved_time = -1  # the network clock as last saved (or restored)
        self._save_failed = False
        if self.auth:
            t = load_net_time(time_path)
            if t >= 0:
                g.set_net_time(t)
                self.saved_time = t
        g.on_message(self._deliver)
        g.on_forward(self._forward)
        self.neighbours = Neighbours(self.config.max_peers, self.node_id)
        self._rssi = 0  # of the frame being received (deliver events show it)
        self._lora = hasattr(self.radio, "last_snr")
        c.commands = {"inject": self.cmd_inject, "stats": self.cmd_stats,
                      "info": self.cmd_info, "config": self.cmd_config,
                      "peers": self.cmd_peers, "level": self.cmd_level, "help": self.cmd_help}
        self._dup = 0
        self._bad = 0
        self._tag = 0
        self.app = None  # the application (app_api.App) once app.py is set up

    # -- engine callbacks ------------------------------------------------------
    def _deliver(self, msg):
        if self.console.level >= con.INFO:  # below it nothing is formatted (nor allocated)
            o = msg.origin
            f = ("origin", "%08x" % o, "seq", msg.seq, "id", "%08x%04x" % (o, msg.seq),
                 "hops", msg.hops, "age_ms", msg.age_ms, "priority", msg.priority,
                 "len", len(msg), "rssi", self._rssi or None)
            if self.payload_in_events:
                text, is_hex, cut = con.show_payload(msg.payload())
                f += ("payload", text)
                if is_hex:
                    f += ("payload_hex", True)
                if cut:
                    f += ("payload_cut", True)
            self.console.emit("deliver", *f)
        a = self.app  # no application: this test is all a message costs here
        if a is not None:
            a.deliver(msg)

    def receive(self, frame, src=None, rssi=0):
        """What the radio adapters call with every frame heard (node.py hands
        itself to radio.run() in the engine's place): the engine's receive(),
        and the sender's signal into the neighbour table when the engine took
        the frame (not malformed, not a forgery)."""
        c = self.gossip.counters
        m = c[MALFORMED]
        b = c[BAD_TAG]
        self._rssi = rssi
        new = self.gossip.receive(frame, src, rssi)
        if c[MALFORMED] == m and c[BAD_TAG] == b:
            self.neighbours.hear(frame, rssi, self.radio.last_snr if self._lora else NO_SNR,  # pyright: ignore[reportAttributeAccessIssue]  # only LoRaRadio has last_snr; _lora says so
                                 self.clock())
        return new

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
        n = self.gossip.counters
        reason = None
        if n[DUPLICATES] != self._dup:
            reason = "duplicate"
        elif n[MALFORMED] != self._bad:
            reason = "malformed"
        elif n[BAD_TAG] != self._tag:
            reason = "bad_tag"
        self._dup = n[DUPLICATES]
        self._bad = n[MALFORMED]
        self._tag = n[BAD_TAG]
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
        # [addr, node, ms since heard, static, rssi, snr, frames heard]
        rows = []
        nb = self.neighbours
        now = self.clock()
        seen = []
        for addr, nid, ms, static in self.gossip.peers():
            sig = nb.row(nid, now) if nid is not None else None
            if sig is not None:
                seen.append(nid)
                ms = sig[3] if ms is None or sig[3] < ms else ms
            rows.append([_hex(addr) if addr else None, "%08x" % nid if nid is not None else None,
                         ms, static, sig[0] if sig else None, sig[1] if sig else None,
                         sig[2] if sig else 0])
        for nid in nb.ids():  # heard, but no longer in the engine's table
            if nid not in seen:
                sig = nb.row(nid, now)
                if sig is not None:
                    rows.append([None, "%08x" % nid, sig[3], False, sig[0], sig[1], sig[2]])
        self.console.emit("peers", "peers", rows, level=con.ERROR)

    def cmd_info(self, arg=""):
        self.boot_event("info")

    def cmd_config(self, arg=""):
        c = self.config
        self.console.emit("config", "preset", self.board.get("config", "medium"),
                          "config", c.to_dict(),
                          "overrides", self.board.get("node", {}).get("config", {}),
                          "payload_in_events", self.payload_in_events,
                          "stats_interval_ms", self.stats_interval_ms, level=con.ERROR)

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
                          "auth", self.auth, "key_fp", self.key_fp,
                          "net_time", self.gossip.net_time(), level=level)

    # -- the network clock, kept across reboots ------------------------------------
    def save_time(self):
        """Save the network clock if it moved since the last save; True if
        written.  A failure is reported once (until a save works again)."""
        if not self.auth:
            return False
        t = self.gossip.net_time()
        if t < 0 or t == self.saved_time:
            return False
        try:
            save_net_time(t, self.time_path)
        except OSError as e:
            if not self._save_failed:
                self._save_failed = True
                self.console.error("net_time", "cannot save %s (errno %s)"
                                   % (self.time_path, e.args[0] if e.args else "?"))
            return False
        self._save_failed = False
        self.saved_time = t
        return True

    # -- the loop ----------------------------------------------------------------
    def boot_event(self, ev="boot"):
        b = self.board
        self.console.emit(ev, "v", con.VERSION, "board", b.get("name"), "chip", b.get("chip"),
                          "radio", b["radio"].get("kind"), "mode", self.config.mode,
                          "mtu", self.config.mtu, "memory_bytes", self.gossip.memory_bytes(),
                          "level", con.LEVELS[self.console.level], "auth", self.auth,
                          "key_fp", self.key_fp, "net_time", self.gossip.net_time(),
                          level=con.ERROR)

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

    async def _time_saver(self):
        import asyncio

        while True:
            await asyncio.sleep_ms(self.time_save_ms)  # >= 1 min: flash wear
            self.save_time()

    async def run(self):
        import asyncio

        self.gossip.start()
        self.boot_event()
        asyncio.create_task(self._ticker())
        if self.stats_interval_ms:
            asyncio.create_task(self._stats())
        if self.auth:
            asyncio.create_task(self._time_saver())
        if self.board["radio"].get("kind") == "udp":
            asyncio.create_task(self.radio.run(self, self._heard))  # pyright: ignore[reportCallIssue]  # only UdpRadio.run takes on_frame; kind udp is UdpRadio
        else:
            asyncio.create_task(self.radio.run(self))
        self.load_app()
        await self.console.run()

    def load_app(self):
        """Import app.py (or app.mpy) and call its setup() (docs/apps.md);
        without one, rumor.app_api is not even loaded (its RAM stays free)."""
        import os

        for f in ("app.py", "app.mpy"):
            try:
                os.stat(f)
            except OSError:
                continue
            from . import app_api

            app_api.load(self)
            return


def boot(path="board.json", key_path=KEY_FILE, time_path=TIME_FILE, write=None):
    """The Node that board.json, rumor.key and rumor.time make; ValueError
    (a message for the boot error event) if it must not start."""
    board = load_board(path)
    key = load_key(key_path)
    return Node(board, write=write, key=key, time_path=time_path)


def _remove_tree(p):
    try:
        os.remove(p)
    except OSError:  # a folder
        for f in os.listdir(p):
            _remove_tree(p + "/" + f)
        os.rmdir(p)


def drop_old():
    """`rumor deploy` keeps what it replaced as NAME.old (rumor.old/ for the
    package) and puts it back if the node does not boot; the node booted
    (its Node is built), so that will not be needed: remove them."""
    try:
        for f in os.listdir():
            if f.endswith(".old"):
                _remove_tree(f)
    except OSError:
        pass  # a full or read-only filesystem: the node runs all the same


def run(path="board.json", key_path=KEY_FILE, time_path=TIME_FILE):
    """Boot from board.json (and rumor.key, rumor.time) and run until Ctrl-C
    (then the REPL takes over)."""
    import asyncio

    try:
        node = boot(path, key_path, time_path)
    except ValueError as e:
        sys.stdout.write(con.format_event("error", "00000000", _ticks_ms(),
                                          ("cmd", "boot", "msg", str(e.args[0] if e.args else e)))
                         + "\n")
        return None
    drop_old()
    try:
        asyncio.run(node.run())
    except KeyboardInterrupt:
        sys.stdout.write("rumor: stopped (Ctrl-C); the REPL is yours\r\n")
    finally:
        asyncio.new_event_loop()
        node.save_time()  # a clean stop keeps the clock up to the moment
    return node
