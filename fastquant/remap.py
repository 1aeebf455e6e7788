"""Mapping colours to their nearest palette entry, and pixels through the histogram.

Three ways to give every pixel its palette index:

- through the histogram (``apply``): nearest entry per unique colour, then a
  table lookup per pixel via the histogram's inverse index;
- through a colour lookup table (``remap_lut``), for large RGB images whose
  palette was fitted on a sample: a 2**24-entry table filled lazily with the
  exact nearest entry of each colour met, shared by the threads (they can
  only ever write the same value into an entry);
- for large RGBA images (``remap_rgba``), through a grid over the
  ``"composites"`` points of RGBA whose cells list the entries that can be
  nearest.

Dithered mapping, pixel by pixel, is :mod:`fastquant.dither`.

"Nearest" is in sRGB values, in a point space of RGBA (``"composites"``, what
RGBA images use in sRGB mode, or ``"premultiplied"``) or in OKLab with
``colorspace="oklab"`` (see :mod:`fastquant.colorspace`).
"""

import functools
import sys

import numpy as np

from . import colorspace as _cs
from . import config, threads
from .colorspace import COMPOSITE_ALPHA, srgb_to_oklab_at
from .jit import njit
from .nearest import assign, neighbor_lists, search, sqdist


def nearest(colors, palette, start=None, colorspace="rgb"):
    """Exact nearest palette entry of every colour (ties: lowest index).

    Parameters
    ----------
    colors : (M, C) uint8 ndarray
    palette : (k, C) uint8 ndarray
    start : (M,) int32 ndarray, optional
        Guesses that speed up the search (e.g. the k-means labels); overwritten.
    colorspace : {"rgb", "premultiplied", "composites", "oklab"}
        Where distances are measured: sRGB values; premultiplied RGBA
        (:func:`fastquant.colorspace.premultiply`, 4 channels only: colour
        differences weighted by alpha); the mean of the composites over
        black and over white (:func:`fastquant.colorspace.composites`,
        4 channels only); or OKLab points
        (:func:`fastquant.colorspace.to_points`; alpha a 4th coordinate).
        Colours and palette are converted to float32 points and searched
        exactly, as in sRGB.

    Returns
    -------
    labels : (M,) int32 ndarray
    dist : (M,) float32 ndarray
        Squared (straight) sRGB distance in uint8 units, whatever
        ``colorspace`` (exact: integer sums below 2**24).
    """
    if colorspace == "rgb":
        return assign(colors.astype(np.float32), palette.astype(np.float32), start)
    labels, _ = assign(_cs.to_points(colors, colorspace), _cs.to_points(palette, colorspace), start)
    diff = colors.astype(np.int32) - palette[labels]
    return labels, np.einsum("ij,ij->i", diff, diff).astype(np.float32)


def nearest_stretched(colors, palette, stretch, start=None):
    """Nearest entry of every RGB colour with the luma axis stretched by ``stretch``
    (:func:`fastquant.colorspace.stretch_luma`: a luma difference costs more than a chroma
    one of the same size); ties: lowest index.

    Parameters
    ----------
    colors : (M, 3) uint8 ndarray
    palette : (k, 3) uint8 ndarray
    stretch : float
        > 0; 1 is plain sRGB.
    start : (M,) int32 ndarray, optional
        Guesses (overwritten).

    Returns
    -------
    (M,) int32 ndarray
    """
    pts = _cs.stretch_luma(colors.astype(np.float32), stretch)
    return assign(pts, _cs.stretch_luma(palette.astype(np.float32), stretch), start)[0]


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
def _apply_rows(lut, codes, lo, hi):
    for i in range(lo, hi):
        for j in range(codes.shape[1]):
            codes[i, j] = lut[codes[i, j]]


def apply_in_place(lut, codes):
    """``codes[...] = lut[codes]`` for (H, W) uint8 codes and a uint8 ``lut``, without a temporary.

    Parameters
    ----------
    lut : (M,) uint8 ndarray, M <= 256
        Covers every value in ``codes``.
    codes : (H, W) uint8 ndarray
        C-contiguous; overwritten.
    """
    lut = np.ascontiguousarray(lut, np.uint8)
    threads.run_blocks(lambda lo, hi: _apply_rows(lut, codes, lo, hi), codes.shape[0])


