"""Resizing by numpy sampling: area (box) averaging to shrink, nearest to grow."""

import numpy as np

from . import config
from .errors import OptionError


def target_size(width, height, resize):
    """Output (width, height) for a ``resize`` option.

    Parameters
    ----------
    width, height : int
        Size of the input.
    resize : None, int or (int, int)
        None keeps the size; an int is a maximum side length (aspect ratio
        kept, never enlarged); a pair is the exact (width, height).

    Returns
    -------
    (int, int)
    """
    if resize is None:
        return width, height
    if isinstance(resize, (int, np.integer)) and not isinstance(resize, bool):
        if resize < 1:
            raise OptionError(f"maximum side must be >= 1, got {resize}")
        scale = min(1.0, resize / max(width, height))
        return max(1, round(width * scale)), max(1, round(height * scale))
    try:
        w, h = resize
    except (TypeError, ValueError):
        raise OptionError(f"resize must be None, a maximum side or (width, height), got {resize!r}") from None
    for v in (w, h):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise OptionError(f"resize width and height must be integers >= 1, got {resize!r}")
    return int(w), int(h)


def _area(a, edges, axis):
    """Means of ``a`` over [edges[i], edges[i+1]) along ``axis`` (float64): the
    piecewise-constant signal is integrated through its cumulative sum,
    interpolated at fractional edges.
    """
    n_in = a.shape[axis]
    lo = np.minimum(np.floor(edges).astype(np.intp), n_in - 1)
    shape = [1] * a.ndim
    shape[axis] = len(edges)
    frac = (edges - lo).reshape(shape)
    csum = np.zeros(a.shape[:axis] + (n_in + 1,) + a.shape[axis + 1 :])
    np.cumsum(a, axis=axis, out=csum[(slice(None),) * axis + (slice(1, None),)])
    at = np.take(csum, lo, axis=axis) + frac * np.take(a, lo, axis=axis)
    widths = np.diff(edges).reshape(shape[:axis] + [len(edges) - 1] + shape[axis + 1 :])
    return np.diff(at, axis=axis) / widths


def _sample(a, n_in, n_out, lo, hi, axis, offset=0):
    """Output lines lo..hi-1 of an axis of n_in -> n_out lines, from ``a`` whose
    line 0 is input line ``offset``: area means when shrinking, nearest when growing.
    """
    if n_out == n_in:
        return np.take(a, np.arange(lo, hi) - offset, axis=axis)
    if n_out > n_in:
        idx = np.minimum(((np.arange(lo, hi) + 0.5) * (n_in / n_out)).astype(np.intp), n_in - 1)
        return np.take(a, idx - offset, axis=axis)
    return _area(a, np.arange(lo, hi + 1) * (n_in / n_out) - offset, axis)


def resize(image, size):
    """Resize an image to ``size`` = (width, height).

    Parameters
    ----------
    image : (H, W, C) uint8 ndarray
        With C = 4 the last channel is alpha: colours are averaged weighted
        by it (premultiplied), so invisible colours do not bleed in.
    size : (int, int)
        Output width and height; each axis is area-averaged when it shrinks
        and nearest-sampled when it grows.  The two axes are combined in
        float and rounded once.

    Returns
    -------
    (height, width, C) uint8 ndarray
    """
    w, h = size
    height, width = image.shape[:2]
    if (w, h) == (width, height):
        return image
    out = np.empty((h, w) + image.shape[2:], np.uint8)
    block = config.RESIZE_BLOCK_ROWS
    for y0 in range(0, h, block):  # bands of output rows bound the float temporaries
        y1 = min(h, y0 + block)
        r0 = int(np.floor(y0 * height / h))
        r1 = min(height, int(np.ceil(y1 * height / h)) + 1)
        band = image[r0:r1]
        alpha = band.shape[2] == 4 and (h < height or w < width)
        if alpha:
            band = band.astype(np.float64)
            band[:, :, :3] *= band[:, :, 3:]
        band = _sample(band, height, h, y0, y1, 0, offset=r0)
        band = _sample(band, width, w, 0, w, 1)
        if alpha:
            a = band[:, :, 3:]
            band[:, :, :3] = np.divide(band[:, :, :3], a, out=np.zeros_like(band[:, :, :3]), where=a > 0)
        out[y0:y1] = np.clip(np.rint(band), 0, 255) if band.dtype != np.uint8 else band
    return out


def resize_map(values, size):
    """Resize a per-pixel map (an importance map) as :func:`resize` resizes the image.

    Parameters
    ----------
    values : (H, W) float64 ndarray
    size : (int, int)
        Output (width, height).

    Returns
    -------
    (height, width) float64 ndarray
        Area means where an axis shrinks, nearest samples where it grows
        (``values`` itself when the size does not change).
    """
    w, h = size
    height, width = values.shape
    if (w, h) == (width, height):
        return values
    out = _sample(values, height, h, 0, h, 0)
    return np.ascontiguousarray(_sample(out, width, w, 0, w, 1), np.float64)
