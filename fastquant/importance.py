"""Adaptive importance maps: how much each pixel should pull on the palette, from its neighbourhood.

:func:`contrast_map` gives ``compress(weights="contrast")`` its map (after
libimagequant, which weighs its histogram by local contrast).  A quantization
error costs little where the picture is busy (texture, noise: the error hides
in the variation already there) and a lot where it is smooth (a flat or
slowly graded area shows every band).  SSIM says so exactly: a window's
error counts against ``2 var + C2``, its luma variance plus a constant.  The
map is that sensitivity, softened by a power:

    weight = (1 + 2 var / C2) ** -power

with ``var`` the luma variance over the pixel's (2r+1) x (2r+1) window
(edges clamped) and ``C2 = (0.03 * 255) ** 2`` (SSIM's).  Flat pixels weigh
1, busy ones less.

The kernel computes every pixel from the input alone, in fixed row blocks,
so the map does not depend on the thread count.
"""

import numpy as np

from . import config, metrics, threads
from .jit import njit

#: SSIM's second constant for 8-bit values, (0.03 * 255) ** 2.
C2 = (0.03 * 255.0) ** 2


@njit(cache=True, nogil=True)
def _contrast_rows(y, radius, c2, power, out, lo, hi):
    """Rows lo..hi-1 of the map of luma ``y`` (H, W) float64 into ``out``."""
    h, w = y.shape
    n = (2 * radius + 1) ** 2
    for i in range(lo, hi):
        for j in range(w):
            s = 0.0
            s2 = 0.0
            for di in range(-radius, radius + 1):
                ii = min(max(i + di, 0), h - 1)
                for dj in range(-radius, radius + 1):
                    v = y[ii, min(max(j + dj, 0), w - 1)]
                    s += v
                    s2 += v * v
            mean = s / n
            var = max(s2 / n - mean * mean, 0.0)
            out[i, j] = (1.0 + 2.0 * var / c2) ** -power


def contrast_map(image, *, radius=None, power=None):
    """Importance of every pixel from the luma variance around it (see the module docstring).

    Parameters
    ----------
    image : (H, W, C) uint8 ndarray
        RGB or RGBA (alpha ignored), or grey (C = 1).
    radius : int, optional
        Half the window side; default ``config.IMPORTANCE_RADIUS``.
    power : float, optional
        How strongly busy pixels are discounted (0: all weigh 1); default
        ``config.IMPORTANCE_POWER``.

    Returns
    -------
    (H, W) float64 ndarray
        Weights in (0, 1]: 1 where the window is flat.
    """
    radius = config.IMPORTANCE_RADIUS if radius is None else int(radius)
    power = config.IMPORTANCE_POWER if power is None else float(power)
    image = np.asarray(image)
    if image.ndim != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, C) uint8 image, got shape {image.shape} and dtype {image.dtype}")
    y = np.ascontiguousarray(metrics.luma(image[:, :, :3] if image.shape[2] >= 3 else image[:, :, 0]))
    out = np.empty(y.shape)
    threads.run_blocks(lambda lo, hi: _contrast_rows(y, radius, C2, power, out, lo, hi), y.shape[0])
    return out
