"""`make bench-core`: the gossip core's speed and memory, printed and saved.

Speed: bench/core_mp.py under the MicroPython unix port from the wheel (from
.mpy files made by mpy-cross, as a board would load them) and under CPython,
then a soak of 100 000 frames in a 96 KB heap on that 64-bit port.

RAM, as an ESP32 would have it: on the 32-bit unix port built by `make mp32`
(4-byte pointers, as on the board), with the package as .mpy files
(build/mp32) and frozen into the binary (build/mp32-frozen), bench/ram_mp.py
measures the heap of an ESP-NOW node and of a LoRa node (on the fakes of
tests/firmware) at import, built and running; and the 100 000-frame soak is
bisected for the smallest heap (-X heapsize, 1 KB steps) it survives in.
Beside them: the ESP32's first heap (56 KB; MicroPython 1.28 grows it once,
on demand, to about 110 KB in all) and the goals.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rumor_host.paths import BENCH, FIRMWARE, ROOT, micropython_env, tool

TARGETS = {
    "duplicate_frames_per_s": 200_000,
    "new_frames_per_s": 50_000,
    "medium_memory_bytes_max": 32 * 1024,
}
ESP32_FIRST_HEAP = 56 * 1024  # ports/esp32 (MicroPython 1.28) without PSRAM
GOALS = {  # bytes: a running node, and the soak's smallest heap
    "mpy": {"running": 64 * 1024, "soak_heap": 64 * 1024},
    "frozen": {"running": 36 * 1024, "soak_heap": 40 * 1024},
}
MP32 = ROOT / "build" / "mp32" / "micropython"
MP32_FROZEN = ROOT / "build" / "mp32-frozen" / "micropython"
FW_TESTS = ROOT / "tests" / "firmware"  # the fake radios


def compile_mpy(out: Path, package: bool = True) -> None:
    mpy_cross = tool("mpy-cross")
    if package:
        (out / "rumor").mkdir(parents=True, exist_ok=True)
        for src in sorted((FIRMWARE / "rumor").glob("*.py")):
            subprocess.run([mpy_cross, "-o", str(out / "rumor" / (src.stem + ".mpy")), str(src)],
                           check=True)
    for name in ("core_mp", "ram_mp"):
        subprocess.run([mpy_cross, "-o", str(out / f"{name}.mpy"), str(BENCH / f"{name}.py")],
                       check=True)


def run_mp(mpy: Path, heap: str, *args: str, exe: str | None = None,
           check: bool = True) -> dict[str, Any] | None:
    """bench/core_mp.py (or args[0] = "ram_mp ...") under a unix port from mpy/;
    None if it failed and check is off."""
    module, rest = ("ram_mp", args[1:]) if args and args[0] == "ram" else ("core_mp", args)
    p = subprocess.run([exe or tool("micropython"), "-X", f"heapsize={heap}", "-m", module, *rest],
                       capture_output=True, text=True, env=micropython_env(mpy, FW_TESTS), cwd=mpy,
                       timeout=900, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        if not check:
            return None
        raise SystemExit(f"micropython bench failed ({exe or 'micropython'} {module} {' '.join(rest)}):\n"
                         f"{p.stdout}{p.stderr}")
    out = json.loads(p.stdout.strip().splitlines()[-1])
    if module == "core_mp" and rest and rest[0].startswith("soak") and not out.get("delivered"):
        # (a soak of frames the core refuses, say of an old wire version,
        # would measure nothing and look fine)
        raise SystemExit(f"micropython bench: the {rest[0]} delivered nothing: {out}")
    return out


def core_id() -> dict[str, Any]:
    """Which core was measured: its modules, a hash of their text, the commit."""
    files = sorted((FIRMWARE / "rumor").glob("*.py"))
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    try:
        git = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        git = ""
    return {"modules": [f.stem for f in files], "sha256": h.hexdigest()[:16], "git": git or None,
            "bytes_of_source": sum(f.stat().st_size for f in files)}


def min_heap(mpy: Path, exe: str, frames: int, lo: int = 16, hi: int = 256) -> tuple[int, dict[str, Any]]:
    """The smallest -X heapsize (KB) in which the soak of `frames` survives."""
    best = run_mp(mpy, f"{hi}k", "soak", str(frames), exe=exe, check=False)
    if best is None:
        raise SystemExit(f"the soak fails even in {hi} KB under {exe}")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        r = run_mp(mpy, f"{mid}k", "soak", str(frames), exe=exe, check=False)
        if r is None:
            lo = mid
        else:
            hi, best = mid, r
    return hi, best


def ram(frames: int, log: Any = print) -> dict[str, Any]:
    """RAM on the 32-bit port, .mpy and frozen: node stages and the soak's heap."""
    for exe in (MP32, MP32_FROZEN):
        if not exe.exists():
            raise SystemExit(f"no {exe.relative_to(ROOT)}: `make mp32` builds it")
    out: dict[str, Any] = {"core": core_id(), "esp32_first_heap_bytes": ESP32_FIRST_HEAP,
                           "goals_bytes": GOALS}
    with tempfile.TemporaryDirectory() as t1, tempfile.TemporaryDirectory() as t2:
        dirs: dict[str, tuple[Path, str]] = {"mpy": (Path(t1), str(MP32)),
                                             "frozen": (Path(t2), str(MP32_FROZEN))}
        compile_mpy(Path(t1))
        compile_mpy(Path(t2), package=False)  # the frozen port has the package in its image
        for how, (d, binary) in dirs.items():
            row: dict[str, Any] = {}
            for radio in ("espnow", "lora"):
                r = run_mp(d, "4m", "ram", radio, exe=binary)
                assert r is not None
                if r["frozen"] != (how == "frozen"):
                    raise SystemExit(f"{how}: rumor came from {r['module_file']}")
                row[radio] = r
            log(f"  {how}: bisecting the smallest heap for the {frames}-frame soak ...")
            heap_kb, soak = min_heap(d, binary, frames)
            row["soak_min_heapsize_kb"] = heap_kb
            row["soak"] = soak
            out[how] = row
    return out


