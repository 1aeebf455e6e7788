"""fastquant's own deflate against zlib 9, libdeflate 12 and zopfli on the rows it writes.

For each photo at k=256 (default settings): the image data of the indexed PNG as written at `--speed 1-3`
(the reordered, filtered layout when `fastquant.png` keeps it, else the plain rows), deflated by zlib 9,
by fastquant's own encoder (in its pieces, as written), by libdeflate level 12 (the `deflate` package) and by
zopfli (15 iterations; the `zopfli` package), when installed: bench-only packages, fastquant never imports them.
Also the whole file's bytes and write time against `png_indexed(level=9)` (zlib, the default), in process.

    python bench/deflate_gap.py [images...]          # default: the Kodak photos
"""

from __future__ import annotations

import os
import sys
import time
import zlib
from pathlib import Path

import numpy as np

import fastquant
from fastquant import png

ROOT = Path(__file__).resolve().parent.parent


def _optional(name):
    try:
        return __import__(name)
    except ImportError:
        return None


def main(paths: list[str]) -> None:
    libdeflate = _optional("deflate")
    zopfli = _optional("zopfli.zlib")
    if not paths:
        paths = sorted(str(p) for p in (ROOT.parent / "shared/images/kodak").glob("*.png"))
    if not paths:
        sys.exit("no images: give their paths")
    print("| photo | layout | zlib 9 | own | libdeflate 12 | zopfli | own / libdeflate", end="")
    print(" | file / zlib-9 file | write time / zlib-9's |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    ratios = []
    for path in paths:
        q = fastquant.compress(path, 256)
        indices, palette = np.ascontiguousarray(q.indices), np.asarray(q.palette)
        raw = png._raw_rows(indices, 8)
        rows = png._smaller_layout(indices, palette, raw, None)[1]
        data = rows.reshape(-1)
        sizes = [len(zlib.compress(data.tobytes(), 9)), sum(map(len, png._strong_parts(data)))]
        sizes.append(len(libdeflate.zlib_compress(data.tobytes(), 12)) if libdeflate else None)
        sizes.append(len(zopfli.zlib.compress(data.tobytes(), numiterations=15)) if zopfli else None)
        times = {9: [], None: []}
        for _ in range(3):  # interleaved
            for level in times:
                t = time.perf_counter()
                out = png.png_indexed(indices, palette, level=level)
                times[level].append(time.perf_counter() - t)
                sizes.append(len(out))
        file_ratio = sizes[-1] / sizes[-2]
        time_ratio = np.median(times[None]) / np.median(times[9])
        own_ld = sizes[1] / sizes[2] if sizes[2] else float("nan")
        ratios.append((own_ld, file_ratio, time_ratio))
        cells = [str(s) if s else "-" for s in sizes[:4]]
        layout = "plain" if rows is raw else "filtered"
        row = [Path(path).stem, layout, *cells, f"{own_ld:.4f}", f"{file_ratio:.4f}", f"{time_ratio:.1f}x"]
        print("| " + " | ".join(row) + " |")
    med = np.median(np.array(ratios), axis=0)
    print(f"| median | | | | | | {med[0]:.4f} | {med[1]:.4f} | {med[2]:.1f}x |")
    print(f"\nload average {os.getloadavg()}")


if __name__ == "__main__":
    main(sys.argv[1:])
