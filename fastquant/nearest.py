"""Nearest-centre search, shared by k-means (:mod:`fastquant.lloyd`) and
:mod:`fastquant.remap`.

Every search is exact (ties go to the lowest index).  Each centre keeps a
list of its nearest centres sorted by distance (:func:`neighbor_lists`); a
point is searched from a starting centre c0 (its previous centre, or the
previous pixel's) along c0's list: once a neighbour is more than twice as
far from c0 as the point is, no later one can be nearer (triangle
inequality), so most distances are never computed.  Above
``config.NEIGHBOR_LIST_MAX_K`` centres there are no lists: points scan every
centre, and k-means keeps Hamerly's distance bounds instead (:class:`Search`).

Public kernels, for other modules' kernels to call: :func:`sqdist` and
:func:`search`.  Python entry points: :func:`assign`, :func:`neighbor_lists`, :func:`search_lists`.
Fixed types: float32 points and centres, int32 labels.
"""

import numpy as np

from . import config, threads
from .jit import njit

#: Slack on the pruning radius so float32 rounding can never prune the true nearest.
_SLACK = np.float32(4.004)
#: Margin on the previous L-th neighbour distance used as the next build's hint.
_HINT_MARGIN = np.float32(1.05)


@njit(cache=True, nogil=True, inline="always")
def sqdist(points, i, centers, j):
    """Squared distance (float32) from ``points[i]`` to ``centers[j]``."""
    d = points.shape[1]
    if d == 3:  # colours: unrolled by hand (d is only known at run time)
        a = points[i, 0] - centers[j, 0]
        b = points[i, 1] - centers[j, 1]
        c = points[i, 2] - centers[j, 2]
        return a * a + b * b + c * c
    s = np.float32(0.0)
    for t in range(d):
        diff = points[i, t] - centers[j, t]
        s += diff * diff
    return s


