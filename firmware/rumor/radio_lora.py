# LoRa radio adapter: micropython-lib's `lora` package (lora-sx127x or
# lora-sx126x, plus lora-async) under the gossip core.  API as in
# micropython-lib micropython/lora/lora/lora/modem.py, lora-async/lora/
# async_modem.py, lora-sx127x/lora/sx127x.py and lora-sx126x/lora/sx126x.py:
#
#   modem = AsyncSX1276(spi, cs, dio0=, dio1=, reset=, lora_cfg={...})
#   modem = AsyncSX1262(spi, cs, busy, dio1=, dio2_rf_sw=, dio3_tcxo_millivolts=, reset=, lora_cfg=)
#   rx = await modem.recv(rx_packet=rx)   # RxPacket (a bytearray) with .rssi .snr .ticks_ms
#   await modem.send(buf)                 # returns the tx-done ticks_ms
#   modem.get_time_on_air_us(n)           # the datasheet formula for the current settings
#
#   r = LoRaRadio(board["radio"], board["pins"])
#   g.on_forward(r.send); asyncio.create_task(r.run(g))
#
# LoRa is one shared channel: every transmission is a broadcast, there are no
# link addresses (from_peer is None; the core knows senders by node id), and
# the air is regulated.  The board's radio "region" picks the rules from
# REGIONS below (EU868 sub-band g1, 868.0-868.6 MHz: 1% duty cycle, 36 s of
# airtime in any hour); "duty_cycle" and "duty_window_ms" override its duty
# cycle.  Without a region: 1% of any hour.
#
# Listen before talk: before every transmission the adapter runs a channel
# activity detection (rumor/lora_cad.py: SX127x opmode CAD, SX126x SetCAD,
# driven through the driver's own register/command methods; docs/radios.md).
# A busy channel keeps the frame at the queue's head for a random backoff
# of 1..2^k slots (a slot: one CAD and a millisecond; k = 3 on the
# first busy CAD in a row, one more each time, at most 6), after which the
# duty budget and the CAD are looked at again; after "cad_tries" busy CADs
# in a row (default 6) the frame goes anyway (counted: tx_cad_forced), so a
# jammed or noisy channel delays frames but never stops the node.  Board
# "cad": false sends without listening.
#
# The budget is never exceeded, and frames are deferred, not refused:
# send() is synchronous (the core calls it from receive()/tick()), so it
# copies the frame into a slot of a fixed, preallocated ring ("tx_queue"
# slots, default 4) and returns True.  The run() task puts the slots on the
# air in order, between receptions (half duplex: the driver suspends receive
# for a send and resumes it after).  When the rolling window lacks room for
# the next frame, the task sleeps until the DutyCycle buckets say enough
# airtime will have left the window (one sleep, no polling), then sends.
# A frame's airtime is charged when it has been on the air.  send() returns
# False (and counts) only for a frame that is too big for the mtu, one whose
# airtime alone exceeds the region's dwell time (US915/AU915/AS923: 400 ms)
# or the whole budget, and one that finds the ring full (dropped).  The
# core's anti-entropy heals what was dropped.
#
# Allocation per frame, where the API forces it (send() itself allocates
# nothing: tests/firmware/test_radio_lora.py runs it under heap_lock):
#  - recv(rx_packet=buf) reuses buf only if the new packet has the same length
#    (sx127x/sx126x _read_packet); otherwise the driver allocates an RxPacket.
#    The last packet is passed back each time, so runs of equal-length frames
#    (digests, fixed-size payloads) reuse one buffer.
#  - recv() and send() are coroutines: one generator object per call.
#  - the transmitted slice is a memoryview over the slot (one small object).
import asyncio

try:
    from micropython import const
except ImportError:  # CPython
    const = lambda x: x  # noqa: E731

from . import ticks
from .lora_cad import cad_for

