"""Dithered mapping: each pixel's nearest palette entry after an error or threshold offset.

Floyd-Steinberg error diffusion (``dither_fs``) and ordered 8x8 Bayer
dithering (``dither_ordered``).  RGB images are dithered in sRGB values.
RGBA images are dithered in premultiplied values -- what is seen, whatever
the background -- and their nearest entries are searched in the
``"composites"`` space of :func:`fastquant.colorspace.composites` (a linear
map of premultiplied RGBA, so the error diffused is measured where the entry
is searched), as they are mapped without dithering.  Integer arithmetic
keeps the diffused error exact and reproducible.
"""

import numpy as np

from . import colorspace as _cs
from . import config, threads
from .colorspace import COMPOSITE_ALPHA
from .jit import njit
from .nearest import search, search_lists, sqdist

#: Errors are kept as integers in 1/16 of a level, and the strength in steps
#: of 1/64: integer arithmetic makes the result exact and reproducible.
_FS_UNIT = 16
_STRENGTH_STEPS = 64


@njit(cache=True, nogil=True, inline="always")
def _composites_point(r, g, b, a255, pt):
    """``pt[0]`` = the composites point of premultiplied values times 255 (``r`` = red * alpha,
    ..., ``a255`` = 255 * alpha); keep in sync with colorspace.composites: the same float64
    operations, rounded once.
    """
    half = a255 / 510.0
    pt[0, 0] = np.float32(r / 255.0 - half)
    pt[0, 1] = np.float32(g / 255.0 - half)
    pt[0, 2] = np.float32(b / 255.0 - half)
    pt[0, 3] = np.float32(COMPOSITE_ALPHA * (a255 / 255.0))


@njit(cache=True, nogil=True)
def _fs(pixels, width, palette, points, neighbors, sorted_d, strength, limit, out):
    """Serpentine Floyd-Steinberg over (N, C) pixels in rows of ``width``: RGB (C = 3) in
    sRGB values, RGBA (C = 4) in premultiplied ones.  One kernel for both: a second would
    compile as long.

    RGB: error (target - entry, in 1/16 levels) times ``strength``/64 is passed on
    7/16 ahead, 3/16 behind below, 5/16 below, 1/16 ahead below (ahead = the
    scan direction, which flips every row), each part rounded half up.  The
    error a pixel receives is clamped to +-``limit`` (1/16 levels) and the
    target to [0, 255]; the entry is the nearest to the target rounded to
    whole levels (exact integer distances) among ``points`` (the palette).

    RGBA: the values carried are premultiplied, in integer units of 1/255
    level: (r a, g a, b a, 255 a).  The error a pixel receives is clamped to
    +-``limit`` (in those units); the target's alpha to [0, 255 * 255] and its
    colour to [0, target alpha] (a colour brighter than its alpha allows does
    not exist).  The entry is the nearest to the target among the composites
    ``points`` of the palette.  Fully transparent pixels neither take nor pass
    on error.

    Returns the squared (straight) error against the pixels.
    """
    n, c = pixels.shape
    h = n // width
    k = palette.shape[0]
    rgba = c == 4
    pre = np.empty((k, c), np.int64)  # the entries in the units of the error
    for j in range(k):
        a = np.int64(palette[j, 3]) if rgba else _FS_UNIT
        for t in range(3):
            pre[j, t] = np.int64(palette[j, t]) * a
        if rgba:
            pre[j, 3] = 255 * a
    cur = np.zeros((width + 2, c), np.int64)  # error for this row, column x at x + 1
    nxt = np.zeros((width + 2, c), np.int64)
    pt = np.empty((1, c), np.float32)
    tgt = np.empty(c, np.int64)
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
            visible = True
            if rgba:
                a = np.int64(pixels[i, 3])
                visible = a > 0
                top = 255 * a
                if visible:
                    top = min(max(top + min(max(cur[x + 1, 3], -limit), limit), 0), 255 * 255)
                tgt[3] = top
                for t in range(3):
                    v = np.int64(pixels[i, t]) * a
                    if visible:
                        v = min(max(v + min(max(cur[x + 1, t], -limit), limit), 0), top)
                    tgt[t] = v
                _composites_point(tgt[0], tgt[1], tgt[2], tgt[3], pt)
            else:
                for t in range(c):
                    v = np.int64(pixels[i, t]) * _FS_UNIT
                    v = min(max(v + min(max(cur[x + 1, t], -limit), limit), 0), 255 * _FS_UNIT)
                    tgt[t] = v
                    pt[0, t] = (v + half) // _FS_UNIT
            best, _ = search(pt, zero, points, neighbors, sorted_d, prev, sqdist(pt, zero, points, prev))
            out[i] = best
            prev = best
            for t in range(c):
                d = np.int64(pixels[i, t]) - np.int64(palette[best, t])
                sq += d * d
                if visible:
                    e = (tgt[t] - pre[best, t]) * strength
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


def _search_points(pixels, palette, pal):
    """The points the nearest entry is searched among: the float32 palette for RGB, its
    composites points for RGBA; and their neighbour lists.
    """
    points = pal if pixels.shape[1] == 3 else _cs.composites(np.ascontiguousarray(palette, np.uint8))
    neighbors, sorted_d = search_lists(points)
    return points, neighbors, sorted_d


def dither_fs(pixels, width, palette, strength=1.0):
    """Floyd-Steinberg error diffusion, serpentine (serial: deterministic); RGBA in
    premultiplied values, searched in composites space (see the module docstring).

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
    points, neighbors, sorted_d = _search_points(pixels, palette, pal)
    out = np.empty(len(pixels), np.int32)
    s = int(round(strength * _STRENGTH_STEPS))
    limit = config.FS_MAX_ERROR * (_FS_UNIT if pixels.shape[1] == 3 else 255)
    sq = _fs(pixels, int(width), pal, points, neighbors, sorted_d, s, limit, out)
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
def _ordered_rows(pixels, width, palette, points, neighbors, sorted_d, offsets, out, errs, lo, hi):
    """Rows lo..hi-1: nearest entry to each pixel plus its Bayer offset (colour
    channels, clamped to [0, 255]; none for fully transparent pixels); each
    row's squared error into ``errs``.  RGBA: the offset pixel's composites
    point, searched among the composites ``points`` of the palette (so the
    offset counts in proportion to alpha, as premultiplied).
    """
    c = pixels.shape[1]
    pt = np.empty((1, c), np.float32)
    zero = np.int64(0)  # not a literal 0: that would compile search() once more
    px = np.empty(c, np.int64)
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
                px[t] = v
                pt[0, t] = v
            if c == 4:
                _composites_point(px[0] * px[3], px[1] * px[3], px[2] * px[3], 255 * px[3], pt)
            best, _ = search(pt, zero, points, neighbors, sorted_d, prev, sqdist(pt, zero, points, prev))
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
    points, neighbors, sorted_d = _search_points(pixels, palette, pal)
    offsets = ordered_offsets(palette, strength)
    out = np.empty(len(pixels), np.int32)
    h = len(pixels) // width
    errs = np.zeros(h, np.int64)
    args = (pixels, int(width), pal, points, neighbors, sorted_d, offsets, out, errs)
    threads.run_blocks(
        lambda lo, hi: _ordered_rows(*args, lo, hi), h, None if len(pixels) >= config.PARALLEL_MIN_PIXELS else 1
    )
    return _index_array(out, len(pal)), int(errs.sum())
