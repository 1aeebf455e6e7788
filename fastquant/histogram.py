"""Unique colours with pixel counts: the k-means works on these, never on pixels.

An open-addressing hash table keyed by the packed colour (one pass over the
pixels, no sort) gives the unique colours in order of first appearance, their
counts and, for every pixel, the index of its colour (the inverse map used to
remap pixels by table lookup).
"""

import numpy as np

from .jit import njit

_GOLDEN = np.uint64(2654435761)  # Knuth's multiplicative hash constant
_MASK32 = np.uint64(0xFFFFFFFF)


@njit(cache=True, nogil=True, inline="always")
def _pack(pixels, i):
    """Pack pixel i of (N, c) uint8 pixels into a uint32 key (indexing the
    array itself: a row view per pixel costs more than the packing).
    """
    key = np.uint64(0)
    for ch in range(pixels.shape[1]):
        key = (key << np.uint64(8)) | np.uint64(pixels[i, ch])
    return key


_EMPTY = np.uint64(0xFFFFFFFFFFFFFFFF)
_LOW32 = np.uint64(0xFFFFFFFF)


@njit(cache=True, nogil=True, inline="always")
def _slot(key, bits):
    return np.int64(((key * _GOLDEN) & _MASK32) >> np.uint64(32 - bits))


@njit(cache=True, nogil=True, inline="always")
def _probe(table, key, bits):
    """(slot, entry) of ``key`` in the open-addressing table: its entry, or the empty slot it goes in."""
    mask = (1 << bits) - 1
    h = _slot(key, bits)
    while True:
        e = table[h]
        if e == _EMPTY or (e >> np.uint64(32)) == key:
            return h, e
        h = (h + 1) & mask


@njit(cache=True, nogil=True, inline="always")
def _empty_table(bits):
    """A table of 2**bits empty slots (a loop: ``np.full`` would compile Numba's string code)."""
    table = np.empty(1 << bits, np.uint64)
    for t in range(table.shape[0]):
        table[t] = _EMPTY
    return table


@njit(cache=True, nogil=True)
def _unique(pixels):
    """Colours in order of first appearance, each pixel's colour index, and the counts.

    Table entries pack (key << 32 | colour index), so a probe touches one
    cache line; the load stays below one half (the table doubles and is
    rebuilt when it would not).
    """
    n, c = pixels.shape
    bits = 12
    while (1 << bits) < 2 * min(n, 1 << 16):
        bits += 1
    table = _empty_table(bits)
    cap = max(min(n, 1 << 16), 1)
    first = np.empty(cap, np.int64)
    inverse = np.empty(n, np.int32)
    m = 0
    last_key = _EMPTY  # no colour packs to it
    last = 0
    for i in range(n):
        key = _pack(pixels, i)
        if key == last_key:  # runs of one colour (graphics, flat areas) skip the table
            inverse[i] = last
            continue
        last_key = key
        h, e = _probe(table, key, bits)
        if e != _EMPTY:
            last = np.int32(e & _LOW32)
            inverse[i] = last
            continue
        if m == cap:  # grow the first-appearance array
            cap *= 2
            first2 = np.empty(cap, np.int64)
            for s in range(m):  # element by element: an array assignment compiles Numba's string code
                first2[s] = first[s]
            first = first2
        first[m] = i
        inverse[i] = m
        last = m
        table[h] = (key << np.uint64(32)) | np.uint64(m)
        m += 1
        if 2 * m > (1 << bits):  # rehash into a table twice the size
            bits += 1
            mask = (1 << bits) - 1
            old = table
            table = _empty_table(bits)
            for t in range(old.size):
                e = old[t]
                if e == _EMPTY:
                    continue
                h = _slot(e >> np.uint64(32), bits)
                while table[h] != _EMPTY:
                    h = (h + 1) & mask
                table[h] = e
    colors = np.empty((m, c), np.uint8)
    for s in range(m):
        for t in range(c):
            colors[s, t] = pixels[first[s], t]
    counts = np.zeros(m, np.int64)
    cur = inverse[0] if n else 0
    run = 0
    for i in range(n):  # runs summed in a register: no memory round trip per pixel
        v = inverse[i]
        if v == cur:
            run += 1
        else:
            counts[cur] += run
            cur = v
            run = 1
    if n:
        counts[cur] += run
    return colors, inverse, counts


