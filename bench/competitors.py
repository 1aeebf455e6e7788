"""One function per quantizer, each returning a common `Result`, and the TOOLS registry.

Every tool function has the signature ``fn(case, k, repeat, tmp) -> Result``; `tmp` is a scratch folder
(a tempfile directory owned by the caller). Each output is decoded again with Pillow and scored with
fastquant.metrics against `case.original`, so the quality numbers are comparable across tools.
"""

from __future__ import annotations

import functools
import importlib.util
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import Case, Result, decode, median, run_cmd, score, time_runs
from PIL import Image

PNG_ONLY = "reads PNG input only"


# --------------------------------------------------------------------------- fastquant (in-process, warm)
def _fastquant(name="fastquant", **options):
    """compress(path, **options) + save(indexed PNG): the full job, in-process, after one untimed warm-up."""

    def run(case: Case, k: int, repeat: int, tmp: Path) -> Result:
        return _run_fastquant(name, options, case, k, repeat, tmp)

    return run


def _run_fastquant(name, options, case: Case, k: int, repeat: int, tmp: Path) -> Result:
    from fastquant import compress

    out = tmp / f"{case.name}-{name}-{k}.png"

    def job():
        t0 = time.perf_counter()
        q = compress(case.path, k, seed=0, **options)
        t1 = time.perf_counter()
        written = q.save(out)
        return q, written, time.perf_counter() - t1, t1 - t0

    seconds, runs = time_runs(job, repeat, warmup=1)
    q, written, _, _ = runs[-1]
    stage_names = list(dict.fromkeys(n for q_, *_ in runs for n in q_.stats.stage_seconds))
    stages = {n: median(q_.stats.stage_seconds.get(n) for q_, *_ in runs) for n in stage_names}
    stages["write"] = median(w for _, _, w, _ in runs)
    stages["compress"] = median(c for *_, c in runs)  # compress() alone: read + quantize, no write
    res = Result(
        case.name,
        name,
        k,
        case.pixels,
        median(seconds),
        len(seconds),
        bytes=out.stat().st_size,
        stages=stages,
        iterations=getattr(q.stats, "iterations", None),
    )
    score(res, case.original, q.image)
    res.note = "; ".join(_fastquant_checks(case, k, q, out, written, res))
    return res


def _fastquant_checks(case, k, q, out, written, res) -> list[str]:
    """Cheap consistency checks on the last run; anything odd becomes a note (and a warning in the report)."""
    issues = []
    if q.original.shape != case.original.shape or not np.array_equal(q.original, case.original):
        issues.append("q.original differs from Pillow's decode")
    if not np.array_equal(q.image, q.palette[q.indices]):
        issues.append("q.image != palette[indices]")
    if len(q.palette) > k:
        issues.append(f"palette has {len(q.palette)} > k colours")
    with Image.open(out) as im:
        if im.mode != "P":
            issues.append(f"saved PNG mode is {im.mode}, not indexed")
    if not np.array_equal(decode(out, case.mode), q.image):
        issues.append("saved PNG does not decode to q.image")
    if written != res.bytes:
        issues.append(f"save() returned {written}, file has {res.bytes} bytes")
    stats_mse = getattr(q.stats, "mse", None)
    if stats_mse is not None and abs(stats_mse - res.mse) > 1e-6 * max(1.0, res.mse):
        issues.append(f"q.stats.mse {stats_mse:.4f} != metrics.mse {res.mse:.4f}")
    return issues


