"""Weighted k-means (Lloyd's algorithm) with Numba kernels.

Points carry weights, so clustering an image's unique colours weighted by their
pixel counts gives the same centres as clustering every pixel, at a fraction
of the cost.

Kernels (private, fixed types: float32 points and centres, float64 weights,
int32 labels):

- ``_mediancut``: deterministic start; the box with the largest weighted
  squared error is split at its mean along its widest axis until there are
  k boxes; their means are the initial centres.
- ``_kmeanspp``: the alternative start, weighted k-means++ from a seed.
- ``_neighbors``: for every centre, the other centres sorted by distance.
- ``_assign``: exact nearest centre per point.  The search starts from the
  point's previous centre c0 and walks c0's sorted neighbour list; once a
  neighbour is more than twice as far from c0 as the point is, no later one
  can be nearer (triangle inequality), so most distances are never computed.
- ``_partial_sums``: weighted sums per centre over fixed chunks of points,
  added up in chunk order, so results do not depend on the thread count.
"""
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from .errors import OptionError

#: Points per chunk of the update's partial sums; fixed so that the float
#: summation order (and so the output) is the same for any thread count.
CHUNK = 4096
#: Above this many centres the k x k neighbour lists cost more than they save.
NEIGHBOR_LIST_MAX_K = 1024
#: Slack on the pruning radius so float32 rounding can never prune the true nearest.
_SLACK = np.float32(4.004)


class KMeansResult(NamedTuple):
    """Result of :func:`kmeans`.

    Attributes
    ----------
    centers : (k', d) float32 ndarray
        Cluster centres; k' < k only when there are fewer distinct points than k.
    labels : (n,) int32 ndarray
        Index of the nearest centre of every point.
    inertia : float
        Sum over points of weight times squared distance to its centre.
    n_iter : int
        Number of centre updates made.
    """

    centers: np.ndarray
    labels: np.ndarray
    inertia: float
    n_iter: int


@njit(cache=True, nogil=True, inline="always")
def _sqdist(points, i, centers, j):
    s = np.float32(0.0)
    for t in range(points.shape[1]):
        diff = points[i, t] - centers[j, t]
        s += diff * diff
    return s


@njit(cache=True, nogil=True)
def _box_stats(points, weights, order, lo, hi, mean):
    """Weighted mean of a box (into ``mean``); returns (squared error, widest axis)."""
    d = points.shape[1]
    s1 = np.zeros(d)
    s2 = np.zeros(d)
    wsum = 0.0
    for p in range(lo, hi):
        i = order[p]
        w = weights[i]
        wsum += w
        for t in range(d):
            v = np.float64(points[i, t])
            s1[t] += w * v
            s2[t] += w * v * v
    sse = 0.0
    axis = 0
    best = -1.0
    for t in range(d):
        m = s1[t] / wsum if wsum > 0 else 0.0
        mean[t] = m
        var = s2[t] - m * s1[t]
        if var < 0.0:
            var = 0.0
        sse += var
        if var > best:
            best = var
            axis = t
    return sse, axis


@njit(cache=True, nogil=True)
def _mediancut(points, weights, k):
    n, d = points.shape
    order = np.arange(n)
    start = np.zeros(k, np.int64)
    end = np.zeros(k, np.int64)
    sse = np.zeros(k)
    axis = np.zeros(k, np.int64)
    means = np.zeros((k, d))
    end[0] = n
    sse[0], axis[0] = _box_stats(points, weights, order, 0, n, means[0])
    nb = 1
    while nb < k:
        b = np.argmax(sse[:nb])
        if sse[b] <= 0.0:
            break  # every box holds a single distinct point
        a = axis[b]
        thr = means[b, a]
        lo = start[b]
        i = lo
        j = end[b] - 1
        while i <= j:  # partition the box's points around its mean
            if points[order[i], a] <= thr:
                i += 1
            else:
                tmp = order[i]
                order[i] = order[j]
                order[j] = tmp
                j -= 1
        if i == lo or i == end[b]:
            sse[b] = 0.0  # variance was float noise: nothing to split
            continue
        start[nb] = i
        end[nb] = end[b]
        end[b] = i
        sse[b], axis[b] = _box_stats(points, weights, order, start[b], end[b], means[b])
        sse[nb], axis[nb] = _box_stats(points, weights, order, start[nb], end[nb], means[nb])
        nb += 1
    centers = np.empty((nb, d), np.float32)
    labels = np.empty(n, np.int32)
    for b in range(nb):
        for t in range(d):
            centers[b, t] = means[b, t]
        for p in range(start[b], end[b]):
            labels[order[p]] = b
    return centers, labels


