"""Huge images: whole-process time and peak memory of fastquant against pngquant.

Two kinds of image that once took fastquant far more than pngquant are
generated (never committed) into a scratch folder:

- ``zeros``: 13376 x 13376 RGB (179 MP, just under the default --max-pixels),
  every pixel black: the decoded image is large, the colour table tiny;
- ``unique``: 12000 x 12000 RGBA (144 MP), every pixel a different colour (the
  pixel index through a bijection of 32-bit words): the worst case for a
  colour table.

Each tool runs as a whole process under ``/usr/bin/time``: wall time and
maximum resident set size.  fastquant runs as ``python -m fastquant IN -o
OUT -k 256`` (its defaults, SSIM included); pngquant as ``pngquant --nofs
256``.  Ratios are fastquant / pngquant.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

KINDS = {"zeros": (13376, 13376, 2), "unique": (12000, 12000, 6)}  # width, height, PNG colour type


def _chunk(tag: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))


def generate(kind: str, path: Path, scale: float = 1.0) -> Path:
    """Write the ``kind`` image as a PNG, streaming rows (little memory)."""
    w, h, ctype = KINDS[kind]
    w, h = max(16, int(w * scale)), max(16, int(h * scale))
    channels = 3 if ctype == 2 else 4
    comp = zlib.compressobj(1 if kind == "unique" else 6)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, ctype, 0, 0, 0)))
        band = 256
        for y0 in range(0, h, band):
            rows = min(band, h - y0)
            raw = np.zeros((rows, 1 + w * channels), np.uint8)
            if kind == "unique":
                i = (np.arange(y0 * w, (y0 + rows) * w, dtype=np.uint64) * np.uint64(2654435761)) & np.uint64(
                    0xFFFFFFFF
                )
                raw[:, 1:] = i.astype(">u4").view(np.uint8).reshape(rows, w * 4)
            data = comp.compress(raw.tobytes())
            if data:
                f.write(_chunk(b"IDAT", data))
        f.write(_chunk(b"IDAT", comp.flush()) + _chunk(b"IEND", b""))
    return path


#: A tool still running after this many seconds is stopped and reported as such.
TIME_LIMIT = 120


def _timed(argv: list[str], env=None) -> tuple[float, float, int, str]:
    """(seconds, peak RSS in MB, exit code, last stderr line) of a whole process."""
    try:
        r = subprocess.run(
            ["/usr/bin/time", "-f", "TIME %e %M", *argv], capture_output=True, text=True, env=env, timeout=TIME_LIMIT
        )
    except subprocess.TimeoutExpired:
        return float(TIME_LIMIT), float("nan"), -9, f"stopped after {TIME_LIMIT} s"
    lines = r.stderr.strip().splitlines()
    stats = [ln for ln in lines if ln.startswith("TIME ")][-1].split()
    other = [ln for ln in lines if not ln.startswith("TIME ")]
    return float(stats[1]), int(stats[2]) / 1024, r.returncode, (other[-1] if other else "")


def _pngquant3() -> str | None:
    exe = Path(sys.executable).with_name("pngquant")
    return str(exe) if exe.exists() else None


def tools() -> dict[str, list[str]]:
    """The command (less its input and output) of every installed tool."""
    found = {"fastquant": [sys.executable, "-m", "fastquant", "-k", "256", "-f", "-q"]}
    if shutil.which("pngquant") and "/usr/bin/pngquant" != (_pngquant3() or ""):
        found["pngquant 2.17"] = (
            ["/usr/bin/pngquant", "--nofs", "-f", "256"]
            if Path("/usr/bin/pngquant").exists()
            else ["pngquant", "--nofs", "-f", "256"]
        )
    if _pngquant3():
        found["pngquant 3"] = [_pngquant3(), "--nofs", "-f", "256"]
    return found


def _argv(name: str, cmd: list[str], src: Path, out: Path) -> list[str]:
    if name == "fastquant":
        return [*cmd, str(src), "-o", str(out)]
    return [*cmd, "--output", str(out), str(src)]


def huge(scratch: Path | None = None, repeat: int = 1, scale: float = 1.0) -> str:
    """Generate the huge images, run every tool on each; the Markdown table."""
    own = scratch is None
    folder = Path(tempfile.mkdtemp(prefix="fqhuge-")) if own else scratch
    folder.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    rows = []
    try:
        # A warm cache first, so that no run below includes Numba compilation: both kinds, large
        # enough (over 4.2 MP) to take the strip path the huge images take.
        for kind in KINDS:
            small = generate(kind, folder / f"warm-{kind}.png", scale=0.2)
            subprocess.run(
                [sys.executable, "-m", "fastquant", str(small), "-o", str(folder / "warm-out.png"), "-f", "-q"],
                check=False,
                env=env,
            )
        for kind in KINDS:
            src = folder / f"{kind}.png"
            if not src.exists():
                print(f"  generating {src} ...", file=sys.stderr, flush=True)
                generate(kind, src, scale)
            for name, cmd in tools().items():
                out = folder / f"{kind}-{name.replace(' ', '')}.png"
                best = None
                for _ in range(repeat):
                    print(f"  {kind} {name} ...", file=sys.stderr, end=" ", flush=True)
                    t, mb, code, last = _timed(_argv(name, cmd, src, out), env)
                    print(f"{t:.1f} s, {mb:.0f} MB, exit {code}", file=sys.stderr, flush=True)
                    if best is None or t < best[0]:
                        best = (t, mb, code, last)
                rows.append((kind, name, *best, out.stat().st_size if out.exists() else None))
                if out.exists():
                    out.unlink()
    finally:
        if own:
            shutil.rmtree(folder, ignore_errors=True)
    return _table(rows, repeat, scale)


def _table(rows, repeat: int, scale: float) -> str:
    ref = {}
    for kind, name, t, mb, code, _last, _size in rows:
        if name.startswith("pngquant") and code in (0, -9):
            ref.setdefault(kind, []).append((name, t, mb))
    lines = [
        "| image | tool | seconds | peak MB | exit | output bytes | time / pngquant | memory / pngquant |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    for kind, name, t, mb, code, _last, size in rows:
        ratios_t = ratios_m = ""
        if name == "fastquant":
            ratios_t = ", ".join(f"{'<' if rm != rm else ''}{t / rt:.2f}x ({rn})" for rn, rt, rm in ref.get(kind, []))
            ratios_m = ", ".join(f"{mb / rm:.2f}x ({rn})" for rn, rt, rm in ref.get(kind, []) if rm == rm)
        shown_t = f"> {t:.0f} (stopped)" if code == -9 else f"{t:.1f}"
        shown_mb = "-" if mb != mb else f"{mb:.0f}"
        lines.append(
            f"| {kind} | {name} | {shown_t} | {shown_mb} | {code} | {size if size else '-'} | {ratios_t} | {ratios_m} |"
        )
    w0, h0, _ = KINDS["zeros"]
    w1, h1, _ = KINDS["unique"]
    return (
        "## Huge images (whole process)\n\n"
        f"Generated: zeros = {int(w0 * scale)}x{int(h0 * scale)} RGB, all black; unique = "
        f"{int(w1 * scale)}x{int(h1 * scale)} RGBA, every pixel a different colour. "
        f"Best of {repeat} run(s) per tool; peak = maximum resident set size (`/usr/bin/time`); a tool "
        f"still running after {TIME_LIMIT} s is stopped. "
        "fastquant: `python -m fastquant IN -o OUT -k 256` (cached kernels); pngquant: `--nofs 256`.\n\n"
        + "\n".join(lines)
        + "\n"
    )


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scratch", type=Path, help="keep the generated images in this folder")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--scale", type=float, default=1.0, help="side scale of the generated images (quick runs)")
    a = ap.parse_args()
    print(huge(a.scratch, a.repeat, a.scale))
