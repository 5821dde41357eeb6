"""Build a small, valid ESP firmware image by hand, following esptool's image
format (esptool/bin_image.py): an 8-byte header (magic 0xE9, segment count,
flash mode, size/freq, entry), the 16-byte extended header with the chip id,
the segments (load address, length, data), a checksum byte (0xEF xor every
data byte) at the end of a 16-byte aligned block, and the SHA-256 appended."""

from __future__ import annotations

import hashlib
import struct

CHIP_ID = {"esp32": 0, "esp32c3": 5, "esp32s3": 9}


def build_image(chip: str = "esp32", *, magic: int = 0xE9) -> bytes:
    # DRAM and IRAM segments: no DROM, so esptool looks for no app descriptor.
    segments = ((0x3FFB0000, b"\x00" * 64), (0x40080000, bytes(range(128))))
    out = bytearray(struct.pack("<BBBBI", magic, len(segments), 2, 0x20, 0x40080000))
    out += struct.pack("<BBBBHBHHIB", 0xEE, 0, 0, 0, CHIP_ID[chip], 0, 0, 0xFFFF, 0, 1)
    chk = 0xEF
    for addr, data in segments:
        out += struct.pack("<II", addr, len(data)) + data
        for b in data:
            chk ^= b
    out += b"\x00" * (15 - len(out) % 16)
    out.append(chk)
    out += hashlib.sha256(out).digest()
    return bytes(out)