@njit(cache=True, nogil=True, inline="always")
def _store(out, wide, i, v):
    """Entry ``v`` of pixel ``i`` into the index bytes ``out`` (see :func:`_index_bytes`):
    one byte a pixel (``wide`` 0), or two, low byte first (1) or high byte first (2).
    """
    if wide == 0:
        out[i] = v
    else:
        low = 2 * i + wide - 1
        out[low] = v & 255
        out[4 * i + 1 - low] = v >> 8


def _index_bytes(out):
    """``out``, (N,) uint8 or uint16 indices, as the range kernels take it: its bytes and
    ``wide`` (see :func:`_store`).  One compiled kernel serves both dtypes: a version for
    each would double the kernels' compile time.
    """
    if out.dtype.itemsize == 1:
        return out, 0
    big = out.dtype.byteorder == ">" or (out.dtype.byteorder == "=" and sys.byteorder == "big")
    return out.view(np.uint8), 2 if big else 1


@njit(cache=True, nogil=True)
def _lut_range(pixels, palette, points, oklab, lin, scale, neighbors, sorted_d, table, out, wide, errs, chunk, c0, c1):
    """Pixels of chunks c0..c1-1 (``chunk`` pixels each) through the colour table, their
    entries into ``out`` (see :func:`_store`); each chunk starts afresh and sums its error
    into ``errs[c]``.  A colour met for the first time is searched among ``points``: the
    float32 palette, or with ``oklab`` its OKLab points (the colour converted with ``lin``
    and ``scale``).  One kernel for both colour spaces: a second would compile as long.
    """
    n = pixels.shape[0]
    zero = np.int64(0)  # not a literal 0: that would compile search() once more
    pt = np.empty((1, 3), np.float32)  # the colour searched: float32 points, as every other caller of search()
    for c in range(c0, c1):
        prev = zero  # neighbouring pixels mostly share an entry: start the search there
        err = 0.0
        last_key = -1
        last_err = 0.0
        for i in range(c * chunk, min(n, (c + 1) * chunk)):
            key = (np.int64(pixels[i, 0]) << 16) | (np.int64(pixels[i, 1]) << 8) | np.int64(pixels[i, 2])
            if key == last_key:  # a run of one colour: the same entry and error
                _store(out, wide, i, prev)
                err += last_err
                continue
            v = table[key]  # the entry + 1; 0: not met yet
            if v == 0:
                if oklab:
                    srgb_to_oklab_at(pixels, i, lin, scale, pt, 0)
                else:
                    for t in range(3):
                        pt[0, t] = pixels[i, t]
                v, _ = search(pt, zero, points, neighbors, sorted_d, prev, sqdist(pt, zero, points, prev))
                table[key] = v + 1
            else:
                v -= 1
            _store(out, wide, i, v)
            prev = v
            last_key = key
            last_err = sqdist(pixels, i, palette, v)
            err += last_err
        errs[c] = err


