# ruff: noqa: F821
# pyright: reportUndefinedVariable=false
# What to freeze into your own ESP32 firmware (docs/firmware.md), e.g. from
# MicroPython's ports/esp32:
#     make BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/rumor/firmware/manifest.py
# The rumor package then runs from flash, not from the heap, and `rumor
# deploy` copies only main.py and board.json.  This file is a MicroPython
# manifest (tools/manifestfile.py): include/package/require are its verbs.
#
# Options (for include("…/manifest.py", name=value) from another manifest):
#   port_manifest  the port's own board manifest too (asyncio, aioespnow,
#                  network tools): True, as the stock firmware has them
#   lora           micropython-lib's LoRa drivers, for SX127x/SX126x boards
#                  (what `rumor deploy` would otherwise mip-install): True
options.defaults(port_manifest=True, lora=True)

if options.port_manifest:
    include("$(PORT_DIR)/boards/manifest.py")

# firmware/rumor, as rumor/*.py (main.py stays on the board's filesystem:
# it is the file a user edits)
package("rumor")

if options.lora:
    require("lora-sx127x")
    require("lora-sx126x")
    require("lora-async")
