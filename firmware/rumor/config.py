# Config: every knob of the gossip core, checked once at construction.
#
# A bad value raises ValueError here, naming the field, so that a node never
# discovers a nonsense setting halfway through a field test.  Everything the
# engine allocates is sized from these numbers and nothing else.

# Modes are the seed design's three migration phases.
MODES = ("flood", "hybrid", "gossip")

# wire.py's values (a board never loads wire.py; tests/host/test_consts.py
# checks these copies): age travels in 4 ms units in 16 bits, a DATA payload
# follows a 16-byte header, a tagged frame ends in a 4-byte stamp and its tag.
AGE_UNIT_MS = 4
AGE_WIRE_MAX = 0xFFFF
MAX_AGE_MS = AGE_WIRE_MAX * AGE_UNIT_MS
DATA_HDR = 16
STAMP_LEN = 4

_FIELDS = (
    # name, default, low, high   (None: not a plain integer range)
    ("fanout", 4, 1, 32),
    ("gossip_interval_ms", 1000, 10, 3600000),
    ("max_message_age_ms", 60000, 100, MAX_AGE_MS),
    ("prune_interval_ms", 30000, 10, 3600000),
    ("push_pull_ratio", 0.7, None, None),
    ("ring_slots", 32, 1, 4096),
    ("max_payload", 234, 1, 4096),
    ("dedup_slots", 256, 4, 65536),
    ("max_peers", 32, 1, 250),
    ("mode", "gossip", None, None),
    # The medium: True when one frame with to_peers=None reaches every
    # neighbour (ESP-NOW broadcast, LoRa, the virtual UDP medium).
    ("broadcast", True, None, None),
    ("mtu", 250, 24, 4096),
    ("hop_limit", 128, 1, 255),
    # Broadcast relaying (counter-based suppression, as Trickle, RFC 6206):
    # a new message is rebroadcast after a random delay in [0, relay_delay_ms)
    # unless suppress_count copies of it were heard meanwhile (0: never cancel).
    ("relay_delay_ms", 8, 0, 60000),
    ("suppress_count", 2, 0, 255),
    # A weaker signal gives a shorter delay (rssi passed to receive()): the
    # farther node covers more new ground, so it goes first.  rssi_floor (or
    # weaker) waits 0, rssi_ceil (or stronger) the whole relay_delay_ms.
    # The defaults fit the simulator's path loss (-100 dBm at the range
    # edge, -91 at half range): set them from your radio's edge RSSI.
    ("delay_by_signal", True, None, None),
    ("rssi_floor", -100, -200, 0),
    ("rssi_ceil", -93, -200, 0),
    # Distance-based suppression: a relay of the message heard at this rssi
    # or stronger while ours waits comes from a node close by, whose broadcast
    # covered most of what ours would: it cancels ours.  0: off.
    ("suppress_rssi", -92, -200, 0),
    # Backbone relaying (backbone.py): neighbour lists ride in the digests,
    # and from them each node elects itself into the mesh's relay backbone,
    # or not; only backbone nodes relay.  cover_copies: backbone nodes every
    # node should hear (one more joins for a neighbour that hears fewer).
    # After a broadcast, a backbone neighbour that had no other chance to
    # hear it and stayed silent gets it again, at most ack_retries times.
    # coverage=False: every node relays, unless the counter rule above
    # (suppress_count, suppress_rssi) cancels it.
    ("coverage", True, None, None),
    ("cover_copies", 2, 1, 8),
    ("ack_retries", 1, 0, 8),
    # Digests and requests are answered only with messages at least this old:
    # younger ones are usually still on their way by relay.
    ("settle_ms", 500, 0, 3600000),
    # Anti-entropy on a broadcast medium runs on a Trickle timer: interval
    # from gossip_interval_ms doubling up to 2**digest_doublings times that.
    ("digest_doublings", 5, 0, 16),
    # Unicast push rounds a new message takes part in (seed-style gossip).
    ("push_rounds", 3, 0, 255),
    ("adaptive_fanout", False, None, None),
    ("peer_timeout_ms", 30000, 100, 86400000),
    ("addr_max", 8, 1, 64),
    # Authenticated frames (used only when the engine is given a network
    # key): bytes of HMAC-SHA256 kept as the tag, and how old (network time)
    # a DIGEST or REQUEST may be; an older one is a replay.
    ("tag_len", 8, 4, 32),
    ("auth_window_ms", 10000, 100, 3600000),
    # A keyed node holds what it publishes until it has heard the mesh's
    # network time (it asks with its digests), at most this long after start()
    # (and at most half of max_message_age_ms, so nothing held expires).
    ("sync_wait_ms", 3000, 0, 600000),
    # Fairness.  When the ring is full, a message from an origin that holds
    # origin_quota slots or more replaces that origin's own oldest message,
    # never another origin's (0: a quarter of ring_slots).
    ("origin_quota", 0, 0, 4096),
    # New messages (and digests, requests) accepted per second from one
    # sender, with bursts of rate_burst; the rest are dropped unseen, so
    # anti-entropy can still fetch them later (0: no limit).
    ("rate_limit", 50, 0, 10000),
    ("rate_burst", 64, 1, 1000),
    # New messages accepted per second from one origin, whichever neighbours
    # relay them, also with bursts of rate_burst (0: no limit).
    ("origin_rate", 20, 0, 10000),
)


