"""Large images in bounded memory: a sampled histogram, then strip-by-strip mapping.

A large image (:func:`fastquant.compress` decides which) is never held as more than
its decoded pixels plus one byte of index per pixel.  It is read as strips
of rows (:class:`Rows`), and every stage that would otherwise grow with the
image or with its number of colours works a strip at a time:

- histogram: the palette is fitted on an evenly spread sample of about
  ``sample_pixels`` pixels; only when the sample has few colours (a
  graphic) is every pixel counted, into a table capped at ``config.EXACT_COLORS``
  colours (past the cap the sample is used after all);
- mapping: each strip is mapped to its nearest palette entries on its own
  (:func:`map_rows`): RGB through a colour table shared by all strips,
  RGBA and OKLab through the strip's own unique colours;
- metrics: squared errors and composites are summed strip by strip, and
  SSIM reads bands of rows (:func:`fastquant.metrics.ssim_bands`).
"""

import math
import os
import sys

import numpy as np

from . import config, histogram, io, metrics, remap


class Rows:
    """An image as strips of rows: ``rows(lo, hi)`` -> (hi - lo, W, C) uint8.

    Parameters
    ----------
    strip : callable
        ``strip(lo, hi)`` returns rows lo .. hi - 1 of the image as read.
    height, width, channels : int

    ``strip`` must return arrays that are ours to change: fully transparent
    pixels are fixed in place.
    """

    def __init__(self, strip, height, width, channels):
        self.strip, self.h, self.w, self.c = strip, height, width, channels
        self.step = max(1, config.STRIP_PIXELS // max(width, 1))

    def __call__(self, lo, hi):
        """Rows lo .. hi - 1, fully transparent pixels made (0, 0, 0, 0) as on the array path."""
        a = self.strip(lo, hi)
        if self.c == 4:
            clear = a[:, :, 3] == 0
            if clear.any():
                a[clear] = 0
        return a

    def spans(self):
        """(lo, hi) of every strip, top to bottom."""
        return [(lo, min(self.h, lo + self.step)) for lo in range(0, self.h, self.step)]


class Prepared:
    """What :func:`fastquant.compress` fits a palette on, for a large image.

    The same attributes as the array path's: ``colors``, ``counts`` (the
    sample's histogram, or every pixel's), ``sampled``, ``h``, ``w``, ``c``,
    ``nbytes``, ``icc``; plus ``rows`` (:class:`Rows`).  ``inverse`` is None:
    pixels are mapped strip by strip; but an image of at most 256 colours
    (every pixel counted) keeps ``codes``, each pixel's colour index as
    (H, W) uint8, made while counting: mapping it is a table lookup, with
    no second read of the image.  ``codes`` is None otherwise.

    ``pixel_weights`` (H, W) float64, an importance map: ``weights`` are then
    the summed weights of the sampled pixels of every colour (of every pixel
    when every pixel is counted and there are at most 256 colours; past that
    the sample is used).  Without it ``weights`` is ``counts``.
    """

    inverse = None

    def __init__(self, rows, nbytes, icc, *, sample_pixels, few_colors, pixel_weights=None):
        self.rows, self.nbytes, self.icc = rows, nbytes, icc
        self.h, self.w, self.c = rows.h, rows.w, rows.c
        n = self.h * self.w
        step = -(-n // sample_pixels)
        while math.gcd(step, self.w) != 1:  # a step sharing a factor with the width samples columns unevenly
            step += 1
        parts = []
        exact = _ExactCount(self.c, (self.h, self.w))  # every pixel counted too, while colours stay few
        flat_weights = None if pixel_weights is None else pixel_weights.reshape(-1)
        sample_weights = []
        for lo, hi in rows.spans():  # pixels lo*w, lo*w + step, ... of the flattened image
            strip = rows(lo, hi).reshape(-1, self.c)
            first = -(-lo * self.w // step) * step - lo * self.w
            parts.append(strip[first::step].copy())  # not a view: frees the strip
            if flat_weights is not None:
                sample_weights.append(flat_weights[lo * self.w + first : hi * self.w : step])
            exact.add(strip, lo, hi)
        sample = np.concatenate(parts)
        self.colors, self.counts, inverse = histogram.unique_colors(sample)
        self.weights = self.counts
        if flat_weights is not None:
            self.weights = histogram.weighted_counts(inverse, np.concatenate(sample_weights), len(self.colors))
        self.sampled = True
        self.codes = None
        weighable = flat_weights is None or exact.codes is not None
        if len(self.colors) <= few_colors and exact.colors is not None and weighable:
            # A sample with few colours may miss rare ones that a palette could
            # hold exactly: use the count of every pixel.
            self.colors, self.counts, self.codes = exact.colors, exact.counts, exact.codes
            self.weights = self.counts
            if flat_weights is not None:
                self.weights = histogram.weighted_counts(self.codes.reshape(-1), flat_weights, len(self.colors))
            self.sampled = False

    @property
    def flat(self):
        """(N, C) pixels of the whole image (dithering needs them; holds a copy)."""
        return np.concatenate([self.rows(lo, hi) for lo, hi in self.rows.spans()]).reshape(-1, self.c)

    def image(self):
        """(H, W, C) uint8: the whole image (a copy)."""
        return self.flat.reshape(self.h, self.w, self.c)


class _ExactCount:
    """Colours and counts of every pixel added, in first-appearance order (as
    :func:`fastquant.histogram.unique_colors` gives them for the whole image);
    ``colors`` becomes None, and counting stops, past ``config.EXACT_COLORS``
    colours.  While there are at most 256, ``codes`` (H, W) uint8 holds each
    pixel's colour index (None past that).
    """

    def __init__(self, channels, shape):
        self.colors = np.empty((0, channels), np.uint8)
        self.counts = np.empty(0, np.int64)
        self.codes = np.empty(shape, np.uint8)
        self.width = shape[1]

    def add(self, pixels, lo, hi):
        """Count rows lo .. hi - 1 of the image, given as (N, C) ``pixels``."""
        if self.colors is None:
            return
        if self.codes is not None:
            sc, scount, inverse = histogram.unique_colors(pixels)
        else:
            sc, scount = histogram.count_colors(pixels, config.EXACT_COLORS)
            if sc is None:
                self.colors = self.counts = None
                return
        merged, counts, inv = histogram.merge([(self.colors, self.counts), (sc, scount)])
        self.colors, self.counts = merged, counts
        if len(merged) > config.EXACT_COLORS:
            self.colors = self.counts = self.codes = None
        elif self.codes is not None and len(merged) > 256:
            self.codes = None  # an index of a byte no longer holds them: count only
        elif self.codes is not None:
            codes = self.codes[lo:hi].reshape(-1)
            np.take(inv[len(inv) - len(sc) :].astype(np.uint8), inverse, out=codes)


class Mapper:
    """Nearest palette entry of every pixel, strip by strip.

    Parameters
    ----------
    palette : (k, C) uint8 ndarray
    space : {"rgb", "premultiplied", "composites", "oklab"}
        Where "nearest" is measured (see :func:`fastquant.remap.nearest`).

    Attributes
    ----------
    alpha : (3,) float64 ndarray or None
        With ``space="composites"``: the summed squared errors of the
        composites over black and over white and the largest alpha change
        of the pixels mapped so far.
    """

    def __init__(self, palette, space):
        self.palette, self.space = palette, space
        self.table = self.search = self.alpha = None
        if palette.shape[1] == 3 and space in ("rgb", "oklab"):
            self.table = remap.lut_table()  # one colour table for all strips: each colour searched once
        elif space == "composites":
            self.search = remap.RGBASearch(palette)
            self.alpha = np.zeros(3)

    def __call__(self, pixels, out=None):
        """Indices ((N,) uint8, uint16 above 256 entries; into ``out`` when given) and the
        summed squared sRGB error of (N, C) pixels.
        """
        if self.table is not None:
            return remap.remap_lut(pixels, self.palette, self.space, table=self.table, out=out)
        if self.search is not None:
            idx, sums = remap.remap_rgba(pixels, self.palette, search=self.search, out=out)
            self.alpha[:2] += sums[1:3]
            self.alpha[2] = max(self.alpha[2], sums[3])
            return idx, float(sums[0])
        colors, counts, inverse = histogram.unique_colors(pixels)
        labels, dist = remap.nearest(colors, self.palette, None, self.space)
        lut = labels.astype(np.uint8 if len(self.palette) <= 256 else np.uint16)
        idx = remap.apply(lut, inverse, (len(pixels),))
        if out is not None:
            out[:] = idx
        return idx, float((counts * dist.astype(np.float64)).sum())


def map_rows(p, palette, space, indices=None):
    """(H, W) indices of a :class:`Prepared` image, the summed squared error, and alpha figures.

    Parameters
    ----------
    p : Prepared
    palette : (k, C) uint8 ndarray
    space : str
        See :class:`Mapper`.
    indices : (H, W) ndarray, optional
        Where to write (uint8 for k <= 256, else uint16).

    Returns
    -------
    indices : (H, W) uint8 or uint16 ndarray
    sq_error : float
    alpha : (int, float, float) or None
        For RGBA mapped in composites space: the largest alpha change
        and the PSNRs of the composites over black and over white, as
        :func:`alpha_stats` gives them.
    """
    release_free_heap()  # the histogram's and the fit's temporaries, before the index and the colour table
    if indices is None:
        indices = np.empty((p.h, p.w), np.uint8 if len(palette) <= 256 else np.uint16)
    mapper = Mapper(palette, space)
    sq = 0.0
    for lo, hi in p.rows.spans():
        _, err = mapper(p.rows(lo, hi).reshape(-1, p.c), out=indices[lo:hi].reshape(-1))  # rows: contiguous
        sq += err
    alpha = None
    if mapper.alpha is not None:
        alpha = _alpha_figures(int(mapper.alpha[2]), mapper.alpha[0], mapper.alpha[1], p.h * p.w)
    return indices, sq, alpha


def release_free_heap():
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``; elsewhere nothing).

    Once a block of a few MB has been freed, glibc serves blocks up to that size from its heap
    rather than from fresh mappings, and keeps their pages when they are freed: without this the
    temporaries of counting and fitting stay resident under the mapping's index and colour table.
    """
    global _malloc_trim
    if _malloc_trim is None:
        _malloc_trim = False
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                _malloc_trim = ctypes.CDLL(None).malloc_trim
                _malloc_trim.argtypes = [ctypes.c_size_t]
            except (OSError, AttributeError):  # not glibc
                pass
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim = None


def alpha_stats(p, palette, indices):
    """Largest alpha change and the PSNRs over black and white of a large RGBA result.

    Returns
    -------
    (int, float, float)
        As :func:`fastquant.metrics.alpha_error` and
        :func:`fastquant.metrics.psnr_over` (over black, over white) give
        them for the whole image.
    """
    worst = 0
    sq = {0: 0.0, 255: 0.0}
    for lo, hi in p.rows.spans():
        src = p.rows(lo, hi).reshape(-1, 4)
        out = palette[indices[lo:hi].reshape(-1)]
        worst = max(worst, metrics.alpha_error(src, out))
        for bg in sq:
            sq[bg] += metrics.over_sq_error(src, out, bg)
    return _alpha_figures(worst, sq[0], sq[255], p.h * p.w)


def _alpha_figures(worst, sq_black, sq_white, pixels):
    """(largest alpha change, PSNR over black, PSNR over white) from the composites' summed errors."""
    n = 3.0 * pixels
    return worst, metrics.psnr_from_mse(sq_black / n), metrics.psnr_from_mse(sq_white / n)


def ssim(p, palette, indices, max_pixels):
    """SSIM of a large result against its source, read band by band (see
    :func:`fastquant.metrics.ssim_bands`).
    """
    return metrics.ssim_indexed(p.rows, palette, indices, max_pixels=max_pixels)


def original(image, p, max_pixels, allow_truncated):
    """What ``Quantized.original`` gives for a large image, made when asked: the
    source read again (a path, bytes or an array), so that the decoded image
    need not be kept; the still open decoded image for other sources.
    """
    if isinstance(image, (str, os.PathLike, bytes, bytearray, memoryview, np.ndarray)):
        p.decoded.close()

        def again():
            arr = io.read_image(image, max_pixels=max_pixels, allow_truncated=allow_truncated)[0]
            if arr.shape[2] == 4:
                arr = arr.copy() if isinstance(image, np.ndarray) else arr
                arr[arr[:, :, 3] == 0] = 0
            elif channels == 4:  # made opaque RGBA for a translucent palette (see fastquant.fit.opaque_rgba)
                arr = np.concatenate([arr, np.full(arr.shape[:2] + (1,), 255, np.uint8)], axis=2)
            return arr

        channels = p.c
        return again
    return p.image
