"""One owner per port, many clients: the control socket of a running collector.

A serial port can be open in one program only.  While `rumor logs` (or any
long-running command built on `logs.Collector`) holds some ports, the other
commands (`inject`, `stats`, `nodes`, `config`, `reset`, `listen`, and
`rumor_host.Board` in a script) reach those boards through it: the collector
serves a unix socket (never a network port), and registers each port it
holds, so a client finds the socket from the port's name alone.

Where things are (docs/console.md, "Many clients, one port"):
    runtime dir   $RUMOR_RUNTIME_DIR, else $XDG_RUNTIME_DIR/rumor, else
                  /tmp/rumor-<uid>; made with mode 0700 (the socket gives
                  access to the boards: it is the user's alone)
    socket        <runtime dir>/<pid>-<run id>.sock
    registry      <runtime dir>/ports/<key>.json, one per port held, key =
                  sha1 of the port's absolute path (and one more for its
                  resolved path when that differs: /dev/serial/by-id/...,
                  a swarm's nodeNN.tty symlink), holding
                  {"port", "socket", "pid", "run", "out"}
An entry whose pid is gone is stale: a client ignores it and removes it.

The protocol on the socket: JSON objects, one per line, both ways.  A client
request carries "op" and a number "n"; the answer carries "re": n and either
"ok": true and the op's fields, or "ok": false and "error" (one line).
    {"op":"hello"}                         -> run, ports, out, pid
    {"op":"attach","port":P}               -> port (the collector's name for
                                              it), connected; from then on
                                              {"rec": record} for every record
                                              of that port, as in the JSONL
    {"op":"send","port":P,"line":"!stats"} -> sent
    {"op":"write","port":P,"data":"\\u0003"} -> raw bytes (latin-1), e.g. Ctrl-C
    {"op":"inject","port":P,"text"|"hex":..,"priority":k}
                                           -> req (the collector's own number,
                                              unique in the run), bytes; when
                                              the node's publish answer with that
                                              req comes, the collector writes an
                                              "inject" record with the host time
                                              taken just before the line went out
    {"op":"pause","port":P,"why":"..."}    -> the collector closes the port (for
                                              mpremote) until "resume" or until
                                              this client goes away
    {"op":"resume","port":P}
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import queue
import secrets
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:  # pragma: no cover
    from rumor_host.logs import Collector

Record = dict[str, Any]
_QUEUE = 20000  # records buffered for one slow client before it is dropped


def runtime_dir(create: bool = True) -> Path:
    """Where sockets and the port registry live (see the module doc)."""
    env = os.environ.get("RUMOR_RUNTIME_DIR")
    if env:
        d = Path(env)
    elif os.environ.get("XDG_RUNTIME_DIR") and os.path.isdir(os.environ["XDG_RUNTIME_DIR"]):
        d = Path(os.environ["XDG_RUNTIME_DIR"]) / "rumor"
    else:
        d = Path("/tmp") / f"rumor-{os.getuid()}"
    if create:
        (d / "ports").mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(d, 0o700)
    return d


def _names(port: str) -> list[str]:
    """The names a port is known by: its absolute path, and its resolved
    path when that differs (a symlink)."""
    a = os.path.abspath(port)
    r = os.path.realpath(port)
    return [a] if r == a else [a, r]


def port_key(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()[:20]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process
        return True
    return True


class Holder(NamedTuple):
    """A running collector that holds a port."""

    port: str  # the collector's name for it
    socket: str
    pid: int
    run: str
    out: str | None


def lookup(port: str) -> Holder | None:
    """The live collector holding port, or None.  Stale entries are removed."""
    reg = runtime_dir(create=False) / "ports"
    for name in _names(port):
        f = reg / (port_key(name) + ".json")
        try:
            d = json.loads(f.read_text())
            h = Holder(str(d["port"]), str(d["socket"]), int(d["pid"]), str(d["run"]), d.get("out"))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not _alive(h.pid) or not os.path.exists(h.socket):
            with contextlib.suppress(OSError):
                f.unlink()
            continue
        return h
    return None


def holders() -> list[Holder]:
    """Every live registry entry (one per port name; `rumor ports` lists them)."""
    reg = runtime_dir(create=False) / "ports"
    out: list[Holder] = []
    seen: set[str] = set()
    for f in sorted(reg.glob("*.json")) if reg.is_dir() else []:
        try:
            d = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        h = lookup(str(d.get("port", "")))
        if h is not None and h.port not in seen:
            seen.add(h.port)
            out.append(h)
    return out


class ControlError(Exception):
    """The control socket could not be served or reached; one line."""


# -- the server (inside the collector) ----------------------------------------------------
class _Client:
    def __init__(self, server: ControlServer, conn: socket.socket):
        self.server = server
        self.conn = conn
        self.q: queue.Queue[bytes | None] = queue.Queue(_QUEUE)
        self.ports: set[str] = set()  # attached
        self.paused: set[str] = set()
        self.dead = False

    def push(self, msg: dict[str, Any]) -> None:
        if self.dead:
            return
        try:
            self.q.put_nowait((json.dumps(msg, separators=(",", ":")) + "\n").encode())
        except queue.Full:  # a client that does not read: dropped, the collector goes on
            self.dead = True
            with contextlib.suppress(OSError):
                self.conn.shutdown(socket.SHUT_RDWR)

    def writer(self) -> None:
        while True:
            b = self.q.get()
            if b is None:
                return
            try:
                self.conn.sendall(b)
            except OSError:
                self.dead = True
                return

    def reader(self) -> None:
        buf = b""
        try:
            while not self.dead:
                try:
                    data = self.conn.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                *lines, buf = (buf + data).split(b"\n")
                for raw in lines:
                    if raw.strip():
                        self.server.handle(self, raw)
                if len(buf) > 1 << 20:
                    break  # a request of a megabyte is no request
        finally:
            self.dead = True
            self.server.gone(self)
            self.q.put(None)
            with contextlib.suppress(OSError):
                self.conn.close()


class ControlServer:
    """The control socket of one collector (started and stopped by it)."""

    def __init__(self, col: Collector, run_id: str):
        self.col = col
        self.run = run_id
        self.path = ""
        self._sock: socket.socket | None = None
        self._clients: list[_Client] = []
        self._lock = threading.Lock()
        self._entries: list[Path] = []
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        d = runtime_dir()
        for old in d.glob("*-*.sock"):  # left by a collector that was killed
            pid = old.name.split("-", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                with contextlib.suppress(OSError):
                    old.unlink()
        self.path = str(d / f"{os.getpid()}-{self.run}.sock")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.bind(self.path)
            os.chmod(self.path, 0o600)
            s.listen(16)
        except OSError as e:
            s.close()
            raise ControlError(f"{self.path}: cannot serve the control socket: {e.strerror}") from None
        self._sock = s
        self._register()
        self._thread = threading.Thread(target=self._accept, name="control", daemon=True)
        self._thread.start()

    def _register(self) -> None:
        reg = runtime_dir() / "ports"
        out = str(self.col.out_path.resolve()) if self.col.out_path else None
        for port in self.col.ports:
            other = lookup(port)
            if other is not None and other.socket != self.path:
                # its owner keeps it (and its clients): we will only wait for the port
                self.col.warn(f"{port}: held by rumor logs pid {other.pid} (run {other.run}); "
                              "commands go there, this collector waits for the port")
                continue
            body = json.dumps({"port": port, "socket": self.path, "pid": os.getpid(),
                               "run": self.run, "out": out})
            for name in _names(port):
                f = reg / (port_key(name) + ".json")
                tmp = f.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(body)
                tmp.replace(f)
                self._entries.append(f)

    def stop(self) -> None:
        for f in self._entries:
            with contextlib.suppress(OSError, ValueError):
                if json.loads(f.read_text()).get("socket") == self.path:  # still ours
                    f.unlink()
        self._entries = []
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        with self._lock:
            clients = list(self._clients)
        for c in clients:
            c.dead = True
            with contextlib.suppress(OSError):
                c.conn.shutdown(socket.SHUT_RDWR)
            c.q.put(None)

    def _accept(self) -> None:
        while self._sock is not None:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            c = _Client(self, conn)
            with self._lock:
                self._clients.append(c)
            threading.Thread(target=c.writer, name="control-w", daemon=True).start()
            threading.Thread(target=c.reader, name="control-r", daemon=True).start()

    def gone(self, c: _Client) -> None:
        with self._lock:
            if c in self._clients:
                self._clients.remove(c)
        for port in list(c.paused):
            self.col.resume(port)

    def publish(self, rec: Record) -> None:
        """A record the collector made: to every client attached to its port."""
        port = rec.get("port")
        with self._lock:
            clients = [c for c in self._clients if port in c.ports]
        for c in clients:
            c.push({"rec": rec})

    # -- requests ------------------------------------------------------------------
    def handle(self, c: _Client, raw: bytes) -> None:
        try:
            req = json.loads(raw)
            if not isinstance(req, dict):
                raise ValueError
        except ValueError:
            c.push({"re": None, "ok": False, "error": "not a JSON object"})
            return
        n = req.get("n")
        try:
            ans = self._do(c, req)
        except ControlError as e:
            c.push({"re": n, "ok": False, "error": str(e)})
            return
        except Exception as e:  # a port error, a bad field: one line back, never a dead server
            from rumor_host.serialio import PortError

            msg = str(e) if isinstance(e, PortError) else f"{type(e).__name__}: {e}"
            c.push({"re": n, "ok": False, "error": msg})
            return
        c.push({"re": n, "ok": True, **ans})

    def _port(self, req: dict[str, Any]) -> str:
        p = req.get("port")
        if not isinstance(p, str):
            raise ControlError("no port given")
        mine = self.col.port_named(p)
        if mine is None:
            raise ControlError(f"{p}: not held by this collector (it holds {', '.join(self.col.ports)})")
        return mine

    def _do(self, c: _Client, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        col = self.col
        if op == "hello":
            return {"run": self.run, "ports": col.ports, "pid": os.getpid(),
                    "out": str(col.out_path) if col.out_path else None}
        port = self._port(req)
        if op == "attach":
            c.ports.add(port)
            return {"port": port, "connected": col.connected(port)}
        if op == "send":
            col.send(port, str(req.get("line", "")))
            return {"sent": True}
        if op == "write":
            col.write_raw(port, str(req.get("data", "")).encode("latin-1"))
            return {"sent": True}
        if op == "inject":
            text, hexp, prio = req.get("text"), req.get("hex"), req.get("priority", 0)
            if not isinstance(prio, int) or isinstance(prio, bool):
                raise ControlError("priority must be a number")
            r, nbytes = col.inject(port, text=text, hex_payload=hexp, priority=prio, via="collector")
            return {"req": r, "bytes": nbytes}
        if op == "pause":
            col.pause(port, str(req.get("why") or "a client"))
            c.paused.add(port)
            return {"paused": True}
        if op == "resume":
            c.paused.discard(port)
            col.resume(port)
            return {"resumed": True}
        raise ControlError(f"unknown op {op!r}")


def new_run_id() -> str:
    return secrets.token_hex(6)


# -- the client ---------------------------------------------------------------------------
class ControlClient:
    """One connection to a collector's control socket, attached to one port.
    Records arrive as the collector makes them; answers to requests are
    matched by number.  Not thread-safe: one user at a time."""

    def __init__(self, holder: Holder, port: str, timeout: float = 5.0):
        self.holder = holder
        self.timeout = timeout
        self._n = 0
        self._buf = b""
        self._recs: list[Record] = []
        self._answers: dict[int, dict[str, Any]] = {}
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(holder.socket)
        except OSError as e:
            s.close()
            raise ControlError(f"{port}: held by rumor logs (pid {holder.pid}) but its control "
                               f"socket does not answer: {e.strerror or e}") from None
        s.setblocking(False)
        self.sock = s
        a = self.request("attach", port=port)
        self.port = str(a["port"])
        self.connected = bool(a.get("connected"))

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def _pump(self, wait: float) -> tuple[bool, bool]:
        """Read what has arrived (waiting up to `wait` s for something):
        (the collector is still there, something came)."""
        import select

        r, _, _ = select.select([self.sock], [], [], max(0.0, wait))
        if not r:
            return True, False
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return True, False
        except OSError:
            return False, False
        if not data:
            return False, False
        *lines, self._buf = (self._buf + data).split(b"\n")
        for raw in lines:
            try:
                m = json.loads(raw)
            except ValueError:
                continue
            if "rec" in m:
                self._recs.append(m["rec"])
            elif isinstance(m.get("re"), int):
                self._answers[m["re"]] = m
        return True, True

    def records(self, wait: float = 0.0) -> list[Record]:
        """Records that arrived (waiting up to `wait` s when none has);
        ControlError when the collector went away."""
        alive, got = self._pump(0.0 if self._recs else wait)
        while alive and got:
            alive, got = self._pump(0.0)
        if not alive and not self._recs:
            raise ControlError(f"{self.holder.port}: the collector (pid {self.holder.pid}) went away")
        out, self._recs = self._recs, []
        return out

    def request(self, op: str, timeout: float | None = None, **kw: Any) -> dict[str, Any]:
        """Send one request; its answer's fields (ControlError if refused)."""
        import time

        self._n += 1
        n = self._n
        data = (json.dumps({"op": op, "n": n, **kw}, separators=(",", ":")) + "\n").encode()
        try:
            self.sock.setblocking(True)
            self.sock.sendall(data)
        except OSError as e:
            raise ControlError(f"{self.holder.port}: the collector went away "
                               f"({errno.errorcode.get(e.errno or 0, e.strerror)})") from None
        finally:
            with contextlib.suppress(OSError):
                self.sock.setblocking(False)
        end = time.monotonic() + (self.timeout if timeout is None else timeout)
        while n not in self._answers:
            left = end - time.monotonic()
            if left <= 0:
                raise ControlError(f"{self.holder.port}: the collector (pid {self.holder.pid}) "
                                   f"did not answer {op}")
            if not self._pump(left)[0]:
                raise ControlError(f"{self.holder.port}: the collector (pid {self.holder.pid}) went away")
        a = self._answers.pop(n)
        if not a.get("ok"):
            raise ControlError(str(a.get("error") or "refused"))
        return a


