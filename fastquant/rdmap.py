"""Rate-distortion-aware mapping: a pixel may take a slightly worse palette entry when it makes the
index stream cheaper to deflate.

Plain mapping gives every pixel its nearest entry.  In a photo many pixels lie
almost halfway between two entries, and which of them a pixel gets decides
whether its index continues the run on its left (or the match with the row
above) or starts a new symbol.  :func:`rd_map` scans the pixels in raster
order and gives each the entry of least

    cost = squared error + lambda * bits

where ``bits`` is a rough price of the symbol in deflate's stream: nothing for
the left neighbour's entry (a run, which deflate codes as one long match),
half a unit for the entry above when the pixel on the left also copied the
one above it (the match with the previous row goes on), one unit for any
other entry.  Only three entries are candidates: the nearest one, the left
neighbour's and the one above, so the scan costs a few distances per pixel.
``lambda = 0`` is plain nearest mapping.  The squared error is measured where
the nearest entry is (sRGB values, or the composites points of RGBA for images
with alpha, :func:`fastquant.colorspace.composites`).
"""

import numpy as np

from .jit import njit
from .nearest import sqdist


@njit(cache=True, nogil=True, inline="always")
def _price(e, left, up, copying, lam, half):
    """What entry e costs in the index stream: nothing for a run, half for a continued match above."""
    if e == left:
        return np.float32(0.0)
    if e == up and copying:
        return half
    return lam


@njit(cache=True, nogil=True)
def _rd_rows(inverse, w, points, entries, per_color, lam, straight, palette, out):
    """Raster scan of :func:`rd_map` (serial: each pixel depends on the one on its left and the one
    above).  Candidates in order nearest, left, above; a later one must be strictly cheaper.
    """
    h = out.shape[0]
    half = np.float32(0.5) * lam
    err = 0.0
    for i in range(h):
        for j in range(w):
            c = inverse[i * w + j]
            left = np.int64(out[i, j - 1]) if j > 0 else -1
            up = np.int64(out[i - 1, j]) if i > 0 else -1
            copying = i > 0 and j > 0 and left == out[i - 1, j - 1]
            near = np.int64(per_color[c])
            best = near
            cost = np.float32(0.0)
            for t in range(3):  # one call of each inline helper: every call site compiles anew
                if t == 0:
                    e = near
                elif t == 1:
                    e = left
                    if left < 0 or left == near:
                        continue
                else:
                    e = up
                    if up < 0 or up == near or up == left:
                        continue
                d = sqdist(points, c, entries, e) + _price(e, left, up, copying, lam, half)
                if t == 0 or d < cost:
                    best = e
                    cost = d
            out[i, j] = best
            err += sqdist(straight, c, palette, best)
    return err


def rd_map(inverse, shape, points, entries, per_color, lam, colors, palette, out=None):
    """Indices of every pixel chosen for error plus ``lam`` times a price of their symbol.

    Parameters
    ----------
    inverse : (H * W,) int32 ndarray
        Histogram colour of every pixel.
    shape : (int, int)
        (H, W).
    points : (M, C) float32 ndarray
        The histogram colours where distances are measured (sRGB values or
        composites points of RGBA).
    entries : (k, C) float32 ndarray
        The palette in the same space.
    per_color : (M,) uint8 or uint16 ndarray
        Nearest entry of every colour.
    lam : float
        Squared error (sum over channels, uint8 units) one new symbol is worth;
        0 gives ``per_color[inverse]``.
    colors : (M, C) uint8 ndarray
        The histogram colours (straight), for the error returned.
    palette : (k, C) uint8 ndarray
        The palette (straight).
    out : (H, W) ndarray of per_color's dtype, optional

    Returns
    -------
    indices : (H, W) ndarray of ``per_color``'s dtype
    sq_error : float
        Squared straight error summed over pixels and channels.
    """
    h, w = shape
    out = np.empty((h, w), per_color.dtype) if out is None else out
    err = _rd_rows(
        np.ascontiguousarray(inverse, np.int32),
        w,
        np.ascontiguousarray(points, np.float32),
        np.ascontiguousarray(entries, np.float32),
        np.ascontiguousarray(per_color),
        np.float32(lam),
        np.ascontiguousarray(colors, np.float32),
        np.ascontiguousarray(palette, np.float32),
        out,
    )
    return out, float(err)
