"""`make bench-core`: the gossip core's speed and memory, printed and saved.

Runs bench/core_mp.py under the MicroPython unix port (from .mpy files made
by mpy-cross, as a board would load them) and under CPython, then a soak of
100 000 frames in a 96 KB heap (an ESP32 without PSRAM has about 100 KB).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rumor_host.paths import BENCH, FIRMWARE, micropython_env, tool

TARGETS = {
    "duplicate_frames_per_s": 200_000,
    "new_frames_per_s": 50_000,
    "medium_memory_bytes_max": 32 * 1024,
}


def compile_mpy(out: Path) -> None:
    mpy_cross = tool("mpy-cross")
    for src in sorted((FIRMWARE / "rumor").glob("*.py")):
        subprocess.run([mpy_cross, "-o", str(out / "rumor" / (src.stem + ".mpy")), str(src)], check=True)
    subprocess.run([mpy_cross, "-o", str(out / "core_mp.mpy"), str(BENCH / "core_mp.py")], check=True)


def run_mp(mpy: Path, heap: str, *args: str) -> dict:
    p = subprocess.run([tool("micropython"), "-X", f"heapsize={heap}", "-m", "core_mp", *args],
                       capture_output=True, text=True, env=micropython_env(mpy), cwd=mpy, timeout=600)
    if p.returncode != 0:
        raise SystemExit(f"micropython bench failed:\n{p.stdout}{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(BENCH / "core.json"), help="where to write the JSON")
    ap.add_argument("--soak-frames", type=int, default=100_000)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        mpy = Path(tmp)
        (mpy / "rumor").mkdir()
        compile_mpy(mpy)
        t0 = time.time()
        micro = run_mp(mpy, "4m", "speed")
        soak = run_mp(mpy, "96k", "soak", str(a.soak_frames))
        # (keyed: the hash path's code and its per-frame objects need more
        # room on this 64-bit port; 112 KB is about what an ESP32 has free)
        soak_key = run_mp(mpy, "112k", "soak-key", str(a.soak_frames))
    cpy = subprocess.run([sys.executable, str(BENCH / "core_mp.py"), "speed"], capture_output=True,
                         text=True, check=True, env=micropython_env() | {"PYTHONPATH": str(FIRMWARE)})
    cpython = json.loads(cpy.stdout.strip().splitlines()[-1])
    result = {
        "machine": {"platform": platform.platform(), "processor": platform.machine(),
                    "python": platform.python_version()},
        "micropython_unix": micro,
        "cpython": cpython,
        "soak_96k": soak,
        "soak_112k_with_key": soak_key,
        "targets": TARGETS,
        "seconds": round(time.time() - t0, 1),
    }
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")

    def row(name: str, value: object, target: str = "") -> None:
        print(f"  {name:<46} {value!s:>12}  {target}")

    print("gossip core benchmark (MicroPython unix port, from .mpy)")
    row("duplicate frames/s", micro["duplicate_frames_per_s"], ">= 200000")
    row("duplicate frames/s, heap locked", micro.get("duplicate_frames_per_s_heap_locked"))
    row("new-message frames/s", micro["new_frames_per_s"], ">= 50000")
    row("new-message frames/s, heap locked", micro.get("new_frames_per_s_heap_locked"))
    row("with a network key: duplicate frames/s", micro["authenticated_duplicate_frames_per_s"])
    row("with a network key: new-message frames/s", micro["authenticated_new_frames_per_s"])
    for name, b in cpython["memory_bytes"].items():
        row(f"memory_bytes() {name} (32-bit board)", b, "<= 32768" if name == "medium" else "")
    row("soak: frames in a 96 KB heap", soak["frames"], "no MemoryError")
    row("soak: heap in use before -> after (bytes)", f"{soak['heap_alloc_start']}->{soak['heap_alloc_end']}")
    row("soak: lowest free heap seen (bytes)", soak["heap_free_low"])
    row("soak with a key, 112 KB heap: heap in use before -> after",
        f"{soak_key['heap_alloc_start']}->{soak_key['heap_alloc_end']}")
    row("soak with a key: delivered / bad tags", f"{soak_key['delivered']}/{soak_key['bad_tag']}")
    print("under CPython (the simulator's engine)")
    row("duplicate frames/s", cpython["duplicate_frames_per_s"])
    row("new-message frames/s", cpython["new_frames_per_s"])
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
