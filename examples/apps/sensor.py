# A sensor: every node.app.interval_ms (default 10000) the node reads its
# sensor and publishes the reading packed with struct, 8 bytes:
#
#     ">BBHi": version (1), source (0 fake, 1 internal temperature, 2 ADC),
#              sample number (16 bits, wraps), value (signed 32 bits)
#
# value is in milli-degrees Celsius for a temperature, millivolts for the
# ADC, arbitrary units for the fake source.  Sources:
# - on an ESP32 whose port has it, the internal temperature sensor
#   (esp32.mcu_temperature(), degrees C: S2/S3/C3/C6);
# - else, on an ESP32, machine.ADC on node.app.adc_pin (default 34);
# - elsewhere (the unix board of `rumor swarm`) a fake source, a slow
#   triangle wave offset by the node id, so the readings of different nodes
#   can be told apart: 20000 + 1000 * (id % 10), plus a triangle wave of 0..1000.
#
#     rumor swarm --app examples/apps/sensor.py --app-set interval_ms=1000
#
# A host decodes the payload of a `deliver` event (hex) with
# struct.unpack(">BBHi", bytes.fromhex(ev["payload"])); see decode() below.
import struct
import sys

FORMAT = ">BBHi"
VERSION = 1
SRC_FAKE = 0  # the source byte
SRC_TEMP = 1
SRC_ADC = 2


def decode(payload):
    """(version, source, sample, value) of a reading's payload."""
    return struct.unpack(FORMAT, payload)


def _source(node, platform=sys.platform):
    """(kind, read): read() returns the value as an int."""
    if platform == "esp32":
        try:
            import esp32

            t = esp32.mcu_temperature  # pyright: ignore[reportAttributeAccessIssue]  # S2/S3/C3/C6 only
            t()
            return SRC_TEMP, lambda: int(t() * 1000)
        except (ImportError, AttributeError, OSError):
            pass
        from machine import ADC, Pin

        adc = ADC(Pin(node.settings.get("adc_pin", 34)))
        adc.atten(ADC.ATTN_11DB)  # pyright: ignore[reportAttributeAccessIssue]
        return SRC_ADC, lambda: adc.read_uv() // 1000
    base = 20000 + 1000 * (node.id % 10)
    state = [0]

    def fake():
        state[0] += 1
        k = state[0] % 100
        return base + (k if k < 50 else 100 - k) * 20

    return SRC_FAKE, fake


def setup(node):
    kind, read = _source(node)
    buf = bytearray(struct.calcsize(FORMAT))  # one buffer, reused for every reading
    n = [0]

    def sample():
        n[0] = (n[0] + 1) & 0xFFFF
        struct.pack_into(FORMAT, buf, 0, VERSION, kind, n[0], read())
        node.publish(buf)

    node.every(node.settings.get("interval_ms", 10000), sample)
