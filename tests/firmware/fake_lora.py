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
#
# Channel activity detection (rumor/lora_cad.py drives it through the
# drivers' private register/command methods, so the fake has those too, with
# the chips' behaviour behind them):
#  - AsyncSX1276: _reg_read/_reg_write/_reg_update over a register file,
#    _set_mode/_get_mode/_standby/is_idle/_get_irq/_clear_irq as in
#    sx127x.py.  Writing RegOpMode mode 7 (CAD) from standby starts a CAD;
#    it ends after 1.5 symbols: RegIrqFlags CadDone, plus CadDetected if a
#    linked transmission's PREAMBLE overlapped it (SX127x CAD sees only
#    preambles), the chip back in standby, and the interrupt raised only if
#    RegDioMapping1 routes CadDone to DIO0 (mapping 10) and dio0 was given.
#    RegModemStat, read in RX, says signal detected/synchronised/rx ongoing
#    while a linked transmission is on air.
#  - AsyncSX1262: _cmd(fmt, *args, n_read=...) decoding the opcodes used
#    (SetStandby, ClearIrqStatus, GetIrqStatus, SetDioIrqParams,
#    SetCadParams, SetCAD, GetError; any other raises), _standby/_get_irq/
#    _clear_irq/is_idle built on it as in sx126x.py.  A CAD lasts its
#    symbols + 0.5 and detects any part of a linked transmission; an IRQ bit
#    is latched only if SetDioIrqParams unmasked it (the driver's __init__
#    unmasks RX/TX ones only), and DIO1 rises only for bits in its mask.
#  - both: the AsyncModem parts (_flags, two ThreadSafeFlags; _callback sets
#    both; _radio_isr; _wait(will_irq, idx, timeout_ms), during which fake
#    time passes: the clock moves on and a running CAD finishes), and the
#    BaseModem receive state (_rx, _tx, _check_recv()).
#  - ether.jam(index, start, end): modem `index` is on air from start to end
#    (ms on ether.clock) without a frame delivered: what a CAD can hear.
import asyncio
import struct

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
        self.jams = []  # (modem index, start ms, end ms): on air, nothing delivered

    def now(self):
        return self.clock.read() if self.clock is not None else 0

    def jam(self, index, start, end):
        self.jams.append((index, start, end))

    def heard(self, me, t0, t1, preamble_only):
        """Is a transmission from a modem linked to `me`, on its channel, on
        air (its preamble only, if preamble_only) somewhere in [t0, t1]?"""
        for i, s, e in self.onair + self.jams:
            if i == me.index or (i, me.index) not in self.rssi:
                continue
            src = self.modems[i]
            if (src._rf_freq_hz, src._sf, src._bw_hz) != (me._rf_freq_hz, me._sf, me._bw_hz):
                continue
            if preamble_only:
                e = min(e, s + src.preamble_ms())
            if s <= t1 and t0 < e:
                return True
        return False

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


def _advance_to(t):
    if ether.clock is not None and t > ether.clock.read():
        ether.clock.advance(t - ether.clock.read())


