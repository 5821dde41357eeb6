# The ESP32's ticks_ms() wraps at 2**30 ms (12.4 days); the engine must not care.
from meshnet import Net

from rumor import Config, ticks

_WRAP = 1 << 30


def test_tick_arithmetic_wraps_like_the_esp32():
    assert ticks.add(_WRAP - 1, 1) == 0
    assert ticks.diff(5, _WRAP - 5) == 10
    assert ticks.diff(_WRAP - 5, 5) == -10
    assert ticks.diff(0, 0) == 0


def test_dissemination_relays_digests_and_expiry_across_the_wrap():
    cfg = Config.small(relay_delay_ms=50, gossip_interval_ms=200, max_message_age_ms=5000,
                       prune_interval_ms=1000)
    # start 300 ms before the wrap: relay delays, Trickle timers and ages all straddle it
    net = Net(4, cfg=cfg, links=[(0, 1), (1, 2), (2, 3)], t0=_WRAP - 300)
    net.drop = lambda src, dst, frame: dst == 3 and net.t < _WRAP + 100  # node 3 needs a pull
    for i in range(3):
        net.nodes[0].publish(b"w%d" % i)
        net.run(100)
    net.run(3000)
    assert net.t > _WRAP + 2000
    for i in (1, 2, 3):
        assert sorted(p for _o, _s, p, _h in net.got[i]) == [b"w0", b"w1", b"w2"], (i, net.got[i])
    for g in net.nodes:
        s = g.stats()
        assert s["message_count"] == 3 and s["expired"] == 0, s  # not expired early by the wrap
    net.run(6000)  # and they do expire on time afterwards
    for g in net.nodes:
        assert g.stats()["message_count"] == 0
    # a message published long after the wrap still flows
    net.nodes[3].publish(b"after")
    net.run(500)
    assert [p for _o, _s, p, _h in net.got[0]] == [b"after"]
