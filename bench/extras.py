"""The optional sections of bench.py: --scale, --startup, --batch and --alpha. Each returns a markdown section."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import BENCH_DIR, IMAGE_EXTS, median, run_cmd, subprocess_env, time_runs
from PIL import Image
from report import fmt, fsec, md_table

# The big case is artificial.png (3072x2048) upscaled 2x per side with BICUBIC: 6144x4096 = 25.2 MP
# ("24 megapixels" in the issue); the series resizes the same image.
BIG_MP = 6144 * 4096 / 1e6
MP_SERIES = [0.1, 0.5, 1, 2, 6, 12, BIG_MP]
K_SERIES = [16, 32, 64, 128, 256]


# --------------------------------------------------------------------------- --scale
def _pixels(path: Path) -> int:
    with Image.open(path) as im:
        return im.width * im.height


def scale(large_dir: Path, repeat: int, quick: bool, out_dir: Path) -> str:
    """fastquant.compress on ndarrays (warm) for each large image, a 24 MP upscale, a size series and a k series.

    Runs in one separate worker process (scale_probe.py) so the memory measurement is not disturbed by this one.
    """
    files = sorted(f for f in large_dir.iterdir() if f.suffix.lower() in IMAGE_EXTS)
    if not files:
        return f"## Scaling\n\nNo images in {large_dir}.\n"
    named = [f for f in files if f.name == "artificial.png"]
    source = named[0] if named else max(files, key=_pixels)
    series = [0.1, 1, 6] if quick else MP_SERIES
    k_series = [16, 256] if quick else K_SERIES
    wanted = [(str(f), None, 256) for f in files]
    wanted += [(str(source), mp, 256) for mp in series]
    wanted += [(str(source), None, k) for k in k_series]
    wanted = list(dict.fromkeys(wanted))  # the 256 / native cases overlap
    cases = [{"image": i, "megapixels": mp, "k": k, "repeat": repeat} for i, mp, k in wanted]
    env = {**subprocess_env(), "MALLOC_MMAP_THRESHOLD_": "131072"}
    proc = subprocess.run(
        [sys.executable, str(BENCH_DIR / "scale_probe.py")],
        input=json.dumps(cases),
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0:
        print(f"bench: scale probe exited {proc.returncode}", file=sys.stderr)
    by = {(r["image"], r["megapixels"], r["k"]): r for r in rows}
    _write_scale_csv(rows, out_dir / "scaling.csv")
    plotted = _plot_scaling(
        [by.get((str(source), mp, 256)) for mp in series],
        [by.get((str(source), None, k)) for k in k_series],
        out_dir / "scaling.png",
    )

    def stage_cols(rs):
        return list(dict.fromkeys(n for r in rs if r and "stages" in r for n in r["stages"]))

    def line(r, first, names):
        if r is None or "error" in r:
            return [first] + ["error: " + (r or {}).get("error", "missing")] + [""] * (7 + len(names))
        mp = r["width"] * r["height"] / 1e6
        return [
            first,
            f"{r['width']}x{r['height']}",
            fmt(mp),
            fmt(r.get("unique_colors")),
            fsec(r["seconds"]),
            fsec(r["seconds"] / mp),
            fmt(r["rss_peak_mb"], 1),
            fmt(r["traced_peak_mb"], 1),
            *(fsec(r["stages"].get(n)) for n in names),
            fmt(r["iterations"]),
        ]

    head = ["size", "MP", "unique colours", "seconds", "s/MP", "peak RSS above input MB", "tracemalloc peak MB"]
    big = [by.get((str(f), None, 256)) for f in files]
    labels = [f.name for f in files]
    if BIG_MP in series:
        big.append(by.get((str(source), BIG_MP, 256)))
        labels.append(f"{source.name} upscaled 2x per side (BICUBIC), {BIG_MP:.1f} MP")
    names = stage_cols(big)
    t1 = md_table(["image", *head, *names, "iterations"], [line(r, lab, names) for r, lab in zip(big, labels)])
    srs = [by.get((str(source), mp, 256)) for mp in series]
    names = stage_cols(srs)
    t2 = md_table(["target MP", *head, *names, "iterations"], [line(r, mp, names) for r, mp in zip(srs, series)])
    krs = [by.get((str(source), None, k)) for k in k_series]
    names = stage_cols(krs)
    t3 = md_table(["k", *head, *names, "iterations"], [line(r, k, names) for r, k in zip(krs, k_series)])
    return (
        f"## Scaling (fastquant.compress on an in-memory array, warm, median of {repeat}, k=256 unless noted)\n\n"
        f"Measured in a separate worker process (bench/scale_probe.py). Peak RSS above input = VmHWM (reset via "
        f"/proc/self/clear_refs) minus VmRSS after decode + warm-up: every allocation, numpy and Numba alike. "
        f"tracemalloc peak = numpy/Python allocations only (Numba-internal arrays are invisible to it). "
        f"Resized images: {source.name} resized with Pillow BICUBIC to the target megapixels, aspect kept "
        f"({BIG_MP:.1f} MP = {source.name} upscaled {(BIG_MP * 1e6 / _pixels(source)) ** 0.5:.2f}x per side). "
        f"Images over 4.2 MP are fitted on a 2 MP sample and mapped through a colour table. "
        f"Time follows the number of unique colours (k-means runs on the "
        f"colour histogram) more than the pixel count; BICUBIC upscaling smooths noise and can lower it.\n\n"
        f"### Large images\n\n{t1}\n\n### Time vs megapixels ({source.name})\n\n{t2}\n\n"
        f"### Time vs k ({source.name}, native size)\n\n{t3}\n" + ("\nPlot: scaling.png\n" if plotted else "")
    )


def _write_scale_csv(rows, path: Path) -> None:
    fields = [
        "image",
        "megapixels",
        "k",
        "width",
        "height",
        "input_mb",
        "unique_colors",
        "seconds",
        "runs",
        "iterations",
        "rss_peak_mb",
        "traced_peak_mb",
        "stages",
        "error",
    ]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(fields)
        for r in rows:
            r = {**r, "stages": ";".join(f"{n}={v:.6f}" for n, v in r.get("stages", {}).items())}
            w.writerow([r.get(k) for k in fields])


def _plot_scaling(size_rows, k_rows, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FormatStrFormatter, LogLocator
    except ImportError:
        return False
    size_rows = [r for r in size_rows if r and "seconds" in r]
    k_rows = [r for r in k_rows if r and "seconds" in r]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot([r["width"] * r["height"] / 1e6 for r in size_rows], [r["seconds"] for r in size_rows], "o-")
    a.set(xlabel="megapixels", ylabel="seconds", title="compress() time vs size (k=256)", xscale="log", yscale="log")
    b.plot([r["k"] for r in k_rows], [r["seconds"] for r in k_rows], "o-")
    b.set(xlabel="k", ylabel="seconds", title="compress() time vs k")
    b.set_xscale("log", base=2)
    for ax, xs in ((a, [r["width"] * r["height"] / 1e6 for r in size_rows]), (b, [r["k"] for r in k_rows])):
        ax.minorticks_off()
        ax.set_xticks(xs, [f"{x:g}" if ax is b else f"{x:.2g}" for x in xs])
        ax.grid(True, alpha=0.3)
    a.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    a.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


# --------------------------------------------------------------------------- --startup
def startup(sample: Path, repeat: int) -> str:
    """Whole-process wall time of interpreter start-ups and of one cached `python -m fastquant` job."""
    py, env = sys.executable, subprocess_env()
    rows = []
    with tempfile.TemporaryDirectory(prefix="fqbench-") as tmp:
        out = Path(tmp) / f"{sample.stem}-fq.png"
        cmds = [
            ("python -c pass", [py, "-c", "pass"]),
            ("python -c 'import numba'", [py, "-c", "import numba"]),
            ("python -c 'import fastquant'", [py, "-c", "import fastquant"]),
            (
                f"python -m fastquant {sample.name} -k 256 -o OUT --force (cached)",
                [py, "-m", "fastquant", sample, "-k", "256", "-o", out, "--force"],
            ),
        ]
        for label, argv in cmds:
            try:
                secs, _ = time_runs(lambda argv=argv: run_cmd(argv, env=env), repeat, warmup=1)  # warm-up fills caches
                rows.append([label, fsec(median(secs)), fsec(min(secs)), fsec(max(secs))])
            except RuntimeError as exc:
                rows.append([label, f"error: {exc}", "", ""])
    return (
        f"## Start-up (whole process, wall time, median of {repeat} after 1 untimed run)\n\n"
        + md_table(["command", "median s", "min s", "max s"], rows)
        + "\n"
    )


# --------------------------------------------------------------------------- --batch
def batch(images: list[Path], repeat: int) -> str:
    """One `python -m fastquant` invocation on all images (default jobs, -j 1, -j 2, a Dask LocalCluster of 2
    workers) vs one `pngquant --nofs 256` invocation."""
    import importlib.util

    images = [p for p in images if p.suffix.lower() == ".png"]
    if not images:
        return "## Batch\n\nNo PNG images.\n"
    py, env = sys.executable, subprocess_env()
    fq = [py, "-m", "fastquant"]
    variants = [
        ("python -m fastquant FILES (default: a worker per core)", "default", [], {}),
        ("python -m fastquant FILES -j 1", "j1", ["-j", "1"], {}),
        # -j 1 runs its largest stages on all cores; this row shows one core alone
        (
            "NUMBA_NUM_THREADS=1 python -m fastquant FILES -j 1 (one thread)",
            "j1t1",
            ["-j", "1"],
            {"NUMBA_NUM_THREADS": "1"},
        ),
        ("python -m fastquant FILES -j 2", "j2", ["-j", "2"], {}),
    ]
    if importlib.util.find_spec("distributed"):
        variants.append(
            (
                "python -m fastquant FILES --scheduler local (Dask LocalCluster, 2 workers)",
                "dask",
                ["--scheduler", "local"],
                {},
            )
        )
    rows = []
    with tempfile.TemporaryDirectory(prefix="fqbench-") as tmp:
        # Every run writes beside its inputs (fastquant's -o takes one input only), so each gets symlinks to
        # the images in its own scratch folder; the outputs land there.
        def links(name):
            folder = Path(tmp) / name
            folder.mkdir()
            for p in images:
                (folder / p.name).symlink_to(p)
            return folder, sorted(folder.iterdir())

        jobs = []
        for label, name, extra, env_extra in variants:
            folder, files = links(name)
            jobs.append(
                (
                    label,
                    [*fq, *files, "-k", "256", "--ext", ".fq.png", "--force", "-q", *extra],
                    folder,
                    "*.fq.png",
                    {**env, **env_extra},
                )
            )
        from competitors import PNGQUANT2, PNGQUANT3

        for version, exe in (("2.17", PNGQUANT2), ("3", PNGQUANT3)):
            if not shutil.which(exe):
                continue
            folder, files = links(f"pngquant{version}")
            jobs.append(
                (
                    f"pngquant {version} --nofs 256 FILES",
                    [exe, "--nofs", "--force", "--ext", ".pq.png", "256", *files],
                    folder,
                    "*.pq.png",
                    env,
                )
            )
        for label, argv, folder, pattern, job_env in jobs:
            try:
                secs, _ = time_runs(lambda argv=argv, job_env=job_env: run_cmd(argv, env=job_env), repeat, warmup=1)
                n_out = len(list(folder.glob(pattern)))
                rows.append([label, len(images), n_out, fsec(median(secs)), fmt(len(images) / median(secs))])
            except RuntimeError as exc:
                rows.append([label, len(images), "", f"error: {exc}", ""])
    return (
        f"## Batch (one invocation on {len(images)} images, wall time, median of {repeat} after 1 untimed run)\n\n"
        + md_table(["command", "inputs", "outputs", "seconds", "files/s"], rows)
        + "\n"
    )


# --------------------------------------------------------------------------- --alpha
ALPHA_KS = [256, 16]


def alpha_images(shared: Path) -> list[Path]:
    """The alpha/ folder, and the PngSuite files with alpha (RGBA, LA) or a tRNS transparency."""
    found = sorted(p for p in (shared / "alpha").glob("*.png"))
    for p in sorted((shared / "pngsuite").glob("[bfgpst]*.png")):
        with Image.open(p) as im:
            if "A" in im.getbands() or "transparency" in im.info:
                found.append(p)
    return found


def alpha(shared: Path, quick: bool, ks=ALPHA_KS) -> str:
    """fastquant vs `pngquant --nofs K` on images with alpha: PSNR of the composites over black and over
    white (and the worse of the two), largest alpha error, bytes; at each of ``ks`` (default k=256 and 16)."""
    import hashlib

    import numpy as np

    from fastquant import compress, io, metrics

    images = alpha_images(shared)
    if quick:
        images = images[:3]
    if not images:
        return f"## Alpha\n\nNo images with alpha under {shared}.\n"
    pq = None
    try:
        subprocess.run(["pngquant", "--version"], capture_output=True, check=True)
        pq = "pngquant"
    except (OSError, subprocess.CalledProcessError):
        pass
    # Files with the same pixels (PngSuite repeats one picture in several encodings) share a row.
    groups: dict[str, list[Path]] = {}
    refs = {}
    for p in images:
        ref, _ = io.read_image(p)
        if ref.shape[2] == 3:  # a tRNS key no pixel uses: opaque
            ref = np.dstack([ref, np.full(ref.shape[:2], 255, np.uint8)])
        key = hashlib.sha1(ref.tobytes() + str(ref.shape).encode()).hexdigest()
        groups.setdefault(key, []).append(p)
        refs[key] = ref
    summary, tables = [], []
    with tempfile.TemporaryDirectory(prefix="fqbench-") as tmp:
        src, out = Path(tmp) / "in.png", Path(tmp) / "out.png"
        for k in ks:
            rows, cmp = [], []
            for key, paths in groups.items():
                ref = refs[key]
                print(f"  alpha {paths[0].name} k={k} ...", file=sys.stderr, flush=True)
                q = compress(paths[0], k)
                fq = q.image if q.image.shape[2] == 4 else np.dstack([q.image, ref[:, :, 3]])
                fq_row = [
                    metrics.psnr_over(ref, fq, 0),
                    metrics.psnr_over(ref, fq, 255),
                    metrics.alpha_error(ref, fq),
                    len(q.encode(".png")),
                ]
                pq_row = [None] * 4
                if pq:
                    Image.fromarray(ref, "RGBA").save(src)
                    try:
                        run_cmd([pq, "--nofs", "--force", "--output", out, str(k), src])
                        with Image.open(out) as im:
                            img = np.asarray(im.convert("RGBA"))
                        pq_row = [
                            metrics.psnr_over(ref, img, 0),
                            metrics.psnr_over(ref, img, 255),
                            metrics.alpha_error(ref, img),
                            out.stat().st_size,
                        ]
                    except RuntimeError as exc:
                        print(f"bench: pngquant failed on {paths[0].name}: {exc}", file=sys.stderr)
                soft = bool(((ref[:, :, 3] > 0) & (ref[:, :, 3] < 255)).any())
                name = ", ".join(p.stem for p in paths) + ("" if soft else " (hard alpha)")
                rows.append(
                    [
                        name,
                        *(fmt(x) for x in fq_row[:2]),
                        fmt(pq_row[0]),
                        fmt(pq_row[1]),
                        fmt(fq_row[2]),
                        fmt(pq_row[2]),
                        fmt(fq_row[3]),
                        fmt(pq_row[3]),
                    ]
                )
                if pq_row[0] is not None:
                    cmp.append((fq_row, pq_row))
            tables.append(
                f"### k={k}\n\n"
                + md_table(
                    [
                        "image",
                        "over black fq",
                        "over white fq",
                        "over black pq",
                        "over white pq",
                        "max alpha err fq",
                        "max alpha err pq",
                        "bytes fq",
                        "bytes pq",
                    ],
                    rows,
                )
            )
            if cmp:

                def finite_diff(i, cmp=cmp):
                    return median([f[i] - p[i] for f, p in cmp if f[i] != float("inf") and p[i] != float("inf")])

                worse = [min(f[:2]) - min(p[:2]) for f, p in cmp if min(p[:2]) != float("inf")]
                summary.append(
                    f"- k={k}: fastquant >= pngquant over black on {sum(f[0] >= p[0] for f, p in cmp)} of "
                    f"{len(cmp)} images, over white on {sum(f[1] >= p[1] for f, p in cmp)} (median difference "
                    f"{fmt(finite_diff(0))} / {fmt(finite_diff(1))} dB where both are finite); the worse of the "
                    f"two composites >= pngquant's on {sum(min(f[:2]) >= min(p[:2]) for f, p in cmp)} of {len(cmp)} "
                    f"(smallest difference {fmt(min(worse, default=None))} dB where finite); bytes "
                    f"fastquant/pngquant median {fmt(median([f[3] / p[3] for f, p in cmp]), 3)}"
                )
    note = "" if pq else "pngquant is not installed: its columns are n/a.\n\n"
    return (
        f"## Alpha (fastquant `compress(path, k)` vs `pngquant --nofs K`, {len(images)} files, "
        f"{len(groups)} distinct pictures)\n\n"
        "Images: `alpha/` and the PngSuite files with alpha (RGBA, LA) or tRNS. Reference: the pixels as "
        'fastquant.io reads them, which for every file here equal Pillow\'s `convert("RGBA")` except two that '
        "Pillow 13 gets wrong (tbbn0g04: 4-bit grey tRNS read as opaque; tbwn0g16: 16-bit grey tRNS read as "
        "fully transparent). pngquant is given those reference pixels as an 8-bit RGBA PNG (no gAMA chunk: "
        "the PngSuite files carry gAMA 1.0, which pngquant converts to sRGB, so its values would not be "
        'comparable); its output is decoded with Pillow `convert("RGBA")`. Over black / over white: PSNR '
        "(dB) of the RGB composite of the straight RGBA over that background, `fastquant.metrics.psnr_over`; "
        "max alpha err: largest |alpha change| over pixels; bytes: the indexed PNG. fq = fastquant, "
        'pq = pngquant. Files with the same pixels share a row; "hard alpha": only 0 and 255.\n\n'
        + note
        + ("\n".join(summary) + "\n\n" if summary else "")
        + "\n\n".join(tables)
        + "\n"
    )
