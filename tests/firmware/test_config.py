# Config: the seed's defaults and tuning table, and clear errors at construction.
from fwtest import raises

from rumor import Config


def test_defaults_are_the_seeds():
    c = Config()
    assert c.fanout == 4
    assert c.gossip_interval_ms == 1000
    assert c.max_message_age_ms == 60000
    assert c.prune_interval_ms == 30000
    assert c.push_pull_ratio == 0.7
    assert c.mode == "gossip"


def test_presets_carry_the_tuning_table():
    s, m, lg = Config.small(), Config.medium(), Config.large()
    assert (s.fanout, s.gossip_interval_ms, s.max_message_age_ms) == (3, 1500, 30000)
    assert (m.fanout, m.gossip_interval_ms, m.max_message_age_ms) == (4, 1000, 60000)
    assert (lg.fanout, lg.gossip_interval_ms, lg.max_message_age_ms) == (6, 500, 120000)
    assert s.ring_slots < m.ring_slots < lg.ring_slots
    assert Config.medium(fanout=5).fanout == 5


def test_default_frame_fits_espnow_v1():
    c = Config()
    assert c.max_payload + 16 <= 250
    assert c.mtu == 250


def test_bad_values_name_the_field():
    cases = [
        ({"fanout": 0}, "fanout"),
        ({"fanout": "4"}, "fanout"),
        ({"gossip_interval_ms": -1}, "gossip_interval_ms"),
        ({"push_pull_ratio": 1.5}, "push_pull_ratio"),
        ({"push_pull_ratio": "x"}, "push_pull_ratio"),
        ({"mode": "storm"}, "mode"),
        ({"dedup_slots": 100}, "dedup_slots"),
        ({"dedup_slots": 16, "ring_slots": 32}, "dedup_slots"),
        ({"max_payload": 300}, "max_payload"),
        ({"max_message_age_ms": 10 ** 7}, "max_message_age_ms"),
        ({"broadcast": 1}, "broadcast"),
        ({"colour": "red"}, "colour"),
    ]
    for kw, field in cases:
        e = raises(ValueError, Config, **kw)
        assert field in str(e), (kw, str(e))


def test_replace_validates_too():
    c = Config.small()
    assert c.replace(fanout=2).fanout == 2
    assert c.replace(fanout=2).ring_slots == c.ring_slots
    raises(ValueError, c.replace, hop_limit=0)
