"""The --quality section of bench.py: the quality gaps of issue #15 item 4, each a markdown section.

- ``prototype_mse``: fastquant's default ``compress(path, 256)`` against the scikit-learn prototype
  (KMeans(n_clusters=256, random_state=42) on all pixels as float64, its centres rounded), per photo:
  MSE ratio, and compress() seconds (median of a few runs, warm).
- ``perceptual``: without dithering, fastquant's default against libimagequant (the ``imagequant``
  package, ``dithering_level=0``) at several k: PSNR, SSIM (fastquant.metrics, on luma) and PNG bytes per
  photo, and medians.
- ``alpha_composites``: the alpha images at k=256 and 64 against ``pngquant --nofs`` (extras.alpha), with
  the worse of the two composites (over black, over white) compared.

libimagequant is GPL: it is a bench extra only, never imported by the package.
"""

from __future__ import annotations

import io
import statistics
import sys
import time

import numpy as np
from common import Case, decode
from PIL import Image
from report import fmt, fsec, md_table

PROTOTYPE_K = 256
PERCEPTUAL_KS = (16, 64, 256)
ALPHA_COMPOSITE_KS = (256, 64)


def _compress_timed(path, k, repeat):
    """compress(path, k) after one untimed run; (result, median seconds of ``repeat`` runs)."""
    from fastquant import compress

    compress(path, k)
    seconds = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        q = compress(path, k)
        seconds.append(time.perf_counter() - t0)
    return q, statistics.median(seconds)


def prototype_fit(img: np.ndarray, k: int) -> np.ndarray:
    """The prototype's picture: KMeans(k, random_state=42) on all pixels (float64), centres rounded."""
    from sklearn.cluster import KMeans

    pixels = img.reshape(-1, 3).astype(float)
    km = KMeans(n_clusters=k, random_state=42).fit(pixels)
    return np.clip(np.rint(km.cluster_centers_[km.labels_]), 0, 255).astype(np.uint8).reshape(img.shape)


def prototype_mse(images, repeat: int = 3) -> str:
    """MSE of fastquant's default compress() over the prototype's, per photo at k=256."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        return "## MSE against the prototype\n\nscikit-learn is not installed (pip install -e .[bench]).\n"
    from fastquant import metrics

    rows, ratios = [], []
    for path in images:
        case = Case.load(path)
        if case.mode != "RGB":
            continue
        print(f"  prototype {case.name} ...", file=sys.stderr, flush=True)
        proto = metrics.mse(case.original, prototype_fit(case.original, PROTOTYPE_K))
        q, seconds = _compress_timed(path, PROTOTYPE_K, repeat)
        mse = metrics.mse(case.original, q.image)
        ratios.append(mse / proto)
        rows.append([case.name, fmt(mse, 4), fmt(proto, 4), fmt(mse / proto, 4), q.stats.iterations, fsec(seconds)])
    return (
        f"## MSE against the prototype (k={PROTOTYPE_K}, default settings)\n\n"
        "fastquant: `compress(path, 256)` with its defaults, in-process and warm (median of "
        f"{repeat} runs after one untimed run). Prototype: scikit-learn `KMeans(n_clusters=256, random_state=42)` "
        "on all pixels as float64, centres rounded to uint8 (fitted once, not timed). MSE: fastquant.metrics.mse "
        "against the Pillow decode.\n\n"
        f"- MSE ratio fastquant/prototype: max {fmt(max(ratios), 4)}, median {fmt(statistics.median(ratios), 4)}; "
        f"<= 1.00 on {sum(r <= 1.0 for r in ratios)} of {len(ratios)} photos\n\n"
        + md_table(["image", "MSE fastquant", "MSE prototype", "ratio", "iterations", "compress() s"], rows)
        + "\n"
    )


def _imagequant(img: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    """libimagequant without dithering: the RGB picture and the bytes of its indexed PNG."""
    import imagequant

    out = imagequant.quantize_pil_image(Image.fromarray(img).convert("RGBA"), dithering_level=0.0, max_colors=k)
    buf = io.BytesIO()
    out.save(buf, format="PNG", optimize=True)
    return np.asarray(out.convert("RGB")), buf.tell()


def perceptual(images, ks=PERCEPTUAL_KS) -> str:
    """fastquant's default vs libimagequant, neither dithered: PSNR, SSIM and bytes at each k."""
    try:
        import imagequant  # noqa: F401
    except ImportError:
        return "## Perceptual quality against libimagequant\n\nThe `imagequant` package is not installed.\n"
    from fastquant import compress, metrics

    per_k = {k: [] for k in ks}
    for path in images:
        img = decode(path, "RGB")
        for k in ks:
            print(f"  perceptual {path.stem} k={k} ...", file=sys.stderr, flush=True)
            q = compress(img, k)
            liq, liq_bytes = _imagequant(img, k)
            per_k[k].append(
                (
                    path.stem,
                    metrics.psnr(img, q.image),
                    metrics.ssim(img, q.image),
                    len(q.encode(".png")),
                    metrics.psnr(img, liq),
                    metrics.ssim(img, liq),
                    liq_bytes,
                )
            )
    summary, tables = [], []
    for k in ks:
        r = per_k[k]

        def med(i, r=r):
            return statistics.median(x[i] for x in r)

        summary.append(
            [
                k,
                fmt(med(1)),
                fmt(med(4)),
                fmt(med(2), 4),
                fmt(med(5), 4),
                f"{sum(x[2] >= x[5] for x in r)}/{len(r)}",
                f"{sum(x[1] > x[4] for x in r)}/{len(r)}",
                fmt(statistics.median(x[3] / x[6] for x in r), 3),
            ]
        )
        tables.append(
            f"### k={k}\n\n"
            + md_table(
                ["image", "PSNR fq", "PSNR liq", "SSIM fq", "SSIM liq", "bytes fq", "bytes liq"],
                [[x[0], fmt(x[1]), fmt(x[4]), fmt(x[2], 4), fmt(x[5], 4), x[3], x[6]] for x in r],
            )
        )
    return (
        "## Perceptual quality against libimagequant (no dithering)\n\n"
        "fastquant: `compress(img, k)` with its defaults. liq: the `imagequant` package (libimagequant), "
        "`quantize_pil_image(img, dithering_level=0, max_colors=k)`, saved with Pillow `optimize=True`. "
        "SSIM: fastquant.metrics.ssim (Gaussian window 1.5, on BT.601 luma); PSNR over RGB.\n\n"
        + md_table(
            [
                "k",
                "PSNR fq (median)",
                "PSNR liq",
                "SSIM fq (median)",
                "SSIM liq",
                "SSIM fq >= liq",
                "PSNR fq > liq",
                "bytes fq/liq (median)",
            ],
            summary,
        )
        + "\n\n"
        + "\n\n".join(tables)
        + "\n"
    )


def alpha_composites(shared) -> str:
    """extras.alpha at k=256 and 64: both composites against pngquant's, and the worse of the two."""
    import extras

    return extras.alpha(shared, False, ks=ALPHA_COMPOSITE_KS)
