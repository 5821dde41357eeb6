# A fake of micropython-lib's `lora` package (AsyncSX1276 / AsyncSX1262 with
# the AsyncModem methods, RxPacket) and of the bits of `machine` the adapter
# uses (Pin, SPI), joined by a fake ether.  Constructor signatures, method
# names and return shapes follow micropython-lib micropython/lora/
# lora-sx127x/lora/sx127x.py, lora-sx126x/lora/sx126x.py, lora/lora/modem.py
# and lora-async/lora/async_modem.py.
#
#   import fake_lora; fake_lora.install()   # sys.modules: lora, machine
#   ... LoRaRadio(board["radio"], board["pins"]) builds its modem through them ...
#   fake_lora.uninstall()
#
# Transmissions are delivered at once to every other modem on the same
# frequency, SF and bandwidth, with the rssi of the link (ether.link()).
# With ether.clock set (a fwtest.Clock), a send takes its time on air: the
# clock moves on by it, and ether.onair records (modem index, start, end).
import asyncio

import fwtest

_NAMES = ("lora", "machine")


class Ether:
    def __init__(self):
        self.modems = []
        self.rssi = {}  # (from index, to index) -> rssi
        self.default_rssi = -90
        self.sent = []  # (modem index, bytes)
        self.clock = None  # a fwtest.Clock that sends advance by their airtime
        self.onair = []  # (modem index, start ms, end ms), with a clock

    def link(self, a, b, rssi=None):
        r = self.default_rssi if rssi is None else rssi
        self.rssi[(a, b)] = r
        self.rssi[(b, a)] = r


ether = Ether()


def reset():
    global ether
    ether = Ether()


def install():
    reset()
    fwtest.install_fake(__name__, _NAMES)


def uninstall():
    fwtest.uninstall_fake(__name__, _NAMES)


# -- machine -----------------------------------------------------------------------
class Pin:
    IN = 1
    OUT = 3
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, id, mode=-1, pull=-1, *, value=None):
        self.id = id
        self.mode = mode
        self._value = value if value is not None else 0

    def init(self, mode=-1, pull=-1, *, value=None):
        self.mode = mode
        if value is not None:
            self._value = value

    def value(self, x=None):
        if x is None:
            return self._value
        self._value = x
        return None

    def __call__(self, x=None):
        return self.value(x)

    def irq(self, handler=None, trigger=IRQ_RISING):
        self.handler = handler


class SPI:
    def __init__(self, id, baudrate=1000000, *, polarity=0, phase=0, bits=8, firstbit=0,
                 sck=None, mosi=None, miso=None):
        self.id = id
        self.baudrate = baudrate
        self.sck, self.mosi, self.miso = sck, mosi, miso


# -- lora --------------------------------------------------------------------------
class ConfigError(ValueError):
    def __init__(self, field):
        super().__init__("Invalid lora_cfg {}".format(field))


class RxPacket(bytearray):
    def __init__(self, payload, ticks_ms=None, snr=None, rssi=None, valid_crc=True):
        super().__init__(payload)
        self.ticks_ms = ticks_ms
        self.snr = snr
        self.rssi = rssi
        self.valid_crc = valid_crc


_BW = {"7.8": 7800, "10.4": 10400, "15.6": 15600, "20.8": 20800, "31.25": 31250,
       "41.7": 41700, "62.5": 62500, "125": 125000, "250": 250000, "500": 500000}