@njit(cache=True, nogil=True)
def _kmeanspp(points, weights, k, seed):
    np.random.seed(seed)
    n, d = points.shape
    centers = np.empty((k, d), np.float32)
    cum = np.cumsum(weights)
    i = min(np.searchsorted(cum, np.random.random() * cum[-1], side="right"), n - 1)
    centers[0] = points[i]
    dist = np.empty(n)
    for p in range(n):
        dist[p] = _sqdist(points, p, centers, 0)
    for c in range(1, k):
        cum = np.cumsum(weights * dist)
        if cum[-1] <= 0.0:
            return centers[:c].copy()  # every point already is a centre
        i = min(np.searchsorted(cum, np.random.random() * cum[-1], side="right"), n - 1)
        centers[c] = points[i]
        for p in range(n):
            dp = _sqdist(points, p, centers, c)
            if dp < dist[p]:
                dist[p] = dp
    return centers


@njit(cache=True, nogil=True)
def _neighbor_rows(centers, order, sorted_d, lo, hi):
    k = centers.shape[0]
    row = np.empty(k, np.float32)
    for a in range(lo, hi):
        for b in range(k):
            row[b] = _sqdist(centers, a, centers, b)
        o = np.argsort(row, kind="mergesort")
        for t in range(k):
            order[a, t] = o[t]
            sorted_d[a, t] = row[o[t]]


@njit(cache=True, nogil=True)
def _assign_range(points, centers, order, sorted_d, labels, dist, lo, hi):
    """Nearest centre of points lo..hi-1 (ties: lowest index), starting from ``labels``."""
    k = centers.shape[0]
    use_lists = order.shape[0] == k
    for i in range(lo, hi):
        c0 = labels[i]
        if c0 < 0 or c0 >= k:
            c0 = 0
        best = c0
        dbest = _sqdist(points, i, centers, c0)
        if use_lists:
            lim = _SLACK * dbest
            for t in range(k):
                if sorted_d[c0, t] > lim:
                    break
                j = order[c0, t]
                if j == c0:
                    continue
                dj = _sqdist(points, i, centers, j)
                if dj < dbest or (dj == dbest and j < best):
                    best = j
                    dbest = dj
        else:
            for j in range(k):
                dj = _sqdist(points, i, centers, j)
                if dj < dbest or (dj == dbest and j < best):
                    best = j
                    dbest = dj
        labels[i] = best
        dist[i] = dbest


@njit(cache=True, nogil=True)
def _sums_range(points, weights, labels, dist, sums, wsums, errs, c, lo, hi):
    """Weighted coordinate sums, weights and error per centre of points lo..hi-1 into chunk c."""
    d = points.shape[1]
    for i in range(lo, hi):
        lab = labels[i]
        w = weights[i]
        wsums[c, lab] += w
        errs[c] += w * dist[i]
        for t in range(d):
            sums[c, lab, t] += w * points[i, t]


# The parallel drivers split the work into fixed chunks and run the serial
# range kernels on them; the wrappers below call the range kernels directly
# when the work is too small to pay for waking the threads (which costs
# milliseconds on a loaded machine).  Either way each item is computed the
# same way, so results do not depend on the thread count.

