# A beacon: every node publishes "beacon <n>" every node.app.interval_ms
# milliseconds (board.json; default 5000), n counting from 1 at boot.
#
#     rumor swarm --app examples/apps/beacon.py --app-set interval_ms=2000
#     rumor deploy -p /dev/ttyUSB0 -b esp32 --app examples/apps/beacon.py
#
# What it hears from others it counts; node.stats() and the `deliver` events
# show the rest.

_count = 0  # beacons sent since boot
heard = 0  # messages from other nodes delivered here


def setup(node):
    interval = node.settings.get("interval_ms", 5000)

    def beat():
        global _count
        _count += 1
        node.publish("beacon %d" % _count)

    def got(msg):
        global heard
        heard += 1  # no allocation here: this runs on the receive path

    node.on_message(got)
    node.every(interval, beat)
