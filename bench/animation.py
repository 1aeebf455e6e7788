"""Animations: frame quality against Pillow's per-frame median cut, bytes with and without frame deltas,
and the memory of a long animation (issue #11 item 4).  Writes ``bench/results/animation.md``.

The test animations are made from the shared Kodak photos (no animated photo is in the corpus):

* ``pan``: 8 frames of 384x256 panning across kodim05 (768x512): every pixel changes;
* ``sprite``: kodim01 shrunk to 384x256 as a still background, with a 64x64 piece of kodim05
  moving across it over 8 frames: most pixels stay;
* the two animated GIFs of ``../shared/images/odd`` as they are.

Each has 8 different frame durations (the GIFs: their own).  Quality is the mean over frames of
the PSNR of each frame against the source frame (RGB).  fastquant fits one palette for all frames
(the default) or one per frame (``frame_palettes=True``); Pillow quantizes each frame with
``Image.quantize(k)`` (median cut, its default for RGB) with no dithering.

Run: ``python bench/animation.py [--frames 1000 5000]`` (a few minutes; ``--frames`` alone skips the
long animations).
"""

import argparse
import io
import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, SHARED_IMAGES, subprocess_env  # noqa: E402

import fastquant  # noqa: E402

DURATIONS = [40, 80, 120, 60, 100, 140, 50, 200]
IMAGES = Path(os.environ.get("FASTQUANT_IMAGES", SHARED_IMAGES))  # as the tests find the shared corpus


def _kodak(name, size=None):
    im = Image.open(IMAGES / "kodak" / name).convert("RGB")
    return np.asarray(im.resize(size, Image.Resampling.LANCZOS) if size else im)


