# ruff: noqa: F821
# The 32-bit unix port's frozen modules (`make mp32`): asyncio only, from the
# MicroPython source itself (the port's default manifest pulls
# micropython-lib, which the firmware does not need).
include("$(MPY_DIR)/extmod/asyncio")
