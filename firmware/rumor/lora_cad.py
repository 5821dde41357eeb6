# Channel activity detection (CAD) for micropython-lib's LoRa drivers.
#
# lora-sx127x and lora-sx126x define the CAD interrupt bits but have no call
# that runs a CAD, so this module drives one through the driver's own
# register and command methods (_reg_read/_reg_write/_set_mode on SX127x,
# _cmd on SX126x), the way the driver's own prepare_send()/start_send() do:
#
#   cad = cad_for(modem)          # Sx127xCad, Sx126xCad, or None (no way to)
#   if await cad.busy(): ...      # True: someone is on the air, back off
#
# What the chips do (datasheets: SX1276/77/78/79 rev 7, its channel activity
# detection section and RegOpMode/RegIrqFlags/RegDioMapping1/RegModemStat;
# SX1261/2 rev 2.1, 13.1.8 SetCAD, 13.4.7 SetCadParams, 13.3.1
# SetDioIrqParams; Semtech AN1200.48 for the SX126x detector settings):
#
#  SX127x: from standby, RegOpMode mode 7 (CAD) listens for about one
#    symbol, correlates it against a LoRa up-chirp, sets CadDone (and
#    CadDetected if it found one) in RegIrqFlags and goes back to standby
#    by itself.  DIO0 mapping 10 routes CadDone to the driver's interrupt.
#    It is specified to detect a preamble (it may or may not fire on a frame
#    already in its payload: not to be relied on).
#    So, first, if the receiver is in RX and RegModemStat says it is
#    locked on a signal (signal detected / synchronised / rx ongoing), the
#    channel is busy without a CAD: that is the case the CAD would miss,
#    and a frame being received must not be cut off by going to standby.
#  SX126x: SetCadParams(symbols, detPeak, detMin, exit mode CAD_ONLY) then
#    SetCAD; the chip listens for `symbols` symbols, raises CadDone (and
#    CadDetected) and returns to STDBY_RC.  It detects any LoRa symbol,
#    payload as well as preamble.  The driver unmasks only the RX/TX IRQs
#    (SetDioIrqParams in its __init__), and a masked IRQ never shows in
#    GetIrqStatus, so CadDone/CadDetected are unmasked once here, with the
#    driver's own bits kept, and CadDone routed to DIO1 when the board wired it.
#
# Both chips can do CAD, so no RSSI fallback is needed; cad_for() returns
# None for a modem that has neither the SX127x register API nor the SX126x
# command API (the adapter then sends without listening, as before).
#
# While a CAD runs, the driver's receive is paused the way a send pauses it:
# _tx is set, so the receive task's poll_recv() steps aside, and afterwards
# _check_recv() resumes the receive (the async driver's interrupt callback
# wakes both the rx and tx flags; the rx task finds _tx set and waits on).
# A frame that arrived but has not been read yet (RxDone pending) counts as
# busy and leaves the chip alone, so the CAD never discards it.
#
# Allocation: busy() is a coroutine (one generator per call, as the driver's
# send()); the SX127x path is otherwise allocation-free (tests run start/
# finish under heap_lock); the SX126x driver's _cmd() packs its *args into a
# tuple, so each command allocates that tuple, as every driver command does.
try:
    from micropython import const
except ImportError:  # CPython
    const = lambda x: x  # noqa: E731

# -- SX127x (register addresses and bits as in lora-sx127x/lora/sx127x.py)
_R7_OPMODE = const(0x01)
_R7_MODE_MASK = const(0x07)
_R7_MODE_RX_CONT = const(0x05)
_R7_MODE_RX_SINGLE = const(0x06)
_R7_MODE_CAD = const(0x07)
_R7_IRQ_FLAGS = const(0x12)
_R7_IRQ_RX_DONE = const(0x40)
_R7_IRQ_CAD_DONE = const(0x04)
_R7_IRQ_CAD_DETECTED = const(0x01)
_R7_MODEM_STAT = const(0x18)
_R7_STAT_LOCKED = const(0x07)  # signal detected | signal synchronised | rx ongoing
_R7_DIO_MAPPING1 = const(0x40)
_R7_DIO0_MASK = const(0xC0)
_R7_DIO0_CAD_DONE = const(0x80)  # DIO0 mapping 10: CadDone

# -- SX126x (opcodes and IRQ bits as in lora-sx126x/lora/sx126x.py)
_C6_CFG_DIO_IRQ = const(0x08)
_C6_SET_CAD_PARAMS = const(0x88)
_C6_SET_CAD = const(0xC5)
_I6_TX_DONE = const(0x001)
_I6_RX_DONE = const(0x002)
_I6_CRC_ERR = const(0x040)
_I6_CAD_DONE = const(0x080)
_I6_CAD_DETECTED = const(0x100)
_I6_TIMEOUT = const(0x200)
_I6_DRIVER_MASK = const(0x243)  # RX_DONE | TX_DONE | TIMEOUT | CRC_ERR: the driver's own
_I6_DRIVER_DIO1 = const(0x203)  # RX_DONE | TX_DONE | TIMEOUT
_CAD_ONLY = const(0)  # cadExitMode: back to STDBY_RC when done

# SX126x detector settings for BW 125 kHz by SF (AN1200.48's recommended
# table): (cadSymbolNum code, symbols, cadDetPeak), cadDetMin 10 throughout.
# Codes: 0 = 1 symbol, 1 = 2, 2 = 4, 3 = 8, 4 = 16.
_C6_DET_MIN = const(10)
_C6_TABLE = ((1, 2, 22), (1, 2, 22), (2, 4, 23), (2, 4, 24), (2, 4, 25), (2, 4, 28))  # SF7..SF12

