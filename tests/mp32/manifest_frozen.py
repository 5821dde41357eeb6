# ruff: noqa: F821
# The frozen 32-bit unix port (`make mp32`): asyncio plus the rumor package
# through the very manifest an ESP32 firmware build uses, without the ESP32
# port's own modules and without the LoRa drivers (micropython-lib is not
# part of the build; the tests use tests/firmware/fake_lora.py).
include("$(MPY_DIR)/extmod/asyncio")
include("../../firmware/manifest.py", port_manifest=False, lora=False)
