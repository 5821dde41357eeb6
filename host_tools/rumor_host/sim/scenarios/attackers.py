"""The attackers of the resilience scenario: nodes without the network key.

- Replayer: records frames it hears and rebroadcasts them later (1 s to
  minutes), DATA with its unauthenticated age and hops reset;
- Forger: sends a frame every interval, cycling through FORGE_KINDS (guessed
  tags, genuine frames altered, untagged frames, forged digests/requests).

Both are engine Actors (hooks.py): the engine treats them as it treats a
Gossip, but they never publish and never count as delivering nodes.
"""

from __future__ import annotations

import heapq
import random
import struct
from collections.abc import Callable
from typing import Any

from rumor import wire as W

from ..hooks import Actor
from .common import NET_TIME0


class Replayer(Actor):
    """Records frames it hears and puts them on air again later, unchanged but
    for DATA's unauthenticated fields: every other replay of a DATA frame has
    its age and hops reset to 0 and the replayer as sender (the tag does not
    cover them, so a receiver can't tell); the rest go out byte for byte."""

    def __init__(self, v: int, node_id: int, clock: Callable[[], int], rand: Callable[[int], int],
                 send: Callable[[bytes, Any], None], delays_ms: tuple[int, ...] = (1000,),
                 every: int = 3, cap: int = 5000):
        super().__init__(v, node_id, clock, rand, send)
        self.delays = tuple(delays_ms)
        self.every = every
        self.cap = cap
        self.heap: list[tuple[int, int, bytes]] = []
        self.seen: set[bytes] = set()
        self.k = 0
        self.n = 0
        self.counts = {"heard": 0, "recorded": 0, "replayed": 0, "replayed_data": 0}

    def _at(self, due: int, frame: bytes) -> None:
        self.n += 1
        heapq.heappush(self.heap, (due, self.n, frame))

    def receive(self, frame, from_peer=None, rssi=0):
        self.counts["heard"] += 1
        if len(frame) < 8 or len(self.heap) >= self.cap:
            return False
        now = self.clock()
        t = frame[0] & 0x0F
        if t == W.DATA and len(frame) >= W.DATA_HDR:
            mid = bytes(frame[8:14])
            if mid in self.seen:
                return False
            self.seen.add(mid)
            self.counts["recorded"] += 1
            for j, d in enumerate(self.delays):
                f = bytearray(frame)
                if j % 2 == 0:
                    f[2] = 0  # hops
                    f[4:8] = struct.pack(">I", self.node_id)
                    f[14:16] = b"\0\0"  # age
                self._at(now + d, bytes(f))
            return True
        if t in (W.DIGEST, W.REQUEST):
            self.k += 1
            if self.k % self.every:
                return False
            self.counts["recorded"] += 1
            self._at(now + self.delays[(self.k // self.every) % len(self.delays)], bytes(frame))
            return True
        return False

    def tick(self):
        now = self.clock()
        while self.heap and self.heap[0][0] <= now:
            _due, _n, f = heapq.heappop(self.heap)
            self.counts["replayed"] += 1
            if f[0] & 0x0F == W.DATA:
                self.counts["replayed_data"] += 1
            self.send(f, None)

    def next_deadline(self):
        if not self.heap:
            return 3_600_000
        return max(0, self.heap[0][0] - self.clock())

    def stats(self):
        return dict(self.counts)


FORGE_KINDS = ("random_data_bad_tag", "payload_altered", "stamp_altered", "untagged_data",
               "forged_digest", "forged_request", "digest_altered", "truncated_tag")


class Forger(Actor):
    """Sends a frame every interval_ms, cycling through FORGE_KINDS.  Without
    the key it can only guess tags; it copies what it can (the newest stamp it
    heard, genuine frames and ids) to make its frames look fresh and real."""

    def __init__(self, v: int, node_id: int, clock: Callable[[], int], rand: Callable[[int], int],
                 send: Callable[[bytes, Any], None], interval_ms: int = 100, seed: int = 0):
        super().__init__(v, node_id, clock, rand, send)
        self.interval = interval_ms
        self.rng = random.Random(f"forger/{seed}")
        self.next = 0
        self.i = 0
        self.stamp = NET_TIME0  # the newest stamp heard (stamps are not secret)
        self.data: list[bytes] = []  # genuine DATA frames heard (a few)
        self.digests: list[bytes] = []
        self.ids: list[tuple[int, int]] = []
        self.counts = {k: 0 for k in FORGE_KINDS}
        self.counts["heard"] = 0

    def start(self):
        self.next = self.clock() + self.interval

    def receive(self, frame, from_peer=None, rssi=0):
        self.counts["heard"] += 1
        if len(frame) < 8 + 12 or not frame[1] & W.F_AUTH:
            return False
        body = len(frame) - W.STAMP_LEN - W.TAG_LEN
        st = struct.unpack(">I", frame[body:body + 4])[0] & 0x3FFFFFFF
        if st > self.stamp:
            self.stamp = st
        t = frame[0] & 0x0F
        if t == W.DATA and body >= W.DATA_HDR + 1:
            self._keep(self.data, bytes(frame))
            self.ids.append(struct.unpack(">IH", frame[8:14]))
            del self.ids[:-64]
        elif t == W.DIGEST:
            self._keep(self.digests, bytes(frame))
        return False

    def _keep(self, lst: list[bytes], f: bytes) -> None:
        lst.append(f)
        del lst[:-16]

    def _tag(self) -> bytes:
        return bytes(self.rng.getrandbits(8) for _ in range(W.TAG_LEN))

    def _trailer(self, stamp: int | None = None) -> bytes:
        return struct.pack(">I", (self.stamp if stamp is None else stamp) & 0x3FFFFFFF) + self._tag()

    def _some_ids(self, k: int) -> list[tuple[int, int]]:
        r = self.rng
        out = [self.ids[r.randrange(len(self.ids))] for _ in range(min(k, len(self.ids)))]
        while len(out) < k:
            out.append((r.randrange(1, 1 << 32), r.randrange(1 << 16)))
        return out

    def forge(self) -> tuple[str, bytes]:
        r = self.rng
        kind = FORGE_KINDS[self.i % len(FORGE_KINDS)]
        self.i += 1
        if kind == "payload_altered" and not self.data:
            kind = "random_data_bad_tag"
        if kind == "stamp_altered" and not self.data:
            kind = "untagged_data"
        if kind == "digest_altered" and not self.digests:
            kind = "forged_digest"
        me = self.node_id
        if kind == "random_data_bad_tag":
            # a made-up message, or a real id with other words, with a guessed tag
            origin, seq = self._some_ids(1)[0] if r.random() < 0.5 else (r.randrange(1, 1 << 32), r.randrange(1 << 16))
            payload = b"FORGED" + bytes(r.getrandbits(8) for _ in range(26))
            f = W.encode_data(origin, seq, payload, sender=me, hop_limit=128)
            f = bytes([f[0], f[1] | W.F_AUTH]) + f[2:] + self._trailer()
        elif kind == "payload_altered":
            g = bytearray(self.data[r.randrange(len(self.data))])
            body = len(g) - W.STAMP_LEN - W.TAG_LEN
            i = r.randrange(W.DATA_HDR, body)
            g[i] ^= 1 << r.randrange(8)
            g[2] = 0
            g[14:16] = b"\0\0"
            f = bytes(g)
        elif kind == "stamp_altered":
            # a genuine frame made to look fresh: its stamp set to the newest heard
            g = bytearray(self.data[r.randrange(len(self.data))])
            body = len(g) - W.STAMP_LEN - W.TAG_LEN
            g[body:body + 4] = struct.pack(">I", self.stamp + 1)
            g[14:16] = b"\0\0"
            f = bytes(g)
        elif kind == "untagged_data":
            origin, seq = self._some_ids(1)[0]
            f = W.encode_data(origin, seq, b"UNTAGGED" + bytes(24), sender=me)
        elif kind == "forged_digest":
            ids = self._some_ids(1 + r.randrange(12))
            f = W.encode_digest(me, ids, summary=r.getrandbits(30), live=len(ids) + 5,
                                span_ms=200_000, ages_ms=[r.randrange(600, 100_000) for _ in ids])
            f = bytes([f[0], f[1] | W.F_AUTH]) + f[2:] + self._trailer()
        elif kind == "forged_request":
            ids = self._some_ids(1 + r.randrange(20))
            f = W.encode_request(me, ids)
            f = bytes([f[0], f[1] | W.F_AUTH]) + f[2:] + self._trailer()
        elif kind == "digest_altered":
            g = bytearray(self.digests[r.randrange(len(self.digests))])
            g[8] ^= 0x01  # summary
            f = bytes(g)
        else:  # truncated_tag: a genuine-looking frame cut short of its tag
            origin, seq = self._some_ids(1)[0]
            f = W.encode_data(origin, seq, b"SHORT", sender=me)
            f = bytes([f[0], f[1] | W.F_AUTH]) + f[2:] + self._trailer()[:W.STAMP_LEN + 3]
        self.counts[kind] += 1
        return kind, f

    def tick(self):
        now = self.clock()
        while now - self.next >= 0:
            self.next += self.interval
            _kind, f = self.forge()
            self.send(f, None)

    def next_deadline(self):
        return max(0, self.next - self.clock())

    def stats(self):
        return dict(self.counts)

