"""How pngquant maps pixels to its palette: python bench/mapping_probe.py PHOTO.png [...].

For each photo, `pngquant --nofs 256` (3.0.3 from the bench extra, and /usr/bin/pngquant when it is another
version) is run; its output's indices and PLTE are decoded, and for every pixel the nearest palette entry is found
by brute force under several metrics: sRGB, libimagequant's channel weights (R 0.5, G 1, B 0.45), the same on
values raised to the power 1.1 (its gamma 0.45455 internally) and on other powers.  Printed: the share of pixels
whose entry in pngquant's file is that nearest one, the file's PSNR and SSIM (fastquant.metrics.ssim, on luma),
those of its own palette remapped to the sRGB-nearest entries, and the luma and RGB mean squared errors of both.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from fastquant import metrics

PNGQUANTS = [Path(sys.executable).parent / "pngquant", Path("/usr/bin/pngquant")]
LUMA = np.array([0.299, 0.587, 0.114])
#: name -> (channel weights, power of the values in 0..1)
METRICS = {
    "sRGB": ((1.0, 1.0, 1.0), 1.0),
    "liq weights": ((0.5, 1.0, 0.45), 1.0),
    "liq weights, power 1.1": ((0.5, 1.0, 0.45), 1 / 0.9),
    "liq weights, power 0.9": ((0.5, 1.0, 0.45), 0.9),
    "power 2.2": ((1.0, 1.0, 1.0), 2.2),
}


def nearest(colors: np.ndarray, palette: np.ndarray, weights, power) -> np.ndarray:
    """Index of the nearest entry of every colour under channel weights on (value / 255) ** power."""

    def f(a):
        return (a / 255.0) ** power * np.array(weights)

    p = f(palette.astype(np.float64))
    out = np.empty(len(colors), np.int64)
    for lo in range(0, len(colors), 4096):
        c = f(colors[lo : lo + 4096].astype(np.float64))
        out[lo : lo + 4096] = ((c[:, None, :] - p[None]) ** 2).sum(axis=2).argmin(axis=1)
    return out


def probe(exe: Path, src: Path, tmp: Path) -> None:
    out = tmp / "pq.png"
    subprocess.run([str(exe), "--nofs", "--force", "--output", str(out), "256", str(src)], check=True)
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True).stdout.split()[0]
    with Image.open(src) as im:
        original = np.asarray(im.convert("RGB"))
    with Image.open(out) as im:
        idx = np.asarray(im).astype(np.int64)
        palette = np.array(im.getpalette("RGB")).reshape(-1, 3)[: idx.max() + 1]
    flat = original.reshape(-1, 3)
    colors, inverse = np.unique(flat, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    chosen = idx.ravel()
    print(f"{src.name}, pngquant {version}:")
    for name, (weights, power) in METRICS.items():
        agree = np.mean(nearest(colors, palette, weights, power)[inverse] == chosen)
        print(f"  entries nearest in {name}: {agree:.3f}")
    plain = nearest(colors, palette, (1.0, 1.0, 1.0), 1.0)[inverse].reshape(idx.shape)
    for label, ix in (("its file", idx), ("its palette, sRGB-nearest", plain)):
        out_img = palette[ix]
        err = original.astype(np.float64) - out_img
        psnr = metrics.psnr_from_mse(float(np.mean(err**2)))
        ssim = metrics.ssim(original, out_img.astype(np.uint8))
        print(
            f"  {label}: PSNR {psnr:.2f} dB, SSIM {ssim:.4f}, luma MSE {np.mean((err @ LUMA) ** 2):.3f},"
            f" squared error per pixel (R+G+B) {np.mean(err**2) * 3:.3f}"
        )


def main(paths: list[str]) -> None:
    with tempfile.TemporaryDirectory() as name:
        for exe in (e for e in PNGQUANTS if e.exists()):
            for src in map(Path, paths):
                probe(exe, src, Path(name))


if __name__ == "__main__":
    main(sys.argv[1:])
