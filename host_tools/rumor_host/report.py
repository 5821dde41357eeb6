"""rumor report: what a collected run (rumor logs JSONL) says about delivery.

Per message: which nodes got it, when and in how many hops.  Its start is
the host time of its injection record (written by `rumor logs` or
`rumor inject` through a running collector: the moment the command went to
the board), else of the origin's publish event.  Overall: delivery ratio
(deliveries / expected deliveries, expected = messages x the other nodes,
or the nodes of the source's component when a topology says who can hear
whom), latency p50/p99 over the deliveries, hops.  Per board: what it got,
the reboots seen, and the frames, bytes and airtime its last stats events
reported (counters restart at a reboot: each boot's last report is summed).

A file holds one run per run header (`{"run": {...}}`, docs/console.md);
a file with several runs is refused unless --run picks one (or all).
Latencies use the host stamps only: every virtual board shares the host
clock; the nodes' own ticks are informative.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from rumor.console import PREFIX


class ReportError(Exception):
    pass


@dataclass
class Msg:
    id: str
    origin: str
    t0: float | None = None  # host time of the publish line (None: not seen)
    injected: float | None = None  # host time of the injection record
    got: dict[str, tuple[float, int]] = field(default_factory=dict)  # node -> (host t, hops)

    @property
    def start(self) -> float | None:
        return self.injected if self.injected is not None else self.t0


def percentile(xs: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100) of xs, None if empty."""
    if not xs:
        return None
    s = sorted(xs)
    k = max(0, math.ceil(p / 100.0 * len(s)) - 1)
    return s[k]


class Records(list[dict[str, Any]]):
    """The records of a run file, and how many of its lines were not records."""

    skipped_lines: int = 0