_MAX_FRAME = const(255)  # SX127x/SX126x FIFO payload limit (prepare_send refuses more)
_MIN_FRAME = const(24)  # the core's smallest mtu (Config.mtu)
_MASK = const(0x3FFFFFFF)
# wire.py's values (tests/host/test_consts.py checks them)
_VT_DATA = const(0x21)
_VT_DIGEST = const(0x22)
_VT_REQUEST = const(0x23)
_DATA_HDR = const(16)
_O_AGE = const(14)
_AGE_SHIFT = const(2)
_AGE_WIRE_MAX = const(0xFFFF)
_QUEUE = const(4)  # default frames waiting for the air ("tx_queue"); more are dropped and counted
_QUEUE_MAX = const(32)
_BUCKETS = const(60)  # duty-cycle window split into this many buckets
_HOUR_MS = const(3600000)
_DAY_MS = const(86400000)  # longest duty window: waits stay far inside the ticks range
_CAD_TRIES = const(6)  # busy CADs in a row after which a frame goes anyway ("cad_tries")
_CW_MIN = const(3)  # backoff after the first busy CAD: 1..2^3 slots
_CW_MAX = const(6)  # and at most 1..2^6

# Regional presets: name, lowest and highest frequency (kHz) the whole
# channel (freq_khz +- bw/2) must lie in, duty cycle over any hour (1: no
# limit), dwell time: the longest a single frame may take on air (ms, 0: no
# limit).  Sources:
#  EU868     868.0-868.6 MHz, sub-band g1 of ERC REC 70-03 annex 1 / ETSI EN
#            300 220-2: 1%, 25 mW e.r.p.  (LoRaWAN Regional Parameters
#            1.0.3revA 2.2.2, default channels <1%; LoRaMac-node EU868 band 1%)
#  EU868-G3  869.4-869.65 MHz, sub-band g3: 10%, 500 mW e.r.p.  (same
#            sources; LoRaMac-node EU868 band 3 10%)
#  EU433     433.05-434.79 MHz: 10%, 10 mW e.r.p.  (ERC REC 70-03 annex 1;
#            LoRaWAN Regional Parameters 1.0.3revA 2.5.2: duty cycle < 10%)
#  US915     902-928 MHz, FCC 47 CFR 15.247: no duty cycle; 400 ms dwell
#            time (15.247(a)(1)(i), LoRaWAN US902-928 uplinks)
#  AU915     915-928 MHz: no duty cycle; 400 ms dwell (LoRaWAN Regional
#            Parameters 1.0.3 2.6.2: UplinkDwellTime 1 until told otherwise)
#  AS923     915-928 MHz (AS923-1..4): 1% and 400 ms dwell, the strictest of
#            the plan's countries (LoRaMac-node RegionAS923: band 1%,
#            default uplink dwell time 400 ms)
#  IN865     865-867 MHz, India GSR 168(E) 2005: no duty cycle, no dwell
#            (LoRaMac-node RegionIN865: duty cycle off)
REGIONS = (
    ("EU868", 868000, 868600, 0.01, 0),
    ("EU868-G3", 869400, 869650, 0.1, 0),
    ("EU433", 433050, 434790, 0.1, 0),
    ("US915", 902000, 928000, 1, 400),
    ("AU915", 915000, 928000, 1, 400),
    ("AS923", 915000, 928000, 0.01, 400),
    ("IN865", 865000, 867000, 1, 0),
)


def region_of(cfg):
    """The REGIONS row of a board radio object's "region" (None without one).
    ValueError for an unknown region, or a channel (freq_khz, bw) outside it."""
    name = cfg.get("region")
    if name is None:
        return None
    for row in REGIONS:
        if row[0] == name:
            break
    else:
        raise ValueError("unknown LoRa region %r (valid: %s)"
                         % (name, ", ".join([r[0] for r in REGIONS])))
    f = cfg.get("freq_khz")
    if f is not None:
        half = float(cfg.get("bw", "125")) / 2
        if f - half < row[1] or f + half > row[2]:
            raise ValueError("LoRa channel %s kHz (bw %s kHz) is outside region %s (%d-%d kHz)"
                             % (f, cfg.get("bw", "125"), name, row[1], row[2]))
    return row


