"""Shared helpers for the benchmark: paths, image decoding, timing, scoring, the result record."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
# The shared corpus next to the project root, or where FASTQUANT_IMAGES says (as for the tests).
SHARED_IMAGES = Path(os.environ.get("FASTQUANT_IMAGES") or ROOT.parent / "shared" / "images")
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp"}

# Benchmark the checkout this script lives in, even when fastquant is not pip-installed.
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))


def subprocess_env() -> dict:
    """Environment for child Pythons (`python -m fastquant`, the scale probe): checkout first on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def time_runs(fn, repeat: int, warmup: int = 1):
    """Call fn `warmup` times untimed, then `repeat` times timed with perf_counter.

    Returns (list of seconds, list of return values).
    """
    for _ in range(warmup):
        fn()
    seconds, outputs = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        outputs.append(fn())
        seconds.append(time.perf_counter() - t0)
    return seconds, outputs


def run_cmd(argv, env=None, cwd=None) -> float:
    """Run a command to completion; return its wall time (fork/exec included). Raise with stderr on failure."""
    t0 = time.perf_counter()
    proc = subprocess.run([str(a) for a in argv], capture_output=True, env=env, cwd=cwd)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout).decode(errors="replace").splitlines() if ln.strip()]
        last = lines[-1][:300].replace("|", "/") if lines else ""  # one line: it may land in a table cell
        raise RuntimeError(f"{Path(str(argv[0])).name} exited {proc.returncode}: {last}")
    return seconds


def image_mode(path: Path) -> str:
    """'RGBA' when the file carries alpha (or a tRNS transparency), else 'RGB'."""
    with Image.open(path) as im:
        return "RGBA" if ("A" in im.getbands() or "transparency" in im.info) else "RGB"


def decode(path: Path, mode: str) -> np.ndarray:
    """Decode any image file with Pillow to an (H, W, 3|4) uint8 array in `mode`."""
    with Image.open(path) as im:
        im.load()
        return np.asarray(im if im.mode == mode else im.convert(mode))


def find_images(args, default: Path) -> list[Path]:
    paths = [Path(a) for a in args] or [default]
    found = []
    for p in paths:
        if p.is_dir():
            found += sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXTS)
        elif p.is_file():
            found.append(p)
        else:
            raise SystemExit(f"bench: no such file or folder: {p}")
    return [f.resolve() for f in found]


@dataclass
class Case:
    """One input image, decoded once by Pillow: the reference every tool is scored against."""

    path: Path
    mode: str
    original: np.ndarray

    @classmethod
    def load(cls, path: Path) -> Case:
        mode = image_mode(path)
        return cls(path, mode, decode(path, mode))

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def pixels(self) -> int:
        return self.original.shape[0] * self.original.shape[1]


@dataclass
class Result:
    """One row of the comparison: one tool on one image at one k."""

    image: str
    tool: str
    k: int
    pixels: int
    seconds: float | None = None  # median over `runs` timed runs
    runs: int = 0
    mse: float | None = None
    psnr: float | None = None
    ssim: float | None = None
    bytes: int | None = None
    colours: int | None = None  # distinct colours in the decoded output
    stages: dict = field(default_factory=dict)  # fastquant only: median seconds per stage (+ write)
    iterations: int | None = None
    note: str = ""

    @property
    def bytes_per_px(self) -> float | None:
        return None if self.bytes is None else self.bytes / self.pixels


def count_colours(img: np.ndarray) -> int:
    flat = img.reshape(-1, img.shape[-1]).astype(np.uint32)
    packed = flat[:, 0]
    for c in range(1, flat.shape[1]):
        packed = (packed << np.uint32(8)) | flat[:, c]
    return int(np.unique(packed).size)


def score(result: Result, original: np.ndarray, output: np.ndarray) -> Result:
    """Fill MSE/PSNR/SSIM (fastquant.metrics, the same code for every tool) and the colour count."""
    from fastquant import metrics

    if output.shape != original.shape or output.dtype != np.uint8:
        raise ValueError(f"output {output.shape} {output.dtype} does not match original {original.shape}")
    result.mse = float(metrics.mse(original, output))
    result.psnr = float(metrics.psnr(original, output))
    result.ssim = float(metrics.ssim(original, output))
    result.colours = count_colours(output)
    return result
