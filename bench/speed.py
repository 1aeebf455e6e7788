"""--speed 1..11 (`python bench/bench.py --speed`): time and PSNR of every level on the same photos.

Each level runs compress(path, k, speed=N) + encode(".png") in-process and warm (one untimed run of every
level first, so that Numba compilation is excluded). The levels are measured interleaved: each round runs
every image at every level once, so that a busy machine slows all levels alike; the time of a level on an
image is the median of its rounds. PSNR is fastquant's own (Stats.psnr, of the indexed image written).
"""

from __future__ import annotations

import time
from pathlib import Path

from common import median

LEVELS = range(1, 12)


def speed(images: list[Path], k: int, repeat: int) -> str:
    """The markdown section: one row per level, medians over the images, ratios to level 4."""
    from fastquant import compress
    from fastquant.fit import SPEEDS

    def run(path, level):
        t = time.perf_counter()
        q = compress(path, k, speed=level)
        q.encode(".png")
        return time.perf_counter() - t, q.stats.psnr, q.stats.iterations

    for path in images:  # warm-up: every kernel of every level compiled and cached
        for level in LEVELS:
            run(path, level)
    seconds = {(p, lv): [] for p in images for lv in LEVELS}
    psnr, iters = {}, {}
    for _ in range(repeat):
        for path in images:
            for level in LEVELS:
                s, db, it = run(path, level)
                seconds[path, level].append(s)
                psnr[path, level], iters[path, level] = db, it
    per = {key: median(v) for key, v in seconds.items()}
    lines = [
        f"{len(images)} photos at k={k}, no dithering; median over the photos of each photo's median of "
        f"{repeat} interleaved rounds (compress + encode, warm, in-process). Ratios are per photo, then the "
        "median. The machine was shared with other work: compare the ratios, not the seconds. "
        "The level sets the palette fit and, at 10 and 11, the PNG encoder (zlib instead of fastquant's "
        "own deflate, as pngquant writes faster at those speeds); reading, counting and mapping do not change.",
        "",
        "| speed | max_iter | tol | swap rounds | colours fitted | seconds | time / speed 4 | PSNR dB | "
        "PSNR - speed 4 | k-means updates |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for level in LEVELS:
        max_iter, tol, swaps, fit_colors = SPEEDS[level]
        t = median([per[p, level] for p in images])
        ratio = median([per[p, level] / per[p, 4] for p in images])
        db = median([psnr[p, level] for p in images])
        gain = median([psnr[p, level] - psnr[p, 4] for p in images])
        it = median([iters[p, level] for p in images])
        fitted = "all (2^17 cells)" if fit_colors is None else f"2^{fit_colors.bit_length() - 1} cells"
        lines.append(
            f"| {level}{' (default)' if level == 4 else ''} | {max_iter} | {tol:g} | {swaps} | {fitted} | "
            f"{t:.3f} | {ratio:.2f} | {db:.2f} | {gain:+.3f} | {it:g} |"
        )
    return "\n".join(lines) + "\n"
