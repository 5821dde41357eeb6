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
# the air is regulated.  EU868 sub-band g1 (868.0-868.6 MHz) allows 1% duty
# cycle: 36 s of airtime in any hour.  send() keeps a rolling budget and
# refuses (and counts) a frame that would exceed it; the core's anti-entropy
# heals what was refused once airtime frees up.
#
# send() is synchronous (the core calls it from receive()/tick()), so it
# copies the frame into a preallocated slot of a small queue and the run()
# task puts the slots on the air, between receptions (half duplex: the
# driver suspends receive for a send and resumes it after).
#
# Allocation per frame, where the API forces it:
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

_MAX_FRAME = const(255)  # SX127x/SX126x FIFO payload limit (prepare_send refuses more)
_MASK = const(0x3FFFFFFF)
_QUEUE = const(4)  # frames waiting for the air; more are refused and counted
_BUCKETS = const(60)  # duty-cycle window split into this many buckets
_HOUR_MS = const(3600000)


class DutyCycle:
    """Rolling-window airtime budget, allocation-free after construction.

    The window is split into _BUCKETS buckets of airtime; one extra bucket is
    kept so that the sum always covers at least a whole window (a bucketed
    window that drops its oldest bucket early would let through more than the
    regulation allows)."""

    def __init__(self, fraction, window_ms=_HOUR_MS, now=0):
        if not 0 < fraction <= 1:
            raise ValueError("duty_cycle must be in (0, 1], got %r" % (fraction,))
        self.budget_ms = int(window_ms * fraction)
        self.window_ms = window_ms
        self._w = window_ms // _BUCKETS
        self._air = [0] * (_BUCKETS + 1)
        self._i = 0  # current bucket
        self._t = now & _MASK  # start of the current bucket
        self.used_ms = 0  # sum of _air
        self.refused = 0

    def _advance(self, now):
        steps = ticks.diff(now, self._t) // self._w
        if steps <= 0:
            return
        n = _BUCKETS + 1
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

    def allow(self, now, air_ms):
        """Take air_ms of airtime at now if the budget has it; False (counted) if not."""
        self._advance(now)
        if self.used_ms + air_ms > self.budget_ms:
            self.refused = (self.refused + 1) & _MASK
            return False
        self._air[self._i] += air_ms
        self.used_ms += air_ms
        return True


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


class LoRaRadio:
    broadcast = True  # one transmission reaches everyone in range
    mtu = _MAX_FRAME

    def __init__(self, board_radio_cfg, pins=None, modem=None, clock=None):
        """board_radio_cfg: the board file's "radio" object; pins: its "pins".
        modem: an already built lora modem (then pins is unused).
        clock: ms clock for the duty-cycle window (time.ticks_ms)."""
        cfg = board_radio_cfg
        self._clock = clock or _ticks_ms
        if modem is None:
            if pins is None:
                raise ValueError("LoRaRadio needs the board's pins (or a modem)")
            modem = make_modem(cfg, pins)
        self._modem = modem
        self.mtu = min(cfg.get("mtu", _MAX_FRAME), _MAX_FRAME)
        self.duty = DutyCycle(cfg.get("duty_cycle", 0.01), cfg.get("duty_window_ms", _HOUR_MS),
                              self._clock())
        # TX queue: _QUEUE preallocated slots, a ring of (buffer, length).
        self._slots = [bytearray(self.mtu) for _ in range(_QUEUE)]
        self._views = [memoryview(b) for b in self._slots]
        self._lens = [0] * _QUEUE
        self._head = 0  # next slot to transmit
        self._count = 0
        self._tx_ready = asyncio.Event()
        self._rx = None  # the last RxPacket, handed back to the driver for reuse
        self._rx_view = memoryview(b"")
        self.tx_frames = 0
        self.tx_bytes = 0
        self.tx_airtime_ms = 0
        self.tx_queue_full = 0
        self.tx_too_big = 0
        self.tx_errors = 0
        self.rx_frames = 0
        self.rx_bytes = 0
        self.last_rssi = 0
        self.last_snr = 0

    def airtime_ms(self, n):
        """Time on air of an n-byte frame at the current settings, rounded up."""
        return (self._modem.get_time_on_air_us(n) + 999) // 1000

    def send(self, frame, to_peers):
        """Queue one transmission (to_peers is ignored: LoRa has only
        broadcast, and one transmission reaches every listed peer too).
        False if the frame is too big, the queue is full, or the duty-cycle
        budget would be exceeded."""
        n = len(frame)
        if n > self.mtu:
            self.tx_too_big = (self.tx_too_big + 1) & _MASK
            return False
        if self._count >= _QUEUE:
            self.tx_queue_full = (self.tx_queue_full + 1) & _MASK
            return False
        # Charged when queued, so send() can say no now and the core can count it.
        if not self.duty.allow(self._clock(), self.airtime_ms(n)):
            return False
        i = (self._head + self._count) % _QUEUE
        self._slots[i][:n] = frame  # the core's frame is a reused buffer: copy now
        self._lens[i] = n
        self._count += 1
        self._tx_ready.set()
        return True

    async def _tx_loop(self):
        m = self._modem
        while True:
            if not self._count:
                self._tx_ready.clear()
                await self._tx_ready.wait()
                continue
            i = self._head
            n = self._lens[i]
            try:
                await m.send(self._views[i][:n])
            except Exception:  # noqa: BLE001 - a radio hiccup must not stop the node
                self.tx_errors = (self.tx_errors + 1) & _MASK
            else:
                self.tx_frames = (self.tx_frames + 1) & _MASK
                self.tx_bytes = (self.tx_bytes + n) & _MASK
                self.tx_airtime_ms = (self.tx_airtime_ms + self.airtime_ms(n)) & _MASK
            self._head = (i + 1) % _QUEUE
            self._count -= 1

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
            "tx_refused_duty": self.duty.refused,
            "tx_queue_full": self.tx_queue_full,
            "tx_too_big": self.tx_too_big,
            "tx_errors": self.tx_errors,
            "duty_used_ms": self.duty.used_ms,
            "duty_budget_ms": self.duty.budget_ms,
            "rx_frames": self.rx_frames,
            "rx_bytes": self.rx_bytes,
            "crc_errors": getattr(self._modem, "crc_errors", 0),
            "last_rssi": self.last_rssi,
            "last_snr": self.last_snr,
        }
