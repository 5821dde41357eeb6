# Console: the node's side of the console protocol (docs/console.md).
#
# Out: one line per event on stdout, a fixed prefix then a JSON object, so a
# program can pick the lines out of REPL noise and a person can still read
# them:
#     @rumor {"ev":"deliver","node":"0000000a","origin":"00000003",...}
# In: one command per line on stdin, "!" then a word then arguments:
#     !inject {"text":"hi","priority":1}     !inject hello     !stats
#
# The board's REPL serial carries both.  Ctrl-C (0x03) interrupts the node,
# as the REPL expects: on a board the UART driver turns it into
# KeyboardInterrupt before we read it; on the unix port (a raw pty) the byte
# reaches feed(), which raises KeyboardInterrupt itself, so `mpremote
# connect <pty> resume ...` gets the REPL on a virtual board too.
import json
import sys

PREFIX = "@rumor "
# The console protocol's version, in the boot and info events ("v"): raised
# when an event loses or changes a field, or a command changes its answer
# (new events, fields and commands keep it; docs/console.md has the history).
VERSION = 2
LEVELS = ("error", "warn", "info", "debug")
ERROR = 0
WARN = 1
INFO = 2
DEBUG = 3
LINE_MAX = 1024  # bytes: a longer command line is dropped (with an error event)
_MAX_LINE = LINE_MAX


def level_of(name):
    """Level number of a name ("info") or a digit string; ValueError if bad."""
    if name in LEVELS:
        return LEVELS.index(name)
    if len(name) == 1 and "0" <= name <= "3":
        return int(name)
    raise ValueError("unknown level %r (use %s)" % (name, "/".join(LEVELS)))