def read_jsonl(path: str | Path) -> Records:
    """The records of a `rumor logs` file.  Lines that are not JSON objects (a
    record cut short by a crash, bytes a dying disk or a power cut left) are
    skipped and counted in .skipped_lines; a file with no record at all is
    not a run (ReportError, naming its first bad line)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ReportError(f"{path}: cannot read: {e.strerror}") from None
    out = Records()
    first_bad: int | None = None
    binary = 0
    for i, raw in enumerate(data.split(b"\n"), 1):
        raw = raw.strip(b" \t\r\x00")  # a power cut can leave NULs where a record was
        if not raw:
            continue
        try:
            rec = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            rec, binary = None, binary + 1
        except ValueError:
            rec = None
        if isinstance(rec, dict):
            out.append(rec)
            continue
        out.skipped_lines += 1
        if first_bad is None:
            first_bad = i
    if first_bad is not None and not any(("t" in r and "port" in r) or "run" in r for r in out):
        where = f"{path}: not a text file" if binary else f"{path}:{first_bad}: not a JSON line"
        raise ReportError(f"{where} (is this a `rumor logs` file?)")
    return out


@dataclass
class Run:
    """One run of a file: its header (None for records before any header,
    as files from before run headers have) and its records."""

    header: dict[str, Any] | None
    t: float | None
    records: Records

    @property
    def id(self) -> str:
        return str(self.header.get("id")) if self.header else "-"

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.t)) if self.t else "?"
        ports = self.header.get("ports") if self.header else None
        n = len(ports) if isinstance(ports, list) else len({r.get("port") for r in self.records if "port" in r})
        return f"run {self.id} of {when} ({n} ports, {len(self.records)} records)"


def split_runs(records: Records) -> list[Run]:
    """The runs of a file, in file order (a run header starts one)."""
    runs: list[Run] = []
    cur: Run | None = None
    for r in records:
        if isinstance(r.get("run"), dict):
            t = r.get("t")
            cur = Run(r["run"], float(t) if isinstance(t, (int, float)) else None, Records())
            runs.append(cur)
            continue
        if cur is None:
            cur = Run(None, None, Records())
            runs.append(cur)
        if cur.t is None and isinstance(r.get("t"), (int, float)):
            cur.t = float(r["t"])
        cur.records.append(r)
    if runs:
        runs[0].records.skipped_lines = getattr(records, "skipped_lines", 0)
    return [r for r in runs if r.records or r.header]


def pick_run(records: Records, which: str | None, name: str = "the file") -> tuple[Records, list[Run]]:
    """The records to report on: the file's only run, or the one `which`
    names (a run id or its start, 'last', or 'all'); ReportError, one line,
    for a file with several runs and no choice."""
    runs = split_runs(records)
    if which == "all" or (which is None and len(runs) <= 1):
        return records, runs
    if which is None:
        raise ReportError(f"{name} holds {len(runs)} runs: "
                          + "; ".join(r.describe() for r in runs)
                          + ". Pick one with --run ID (or --run last, --run all to count them as one)")
    if which == "last":
        chosen = runs[-1:]
    else:
        chosen = [r for r in runs if r.id.startswith(which)]
    if len(chosen) != 1:
        known = ", ".join(r.id for r in runs) or "none"
        raise ReportError(f"{name}: {'no' if not chosen else 'more than one'} run {which!r} "
                          f"(its runs: {known})")
    return chosen[0].records, chosen


_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
_HEX12 = re.compile(r"[0-9a-fA-F]{12}")


def _node(v: Any) -> str:
    if not isinstance(v, str) or not _HEX8.fullmatch(v):
        raise ValueError("node")
    return v.lower()


def _time(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError("t")
    return float(v)


def _hops(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError("hops")
    return v


def _msg_id(ev: dict[str, Any]) -> tuple[str, str]:
    """(id, origin) of a publish or deliver event: the id is 12 hex digits and
    starts with the origin, or the event is not trusted."""
    mid = ev.get("id")
    if not isinstance(mid, str) or not _HEX12.fullmatch(mid):
        raise ValueError("id")
    mid = mid.lower()
    origin = ev.get("origin", mid[:8])
    if _node(origin) != mid[:8]:
        raise ValueError("origin")
    return mid, mid[:8]


def _num(d: Any, *keys: str) -> float | None:
    """The first of keys in dict d that holds a number."""
    if not isinstance(d, dict):
        return None
    for k in keys:
        v = d.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return None


# what a board's stats event says, by what it is called in the core and radios
_STAT_KEYS = {"frames_out": ("core", ("frames_out",)), "frames_in": ("core", ("frames_in",)),
              "bytes_out": ("core", ("bytes_out",)),
              "airtime_ms": ("radio", ("tx_airtime_ms", "airtime_ms"))}


@dataclass
class BoardLog:
    """What one node's events say about it over the run."""

    node: str
    ports: set[str] = field(default_factory=set)
    boots: int = 0
    first_was_boot: bool = False
    seen_events: int = 0
    done: list[dict[str, Any]] = field(default_factory=list)  # last stats of each earlier boot
    last: dict[str, Any] | None = None  # last stats since the latest boot
    peers: dict[str, float | None] = field(default_factory=dict)  # heard node -> rssi (latest)
    peer_snapshots: int = 0

    @property
    def reboots(self) -> int:
        return self.boots - (1 if self.first_was_boot else 0)

    def event(self, kind: str, ev: dict[str, Any]) -> None:
        if self.seen_events == 0:
            self.first_was_boot = kind == "boot"
        self.seen_events += 1
        if kind == "boot":
            self.boots += 1
            if self.last is not None:
                self.done.append(self.last)
            self.last = None
        elif kind == "stats":
            self.last = ev
        elif kind == "peers" and isinstance(ev.get("peers"), list):
            self.peer_snapshots += 1
            self.peers = {}
            for row in ev["peers"]:
                if isinstance(row, list) and len(row) >= 2 and isinstance(row[1], str) and _HEX8.fullmatch(row[1]):
                    rssi = row[4] if len(row) > 4 and isinstance(row[4], (int, float)) else None
                    self.peers[row[1].lower()] = None if isinstance(rssi, bool) else rssi

    def totals(self) -> dict[str, Any]:
        reports = [*self.done, *([self.last] if self.last is not None else [])]
        out: dict[str, Any] = {"stats_reports": len(reports)}
        for name, (part, keys) in _STAT_KEYS.items():
            vals = [_num(r.get(part), *keys) for r in reports]
            known = [v for v in vals if v is not None]
            out[name] = int(sum(known)) if known else None
        radio = (self.last or {}).get("radio")
        used, window = _num(radio, "duty_used_ms"), _num(radio, "duty_window_ms")
        out["duty"] = round(used / window, 5) if used is not None and window else None
        out["mem_free"] = _num(self.last, "mem_free")
        return out


