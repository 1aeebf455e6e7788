"""--equal-quality: fastquant under a byte budget of a fraction of pngquant's file, photo by photo.

For each photo: `pngquant --nofs 256` (3.0.3, and Debian's 2.17 when installed) gives the reference bytes,
PSNR and SSIM; fastquant then runs with `max_bytes` = 0.85x (the target) and 0.80x (the goal) of the 3.0.3
file, with its defaults under a budget and with the mapping in plain sRGB (`luma_stretch=1`), and, when
pyoxipng is installed, the default 0.85x file after oxipng's lossless pass and a 0.80x search with
`optimize=True` (sizes counted after the pass).
Also a rate-distortion curve (PSNR and SSIM vs bytes, summed over the photos) of pngquant and of fastquant
(written by its own encoder, as under a budget) fitted and mapped in sRGB and with the budget's luma stretch,
over k.  SSIM: fastquant.metrics.ssim (Gaussian window 1.5 on BT.601 luma); PSNR over R, G, B.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import median
from PIL import Image
from report import fmt, md_table

#: pngquant 3 comes with the bench extra (in the running environment); Debian ships 2.17.
PNGQUANT = {"3.0.3": Path(sys.executable).parent / "pngquant", "2.17": Path("/usr/bin/pngquant")}
#: (fraction of pngquant's bytes, label, compress() keywords) run for every photo: 0.85x is the target,
#: 0.80x the goal.
VARIANTS = (
    (0.85, "default", {}),
    (0.85, "luma_stretch=1", {"luma_stretch": 1.0}),
    (0.80, "default", {}),
    (0.80, "optimize=True", {"optimize": True}),  # with pyoxipng installed (the optimize extra)
)
CURVE_K = (64, 96, 128, 192, 256)
#: The curves' fastquant settings: sRGB mapping, and the budget's luma stretch.
CURVE_STRETCHES = (1.0, 1.6)


def _pngquant(exe: Path, src: Path, k: int, tmp: Path) -> bytes | None:
    out = tmp / f"pq-{src.stem}-{k}.png"
    proc = subprocess.run([str(exe), "--nofs", "--force", "--output", str(out), str(k), str(src)], capture_output=True)
    return out.read_bytes() if proc.returncode == 0 and out.exists() else None


def _scores(original: np.ndarray, data: bytes) -> tuple[float, float]:
    from fastquant import metrics

    with Image.open(io.BytesIO(data)) as im:
        out = np.asarray(im.convert("RGB"))
    mse = float(np.mean((original.astype(np.float64) - out) ** 2))
    return metrics.psnr_from_mse(mse), metrics.ssim(original, out)


def _oxipng(data: bytes) -> bytes | None:
    from fastquant import optimize
    from fastquant.errors import OptionError

    try:
        return optimize.lossless(data)  # what compress(optimize=True) writes
    except OptionError:
        return None


def _pngquant_exes() -> dict[str, Path]:
    found = {}
    for version, exe in PNGQUANT.items():
        if not exe.exists():
            which = shutil.which("pngquant")
            exe = Path(which) if which and version == "3.0.3" else exe
        if exe.exists():
            found[version] = exe
    return found


def equal_quality(images: list[Path], quick: bool, out_dir: Path) -> str:
    """The equal-quality table (and equal-quality-rd.png); returns the markdown section."""
    from fastquant import compress
    from fastquant.errors import OptionError
    from fastquant.optimize import check

    try:
        check()
        variants = VARIANTS
    except OptionError:
        variants = tuple(v for v in VARIANTS if not v[2].get("optimize"))
    exes = _pngquant_exes()
    if "3.0.3" not in exes:
        return "## Equal quality\n\npngquant not found.\n"
    ref = exes["3.0.3"]
    rows, summary, curve = [], {}, {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for src in images:
            with Image.open(src) as im:
                original = np.asarray(im.convert("RGB"))
            pq = _pngquant(ref, src, 256, tmp)
            pq_psnr, pq_ssim = _scores(original, pq)
            old = _pngquant(exes["2.17"], src, 256, tmp) if "2.17" in exes else None
            row = [src.stem, len(pq), fmt(pq_psnr), fmt(pq_ssim, 4), len(old) if old else "n/a"]
            for fraction, label, kw in variants:
                budget = int(len(pq) * fraction)
                t = time.perf_counter()
                q = compress(original, 256, max_bytes=budget, **kw)
                seconds = time.perf_counter() - t
                data = q.encode(".png")
                psnr, ssim = _scores(original, data)
                ok = len(data) <= budget and psnr >= pq_psnr and ssim >= pq_ssim - 0.001
                row += [len(data), q.stats.n_colors, fmt(psnr), fmt(ssim, 4), "yes" if ok else "no"]
                s = summary.setdefault((fraction, label), {"fits": 0, "psnr": 0, "ssim": 0, "all": 0, "seconds": []})
                s["fits"] += len(data) <= budget
                s["psnr"] += psnr >= pq_psnr
                s["ssim"] += ssim >= pq_ssim - 0.001
                s["all"] += ok
                s["seconds"].append(seconds)
                if (fraction, label) == VARIANTS[0][:2]:
                    packed = _oxipng(data)
                    row.append(len(packed) if packed else "n/a")
                    if packed:
                        p2, s2 = _scores(original, packed)
                        assert (p2, s2) == (psnr, ssim)  # lossless
                        opt = summary.setdefault(("optimize", ""), {"fits": 0, "psnr": 0, "ssim": 0, "all": 0})
                        opt["fits"] += len(packed) <= budget
                        opt["psnr"] += psnr >= pq_psnr
                        opt["ssim"] += ssim >= pq_ssim - 0.001
                        opt["all"] += ok
            rows.append(row)
            if not quick:
                for k in CURVE_K:
                    pk = _pngquant(ref, src, k, tmp)
                    add = curve.setdefault(("pngquant 3.0.3", k), [0, [], []])
                    add[0] += len(pk)
                    p, s_ = _scores(original, pk)
                    add[1].append(p)
                    add[2].append(s_)
                    for stretch in CURVE_STRETCHES:
                        q = compress(original, k, luma_stretch=stretch)
                        q.png_level = None  # the own encoder, as under a budget
                        data = q.encode(".png")
                        add = curve.setdefault((f"fastquant luma_stretch={stretch:g}", k), [0, [], []])
                        add[0] += len(data)
                        p, s_ = _scores(original, data)
                        add[1].append(p)
                        add[2].append(s_)
    head = ["photo", "pngquant bytes", "PSNR", "SSIM", "2.17 bytes"]
    for fraction, label, _ in variants:
        tag = f"{fraction:.2f}x {label}"
        head += [f"{tag} bytes", "k", "PSNR", "SSIM", "met"]
        if (fraction, label) == VARIANTS[0][:2]:
            head.append("optimize=True bytes")
    n = len(images)
    lines = [
        f"- {fraction:.2f}x, {label}: fits {s['fits']}/{n}, PSNR >= pngquant {s['psnr']}/{n}, "
        f"SSIM >= pngquant - 0.001 {s['ssim']}/{n}, all three {s['all']}/{n}; median search time "
        f"{fmt(median(s['seconds']), 2)} s"
        for (fraction, label), s in summary.items()
        if fraction != "optimize"
    ]
    if ("optimize", "") in summary:
        s = summary["optimize", ""]
        lines.append(f"- 0.85x default + optimize=True (oxipng): all three {s['all']}/{n} (the same pixels)")
    text = (
        "## Equal quality: fastquant under a budget of a fraction of pngquant --nofs 256's bytes\n\n"
        + md_table(head, rows)
        + "\n\nBudget met and quality at least pngquant's (PSNR >= and SSIM >= minus 0.001):\n\n"
        + "\n".join(lines)
        + "\n"
    )
    if curve:
        text += "\n" + _curve(curve, out_dir)
    return text


def _curve(curve: dict, out_dir: Path) -> str:
    tools = list(dict.fromkeys(t for t, _ in curve))
    rows = [
        [tool, k, curve[tool, k][0], fmt(median(curve[tool, k][1])), fmt(median(curve[tool, k][2]), 4)]
        for tool in tools
        for k in CURVE_K
        if (tool, k) in curve
    ]
    text = "### Rate-distortion over k (bytes summed over the photos; medians of PSNR and SSIM)\n\n" + md_table(
        ["tool", "k", "bytes", "PSNR", "SSIM"], rows
    )
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return text + "\n"
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for tool in tools:
        ks = [k for k in CURVE_K if (tool, k) in curve]
        x = [curve[tool, k][0] / 1e6 for k in ks]
        for ax, i in zip(axes, (1, 2)):
            ax.plot(x, [median(curve[tool, k][i]) for k in ks], marker="o", label=tool)
    for ax, what in zip(axes, ("PSNR dB", "SSIM")):
        ax.set_xlabel("MB over the photos")
        ax.set_ylabel(f"{what} (median)")
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Rate-distortion, k = {', '.join(map(str, CURVE_K))}")
    fig.tight_layout()
    fig.savefig(out_dir / "equal-quality-rd.png", dpi=110)
    plt.close(fig)
    return text + "\nPlot: equal-quality-rd.png\n"