def lut_table():
    """An empty colour table for :func:`remap_lut`: 2**24 int16 entries, each colour's entry + 1.

    Zero means "not met yet", so that the table comes from the system as untouched zero pages:
    only the pages of colours an image has take memory (of 32 MiB, about half for a photo).
    Where the system has transparent huge pages, the table asks for small ones: numpy asks
    for huge pages (2 MiB) for large arrays, and a photo touches every 2 MiB of the table.
    """
    import mmap

    n = 1 << 24
    if hasattr(mmap, "MADV_NOHUGEPAGE"):  # Linux
        try:
            m = mmap.mmap(-1, 2 * n, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            m.madvise(mmap.MADV_NOHUGEPAGE)
            return np.frombuffer(m, np.int16)  # writable; unmapped when the array goes
        except (OSError, ValueError, AttributeError):
            pass
    return np.zeros(n, np.int16)


def remap_lut(pixels, palette, colorspace="rgb", *, table=None, out=None):
    """Nearest palette entry of every RGB pixel through a lazily filled colour table.

    Parameters
    ----------
    pixels : (N, 3) uint8 ndarray
    palette : (k, 3) uint8 ndarray, k <= 32767
    colorspace : {"rgb", "oklab"}
        Where "nearest" is measured (see :func:`nearest`).
    table : (2**24,) int16 ndarray, optional
        A table from :func:`lut_table` (each colour's entry + 1), filled by earlier calls with the same
        palette and colour space (strips of one image share it).
    out : (N,) ndarray, optional
        Where to write the indices (of the dtype returned).

    Returns
    -------
    indices : (N,) uint8 ndarray (uint16 when k > 256)
    sq_error : float
        Sum over pixels of the squared sRGB distance to their entry (exact).
    """
    pal = np.ascontiguousarray(palette, np.float32)
    if table is None:
        table = lut_table()
    out = np.empty(len(pixels), np.uint8 if len(palette) <= 256 else np.uint16) if out is None else out
    chunk = 16 * config.CHUNK
    n_chunks = (len(pixels) + chunk - 1) // chunk
    errs = np.zeros(n_chunks)
    pixels = np.ascontiguousarray(pixels)
    raw, wide = _index_bytes(out)
    points = pal if colorspace == "rgb" else _cs.to_points(np.ascontiguousarray(palette), "oklab")
    neighbors, sorted_d = neighbor_lists(points)
    oklab = colorspace != "rgb"
    args = (pixels, pal, points, oklab, _cs.LINEAR, _cs.SCALE, neighbors, sorted_d, table, raw, wide, errs)
    threads.run_blocks(lambda c0, c1: _lut_range(*args, chunk, c0, c1), n_chunks)
    return out, float(errs.sum())


_NO_SLOT = np.uint64(0xFFFFFFFFFFFFFFFF)


def rgba_cache():
    """An empty colour cache for :func:`remap_rgba` (``config.RGBA_CACHE_SLOTS`` words)."""
    return np.full(config.RGBA_CACHE_SLOTS, _NO_SLOT, np.uint64)


#: Cells per axis of the grid of :func:`remap_rgba` over the composites points.
_GRID = 16
#: The grid's lowest corner and cell sides; the composites points of uint8 RGBA
#: lie within it, in [-127.5, 127.5]**3 x [0, 220.9] (see :func:`fastquant.colorspace.composites`).
_ORIGIN = np.array([-128.0, -128.0, -128.0, 0.0])
_SIDE = np.array([384.0, 384.0, 384.0, 224.0]) / _GRID


@functools.cache
def _reach(grid, origin, sides):
    """The grid cells that the composites point of some uint8 RGBA colour falls in (found as
    :func:`_rgba_range` finds a pixel's cell): with alpha a, a colour channel's point runs from
    -a/2 (value 0) to a/2 (value 255).

    Returns
    -------
    (2, 3, grid) int64 ndarray
        ``[0, ch, g]`` .. ``[1, ch, g]``: the cells along colour channel ch of the points whose
        alpha is in cell g (every alpha cell has some).
    """
    origin, sides = np.array(origin), np.array(sides)
    a = np.arange(256.0)

    def cell(x, ch):  # as _rgba_range, on the float32 coordinates
        x = x.astype(np.float32).astype(np.float64)
        return np.clip(((x - origin[ch]) / sides[ch]).astype(np.int64), 0, grid - 1)

    alpha_cell = cell(COMPOSITE_ALPHA * a, 3)
    reach = np.empty((2, 3, grid), np.int64)
    for ch in range(3):
        lo, hi = cell(0.0 * a / 255.0 - a / 2.0, ch), cell(255.0 * a / 255.0 - a / 2.0, ch)
        for g in range(grid):
            at = alpha_cell == g
            reach[:, ch, g] = (lo[at].min(), hi[at].max()) if at.any() else (grid, -1)
    return reach


@njit(cache=True, nogil=True)
def _cell_lists(points, grid, origin, sides, reached):
    """For every cell of a ``grid**4`` grid of cells ``sides`` wide from ``origin``, the entries that can be
    the nearest of a point in it: those whose distance to the cell is at most the
    smallest, over all entries, of the distance to the cell's farthest corner.
    (The nearest entry of a point p of the cell is no farther from p than that
    bound, and no nearer to p than to the cell.)  Entries in increasing index.
    Only the cells in ``reached`` get entries (see :func:`_reach`): the others, none.

    Returns (starts, entries): cell i's entries are entries[starts[i]:starts[i + 1]].
    """
    k = points.shape[0]
    n_cells = grid**4
    starts = np.zeros(n_cells + 1, np.int64)
    lists = np.empty(n_cells * 8, np.int32)
    dmin = np.empty(k)
    lo = np.empty(4)
    at_cell = np.empty(4, np.int64)
    for cell in range(n_cells):
        rest = cell
        for ch in range(3, -1, -1):
            at_cell[ch] = rest % grid
            lo[ch] = origin[ch] + at_cell[ch] * sides[ch]
            rest //= grid
        out = False
        for ch in range(3):
            out = out or at_cell[ch] < reached[0, ch, at_cell[3]] or at_cell[ch] > reached[1, ch, at_cell[3]]
        if out:
            starts[cell + 1] = starts[cell]
            continue
        bound = np.inf
        for j in range(k):
            near = 0.0
            far = 0.0
            for ch in range(4):
                x = np.float64(points[j, ch])
                a = lo[ch] - x
                b = x - (lo[ch] + sides[ch])
                gap = max(a, b, 0.0)
                near += gap * gap
                reach = max(abs(a), abs(b))
                far += reach * reach
            dmin[j] = near
            bound = min(bound, far)
        bound = bound * (1.0 + 1e-6) + 1e-3  # float32 distances later: never prune a tie
        at = starts[cell]
        for j in range(k):
            if dmin[j] <= bound:
                if at == lists.shape[0]:
                    grown = np.empty(2 * lists.shape[0], np.int32)
                    for t in range(at):  # not grown[:at] = lists[:at]: that compiles Numba's string code
                        grown[t] = lists[t]
                    lists = grown
                lists[at] = j
                at += 1
        starts[cell + 1] = at
    return starts, lists[: starts[n_cells]]


@njit(cache=True, nogil=True)
def _rgba_range(pixels, straight, points, origin, sides, starts, lists, cache, out, wide, errs, c, lo, hi):
    """Nearest entry in composites space of pixels lo .. hi - 1 (a chunk), through
    a direct-mapped cache of (colour, entry) words, and the chunk's error sums:
    straight RGBA, the composites over black and over white, the largest alpha change.

    A cache word packs the colour and its entry, so that threads sharing the
    cache can only ever read a whole word that one of them wrote.
    """
    mask = np.uint64(cache.shape[0] - 1)
    pt = np.empty((1, 4), np.float32)
    prev = 0
    last_key = np.uint64(0xFFFFFFFFFFFFFFFF)
    sq = black = white = 0.0
    worst = 0
    e_sq = e_black = e_white = 0.0
    e_alpha = 0
    for i in range(lo, hi):
        key = (
            (np.uint64(pixels[i, 0]) << np.uint64(24))
            | (np.uint64(pixels[i, 1]) << np.uint64(16))
            | (np.uint64(pixels[i, 2]) << np.uint64(8))
            | np.uint64(pixels[i, 3])
        )
        if key != last_key:
            slot = ((key * np.uint64(2654435761)) >> np.uint64(12)) & mask
            word = cache[slot]
            if word != _NO_SLOT and (word >> np.uint64(16)) == key:
                v = np.int64(word & np.uint64(0xFFFF))
            else:
                a = np.float64(pixels[i, 3])
                for ch in range(3):  # keep in sync with colorspace.composites: float64, rounded once
                    pt[0, ch] = np.float32(np.float64(pixels[i, ch]) * a / 255.0 - a / 2.0)
                pt[0, 3] = np.float32(COMPOSITE_ALPHA * a)
                cell = 0
                for ch in range(4):
                    cell = cell * _GRID + min(_GRID - 1, max(0, int((np.float64(pt[0, ch]) - origin[ch]) / sides[ch])))
                v = -1
                dv = np.float32(np.inf)
                for t in range(starts[cell], starts[cell + 1]):  # increasing index: ties go to the lowest
                    j = lists[t]
                    dj = sqdist(pt, 0, points, j)
                    if dj < dv:
                        v = j
                        dv = dj
                cache[slot] = (key << np.uint64(16)) | np.uint64(v)
            prev = v
            last_key = key
            # the errors of this colour against its entry; keep in sync with metrics.composite
            e_sq = np.float64(sqdist(pixels, i, straight, v))
            a1 = np.float64(pixels[i, 3]) / 255.0
            a2 = np.float64(straight[v, 3]) / 255.0
            e_black = e_white = 0.0
            for ch in range(3):
                b1 = np.float64(pixels[i, ch]) * a1
                b2 = np.float64(straight[v, ch]) * a2
                db = b1 - b2
                dw = (b1 + 255.0 * (1.0 - a1)) - (b2 + 255.0 * (1.0 - a2))
                e_black += db * db
                e_white += dw * dw
            e_alpha = abs(np.int64(pixels[i, 3]) - np.int64(straight[v, 3]))
        _store(out, wide, i, prev)
        sq += e_sq
        black += e_black
        white += e_white
        worst = max(worst, e_alpha)
    errs[c, 0] = sq
    errs[c, 1] = black
    errs[c, 2] = white
    errs[c, 3] = worst


class RGBASearch:
    """What :func:`remap_rgba` builds once per palette: the entries' composites points,
    the grid's candidate lists and the colour cache; strips of one image share it.

    Parameters
    ----------
    palette : (k, 4) uint8 ndarray, k <= 65536
        Straight RGBA entries.
    """

    def __init__(self, palette):
        self.palette = np.ascontiguousarray(palette, np.uint8)
        self.straight = self.palette.astype(np.float32)
        self.points = _cs.composites(self.palette)
        reach = _reach(_GRID, tuple(_ORIGIN), tuple(_SIDE))
        self.starts, self.lists = _cell_lists(self.points, _GRID, _ORIGIN, _SIDE, reach)
        self.cache = rgba_cache()


def remap_rgba(pixels, palette, *, search=None, out=None):
    """Nearest palette entry of every RGBA pixel, in composites space (:func:`fastquant.colorspace.composites`).

    Parameters
    ----------
    pixels : (N, 4) uint8 ndarray
        Straight RGBA.
    palette : (k, 4) uint8 ndarray, k <= 65536
        Straight RGBA entries.
    search : RGBASearch, optional
        Built for ``palette`` and kept between calls (the strips of one image).
    out : (N,) ndarray, optional
        Where to write the indices (of the dtype returned).

    Returns
    -------
    indices : (N,) uint8 ndarray (uint16 when k > 256)
        Nearest entry of each pixel by composites distance (ties: lowest index).
    sums : (4,) float64 ndarray
        Summed squared error of the straight RGBA values; of the RGB
        composites over black and over white (see
        :func:`fastquant.metrics.over_sq_error`); and the largest alpha change.
    """
    pixels = np.ascontiguousarray(pixels, np.uint8)
    s = RGBASearch(palette) if search is None else search
    if out is None:
        out = np.empty(len(pixels), np.uint8 if len(palette) <= 256 else np.uint16)
    chunk = 16 * config.CHUNK
    n_chunks = (len(pixels) + chunk - 1) // chunk
    errs = np.zeros((n_chunks, 4))
    raw, wide = _index_bytes(out)
    threads.run(
        lambda c: _rgba_range(
            pixels,
            s.straight,
            s.points,
            _ORIGIN,
            _SIDE,
            s.starts,
            s.lists,
            s.cache,
            raw,
            wide,
            errs,
            c,
            c * chunk,
            min(len(pixels), (c + 1) * chunk),
        ),
        range(n_chunks),
    )
    sums = errs[:, :3].sum(axis=0)  # chunk sums in chunk order: the same floats on any thread count
    return out, np.array([sums[0], sums[1], sums[2], errs[:, 3].max(initial=0.0)])