class _Scan:
    """One pass over a run's records: messages, boards, and what was skipped."""

    def __init__(self) -> None:
        self.nodes: set[str] = set()
        self.msgs: dict[str, Msg] = {}
        self.boards: dict[str, BoardLog] = {}
        self.inject_ports: dict[str, str] = {}  # message id -> port it was injected at
        self.disconnects = self.bad = self.garbage = self.cut_events = self.long_lines = 0
        self.ports: set[str] = set()  # every port the collector connected to
        self.named: dict[str, str] = {}  # port -> the node its events name

    def record(self, r: dict[str, Any]) -> None:
        if r.get("collector") in ("connected", "reconnected"):
            self.ports.add(str(r.get("port")))
        if r.get("collector") == "disconnected":
            self.disconnects += 1
        if r.get("garbage") or (isinstance(r.get("line"), str) and "\ufffd" in r["line"]):
            self.garbage += 1
        if r.get("long"):
            self.long_lines += 1
        line = r.get("line")
        if isinstance(line, str) and PREFIX in line:
            self.cut_events += 1  # an event the board did not finish (a reset mid-print) or that came garbled
        if isinstance(r.get("inject"), dict):
            self.injection(r)
        elif isinstance(r.get("ev"), dict):
            self.event(r, r["ev"])

    def injection(self, r: dict[str, Any]) -> None:
        try:
            mid, origin = _msg_id(r["inject"])
            t = _time(r.get("t"))
        except (KeyError, TypeError, ValueError):
            self.bad += 1
            return
        m = self.msgs.setdefault(mid, Msg(mid, origin))
        if m.injected is None or t < m.injected:
            m.injected = t
        self.inject_ports[mid] = str(r.get("port"))

    def event(self, r: dict[str, Any], ev: dict[str, Any]) -> None:
        try:
            node = _node(ev.get("node"))
            kind = ev.get("ev")
            t = _time(r.get("t"))
            if kind == "publish":
                mid, origin = _msg_id(ev)
                if origin != node:
                    raise ValueError("a node publishing another's message")
            elif kind == "deliver":
                mid, origin = _msg_id(ev)
                nhops = _hops(ev.get("hops"))
        except (KeyError, TypeError, ValueError):
            self.bad += 1  # an event with a garbled node, id, time or hop count: skipped, not guessed at
            return
        if node == "00000000":
            return
        self.nodes.add(node)
        port = str(r.get("port"))
        self.named[port] = node
        b = self.boards.setdefault(node, BoardLog(node))
        b.ports.add(port)
        b.event(str(kind), ev)
        if kind == "publish":
            m = self.msgs.setdefault(mid, Msg(mid, origin))
            if m.t0 is None or t < m.t0:  # the first publish line, should one repeat
                m.t0 = t
        elif kind == "deliver":
            m = self.msgs.setdefault(mid, Msg(mid, origin))
            if node not in m.got:  # the first copy counts (a rebooted node delivers again)
                m.got[node] = (t, nhops)


