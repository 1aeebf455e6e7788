"""Worker process for `bench.py --scale`: time fastquant.compress on in-memory arrays and measure its peak memory.

Started by extras.scale() in a fresh process with MALLOC_MMAP_THRESHOLD_ fixed, so large freed buffers go back to
the OS at once and the resident size before each measurement is not inflated by earlier cases.
Reads a JSON list of cases on stdin: {"image": path, "megapixels": float | null, "k": int, "repeat": int};
prints one JSON object per case on stdout.

Per case: decode with Pillow (RGB), optionally resize with BICUBIC to `megapixels` (aspect kept), one untimed
warm-up compress() on the full array (Numba compilation and first-touch costs excluded), then:
- rss_peak_mb: peak resident memory above the baseline. The baseline is VmRSS after decode + warm-up (the decoded
  image is already resident), VmHWM is reset through /proc/self/clear_refs ("5"), one compress() runs, and the
  peak is VmHWM - baseline. It sees every allocation: numpy, Numba NRT arrays, thread stacks.
- traced_peak_mb: tracemalloc peak during a separate, untimed compress(): numpy and Python allocations only
  (arrays allocated inside Numba kernels are invisible to it).
- seconds: median over `repeat` timed compress() calls (the memory-measured call is the first of them).
"""

from __future__ import annotations

import gc
import json
import re
import statistics
import sys
import time
import tracemalloc

import numpy as np
from PIL import Image


def _status(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            m = re.search(rf"^{key}:\s+(\d+) kB", f.read(), re.M)
        return int(m.group(1)) * 1024 if m else None
    except OSError:
        return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


_sources: dict = {}


def build(path: str, megapixels: float | None) -> np.ndarray:
    if path not in _sources:
        _sources.clear()
        with Image.open(path) as im:
            _sources[path] = im.convert("RGB")
    im = _sources[path]
    if megapixels:
        s = (megapixels * 1e6 / (im.width * im.height)) ** 0.5
        im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.Resampling.BICUBIC)
    return np.array(im)


def measure(case: dict) -> dict:
    from fastquant import compress

    arr = build(case["image"], case["megapixels"])
    k = case["k"]
    compress(arr, k, seed=0)  # warm-up
    gc.collect()
    baseline = _status("VmRSS")
    rss_peak = None
    if baseline is not None and _reset_peak():
        t0 = time.perf_counter()
        q = compress(arr, k, seed=0)
        first = time.perf_counter() - t0
        rss_peak = _status("VmHWM") - baseline
    else:
        t0 = time.perf_counter()
        q = compress(arr, k, seed=0)
        first = time.perf_counter() - t0
    times, stage_runs = [first], [dict(q.stats.stage_seconds)]
    iterations = getattr(q.stats, "iterations", None)
    unique = getattr(q.stats, "unique_colors", None)  # cost follows this more than the pixel count
    del q
    for _ in range(case["repeat"] - 1):
        t0 = time.perf_counter()
        q = compress(arr, k, seed=0)
        times.append(time.perf_counter() - t0)
        stage_runs.append(dict(q.stats.stage_seconds))
        del q
    gc.collect()
    tracemalloc.start()
    q = compress(arr, k, seed=0)
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del q
    names = list(dict.fromkeys(n for s in stage_runs for n in s))
    return {
        **case,
        "width": arr.shape[1],
        "height": arr.shape[0],
        "input_mb": arr.nbytes / 1e6,
        "seconds": statistics.median(times),
        "runs": len(times),
        "iterations": iterations,
        "unique_colors": unique,
        "stages": {n: statistics.median(s.get(n, 0.0) for s in stage_runs) for n in names},
        "rss_peak_mb": None if rss_peak is None else rss_peak / 1e6,
        "traced_peak_mb": traced_peak / 1e6,
    }


def main() -> None:
    for case in json.load(sys.stdin):
        print(
            f"  scale: {case['image'].rsplit('/', 1)[-1]} megapixels={case['megapixels']} k={case['k']}",
            file=sys.stderr,
            flush=True,
        )
        try:
            row = measure(case)
        except Exception as exc:  # report and go on with the next case
            row = {**case, "error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