def duty_of(cfg):
    """(duty fraction, window ms, dwell ms) for a board radio object: its
    region's preset, with explicit "duty_cycle" and "duty_window_ms" over it;
    no region: 1% of any hour, no dwell limit."""
    row = region_of(cfg)
    fraction, dwell = (0.01, 0) if row is None else (row[3], row[4])
    return cfg.get("duty_cycle", fraction), cfg.get("duty_window_ms", _HOUR_MS), dwell


class DutyCycle:
    """Rolling-window airtime budget, allocation-free after construction.

    A frame's airtime is charged at its end time, into the bucket of that
    time.  The window is split into _BUCKETS buckets, rounded up, and one
    extra bucket is kept, so the buckets always hold every frame that ended
    within the last whole window.  A frame may start when those plus its own
    airtime fit the budget; then no window of window_ms anywhere holds more
    than budget_ms of airtime (frames never overlap: there is one radio).
    A fraction of 1 is no limit: wait_ms() is always 0."""

    def __init__(self, fraction, window_ms=_HOUR_MS, now=0):
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) \
                or not 0 < fraction <= 1:
            raise ValueError("duty_cycle must be in (0, 1], got %r" % (fraction,))
        if isinstance(window_ms, bool) or not isinstance(window_ms, int) \
                or not _BUCKETS <= window_ms <= _DAY_MS:
            raise ValueError("duty_window_ms must be an integer %d..%d, got %r"
                             % (_BUCKETS, _DAY_MS, window_ms))
        self.limited = fraction < 1
        self.budget_ms = int(window_ms * fraction)
        self.window_ms = window_ms
        self._w = (window_ms + _BUCKETS - 1) // _BUCKETS
        self._air = [0] * (_BUCKETS + 1)
        self._i = 0  # current bucket
        self._t = now & _MASK  # start of the current bucket
        self.used_ms = 0  # sum of _air

    def _advance(self, now):
        n = _BUCKETS + 1
        d = ticks.diff(now, self._t)
        # A little behind is a charge's end time ahead of the clock; far behind
        # is the ticks wrapping after days without a frame: all history.
        steps = d // self._w if d >= -self.window_ms else n
        if steps <= 0:
            return
        if steps >= n:
            for i in range(n):
                self._air[i] = 0
            self.used_ms = 0
            self._i = 0
            self._t = now & _MASK
            return
        air = self._air
        i = self._i
        for _ in range(steps):
            i = (i + 1) % n
            self.used_ms -= air[i]
            air[i] = 0
        self._i = i
        self._t = ticks.add(self._t, steps * self._w)

    def used(self, now):
        """Airtime (ms) in the window at now."""
        self._advance(now)
        return self.used_ms

    def wait_ms(self, now, air_ms):
        """0 if a frame of air_ms may go on air at now; else how long until
        enough airtime has left the window, read off the buckets; -1 if it
        never will (air_ms is more than the whole budget)."""
        if not self.limited:
            return 0
        self._advance(now)
        need = self.used_ms + air_ms - self.budget_ms
        if need <= 0:
            return 0
        if air_ms > self.budget_ms:
            return -1
        air = self._air
        n = _BUCKETS + 1
        i = self._i
        for j in range(n):  # oldest first: bucket j leaves at _t + (j + 1) * _w
            i = (i + 1) % n
            need -= air[i]
            if need <= 0:
                d = ticks.diff(ticks.add(self._t, (j + 1) * self._w), now)
                return d if d > 0 else 1
        return -1  # not reached: the buckets hold used_ms

    def charge(self, end, air_ms):
        """Count air_ms of airtime that ended at end."""
        self._advance(end)
        self._air[self._i] += air_ms
        self.used_ms += air_ms


