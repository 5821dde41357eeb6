"""rumor config on virtual boards: get, set (checked first, written through
mpremote, node restarted), --export/--import; bad input in one line with
nothing changed on the board; through a collector too."""

from __future__ import annotations

import json

import pytest
from vboard import answer, line_swarm, one_error, rumor

from rumor_host import Board
from rumor_host.logs import Collector, wait_ready


@pytest.fixture(scope="module")
def swarm(tmp_path_factory):
    with line_swarm(3, tmp_path_factory.mktemp("swarm"), private=True) as sw:
        yield sw


def board_json(sw, i):
    return json.loads((sw.boards[i].folder / "board.json").read_text())


def test_get_all_and_some_fields(swarm):
    r = rumor("config", "-p", swarm.ports[0], "get")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("node 00000001: preset medium")
    fields = dict(ln.split("=", 1) for ln in lines[1:])
    assert fields["fanout"] == "4" and fields["mode"] == '"gossip"' and "max_peers" in fields
    r = rumor("config", "-p", swarm.ports[0], "get", "fanout", "ring_slots")
    assert r.stdout.splitlines() == ["fanout=4", "ring_slots=32"]
    j = json.loads(rumor("config", "-p", swarm.ports[0], "get", "--json").stdout)
    assert j["preset"] == "medium" and j["config"]["mtu"] == 250


@pytest.mark.parametrize("args,words", [
    (["set", "fanout=0"], "Config.fanout=0 is out of range 1..32"),
    (["set", "mode=fast"], "Config.mode must be one of flood/hybrid/gossip"),
    (["set", "fanuot=6"], "fanuot: no such Config field (did you mean fanout?)"),
    (["set", "mtu=100"], "the node takes it from its radio"),
    (["set", "dedup_slots=100"], "power of two"),
    (["set", "fanout"], "use FIELD=VALUE"),
    (["set", "node.level=loud"], "node.level must be one of"),
    (["set", "node.colour=red"], "not a node setting"),
    (["set"], "set what?"),
    (["get", "nosuch"], "nosuch: no such Config field"),
])
def test_bad_input_is_one_line_and_changes_nothing(swarm, args, words):
    before = (swarm.boards[1].folder / "board.json").read_bytes()
    restarts = swarm.boards[1].restarts
    err = one_error(rumor("config", "-p", swarm.ports[1], *args))
    assert words in err, err
    assert (swarm.boards[1].folder / "board.json").read_bytes() == before
    assert swarm.boards[1].restarts == restarts  # not even restarted
    assert answer(swarm.ports[1], "!help", "help")["node"] == "00000002"  # still running


def test_usage_errors_are_one_line(swarm):
    assert "give one of" in one_error(rumor("config", "-p", swarm.ports[1]))
    assert "get takes field names" in one_error(rumor("config", "-p", swarm.ports[1], "get", "a=1"))
    assert "no such port" in one_error(rumor("config", "-p", "/dev/no-such-port", "get"))


def test_set_writes_board_json_and_restarts_the_node(swarm):
    r = rumor("config", "-p", swarm.ports[2], "set", "fanout=6", "node.payload_in_events=false")
    assert r.returncode == 0, r.stderr
    assert "restarted with fanout=6, node.payload_in_events=false (fanout was 4)" in r.stdout
    b = board_json(swarm, 2)
    assert b["node"]["config"] == {"fanout": 6} and b["node"]["payload_in_events"] is False
    assert b["node_id"] == 3 and b["radio"]["port"] == swarm.medium_port  # the rest kept
    assert not (swarm.boards[2].folder / "board.json.new").exists()
    with Board(swarm.ports[2]) as n3, Board(swarm.ports[1]) as n2:
        assert n3.config()["config"]["fanout"] == 6
        mid = n2.publish("no payload shown at 3")
        ev = next(e for e in n3.events(timeout=15, kinds=("deliver",)) if e["id"] == mid)
        assert "payload" not in ev and ev["len"] == len("no payload shown at 3")
    r = rumor("config", "-p", swarm.ports[2], "set", "node.payload_in_events=true")
    assert r.returncode == 0, r.stderr


def test_set_through_a_collector_that_holds_the_port(swarm, tmp_path):
    out = tmp_path / "run.jsonl"
    with Collector(swarm.ports, out) as col:
        assert wait_ready(col, swarm.ports) == []
        r = rumor("config", "-p", swarm.ports[0], "set", "mode=flood")
        assert r.returncode == 0, r.stderr
        assert col.wait_for(lambda rs: any(x.get("collector") == "paused" for x in rs), 5)
        assert col.wait_for(lambda rs: any(x.get("ev", {}).get("ev") == "boot" and x["port"] == swarm.ports[0]
                                           for x in rs), 20)
        assert col.connected(swarm.ports[0])
    assert board_json(swarm, 0)["node"]["config"]["mode"] == "flood"
    assert rumor("config", "-p", swarm.ports[0], "set", "mode=gossip").returncode == 0


def test_export_and_import_a_whole_board(swarm, tmp_path):
    f = tmp_path / "b1.json"
    r = rumor("config", "-p", swarm.ports[0], "--export", str(f))
    assert r.returncode == 0, r.stderr
    d = json.loads(f.read_text())
    assert d == board_json(swarm, 0)
    d["node"]["config"]["ring_slots"] = 24
    d["node_id"] = 99  # the target keeps its own id
    f.write_text(json.dumps(d))
    r = rumor("config", "-p", swarm.ports[1], "--import", str(f))
    assert r.returncode == 0, r.stderr
    b = board_json(swarm, 1)
    assert b["node_id"] == 2 and b["node"]["config"]["ring_slots"] == 24
    assert answer(swarm.ports[1], "!config", "config")["config"]["ring_slots"] == 24
    # a bad file: one line, the board as it was
    before = (swarm.boards[1].folder / "board.json").read_bytes()
    for text, words in [("{nope", "not valid JSON"), ('{"name": "x"}', "no radio object"),
                        (json.dumps(dict(d, node={"config": {"fanout": 99}})), "out of range")]:
        f.write_text(text)
        assert words in one_error(rumor("config", "-p", swarm.ports[1], "--import", str(f)))
        assert (swarm.boards[1].folder / "board.json").read_bytes() == before


def test_a_node_that_cannot_start_with_the_new_settings_gets_the_old_board_json_back(swarm):
    # valid for Config, too big for the heap: the node crashes at boot (MemoryError)
    before = (swarm.boards[1].folder / "board.json").read_bytes()
    err = one_error(rumor("config", "-p", swarm.ports[1], "set", "ring_slots=4096",
                          "dedup_slots=65536", "max_peers=250", "addr_max=64"))
    assert "did not start with the new settings (the node crashed at boot: MemoryError" in err
    assert "its old board.json is back" in err
    assert (swarm.boards[1].folder / "board.json").read_bytes() == before
    assert answer(swarm.ports[1], "!config", "config")["config"]["ring_slots"] != 4096
