"""PNGs with a gAMA chunk (and no sRGB or iCCP): convert to sRGB before quantizing, or keep the gAMA?

For each PngSuite ``g*.png`` (gamma 0.35 to 2.5) and palette size, the picture *as a viewer that
honours gAMA shows it* (decoded to linear light with the file's gamma, then encoded as sRGB) is the
reference, and each way of writing the output is shown the same way:

- ``convert``: the input converted to sRGB values first, quantized, written without gAMA (pngquant's way);
- ``keep``: the input quantized as its values are, written with the input's gAMA (a viewer applies it);
- ``drop``: the input quantized as its values are, written without gAMA (what fastquant did before).

It also reports the same for a viewer that ignores gAMA (the reference then is the raw values).

    python bench/gamma.py [PNGSUITE_FOLDER] > bench/results/gamma.md
"""

import glob
import os
import sys

import numpy as np
from PIL import Image

from fastquant import compress


def srgb_encode(linear):
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055) * 255.0


def shown(values, gamma):
    """What a gAMA-honouring viewer shows of uint8 ``values`` with file gamma ``gamma`` (None: sRGB)."""
    v = values.astype(np.float64)
    return v if gamma is None else srgb_encode((v / 255.0) ** (1.0 / gamma))


def psnr(a, b):
    m = float(np.mean((a - b) ** 2))
    return float("inf") if m == 0 else 10 * np.log10(255.0**2 / m)


def psnr_of(mse):
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def main(folder):
    rows = []
    for path in sorted(glob.glob(os.path.join(folder, "g*.png"))):
        with Image.open(path) as im:
            g = im.info["gamma"]
            raw = np.asarray(im.convert("RGB"))
        ref = shown(raw, g)
        converted = np.round(ref).astype(np.uint8)
        for k in (4, 8, 16):
            keep = compress(raw, k).image
            conv = compress(converted, k).image
            rows.append(
                (
                    os.path.basename(path),
                    g,
                    k,
                    psnr(ref, shown(conv, None)),
                    psnr(ref, shown(keep, g)),
                    psnr(ref, shown(keep, None)),
                    psnr(raw.astype(float), shown(conv, None)),
                    psnr(raw.astype(float), keep.astype(float)),
                )
            )
    print("| file | gAMA | k | convert | keep | drop | convert, gAMA ignored | keep or drop, gAMA ignored |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, g, k, *v in rows:
        print(f"| {name} | {g:g} | {k} | " + " | ".join(f"{x:.2f}" for x in v) + " |")
    print()
    for label, col in (("convert", 3), ("keep", 4), ("drop", 5)):
        mse = np.mean([255.0**2 / 10 ** (r[col] / 10) for r in rows])  # 0 for lossless rows
        print(f"- {label}: PSNR of the mean MSE over all {len(rows)} rows, as shown: {psnr_of(mse):.2f} dB")


if __name__ == "__main__":
    main(
        sys.argv[1]
        if len(sys.argv) > 1
        else os.path.join(os.path.dirname(__file__), "..", "..", "shared", "images", "pngsuite")
    )