def _value(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    return json.dumps(v)


PAYLOAD_SHOW = 384  # payload bytes a deliver event shows: its line stays within about 1 KB


def show_payload(b, limit=PAYLOAD_SHOW):
    """(text, is_hex, cut) of a payload for an event: the text itself when it
    is printable UTF-8, else its hex; at most limit bytes of it."""
    cut = len(b) > limit
    if cut:
        k = limit
        while k > limit - 3 and 0x80 <= b[k] < 0xC0:
            k -= 1  # not through a UTF-8 character
        b = b[:k]
    for x in b:
        if x < 32 or x == 127:
            break
    else:
        try:
            return b.decode(), False, cut
        except UnicodeError:
            pass
    import binascii

    return binascii.hexlify(b).decode(), True, cut


def format_event(ev, node_hex, t, fields):
    """One event line (no newline): keys in a fixed order, ev/node first, t last."""
    parts = [PREFIX, '{"ev":"', ev, '","node":"', node_hex, '"']
    for i in range(0, len(fields), 2):
        parts.append(',"')
        parts.append(fields[i])
        parts.append('":')
        parts.append(_value(fields[i + 1]))
    parts.append(',"t":')
    parts.append(str(t))
    parts.append("}")
    return "".join(parts)


def parse_event(line):
    """The dict of an event line, or None if the line is not one (host side
    and tests; the node never calls it)."""
    i = line.find(PREFIX)
    if i < 0:
        return None
    try:
        d = json.loads(line[i + len(PREFIX):])
    except ValueError:
        return None
    return d if isinstance(d, dict) and "ev" in d else None


def parse_command(line):
    """(name, arg) of a command line "!name arg", or None if it is not one."""
    line = line.strip()
    if not line.startswith("!"):
        return None
    sp = line.find(" ")
    if sp < 0:
        return line[1:], ""
    return line[1:sp], line[sp + 1:].strip()


def _unhex(s):
    s = s.replace(" ", "")
    if len(s) % 2:
        raise ValueError("hex payload has an odd number of digits")
    out = bytearray(len(s) // 2)
    for i in range(len(out)):
        try:
            out[i] = int(s[2 * i:2 * i + 2], 16)
        except ValueError:
            raise ValueError("hex payload has a non-hex digit near %r" % s[2 * i:2 * i + 2])
    return bytes(out)


def parse_inject(arg, max_payload=None):
    """(payload bytes, priority, req) of an inject argument:
        {"text": "hi", "priority": 1, "req": 7}   or   {"hex": "0a0b"}
    or plain text.  ValueError with a message a person can act on."""
    prio = 0
    req = None
    if arg.startswith("{"):
        try:
            d = json.loads(arg)
        except ValueError:
            raise ValueError("inject argument is not valid JSON")
        if not isinstance(d, dict):
            raise ValueError("inject argument must be a JSON object")
        if "text" in d and "hex" in d:
            raise ValueError("give text or hex, not both")
        if "text" in d:
            if not isinstance(d["text"], str):
                raise ValueError("text must be a string")
            payload = d["text"].encode()
        elif "hex" in d:
            if not isinstance(d["hex"], str):
                raise ValueError("hex must be a string")
            payload = _unhex(d["hex"])
        else:
            raise ValueError("inject needs text or hex")
        p = d.get("priority", 0)
        if not isinstance(p, int) or isinstance(p, bool) or not 0 <= p <= 3:
            raise ValueError("priority must be 0..3")
        prio = p
        req = d.get("req")
    else:
        payload = arg.encode()
    if not payload:
        raise ValueError("empty payload")
    if max_payload is not None and len(payload) > max_payload:
        raise ValueError("payload of %d bytes exceeds max_payload=%d" % (len(payload), max_payload))
    return payload, prio, req


class Console:
    """Events out (emit), command lines in (feed / run).  commands maps a
    command name to fn(arg) called for "!name arg"; a ValueError it raises
    becomes an error event naming the command."""

    def __init__(self, node_id, clock, write=None, level=INFO):
        self.node_hex = "%08x" % node_id
        self.clock = clock
        self.write = write or _stdout_write
        self.level = level
        self.commands = {}
        self._buf = bytearray(_MAX_LINE)
        self._n = 0
        self._overflow = False
        self.lines_out = 0
        self.lines_in = 0

    def enabled(self, level):
        return level <= self.level

    def emit(self, ev, *fields, level=INFO):
        """Print one event if level is enabled; fields are key, value pairs."""
        if level > self.level:
            return
        self.write(format_event(ev, self.node_hex, self.clock(), fields) + "\n")
        self.lines_out += 1

    def error(self, cmd, msg):
        self.emit("error", "cmd", cmd, "msg", msg, level=ERROR)

    # -- input ----------------------------------------------------------------
    def feed(self, data):
        """Bytes from the serial line.  Runs each complete command line;
        raises KeyboardInterrupt on Ctrl-C."""
        for b in data:
            if b == 3:
                self._n = 0
                raise KeyboardInterrupt
            if b == 10 or b == 13:
                if self._overflow:
                    self._overflow = False
                    self.error("?", "command line longer than %d bytes" % _MAX_LINE)
                elif self._n:
                    line = bytes(self._buf[:self._n])
                    self._n = 0
                    self.handle(line)
                self._n = 0
            elif self._n < _MAX_LINE:
                self._buf[self._n] = b
                self._n += 1
            else:
                self._overflow = True

    def handle(self, raw):
        self.lines_in += 1
        try:
            line = raw.decode()
        except UnicodeError:
            self.error("?", "command line is not UTF-8")
            return
        cmd = parse_command(line)
        if cmd is None:
            return  # not for us (REPL noise, an echo)
        name, arg = cmd
        fn = self.commands.get(name)
        if fn is None:
            self.error(name, "unknown command (known: %s)" % " ".join(sorted(self.commands)))
            return
        try:
            fn(arg)
        except ValueError as e:
            self.error(name, str(e.args[0]) if e.args else "bad argument")

    async def run(self):
        """Forever: read stdin, feed it."""
        import asyncio

        stream = getattr(sys.stdin, "buffer", sys.stdin)
        reader = asyncio.StreamReader(stream)
        while True:
            # read(1): a blocking stream's read(n) waits for all n bytes.
            b = await reader.read(1)
            if not b:
                await asyncio.sleep_ms(100)  # stdin closed: nothing more will come
                continue
            self.feed(b)


def _stdout_write(s):
    sys.stdout.write(s)