# -- virtual boards, so `rumor ports` and `--port auto` find them -----------------------------
def register_swarm(run_dir: str | os.PathLike[str], ports: list[str]) -> Path | None:
    """Note a running swarm's ports in <runtime dir>/swarms/<pid>-<id>.json;
    the file to remove at its end (None if it could not be written)."""
    try:
        d = runtime_dir() / "swarms"
        d.mkdir(mode=0o700, exist_ok=True)
        f = d / f"{os.getpid()}-{secrets.token_hex(3)}.json"
        f.write_text(json.dumps({"pid": os.getpid(), "dir": os.fspath(run_dir), "ports": ports}))
    except OSError:
        return None
    return f


def unregister_swarm(f: Path | None) -> None:
    if f is not None:
        with contextlib.suppress(OSError):
            f.unlink()


def virtual_ports() -> list[tuple[str, str]]:
    """(port, swarm dir) of every running swarm's boards whose port is there."""
    d = runtime_dir(create=False) / "swarms"
    out: list[tuple[str, str]] = []
    for f in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            s = json.loads(f.read_text())
            pid, ports, where = int(s["pid"]), list(s["ports"]), str(s["dir"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not _alive(pid):
            with contextlib.suppress(OSError):
                f.unlink()
            continue
        out += [(str(p), where) for p in ports if os.path.exists(p)]
    return out
