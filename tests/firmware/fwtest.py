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


def pump_radios(clock, radios, engines, before=None, steps=60, ms=20):
    """Run each radio's run(engine) task and tick the engines for steps * ms
    of test time; before() runs once the tasks are up (e.g. a publish)."""
    import asyncio

    async def main():
        tasks = [asyncio.create_task(radios[i].run(engines[i])) for i in range(len(radios))]
        await asyncio.sleep(0)
        if before is not None:
            before()
        for _ in range(steps):
            for _ in range(4):  # let every run() task drain what arrived
                await asyncio.sleep(0)
            clock.advance(ms)
            for g in engines:
                g.tick()
        for t in tasks:
            t.cancel()
        await asyncio.sleep(0)

    asyncio.run(main())


def engine_on(radio, cfg, node_id, clock, rand, inbox):
    """A started Gossip sending through radio, its deliveries appended to
    inbox as (origin, payload)."""
    from rumor import Gossip

    g = Gossip(cfg, node_id=node_id, clock=clock.read, rand=rand)

    def deliver(msg):
        inbox.append((msg.origin, msg.payload()))

    g.on_message(deliver)
    g.on_forward(radio.send)
    g.start()
    return g


def install_fake(name, names):
    """Put module `name` (a fake) in sys.modules under each of `names`, so
    the adapter's own `import espnow` / `from lora import ...` gets it."""
    me = sys.modules[name]
    for n in names:
        sys.modules[n] = me


def uninstall_fake(name, names):
    for n in names:
        if sys.modules.get(n) is sys.modules[name]:
            del sys.modules[n]


def tmp_dir(prefix):
    """A new, empty folder /tmp/PREFIX-XXXXXXXX (random suffix) for one test."""
    import os
    import random

    d = "/tmp/%s-%08x" % (prefix, random.getrandbits(32))
    os.mkdir(d)
    return d


def rm_dir(d):
    """Remove folder d made by tmp_dir and the plain files in it."""
    import os

    for f in os.listdir(d):
        os.remove(d + "/" + f)
    os.rmdir(d)