# --------------------------------------------------------------------------- prototype (scikit-learn)
def run_prototype(case: Case, k: int, repeat: int, tmp: Path) -> Result:
    """The original prototype: KMeans(k, random_state=42) on ALL pixels as float64, then centers[labels].

    Timed as the other in-process tools: one untimed run, then the median of `repeat` runs of Pillow
    decode + fit + reconstruction + round/clip to uint8 (about 5 s each on a Kodak photo, so this is
    most of the benchmark's time).  The float reconstruction is rounded to nearest and clipped to
    0..255 before scoring.  Bytes are n/a: the prototype wrote JPEG, which is not comparable with an
    indexed PNG.
    """
    from sklearn.cluster import KMeans

    def job():
        img = decode(case.path, "RGB")
        pixels = img.reshape(-1, 3).astype(float)
        km = KMeans(n_clusters=k, random_state=42).fit(pixels)
        recon = km.cluster_centers_[km.labels_].reshape(img.shape)
        return np.clip(np.rint(recon), 0, 255).astype(np.uint8), km.n_iter_

    if case.mode != "RGB":
        raise Skip("prototype is RGB only")
    seconds, runs = time_runs(job, repeat, warmup=1)
    img, n_iter = runs[-1]  # deterministic (random_state=42): every run gives the same output
    res = Result(
        case.name, "prototype", k, case.pixels, median(seconds), len(seconds), iterations=int(n_iter), note="bytes n/a"
    )
    return score(res, case.original, img)


# --------------------------------------------------------------------------- Pillow (in-process)
def _pillow(method_name: str, kmeans: int = 0):
    def run(case: Case, k: int, repeat: int, tmp: Path) -> Result:
        """Image.open + quantize + save(optimize=True): in-process, median of repeats after a warm-up."""
        method = getattr(Image.Quantize, method_name)
        if case.mode == "RGBA" and method_name != "FASTOCTREE":
            raise Skip(f"Pillow {method_name} does not take RGBA")
        out = tmp / f"{case.name}-pillow-{method_name.lower()}-{k}.png"

        def job():
            with Image.open(case.path) as im:
                im = im if im.mode == case.mode else im.convert(case.mode)
                im.quantize(colors=k, method=method, kmeans=kmeans).save(out, optimize=True)

        seconds, _ = time_runs(job, repeat, warmup=1)
        res = Result(case.name, run.tool, k, case.pixels, median(seconds), len(seconds), bytes=out.stat().st_size)
        return score(res, case.original, decode(out, case.mode))

    return run


# --------------------------------------------------------------------------- whole-process CLI tools
def _cli(argv_for):
    def run(case: Case, k: int, repeat: int, tmp: Path) -> Result:
        """Whole process (fork/exec/decode/quantize/encode), wall time, median of repeats after a warm-up."""
        out = tmp / f"{case.name}-{run.tool}-{k}.png"
        argv = argv_for(case.path, k, out)
        seconds, _ = time_runs(lambda: run_cmd(argv), repeat, warmup=1)
        res = Result(case.name, run.tool, k, case.pixels, median(seconds), len(seconds), bytes=out.stat().st_size)
        return score(res, case.original, decode(out, case.mode))

    return run


#: pngquant 3 (libimagequant 4) from the ``pngquant-cli`` wheel of the bench extra, beside this Python;
#: pngquant 2.17 is the system's (Debian's) ``/usr/bin/pngquant``.
PNGQUANT3 = str(Path(sys.executable).with_name("pngquant"))
PNGQUANT2 = "/usr/bin/pngquant" if Path("/usr/bin/pngquant").exists() else "pngquant"


def _pngquant_argv(extra, exe=PNGQUANT2):
    def argv(src: Path, k: int, out: Path):
        if src.suffix.lower() != ".png":
            raise Skip(f"pngquant {PNG_ONLY}")
        return [exe, *extra, "--force", "--output", out, str(k), src]

    return argv


@functools.cache
def _magick() -> tuple[str, ...] | None:
    """ImageMagick 7 `magick` or ImageMagick 6 `convert` (not GraphicsMagick or another `convert`)."""
    for exe in ("magick", "convert"):
        path = shutil.which(exe)
        if path:
            try:
                proc = subprocess.run([path, "-version"], capture_output=True, text=True, timeout=30)
            except (OSError, subprocess.SubprocessError):
                continue
            if "ImageMagick" in proc.stdout:
                return (path,)
    return None


def _imagemagick_argv(src: Path, k: int, out: Path):
    return [*_magick(), src, "+dither", "-colors", str(k), f"png8:{out}"]


