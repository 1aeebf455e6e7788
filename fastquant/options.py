"""Checking the options of :func:`fastquant.compress` (and :func:`fastquant.palette`): each bad
value is a one-line :class:`~fastquant.errors.OptionError`.
"""

import numpy as np

from . import fit as fitting
from .errors import OptionError
from .fit import MAX_COLORS


def check_colors(n_colors):
    """``n_colors`` as an int from 1 to MAX_COLORS."""
    if isinstance(n_colors, bool) or not isinstance(n_colors, (int, np.integer)):
        raise OptionError(f"n_colors must be an integer, got {n_colors!r}")
    if not 1 <= n_colors <= MAX_COLORS:
        raise OptionError(f"n_colors must be between 1 and {MAX_COLORS}, got {n_colors}")
    return int(n_colors)


def is_number(v):
    """Whether ``v`` is a real number (not a bool)."""
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def check_dither(dither, strength):
    """(dither, strength): None, "fs" or "ordered"; None or a float in [0, 1]."""
    if dither in (None, "none"):
        dither = None
    elif dither not in ("fs", "ordered"):
        raise OptionError(f"dither must be None, 'fs' or 'ordered', got {dither!r}")
    if strength is None:
        return dither, None
    if not (is_number(strength) and 0.0 <= strength <= 1.0):
        raise OptionError(f"dither_strength must be a number in [0, 1] or None, got {strength!r}")
    return dither, float(strength)


def check_speed(speed):
    """``speed`` as an int from 1 to 11 (:data:`fastquant.fit.SPEEDS`)."""
    if isinstance(speed, bool) or not isinstance(speed, (int, np.integer)) or speed not in fitting.SPEEDS:
        raise OptionError(f"speed must be an integer from 1 (slowest, best) to 11 (fastest), got {speed!r}")
    return int(speed)


def check_posterize(bits):
    """``posterize`` as an int from 0 to 4."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 0 <= bits <= 4:
        raise OptionError(f"posterize must be an integer from 0 to 4 (low bits dropped), got {bits!r}")
    return int(bits)


def check_quality(quality):
    """(min, max) from ``quality``: None, a number (the maximum) or a pair."""
    if quality is None:
        return None
    pair = (0, quality) if is_number(quality) else quality
    try:
        lo, hi = pair
    except (TypeError, ValueError):
        raise OptionError(f"quality must be a number or a (min, max) pair, got {quality!r}") from None
    if not (is_number(lo) and is_number(hi) and 0 <= lo <= hi <= 100):
        raise OptionError(f"quality must be numbers with 0 <= min <= max <= 100, got {quality!r}")
    return lo, hi


def check_weights(weights, h, w):
    """An importance map as (h, w) float64, checked: finite, >= 0, not all zero."""
    try:
        a = np.asarray(weights, np.float64)
    except (TypeError, ValueError):
        raise OptionError(f"weights must be an (H, W) array of numbers, got {type(weights).__name__}") from None
    if a.shape != (h, w):
        raise OptionError(f"weights must have the image's shape (H, W) = ({h}, {w}), got {a.shape}")
    if not np.isfinite(a).all() or (a < 0).any() or not (a > 0).any():
        raise OptionError("weights must be finite, >= 0 and not all zero")
    return a


def check_frame_palettes(frame_palettes):
    """``frame_palettes`` as a bool (:class:`OptionError` unless it is one)."""
    if not isinstance(frame_palettes, (bool, np.bool_)):
        raise OptionError(f"frame_palettes must be True or False, got {frame_palettes!r}")
    return bool(frame_palettes)
