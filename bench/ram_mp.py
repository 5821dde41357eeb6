# The heap a Rumor node takes, measured (`make bench-core` runs it under the
# 32-bit unix port, with .mpy files and frozen).  Prints one JSON object.
#     micropython -X heapsize=4M ram_mp.py espnow|lora
# Stages, each gc.mem_alloc() after gc.collect():
#   fakes    the fake radio modules (tests/firmware/fake_*.py) loaded: on a
#            board espnow is C and lora is micropython-lib's drivers, so
#            this much is taken off every figure below
#   import   `import rumor.node`, what main.py does
#   built    the Node built from the board's file (its radio adapter over
#            the fake, the config preset, every table of the engine)
#   running  node.run()'s tasks up (ticker, stats, radio, console) after
#            TRAFFIC frames from 8 neighbours: ring, dedup and peer tables
#            full, relays and digests sent, every stats event formatted
import gc

gc.collect()
_T0 = gc.mem_alloc()

import json  # noqa: E402
import sys  # noqa: E402

TRAFFIC = 600
# boards/esp32.json and boards/heltec-v2.json as deploy writes them (the
# ids are a real ESP32's size: past the small ints)
BOARDS = {
    "espnow": {"name": "esp32", "chip": "esp32", "radio": {"kind": "espnow", "channel": 1},
               "pins": {}, "config": "medium", "node_id": 0xC4123456,
               "node": {"stats_interval_ms": 200}},
    "lora": {"name": "heltec-v2", "chip": "esp32",
             "radio": {"kind": "lora", "modem": "sx1276", "freq_khz": 868100, "sf": 9, "bw": "125",
                       "coding_rate": 5, "output_power": 14, "preamble_len": 8,
                       "tx_ant": "PA_BOOST", "region": "EU868"},
             "pins": {"spi": 1, "sck": 5, "mosi": 27, "miso": 19, "cs": 18, "reset": 14,
                      "dio0": 26, "dio1": 35, "vext": 21},
             "config": "small", "node_id": 0xC4123456, "node": {"stats_interval_ms": 200}},
}


def used():
    gc.collect()
    return gc.mem_alloc()


def fakes(kind):
    if kind == "espnow":
        import fake_espnow

        fake_espnow.install()
        fake_espnow.board(b"\x24\x0a\xc4\x12\x34\x56")
    else:
        import fake_lora

        fake_lora.install()


def frames(mtu):
    """One DATA frame rewritten in place per message (the bench allocates
    nothing per frame), a DIGEST, and 8 neighbours' addresses."""
    import struct

    data = bytearray(16 + min(64, mtu - 16))
    struct.pack_into(">BBBBIIHH", data, 0, 0x21, 0, 0, 8, 0xA49ABCDE, 0xA49ABCDE, 0, 0)  # VT_DATA, v2
    digest = bytearray(16 + 7 * 4)
    struct.pack_into(">BBBBIIHH", digest, 0, 0x22, 0, 4, 0, 0xBD010203, 9, 4, 0)  # wire.VT_DIGEST
    for s in range(4):
        struct.pack_into(">IHB", digest, 16 + 7 * s, 0xA49ABCDE, s, 255)
    peers = [bytes((0x24, 0x0A, 0xC4, 0, 0, i + 1)) for i in range(8)]
    return data, digest, peers


def _forget_fake_logs(kind):
    import sys as _sys

    fake = _sys.modules.get("fake_espnow" if kind == "espnow" else "fake_lora")
    ether = getattr(fake, "ether", None)
    for name in ("sent", "onair"):
        log = getattr(ether, name, None)
        if isinstance(log, list):
            del log[:]


def main():
    kind = sys.argv[1] if len(sys.argv) > 1 else "espnow"
    out = {"radio": kind, "interpreter_start": _T0}
    base = used()
    fakes(kind)
    f0 = used()
    out["fakes"] = f0 - base

    import rumor.node

    out["frozen"] = not rumor.node.__file__.startswith("/") and rumor.node.__file__.endswith(".py")
    out["module_file"] = rumor.node.__file__
    out["import"] = used() - f0
    board = BOARDS[kind]
    lines = [0]

    def write(s):  # the console's output: counted, not kept
        lines[0] += 1

    node = rumor.node.Node(board, write=write)
    out["preset"] = board["config"]
    out["memory_bytes"] = node.gossip.memory_bytes()
    out["built"] = used() - f0
    import asyncio

    async def drive():
        data, digest, peers = frames(node.config.mtu)
        # what the radio adapter calls with each frame (the node's receive,
        # which feeds its neighbour table too, where the node has one)
        rx = getattr(node, "receive", node.gossip.receive)
        await asyncio.sleep_ms(20)  # node.run() starts its tasks
        for i in range(TRAFFIC):
            j = i >> 1  # each message twice: new, then a duplicate
            data[12] = (j >> 8) & 0xFF
            data[13] = j & 0xFF
            data[7] = i & 7  # sender: one of the 8 neighbours
            data[11] = 0xDE ^ (j & 3)  # origin: one of 4
            rx(data, peers[i & 7], -60)
            if i % 32 == 0:
                digest[7] = i & 7
                rx(digest, peers[i & 7], -60)
                await asyncio.sleep_ms(2)  # the ticker relays, digests, prunes
        await asyncio.sleep_ms(450)  # stats events fall due
        # the fakes log every frame sent, which a board's radio does not:
        # not the node's memory (and it grows with the relays sent)
        _forget_fake_logs(kind)
        out["running"] = used() - f0
        out["stats"] = {k: v for k, v in node.gossip.stats().items()
                        if k in ("delivered", "duplicates", "frames_out", "peer_count")}
        out["console_lines"] = lines[0]
        raise SystemExit

    async def both():
        asyncio.create_task(node.run())
        await drive()

    try:
        asyncio.run(both())
    except SystemExit:
        pass
    print(json.dumps(out))


main()
