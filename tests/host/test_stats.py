"""rumor stats on virtual boards: core and radio counters, airtime, heap."""

from __future__ import annotations

import json

import pytest
from vboard import line_swarm, one_error, rumor

from rumor_host.stats import airtime, render


@pytest.fixture(scope="module")
def swarm(tmp_path_factory):
    with line_swarm(2, tmp_path_factory.mktemp("swarm"), private=True) as sw:
        yield sw


def test_stats_shows_counters_airtime_and_heap(swarm):
    r = rumor("inject", "-p", swarm.ports[0], "counted")
    assert r.returncode == 0, r.stderr
    r = rumor("stats", "-p", swarm.ports[0])
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith("node 00000001: delivered 0, published 1")
    assert "free heap: " in out and "bytes" in out.splitlines()[1]
    assert "airtime: not measured by this radio" in out
    assert "core:" in out and "frames_out=" in out and "radio (udp):" in out
    j = json.loads(rumor("stats", "-p", swarm.ports[0], "--json").stdout)
    assert j["ev"] == "stats" and j["core"]["published"] == 1 and j["mem_free"] > 0


def test_airtime_of_lora_and_espnow():
    lora = {"radio": "lora", "tx_airtime_ms": 1234, "duty_used_ms": 900, "duty_budget_ms": 36000,
            "duty_window_ms": 3600000}
    assert airtime(lora) == ["airtime sent: 1234 ms",
                             "duty cycle: 900 ms of 36000 ms allowed in the last 60 min (2.5% of the budget)"]
    esp = {"radio": "espnow", "tx_frames": 1000, "tx_bytes": 100000}
    assert "about 1336 ms (estimated at 1 Mbit/s" in airtime(esp)[0]
    text = "\n".join(render({"node": "0000000a", "core": {"delivered": 3}, "radio": lora, "mem_free": None}))
    assert "free heap: not reported" in text and "duty cycle" in text


def test_stats_bad_port_is_one_line():
    assert "no such port" in one_error(rumor("stats", "-p", "/dev/no-such-port"))
