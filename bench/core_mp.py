# Benchmarks of the gossip core, run by `make bench-core` under the MicroPython
# unix port (and by CPython for comparison).  Prints one JSON object.
#   micropython bench/core_mp.py speed    frames/s on the duplicate and new-message paths
#   micropython -X heapsize=96k bench/core_mp.py soak N    N frames in a board-sized heap
import gc
import json
import random
import struct
import sys

try:
    from time import ticks_diff, ticks_us
except ImportError:  # CPython
    from time import perf_counter_ns

    def ticks_us():
        return perf_counter_ns() // 1000

    def ticks_diff(a, b):
        return a - b

from rumor import Config, Gossip

MICROPYTHON = sys.implementation.name == "micropython"


class Clock:
    def __init__(self):
        self.t = 0

    def read(self):
        return self.t


KEY = b"bench-network-key-0123456789abcd"


def engine(cfg, key=None):
    ck = Clock()
    g = Gossip(cfg, 0x0A0B0C0D, ck.read, random.getrandbits, key=key)
    n = [0]

    def fwd(frame, to):
        n[0] += 1

    def deliver(msg):
        n[0] += 1

    g.on_forward(fwd)
    g.on_message(deliver)
    g.start()
    if key is not None:  # a keyed node that nobody tells the time takes its own
        ck.t += min(cfg.sync_wait_ms, cfg.max_message_age_ms >> 1)  # (the engine's wait)
        g.tick()
    return g, ck


def rate(n, fn, locked=False):
    """fn's frames per second.  locked: with micropython.heap_lock() held, as
    the node app runs receive(); MicroPython then keeps every call frame on
    the C stack instead of briefly on the heap, which is also faster."""
    gc.collect()
    lock = unlock = None
    if locked:
        import micropython

        lock = micropython.heap_lock
        unlock = micropython.heap_unlock
    t0 = ticks_us()
    if lock:
        lock()
    fn()
    if unlock:
        unlock()
    us = ticks_diff(ticks_us(), t0)
    return int(n * 1000000 / us) if us else 0


def _plain(out):
    """The duplicate and new-message paths, no key."""
    from rumor import wire

    # one sender sends every frame here: no per-sender rate limit, or the
    # bench would measure the limiter dropping them
    cfg = Config.medium(rate_limit=0, origin_rate=0)
    g, ck = engine(cfg)
    frm = b"\x02\x00\x00\x00\x00\x01"
    frames = [wire.encode_data(0x01020304, s, bytes(32), sender=0x01020304) for s in range(16)]
    for f in frames:
        g.receive(f, frm)
    # the relays and their watches done (a second later), as for most copies
    # a node hears: a copy that comes while ours is pending is judged too
    for _ in range(3):  # (a relay goes, then its watch ends)
        ck.t += 1000
        g.tick()
    copies = [wire.encode_data(0x01020304, s, bytes(32), sender=0x05060708, hops=1) for s in range(16)]
    reps = 10000

    def dups():
        for _ in range(reps):
            for f in copies:
                g.receive(f, frm)

    out["duplicate_frames_per_s"] = rate(reps * 16, dups)
    if MICROPYTHON:
        out["duplicate_frames_per_s_heap_locked"] = rate(reps * 16, dups, True)
    # New messages: one frame rewritten in place with a new seq each time, so
    # the bench itself allocates nothing and the heap stays board-sized.
    n = 50000
    fresh = bytearray(wire.encode_data(0x01020304, 0, bytes(32), sender=0x01020304))
    g, ck = engine(cfg)

    def new():
        c = ck
        for s in range(n):
            fresh[12] = (s >> 8) & 0xFF
            fresh[13] = s & 0xFF
            c.t += 1  # time moves: each message is born after the ids the table forgot
            g.receive(fresh, frm)

    out["new_frames_per_s"] = rate(n, new)
    out["new_frames_delivered"] = g.stats()["delivered"]
    if MICROPYTHON:
        g, ck = engine(cfg)
        out["new_frames_per_s_heap_locked"] = rate(n, new, True)
    out["new_frames_evicted"] = g.stats()["evicted"]


def _keyed(out):
    """The same with a network key: every frame's HMAC-SHA256 tag is checked first."""
    from rumor import wire

    cfg = Config.medium(rate_limit=0, origin_rate=0)
    frm = b"\x02\x00\x00\x00\x00\x01"
    g, ck = engine(cfg, KEY)
    sealed = [wire.encode_data(0x01020304, s, bytes(32), sender=0x01020304, key=KEY, stamp=0)
              for s in range(16)]
    for f in sealed:
        g.receive(f, frm)
    for _ in range(3):  # (as above: nothing pending)
        ck.t += 1000
        g.tick()
    kreps = 2000

    def kdups():
        for _ in range(kreps):
            for f in sealed:
                g.receive(f, frm)

    out["authenticated_duplicate_frames_per_s"] = rate(kreps * 16, kdups)
    kn = 3000
    fresh_k = [None] * kn  # (sized first: a growing list fragments the heap)
    for s in range(kn):
        # stamped with the network time it will arrive at (one a millisecond)
        fresh_k[s] = wire.encode_data(0x01020304, s, bytes(32), sender=0x01020304, key=KEY,
                                      stamp=(3001 + s) >> 6)
    g, ck = engine(cfg, KEY)

    def knew():
        c = ck
        for f in fresh_k:
            c.t += 1
            g.receive(f, frm)

    out["authenticated_new_frames_per_s"] = rate(kn, knew)
    out["authenticated_new_frames_delivered"] = g.stats()["delivered"]


