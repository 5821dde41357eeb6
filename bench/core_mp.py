# Benchmarks of the gossip core, run by `make bench-core` under the MicroPython
# unix port (and by CPython for comparison).  Prints one JSON object.
#   micropython bench/core_mp.py speed    frames/s on the duplicate and new-message paths
#   micropython -X heapsize=96k bench/core_mp.py soak N    N frames in a board-sized heap
import gc
import json
import random
import sys

try:
    from time import ticks_diff, ticks_us
except ImportError:  # CPython
    from time import perf_counter_ns

    def ticks_us():
        return perf_counter_ns() // 1000

    def ticks_diff(a, b):
        return a - b

from rumor import Config, Gossip, wire

MICROPYTHON = sys.implementation.name == "micropython"


class Clock:
    def __init__(self):
        self.t = 0

    def read(self):
        return self.t


def engine(cfg):
    ck = Clock()
    g = Gossip(cfg, 0x0A0B0C0D, ck.read, random.getrandbits)
    n = [0]

    def fwd(frame, to):
        n[0] += 1

    def deliver(msg):
        n[0] += 1

    g.on_forward(fwd)
    g.on_message(deliver)
    g.start()
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


def speed():
    out = {}
    cfg = Config.medium()
    g, ck = engine(cfg)
    frm = b"\x02\x00\x00\x00\x00\x01"
    frames = [wire.encode_data(0x01020304, s, bytes(32), sender=0x01020304) for s in range(16)]
    for f in frames:
        g.receive(f, frm)
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
    out["memory_bytes"] = {}
    for name in ("small", "medium", "large"):
        e, _ = engine(getattr(Config, name)())
        out["memory_bytes"][name] = e.memory_bytes()
    return out


def soak(n):
    cfg = Config.medium(prune_interval_ms=2000, max_message_age_ms=10000)
    g, ck = engine(cfg)
    frame = bytearray(wire.encode_data(0x01020304, 0, bytes(64), sender=0x01020304))
    digest = bytearray(wire.encode_digest(0x0708, [(0x01020304, s) for s in range(20)], summary=9))
    peers = [bytes((2, 0, 0, 0, 0, i)) for i in range(32)]
    gc.collect()
    start = gc.mem_alloc()
    free0 = gc.mem_free()
    low = free0
    for i in range(n):
        j = i >> 1  # every message arrives twice: a new frame, then a duplicate
        frame[12] = (j >> 8) & 0xFF
        frame[13] = j & 0xFF
        frame[7] = i & 31
        g.receive(frame, peers[i & 31])
        if i % 64 == 0:
            digest[7] = i & 31
            g.receive(digest, peers[i & 31])
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
        r = soak(int(sys.argv[2]) if len(sys.argv) > 2 else 100000)
    r["interpreter"] = sys.implementation.name
    print(json.dumps(r))


main()
