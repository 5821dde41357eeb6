"""rumor bridge: one board's side of the mesh on an MQTT broker (docs/bridge.md).

    rumor bridge -p /dev/ttyUSB0 --mqtt mqtt://broker:1883 --topic rumor

Topics, for the node NODE (8 hex digits) on the port:
    <topic>/NODE/deliver   each message delivered at that board (JSON, QoS 1)
    <topic>/NODE/stats     its stats event, every --stats-s seconds (JSON, retained)
    <topic>/NODE/send      what is published here is published on the mesh by that
                           board: plain text, or {"payload": "...", "priority": 1}
                           ({"payload": "0a0b", "payload_hex": true} for bytes)
    <topic>/NODE/error     why a send was refused (JSON)

Two threads: paho's network loop (it reconnects to the broker by itself,
with a back-off of 0.5..5 s) and ours, which reads the board through the
host API (`rumor_host.Board`, so through a running `rumor logs` when one
holds the port) and reopens the port when it vanishes.  Every outgoing
message is QoS 1 and stays in paho's queue until the broker acknowledges
it: while the broker is away up to --buffer of them wait there (and are
sent again on reconnect); beyond that the newest are dropped and counted.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import queue
import select
import signal
import socket
import sys
import threading
import time
import urllib.parse
from typing import Any, Callable

import click

from rumor_host.board import Board, BoardError, hold

BUFFER = 1000  # messages kept while the broker is away
STATS_S = 10.0
RETRY_S = 1.0  # how often a vanished port is tried again


class BridgeError(Exception):
    pass


def parse_url(url: str) -> tuple[str, int, bool, str | None, str | None]:
    """(host, port, tls, user, password) of mqtt://[user[:pass]@]host[:port]
    (mqtts:// for TLS); BridgeError for anything else."""
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise BridgeError(f"--mqtt {url!r}: use mqtt://HOST[:PORT] (or mqtts:// for TLS)")
    tls = u.scheme in ("mqtts", "ssl")
    try:
        port = u.port or (8883 if tls else 1883)
    except ValueError:
        raise BridgeError(f"--mqtt {url!r}: the port is not a number") from None
    if not u.hostname:
        raise BridgeError(f"--mqtt {url!r}: no host")
    user = urllib.parse.unquote(u.username) if u.username else None
    pw = urllib.parse.unquote(u.password) if u.password else None
    return u.hostname, port, tls, user, pw


def parse_send(data: bytes) -> tuple[str | bytes, int]:
    """(payload, priority) of a message on a send topic: a JSON object with
    "payload" (and "priority", "payload_hex"), else the bytes as text (as
    bytes if they are not UTF-8).  ValueError saying what is wrong."""
    text: str | None
    try:
        text = data.decode()
    except UnicodeDecodeError:
        text = None
    if text is None:
        if not data:
            raise ValueError("empty message")
        return bytes(data), 0
    if not text.lstrip().startswith("{"):
        if not text:
            raise ValueError("empty message")
        return text, 0
    try:
        d = json.loads(text)
    except ValueError:
        return text, 0  # text that merely starts with a brace
    if not isinstance(d, dict) or not isinstance(d.get("payload"), str):
        raise ValueError('a JSON send needs "payload": a string')
    prio = d.get("priority", 0)
    if isinstance(prio, bool) or not isinstance(prio, int) or not 0 <= prio <= 3:
        raise ValueError("priority must be 0..3")
    if d.get("payload_hex"):
        try:
            return bytes.fromhex(d["payload"]), prio
        except ValueError:
            raise ValueError(f"payload is not hex: {d['payload'][:40]!r}") from None
    return d["payload"], prio


def deliver_json(ev: dict[str, Any], t: float | None) -> dict[str, Any]:
    """What goes to <topic>/NODE/deliver for a deliver event read at host time t."""
    out: dict[str, Any] = {k: ev.get(k) for k in ("origin", "seq", "id", "hops", "age_ms",
                                                  "priority", "len")}
    out["payload"] = ev.get("payload")
    out["payload_hex"] = bool(ev.get("payload_hex", False))
    out["rssi"] = ev.get("rssi")
    out["node"] = ev.get("node")
    out["t"] = t
    return out


def _no_delay(client: Any, userdata: Any, sock: Any) -> None:
    """Small MQTT packets go out at once: with Nagle's algorithm a PUBLISH
    after an unacknowledged one waits for the broker's delayed ACK (~40 ms)."""
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Bridge:
    """The gateway for one port.  start()/stop() run it in a thread (tests);
    run() runs it in the caller's until stop() or Ctrl-C."""

    def __init__(self, port: str, url: str, topic: str = "rumor", buffer: int = BUFFER,
                 stats_s: float = STATS_S, retry_s: float = RETRY_S, client_id: str | None = None,
                 log: Callable[[str], None] | None = None, board_timeout: float = 5.0):
        import paho.mqtt.client as mqtt

        self.host, self.mqtt_port, tls, user, pw = parse_url(url)
        self.port = port
        self.topic = topic.strip("/") or "rumor"
        if any(c in self.topic for c in "+#"):
            raise BridgeError(f"--topic {topic!r}: no + or # in a topic prefix")
        if buffer < 1:
            raise BridgeError("--buffer must be at least 1")
        self.stats_s = stats_s
        self.retry_s = retry_s
        self.board_timeout = board_timeout
        self.log = log or (lambda s: print(s, file=sys.stderr, flush=True))
        self.node: str | None = None
        self.counts = {"delivered": 0, "sent": 0, "acked": 0, "dropped": 0, "injected": 0,
                       "refused": 0, "stats": 0, "broker_connects": 0, "port_opens": 0}
        self.connected = threading.Event()
        self.listening = threading.Event()  # the broker confirmed our send subscription
        self._stop = threading.Event()
        self._sends: queue.Queue[tuple[str | bytes, int, float]] = queue.Queue(maxsize=buffer)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._port_said = ""  # the last port trouble reported (each cause once)
        self._wake_r = self._wake_w = -1  # run()'s pipe: a send wakes the board loop at once
        self.inject_ms: collections.deque[float] = collections.deque(maxlen=1000)
        cid = client_id or f"rumor-bridge-{socket.gethostname()}-{port.rsplit('/', 1)[-1]}"
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid[:64])
        if tls:
            c.tls_set()
        if user is not None:
            c.username_pw_set(user, pw)
        c.max_queued_messages_set(buffer)
        c.reconnect_delay_set(min_delay=1, max_delay=5)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_publish = self._on_publish
        c.on_subscribe = self._on_subscribe
        c.on_socket_open = _no_delay
        self.client = c
        self._mqtt = mqtt

    # -- MQTT side (paho's thread) --------------------------------------------------
    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counts[key] += n

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if rc.is_failure:
            self.log(f"bridge: broker {self.host}:{self.mqtt_port} refused us: {rc}")
            return
        self._count("broker_connects")
        self.connected.set()
        again = self.counts["broker_connects"] > 1
        self.log(f"bridge: broker {self.host}:{self.mqtt_port} {'back' if again else 'connected'}")
        if self.node is not None:
            client.subscribe(self.send_topic(self.node), qos=1)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if self.connected.is_set():
            self.log(f"bridge: broker {self.host}:{self.mqtt_port} lost ({rc}); reconnecting, "
                     f"up to {self.client.max_queued_messages} messages kept meanwhile")
        self.connected.clear()
        self.listening.clear()

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, rcs: Any, props: Any) -> None:
        if all(not rc.is_failure for rc in rcs):
            self.listening.set()
        else:
            self.log(f"bridge: the broker refused the subscription to {self.send_topic(self.node or '?')}")

    def _on_publish(self, client: Any, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        self._count("acked")

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        node = self.node
        if node is None or msg.topic != self.send_topic(node):
            return
        try:
            payload, prio = parse_send(bytes(msg.payload))
        except ValueError as e:
            self._refuse(str(e))
            return
        try:
            self._sends.put_nowait((payload, prio, time.time()))
        except queue.Full:
            self._refuse(f"{self._sends.maxsize} sends already wait for the board; dropped")
            return
        with contextlib.suppress(OSError):  # a full pipe is awake already
            os.write(self._wake_w, b"!")

    def _refuse(self, why: str) -> None:
        self._count("refused")
        self.log(f"bridge: send refused: {why}")
        if self.node is not None:
            self._publish(f"{self.topic}/{self.node}/error", {"error": why, "t": time.time()})

    # -- topics and publishing ----------------------------------------------------------
    def send_topic(self, node: str) -> str:
        return f"{self.topic}/{node}/send"

    def _publish(self, topic: str, obj: dict[str, Any], retain: bool = False) -> None:
        info = self.client.publish(topic, json.dumps(obj, separators=(",", ":")), qos=1,
                                   retain=retain)
        if info.rc == self._mqtt.MQTT_ERR_QUEUE_SIZE:
            self._count("dropped")
        else:
            self._count("sent")

    def pending(self) -> int:
        """Messages handed to paho that the broker has not acknowledged yet."""
        with self._lock:
            return self.counts["sent"] - self.counts["acked"]

    # -- board side (our thread) -------------------------------------------------------
    def _open(self) -> Board | None:
        b = Board(self.port, timeout=self.board_timeout)
        try:
            b.open()
            node = b.node_id
        except BoardError as e:
            b.close()
            self._wait_port(str(e))
            return None
        self._count("port_opens")
        self._set_node(node)
        self.log(f"bridge: {self.port}: node {node} ({b.via}); deliveries to "
                 f"{self.topic}/{node}/deliver, sends from {self.send_topic(node)}")
        self._port_said = ""
        return b

    def _set_node(self, node: str) -> None:
        """The board on the port is node: its send topic is the one we take."""
        old = self.node
        if node == old:
            return
        self.node = node
        if old is not None:
            self.log(f"bridge: {self.port} is node {node} now (was {old})")
            self.client.unsubscribe(self.send_topic(old))
        if self.connected.is_set():
            self.client.subscribe(self.send_topic(node), qos=1)

    def _wait_port(self, why: str) -> None:
        if why != self._port_said:  # once per cause, not every retry
            self.log(f"bridge: {why}; trying again every {self.retry_s:g} s")
            self._port_said = why
        self._stop.wait(self.retry_s)

    def _note(self, note: str, why: Any) -> bool:
        """A note of the collector that holds the port; True while it is away."""
        if note in ("disconnected", "gone", "waiting"):
            self.log(f"bridge: {self.port}: port away ({why or note}); waiting for it")
            return True
        if note in ("connected", "reconnected"):
            self._count("port_opens")
            self.log(f"bridge: {self.port}: port back")
        return False

    def _serve(self, b: Board) -> None:
        """Until stop() or the board cannot be reached (BoardError): events
        out, sends in, stats."""
        next_stats = time.monotonic()
        fd = b.fileno()  # readable when the board (or its collector) has something for us
        away = False
        while not self._stop.is_set():
            # wait for the board's output or a send (the wake pipe), whichever first
            wait = next_stats - time.monotonic() if self.stats_s > 0 else 0.5
            with contextlib.suppress(OSError, ValueError):
                select.select([fd, self._wake_r], [], [], min(max(wait, 0.0), 0.5))
            with contextlib.suppress(OSError):
                os.read(self._wake_r, 4096)
            for r in b.records(timeout=0.001):
                ev = r.get("ev")
                if isinstance(ev, dict):
                    self._event(ev, r.get("t"))
                elif isinstance(r.get("collector"), str):
                    away = self._note(r["collector"], r.get("why"))
            if away:
                continue  # sends wait (up to --buffer) for the port to come back
            self._inject(b)
            if self.stats_s > 0 and time.monotonic() >= next_stats:
                next_stats = time.monotonic() + self.stats_s
                self._event(b.stats(), time.time())

    def _event(self, ev: dict[str, Any], t: float | None) -> None:
        node = ev.get("node") or self.node
        kind = ev.get("ev")
        if isinstance(node, str) and node != self.node and kind != "error":
            self._set_node(node)  # another board was plugged in
        if kind == "deliver":
            self._count("delivered")
            self._publish(f"{self.topic}/{node}/deliver", deliver_json(ev, t))
        elif kind == "stats":
            self._count("stats")
            d = {k: v for k, v in ev.items() if k != "ev"}
            with self._lock:
                d["bridge"] = dict(self.counts, pending=self.counts["sent"] - self.counts["acked"],
                                   broker=self.connected.is_set())
            d["t"] = t
            self._publish(f"{self.topic}/{node}/stats", d, retain=True)

    def _inject(self, b: Board) -> None:
        while True:
            try:
                payload, prio, t0 = self._sends.get_nowait()
            except queue.Empty:
                return
            try:
                b.publish(payload, prio)
            except BoardError as e:
                if "refused" not in str(e):
                    raise  # the port went: reopened, and this send is lost (logged)
                self._refuse(str(e))
                continue
            self._count("injected")
            self.inject_ms.append((time.time() - t0) * 1000)  # MQTT arrival -> the node's publish

    # -- running -----------------------------------------------------------------------
    def _session(self) -> None:
        b = self._open()
        if b is not None:
            try:
                self._serve(b)
            finally:
                b.close()

    def run(self) -> None:
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.client.connect_async(self.host, self.mqtt_port, keepalive=15)
        self.client.loop_start()
        try:
            while not self._stop.is_set():
                try:
                    # a port no collector holds yet is held by one of our own while
                    # we run: `rumor inject/stats` reach the board meanwhile, and a
                    # board unplugged and back is read again
                    with hold([self.port], warn=lambda m: self.log(f"bridge: {m}")):
                        self._session()
                except BoardError as e:
                    self._wait_port(str(e))
        finally:
            self.connected.clear()  # what follows is no loss to report
            self.client.disconnect()
            self.client.loop_stop()
            r, w = self._wake_r, self._wake_w
            self._wake_r = self._wake_w = -1
            for fd in (r, w):
                with contextlib.suppress(OSError):
                    os.close(fd)

    def start(self) -> Bridge:
        self._thread = threading.Thread(target=self.run, name=f"bridge-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> Bridge:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def summary(self) -> str:
        with self._lock:
            c = dict(self.counts)
        return (f"bridge: {c['delivered']} deliveries, {c['acked']} messages acknowledged by the "
                f"broker, {c['dropped']} dropped (buffer full), {c['injected']} sends injected, "
                f"{c['refused']} refused, {c['broker_connects']} broker connections")


@click.command("bridge")
@click.option("--port", "-p", required=True,
              help="the board's serial port (or a swarm pty; `auto`: the one board plugged in)")
@click.option("--mqtt", "url", required=True, metavar="URL",
              help="the broker: mqtt://[user:password@]HOST[:1883] (mqtts:// for TLS)")
@click.option("--topic", default="rumor", show_default=True,
              help="topic prefix: <topic>/<node>/deliver, .../stats, .../send")
@click.option("--buffer", default=BUFFER, show_default=True, type=click.IntRange(1, 1_000_000),
              help="messages kept while the broker is away (then the newest are dropped, counted)")
@click.option("--stats-s", default=STATS_S, show_default=True, type=click.FloatRange(0),
              help="publish the board's stats every so many seconds (0: only the node's own)")
@click.option("--client-id", default=None, help="MQTT client id (default: rumor-bridge-<host>-<port>)")
def bridge_cmd(port: str, url: str, topic: str, buffer: int, stats_s: float,
               client_id: str | None) -> None:
    """Gateway between the board at PORT and an MQTT broker: each delivery
    to <topic>/<node>/deliver, stats to <topic>/<node>/stats, and what is
    published to <topic>/<node>/send goes onto the mesh.  Reconnects to the
    broker and to the port by itself; Ctrl-C stops it (docs/bridge.md)."""
    from rumor_host.ports import resolve_port

    port = resolve_port(port)
    try:
        br = Bridge(port, url, topic, buffer, stats_s, client_id=client_id,
                    log=lambda s: click.echo(s, err=True))
    except BridgeError as e:
        raise click.ClickException(str(e)) from None
    old = {sig: signal.signal(sig, lambda *_: br.stop()) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        br.run()
    except KeyboardInterrupt:
        pass
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
        click.echo(br.summary(), err=True)