def speed():
    out = {}
    _plain(out)
    _keyed(out)
    # The 3000 signed frames were built amid hashing garbage: with them
    # still alive the large preset's tables found no hole big enough now and
    # then (MemoryError with megabytes free).  _keyed() has returned, so its
    # frames and engines are garbage now; collect before the big tables.
    gc.collect()
    out["memory_bytes"] = {}
    for name in ("small", "medium", "large"):
        e, _ = engine(getattr(Config, name)())
        out["memory_bytes"][name] = e.memory_bytes()
        e = None
        gc.collect()
        e, _ = engine(getattr(Config, name)(), KEY)
        out["memory_bytes"][name + "_with_key"] = e.memory_bytes()
        e = None
        gc.collect()
    return out


def _frames(keyed):
    """The soak's DATA (64-byte payload) and DIGEST (20 ids) frames, built by
    hand: a board has no wire.py loaded, and its code would take the heap the
    soak is about.  Keyed: flagged, with room for the stamp and tag."""
    trl = 12 if keyed else 0
    a = 0x80 if keyed else 0
    frame = bytearray(16 + 64 + trl)
    struct.pack_into(">BBBBIIHH", frame, 0, 0x21, a, 0, 32, 0x01020304, 0x01020304, 0, 0)  # VT_DATA, v2
    digest = bytearray(16 + 7 * 20 + trl)
    struct.pack_into(">BBBBIIHH", digest, 0, 0x22, a, 20, 0, 0x0708, 9, 20, 0)  # wire.VT_DIGEST
    for s in range(20):
        struct.pack_into(">IHB", digest, 16 + 7 * s, 0x01020304, s, 255)
    return frame, digest


def soak(n, keyed=False):
    """n frames through one engine in a board-sized heap: nothing may grow.
    keyed: with a network key (hashing allocates, and the garbage must go)."""
    # one origin sends 500 new messages/s here, through 16 neighbours: no
    # per-origin limit, or the soak would mostly measure its refusals
    cfg = Config.medium(prune_interval_ms=2000, max_message_age_ms=10000, origin_rate=0,
                        sync_wait_ms=0)
    # as node.py does before it builds the engine: its tables then take one
    # piece of heap, not the gaps that loading the modules left
    gc.collect()
    g, ck = engine(cfg, KEY if keyed else None)
    g.tick()
    frame, digest = _frames(keyed)
    auth = g._auth
    if auth is not None:
        auth.sign(digest, False)  # (stamp 0: the first frame heard sets the clock)
    peers = [bytes((2, 0, 0, 0, 0, i)) for i in range(16)]
    gc.collect()
    start = gc.mem_alloc()
    free0 = gc.mem_free()
    low = free0
    for i in range(n):
        j = i >> 1  # every message arrives twice: a new frame, then a duplicate
        frame[12] = (j >> 8) & 0xFF
        frame[13] = j & 0xFF
        frame[7] = i & 15
        if auth is not None and not i & 1:  # a new message: stamp and sign it
            st = ck.t >> 6
            frame[-12] = 0
            frame[-11] = (st >> 16) & 0xFF
            frame[-10] = (st >> 8) & 0xFF
            frame[-9] = st & 0xFF
            auth.sign(frame, True)
        g.receive(frame, peers[i & 15])
        if i % 64 == 0:
            digest[7] = i & 15
            if auth is not None:
                st = ck.t >> 6
                digest[-11] = (st >> 16) & 0xFF
                digest[-10] = (st >> 8) & 0xFF
                digest[-9] = st & 0xFF
                auth.sign(digest, False)
            g.receive(digest, peers[i & 15])
            f = gc.mem_free()
            if f < low:
                low = f
        ck.t += 1
        g.tick()
    gc.collect()
    s = g.stats()
    return {
        "frames": n,
        "heap_bytes": gc.mem_alloc() + gc.mem_free(),
        "heap_alloc_start": start,
        "heap_alloc_end": gc.mem_alloc(),
        "heap_free_low": low,
        "delivered": s["delivered"],
        "bad_tag": s["bad_tag"],
        "stale": s["stale"],
        "duplicates": s["duplicates"],
        "evicted": s["evicted"],
        "expired": s["expired"],
        "message_count": s["message_count"],
        "memory_bytes": g.memory_bytes(),
    }


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else "speed"
    if what == "speed":
        r = speed()
    else:
        r = soak(int(sys.argv[2]) if len(sys.argv) > 2 else 100000, what == "soak-key")
    r["interpreter"] = sys.implementation.name
    print(json.dumps(r))


main()