def make_modem(cfg, pins):
    """The micropython-lib async modem for a board's radio and pins objects."""
    from machine import SPI, Pin

    spi = SPI(pins["spi"], baudrate=2000000, polarity=0, phase=0,
              sck=Pin(pins["sck"]), mosi=Pin(pins["mosi"]), miso=Pin(pins["miso"]))
    if "vext" in pins:  # Heltec: Vext (active low) powers the antenna LNA
        Pin(pins["vext"], Pin.OUT, value=0)
    lora_cfg = lora_cfg_of(cfg)
    cs = Pin(pins["cs"])
    reset = Pin(pins["reset"])
    modem = cfg.get("modem", "sx1276")
    # micropython-lib isn't in the ESP32 stubs pyright checks against
    # (it is installed with mip), hence the ignore on these imports.
    if modem == "sx1276":
        from lora import AsyncSX1276  # pyright: ignore[reportMissingImports]

        dio1 = pins.get("dio1")
        return AsyncSX1276(spi, cs, dio0=Pin(pins["dio0"]),
                           dio1=Pin(dio1) if dio1 is not None else None,
                           reset=reset, lora_cfg=lora_cfg)
    if modem == "sx1262":
        from lora import AsyncSX1262  # pyright: ignore[reportMissingImports]

        return AsyncSX1262(spi, cs, busy=Pin(pins["busy"]), dio1=Pin(pins["dio1"]),
                           dio2_rf_sw=cfg.get("dio2_rf_sw", True),
                           dio3_tcxo_millivolts=cfg.get("dio3_tcxo_millivolts"),
                           reset=reset, lora_cfg=lora_cfg)
    raise ValueError("unknown LoRa modem %r (sx1276 or sx1262)" % (modem,))


_LORA_KEYS = ("freq_khz", "sf", "bw", "coding_rate", "output_power", "preamble_len",
              "tx_ant", "syncword")


def lora_cfg_of(cfg):
    """The driver's lora_cfg dict: the board radio keys the driver knows."""
    d = {}
    for k in _LORA_KEYS:
        if k in cfg:
            d[k] = cfg[k]
    if "bw" in d:
        d["bw"] = str(d["bw"])  # the drivers look bandwidth up as a string ("125")
    return d


try:
    from time import ticks_ms as _ticks_ms
except ImportError:  # CPython (the simulator) has no ticks; the ESP32 stubs no monotonic
    from time import monotonic  # pyright: ignore[reportAttributeAccessIssue]

    def _ticks_ms():
        return int(monotonic() * 1000) & _MASK


def _sleep_ms_cpython(ms):
    return asyncio.sleep(ms / 1000)


_sleep_ms = getattr(asyncio, "sleep_ms", _sleep_ms_cpython)  # MicroPython has sleep_ms


