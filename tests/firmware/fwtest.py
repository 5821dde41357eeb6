# Helpers for firmware tests.  They run under MicroPython (the unix port,
# which has no unittest) and under CPython, so only plain asserts and these.
import sys

MICROPYTHON = sys.implementation.name == "micropython"


class Skip(Exception):
    pass


def skip(reason):
    raise Skip(reason)


def raises(exc, fn, *args, **kw):
    """Call fn and return the exc it raised; fail if it raised nothing."""
    try:
        fn(*args, **kw)
    except exc as e:
        return e
    raise AssertionError("%s not raised" % exc.__name__)


def no_alloc(fn, what):
    """Run fn() with micropython.heap_lock() held.  Any heap allocation inside
    raises MemoryError, and the test fails naming `what`.  fn takes no
    arguments: build it (a closure, a bound method) before calling this."""
    if not MICROPYTHON:
        skip("heap_lock exists only on MicroPython")
    import micropython

    micropython.heap_lock()
    try:
        r = fn()
    except MemoryError:
        micropython.heap_unlock()
        raise AssertionError("heap allocation on the path: " + what)
    micropython.heap_unlock()
    return r


class Clock:
    """An injected millisecond clock the test moves by hand."""

    def __init__(self, t=0):
        self.t = t

    def read(self):
        return self.t

    def advance(self, ms):
        self.t += ms


def seeded_rand(seed=1):
    import random

    random.seed(seed)
    return random.getrandbits
