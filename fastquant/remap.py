"""Mapping colours to their nearest palette entry, and pixels through the histogram.

Two ways to give every pixel its palette index:

- through the histogram (``apply``): nearest entry per unique colour, then a
  table lookup per pixel via the histogram's inverse index;
- through a colour lookup table (``remap_lut``), for large RGB images whose
  palette was fitted on a sample: a 2**24-entry table filled lazily with the
  exact nearest entry of each colour met, shared by the threads (they can
  only ever write the same value into an entry).
"""
import numpy as np
from numba import njit, prange

from .kmeans import CHUNK, _neighbors, _search, _sqdist, assign


def nearest(colors, palette, start=None):
    """Exact nearest palette entry of every colour (ties: lowest index).

    Parameters
    ----------
    colors : (M, C) uint8 ndarray
    palette : (k, C) uint8 ndarray
    start : (M,) int32 ndarray, optional
        Guesses that speed up the search (e.g. the k-means labels); overwritten.

    Returns
    -------
    labels : (M,) int32 ndarray
    dist : (M,) float32 ndarray
        Squared distance in uint8 units (exact: integer sums below 2**24).
    """
    return assign(colors.astype(np.float32), palette.astype(np.float32), start)


def apply(lut, inverse, shape):
    """Per-pixel indices from per-colour labels: ``lut[inverse]`` reshaped.

    Parameters
    ----------
    lut : (M,) uint8 or uint16 ndarray
        Palette index of every unique colour.
    inverse : (N,) int32 ndarray
        Unique-colour index of every pixel (from the histogram).
    shape : (int, int)
        (H, W) with H * W == N.

    Returns
    -------
    (H, W) ndarray of ``lut``'s dtype
    """
    out = np.empty(len(inverse), lut.dtype)
    np.take(lut, inverse, out=out)
    return out.reshape(shape)


@njit(cache=True, nogil=True)
def _lut_range(pixels, palette, order, sorted_d, table, out, errs, c, lo, hi):
    prev = 0  # neighbouring pixels mostly share an entry: start the search there
    err = 0.0
    for i in range(lo, hi):
        key = (np.int64(pixels[i, 0]) << 16) | (np.int64(pixels[i, 1]) << 8) | np.int64(pixels[i, 2])
        v = table[key]
        if v < 0:
            v, _, _ = _search(pixels, i, palette, order, sorted_d, prev, _sqdist(pixels, i, palette, prev))
            table[key] = v
        out[i] = v
        prev = v
        err += _sqdist(pixels, i, palette, v)
    errs[c] = err


@njit(cache=True, nogil=True, parallel=True)
def _lut_par(pixels, palette, order, sorted_d, table, out, errs, chunk):
    n = pixels.shape[0]
    for c in prange((n + chunk - 1) // chunk):
        _lut_range(pixels, palette, order, sorted_d, table, out, errs, c, c * chunk, min(n, (c + 1) * chunk))


def remap_lut(pixels, palette):
    """Nearest palette entry of every RGB pixel through a lazily filled colour table.

    Parameters
    ----------
    pixels : (N, 3) uint8 ndarray
    palette : (k, 3) uint8 ndarray, k <= 32767

    Returns
    -------
    indices : (N,) uint8 ndarray (uint16 when k > 256)
    sq_error : float
        Sum over pixels of the squared distance to their entry (exact).
    """
    pal = np.ascontiguousarray(palette, np.float32)
    order, sorted_d = _neighbors(pal)
    table = np.full(1 << 24, -1, np.int16)
    out = np.empty(len(pixels), np.uint8 if len(palette) <= 256 else np.uint16)
    chunk = 16 * CHUNK
    errs = np.zeros((len(pixels) + chunk - 1) // chunk)
    _lut_par(np.ascontiguousarray(pixels), pal, order, sorted_d, table, out, errs, chunk)
    return out, float(errs.sum())