class Skip(Exception):
    """A tool cannot handle this input (printed as a note, not an error)."""


# --------------------------------------------------------------------------- registry
def _module(name):
    return lambda: None if importlib.util.find_spec(name) else f"Python package {name!r} not installed"


def _program(name):
    return lambda: None if shutil.which(name) else f"program {name!r} not on PATH"


class Tool:
    def __init__(self, name, fn, missing, describe, max_k=256):
        self.name, self.fn, self.missing, self.describe, self.max_k = name, fn, missing, describe, max_k
        fn.tool = name

    def __call__(self, case, k, repeat, tmp) -> Result:
        if k > self.max_k:
            raise Skip(f"at most {self.max_k} colours")
        return self.fn(case, k, repeat, tmp)


TOOLS = {
    t.name: t
    for t in [
        Tool(
            "fastquant",
            _fastquant(),
            _module("fastquant"),
            "compress(path, k, seed=0) + q.save(.png); in-process, warm (1 untimed warm-up)",
            max_k=65536,
        ),
        Tool(
            "fastquant-fs",
            _fastquant("fastquant-fs", dither="fs"),
            _module("fastquant"),
            "compress(path, k, dither='fs') + q.save(.png): Floyd-Steinberg, full strength; in-process, warm",
        ),
        Tool(
            "fastquant-oklab",
            _fastquant("fastquant-oklab", colorspace="oklab"),
            _module("fastquant"),
            "compress(path, k, colorspace='oklab') + q.save(.png); in-process, warm",
        ),
        Tool(
            "prototype",
            run_prototype,
            _module("sklearn"),
            "scikit-learn KMeans(n_clusters=k, random_state=42) on all pixels (float64); warm-up + median; "
            "read+fit+reconstruct",
            max_k=65536,
        ),
        Tool(
            "pngquant",
            _cli(_pngquant_argv(["--nofs", "--speed", "4"])),
            _program("pngquant"),
            "`pngquant --nofs --speed 4 K`, whole process",
        ),
        Tool(
            "pngquant-dither",
            _cli(_pngquant_argv([])),
            _program("pngquant"),
            "`pngquant K` (defaults: Floyd-Steinberg dithering, speed 4), whole process",
        ),
        Tool(
            "pngquant3",
            _cli(_pngquant_argv(["--nofs", "--speed", "4"], PNGQUANT3)),
            lambda: None if Path(PNGQUANT3).exists() else "pngquant 3 not installed (pip install pngquant-cli)",
            "pngquant 3 (libimagequant 4, the `pngquant-cli` wheel): `pngquant --nofs --speed 4 K`, whole process",
        ),
        Tool(
            "pngquant3-dither",
            _cli(_pngquant_argv([], PNGQUANT3)),
            lambda: None if Path(PNGQUANT3).exists() else "pngquant 3 not installed (pip install pngquant-cli)",
            "pngquant 3: `pngquant K` (defaults: Floyd-Steinberg dithering, speed 4), whole process",
        ),
        Tool(
            "pillow-mediancut",
            _pillow("MEDIANCUT"),
            _module("PIL"),
            "Image.quantize(k, MEDIANCUT, kmeans=0) + save(optimize=True); in-process",
        ),
        Tool(
            "pillow-fastoctree",
            _pillow("FASTOCTREE"),
            _module("PIL"),
            "Image.quantize(k, FASTOCTREE) + save(optimize=True); in-process",
        ),
        Tool(
            "pillow-kmeans",
            _pillow("MEDIANCUT", kmeans=1),
            _module("PIL"),
            "Image.quantize(k, MEDIANCUT, kmeans=1) + save(optimize=True); in-process. Pillow's `kmeans` is a stop "
            "threshold: k-means passes repeat until at most that many assignments change (1 = run to convergence)",
        ),
        Tool(
            "imagemagick",
            _cli(_imagemagick_argv),
            lambda: None if _magick() else "ImageMagick not on PATH",
            "`convert IN +dither -colors K png8:OUT`, whole process",
        ),
    ]
}