@njit(cache=True, nogil=True)
def _kth_smallest(v, kth):
    """The kth smallest value (0-based) of v, which is reordered (quickselect, in place)."""
    lo, hi = 0, len(v) - 1
    while lo < hi:
        pivot = v[(lo + hi) // 2]
        i, j = lo, hi
        while i <= j:
            while v[i] < pivot:
                i += 1
            while v[j] > pivot:
                j -= 1
            if i <= j:
                v[i], v[j] = v[j], v[i]
                i += 1
                j -= 1
        if kth <= j:
            hi = j
        elif kth >= i:
            lo = i
        else:
            break
    return v[kth]


@njit(cache=True, nogil=True)
def _neighbor_rows(centers, neighbors, sorted_d, hint, lo, hi):
    """For centres lo..hi-1, their L nearest centres (themselves included) by
    increasing distance (ties: lower index first).

    ``hint[a]`` is a guess of a squared distance beyond the L-th neighbour of
    centre a (the previous iteration's, with a margin): only the centres
    inside it are sorted, usually few more than L.  Without a guess, or when
    fewer than L centres lie within it, the L-th smallest distance is found
    by quickselect and used instead, so the lists are always exactly those
    of a fresh build.
    """
    k = centers.shape[0]
    L = neighbors.shape[1]
    dist = np.empty(k, np.float32)
    cand = np.empty(k, np.int64)
    cd = np.empty(k, np.float32)
    for a in range(lo, hi):
        for b in range(k):
            dist[b] = sqdist(centers, a, centers, b)
        lim = hint[a]
        for attempt in range(2):
            if attempt or not lim < np.inf:  # no guess, or too tight: the L-th smallest itself
                for b in range(k):  # not cd[:] = dist: that compiles Numba's string code
                    cd[b] = dist[b]
                lim = _kth_smallest(cd, L - 1)
            m = 0
            for b in range(k):
                if dist[b] <= lim:
                    cand[m] = b
                    m += 1
            if m >= L:
                break
        # Insertion sort of the candidates (listed by index, few more than L):
        # stable, so equal distances keep index order.
        for t in range(m):
            b = cand[t]
            db = dist[b]
            pos = t
            while pos > 0 and cd[pos - 1] > db:
                cd[pos] = cd[pos - 1]
                cand[pos] = cand[pos - 1]
                pos -= 1
            cd[pos] = db
            cand[pos] = b
        for t in range(L):
            neighbors[a, t] = cand[t]
            sorted_d[a, t] = cd[t]


@njit(cache=True, nogil=True)
def _search_all(points, i, centers, c0, d0):
    """Nearest centre of point i among all centres, starting from c0 at squared
    distance d0 (ties: lowest index).

    Returns (nearest centre, its squared distance, the distance, not squared,
    to the second nearest).
    """
    k = centers.shape[0]
    best = c0
    dbest = d0
    second = np.inf
    for j in range(k):
        if j == best:
            continue
        dj = sqdist(points, i, centers, j)
        if dj < dbest or (dj == dbest and j < best):
            second = min(second, dbest)
            best = j
            dbest = dj
        else:
            second = min(second, dj)
    return best, dbest, np.sqrt(second)


@njit(cache=True, nogil=True)
def search(points, i, centers, neighbors, sorted_d, c0, d0):
    """Nearest centre of point i (ties: lowest index) and its squared distance,
    searched from centre c0 at squared distance d0 (``sqdist(points, i, centers, c0)``)
    along c0's sorted neighbour list (``neighbors,
    sorted_d`` of :func:`neighbor_lists`), or among all centres when there are
    no lists (``neighbors`` with no rows) or the list ends inside the search
    radius (a far outlier).

    One call of :func:`_search_all`: this kernel is
    compiled again into every kernel that calls it, and each call site costs.
    """
    k = centers.shape[0]
    L = neighbors.shape[1]
    lim = _SLACK * d0
    if neighbors.shape[0] == k and (L == k or sorted_d[c0, L - 1] > lim):
        # The list walk; keep in sync with its copy in _assign_range.
        best = c0
        dbest = d0
        for t in range(L):
            if sorted_d[c0, t] > lim:
                break
            j = neighbors[c0, t]
            dj = sqdist(points, i, centers, j)
            if dj < dbest or (dj == dbest and j < best):
                best = j
                dbest = dj
        return best, dbest
    best, dbest, _ = _search_all(points, i, centers, c0, d0)
    return best, dbest


@njit(cache=True, nogil=True)
def _assign_range(points, centers, neighbors, sorted_d, labels, dist, lower, moves, lo, hi):
    """Nearest centre of points lo..hi-1 (ties: lowest index), starting from ``labels``.

    With neighbour lists (``neighbors`` has k rows) every point is searched
    along its previous centre's list (about five distances a point, which
    costs less than keeping bounds that would let it skip the search); a far
    outlier whose search radius passes the end of the list scans all centres.
    Without lists (very large k) every point scans all centres, unless its
    bound proves its centre still nearest: ``lower[i]`` is a lower bound on
    the distance (not squared) from point i to every centre but its own,
    valid before the centres moved by ``moves = (largest move, its centre,
    second largest move)``; ``moves[0] < 0`` means no valid bounds (Hamerly
    2010).
    """
    k = centers.shape[0]
    L = neighbors.shape[1]
    use_lists = neighbors.shape[0] == k
    for i in range(lo, hi):
        c0 = labels[i]
        if c0 < 0 or c0 >= k:
            c0 = 0
        d0 = sqdist(points, i, centers, c0)
        if use_lists and (L == k or sorted_d[c0, L - 1] > _SLACK * d0):
            # search()'s list walk, written out because this loop is the hot
            # one; keep in sync with search.
            lim = _SLACK * d0
            best = c0
            dbest = d0
            for t in range(L):
                if sorted_d[c0, t] > lim:
                    break
                j = neighbors[c0, t]
                dj = sqdist(points, i, centers, j)
                if dj < dbest or (dj == dbest and j < best):
                    best = j
                    dbest = dj
            labels[i] = best
            dist[i] = dbest
            continue
        if not use_lists and moves[0] >= 0.0:
            lb = lower[i] - (moves[2] if c0 == moves[1] else moves[0])
            if lb > 0.0 and d0 < lb * lb * 0.9999:
                lower[i] = lb
                dist[i] = d0
                continue
        best, dbest, bound = _search_all(points, i, centers, c0, d0)
        labels[i] = best
        dist[i] = dbest
        if not use_lists:  # with lists, ``lower`` is not kept (and may be empty)
            lower[i] = bound * 0.99999


# The wrappers below share the range kernels' work out to threads in blocks
# (:mod:`fastquant.threads`), or run it in one call when it is too small to pay
# for handing it over.  Either way each item is computed the same way, so
# results do not depend on the thread count.


def neighbor_lists(centers, hint=None):
    """Each centre's L = min(k, ``config.NEIGHBORS``) nearest centres, itself included.

    Parameters
    ----------
    centers : (k, d) float32 ndarray
    hint : (k, L) float32 ndarray, optional
        The previous lists' ``sorted_d`` (centres that moved a little); only
        speeds the build up, the result is the same.

    Returns
    -------
    neighbors : (k, L) int32 ndarray
        Neighbours of every centre by increasing distance (ties: lower index first).
    sorted_d : (k, L) float32 ndarray
        Their squared distances.
    """
    centers = np.ascontiguousarray(centers, np.float32)
    k = centers.shape[0]
    L = min(k, config.NEIGHBORS)
    neighbors = np.empty((k, L), np.int32)
    sorted_d = np.empty((k, L), np.float32)
    if hint is None or hint.shape != (k, L):
        lim = np.full(k, np.inf, np.float32)
    else:
        lim = hint[:, -1] * _HINT_MARGIN + np.float32(1e-6)
    threads.run_blocks(
        lambda lo, hi: _neighbor_rows(centers, neighbors, sorted_d, lim, lo, hi),
        k,
        None if k >= config.PARALLEL_MIN_CENTERS else 1,
    )
    return neighbors, sorted_d


def search_lists(centers, hint=None):
    """The neighbour lists :func:`search` takes: :func:`neighbor_lists` of the
    centres, or empty ones (every point scans all centres) above
    ``config.NEIGHBOR_LIST_MAX_K`` centres.

    Returns
    -------
    neighbors : (k, L) or (0, 0) int32 ndarray
    sorted_d : (k, L) or (0, 0) float32 ndarray
    """
    if len(centers) <= config.NEIGHBOR_LIST_MAX_K:
        return neighbor_lists(centers, hint)
    return np.empty((0, 0), np.int32), np.empty((0, 0), np.float32)


def _moves(old, new):
    """(largest move, its centre, second largest move) of the centres."""
    m = np.sqrt(((new.astype(np.float64) - old) ** 2).sum(axis=1))
    j = int(np.argmax(m))
    second = np.max(np.delete(m, j)) if len(m) > 1 else 0.0
    return np.array([m[j], j, second])


_NO_BOUNDS = np.array([-1.0, -1.0, -1.0])


class Search:
    """What a run of assignments keeps between calls of :func:`assign`: the last
    neighbour lists' distances (the next build's hint) or, without lists,
    distance bounds (then :meth:`moved` must be told every move of the centres).

    Parameters
    ----------
    n : int
        Number of points.
    k : int
        Number of centres.
    """

    def __init__(self, n, k):
        self.bounds = k > config.NEIGHBOR_LIST_MAX_K  # only searches without lists use bounds
        self.lower = np.empty(n if self.bounds else 0, np.float32)
        self.moves = _NO_BOUNDS
        self.sorted_d = None

    def moved(self, old, new):
        """The centres moved from ``old`` to ``new`` (both (k, d)) since the last assignment."""
        if self.bounds:
            self.moves = _moves(old, new)


def assign(points, centers, labels=None, search=None):
    """Nearest centre of every point (exact; ties go to the lowest index).

    Parameters
    ----------
    points : (n, d) float32 ndarray
    centers : (k, d) float32 ndarray
    labels : (n,) int32 ndarray, optional
        Starting guesses (e.g. the previous labels); overwritten with the result.
    search : Search, optional
        Bounds and neighbour lists kept between calls (by k-means).

    Returns
    -------
    labels : (n,) int32 ndarray
    dist : (n,) float32 ndarray
        Squared distance of each point to its centre.
    """
    points = np.ascontiguousarray(points, np.float32)
    centers = np.ascontiguousarray(centers, np.float32)
    n, k = points.shape[0], centers.shape[0]
    if labels is None:
        labels = np.zeros(n, np.int32)
    if search is None:
        search = Search(n, k)
    dist = np.empty(n, np.float32)
    neighbors, sorted_d = search_lists(centers, search.sorted_d)
    search.sorted_d = sorted_d
    args = (points, centers, neighbors, sorted_d, labels, dist, search.lower, search.moves)
    many = n >= config.THREAD_MIN_POINTS or (len(neighbors) == 0 and n * k >= config.PARALLEL_MIN_POINTS * 64)
    threads.run_blocks(lambda lo, hi: _assign_range(*args, lo, hi), n, None if many else 1)
    return labels, dist
