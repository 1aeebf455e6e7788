"""Fitting a palette on a histogram, and judging a palette against it: one image's or many images'.

:func:`fit` is the one place a palette is fitted: :func:`fastquant.compress`
calls it with one image's histogram, :func:`fastquant.palette` with the
merged histogram of many.  :func:`given` judges a palette given as is.  The
helpers put fixed or given colours into the channels of the image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple, Union

import numpy as np

from . import colorspace as _cs
from . import config, histogram, large, lloyd, remap
from .errors import OptionError

if TYPE_CHECKING:
    import numpy.typing as npt

    from .palette import Palette

#: Largest palette: indices are stored as uint16.
MAX_COLORS = 65536

#: ``speed`` level -> (max_iter, tol, swap_rounds, fit_colors) of the k-means, as pngquant's
#: ``--speed`` 1 (slowest, best) to 11 (fastest).  4 is the default and what compress() did
#: before it had levels.  Every level starts from Wu's boxes (the fastest start, and the best
#: one on photos); ``fit_colors`` None is ``config.FIT_COLORS``, fewer merges near colours of
#: the histogram into cells before the k-means sees them.  0 iterations: Wu's boxes alone.
SPEEDS = {
    1: (300, 1e-4, 8, None),
    2: (200, 1e-3, 5, None),
    3: (150, 3e-3, 4, None),
    4: (100, 1e-2, 3, None),
    5: (50, 2e-2, 2, None),
    6: (30, 3e-2, 1, None),
    7: (20, 5e-2, 0, None),
    8: (10, 5e-2, 0, 1 << 15),
    9: (5, 1e-1, 0, 1 << 14),
    10: (2, 1e-1, 0, 1 << 13),
    11: (0, 1e-1, 0, 1 << 12),
}


def posterize(palette, bits):
    """Palette values that use only their top ``8 - bits`` bits, as pngquant's ``--posterize``.

    Each value becomes the nearest one whose low bits repeat its top bits
    (``0xAB`` -> ``0xAA`` with ``bits=4``), so that 0 and 255 stay exact and
    the values expand losslessly from ``8 - bits`` bits (RGBA4444 with 4).

    Parameters
    ----------
    palette : (k, C) uint8 ndarray
    bits : int
        0 to 4; 0 returns ``palette`` unchanged.

    Returns
    -------
    (k, C) uint8 ndarray
    """
    if not bits:
        return palette
    keep = 8 - bits
    levels = np.array([replicate(t, keep) for t in range(1 << keep)], np.int16)
    nearest = np.abs(np.arange(256)[:, None] - levels[None, :]).argmin(axis=1)
    return levels[nearest].astype(np.uint8)[palette]


def replicate(top, keep):
    """The 8-bit value of ``keep``-bit value ``top``, its bits repeated (``0xA`` -> ``0xAA``)."""
    v, n = 0, 0
    while n < 8:
        v = (v << keep) | top
        n += keep
    return v >> (n - 8)


#: Colours given as a :class:`fastquant.Palette`, a (k, 3|4) uint8 array, or hex strings ("#ff8800").
Colors = Union["Palette", "npt.ArrayLike", Sequence[str]]


def check_palette(colors, name):
    """Colours given as a Palette, an array or hex strings, as (k, 3|4) uint8, 1 <= k <= MAX_COLORS."""
    try:
        a = _cs.parse_colors(getattr(colors, "colors", colors))
    except ValueError as e:
        raise OptionError(f"{name}: {e}") from None
    if len(a) > MAX_COLORS:
        raise OptionError(f"{name}: {len(a)} colours are more than {MAX_COLORS}")
    return a


def unique_rows(colors):
    """The distinct rows of ``colors``, in order of first appearance."""
    return histogram.unique_colors(colors)[0]


def match_channels(p, colors):
    """``colors`` with the channels of the prepared image ``p`` (None stays None).

    RGB colours on an RGBA image become opaque RGBA; on an RGB image, RGBA
    colours that are all opaque become RGB, and translucent ones make the
    image opaque RGBA (:func:`opaque_rgba`), so that they can be told apart.
    """
    if colors is None or colors.shape[1] == p.c:
        return colors
    if colors.shape[1] == 3:
        return np.hstack([colors, np.full((len(colors), 1), 255, np.uint8)])
    if (colors[:, 3] == 255).all():
        return np.ascontiguousarray(colors[:, :3])
    opaque_rgba(p)
    return colors


def opaque_rgba(p):
    """Make a prepared RGB image opaque RGBA, in place (its histogram's order stays)."""
    p.colors = np.hstack([p.colors, np.full((len(p.colors), 1), 255, np.uint8)])
    p.c = 4
    if isinstance(p, large.Prepared):
        strip, h, w = p.rows.strip, p.h, p.w

        def opaque(lo, hi):
            a = strip(lo, hi)
            return np.concatenate([a, np.full(a.shape[:2] + (1,), 255, np.uint8)], axis=2)

        p.rows = large.Rows(opaque, h, w, 4)
    elif getattr(p, "arr", None) is not None:  # (a merged histogram has no pixels)
        p.arr = np.concatenate([p.arr, np.full((p.h, p.w, 1), 255, np.uint8)], axis=2)
        p.flat = p.arr.reshape(-1, 4)


def luma_stretch(n_colors):
    """The luma stretch an RGB palette of ``n_colors`` entries is fitted with.

    ``config.LUMA_STRETCH`` = (at 16 colours and fewer, at 256 and more),
    log-linear in the palette size in between (see
    :func:`fastquant.colorspace.stretch_luma`).
    """
    few, many = config.LUMA_STRETCH
    t = float(np.clip((np.log2(max(n_colors, 1)) - 4.0) / 4.0, 0.0, 1.0))
    return few + t * (many - few)


def fit_points(colors, counts, space, fit_colors=None):
    """The points the k-means clusters: colours (merged to at most ``fit_colors``, default
    ``config.FIT_COLORS``, cells) as points of ``space`` (:func:`fastquant.colorspace.to_points`);
    their weights; each colour's cell.
    """
    fit, weights, cell = histogram.coarsen(colors, counts, fit_colors or config.FIT_COLORS)
    if space != "rgb":
        pts = _cs.to_points(colors, space)
        if len(fit) < len(colors):  # cell means taken in the space being clustered
            sums = np.stack(
                [np.bincount(cell, weights=counts * pts[:, t], minlength=len(fit)) for t in range(pts.shape[1])], axis=1
            )
            pts = (sums / weights[:, None]).astype(np.float32)
        fit = pts
    return fit, weights, cell


class Fit(NamedTuple):
    """A palette fitted (or given) and judged on a histogram (:func:`fit`, :func:`given`)."""

    palette: np.ndarray  # (k, C) uint8, in its final order
    labels: np.ndarray  # (M,) int32: nearest entry of every histogram colour, before reordering
    order: np.ndarray  # palette = entries[order]
    n_entries: int  # entries before reordering
    plain_sq: float  # squared error of the nearest-entry mapping over the histogram's pixels
    quality_mse: float  # what quality targets judge: plain_sq as a mean; premultiplied RGBA: the
    # mean squared error of the premultiplied values (what is seen)
    n_iter: int
    keep: np.ndarray  # (k,) bool: entries kept even when no pixel uses them (fixed or given colours)
    stretch: float = 1.0  # labels are nearest with the luma axis stretched by this (1: in the space itself)


def fit(p, n_colors, km, space, lap, fixed=None):
    """Palette of at most ``n_colors`` entries and the nearest entry of every histogram colour
    (fitted and mapped in point space ``space``, see :func:`fastquant.api._space`).

    ``p`` is a histogram: ``colors`` (M, C) uint8, ``counts`` (M,) pixel counts,
    ``weights`` (M,) what the k-means weighs colours by (``counts``, or an
    importance map's sums), ``c`` and ``sampled``.  One image's
    (:class:`fastquant.prepare.Prepared`, :class:`fastquant.large.Prepared`) and the merged
    histogram of many (:func:`fastquant.palette.palette`) are fitted here alike.
    ``fixed`` (f, C) uint8, f <= n_colors: entries that are in the palette
    exactly, the others fitted around them.  ``km``: the keywords of
    :func:`fastquant.kmeans`, and optionally ``fit_colors`` (the most colours
    fitted, see :func:`fit_points`), ``posterize`` (low bits the fitted
    entries drop, see :func:`posterize`) and ``luma_stretch`` (RGB: the
    stretch of :func:`fastquant.colorspace.stretch_luma` the palette is fitted
    *and* mapped with; None: fitted with :func:`luma_stretch`, mapped in sRGB).
    """
    km = dict(km)
    fit_colors, bits = km.pop("fit_colors", None), km.pop("posterize", 0)
    given_stretch = km.pop("luma_stretch", None)
    colors, weights, c = p.colors, p.weights, p.c
    nf = 0 if fixed is None else len(fixed)
    extra = colors if not nf else colors[~np.isin(packed(colors), packed(fixed))]
    if not p.sampled and nf + len(extra) <= n_colors:
        # Every colour fits: the colours are the palette (after the fixed ones), so that a
        # re-run on an output, or any image of few colours, changes no pixel.
        palette = extra if not nf else np.vstack([fixed, extra])
        keys = packed(palette)
        by_key = np.argsort(keys)
        labels = by_key[np.searchsorted(keys, packed(colors), sorter=by_key)].astype(np.int32)
        keep = np.arange(len(palette)) < nf
        lap("palette")
        return judge(p, palette, labels, keep, space, 0, lap, reorder=True, exact=True)
    rgb = space == "rgb" and c == 3
    # Fully transparent pixels (all made (0, 0, 0, 0) above) get an entry of
    # their own; the k-means spends the other entries on visible colours
    # (unless a fixed entry is transparent: it takes them).
    clear = np.flatnonzero(colors[:, 3] == 0) if c == 4 else np.empty(0, np.intp)
    clear_fixed = nf and c == 4 and (fixed[:, 3] == 0).any()
    reserve = len(clear) == 1 and n_colors > max(1, nf) and len(colors) > 1 and not clear_fixed
    visible = np.delete(np.arange(len(colors)), clear) if reserve else np.arange(len(colors))
    fit, fit_weights, cell = fit_points(colors[visible], weights[visible], space, fit_colors)
    if fit_weights.sum() <= 0:  # an importance map that weighs only the reserved colour
        fit_weights = np.ones_like(fit_weights)
    fixed_points = None if not nf else _cs.to_points(fixed, space)
    # RGB: fitted with luma differences weighing more than chroma ones (mapped in sRGB, unless
    # the stretch was given).
    stretch = (luma_stretch(n_colors) if given_stretch is None else float(given_stretch)) if rgb else 1.0
    plain = None
    if stretch != 1.0:
        plain = fit  # the starting boxes are cut on these: integer colours cut faster
        fit = _cs.stretch_luma(fit, stretch)
        fixed_points = None if not nf else _cs.stretch_luma(fixed_points, stretch)
    res = lloyd.kmeans(fit, n_colors - reserve, weights=fit_weights, fixed=fixed_points, boxes_on=plain, **km)
    # Posterized entries may coincide: the duplicates go unused and are dropped when judged.
    centers = res.centers if stretch == 1.0 else _cs.stretch_luma(res.centers, 1.0 / stretch)
    palette = posterize(_cs.from_points(centers, space), bits)
    if nf:  # exactly, whatever the round trip through the point space did
        palette[:nf] = fixed
    start = np.zeros(len(colors), np.int32)
    start[visible] = res.labels[cell]
    if reserve:
        start[clear] = len(palette)
        palette = np.vstack([palette, np.zeros((1, 4), np.uint8)])
    lap("palette")
    keep = np.zeros(len(palette), bool)
    keep[:nf] = True
    mapped = float(given_stretch) if rgb and given_stretch is not None else 1.0
    return judge(p, palette, start, keep, space, res.n_iter, lap, reorder=True, stretch=mapped)


def given(p, palette, space, lap):
    """A :class:`Fit` for a palette given as is: every entry kept, in its order."""
    return judge(p, palette, None, np.ones(len(palette), bool), space, 0, lap, reorder=False)


def judge(p, palette, start, keep, space, n_iter, lap, *, reorder, exact=False, stretch=1.0):
    """The nearest entry of every histogram colour, the entries' final order and the errors.

    ``exact``: ``start`` is every colour's entry already, equal to it (no search).
    ``stretch``: RGB colours are mapped to their nearest entry with the luma axis stretched
    by this (:func:`fastquant.colorspace.stretch_luma`); the errors stay in sRGB.

    With ``reorder``: most used first, translucent entries before opaque ones
    (a short tRNS chunk); entries no colour uses and that ``keep`` does not
    hold are dropped.  Without: ``palette`` stays as it is.
    """
    colors, counts, c = p.colors, p.counts, p.c
    if exact:
        labels, dist = start, np.zeros(len(colors), np.float32)
    elif stretch != 1.0:
        labels = remap.nearest_stretched(colors, palette, stretch, start)
        diff = colors.astype(np.int32) - palette[labels]
        dist = np.einsum("ij,ij->i", diff, diff).astype(np.float32)
    else:
        labels, dist = remap.nearest(colors, palette, start, space)
    if reorder:
        used = np.bincount(labels, weights=counts, minlength=len(palette))
        # Entries no colour uses (centres that rounded onto another) are
        # dropped -- in a sample, only duplicates can be dropped.
        keys = [-used] if c == 3 else [-used, palette[:, 3]]
        order = np.lexsort(keys)
        if p.sampled:
            order = order[np.unique(palette[order], axis=0, return_index=True)[1]]
            order = order[np.lexsort([-used[order]])]
        else:
            order = order[(used[order] > 0) | keep[order]]
    else:
        order = np.arange(len(palette))
    kept = keep[order]
    if reorder and p.sampled and keep.any():  # a kept colour may stand at the place of a duplicate
        kept = np.isin(packed(palette[order]), packed(palette[keep]))
    # Sums of products, not np.dot: OpenBLAS would start threads that spin on after
    # the call and take the CPU from the other batch workers.
    plain_sq = float((counts * dist.astype(np.float64)).sum())
    if space in ("premultiplied", "composites"):  # invisible colour differences must not count
        pal = _cs.premultiply(palette).astype(np.float64)
        per = np.empty(len(colors))
        for lo in range(0, len(colors), 1 << 18):  # in pieces: a large image's sample is millions of colours
            d = _cs.premultiply(colors[lo : lo + (1 << 18)]).astype(np.float64) - pal[labels[lo : lo + (1 << 18)]]
            per[lo : lo + len(d)] = np.einsum("ij,ij->i", d, d)
        judged = float((counts * per).sum())
    else:
        judged = plain_sq
    lap("remap")
    return Fit(
        np.ascontiguousarray(palette[order]),
        labels,
        order,
        len(palette),
        plain_sq,
        judged / (float(counts.sum()) * c),
        n_iter,
        kept,
        stretch,
    )


def packed(colors):
    """(k, C) uint8 colours as one int64 each (to compare sets of colours)."""
    c = colors.astype(np.int64)
    return sum(c[:, t] << (8 * t) for t in range(colors.shape[1]))