def analyse(records: list[dict[str, Any]],
            reach: dict[str, set[str]] | None = None) -> dict[str, Any]:
    """The figures of a run.  reach: origin node -> the nodes that can hear
    it at all (its component of a known topology); expected deliveries are
    then counted within it, and the report says so."""
    sc = _Scan()
    for r in records:
        sc.record(r)
    # a board that never printed an event is a node that got nothing, not no node
    nodes = sc.nodes | {f"port:{p}" for p in sc.ports - set(sc.named)}
    per, pairs = _per_message(sc, nodes, reach)
    lat_all = [x for p in per for x in p["_lat"]]
    hops_all = [h for p in per for h in p["_hops"]]
    delivered = sum(p["delivered"] for p in per)
    expected = sum(p["of"] for p in per)
    boards = _per_board(sc, nodes, per)
    return {
        "nodes": len(nodes),
        "messages": len(sc.msgs),
        "deliveries": delivered,
        "expected": expected,
        "delivery_ratio": round(delivered / expected, 4) if expected else None,
        "within_component": reach is not None,
        "injected": sum(1 for m in sc.msgs.values() if m.injected is not None),
        "latency_from": ("injection" if all(m.injected is not None for m in sc.msgs.values())
                         else "publish event" if not any(m.injected is not None for m in sc.msgs.values())
                         else "injection, else publish event"),
        "latency_ms_p50": _r(percentile(lat_all, 50)),
        "latency_ms_p99": _r(percentile(lat_all, 99)),
        "latency_ms_max": _r(max(lat_all) if lat_all else None),
        "hops_mean": round(sum(hops_all) / len(hops_all), 2) if hops_all else None,
        "hops_max": max(hops_all) if hops_all else None,
        "reboots": sum(b["reboots"] for b in boards),
        "disconnects": sc.disconnects,
        "bad_records": sc.bad,
        "skipped_lines": getattr(records, "skipped_lines", 0),
        "cut_events": sc.cut_events,
        "garbage_lines": sc.garbage,
        "long_lines": sc.long_lines,
        "per_message": [{k: v for k, v in p.items() if not k.startswith("_")} for p in per],
        "per_board": boards,
        "_latencies": lat_all,
        "_timed_expected": pairs,
        "_hops": hops_all,
        "_heard": {(b.node, h): r for b in sc.boards.values() for h, r in b.peers.items()},
        "_snapshots": {b.node: b.peer_snapshots for b in sc.boards.values()},
    }


def _per_message(sc: _Scan, nodes: set[str],
                 reach: dict[str, set[str]] | None) -> tuple[list[dict[str, Any]], int]:
    """Per message figures, and how many expected deliveries have a known start."""
    per: list[dict[str, Any]] = []
    timed_expected = 0
    for m in sorted(sc.msgs.values(), key=lambda m: (m.start if m.start is not None else math.inf, m.id)):
        others = nodes - {m.origin}
        if reach is not None:
            others &= reach.get(m.origin, others)
        got = {k: v for k, v in m.got.items() if k in others}
        t0 = m.start
        lats = [(t - t0) * 1000.0 for t, _ in got.values()] if t0 is not None else []
        hops = [h for _, h in got.values()]
        if t0 is not None:
            timed_expected += len(others)
        per.append({
            "id": m.id, "origin": m.origin, "published": m.t0 is not None,
            "injected": m.injected is not None, "at": sc.inject_ports.get(m.id),
            "delivered": len(got), "of": len(others),
            "missing": sorted(others - got.keys()),
            "latency_ms_p50": _r(percentile(lats, 50)), "latency_ms_max": _r(max(lats) if lats else None),
            "hops_max": max(hops) if hops else None,
            "nodes": {k: {"ms": _r((t - t0) * 1000.0) if t0 is not None else None, "hops": h}
                      for k, (t, h) in sorted(got.items())},
            "_lat": lats, "_hops": hops,
        })
    return per, timed_expected


