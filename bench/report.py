"""Markdown tables, the CSV file and the rate-distortion plot for the tool comparison."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path

from common import Result, median

REFERENCE = "fastquant"
PNGQUANT = "pngquant"
PROTOTYPE = "prototype"


# --------------------------------------------------------------------------- formatting
def fmt(x, digits=2, suffix="") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    if isinstance(x, int):
        return f"{x}{suffix}"
    return f"{x:.{digits}f}{suffix}"


def fint(x) -> str:
    return "n/a" if x is None else str(round(x))


def fsec(x) -> str:
    return fmt(x, 4 if x is not None and x < 10 else 2)


def md_table(headers, rows, right=None) -> str:
    """A GitHub markdown table; columns in `right` (default: all but the first) are right-aligned."""
    right = set(range(1, len(headers))) if right is None else set(right)
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---:" if i in right else "---" for i in range(len(headers))) + "|",
    ]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


# --------------------------------------------------------------------------- per-image / overall
def _by_key(results):
    return {(r.image, r.tool, r.k): r for r in results}


def ratios(results: list[Result]) -> dict:
    """(image, tool, k) -> (time ratio to fastquant, bytes ratio to fastquant)."""
    idx = _by_key(results)
    out = {}
    for r in results:
        ref = idx.get((r.image, REFERENCE, r.k))
        out[(r.image, r.tool, r.k)] = (ratio(r.seconds, ref and ref.seconds), ratio(r.bytes, ref and ref.bytes))
    return out


HEADERS = [
    "tool",
    "k",
    "seconds",
    "MSE",
    "PSNR",
    "SSIM",
    "bytes",
    "bytes/px",
    "colours",
    "time ÷ fastquant",
    "bytes ÷ fastquant",
]


def _row(tool, k, seconds, mse, psnr, ssim, nbytes, bpp, colours, t_ratio, b_ratio):
    return [
        tool,
        k,
        fsec(seconds),
        fmt(mse),
        fmt(psnr),
        fmt(ssim, 4),
        fint(nbytes),
        fmt(bpp, 3),
        fint(colours),
        fmt(t_ratio),
        fmt(b_ratio),
    ]


def per_image_tables(results: list[Result]) -> str:
    rat = ratios(results)
    parts = []
    for image in dict.fromkeys(r.image for r in results):
        rows = [r for r in results if r.image == image]
        body = [
            _row(
                r.tool,
                r.k,
                r.seconds,
                r.mse,
                r.psnr,
                r.ssim,
                r.bytes,
                r.bytes_per_px,
                r.colours,
                *rat[(r.image, r.tool, r.k)],
            )
            for r in rows
        ]
        parts.append(f"### {image} ({rows[0].pixels / 1e6:.2f} MP)\n\n" + md_table(HEADERS, body, right=range(1, 11)))
    return "\n\n".join(parts)


def overall_table(results: list[Result]) -> str:
    rat = ratios(results)
    groups = defaultdict(list)
    for r in results:
        if r.seconds is not None:
            groups[(r.tool, r.k)].append(r)
    body = []
    for (tool, k), rs in groups.items():
        body.append(
            [
                *_row(
                    tool,
                    k,
                    median(r.seconds for r in rs),
                    median(r.mse for r in rs),
                    median(r.psnr for r in rs),
                    median(r.ssim for r in rs),
                    median(r.bytes for r in rs),
                    median(r.bytes_per_px for r in rs),
                    median(r.colours for r in rs),
                    median(rat[(r.image, tool, k)][0] for r in rs),
                    median(rat[(r.image, tool, k)][1] for r in rs),
                ),
                len(rs),
            ]
        )
    return "Medians over images (ratios: median of the per-image ratios).\n\n" + md_table(
        HEADERS + ["images"], body, right=range(1, 12)
    )


def target_lines(results: list[Result]) -> str:
    """fastquant vs the prototype and vs pngquant (--nofs --speed 4), per k."""
    idx = _by_key(results)
    images = list(dict.fromkeys(r.image for r in results))
    lines = []
    for k in sorted({r.k for r in results}):
        fq = {i: idx.get((i, REFERENCE, k)) for i in images}
        fq = {i: r for i, r in fq.items() if r and r.seconds is not None}
        if not fq:
            continue
        lines.append(f"**k = {k}**\n")
        proto = {i: idx[(i, PROTOTYPE, k)] for i in fq if idx.get((i, PROTOTYPE, k)) and idx[(i, PROTOTYPE, k)].seconds}
        if proto:
            # The target compares compress() (read + quantize; the prototype writes nothing
            # comparable); the whole job with the PNG write is shown beside it.
            speed = {i: p.seconds / fq[i].stages.get("compress", fq[i].seconds) for i, p in proto.items()}
            whole = {i: p.seconds / fq[i].seconds for i, p in proto.items()}
            mse = {i: ratio(fq[i].mse, p.mse) for i, p in proto.items()}
            worst_speed, worst_mse = min(speed, key=speed.get), max(mse, key=lambda i: mse[i] or 0)
            runs = min(p.runs for p in proto.values())
            lines.append(
                f"- fastquant vs prototype (sklearn KMeans, {len(proto)} images, prototype: median of "
                f"{runs} runs): "
                f"speed-up of compress() min {speed[worst_speed]:.1f}x ({worst_speed}), "
                f"median {median(speed.values()):.1f}x (with the PNG write: min "
                f"{min(whole.values()):.1f}x, median {median(whole.values()):.1f}x); "
                f"MSE ratio fastquant/prototype max {fmt(mse[worst_mse], 3)} ({worst_mse}), "
                f"median {fmt(median(mse.values()), 3)}"
            )
        png = {i: idx[(i, PNGQUANT, k)] for i in fq if idx.get((i, PNGQUANT, k)) and idx[(i, PNGQUANT, k)].seconds}
        if png:
            t = {i: fq[i].seconds / p.seconds for i, p in png.items()}
            d = {i: fq[i].psnr - p.psnr for i, p in png.items()}
            b = {i: ratio(fq[i].bytes, p.bytes) for i, p in png.items()}
            lines.append(
                f"- time fastquant/pngquant (pngquant --nofs --speed 4, {len(png)} images): median "
                f"{median(t.values()):.2f}, max {max(t.values()):.2f}; per image: "
                + ", ".join(f"{i} {v:.2f}" for i, v in t.items())
            )
            worst = min(d, key=d.get)
            lines.append(
                f"- PSNR fastquant − pngquant: min {d[worst]:+.2f} dB ({worst}), median {median(d.values()):+.2f} dB"
            )
            lines.append(
                f"- bytes fastquant/pngquant: median {fmt(median(b.values()), 3)}, "
                f"max {fmt(max(v for v in b.values() if v is not None), 3)}"
            )
        pairs = [(idx.get((i, "fastquant-fs", k)), idx.get((i, "pngquant-dither", k))) for i in images]
        pairs = [(f, p) for f, p in pairs if f and p and f.ssim is not None and p.ssim is not None]
        if pairs:
            wins = sum(f.ssim >= p.ssim for f, p in pairs)
            b = [ratio(f.bytes, p.bytes) for f, p in pairs]
            lines.append(
                f"- dithered: SSIM fastquant-fs >= pngquant (default, dithered) on {wins} of {len(pairs)} "
                f"images; SSIM difference median {median(f.ssim - p.ssim for f, p in pairs):+.4f}; "
                f"bytes fastquant-fs/pngquant median {fmt(median(b), 3)}, max {fmt(max(b), 3)}"
            )
        lines.append("")
    return "\n".join(lines).rstrip()


def stage_table(results: list[Result]) -> str:
    fq = [r for r in results if r.tool == REFERENCE and r.seconds is not None]
    if not fq:
        return ""
    names = list(dict.fromkeys(n for r in fq for n in r.stages if n != "compress"))
    body = [
        [
            r.image,
            r.k,
            fsec(r.seconds),
            fsec(r.stages.get("compress")),
            *(fsec(r.stages.get(n)) for n in names),
            fsec(sum(r.stages.get(n) or 0 for n in names)),
            fmt(r.iterations),
        ]
        for r in fq
    ]
    return md_table(["image", "k", "total (timed)", "compress()", *names, "sum of stages", "iterations"], body)


# --------------------------------------------------------------------------- files
CSV_FIELDS = [
    "image",
    "pixels",
    "tool",
    "k",
    "seconds",
    "runs",
    "mse",
    "psnr",
    "ssim",
    "bytes",
    "bytes_per_px",
    "colours",
    "time_ratio_fastquant",
    "bytes_ratio_fastquant",
    "iterations",
    "stages",
    "note",
]


def write_csv(results: list[Result], path: Path) -> None:
    rat = ratios(results)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_FIELDS)
        for r in results:
            t_ratio, b_ratio = rat[(r.image, r.tool, r.k)]
            stages = ";".join(f"{n}={v:.6f}" for n, v in r.stages.items() if v is not None)
            w.writerow(
                [
                    r.image,
                    r.pixels,
                    r.tool,
                    r.k,
                    r.seconds,
                    r.runs,
                    r.mse,
                    r.psnr,
                    r.ssim,
                    r.bytes,
                    r.bytes_per_px,
                    r.colours,
                    t_ratio,
                    b_ratio,
                    r.iterations,
                    stages,
                    r.note,
                ]
            )


def plot_rate_distortion(results: list[Result], path: Path) -> bool:
    """PSNR vs bytes/px (medians over images), one line per tool over k. False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7, 5))
    for tool in dict.fromkeys(r.tool for r in results):
        pts = []
        for k in sorted({r.k for r in results if r.tool == tool}):
            rs = [r for r in results if r.tool == tool and r.k == k]
            x, y = median(r.bytes_per_px for r in rs), median(r.psnr for r in rs)
            if x is not None and y is not None:
                pts.append((x, y, k))
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=tool)
            for x, y, k in pts:
                ax.annotate(str(k), (x, y), textcoords="offset points", xytext=(3, 3), fontsize=7)
    ax.set_xlabel("bytes per pixel (median over images)")
    ax.set_ylabel("PSNR dB (median over images)")
    ax.set_title("Rate-distortion (labels: k)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
