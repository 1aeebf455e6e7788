"""Resizing by numpy sampling: area (box) averaging to shrink, nearest to grow."""
import numpy as np

from .errors import OptionError

_BLOCK = 512  # lines resampled at a time, to bound the float64 temporaries


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


def _axis(a, n_out, axis):
    n_in = a.shape[axis]
    if n_out == n_in:
        return a
    if n_out > n_in:  # nearest: the source pixel under each output pixel's centre
        idx = ((np.arange(n_out) + 0.5) * (n_in / n_out)).astype(np.intp)
        return np.take(a, np.minimum(idx, n_in - 1), axis=axis)
    # Area average: integrate the piecewise-constant signal between output edges
    # through its cumulative sum, interpolated at fractional edges.
    edges = np.arange(n_out + 1) * (n_in / n_out)
    lo = np.minimum(np.floor(edges).astype(np.intp), n_in - 1)
    frac = (edges - lo)[:, None]
    a = np.moveaxis(a, axis, 0)
    out = np.empty((n_out,) + a.shape[1:], np.uint8)
    flat_in = a.reshape(n_in, -1)
    flat_out = out.reshape(n_out, -1)
    for s in range(0, flat_in.shape[1], _BLOCK * 4):
        block = flat_in[:, s:s + _BLOCK * 4].astype(np.float64)
        csum = np.zeros((n_in + 1, block.shape[1]))
        np.cumsum(block, axis=0, out=csum[1:])
        at = csum[lo] + frac * block[lo]
        avg = (at[1:] - at[:-1]) * (n_out / n_in)
        flat_out[:, s:s + _BLOCK * 4] = np.clip(np.rint(avg), 0, 255)
    return np.moveaxis(out, 0, axis)


def resize(image, size):
    """Resize an image to ``size`` = (width, height).

    Parameters
    ----------
    image : (H, W, C) uint8 ndarray
    size : (int, int)
        Output width and height; each axis is area-averaged when it shrinks
        and nearest-sampled when it grows.

    Returns
    -------
    (height, width, C) uint8 ndarray
    """
    w, h = size
    out = _axis(image, h, 0)
    out = _axis(out, w, 1)
    return np.ascontiguousarray(out)
