# Tick arithmetic with the ESP32's period, whatever the host.
#
# MicroPython's time.ticks_ms() wraps at 2**30 on the ESP32 (about 12.4 days)
# but at 2**62 on the 64-bit unix port, and CPython has no ticks at all.  The
# core masks every clock reading to 30 bits and does all its sums here, so it
# behaves the same on a board, in the unix-port tests and in the simulator,
# and every tick value stays a small int (no heap allocation on the ESP32).
try:
    from micropython import const
except ImportError:  # CPython: the simulator runs this very file
    const = lambda x: x  # noqa: E731

PERIOD = const(0x40000000)
MASK = const(0x3FFFFFFF)
HALF = const(0x20000000)
# Modules that do tick sums on a hot path keep private copies (_MASK, _HALF:
# MicroPython inlines only a module's own consts); tests/host/test_consts.py
# checks every copy against these.


def add(t, delta):
    """t + delta, wrapped (time.ticks_add)."""
    return (t - MASK + delta - 1) & MASK  # t + delta, never past a small int


def diff(a, b):
    """Signed a - b in (-2**29, 2**29] (time.ticks_diff)."""
    return ((a - b ^ HALF) & MASK) - HALF


def level(tok, at, now, rate, cap):
    """A token bucket (the rate limits of peers.py and origins.py): the
    tokens one holding tok at tick at has at tick now, filled at rate per
    second, at most cap.  Tokens are thousandths of a frame, so a rate in
    frames per second fills rate thousandths a millisecond, and every value
    stays a small int on a 32-bit board."""
    el = (now - at) & MASK
    lim = cap // rate + 1  # ms that fill an empty bucket: el * rate stays small
    t = tok + (el if el < lim else lim) * rate
    return t if t < cap else cap
