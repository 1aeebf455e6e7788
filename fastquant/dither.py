"""Dithered mapping: each pixel's nearest palette entry after an error or threshold offset.

Floyd-Steinberg error diffusion (``dither_fs``) and ordered 8x8 Bayer
dithering (``dither_ordered``).  Dithering always works on (straight) sRGB
values: the error it diffuses must be measured in the space the nearest
entry is searched in, and integer sRGB arithmetic keeps it exact and
reproducible.
"""

import numpy as np

from . import config, threads
from .jit import njit
from .nearest import search, search_lists, sqdist

#: Errors are kept as integers in 1/16 of a level, and the strength in steps
#: of 1/64: integer arithmetic makes the result exact and reproducible.
_FS_UNIT = 16
_STRENGTH_STEPS = 64


@njit(cache=True, nogil=True)
def _fs(pixels, width, palette, neighbors, sorted_d, strength, limit, out):
    """Serpentine Floyd-Steinberg over (N, C) pixels in rows of ``width``.

    Error (target - entry, in 1/16 levels) times ``strength``/64 is passed on
    7/16 ahead, 3/16 behind below, 5/16 below, 1/16 ahead below (ahead = the
    scan direction, which flips every row), each part rounded half up.  The
    error a pixel receives is clamped to +-``limit`` (1/16 levels) and the
    target to [0, 255]; the entry is the nearest to the target rounded to
    whole levels (exact integer distances).  Fully transparent pixels neither
    take nor pass on error.  Returns the squared error against the pixels.
    """
    n, c = pixels.shape
    h = n // width
    cur = np.zeros((width + 2, c), np.int64)  # error for this row, column x at x + 1
    nxt = np.zeros((width + 2, c), np.int64)
    pt = np.empty((1, c), np.float32)
    tgt = np.empty(c, np.int64)
    top = 255 * _FS_UNIT
    half = _FS_UNIT // 2
    den = _FS_UNIT * _STRENGTH_STEPS
    zero = np.int64(0)  # not a literal 0: that would compile search() once more
    prev = zero
    sq = 0
    for y in range(h):
        fwd = 1 if y % 2 == 0 else -1
        for step in range(width):
            x = step if fwd == 1 else width - 1 - step
            i = y * width + x
            visible = c < 4 or pixels[i, 3] > 0
            for t in range(c):
                v = np.int64(pixels[i, t]) * _FS_UNIT
                if visible:
                    v = min(max(v + min(max(cur[x + 1, t], -limit), limit), 0), top)
                tgt[t] = v
                pt[0, t] = (v + half) // _FS_UNIT
            best, _ = search(pt, zero, palette, neighbors, sorted_d, prev, sqdist(pt, zero, palette, prev))
            out[i] = best
            prev = best
            for t in range(c):
                d = np.int64(pixels[i, t]) - np.int64(palette[best, t])
                sq += d * d
                if visible:
                    e = (tgt[t] - np.int64(palette[best, t]) * _FS_UNIT) * strength
                    cur[x + 1 + fwd, t] += (7 * e + den // 2) // den
                    nxt[x + 1 - fwd, t] += (3 * e + den // 2) // den
                    nxt[x + 1, t] += (5 * e + den // 2) // den
                    nxt[x + 1 + fwd, t] += (e + den // 2) // den
        cur, nxt = nxt, cur
        nxt[:] = 0
    return sq


def _check_pixels(pixels, width, palette):
    pixels = np.ascontiguousarray(pixels, np.uint8)
    if pixels.ndim != 2 or width < 1 or pixels.shape[0] % width:
        raise ValueError(f"expected (H * W, C) pixels in rows of {width}, got shape {pixels.shape}")
    pal = np.ascontiguousarray(palette, np.float32)
    if pal.ndim != 2 or pal.shape[1] != pixels.shape[1] or len(pal) < 1:
        raise ValueError(f"expected a (k, {pixels.shape[1]}) palette, got shape {pal.shape}")
    return pixels, pal


def _index_array(out, k):
    return out.astype(np.uint8 if k <= 256 else np.uint16)


def dither_fs(pixels, width, palette, strength=1.0):
    """Floyd-Steinberg error diffusion, serpentine (serial: deterministic).

    Parameters
    ----------
    pixels : (H * W, C) uint8 ndarray
        The image, row by row.
    width : int
        W.
    palette : (k, C) uint8 ndarray
    strength : float in [0, 1]
        Fraction of the error passed on (in steps of 1/64); 0 is plain
        nearest-entry mapping.

    Returns
    -------
    indices : (H * W,) uint8 ndarray (uint16 when k > 256)
    sq_error : int
        Sum over pixels and channels of the squared difference to the
        chosen entries (exact).
    """
    pixels, pal = _check_pixels(pixels, width, palette)
    neighbors, sorted_d = search_lists(pal)
    out = np.empty(len(pixels), np.int32)
    s = int(round(strength * _STRENGTH_STEPS))
    sq = _fs(pixels, int(width), pal, neighbors, sorted_d, s, config.FS_MAX_ERROR * _FS_UNIT, out)
    return _index_array(out, len(pal)), int(sq)


def bayer(n=8):
    """(n, n) int ndarray: the Bayer threshold matrix, values 0 .. n*n - 1 (n a power of 2).

    Entry (y, x) interleaves the bits of y XOR x and y, most significant
    last: the same matrix as the recursion M2n = [[4M, 4M+2], [4M+3, 4M+1]].
    """
    bits = n.bit_length() - 1
    y, x = np.mgrid[0:n, 0:n]
    m = np.zeros((n, n), np.int64)
    for b in range(bits):
        m += (2 * (((x ^ y) >> b) & 1) + ((y >> b) & 1)) << (2 * (bits - 1 - b))
    return m


def palette_spacing(palette):
    """Typical distance between palette colours: the median, over entries, of the
    sRGB distance (colour channels only) to the nearest other entry.

    Entries beyond 4096 are sampled evenly.  Returns 0.0 for one entry.
    """
    rgb = np.asarray(palette, np.float64)[:, :3]
    k = len(rgb)
    if k < 2:
        return 0.0
    pick = np.arange(k) if k <= 4096 else np.arange(4096) * k // 4096
    best = np.empty(len(pick))
    for lo in range(0, len(pick), 256):
        p = pick[lo : lo + 256]
        d = ((rgb[p, None, :] - rgb[None, :, :]) ** 2).sum(axis=2)
        d[np.arange(len(p)), p] = np.inf
        best[lo : lo + len(p)] = d.min(axis=1)
    return float(np.sqrt(np.median(best)))


def ordered_offsets(palette, strength=1.0):
    """(8, 8) int32 ndarray: per-position offset added to R, G and B.

    The Bayer thresholds, centred on 0 and spanning one typical palette step
    along the grey axis ((t + 0.5) / 64 - 0.5) * strength * spacing / sqrt(3),
    rounded to whole levels.  On the grey axis a step of s in each channel is
    a distance of s * sqrt(3), hence the division.
    """
    t = (bayer(8) + 0.5) / 64 - 0.5
    return np.rint(t * strength * palette_spacing(palette) / np.sqrt(3)).astype(np.int32)


@njit(cache=True, nogil=True)
def _ordered_rows(pixels, width, palette, neighbors, sorted_d, offsets, out, errs, lo, hi):
    """Rows lo..hi-1: nearest entry to each pixel plus its Bayer offset (colour
    channels, clamped to [0, 255]; none for fully transparent pixels); each
    row's squared error into ``errs``.
    """
    c = pixels.shape[1]
    pt = np.empty((1, c), np.float32)
    zero = np.int64(0)  # not a literal 0: that would compile search() once more
    for y in range(lo, hi):
        prev = zero  # each row starts afresh: rows are independent of how they are shared out
        sq = 0
        for x in range(width):
            i = y * width + x
            o = offsets[y & 7, x & 7] if c < 4 or pixels[i, 3] > 0 else 0
            for t in range(c):
                v = np.int64(pixels[i, t])
                if t < 3:
                    v = min(max(v + o, 0), 255)
                pt[0, t] = v
            best, _ = search(pt, zero, palette, neighbors, sorted_d, prev, sqdist(pt, zero, palette, prev))
            out[i] = best
            prev = best
            for t in range(c):
                d = np.int64(pixels[i, t]) - np.int64(palette[best, t])
                sq += d * d
        errs[y] = sq


def dither_ordered(pixels, width, palette, strength=1.0):
    """Ordered dithering with an 8x8 Bayer matrix (see :func:`ordered_offsets`).

    Parameters
    ----------
    pixels : (H * W, C) uint8 ndarray
        The image, row by row.
    width : int
        W.
    palette : (k, C) uint8 ndarray
    strength : float in [0, 1]
        Scales the offsets; 0 is plain nearest-entry mapping.

    Returns
    -------
    indices : (H * W,) uint8 ndarray (uint16 when k > 256)
    sq_error : int
        Sum over pixels and channels of the squared difference to the
        chosen entries (exact).
    """
    pixels, pal = _check_pixels(pixels, width, palette)
    neighbors, sorted_d = search_lists(pal)
    offsets = ordered_offsets(palette, strength)
    out = np.empty(len(pixels), np.int32)
    h = len(pixels) // width
    errs = np.zeros(h, np.int64)
    args = (pixels, int(width), pal, neighbors, sorted_d, offsets, out, errs)
    threads.run_blocks(
        lambda lo, hi: _ordered_rows(*args, lo, hi), h, None if len(pixels) >= config.PARALLEL_MIN_PIXELS else 1
    )
    return _index_array(out, len(pal)), int(errs.sum())