class Config:
    """All parameters of one node.  Config(**fields) or a preset."""

    # (declared for type checkers; __init__ sets them from _FIELDS)
    fanout: int
    gossip_interval_ms: int
    max_message_age_ms: int
    prune_interval_ms: int
    push_pull_ratio: float
    ring_slots: int
    max_payload: int
    dedup_slots: int
    max_peers: int
    mode: str
    broadcast: bool
    mtu: int
    hop_limit: int
    relay_delay_ms: int
    suppress_count: int
    delay_by_signal: bool
    rssi_floor: int
    rssi_ceil: int
    suppress_rssi: int
    coverage: bool
    cover_copies: int
    ack_retries: int
    settle_ms: int
    digest_doublings: int
    push_rounds: int
    adaptive_fanout: bool
    peer_timeout_ms: int
    addr_max: int
    tag_len: int
    auth_window_ms: int
    sync_wait_ms: int
    origin_quota: int
    rate_limit: int
    rate_burst: int
    origin_rate: int

    def __init__(self, **kw):
        for name, default, _lo, _hi in _FIELDS:
            setattr(self, name, kw.pop(name, default))
        if kw:
            raise ValueError("unknown Config field(s): " + ", ".join(sorted(kw)))
        self._check()

    def _check(self):
        for name, _default, lo, hi in _FIELDS:
            v = getattr(self, name)
            if lo is None:
                continue
            if not isinstance(v, int) or isinstance(v, bool):
                raise ValueError("Config.%s must be an integer, got %r" % (name, v))
            if hi is not None and (v < lo or v > hi):
                raise ValueError("Config.%s=%d is out of range %d..%d" % (name, v, lo, hi))
        r = self.push_pull_ratio
        if isinstance(r, bool) or not isinstance(r, (int, float)) or r < 0 or r > 1:
            raise ValueError("Config.push_pull_ratio must be a number in 0..1, got %r" % (r,))
        if self.mode not in MODES:
            raise ValueError("Config.mode must be one of %s, got %r" % ("/".join(MODES), self.mode))
        for name in ("broadcast", "delay_by_signal", "adaptive_fanout", "coverage"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError("Config.%s must be True or False" % name)
        if self.max_payload + DATA_HDR > self.mtu:
            raise ValueError(
                "Config.max_payload=%d needs a %d-byte frame, larger than mtu=%d"
                % (self.max_payload, self.max_payload + DATA_HDR, self.mtu)
            )
        d = self.dedup_slots
        if d & (d - 1) or d < 4:
            raise ValueError("Config.dedup_slots must be a power of two >= 4, got %d" % d)
        if d < self.ring_slots:
            raise ValueError(
                "Config.dedup_slots=%d must be >= ring_slots=%d: ids are remembered longer than bodies"
                % (d, self.ring_slots)
            )
        if self.rssi_floor >= self.rssi_ceil:
            raise ValueError("Config.rssi_floor must be below rssi_ceil")
        if self.gossip_interval_ms << self.digest_doublings >= 0x20000000:
            raise ValueError("Config.gossip_interval_ms << digest_doublings must stay below 2**29 ms (ticks wrap)")
        if self.origin_quota > self.ring_slots:
            raise ValueError("Config.origin_quota=%d must be <= ring_slots=%d"
                             % (self.origin_quota, self.ring_slots))
        if self.mtu - DATA_HDR - STAMP_LEN - self.tag_len < 1:
            raise ValueError("Config.mtu=%d leaves no room for a payload after a %d-byte tag"
                             % (self.mtu, self.tag_len))
        if self.max_message_age_ms < self.gossip_interval_ms:
            raise ValueError("Config.max_message_age_ms must be >= gossip_interval_ms")

    def to_dict(self):
        return {name: getattr(self, name) for name, _d, _l, _h in _FIELDS}

    def replace(self, **kw):
        d = self.to_dict()
        d.update(kw)
        return Config(**d)

    def __repr__(self):
        return "Config(%s)" % ", ".join("%s=%r" % kv for kv in sorted(self.to_dict().items()))

    # The seed's tuning table: network size -> fanout, interval, age.
    @classmethod
    def small(cls, **kw):
        """Up to ~20 nodes."""
        d = dict(fanout=3, gossip_interval_ms=1500, max_message_age_ms=30000,
                 ring_slots=16, dedup_slots=128, max_peers=8)
        d.update(kw)
        return cls(**d)

    @classmethod
    def medium(cls, **kw):
        """Up to ~200 nodes (the defaults)."""
        d = dict(fanout=4, gossip_interval_ms=1000, max_message_age_ms=60000,
                 ring_slots=32, dedup_slots=256, max_peers=32)
        d.update(kw)
        return cls(**d)

    @classmethod
    def large(cls, **kw):
        """Hundreds to thousands of nodes."""
        d = dict(fanout=6, gossip_interval_ms=500, max_message_age_ms=120000,
                 ring_slots=64, dedup_slots=512, max_peers=32)
        d.update(kw)
        return cls(**d)
