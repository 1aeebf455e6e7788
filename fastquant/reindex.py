"""The layout of an indexed PNG's data that deflates best: the palette's order in the file and
each row's filter.

With palette entries ordered by use (what :func:`fastquant.compress` gives),
neighbouring indices are unrelated colours, and PNG's row filters (which
predict a byte from its left, upper and upper-left neighbours) only add
noise: filter None is the smallest.  Reordered so that entries that often
stand next to each other in the picture get nearby indices, the prediction
errors become small, repetitive numbers, and per-row filters take several
percent off many photos (a strong lossless optimizer such as oxipng finds
the same).

:func:`order` is the palette order: entries are placed one by one, the one
most often adjacent to those already placed first, each at the position
where it adds least to the sum over pairs of entries of (how often the two
are adjacent) x (how far apart their indices are) (Zeng's reindexing as
improved by Pinho et al., with the best insertion point rather than an end).
:func:`filter_rows` gives every row the PNG filter whose output has the
least byte entropy.  :func:`fastquant.png.png_indexed` tries this layout
against the plain one and keeps the smaller file.
"""

import numpy as np

from .jit import njit

#: PNG filter types: None, Sub, Up, Average, Paeth.
N_FILTERS = 5


def cooccurrence(indices, k):
    """How often every two entries are neighbours (left-right or up-down), symmetric, zero diagonal.

    Parameters
    ----------
    indices : (H, W) uint8 ndarray
        Entries < k.
    k : int

    Returns
    -------
    (k, k) int64 ndarray
    """
    x = np.asarray(indices).astype(np.int64)
    c = np.bincount((x[:, :-1] * k + x[:, 1:]).ravel(), minlength=k * k)
    c += np.bincount((x[:-1] * k + x[1:]).ravel(), minlength=k * k)
    c = c.reshape(k, k)
    c = c + c.T
    np.fill_diagonal(c, 0)
    return c


@njit(cache=True, nogil=True)
def _insertion_order(c):
    """Greedy linear arrangement of ``c`` (k, k) int64 (see :func:`order`); returns (k,) int64."""
    k = c.shape[0]
    out = np.empty(k, np.int64)
    placed = np.zeros(k, np.bool_)
    best, a, b = -1, 0, 1
    for i in range(k):
        for j in range(i + 1, k):
            if c[i, j] > best:
                best, a, b = c[i, j], i, j
    out[0], out[1] = a, b
    placed[a] = placed[b] = True
    sums = c[:, a] + c[:, b]
    m = 2
    while m < k:
        e, top = -1, np.int64(-1)
        for i in range(k):
            if not placed[i] and sums[i] > top:
                e, top = i, sums[i]
        # cost(p) = sum_j c[e, out[j]] * |distance after insertion at p|
        #         + sum of c over pairs that straddle p (they move one apart)
        new = np.int64(0)
        for j in range(m):
            new += c[e, out[j]] * (j + 1)
        cross = np.int64(0)
        left = np.int64(0)  # sum of c[e, out[j]] for j < p - 1
        total = np.int64(0)
        for j in range(m):
            total += c[e, out[j]]
        pos, low = 0, new
        for p in range(1, m + 1):
            q = out[p - 1]
            for j in range(p, m):
                cross += c[q, out[j]]
            for j in range(p - 1):
                cross -= c[q, out[j]]
            cq = c[e, q]
            new += left - (total - left - cq)  # j < p - 1 move one farther, j >= p one nearer
            left += cq
            if new + cross < low:
                pos, low = p, new + cross
        for j in range(m, pos, -1):
            out[j] = out[j - 1]
        out[pos] = e
        placed[e] = True
        m += 1
        for i in range(k):
            sums[i] += c[i, e]
    return out


def order(indices, k):
    """A palette order for ``indices`` that makes filtered rows compress well (module docstring).

    Parameters
    ----------
    indices : (H, W) uint8 ndarray
        Entries < k.
    k : int
        Palette size, >= 2.

    Returns
    -------
    (k,) int64 ndarray
        ``order[i]``: the entry placed at index i (a permutation of range(k)).
    """
    if k < 3:
        return np.arange(k, dtype=np.int64)
    return _insertion_order(cooccurrence(indices, k))


def filtered(indices):
    """The five PNG filters of 8-bit rows.

    Parameters
    ----------
    indices : (H, W) uint8 ndarray

    Returns
    -------
    (5, H, W) uint8 ndarray
        Filter types 0-4 (None, Sub, Up, Average, Paeth) of every row, each
        predicting from the unfiltered rows (the first row's "up" is zeros).
    """
    x = np.asarray(indices).astype(np.int16)
    a = np.zeros_like(x)
    a[:, 1:] = x[:, :-1]
    b = np.zeros_like(x)
    b[1:] = x[:-1]
    c = np.zeros_like(x)
    c[1:, 1:] = x[:-1, :-1]
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    return np.stack([x, x - a, x - b, x - (a + b) // 2, x - paeth]).astype(np.uint8)  # mod 256


def filter_rows(indices):
    """The raw PNG rows of 8-bit ``indices``, each after the filter whose bytes have least entropy.

    Parameters
    ----------
    indices : (H, W) uint8 ndarray

    Returns
    -------
    (H, W + 1) uint8 ndarray
        Filter type byte, then the filtered row.
    """
    f = filtered(indices)
    n, h, w = f.shape
    rows = np.arange(h, dtype=np.int64)[None, :, None] * 256
    kinds = np.arange(n, dtype=np.int64)[:, None, None] * (h * 256)
    counts = np.bincount((kinds + rows + f).ravel(), minlength=n * h * 256).reshape(n, h, 256)
    p = counts / w
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(counts > 0, p * np.log2(p), 0.0).sum(axis=2)
    choice = entropy.argmin(axis=0)
    raw = np.empty((h, w + 1), np.uint8)
    raw[:, 0] = choice
    raw[:, 1:] = f[choice, np.arange(h)]
    return raw