@njit(cache=True, nogil=True)
def _count(pixels, limit):
    """Colours in order of first appearance and their counts, with no per-pixel
    index; stops (returning what it has) once more than ``limit`` colours are met.
    """
    n, c = pixels.shape
    bits = 12
    while (1 << bits) < 2 * min(n, limit + 1):
        bits += 1
    table = _empty_table(bits)
    cap = max(min(n, limit + 1), 1)
    first = np.empty(cap, np.int64)
    counts = np.zeros(cap, np.int64)
    m = 0
    last_key = _EMPTY
    last = 0
    run = 0
    for i in range(n):
        key = _pack(pixels, i)
        if key == last_key:
            run += 1  # in a register: no memory round trip per pixel of a run
            continue
        if run:
            counts[last] += run
        last_key = key
        run = 1
        h, e = _probe(table, key, bits)
        if e != _EMPTY:
            last = np.int64(e & _LOW32)
            continue
        if m == cap:  # past the limit: the table is no larger than it allows
            run = 0
            m += 1
            break
        first[m] = i
        last = m
        table[h] = (key << np.uint64(32)) | np.uint64(m)
        m += 1
    if run:
        counts[last] += run
    k = min(m, cap)
    colors = np.empty((k, c), np.uint8)
    for s in range(k):
        for t in range(c):
            colors[s, t] = pixels[first[s], t]
    return colors, counts[:k], m > cap


def count_colors(pixels, limit=1 << 20):
    """Distinct colours of pixels and how many pixels have each, without a per-pixel index.

    Parameters
    ----------
    pixels : (N, C) uint8 ndarray, 1 <= C <= 4
    limit : int
        Most colours counted: the table never grows past it.

    Returns
    -------
    colors : (M, C) uint8 ndarray
        In order of first appearance (as :func:`unique_colors` gives them).
    counts : (M,) int64 ndarray
    Or ``(None, None)`` when there are more than ``limit`` colours.
    """
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    if pixels.ndim != 2 or not 1 <= pixels.shape[1] <= 4:
        raise ValueError(f"expected (N, C) pixels with 1 <= C <= 4, got shape {pixels.shape}")
    colors, counts, over = _count(pixels, int(limit))
    return (None, None) if over else (colors, counts)


def unique_colors(pixels):
    """Unique colours of an image, their pixel counts and each pixel's colour index.

    Parameters
    ----------
    pixels : (N, C) uint8 ndarray
        Pixels, 1 <= C <= 4 channels (3 for RGB, 4 for RGBA).

    Returns
    -------
    colors : (M, C) uint8 ndarray
        The distinct colours, in order of first appearance.
    counts : (M,) int64 ndarray
        How many pixels have each colour; sums to N.
    inverse : (N,) int32 ndarray
        ``colors[inverse]`` equals ``pixels``.
    """
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    if pixels.ndim != 2 or not 1 <= pixels.shape[1] <= 4:
        raise ValueError(f"expected (N, C) pixels with 1 <= C <= 4, got shape {pixels.shape}")
    colors, inverse, counts = _unique(pixels)
    return colors, counts, inverse


def coarsen(colors, counts, max_colors):
    """Merge colours into grid cells until at most ``max_colors`` remain.

    Each channel drops its lowest bits, one more at a time, until the number
    of occupied cells fits; a cell is represented by the weighted mean of
    its colours.  Used to fit a palette on very colourful images; the final
    mapping still uses every exact colour.

    Parameters
    ----------
    colors : (M, C) uint8 ndarray
    counts : (M,) int64 or float64 ndarray
        Pixel counts, or importance-weighted counts (``compress(weights=)``).
    max_colors : int

    Returns
    -------
    means : (M', C) float32 ndarray
        Weighted mean colour of each occupied cell, M' <= max(max_colors, 1).
    weights : (M',) float64 ndarray
        Pixel count (or summed weight) of each cell.
    cell : (M,) int32 ndarray
        The cell of every colour.
    """
    if len(colors) <= max_colors:
        return colors.astype(np.float32), counts.astype(np.float64), np.arange(len(colors), dtype=np.int32)
    # The fewest dropped bits that fit, found by counting cells alone (a bitmap of the
    # cells where it is small: a fraction of the cost of the table of first appearances,
    # which is built once, at that shift); the means are then summed once, in a kernel
    # (no per-channel temporaries).
    shift = 0
    while shift < 8:
        shift += 1
        n = _occupied(colors, shift)
        if n is not None and n > max_colors:
            continue
        cells, inv, _ = _unique(np.ascontiguousarray(colors >> shift))
        if len(cells) <= max_colors:
            break
    if np.issubdtype(counts.dtype, np.integer):  # exact integer sums, in a kernel
        weights, sums = _cell_sums(colors, np.ascontiguousarray(counts, np.int64), inv, len(cells))
    else:  # fractional weights must not be truncated to whole pixels
        weights = np.bincount(inv, weights=counts, minlength=len(cells))
        sums = np.stack(
            [np.bincount(inv, weights=counts * colors[:, t], minlength=len(cells)) for t in range(colors.shape[1])],
            axis=1,
        )
    return (sums / weights[:, None]).astype(np.float32), weights, inv