class _Flag:
    """asyncio.ThreadSafeFlag as the async driver uses it."""

    def __init__(self):
        self._ev = asyncio.Event()

    def set(self):
        self._ev.set()

    def clear(self):
        self._ev.clear()

    def is_set(self):
        return self._ev.is_set()

    async def wait(self):
        await self._ev.wait()
        self._ev.clear()


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
        # BaseModem / AsyncModem state, as in modem.py and async_modem.py
        self._rx = False
        self._tx = False
        self._last_irq = None
        self._irq_callback = None
        self._flags = (_Flag(), _Flag())
        self.set_irq_callback(self._callback)
        self.irqs = 0  # interrupts raised by the fake chip
        self.resumed = 0  # receives restarted by _check_recv()
        self._cad_end = None  # a running CAD ends at this ether time (ms)
        self._cad_t0 = 0  # and began at this one
        self.cads = []  # (start ms, end ms, detected) of each CAD run
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

    def _get_t_sym_us(self):
        return 1000000 * (1 << self._sf) // self._bw_hz

    def preamble_ms(self):
        return (self._get_t_sym_us() * (4 * self._preamble_len + 17) // 4 + 999) // 1000

    # -- BaseModem / AsyncModem IRQ flow
    def set_irq_callback(self, callback):
        self._irq_callback = callback

    def _callback(self):
        for f in self._flags:
            f.set()

    def _radio_isr(self, _):
        self._last_irq = ether.now()
        self.irqs += 1
        if self._irq_callback:
            self._irq_callback()

    async def _wait(self, will_irq, idx, timeout_ms):
        # The real one waits on the flag for up to timeout_ms (or sleeps
        # timeout_ms without an IRQ); here that time passes on the ether
        # clock, and a CAD running on the chip finishes within it.
        flag = self._flags[idx]
        if not (will_irq and flag.is_set()):
            end = ether.now() + timeout_ms
            if self._cad_end is not None and self._cad_end <= end:
                _advance_to(self._cad_end)
                self._cad_done()
            if not (will_irq and flag.is_set()):
                _advance_to(end)
        flag.clear()
        await asyncio.sleep(0)

    def _check_recv(self):
        if not self._rx:
            return False
        if not self.is_idle():
            return True
        self.resumed += 1
        self._rx_mode()
        return True

    def _cad_start(self, symbols_x2):
        t0 = ether.now()
        dur = (self._get_t_sym_us() * symbols_x2 // 2 + 999) // 1000
        self._cad_end = t0 + dur
        self._cad_t0 = t0

    def _cad_done(self):
        if self._cad_end is None:
            return
        t0, t1 = self._cad_t0, self._cad_end
        self._cad_end = None
        found = ether.heard(self, t0, t1, self._cad_preamble_only)
        self.cads.append((t0, t1, found))
        self._cad_result(found)

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
        self._standby()  # prepare_send()
        self._tx = True  # start_send()
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
        self._tx = False  # poll_send(): done, resume a receive
        self._check_recv()
        return 0  # ticks_ms of tx done

    async def recv(self, timeout_ms=None, rx_length=0xFF, rx_packet=None):
        self._rx = True  # start_recv()
        if not self._tx:
            self._standby()
            self._rx_mode()
        while not self._queue:
            self._event.clear()
            await self._event.wait()
        data, rssi, snr = self._queue.pop(0)
        self._rx = False  # a single receive ends with its packet
        self._standby()
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
        self._standby()
        self._rx = False
        self._tx = False
        self._radio_isr(None)

    def sleep(self):
        pass


# SX127x registers and bits (sx127x.py; datasheet register map)
_R_OPMODE = 0x01
_R_IRQ_FLAGS = 0x12
_R_MODEM_STAT = 0x18
_R_DIO_MAPPING1 = 0x40
_M_STDBY, _M_SLEEP, _M_TX, _M_RX_CONT, _M_RX_SINGLE, _M_CAD = 1, 0, 3, 5, 6, 7
_F_RX_DONE, _F_CAD_DONE, _F_CAD_DETECTED = 0x40, 0x04, 0x01


class AsyncSX1276(_FakeModem):
    _cad_preamble_only = True  # the SX127x CAD detects a LoRa preamble only

    def __init__(self, spi, cs, dio0=None, dio1=None, reset=None, lora_cfg=None, ant_sw=None):
        if "tx_ant" in (lora_cfg or {}) and lora_cfg["tx_ant"].upper() not in ("PA_BOOST", "RFO"):
            raise ConfigError("tx_ant")
        self._regs = bytearray(0x80)
        self._regs[_R_OPMODE] = 0x80 | _M_STDBY  # LoRa mode, standby (as __init__ leaves it)
        self._dio0 = dio0
        self._dio1 = dio1
        super().__init__(lora_cfg, {"spi": spi, "cs": cs, "dio0": dio0, "dio1": dio1,
                                    "reset": reset})

    # -- the register API of sx127x.py
    def _reg_read(self, reg):
        if reg == _R_MODEM_STAT:
            return self._modem_stat()
        return self._regs[reg]

    def _reg_write(self, reg, value):
        if not isinstance(value, int):
            for k in range(len(value)):
                self._reg_write(reg + k, value[k])
            return
        value &= 0xFF
        if reg == _R_IRQ_FLAGS:  # write 1 to clear
            self._regs[reg] &= ~value & 0xFF
            return
        if reg == _R_OPMODE:
            old = self._regs[reg] & 7
            self._regs[reg] = value
            if value & 7 == _M_CAD:
                if old != _M_STDBY:
                    raise RuntimeError("SX127x CAD must start from standby (mode %d)" % old)
                self._cad_start(3)  # about 1.5 symbols
            elif self._cad_end is not None:
                self._cad_end = None  # another mode aborts the CAD
            return
        self._regs[reg] = value

    def _reg_update(self, reg, update_mask, new_value):
        if not update_mask:
            return None
        old_value = self._reg_read(reg)
        value = ((old_value & ~update_mask) & 0xFF) | (new_value & update_mask)
        if old_value != value:
            self._reg_write(reg, value)
        return old_value

    def _get_mode(self):
        return self._reg_read(_R_OPMODE) & 7

    def _set_mode(self, mode, lora_en=True):
        mask = 0x80 | 7
        lora_val = 0x80 if lora_en else 0
        old_value = self._reg_read(_R_OPMODE)
        new_value = (old_value & ~mask) | lora_val | mode
        if new_value != old_value:
            self._reg_write(_R_OPMODE, new_value)
        return old_value

    def _standby(self):
        old_mode = self._set_mode(_M_STDBY) & 7
        if old_mode != _M_STDBY and old_mode != _M_SLEEP:  # (no tuple: allocation-free)
            self._reg_write(_R_IRQ_FLAGS, 0xFF)

    def is_idle(self):
        return self._get_mode() in (_M_STDBY, _M_SLEEP)

    def _get_irq(self):
        return self._reg_read(_R_IRQ_FLAGS)

    def _clear_irq(self, to_clear=0xFF):
        return self._reg_write(_R_IRQ_FLAGS, to_clear)

    # -- the chip
    def _rx_mode(self):
        self._reg_update(_R_DIO_MAPPING1, 0xF0, 0)  # start_recv: DIO0 RxDone, DIO1 RxTimeout
        self._set_mode(_M_RX_SINGLE)

    def _modem_stat(self):
        if self._get_mode() not in (_M_RX_CONT, _M_RX_SINGLE):
            return 0x10  # modem clear
        t = ether.now()
        if ether.heard(self, t, t, False):
            return 0x07 if not ether.heard(self, t, t, True) else 0x01  # locked / detecting
        return 0x10

    def _cad_result(self, found):
        self._regs[_R_IRQ_FLAGS] |= _F_CAD_DONE | (_F_CAD_DETECTED if found else 0)
        self._regs[_R_OPMODE] = (self._regs[_R_OPMODE] & ~7) | _M_STDBY  # back to standby
        if self._dio0 is not None and self._regs[_R_DIO_MAPPING1] >> 6 == 2:
            self._radio_isr(None)  # DIO0 mapping 10: CadDone


# SX126x opcodes, status modes and IRQ bits (sx126x.py, DS 13)
_C_CLR_IRQ, _C_CFG_DIO_IRQ, _C_GET_IRQ, _C_GET_ERROR = 0x02, 0x08, 0x12, 0x17
_C_SET_STANDBY, _C_SET_CAD_PARAMS, _C_SET_CAD = 0x80, 0x88, 0xC5
_S_STBY_RC, _S_STBY_XOSC, _S_RX, _S_TX = 2, 3, 5, 6
_I_TX_DONE, _I_RX_DONE, _I_CRC_ERR, _I_CAD_DONE, _I_CAD_DETECTED, _I_TIMEOUT = (
    0x1, 0x2, 0x40, 0x80, 0x100, 0x200)
_CAD_SYMBOLS = (1, 2, 4, 8, 16)


class AsyncSX1262(_FakeModem):
    _cad_preamble_only = False  # SX126x CAD sees any LoRa symbol

    def __init__(self, spi, cs, busy, dio1=None, dio2_rf_sw=True, dio3_tcxo_millivolts=None,
                 dio3_tcxo_start_time_us=1000, reset=None, lora_cfg=None, ant_sw=None):
        self._dio1 = dio1
        self._mode = _S_STBY_XOSC
        self._irq = 0
        # as the driver's __init__ leaves them: with dio1 it unmasks its own
        # IRQs and routes three to DIO1; without, SetDioIrqParams is never sent
        self.irq_mask = (_I_RX_DONE | _I_TX_DONE | _I_TIMEOUT | _I_CRC_ERR) if dio1 else 0
        self.dio1_mask = (_I_RX_DONE | _I_TX_DONE | _I_TIMEOUT) if dio1 else 0
        self.cad_params = None  # (symbols, det peak, det min, exit mode, timeout)
        self.commands = []  # opcodes received, in order
        self._buf_view = memoryview(bytearray(9))
        super().__init__(lora_cfg, {"spi": spi, "cs": cs, "busy": busy, "dio1": dio1,
                                    "reset": reset, "dio2_rf_sw": dio2_rf_sw,
                                    "tcxo_mv": dio3_tcxo_millivolts})

    # -- the command API of sx126x.py
    def _cmd(self, fmt, *write_args, n_read=0, write_buf=None, read_buf=None):
        wrlen = struct.calcsize(fmt)
        assert n_read + wrlen <= len(self._buf_view)  # as the driver: its buffer is 9 bytes
        struct.pack_into(fmt, self._buf_view, 0, *write_args)
        b = bytes(self._buf_view[:wrlen])
        op = b[0]
        self.commands.append(op)
        res = bytes(n_read)
        if op == _C_SET_STANDBY:
            self._mode = _S_STBY_XOSC if b[1] else _S_STBY_RC
            self._cad_end = None
        elif op == _C_CLR_IRQ:
            self._irq &= ~((b[1] << 8) | b[2])
        elif op == _C_GET_IRQ:
            res = bytes([self._mode << 4, self._irq >> 8, self._irq & 0xFF])[:n_read]
        elif op == _C_GET_ERROR:
            res = bytes([self._mode << 4, 0, 0])[:n_read]
        elif op == _C_CFG_DIO_IRQ:
            if wrlen != 9:
                raise ValueError("SetDioIrqParams takes 4 16-bit masks")
            self.irq_mask = (b[1] << 8) | b[2]
            self.dio1_mask = (b[3] << 8) | b[4]
        elif op == _C_SET_CAD_PARAMS:
            if wrlen != 8 or b[1] > 4 or b[4] > 2:
                raise ValueError("bad SetCadParams %r" % (b,))
            self.cad_params = (_CAD_SYMBOLS[b[1]], b[2], b[3], b[4], (b[5] << 16) | (b[6] << 8) | b[7])
        elif op == _C_SET_CAD:
            if self.cad_params is None:
                raise RuntimeError("SetCAD before SetCadParams")
            if self._mode not in (_S_STBY_RC, _S_STBY_XOSC):
                raise RuntimeError("SetCAD from mode %d" % self._mode)
            self._mode = _S_RX
            self._cad_start(2 * self.cad_params[0] + 1)  # its symbols + 0.5
        else:
            raise NotImplementedError("fake SX126x: opcode %#x" % op)
        if n_read:
            self._buf_view[wrlen:wrlen + n_read] = res
            return self._buf_view[wrlen:wrlen + n_read]
        return None

    def _standby(self):
        self._cmd("BB", _C_SET_STANDBY, 1)
        self._clear_irq()

    def _get_irq(self):
        irq_status = self._cmd("B", _C_GET_IRQ, n_read=3)
        return (irq_status[1] << 8) + irq_status[2]

    def _clear_irq(self, clear_bits=0xFFFF):
        self._cmd(">BH", _C_CLR_IRQ, clear_bits)
        self._last_irq = None

    def is_idle(self):
        return self._mode in (_S_STBY_XOSC, _S_STBY_RC)

    # -- the chip
    def _rx_mode(self):
        self._mode = _S_RX

    def _cad_result(self, found):
        bits = (_I_CAD_DONE | (_I_CAD_DETECTED if found else 0)) & self.irq_mask
        self._irq |= bits
        self._mode = _S_STBY_RC  # CAD_ONLY
        if self._dio1 is not None and bits & self.dio1_mask:
            self._radio_isr(None)