@njit(cache=True, nogil=True, parallel=True)
def _neighbors_par(centers, order, sorted_d, chunk):
    k = centers.shape[0]
    for c in prange((k + chunk - 1) // chunk):
        _neighbor_rows(centers, order, sorted_d, c * chunk, min(k, (c + 1) * chunk))


@njit(cache=True, nogil=True, parallel=True)
def _assign_par(points, centers, order, sorted_d, labels, dist, chunk):
    n = points.shape[0]
    for c in prange((n + chunk - 1) // chunk):
        _assign_range(points, centers, order, sorted_d, labels, dist, c * chunk, min(n, (c + 1) * chunk))


@njit(cache=True, nogil=True, parallel=True)
def _sums_par(points, weights, labels, dist, sums, wsums, errs, chunk):
    n = points.shape[0]
    for c in prange((n + chunk - 1) // chunk):
        _sums_range(points, weights, labels, dist, sums, wsums, errs, c, c * chunk, min(n, (c + 1) * chunk))


#: Work sizes (points, or centres for the neighbour lists) from which the
#: parallel drivers are used.
PARALLEL_MIN_POINTS = 1 << 16
PARALLEL_MIN_CENTERS = 512


def _neighbors(centers):
    k = centers.shape[0]
    order = np.empty((k, k), np.int32)
    sorted_d = np.empty((k, k), np.float32)
    if k >= PARALLEL_MIN_CENTERS:
        _neighbors_par(centers, order, sorted_d, 64)
    else:
        _neighbor_rows(centers, order, sorted_d, 0, k)
    return order, sorted_d


def _partial_sums(points, weights, labels, dist, k, chunk):
    """Weighted coordinate sums (k, d) and weight (k,) per centre, and the inertia."""
    n, d = points.shape
    nch = (n + chunk - 1) // chunk
    sums = np.zeros((nch, k, d))
    wsums = np.zeros((nch, k))
    errs = np.zeros(nch)
    if n >= PARALLEL_MIN_POINTS:
        _sums_par(points, weights, labels, dist, sums, wsums, errs, chunk)
    else:
        for c in range(nch):
            _sums_range(points, weights, labels, dist, sums, wsums, errs, c, c * chunk, min(n, (c + 1) * chunk))
    # Chunk results are added in chunk order: the same sums for any thread count.
    total, wtotal, inertia = sums[0].copy(), wsums[0].copy(), float(errs[0])
    for c in range(1, nch):
        total += sums[c]
        wtotal += wsums[c]
        inertia += float(errs[c])
    return total, wtotal, inertia


@njit(cache=True, nogil=True)
def _new_centers(points, weights, dist, sums, wsums, centers):
    """Centres = weighted means; an empty centre takes the worst-fitting point."""
    k, d = sums.shape
    err = weights * dist
    for c in range(k):
        if wsums[c] > 0.0:
            for t in range(d):
                centers[c, t] = sums[c, t] / wsums[c]
        else:
            i = np.argmax(err)
            for t in range(d):
                centers[c, t] = points[i, t]
            err[i] = -1.0  # not chosen twice


def _chunk(k):
    return max(CHUNK, 16 * k)


def assign(points, centers, labels=None):
    """Nearest centre of every point (exact; ties go to the lowest index).

    Parameters
    ----------
    points : (n, d) float32 ndarray
    centers : (k, d) float32 ndarray
    labels : (n,) int32 ndarray, optional
        Starting guesses (e.g. the previous labels); overwritten with the result.

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
    dist = np.empty(n, np.float32)
    if k <= NEIGHBOR_LIST_MAX_K:
        order, sorted_d = _neighbors(centers)
    else:
        order, sorted_d = np.empty((0, 0), np.int32), np.empty((0, 0), np.float32)
    if n >= PARALLEL_MIN_POINTS or (k > NEIGHBOR_LIST_MAX_K and n * k >= PARALLEL_MIN_POINTS * 64):
        _assign_par(points, centers, order, sorted_d, labels, dist, CHUNK)
    else:
        _assign_range(points, centers, order, sorted_d, labels, dist, 0, n)
    return labels, dist


def _lloyd(points, weights, centers, labels, max_iter, tol):
    k = centers.shape[0]
    chunk = _chunk(k)
    prev = np.inf
    n_iter = 0
    while True:
        labels, dist = assign(points, centers, labels)
        sums, wsums, inertia = _partial_sums(points, weights, labels, dist, k, chunk)
        if n_iter >= max_iter or prev - inertia <= tol * inertia:
            return centers, labels, inertia, n_iter
        prev = inertia
        centers = centers.copy()
        _new_centers(points, weights, dist, sums, wsums, centers)
        n_iter += 1


def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise OptionError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise OptionError(f"{name} must be >= {low}, got {value}")
    return int(value)


def kmeans(points, k, *, weights=None, seed=0, max_iter=100, tol=1e-4, init="mediancut"):
    """Weighted k-means clustering (Lloyd's algorithm).

    Parameters
    ----------
    points : (n, d) array_like of float
        Points to cluster (converted to float32), n >= 1, 1 <= d <= 8.
    k : int
        Number of clusters, >= 1.  When the points hold k or fewer distinct
        values, exactly those values are returned as centres.
    weights : (n,) array_like of float, optional
        Non-negative weight of every point (e.g. pixel counts); default 1.
    seed : int
        Seed of the random generator used by ``init="k-means++"``.
    max_iter : int
        Maximum number of centre updates.
    tol : float
        Stop when an iteration lowers the inertia by less than ``tol`` times
        its value.
    init : {"mediancut", "k-means++"} or (k, d) array_like
        Starting centres: deterministic variance-based median cut, weighted
        k-means++ from ``seed``, or given centres.

    Returns
    -------
    KMeansResult
        ``centers`` (k', d) float32, ``labels`` (n,) int32, ``inertia``, ``n_iter``.

    Raises
    ------
    OptionError
        On wrong shapes, non-finite values, negative weights or k < 1.
    """
    k = _check_int("k", k, 1)
    max_iter = _check_int("max_iter", max_iter, 0)
    seed = _check_int("seed", seed, 0)
    if not (isinstance(tol, (int, float, np.floating)) and np.isfinite(tol) and tol >= 0):
        raise OptionError(f"tol must be a finite number >= 0, got {tol!r}")
    pts = np.asarray(points)
    if pts.ndim != 2 or pts.shape[0] < 1 or not 1 <= pts.shape[1] <= 8:
        raise OptionError(f"points must have shape (n, d) with n >= 1 and 1 <= d <= 8, got {pts.shape}")
    if not (np.issubdtype(pts.dtype, np.number) or pts.dtype == bool):
        raise OptionError(f"points must be numeric, got dtype {pts.dtype}")
    pts = np.ascontiguousarray(pts, np.float32)
    if not np.isfinite(pts).all():
        raise OptionError("points contain NaN or infinity")
    n = pts.shape[0]
    if weights is None:
        w = np.ones(n)
    else:
        w = np.ascontiguousarray(weights, np.float64)
        if w.shape != (n,):
            raise OptionError(f"weights must have shape ({n},), got {w.shape}")
        if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise OptionError("weights must be finite, >= 0 and not all zero")
    if isinstance(init, str):
        if init == "mediancut":
            centers, labels = _mediancut(pts, w, k)
        elif init == "k-means++":
            centers = _kmeanspp(pts, w, k, seed)
            labels = np.zeros(n, np.int32)
        else:
            raise OptionError(f"init must be 'mediancut', 'k-means++' or an array, got {init!r}")
    else:
        centers = np.ascontiguousarray(init, np.float32)
        if centers.ndim != 2 or centers.shape[1] != pts.shape[1] or not 1 <= len(centers) <= k:
            raise OptionError(f"init centres must have shape (k, {pts.shape[1]}), got {centers.shape}")
        labels = np.zeros(n, np.int32)
    if len(centers) < k and isinstance(init, str):
        # Fewer distinct points than k: the distinct points are the answer.
        uniq = np.unique(pts[w > 0], axis=0)
        if len(uniq) <= k:
            labels, dist = assign(pts, uniq)
            inertia = float(np.dot(w, dist))
            return KMeansResult(uniq, labels, inertia, 0)
    centers, labels, inertia, n_iter = _lloyd(pts, w, centers, labels, max_iter, float(tol))
    return KMeansResult(centers, labels, float(inertia), n_iter)