_POLL_MS = const(2)  # after the expected CAD time, poll the flags this often
_SLACK_MS = const(20)  # beyond which a CAD that never finished counts as free


class _Cad:
    """One CAD at a time on one modem; counters say what it saw.  A chip
    class gives _done/_found (its CadDone/CadDetected bits) and _pending,
    _start (returns will_irq), _irq (the IRQ flags) and _finish."""

    symbols = 1
    _done = 0
    _found = 0

    def _pending(self):
        return False

    def _start(self):
        return False

    def _irq(self):
        return 0

    def _finish(self):
        pass

    def __init__(self, modem):
        self._m = modem
        self.runs = 0  # CADs run on the chip
        self.detected = 0  # of which found activity
        self.locked = 0  # busy without a CAD: a frame being received (SX127x) or just received
        self.timeouts = 0  # CADs whose CadDone never came (counted free)

    def duration_ms(self):
        """How long one CAD keeps the chip: its symbols plus about one
        symbol of processing, rounded up."""
        t = self._m._get_t_sym_us() * (self.symbols + 1)
        return (t + 999) // 1000

    async def busy(self):
        """True if the channel is in use now (or a frame is waiting to be
        read); False if the CAD found it free.  The driver's state is as
        before: a paused receive is resumed."""
        m = self._m
        if self._pending():
            self.locked += 1
            return True
        m._flags[1].clear()
        m._tx = True  # receive steps aside, as during a send
        try:
            will_irq = self._start()
            self.runs += 1
            wait = self.duration_ms() + _POLL_MS
            waited = 0
            flags = 0
            while True:
                await m._wait(will_irq, 1, wait)
                waited += wait
                flags = self._irq()
                if flags & self._done:
                    break
                if waited > self.duration_ms() + _SLACK_MS:
                    self.timeouts += 1
                    break
                wait = _POLL_MS
            found = (flags & self._found) != 0
            self._finish()
        finally:
            m._tx = False
            m._check_recv()  # resume a receive the CAD paused
        if found:
            self.detected += 1
        return found

    def stats(self):
        return (self.runs, self.detected, self.locked, self.timeouts)


class Sx127xCad(_Cad):
    _done = _R7_IRQ_CAD_DONE
    _found = _R7_IRQ_CAD_DETECTED

    def _pending(self):
        m = self._m
        if m._reg_read(_R7_IRQ_FLAGS) & _R7_IRQ_RX_DONE:
            return True  # a frame is in the FIFO, not read yet
        mode = m._reg_read(_R7_OPMODE) & _R7_MODE_MASK
        if mode == _R7_MODE_RX_CONT or mode == _R7_MODE_RX_SINGLE:
            return (m._reg_read(_R7_MODEM_STAT) & _R7_STAT_LOCKED) != 0
        return False

    def _start(self):
        m = self._m
        m._standby()  # the private one: the driver's rx/tx state stays as it is
        if m._dio0:
            m._reg_update(_R7_DIO_MAPPING1, _R7_DIO0_MASK, _R7_DIO0_CAD_DONE)
        m._reg_write(_R7_IRQ_FLAGS, _R7_IRQ_CAD_DONE | _R7_IRQ_CAD_DETECTED)
        m._set_mode(_R7_MODE_CAD)
        return m._dio0 is not None

    def _irq(self):
        return self._m._reg_read(_R7_IRQ_FLAGS)

    def _finish(self):
        m = self._m
        m._reg_write(_R7_IRQ_FLAGS, _R7_IRQ_CAD_DONE | _R7_IRQ_CAD_DETECTED)
        m._standby()  # a CAD that never finished must not keep the chip


class Sx126xCad(_Cad):
    _done = _I6_CAD_DONE
    _found = _I6_CAD_DETECTED

    def __init__(self, modem):
        super().__init__(modem)
        sf = modem._sf
        row = _C6_TABLE[min(max(sf, 7), 12) - 7]
        self._code = row[0]
        self.symbols = row[1]
        self._peak = row[2]
        # Unmask the CAD IRQs (GetIrqStatus shows unmasked ones only), keep
        # the driver's, and route CadDone to DIO1 if the board wired it.
        dio1 = _I6_DRIVER_DIO1 | _I6_CAD_DONE if modem._dio1 else 0
        modem._cmd(">BHHHH", _C6_CFG_DIO_IRQ, _I6_DRIVER_MASK | _I6_CAD_DONE | _I6_CAD_DETECTED,
                   dio1, 0, 0)

    def _pending(self):
        return (self._m._get_irq() & _I6_RX_DONE) != 0

    def _start(self):
        m = self._m
        m._standby()  # STDBY_XOSC and every IRQ cleared, as prepare_send() does
        m._cmd(">BBBBBBH", _C6_SET_CAD_PARAMS, self._code, self._peak, _C6_DET_MIN, _CAD_ONLY,
               0, 0)
        m._cmd("B", _C6_SET_CAD)
        return bool(m._dio1)

    def _irq(self):
        return self._m._get_irq()

    def _finish(self):
        m = self._m
        m._clear_irq(_I6_CAD_DONE | _I6_CAD_DETECTED)
        m._standby()


def cad_for(modem):
    """The CAD helper for a micropython-lib modem object, by the API it has:
    SX127x registers (_reg_update, _set_mode) or SX126x commands (_cmd);
    None if it has neither."""
    if hasattr(modem, "_set_mode") and hasattr(modem, "_reg_update"):
        return Sx127xCad(modem)
    if hasattr(modem, "_cmd") and hasattr(modem, "_sf"):
        return Sx126xCad(modem)
    return None
