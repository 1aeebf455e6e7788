"""Mapping colours to their nearest palette entry, and pixels through the histogram."""
import numpy as np

from .kmeans import assign


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
