#!/usr/bin/env python
"""Benchmark fastquant against other colour quantizers: speed, quality and PNG size.

Usage (from anywhere; the checkout this file lives in is put on sys.path):

    python bench/bench.py [FOLDER_OR_FILES...] [-k 16 32 64 128 256] [--repeat 5] [--tools a,b,...]
                          [--out DIR] [--scale] [--startup] [--batch] [--alpha] [--shared] [--speed] [--quick]
                          [--no-compare]

Default images: ../shared/images/kodak next to the project root; default k: 256.

What is measured (per image and k, every installed tool; missing ones are skipped with a note):

- fastquant: in-process and warm. One untimed warm-up run first (Numba compilation excluded), then the median
  of --repeat runs of the full job: compress(path, k, seed=0) (read + quantize) + q.save() of an indexed PNG
  into a temp dir. Per-stage seconds come from q.stats.stage_seconds (medians) plus our own timing of save().
- prototype: the scikit-learn original, KMeans(n_clusters=k, random_state=42).fit() on ALL pixels as float64,
  then cluster_centers_[labels_] rounded to nearest and clipped to uint8 for scoring. Timed like the other
  in-process tools: one untimed run, then the median of --repeat runs of read + fit + reconstruct (~5 s each on
  a Kodak photo: most of the benchmark's ~10 minutes). Bytes n/a (it wrote JPEG).
- pngquant (`--nofs --speed 4 K`), pngquant-dither (`pngquant K`, default dithering) and imagemagick
  (`convert IN +dither -colors K png8:OUT`): whole process via subprocess, wall time, one untimed run then the
  median of --repeat.
- pillow-mediancut (kmeans=0), pillow-kmeans (MEDIANCUT, kmeans=1: k-means passes until <= 1 assignment
  changes) and pillow-fastoctree: in-process, Image.open + quantize + save(optimize=True), warm-up + median.

Quality: every output file is decoded again with Pillow (RGB, or RGBA for inputs with alpha) and scored with
fastquant.metrics (mse, psnr, ssim) against the Pillow decode of the input, so all tools share one yardstick.
Bytes are the output file size. Ratios are tool / fastquant on the same image and k.

Optional sections: --huge (generated 179 MP and 144 MP images, whole process: time and peak memory against
pngquant, bench/huge.py), --scale (large images, a 24 MP upscale, time vs megapixels and vs k, peak memory),
--startup (interpreter/import/CLI start-up), --batch (one CLI call on all images vs one pngquant call),
--alpha (images with transparency at k=256 and 16 vs pngquant --nofs: PSNR of the composites over black
and white, largest alpha error, bytes).
--shared (12 photos at k=64: one palette for all of them, union PSNR vs pngquant on a montage, and the time
against fitting each file on its own; bench/shared.py).
--speed (--speed 1..11: time and PSNR per level, interleaved; bench/speed.py), --quality (bench/quality.py: MSE
against the prototype per photo at k=256; PSNR and SSIM against libimagequant without dithering at k=16, 64,
256; the alpha composites at k=256 and 64 against pngquant).
Results: stdout, and <out>/results.md, results.csv, rate_distortion.png (plus scaling.*, startup.md, batch.md,
alpha.md, shared.md, speed.md, prototype-mse.md, perceptual.md, alpha-composites.md). <out> is a new
bench/runs/<date-time> folder unless --out says otherwise (--out bench/results replaces the tracked results).
Temporary outputs live in tempfile directories that are removed afterwards. No network.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import equal_quality
import extras
import huge
import quality
import report
import shared as shared_palette
import speed as speed_levels
from common import BENCH_DIR, ROOT, SHARED_IMAGES, Case, find_images
from competitors import TOOLS, Skip


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "inputs", nargs="*", metavar="FOLDER_OR_FILES", help=f"images or folders (default: {SHARED_IMAGES / 'kodak'})"
    )
    p.add_argument("-k", nargs="+", type=int, default=[256], help="palette sizes (default: 256)")
    p.add_argument("--repeat", type=int, default=None, help="timed runs per measurement (default 5; 2 with --quick)")
    p.add_argument("--tools", default=",".join(TOOLS), help=f"comma-separated subset of: {','.join(TOOLS)}")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results folder (default: a new bench/runs/<date-time>; --out bench/results replaces the tracked tables)",
    )
    p.add_argument("--scale", action="store_true", help="large images, 24 MP, time vs size and k, peak memory")
    p.add_argument("--startup", action="store_true", help="import and CLI start-up times")
    p.add_argument("--batch", action="store_true", help="one CLI call on all images vs one pngquant call")
    p.add_argument(
        "--alpha",
        action="store_true",
        help="images with alpha (alpha/, PngSuite) vs pngquant: composites over black/white, bytes",
    )
    p.add_argument(
        "--huge",
        action="store_true",
        help="generated 179 MP and 144 MP images: whole-process time and peak memory vs pngquant",
    )
    p.add_argument(
        "--shared",
        action="store_true",
        help="12 photos at k=64: --shared's union PSNR vs pngquant on a montage, and its time vs per-file fits",
    )
    p.add_argument(
        "--equal-quality",
        action="store_true",
        help="fastquant --max-bytes at 0.85x/0.80x of pngquant --nofs 256's bytes: PSNR, SSIM; RD curve",
    )
    p.add_argument(
        "--speed", action="store_true", help="--speed 1..11: time and PSNR of every level on the photos at the first -k"
    )
    p.add_argument(
        "--quality",
        action="store_true",
        help="MSE vs the prototype at k=256, PSNR/SSIM vs libimagequant at k=16/64/256, alpha composites at k=256/64",
    )
    p.add_argument("--quick", action="store_true", help="smoke test: 2 images, repeat 2, smaller --scale series")
    p.add_argument("--no-compare", action="store_true", help="skip the per-image tool comparison")
    args = p.parse_args(argv)
    args.repeat = args.repeat or (2 if args.quick else 5)
    if args.out is None:  # never over the tracked results unless asked
        args.out = BENCH_DIR / "runs" / datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    args.tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = [t for t in args.tools if t not in TOOLS]
    if unknown:
        p.error(f"unknown tool(s) {', '.join(unknown)}; known: {', '.join(TOOLS)}")
    if any(k < 2 for k in args.k):
        p.error("-k values must be >= 2")
    return args


def _version(cmd) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
        return out.splitlines()[0] if out else "?"
    except (OSError, subprocess.SubprocessError):
        return "not installed"


def environment() -> str:
    import fastquant

    def dist(name):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    libs = ", ".join(f"{n} {dist(n)}" for n in ("numpy", "numba", "Pillow", "scikit-learn"))
    return (
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}; machine: {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}\n"
        f"- Python {platform.python_version()}; {libs}\n"
        f"- fastquant {getattr(fastquant, '__version__', '?')} from {Path(fastquant.__file__).parent} "
        f"(git {_version(['git', '-C', str(ROOT), 'describe', '--always', '--dirty'])})\n"
        f"- {_version(['pngquant', '--version'])} (pngquant); {_version(['convert', '-version'])}\n"
    )


def compare(images, ks, tools, repeat):
    """Run every tool on every image and k; return (results, notes)."""
    results, notes = [], []
    with tempfile.TemporaryDirectory(prefix="fqbench-") as tmp:
        for path in images:
            case = Case.load(path)
            for k in ks:
                for name in tools:
                    print(f"  {case.name} k={k} {name} ...", file=sys.stderr, end=" ", flush=True)
                    try:
                        r = TOOLS[name](case, k, repeat, Path(tmp))
                    except Skip as exc:
                        notes.append(f"{name} skipped on {case.name} k={k}: {exc}")
                        print("skipped", file=sys.stderr)
                        continue
                    except Exception as exc:  # one tool failing must not end the run
                        notes.append(f"{name} FAILED on {case.name} k={k}: {type(exc).__name__}: {exc}")
                        print("FAILED", file=sys.stderr)
                        continue
                    print(f"{r.seconds:.4f}s psnr {r.psnr:.2f}", file=sys.stderr)
                    results.append(r)
                    if r.note and name == "fastquant":
                        notes.append(f"fastquant check on {case.name} k={k}: {r.note}")
                for f in Path(tmp).iterdir():
                    f.unlink()
    return results, notes


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        import fastquant  # noqa: F401  (needed for the metrics even when not benchmarked)
    except ImportError as exc:
        sys.exit(f"bench: cannot import fastquant from {ROOT} ({exc}); pip install -e . or set PYTHONPATH")
    images = find_images(args.inputs, SHARED_IMAGES / "kodak")
    if args.quick:
        images = images[:2]
    args.out.mkdir(parents=True, exist_ok=True)
    head = f"# fastquant benchmark\n\n{environment()}- images: {len(images)}; k: {args.k}; repeat: {args.repeat}\n"
    print(head)

    if not args.no_compare:
        tools = []
        for name in args.tools:
            missing = TOOLS[name].missing()
            if missing:
                print(f"note: skipping {name}: {missing}")
            else:
                tools.append(name)
        results, notes = compare(images, args.k, tools, args.repeat)
        methods = "\n".join(f"- {n}: {TOOLS[n].describe}" for n in tools)
        parts = [
            head,
            "## Tools\n\n" + methods + "\n\nQuality: outputs decoded with Pillow and scored with "
            "fastquant.metrics against the Pillow decode of the input. Ratios: tool / fastquant.",
            "## Overall\n\n" + report.overall_table(results),
            "## fastquant vs targets\n\n" + (report.target_lines(results) or "n/a (fastquant not run)"),
            "## fastquant stages (median seconds per stage; write = q.save)\n\n" + report.stage_table(results),
            "## Per image\n\n" + report.per_image_tables(results),
        ]
        if notes:
            parts.append("## Notes\n\n" + "\n".join(f"- {n}" for n in notes))
        text = "\n\n".join(parts) + "\n"
        report.write_csv(results, args.out / "results.csv")
        if report.plot_rate_distortion(results, args.out / "rate_distortion.png"):
            text += "\nPlot: rate_distortion.png (PSNR vs bytes/px; only meaningful with several -k values)\n"
        (args.out / "results.md").write_text(text)
        print(text)

    large = SHARED_IMAGES / "large"
    sections = [
        ("scale", "scaling.md", lambda: extras.scale(large, args.repeat, args.quick, args.out)),
        ("startup", "startup.md", lambda: extras.startup(images[0], 2 if args.quick else 5)),
        ("batch", "batch.md", lambda: extras.batch(images, 1 if args.quick else 3)),
        ("alpha", "alpha.md", lambda: extras.alpha(SHARED_IMAGES, args.quick)),
        ("huge", "huge.md", lambda: huge.huge(repeat=1, scale=0.25 if args.quick else 1.0)),
        ("shared", "shared.md", lambda: shared_palette.shared(images, 64, 1 if args.quick else 3)),
        ("equal_quality", "equal-quality.md", lambda: equal_quality.equal_quality(images, args.quick, args.out)),
        ("speed", "speed.md", lambda: speed_levels.speed(images, args.k[0], args.repeat)),
        ("quality", "prototype-mse.md", lambda: quality.prototype_mse(images)),
        ("quality", "perceptual.md", lambda: quality.perceptual(images)),
        ("quality", "alpha-composites.md", lambda: quality.alpha_composites(SHARED_IMAGES)),
    ]
    for flag, filename, run in sections:
        if getattr(args, flag):
            text = run()
            (args.out / filename).write_text(head + "\n" + text)
            print(text)
    print(f"results written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
