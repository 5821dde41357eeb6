# A tiny in-memory mesh for firmware tests: engines joined by links, one
# shared injected clock, frames queued and delivered in order.  It copies
# frames (the engine's are reused buffers), so it is for behaviour tests,
# not for the heap-locked ones.
import random

from rumor import Config, Gossip, wire


def addr_of(i):
    return bytes((2, 0, 0, 0, i >> 8, i & 0xFF))


class Net:
    def __init__(self, n, cfg=None, links=None, seed=1, base_id=0x0A000000, t0=0, key=None):
        self.t = t0
        self.key = key  # the network key every node gets (None: an open mesh)
        self.cfg = cfg or Config.medium(relay_delay_ms=0)
        random.seed(seed)
        self.nodes = []
        self.got = []  # per node: [(origin, seq, payload, hops)]
        self.queue = []  # (from index, frame bytes, to: None or [addr])
        self.sent = 0
        self.drop = None  # fn(src, dst, frame) -> True to lose it
        if links is None:  # complete graph
            links = [(a, b) for a in range(n) for b in range(a + 1, n)]
        self.adj = [set() for _ in range(n)]
        for a, b in links:
            self.adj[a].add(b)
            self.adj[b].add(a)
        for i in range(n):
            self.add_node(base_id + i)

    def clock(self):
        # what time.ticks_ms() returns on an ESP32: wraps at 2**30
        return self.t & 0x3FFFFFFF

    def add_node(self, node_id, cfg=None, key=0):
        i = len(self.nodes)
        g = Gossip(cfg or self.cfg, node_id, self.clock, random.getrandbits,
                   key=self.key if key == 0 else key)
        got = []
        g.on_message(lambda m, got=got: got.append((m.origin, m.seq, m.payload(), m.hops)))
        g.on_forward(lambda f, to, i=i: self.queue.append((i, bytes(f), None if to is None else list(to))))
        self.nodes.append(g)
        self.got.append(got)
        if i >= len(self.adj):
            self.adj.append(set())
        g.start()
        return g

    def link(self, a, b, up=True):
        if up:
            self.adj[a].add(b)
            self.adj[b].add(a)
        else:
            self.adj[a].discard(b)
            self.adj[b].discard(a)

    def flush(self, limit=100000):
        """Deliver queued frames until none is left."""
        n = 0
        while self.queue and n < limit:
            src, frame, to = self.queue.pop(0)
            self.sent += 1
            n += 1
            for dst in sorted(self.adj[src]):
                if to is not None and addr_of(dst) not in to:
                    continue
                if self.drop is not None and self.drop(src, dst, frame):
                    continue
                self.nodes[dst].receive(frame, addr_of(src), -60)
        return n

    def run(self, ms, step=5):
        """Advance time by ms, ticking every node and delivering frames."""
        end = self.t + ms
        while self.t < end:
            self.t += step
            for g in self.nodes:
                g.tick()
            self.flush()

    def delivered(self, origin_index, seq):
        oid = self.nodes[origin_index].node_id
        return [i for i, got in enumerate(self.got) if any(o == oid and s == seq for o, s, _p, _h in got)]


def frame_ids(frames):
    return [wire.decode(f)["id"] for f in frames]


# -- backbone helpers (tests/firmware/test_backbone.py) ------------------------
def count_frames(net):
    """Re-wire every node's radio so that net.tx[i][t] counts the frames of
    wire type t (1 DATA, 2 DIGEST, 3 REQUEST) node i sent; frames still go
    on net.queue as before."""
    net.tx = [[0, 0, 0, 0] for _ in net.nodes]

    def fwd(f, to, i):
        net.tx[i][f[0] & 0x0F & 3] += 1
        net.queue.append((i, bytes(f), None if to is None else list(to)))

    for i, g in enumerate(net.nodes):
        g.on_forward(lambda f, to, i=i: fwd(f, to, i))


def exchange(net, rounds=3):
    """Every node broadcasts the digest it would send now, rounds times over:
    how neighbour lists and backbone roles spread, without waiting for the
    Trickle timers.  (Round 1 makes the nodes known, round 2 carries the
    lists, later ones the roles the lists lead to.)"""
    for _ in range(rounds):
        for i, g in enumerate(net.nodes):
            net.queue.append((i, g.digest(), None))
        net.flush()


def roles(net):
    """Which nodes say, in the digest they would send now, that they relay."""
    return [bool(wire.decode(g.digest())["relays"]) for g in net.nodes]