def speed(soak_frames: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        mpy = Path(tmp)
        compile_mpy(mpy)
        t0 = time.time()
        micro = run_mp(mpy, "4m", "speed")
        # a soak that runs out of heap is a missed target, not a broken bench:
        # it is recorded with the smallest heap it needs (min_heap)
        soak = run_mp(mpy, "96k", "soak", str(soak_frames), check=False)
        if soak is None:
            need, _ = min_heap(mpy, tool("micropython"), soak_frames, lo=96, hi=256)
            soak = {"failed": "MemoryError", "frames": 0, "min_heapsize_kb": need}
        # (keyed: the hash path's code and its per-frame objects need more
        # room on this 64-bit port; 112 KB is about what an ESP32 has free)
        soak_key = run_mp(mpy, "112k", "soak-key", str(soak_frames), check=False)
        if soak_key is None:
            soak_key = {"failed": "MemoryError"}
    cpy = subprocess.run([sys.executable, str(BENCH / "core_mp.py"), "speed"], capture_output=True,
                         text=True, check=True, env=micropython_env() | {"PYTHONPATH": str(FIRMWARE)})
    return {
        "micropython_unix": micro,
        "cpython": json.loads(cpy.stdout.strip().splitlines()[-1]),
        "soak_96k": soak,
        "soak_112k_with_key": soak_key,
        "seconds": round(time.time() - t0, 1),
    }


def row(name: str, value: object, target: str = "") -> None:
    print(f"  {name:<50} {value!s:>14}  {target}")


def kb(n: int) -> str:
    return f"{n / 1024:.1f} KB"


def print_speed(r: dict[str, Any]) -> None:
    micro, cpython, soak, soak_key = (r["micropython_unix"], r["cpython"], r["soak_96k"],
                                      r["soak_112k_with_key"])
    print("gossip core benchmark (MicroPython unix port from the wheel, 64-bit, from .mpy)")
    row("duplicate frames/s", micro["duplicate_frames_per_s"], ">= 200000")
    row("duplicate frames/s, heap locked", micro.get("duplicate_frames_per_s_heap_locked"))
    row("new-message frames/s", micro["new_frames_per_s"], ">= 50000")
    row("new-message frames/s, heap locked", micro.get("new_frames_per_s_heap_locked"))
    row("with a network key: duplicate frames/s", micro["authenticated_duplicate_frames_per_s"])
    row("with a network key: new-message frames/s", micro["authenticated_new_frames_per_s"])
    for name, b in cpython["memory_bytes"].items():
        row(f"memory_bytes() {name} (32-bit board)", b, "<= 32768" if name == "medium" else "")
    if "failed" in soak:
        row("soak: frames in a 96 KB heap", f"{soak['failed']} (needs {soak['min_heapsize_kb']} KB)",
            "no MemoryError")
    else:
        row("soak: frames in a 96 KB heap", soak["frames"], "no MemoryError")
        row("soak: heap in use before -> after (bytes)", f"{soak['heap_alloc_start']}->{soak['heap_alloc_end']}")
        row("soak: lowest free heap seen (bytes)", soak["heap_free_low"])
    if "failed" in soak_key:
        row("soak with a key, 112 KB heap", soak_key["failed"], "no MemoryError")
    else:
        row("soak with a key, 112 KB heap: heap in use before -> after",
            f"{soak_key['heap_alloc_start']}->{soak_key['heap_alloc_end']}")
        row("soak with a key: delivered / bad tags", f"{soak_key['delivered']}/{soak_key['bad_tag']}")
    print("under CPython (the simulator's engine)")
    row("duplicate frames/s", cpython["duplicate_frames_per_s"])
    row("new-message frames/s", cpython["new_frames_per_s"])


def print_ram(r: dict[str, Any]) -> None:
    c = r["core"]
    print(f"RAM on the 32-bit unix port (MicroPython 1.28; core {c['git']}, "
          f"{len(c['modules'])} modules, sha256 {c['sha256']}); ESP32 first heap "
          f"{kb(r['esp32_first_heap_bytes'])}")
    for how in ("mpy", "frozen"):
        g = r["goals_bytes"][how]
        for radio in ("espnow", "lora"):
            x = r[how][radio]
            row(f"{how}, {radio} node ({x['preset']}): import / built / running",
                f"{kb(x['import'])} / {kb(x['built'])} / {kb(x['running'])}",
                f"running <= {kb(g['running'])}")
        row(f"{how}: smallest heap for the {r[how]['soak']['frames']}-frame soak",
            f"{r[how]['soak_min_heapsize_kb']} KB", f"<= {kb(g['soak_heap'])}")


def ram_markdown(r: dict[str, Any]) -> str:
    """The README's RAM table (KB), from result["ram_32bit"]."""
    def stages(x: dict[str, Any]) -> str:
        return " / ".join(f"{x[k] / 1024:.1f}" for k in ("import", "built", "running"))

    g = r["goals_bytes"]
    first = r["esp32_first_heap_bytes"] // 1024
    lines = ["| 32-bit build, KB | `.mpy` files | frozen | goal `.mpy` / frozen | ESP32 first heap |",
             "|---|---:|---:|---:|---:|"]
    for radio, name in (("espnow", "ESP-NOW node"), ("lora", "LoRa node")):
        preset = r["mpy"][radio]["preset"]
        lines.append(f"| {name} ({preset}): import / built / running | {stages(r['mpy'][radio])} | "
                     f"{stages(r['frozen'][radio])} | running <= {g['mpy']['running'] // 1024} / "
                     f"{g['frozen']['running'] // 1024} | {first} |")
    soak = f"{r['mpy']['soak']['frames']:,}".replace(",", " ")
    lines.append(f"| smallest heap for the {soak}-frame soak (medium) | "
                 f"{r['mpy']['soak_min_heapsize_kb']} | {r['frozen']['soak_min_heapsize_kb']} | "
                 f"<= {g['mpy']['soak_heap'] // 1024} / {g['frozen']['soak_heap'] // 1024} | {first} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(BENCH / "core.json"), help="where to write the JSON")
    ap.add_argument("--soak-frames", type=int, default=100_000)
    ap.add_argument("--only", choices=("all", "speed", "ram"), default="all",
                    help="run one half and keep the other's figures in --out as they are")
    a = ap.parse_args(argv)
    out = Path(a.out)
    result: dict[str, Any] = {}
    if a.only != "all" and out.exists():
        result = json.loads(out.read_text())
    result["machine"] = {"platform": platform.platform(), "processor": platform.machine(),
                         "python": platform.python_version()}
    if a.only in ("all", "speed"):
        result.update(speed(a.soak_frames))
        result["targets"] = TARGETS
        print_speed(result)
    if a.only in ("all", "ram"):
        print("RAM on the 32-bit port ...")
        result["ram_32bit"] = ram(a.soak_frames)
        print_ram(result["ram_32bit"])
        print(ram_markdown(result["ram_32bit"]))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