class _FakeModem:
    _sf_min = 6

    def __init__(self, lora_cfg, pins):
        self.pins = pins
        self._rf_freq_hz = 0
        self._sf = 7
        self._bw_hz = 125000
        self._coding_rate = 5
        self._preamble_len = 12
        self._crc_en = True
        self._implicit_header = False
        self.crc_errors = 0
        self.rx_crc_error = False
        self.lora_cfg = {}
        self._queue = []  # (bytes, rssi, snr)
        self._event = asyncio.Event()
        self.allocated = 0  # RxPackets the fake "driver" had to allocate
        self.index = len(ether.modems)
        ether.modems.append(self)
        if lora_cfg:
            self.configure(lora_cfg)

    def configure(self, lora_cfg):
        self.lora_cfg.update(lora_cfg)
        if "freq_khz" in lora_cfg:
            self._rf_freq_hz = int(lora_cfg["freq_khz"] * 1000)
        if "sf" in lora_cfg:
            self._sf = int(lora_cfg["sf"])
            if not self._sf_min <= self._sf <= 12:
                raise ConfigError("sf")
        if "bw" in lora_cfg:
            self._bw_hz = _BW[str(lora_cfg["bw"])]  # KeyError for a non-string spelling, as the drivers
        if "coding_rate" in lora_cfg:
            self._coding_rate = int(lora_cfg["coding_rate"])
        if "preamble_len" in lora_cfg:
            self._preamble_len = lora_cfg["preamble_len"]

    def get_time_on_air_us(self, payload_len):
        # Semtech datasheet time-on-air (SX1276 DS 4.1.1.7 / SX1261-2 DS 6.1.4),
        # explicit header, CRC on, low-data-rate optimisation when Tsym >= 16 ms.
        t_sym_us = 1000000 * (1 << self._sf) // self._bw_hz
        de = 1 if t_sym_us >= 16000 else 0
        bits = 8 * payload_len + (16 if self._crc_en else 0) - 4 * self._sf + 8 + 20
        per = 4 * (self._sf - 2 * de)
        payload_syms = max(0, (bits + per - 1) // per) * self._coding_rate
        syms_x4 = 17 + 4 * (self._preamble_len + 8 + payload_syms)
        return t_sym_us * syms_x4 // 4

    async def send(self, packet, tx_at_ms=None):
        if len(packet) > 255:
            raise ValueError("packet too long")
        data = bytes(packet)
        ether.sent.append((self.index, data))
        clock = ether.clock
        if clock is not None:
            start = clock.read()
            clock.advance((self.get_time_on_air_us(len(data)) + 999) // 1000)
            ether.onair.append((self.index, start, clock.read()))
        for other in ether.modems:
            if other is self:
                continue
            rssi = ether.rssi.get((self.index, other.index))
            if rssi is None or (other._rf_freq_hz, other._sf, other._bw_hz) != (
                    self._rf_freq_hz, self._sf, self._bw_hz):
                continue
            other._queue.append((data, rssi, 20))
            other._event.set()
        await asyncio.sleep(0)
        return 0  # ticks_ms of tx done

    async def recv(self, timeout_ms=None, rx_length=0xFF, rx_packet=None):
        while not self._queue:
            self._event.clear()
            await self._event.wait()
        data, rssi, snr = self._queue.pop(0)
        # As _read_packet: reuse rx_packet only if it has the right length.
        if rx_packet is None or len(rx_packet) != len(data):
            rx_packet = RxPacket(len(data))
            self.allocated += 1
        rx_packet[:] = data
        rx_packet.ticks_ms = 0
        rx_packet.snr = snr
        rx_packet.rssi = rssi
        rx_packet.crc_error = False
        return rx_packet

    def standby(self):
        pass

    def sleep(self):
        pass


class AsyncSX1276(_FakeModem):
    def __init__(self, spi, cs, dio0=None, dio1=None, reset=None, lora_cfg=None, ant_sw=None):
        if "tx_ant" in (lora_cfg or {}) and lora_cfg["tx_ant"].upper() not in ("PA_BOOST", "RFO"):
            raise ConfigError("tx_ant")
        super().__init__(lora_cfg, {"spi": spi, "cs": cs, "dio0": dio0, "dio1": dio1,
                                    "reset": reset})


class AsyncSX1262(_FakeModem):
    def __init__(self, spi, cs, busy, dio1=None, dio2_rf_sw=True, dio3_tcxo_millivolts=None,
                 dio3_tcxo_start_time_us=1000, reset=None, lora_cfg=None, ant_sw=None):
        super().__init__(lora_cfg, {"spi": spi, "cs": cs, "busy": busy, "dio1": dio1,
                                    "reset": reset, "dio2_rf_sw": dio2_rf_sw,
                                    "tcxo_mv": dio3_tcxo_millivolts})