def pan():
    photo = _kodak("kodim05.png")
    return [photo[32 * i // 2 : 32 * i // 2 + 256, 48 * i : 48 * i + 384].copy() for i in range(8)]


def sprite():
    back = _kodak("kodim01.png", (384, 256))
    piece = _kodak("kodim05.png")[200:264, 300:364]
    frames = []
    for i in range(8):
        f = back.copy()
        x, y = 20 + 40 * i, 40 + 12 * i
        f[y : y + 64, x : x + 64] = piece
        frames.append(f)
    return frames


def apng(frames, durations):
    ims = [Image.fromarray(f) for f in frames]
    buf = io.BytesIO()
    ims[0].save(buf, format="PNG", save_all=True, append_images=ims[1:], duration=durations, loop=0)
    return buf.getvalue()


def source_frames(data):
    """The frames of an encoded animation as Pillow composites them (RGB)."""
    im = Image.open(io.BytesIO(data))
    out = []
    for i in range(im.n_frames):
        im.seek(i)
        out.append(np.asarray(im.convert("RGB")).copy())
    return out


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def mean_psnr(src, out):
    vals = [psnr(a, b) for a, b in zip(src, out)]
    finite = [v for v in vals if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.inf


def gain(a, b):
    """``a - b`` in dB, 0 when both are lossless."""
    if math.isinf(a) and math.isinf(b):
        return "0"
    if math.isinf(b):
        return "Pillow lossless"
    if math.isinf(a):
        return "fastquant lossless"
    return f"{a - b:+.2f}"


def pillow_mediancut(frames, k):
    t = time.perf_counter()
    q = [Image.fromarray(f).quantize(k, dither=Image.Dither.NONE) for f in frames]
    out = [np.asarray(x.convert("RGB")) for x in q]
    buf = io.BytesIO()
    q[0].save(buf, format="GIF", save_all=True, append_images=q[1:], duration=DURATIONS[: len(q)], loop=0)
    return out, time.perf_counter() - t, len(buf.getvalue())


def fq(data, k, **kw):
    exts = (".gif", ".webp") if kw.get("frame_palettes") else (".gif", ".png", ".webp")  # APNG: one palette
    t = time.perf_counter()
    a = fastquant.compress(data, k, **kw)
    sizes = {".gif": len(a.encode(".gif"))}
    seconds = time.perf_counter() - t  # as Pillow's: quantize and write a GIF
    sizes.update({ext: len(a.encode(ext)) for ext in exts[1:]})
    sizes.update({ext + " whole": len(a.encode(ext, deltas=False)) for ext in exts if ext != ".webp"})
    rgb = [img[..., :3] if img.shape[2] == 3 else img[..., :3] for img in a.images()]
    return a, rgb, seconds, sizes


def pillow_writers(a):
    """Bytes and seconds of Pillow's own GIF and APNG writers on the frames of ``a`` (one palette):
    P-mode frames, Pillow cutting its own deltas; against fastquant's writers on the same indices.
    """
    pal = a.palette
    ims = []
    for idx in a.frames:
        im = Image.fromarray(idx, "P")
        im.putpalette(np.ascontiguousarray(pal[:, :3]).tobytes())
        ims.append(im)
    out = {}
    for fmt, ext in (("GIF", ".gif"), ("PNG", ".png")):

        def pillow(fmt=fmt):
            buf = io.BytesIO()
            ims[0].save(buf, format=fmt, save_all=True, append_images=ims[1:], duration=a.durations, loop=0)
            return len(buf.getvalue())

        def ours(ext=ext):
            return len(a.encode(ext))

        # Median of 5 runs each, interleaved: single runs of a few milliseconds are noise on a shared machine.
        times = {pillow: [], ours: []}
        for _ in range(5):
            for fn in times:
                t = time.perf_counter()
                fn()
                times[fn].append(time.perf_counter() - t)
        out[ext] = (ours(), float(np.median(times[ours])), pillow(), float(np.median(times[pillow])))
    return out


_CHILD = textwrap.dedent(
    """
    import io, sys, time
    import numpy as np
    from PIL import Image
    import fastquant

    path, ext = sys.argv[1], sys.argv[2]
    warm = [Image.fromarray((np.arange(64 * 64).reshape(64, 64) * (i + 1) % 251).astype(np.uint8)) for i in range(3)]
    buf = io.BytesIO()
    warm[0].save(buf, format="GIF", save_all=True, append_images=warm[1:], duration=50)
    fastquant.compress(buf.getvalue(), 64).encode(ext)

    def status(key):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))

    # The peak is measured from here: Linux resets it to what is resident now (the warm-up's
    # own peak, compiling or loading kernels, must not hide this run's).
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = status("VmRSS:")
    t = time.perf_counter()
    a = fastquant.compress(path, 64)
    n = len(a.encode(ext))
    t = time.perf_counter() - t
    print(a.n_frames, a.width, a.height, status("VmHWM:") - before, n, t, a.stats.mean_frame_psnr)
    """
)


def long_animation(n, path):
    s = 48
    yy, xx = np.mgrid[:s, :s]
    pal = np.random.default_rng(0).integers(0, 256, 768, dtype=np.uint8).tobytes()
    ims = []
    for i in range(n):
        a = ((xx + yy * 3 + i * 7) % 64).astype(np.uint8)
        a[(i * 5) % s, :] = 200 + i % 50
        im = Image.fromarray(a, "P")
        im.putpalette(pal)
        ims.append(im)
    ims[0].save(path, save_all=True, append_images=ims[1:], duration=[20 + 10 * (i % 3) for i in range(n)], loop=0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--frames", type=int, nargs="*", default=[1000, 5000], help="frames of the long animations (none: skip)"
    )
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "animation.md"))
    args = ap.parse_args()
    cases = [("pan", apng(pan(), DURATIONS)), ("sprite", apng(sprite(), DURATIONS))]
    for name in ("traffic_light.gif", "animation_patches.gif"):
        cases.append((name, (IMAGES / "odd" / name).read_bytes()))
    fastquant.compress(cases[0][1], 16).encode(".gif")  # compile (or load) the kernels first

    lines = [
        "# Animations: frame quality, frame deltas, long animations",
        "",
        f"`python bench/animation.py --frames {' '.join(map(str, args.frames))}` (the machine was shared with"
        " other jobs: times are",
        "indicative, as ratios measured back to back). See the script's docstring for the animations.",
        "",
        "## Frame quality against Pillow's per-frame median cut",
        "",
        "Mean PSNR over frames (dB) of each frame against its source; Pillow: `Image.quantize(k)` per frame,",
        "no dithering. fastquant: one palette for all frames (default), or one per frame (`--frame-palettes`).",
        "Time: quantize every frame and write a GIF, fastquant over Pillow. Where both are lossless (a GIF of",
        "fewer colours than k), the gain is 0.",
        "",
        "| animation | frames | k | Pillow median cut | fastquant shared | gain | fastquant per frame | gain |"
        " fastquant s / Pillow s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    size_lines = [
        "## Bytes: frame deltas",
        "",
        "fastquant at k=256, one palette. *whole*: every frame written whole (`encode(ext, deltas=False)`);",
        "*deltas* (the default): each frame cut to the box of changed pixels, unchanged pixels inside it",
        "written as the transparent entry when that compresses smaller. Pillow: its GIF of the per-frame median",
        "cut (Pillow crops each frame to the changed box itself).",
        "",
        "*k=255*: the same with 255 colours, which leaves a GIF room for its transparent entry.",
        "",
        "| animation | input bytes | GIF whole | GIF deltas | GIF deltas k=255 | APNG whole | APNG deltas |"
        " WebP (lossless) | Pillow GIF |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, data in cases:
        src = source_frames(data)
        for k in (64, 256):
            ref, t_pil, pil_gif = pillow_mediancut(src, k)
            a, out, t_fq, sizes = fq(data, k)
            b, out_pf, _, _ = fq(data, k, frame_palettes=True)
            p_pil, p_fq, p_pf = mean_psnr(src, ref), mean_psnr(src, out), mean_psnr(src, out_pf)
            lines.append(
                f"| {name} | {len(src)} | {k} | {p_pil:.2f} | {p_fq:.2f} | {gain(p_fq, p_pil)} | {p_pf:.2f} |"
                f" {gain(p_pf, p_pil)} | {t_fq / t_pil:.1f} |"
            )
            print(lines[-1], flush=True)
            if k == 256:
                gif255 = len(fastquant.compress(data, 255).encode(".gif"))
                size_lines.append(
                    f"| {name} | {len(data)} | {sizes['.gif whole']} | {sizes['.gif']} | {gif255} |"
                    f" {sizes['.png whole']} | {sizes['.png']} | {sizes['.webp']} | {pil_gif} |"
                )
                print(size_lines[-1], flush=True)
    lines += [""] + size_lines
    lines += [
        "",
        "## Writers: fastquant's against Pillow's, on the same frames",
        "",
        "The frames of each animation at k=256 (one palette, its indices already mapped), written by fastquant",
        "(`framewrite.py`: GIF through Pillow's LZW coder frame by frame, APNG by `png.py`) and by Pillow's",
        "`save_all` from P-mode frames (Pillow cuts changed boxes itself, and holds every frame). Times: median",
        "of 5 interleaved runs, fastquant over Pillow. fastquant's own writers are used because they take the",
        "frames one at a time (Pillow's `save_all` holds them all, which a long animation cannot afford), and",
        "they are as small or smaller. fastquant's APNG deflates at level 9 (as its still PNGs), after ranking",
        "each frame with and without the transparent entry at level 1: on a small animation it can be many",
        "times slower than Pillow's (level 6), by milliseconds.",
        "",
        "| animation | GIF fastquant | GIF Pillow | time ratio | APNG fastquant | APNG Pillow | time ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, data in cases:
        a = fastquant.compress(data, 256)
        if a.palette.shape[1] == 4 or len(a.palette) > 256:
            continue
        w = pillow_writers(a)
        g, p = w[".gif"], w[".png"]
        lines.append(f"| {name} | {g[0]} | {g[2]} | {g[1] / g[3]:.1f} | {p[0]} | {p[2]} | {p[1] / p[3]:.1f} |")
        print(lines[-1], flush=True)
    if args.frames:
        lines += [
            "",
            f"## Long animations: {' and '.join(map(str, args.frames))} frames of 48x48",
            "",
            "A GIF of a moving pattern, compressed at k=64 in a fresh process. The peak resident memory (VmHWM)",
            "is reset after a warm-up on a small animation (Linux `/proc/self/clear_refs`), so the growth is this",
            "run's. Frames are decoded twice (histogram pass, mapping pass), one at a time; the output is held",
            "whole (twice while joined). What remains is mostly the histogram's pixels: every pixel up to 2 x 2**21",
            "in all (the 1000 frames are counted whole), an even sample of about 2**21 above that, as for one large",
            "image. It is bounded, whatever the number of frames.",
            "",
            "| output | frames | all frames as RGBA | peak growth | of which output x2 | rest | seconds | mean PSNR |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for n_frames in args.frames:
            path = ROOT / "bench" / "results" / f".long-{os.getpid()}.gif"
            long_animation(n_frames, path)
            try:
                for ext in (".gif", ".png", ".webp"):
                    r = subprocess.run(
                        [sys.executable, "-c", _CHILD, str(path), ext],
                        capture_output=True,
                        text=True,
                        env=subprocess_env(),
                        check=True,
                    )
                    n, w, h, growth, nbytes, secs, mp = r.stdout.split()
                    n, w, h, growth, nbytes = int(n), int(w), int(h), int(growth), int(nbytes)
                    mib = 2**20
                    lines.append(
                        f"| {ext} | {n} | {n * w * h * 4 / mib:.1f} MiB | {growth / mib:.1f} MiB |"
                        f" {2 * nbytes / mib:.1f} MiB | {(growth - 2 * nbytes) / mib:.1f} MiB |"
                        f" {float(secs):.1f} | {float(mp):.2f} |"
                    )
                    print(lines[-1], flush=True)
            finally:
                path.unlink()
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