#: Most cells counted with a bitmap by :func:`_occupied` (one byte each).
_BITMAP_CELLS = 1 << 24


def _occupied(colors, shift):
    """How many cells ``colors`` (M, C) uint8 occupy once ``shift`` low bits are dropped,
    or None when there are more than ``_BITMAP_CELLS`` possible cells (RGBA at shift 1).
    """
    bits = 8 - shift
    if 1 << (colors.shape[1] * bits) > _BITMAP_CELLS:
        return None
    key = np.zeros(len(colors), np.int64)
    for t in range(colors.shape[1]):
        key = (key << bits) | (colors[:, t] >> shift)
    seen = np.zeros(1 << (colors.shape[1] * bits), bool)
    seen[key] = True
    return int(np.count_nonzero(seen))


@njit(cache=True, nogil=True)
def _cell_sums(colors, counts, cell, m):
    """Pixel count and count-weighted colour sums of each of m cells, added in
    colour order (as ``np.bincount`` adds them).
    """
    weights = np.zeros(m)
    sums = np.zeros((m, colors.shape[1]))
    for i in range(colors.shape[0]):
        j = cell[i]
        weights[j] += np.float64(counts[i])
        for t in range(colors.shape[1]):
            sums[j, t] += np.float64(counts[i] * np.int64(colors[i, t]))
    return weights, sums


def weighted_counts(inverse, pixel_weights, m):
    """Per-colour sums of per-pixel weights: the histogram of an importance map.

    The entry point for any per-pixel weighting (``compress(weights=...)``):
    the k-means then pulls harder towards colours of heavier pixels.  The
    unweighted path never calls it (its counts are the integers
    :func:`unique_colors` gives).

    Parameters
    ----------
    inverse : (N,) int32 ndarray
        Colour index of every pixel (:func:`unique_colors`).
    pixel_weights : (N,) float64 ndarray
        Weight of every pixel, >= 0.
    m : int
        Number of colours.

    Returns
    -------
    (m,) float64 ndarray
        Summed weight of the pixels of every colour.
    """
    return np.bincount(inverse, weights=pixel_weights, minlength=m)


def merge(parts):
    """Merge histograms into one: the histogram of all their pixels together.

    Colours come in order of first appearance over the parts in turn, so the
    result equals :func:`unique_colors` of the concatenated pixels (colours
    and counts), and a k-means on it equals one on the concatenation.

    Parameters
    ----------
    parts : sequence of (colors, counts)
        ``colors`` (M_i, C) uint8 ndarrays with one C for all; ``counts``
        (M_i,) int64 (pixel counts) or float64 (weighted counts) ndarrays.

    Returns
    -------
    colors : (M, C) uint8 ndarray
    counts : (M,) ndarray
        int64 when every part's counts are integers, else float64.
    inverse : (sum M_i,) int32 ndarray
        The merged index of every colour of the parts, concatenated.
    """
    colors = np.concatenate([np.asarray(c, np.uint8) for c, _ in parts])
    merged, _, inverse = unique_colors(colors)
    counts = np.concatenate([np.asarray(w) for _, w in parts])
    summed = np.bincount(inverse, weights=counts, minlength=len(merged))
    if np.issubdtype(counts.dtype, np.integer):
        summed = summed.astype(np.int64)  # exact: float64 holds integer sums below 2**53
    return merged, summed, inverse
