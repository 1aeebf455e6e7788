"""`bench.py --shared`: one palette for a folder of photos vs pngquant on a montage of them.

Quality: `python -m fastquant FILES --shared -k K` writes every photo with one palette fitted on all of them;
pngquant (whichever versions are installed: the one on PATH and /usr/bin/pngquant) quantizes a montage of the
same photos (portrait ones turned a quarter, all stacked into one column: the same pixels, each with the same
neighbours) with `--nofs K`, which gives it one palette for all of them too.  Both are scored by the PSNR over
the union of all the pixels (summed squared error of every output against its input, decoded with Pillow).

Time: the `--shared` run against `python -m fastquant FILES -k K` (each file fitted on its own), same -j,
interleaved runs, medians; whole processes, wall time and CPU time (user + system of the process and its workers:
on a machine shared with other work, the CPU seconds move less than the wall seconds).
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from common import median, run_cmd, subprocess_env
from PIL import Image

#: pngquant builds compared, where present: the one beside this Python (pip's pngquant-cli), then Debian's.
PNGQUANTS = (str(Path(sys.executable).parent / "pngquant"), "/usr/bin/pngquant")


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _sq_error(a: np.ndarray, b: np.ndarray) -> float:
    d = a.astype(np.int64) - b
    return float((d * d).sum())


def _psnr(sq: float, n: int) -> float:
    return 10 * np.log10(255.0**2 / (sq / n))


def _version(exe: str) -> str | None:
    path = shutil.which(exe)
    if path is None:
        return None
    out = subprocess.run([path, "--version"], capture_output=True, text=True)
    return f"{path} {out.stdout.strip() or out.stderr.strip()}"


def shared(images: list[Path], k: int = 64, repeat: int = 3) -> str:
    """The `--shared` section of the benchmark (a markdown text)."""
    images = sorted(images)[:12]
    originals = [_rgb(p) for p in images]
    n = sum(a.size for a in originals)
    env = subprocess_env()
    fq = [sys.executable, "-m", "fastquant"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="fqshared-") as tmp:
        tmp = Path(tmp)
        # quality: fastquant --shared, and each file on its own for reference
        for label, extra, folder in (
            (f"fastquant --shared -k {k}", ["--shared"], tmp / "shared"),
            (f"fastquant -k {k} (a palette per file, for reference)", [], tmp / "own"),
        ):
            run_cmd([*fq, *images, "-k", k, "--out-dir", folder, "-q", "-f", *extra], env=env)
            files = [folder / f"{p.stem}-fq{k}.png" for p in images]
            sq = sum(_sq_error(a, _rgb(f)) for a, f in zip(originals, files))
            palettes = set()
            for f in files:
                with Image.open(f) as im:
                    palettes.add(tuple(im.getpalette()))
            one = "yes" if len(palettes) == 1 else f"no ({len(palettes)} palettes)"
            rows.append([label, f"{_psnr(sq, n):.2f}", one])
        # pngquant on a montage of the same pixels
        montage = np.concatenate([a if a.shape[1] >= a.shape[0] else np.rot90(a) for a in originals])
        src = tmp / "montage.png"
        Image.fromarray(montage).save(src)
        for exe in PNGQUANTS:
            version = _version(exe)
            if version is None:
                rows.append([f"{exe} --nofs {k} (montage)", "not installed", ""])
                continue
            out = tmp / f"pq-{len(rows)}.png"
            subprocess.run([shutil.which(exe), "--nofs", "--force", "--output", out, str(k), src], check=True)
            rows.append(
                [f"{version} --nofs {k} on the montage", f"{_psnr(_sq_error(montage, _rgb(out)), n):.2f}", "yes"]
            )
        sizes = {
            name: sum((tmp / name / f"{p.stem}-fq{k}.png").stat().st_size for p in images) for name in ("shared", "own")
        }
        # time: interleaved whole-process runs, and the quantization and the encoding alone in this process
        names = ("shared", "own", "cpu-shared", "cpu-own", "api-shared", "api-own", "enc-shared", "enc-own")
        times: dict[str, list[float]] = {name: [] for name in names}
        for shared_palette in (True, False):  # load this process's kernels before anything is timed
            _api_time(images[:2], k, shared=shared_palette)
        for _ in range(repeat):
            for name, extra in (("shared", ["--shared"]), ("own", [])):
                folder = tmp / f"t-{name}"
                before = _children_cpu()
                times[name].append(run_cmd([*fq, *images, "-k", k, "--out-dir", folder, "-q", "-f", *extra], env=env))
                times[f"cpu-{name}"].append(_children_cpu() - before)
            for name in ("shared", "own"):
                quantize, encode = _api_time(images, k, shared=name == "shared")
                times[f"api-{name}"].append(quantize)
                times[f"enc-{name}"].append(encode)
    fq_shared = float(rows[0][1])
    best_pq = max((float(r[1]) for r in rows[2:] if r[1] not in ("not installed",)), default=None)
    lines = [
        f"## One palette for {len(images)} photos at k={k} (`--shared`)",
        "",
        "| run | union PSNR (dB) | one palette |",
        "|---|---|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
        "",
    ]
    if best_pq is not None:
        lines.append(f"`--shared` minus the best pngquant: {fq_shared - best_pq:+.2f} dB (target: >= +0.2 dB).")
    ts, to = median(times["shared"]), median(times["own"])
    cs, co = median(times["cpu-shared"]), median(times["cpu-own"])
    qs, qo = median(times["api-shared"]), median(times["api-own"])
    es, eo = median(times["enc-shared"]), median(times["enc-own"])
    lines += [
        "",
        f"Time (interleaved, median of {repeat}; target: `--shared` no slower than each file on its own):",
        "",
        "| what | `--shared` | each file on its own | ratio |",
        "|---|---|---|---|",
        f"| whole `python -m fastquant` processes, default -j (read, quantize, SSIM, encode, write) | {ts:.2f} s"
        f" | {to:.2f} s | {ts / to:.2f} |",
        f"| the same processes' CPU time (user + system, workers included) | {cs:.2f} s | {co:.2f} s | {cs / co:.2f} |",
        f"| quantization alone, in one process: `--shared`'s stages (`count(keep=True)`, `merge`, `fit`,"
        f" `compress(palette=)`) vs `compress()` (read, count, fit, map; no encoding) | {qs:.2f} s | {qo:.2f} s"
        f" | {qs / qo:.2f} |",
        f"| encoding alone, in one process: the same images' indexed PNGs (zlib level 9, as written) | {es:.2f} s"
        f" | {eo:.2f} s | {es / eo:.2f} |",
        f"| bytes written (indexed PNG, as the command line writes them by default) | {sizes['shared']}"
        f" | {sizes['own']} | {sizes['shared'] / sizes['own']:.2f} |",
        "",
    ]
    return "\n".join(lines)


def _children_cpu() -> float:
    """User + system seconds of this process's finished children (and theirs, once waited for)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _api_time(images: list[Path], k: int, shared: bool) -> tuple[float, float]:
    """Seconds to quantize every image in this process (warm), without encoding; shared: the stages of a
    `--shared` run (each file counted and kept, the counts merged and fitted, each file mapped).  Then the
    seconds to encode the results as the command line writes them (indexed PNG, zlib level 9).
    """
    import time

    from fastquant import compress
    from fastquant.palette import count, fit, forget_kept, merge

    t = time.perf_counter()
    if shared:
        p = fit(merge([count(path, keep=True) for path in images]), k)
        results = [compress(path, palette=p) for path in images]
        forget_kept()
    else:
        results = [compress(path, k) for path in images]
    quantize = time.perf_counter() - t
    t = time.perf_counter()
    for q in results:
        q.encode(".png")
    return quantize, time.perf_counter() - t