def _per_board(sc: _Scan, nodes: set[str], per: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for node in sorted(nodes):
        b = sc.boards.get(node)
        should = sum(1 for p in per if node in p["missing"] or node in p["nodes"])
        got = sum(1 for p in per if node in p["nodes"])
        row: dict[str, Any] = {
            "node": node, "ports": sorted(b.ports) if b else [node[5:]],
            "got": got, "of": should, "ratio": round(got / should, 4) if should else None,
            "reboots": b.reboots if b else 0,
            "heard": sorted(b.peers) if b else [],
        }
        row.update(b.totals() if b else {"stats_reports": 0})
        out.append(row)
    return out


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def public(rep: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rep.items() if not k.startswith("_")}


def plot(rep: dict[str, Any], out: str | Path) -> None:
    """Three panels: latency CDF over the expected deliveries (it ends at the
    delivery ratio; log time axis), each board's delivery ratio (bars from
    0), hop counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(14, 4.2), gridspec_kw={"width_ratios": [3, 2, 2]})
    lat = sorted(max(x, 0.1) for x in rep["_latencies"])
    exp = rep["_timed_expected"]
    if lat and exp:
        ys = [(i + 1) / exp for i in range(len(lat))]
        a.step([lat[0], *lat], [0.0, *ys], where="post")
        a.axhline(ys[-1], color="0.6", ls=":", lw=1)
        a.set_xscale("log")
        from matplotlib.ticker import FuncFormatter

        a.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    a.set_ylim(0, 1.02)
    a.set_xlabel("latency since " + rep.get("latency_from", "publish") + " (ms, host clock, log scale)")
    a.set_ylabel("fraction of expected deliveries")
    ratio = rep["delivery_ratio"]
    where = " (within the source's component)" if rep.get("within_component") else ""
    a.set_title(f"{rep['messages']} messages, {rep['nodes']} nodes, delivery "
                + (f"{ratio:.1%}" if ratio is not None else "n/a") + where, fontsize=10)
    a.grid(True, alpha=0.3, which="both")
    boards = rep.get("per_board", [])
    if boards:
        names = [bd["node"][-4:] if not bd["node"].startswith("port:") else "?" for bd in boards]
        vals = [bd["ratio"] or 0.0 for bd in boards]
        b.bar(range(len(boards)), vals, color=["C2" if v >= 0.999 else "C1" for v in vals])
        for i, bd in enumerate(boards):
            if bd["ratio"] is None:  # nothing it should have got (it sent every message)
                b.text(i, 0.02, "n/a", ha="center", fontsize=7, rotation=90)
        b.set_xticks(range(len(boards)), names, rotation=90 if len(boards) > 12 else 0, fontsize=7)
    b.set_ylim(0, 1.05)
    b.set_xlabel("node (last 4 hex digits)")
    b.set_ylabel("share of its messages delivered")
    b.set_title("delivery per board", fontsize=10)
    hops = rep["_hops"]
    if hops:
        c.hist(hops, bins=range(1, max(hops) + 2), align="left", rwidth=0.8)
    c.set_xlabel("hops")
    c.set_ylabel("deliveries")
    c.set_title("hop count", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def draw_map(rep: dict[str, Any], out: str | Path, title: str = "") -> str:
    """The mesh as the boards' peers snapshots saw it (meshmap); returns a
    line saying what the picture is made of."""
    from rumor_host.meshmap import MeshMap, draw

    nodes = [bd["node"] for bd in rep["per_board"]]
    heard = dict(rep["_heard"])
    for _a, b in list(heard):  # neighbours heard but not logged are drawn too
        if b not in nodes:
            nodes.append(b)
    value = {bd["node"]: bd["ratio"] for bd in rep["per_board"]}
    marks = {p["origin"] for p in rep["per_message"]}
    snaps = rep["_snapshots"]
    without = [n for n in nodes if not snaps.get(n) and not n.startswith("port:")]
    note = (f"{len(nodes)} nodes, {len({tuple(sorted(k)) for k in heard})} links from "
            f"{sum(snaps.values())} peers snapshots; ring: a message's origin; white: no delivery figure"
            + (f"; no snapshot from {len(without)} node(s)" if without else ""))
    draw(MeshMap(nodes, heard, None, value, marks=marks, title=title or "who heard whom", note=note), out)
    return note


def skipped_line(rep: dict[str, Any]) -> str:
    """One line: what the report could not use, and why."""
    parts = [(rep.get("skipped_lines", 0), "unreadable in the file (cut by a crash?)"),
             (rep.get("cut_events", 0), "cut events (a board reset mid-line?)"),
             (rep.get("garbage_lines", 0), "garbage from the boards"),
             (rep.get("long_lines", 0), "pieces of over-long lines"),
             (rep.get("bad_records", 0), "events with bad fields")]
    said = [f"{n} {what}" for n, what in parts if n]
    return "skipped: " + (", ".join(said) if said else "nothing")


def run_line(runs: list[Run], records: list[dict[str, Any]]) -> str:
    """One line: which run(s) this report covers, and the time it spans."""
    ts = [r["t"] for r in records if isinstance(r.get("t"), (int, float)) and not isinstance(r.get("t"), bool)]
    span = f", {max(ts) - min(ts):.0f} s of records" if ts else ""
    if not runs or all(r.header is None for r in runs):
        return f"run: no run header (a file from an older `rumor logs`){span}"
    if len(runs) > 1:
        return f"runs: {', '.join(r.id for r in runs)} counted as one{span}"
    h = runs[0].header or {}
    argv = h.get("argv")
    by = f", by `{' '.join(map(str, argv))}`" if isinstance(argv, list) and argv else ""
    return f"{runs[0].describe()}{by}{span}"


def summary_line(rep: dict[str, Any]) -> str:
    ratio = rep["delivery_ratio"]
    within = ", within the source's component" if rep.get("within_component") else ""
    return (f"nodes {rep['nodes']}  messages {rep['messages']}  delivery ratio "
            f"{'n/a' if ratio is None else f'{ratio:.1%}'} ({rep['deliveries']} of {rep['expected']} "
            f"expected deliveries{within})  latency from {rep.get('latency_from', 'publish')}: "
            f"p50 {_f(rep['latency_ms_p50'])} ms  p99 {_f(rep['latency_ms_p99'])} ms  hops mean "
            f"{_f(rep['hops_mean'])} max {_f(rep['hops_max'])}  reboots {rep.get('reboots', 0)}")


def _board_cells(bd: dict[str, Any]) -> list[str]:
    duty = bd.get("duty")
    return [bd["node"], " ".join(Path(p).name if len(p) > 16 else p for p in bd["ports"]),
            f"{bd['got']}/{bd['of']}" if bd["of"] else "-", str(bd["reboots"]),
            _f(bd.get("frames_out")), _f(bd.get("frames_in")), _f(bd.get("bytes_out")),
            _f(bd.get("airtime_ms")), "-" if duty is None else f"{duty:.2%}",
            _f(bd.get("mem_free") and int(bd["mem_free"]))]


_BOARD_COLS = ("node", "port", "got", "reboots", "frames out", "frames in", "bytes out",
               "airtime ms", "duty", "mem free")


def print_report(rep: dict[str, Any], echo_table: bool = True, run: str | None = None) -> None:
    from rich.console import Console

    con = Console(highlight=False)
    narrow = con.width < 100  # a table would fold ids there: plain lines instead
    if run:
        con.print(run, markup=False, soft_wrap=True)
    if echo_table and rep["per_message"]:
        _messages(con, rep, narrow)
    if echo_table and rep.get("per_board"):
        _boards(con, rep, narrow)
    con.print(summary_line(rep), markup=False, soft_wrap=True)
    if rep.get("per_board") and not any(bd.get("stats_reports") for bd in rep["per_board"]):
        con.print("stats: no board reported any (`rumor stats -p PORT` during the run, or the node's "
                  "stats_interval_ms, gives frames and airtime)", markup=False, soft_wrap=True)
    con.print(skipped_line(rep), markup=False, soft_wrap=True)


def _messages(con: Any, rep: dict[str, Any], narrow: bool) -> None:
    from rich.table import Table

    rows = []
    for m in rep["per_message"]:
        miss = " ".join(m["missing"][:6]) + (" ..." if len(m["missing"]) > 6 else "")
        rows.append([m["id"], m["origin"], f"{m['delivered']}/{m['of']}", _f(m["latency_ms_p50"]),
                     _f(m["latency_ms_max"]), _f(m["hops_max"]), miss])
    cols = ("id", "origin", "delivered", "p50 ms", "max ms", "max hops", "missing")
    if narrow:
        con.print("deliveries per message:", markup=False)
        for r in rows:
            con.print(f"{r[0]} from {r[1]}: {r[2]}, p50 {r[3]} ms, max {r[4]} ms, hops {r[5]}"
                      + (f", missing {r[6]}" if r[6] else ""), markup=False, soft_wrap=True)
        return
    t = Table(title="deliveries per message")
    for col in cols:
        left = col in ("id", "origin", "missing")
        t.add_column(col, justify="left" if left else "right", no_wrap=col != "missing",
                     min_width={"id": 12, "origin": 8}.get(col), overflow="fold")
    for r in rows:
        t.add_row(*r)
    con.print(t)


def _boards(con: Any, rep: dict[str, Any], narrow: bool) -> None:
    from rich.table import Table

    if narrow:
        con.print("per board:", markup=False)
        for bd in rep["per_board"]:
            cells = _board_cells(bd)
            con.print(", ".join(f"{k} {v}" for k, v in zip(_BOARD_COLS, cells, strict=True)),
                      markup=False, soft_wrap=True)
        return
    t = Table(title="per board (frames, bytes, airtime: the boards' own stats, summed over reboots)")
    for col in _BOARD_COLS:
        t.add_column(col, justify="left" if col in ("node", "port") else "right",
                     no_wrap=col == "node", min_width=8 if col == "node" else None, overflow="fold")
    for bd in rep["per_board"]:
        t.add_row(*_board_cells(bd))
    con.print(t)


def _f(x: Any) -> str:
    return "-" if x is None else str(x)


@click.command("report")
@click.argument("run", metavar="FILE", type=click.Path(dir_okay=False))
@click.option("--run", "which", default=None, metavar="ID",
              help="the run to report on when the file holds several (rumor logs --append): "
                   "its id (or the start of it), 'last', or 'all' to count them as one")
@click.option("--plot", "plot_out", default=None, type=click.Path(dir_okay=False),
              help="write a PNG: latency CDF over the expected deliveries, delivery per board, hops")
@click.option("--map", "map_out", default=None, type=click.Path(dir_okay=False),
              help="write a PNG of who heard whom (from the peers snapshots `rumor logs` asks for), "
                   "links shaded by RSSI, nodes coloured by delivery ratio")
@click.option("--json", "json_out", default=None, type=click.Path(dir_okay=False), help="write the figures as JSON")
def report_cmd(run: str, which: str | None, plot_out: str | None, map_out: str | None,
               json_out: str | None) -> None:
    """Per message: which nodes got it, when, in how many hops; per board: what
    it got, its reboots, frames and airtime; delivery ratio and latency.

    Latency runs from a message's injection record (written when `rumor
    inject` goes through a running `rumor logs`) or else its publish event."""
    try:
        records, runs = pick_run(read_jsonl(run), which, run)
        rep = analyse(records)
    except ReportError as e:
        raise click.ClickException(str(e)) from None
    if not rep["messages"]:
        raise click.ClickException(f"{run}: no injection, publish or deliver events in it"
                                   + (f" ({runs[0].describe()})" if len(runs) == 1 and runs[0].header else ""))
    print_report(rep, run=run_line(runs, records))
    try:
        if json_out:
            Path(json_out).write_text(json.dumps(public(rep), indent=1) + "\n")
        if plot_out:
            plot(rep, plot_out)
            click.echo(f"plot: {plot_out}")
        if map_out:
            if not any(rep["_snapshots"].values()):
                click.echo("map: no peers snapshots in the run (`rumor logs --nodes-every S` asks "
                           "for them); drawing the nodes alone", err=True)
            draw_map(rep, map_out, f"who heard whom: {Path(run).name}")
            click.echo(f"map: {map_out}")
    except OSError as e:
        raise click.ClickException(f"{e.filename or json_out or plot_out or map_out}: {e.strerror}") from None