class LoRaRadio:
    broadcast = True  # one transmission reaches everyone in range
    mtu = _MAX_FRAME

    def __init__(self, board_radio_cfg, pins=None, modem=None, clock=None, sleep_ms=None,
                 rand=None):
        """board_radio_cfg: the board file's "radio" object; pins: its "pins".
        modem: an already built lora modem (then pins is unused).
        clock: ms clock for the duty-cycle window (time.ticks_ms); sleep_ms:
        the coroutine function the tx task waits out the budget and CAD
        backoffs with (asyncio.sleep_ms); rand: getrandbits for the backoff
        (random.getrandbits).  ValueError for an unknown region, a channel
        outside it, or settings under which no frame fits its dwell time."""
        cfg = board_radio_cfg
        self._clock = clock or _ticks_ms
        self._sleep_ms = sleep_ms or _sleep_ms
        fraction, window_ms, self.dwell_ms = duty_of(cfg)
        self.region = cfg.get("region")
        self.duty = DutyCycle(fraction, window_ms, self._clock())
        q = cfg.get("tx_queue", _QUEUE)
        if isinstance(q, bool) or not isinstance(q, int) or not 1 <= q <= _QUEUE_MAX:
            raise ValueError("tx_queue must be an integer 1..%d, got %r" % (_QUEUE_MAX, q))
        if modem is None:
            if pins is None:
                raise ValueError("LoRaRadio needs the board's pins (or a modem)")
            modem = make_modem(cfg, pins)
        self._modem = modem
        self._init_cad(cfg, rand)
        self.mtu = min(cfg.get("mtu", _MAX_FRAME), _MAX_FRAME)
        # The longest frame the rules let on air: its airtime within the dwell
        # time and the whole budget.  Worked out once, so send() compares lengths.
        limit = self.dwell_ms or 0x3FFFFFFF
        if self.duty.limited and self.duty.budget_ms < limit:
            limit = self.duty.budget_ms
        self.max_frame = self._longest(limit)
        if self.max_frame < min(_MIN_FRAME, self.mtu):
            raise ValueError("LoRa settings sf=%s bw=%s: a %d-byte frame takes %d ms on air, "
                             "over the %d ms allowed (%s)"
                             % (cfg.get("sf"), cfg.get("bw"), _MIN_FRAME,
                                self.airtime_ms(_MIN_FRAME), limit,
                                "dwell time" if limit == self.dwell_ms else "duty budget"))
        # TX queue: q preallocated slots, a ring of (buffer, length).
        self._q = q
        self._slots = [bytearray(self.mtu) for _ in range(q)]
        self._views = [memoryview(b) for b in self._slots]
        self._lens = [0] * q
        self._qat = [0] * q  # tick each frame was queued at (its wait is added to its age)
        self._head = 0  # next slot to transmit
        self._count = 0
        self._tx_ready = asyncio.Event()
        self._rx = None  # the last RxPacket, handed back to the driver for reuse
        self._rx_view = memoryview(b"")
        self.tx_frames = 0
        self.tx_bytes = 0
        self.tx_airtime_ms = 0
        self.tx_queue_drops = 0
        self.tx_too_big = 0
        self.tx_too_long = 0
        self.tx_stale_dropped = 0  # digests/requests that waited too long (_too_late)
        # (5 s: half the core's auth_window_ms; board "ctl_max_wait_ms" changes it)
        self.ctl_max_wait_ms = cfg.get("ctl_max_wait_ms", 5000)
        self.tx_errors = 0
        self.tx_deferred = 0  # frames that waited for the duty budget
        self.tx_defer_max_ms = 0  # the longest such wait, first hold-back to on air
        self.rx_frames = 0
        self.rx_bytes = 0
        self.last_rssi = 0
        self.last_snr = 0

    def _init_cad(self, cfg, rand):
        tries = cfg.get("cad_tries", _CAD_TRIES)
        if isinstance(tries, bool) or not isinstance(tries, int) or not 1 <= tries <= 100:
            raise ValueError("cad_tries must be an integer 1..100, got %r" % (tries,))
        self.cad_tries = tries
        self._cad = cad_for(self._modem) if cfg.get("cad", True) else None
        if rand is None:
            import random

            rand = random.getrandbits
        self._rand = rand
        # a backoff slot: one CAD and a millisecond to turn around
        self.cad_slot_ms = self._cad.duration_ms() + 1 if self._cad is not None else 0
        self._busy_run = 0  # busy CADs in a row for the head frame
        self.tx_cad_busy = 0  # CADs (or receptions under way) that found the channel busy
        self.tx_cad_forced = 0  # frames sent after cad_tries busy CADs in a row
        self.tx_cad_errors = 0  # CADs the driver failed (the frame went without one)
        self.tx_backoff_ms = 0  # time spent in CAD backoffs (wraps at 2^30)

    def backoff_ms(self, busy_run):
        """The random wait after the busy_run-th busy CAD in a row:
        1..2^k slots, k = _CW_MIN for the first, growing by one up to _CW_MAX."""
        k = _CW_MIN + busy_run - 1
        if k > _CW_MAX:
            k = _CW_MAX
        return (1 + self._rand(k)) * self.cad_slot_ms

    async def _listen(self):
        """Listen before talk.  True: send now (the channel is free, there
        is no CAD, or the frame has waited cad_tries busy CADs); False: the
        channel was busy and the backoff is over, look at the queue again."""
        cad = self._cad
        if cad is None:
            return True
        try:
            busy = await cad.busy()
        except Exception:  # noqa: BLE001 - a radio hiccup must not stop the node
            self.tx_cad_errors = (self.tx_cad_errors + 1) & _MASK
            busy = False
        if not busy:
            self._busy_run = 0
            return True
        self.tx_cad_busy = (self.tx_cad_busy + 1) & _MASK
        self._busy_run += 1
        if self._busy_run >= self.cad_tries:
            self.tx_cad_forced = (self.tx_cad_forced + 1) & _MASK
            self._busy_run = 0
            return True
        w = self.backoff_ms(self._busy_run)
        self.tx_backoff_ms = (self.tx_backoff_ms + w) & _MASK
        await self._sleep_ms(w)
        return False

    def airtime_ms(self, n):
        """Time on air of an n-byte frame at the current settings, rounded up."""
        return (self._modem.get_time_on_air_us(n) + 999) // 1000

    def _longest(self, limit_ms):
        """The largest frame length <= mtu whose airtime is <= limit_ms (-1: none)."""
        if self.airtime_ms(self.mtu) <= limit_ms:
            return self.mtu
        lo, hi = -1, self.mtu  # airtime(lo) fits (or lo is -1), airtime(hi) does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.airtime_ms(mid) <= limit_ms:
                lo = mid
            else:
                hi = mid
        return lo

    def send(self, frame, to_peers):
        """Queue one transmission (to_peers is ignored: LoRa has only
        broadcast, and one transmission reaches every listed peer too).
        True: it will go on air as soon as the duty budget allows.  False
        (counted) if it is bigger than the mtu, longer on air than the dwell
        time or the whole budget, or the queue is full (dropped)."""
        n = len(frame)
        if n > self.mtu:
            self.tx_too_big = (self.tx_too_big + 1) & _MASK
            return False
        if n > self.max_frame:
            self.tx_too_long = (self.tx_too_long + 1) & _MASK
            return False
        if self._count >= self._q:
            self.tx_queue_drops = (self.tx_queue_drops + 1) & _MASK
            return False
        i = (self._head + self._count) % self._q
        self._slots[i][:n] = frame  # the core's frame is a reused buffer: copy now
        self._lens[i] = n
        self._qat[i] = self._clock() & _MASK
        self._count += 1
        self._tx_ready.set()
        return True

    async def _tx_loop(self):
        m = self._modem
        duty = self.duty
        held = -1  # when the head frame was first held back by the budget (-1: it was not)
        while True:
            if not self._count:
                self._tx_ready.clear()
                await self._tx_ready.wait()
                continue
            i = self._head
            n = self._lens[i]
            air = self.airtime_ms(n)
            now = self._clock() & _MASK
            wait = duty.wait_ms(now, air)
            if self._too_late(i, n, ticks.add(now, wait) if wait > 0 else now):
                # a digest or request the duty cycle holds back (or held) for
                # long: stale to its hearers by the time it goes; the core
                # makes a fresh one, so it is dropped now, not waited for
                self.tx_stale_dropped = self.tx_stale_dropped + 1 if self.tx_stale_dropped < _MASK else 0
                held = -1
                self._head = (i + 1) % self._q
                self._count -= 1
                continue
            if wait > 0:
                # Over budget: sleep until the window has let go of enough
                # airtime, then look again (new frames only queue meanwhile).
                if held < 0:
                    held = now
                    self.tx_deferred = (self.tx_deferred + 1) & _MASK
                await self._sleep_ms(wait)
                continue
            if wait == 0:
                if not await self._listen():
                    continue  # busy: backed off; the budget and staleness again
                now = self._clock() & _MASK
                if held >= 0:
                    d = ticks.diff(now, held)
                    if d > self.tx_defer_max_ms:
                        self.tx_defer_max_ms = d
                self._age_by_wait(i, n, now)
                try:
                    await m.send(self._views[i][:n])
                except Exception:  # noqa: BLE001 - a radio hiccup must not stop the node
                    self.tx_errors = (self.tx_errors + 1) & _MASK
                else:
                    self.tx_frames = (self.tx_frames + 1) & _MASK
                    self.tx_bytes = (self.tx_bytes + n) & _MASK
                    self.tx_airtime_ms = (self.tx_airtime_ms + air) & _MASK
                # Charged once on air (a failed send may have been, too), at
                # its end: now + air, or later if the driver took longer.
                end = self._clock() & _MASK
                if ticks.diff(end, now) < air:
                    end = ticks.add(now, air)
                duty.charge(end, air)
            else:  # never fits (send() keeps such frames out)
                self.tx_too_long = (self.tx_too_long + 1) & _MASK
            held = -1
            self._head = (i + 1) % self._q
            self._count -= 1

    def _too_late(self, i, n, now):
        """A frame other than DATA that waited longer than ctl_max_wait_ms:
        a DIGEST or REQUEST says what its sender held then, and with a
        network key its stamp makes it stale after auth_window_ms (10 s)."""
        b = self._slots[i]
        return (n >= 8 and (b[0] == _VT_DIGEST or b[0] == _VT_REQUEST)
                and ticks.diff(now, self._qat[i]) > self.ctl_max_wait_ms)

    def _age_by_wait(self, i, n, now):
        """A DATA frame's age (bytes 14-15, 4 ms units) grows by the time it
        waited here: the core wrote it when it queued the frame, and a duty
        cycle deferral can last minutes; an age that came out younger than
        the message would let it outlive max_message_age_ms.  (The tag of an
        authenticated frame does not cover the age.)"""
        b = self._slots[i]
        if n < _DATA_HDR or b[0] != _VT_DATA:
            return
        w = ticks.diff(now, self._qat[i])
        if w <= 0:
            return
        # rounded up, as the core does
        a = ((b[_O_AGE] << 8) | b[_O_AGE + 1]) + ((w + (1 << _AGE_SHIFT) - 1) >> _AGE_SHIFT)
        if a > _AGE_WIRE_MAX:
            a = _AGE_WIRE_MAX
        b[_O_AGE] = a >> 8
        b[_O_AGE + 1] = a & 0xFF

    async def run(self, gossip):
        """Forever: transmit the queue and hand every frame heard to
        gossip.receive(frame, None, rssi)."""
        tx = asyncio.create_task(self._tx_loop())
        m = self._modem
        try:
            while True:
                rx = await m.recv(rx_packet=self._rx)
                if not rx:  # timed out or cancelled by standby(): listen again
                    continue
                if rx is not self._rx:
                    # A new RxPacket (the driver allocated one: another length).
                    # RxPacket subclasses bytearray, and MicroPython's slice
                    # assignment (the core copying a frame into its ring) only
                    # takes the native buffer types, so the core gets a
                    # memoryview, made once per RxPacket, not per frame.
                    self._rx = rx
                    self._rx_view = memoryview(rx)
                self.rx_frames = (self.rx_frames + 1) & _MASK
                self.rx_bytes = (self.rx_bytes + len(rx)) & _MASK
                self.last_rssi = rx.rssi
                self.last_snr = rx.snr  # dB * 4, as the drivers report it
                gossip.receive(self._rx_view, None, rx.rssi)
        finally:
            tx.cancel()

    def stats(self):
        return {
            "radio": "lora",
            "tx_frames": self.tx_frames,
            "tx_bytes": self.tx_bytes,
            "tx_airtime_ms": self.tx_airtime_ms,
            "tx_queued": self._count,
            "tx_queue_drops": self.tx_queue_drops,
            "tx_stale_dropped": self.tx_stale_dropped,
            "tx_deferred": self.tx_deferred,
            "tx_defer_max_ms": self.tx_defer_max_ms,
            "tx_too_big": self.tx_too_big,
            "tx_too_long": self.tx_too_long,
            "tx_errors": self.tx_errors,
            "cad": self._cad is not None,
            "tx_cad_busy": self.tx_cad_busy,
            "tx_cad_forced": self.tx_cad_forced,
            "tx_cad_errors": self.tx_cad_errors,
            "tx_backoff_ms": self.tx_backoff_ms,
            "duty_used_ms": self.duty.used(self._clock()),
            "duty_budget_ms": self.duty.budget_ms if self.duty.limited else -1,
            "duty_window_ms": self.duty.window_ms,
            "rx_frames": self.rx_frames,
            "rx_bytes": self.rx_bytes,
            "crc_errors": getattr(self._modem, "crc_errors", 0),
            "last_rssi": self.last_rssi,
            "last_snr": self.last_snr,
        }
