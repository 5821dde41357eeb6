# Heap bytes of the buffers the core allocates, as MicroPython's GC counts
# them: every bytearray/array/list is an object of 4 machine words plus its
# items, each rounded up to the GC block (4 words).  Under MicroPython this
# is the running port's word size; under CPython it is the ESP32's (4), the
# board whose heap the figure is about.
import sys

_W = 8 if sys.implementation.name == "micropython" and sys.maxsize > 0xFFFFFFFF else 4
_B = 4 * _W


def block(n):
    return (n + _B - 1) // _B * _B


def buf(nbytes):
    """A bytearray, bytes or array of nbytes: object block + items."""
    return _B + block(nbytes)


def lst(n):
    """A list of n items."""
    return _B + block(_W * n)


def inst(o):
    """An instance: its object block plus its attribute table (a hash table
    of key/value word pairs, kept about a third empty)."""
    return _B + block(2 * _W * (len(o.__dict__) * 3 // 2))
