"""Weighted k-means (Lloyd's algorithm) with Numba kernels.

Points carry weights, so clustering an image's unique colours weighted by their
pixel counts gives the same centres as clustering every pixel, at a fraction
of the cost.

Kernels (private, fixed types: float32 points and centres, float64 weights,
int32 labels):

- ``_wu``: the default start; the box whose best cut (Wu's criterion,
  ``_best_cut``) lowers the squared error most is cut until there are k
  boxes; their means are the initial centres.  ``_mediancut`` (cut at the
  mean of the widest axis) and ``_kmeanspp`` (weighted k-means++ from a
  seed) are the alternatives.
- ``_neighbor_rows``: for every centre, its nearest centres sorted by distance.
- ``_assign_range``: exact nearest centre per point.  The search starts from
  the point's previous centre c0 and walks c0's sorted neighbour list; once a
  neighbour is more than twice as far from c0 as the point is, no later one
  can be nearer (triangle inequality), so most distances are never computed.
- ``_sums_range``: weighted sums per centre over fixed chunks of points,
  added up in chunk order, so results do not depend on the thread count.
- ``_cuts_range``: the best cut of every cluster, for the swap rounds.

Mid-sized work runs these serial kernels on Python threads
(:mod:`fastquant.threads`), large work on Numba's (the ``_par`` drivers).
"""
from typing import NamedTuple

import numpy as np
from .jit import njit, prange
from . import nearest
from .nearest import Search, assign, sqdist

from . import threads
from .errors import OptionError

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
def _boxes(means, order, start, end, nb):
    """Centres (box means, float32) and labels (box of each point) of the first nb boxes."""
    centers = np.empty((nb, means.shape[1]), np.float32)
    labels = np.empty(len(order), np.int32)
    for b in range(nb):
        centers[b] = means[b]
        for p in range(start[b], end[b]):
            labels[order[p]] = b
    return centers, labels


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
    return _boxes(means, order, start, end, nb)


_NBINS = 256


@njit(cache=True, nogil=True)
def _weighted(points, weights):
    """(n, d + 1) float64: every point's coordinates times its weight, then its weight."""
    n, d = points.shape
    wx = np.empty((n, d + 1))
    for i in range(n):
        w = weights[i]
        for t in range(d):
            wx[i, t] = w * points[i, t]
        wx[i, d] = w
    return wx


@njit(cache=True, nogil=True)
def _scan(h, first, last, scales, tot, wtot, mean):
    """Best cut from a box's histogram ``h`` (see :func:`_best_cut`): over
    every axis with a non-zero scale, bins first[a]..last[a]; writes the
    box mean into ``mean``; returns (error reduction, axis, last bin of the
    left part), axis -1 when no cut lowers the error."""
    d = h.shape[0]
    base = 0.0
    for t in range(d):
        mean[t] = tot[t] / wtot if wtot > 0 else 0.0
        base += tot[t] * tot[t]
    base = base / wtot if wtot > 0 else 0.0
    best_gain = 0.0
    best_axis = -1
    best_bin = 0
    sl = np.empty(d)
    for a in range(d):
        if scales[a] == 0.0:
            continue
        wl = 0.0
        sl[:] = 0.0
        for b in range(first[a], last[a]):
            if h[a, b, d] == 0.0:
                continue
            wl += h[a, b, d]
            for t in range(d):
                sl[t] += h[a, b, t]
            wr = wtot - wl
            if wr <= 0.0:
                break
            l2 = 0.0
            r2 = 0.0
            for t in range(d):
                l2 += sl[t] * sl[t]
                r2 += (tot[t] - sl[t]) * (tot[t] - sl[t])
            g = l2 / wl + r2 / wr - base
            if g > best_gain:
                best_gain = g
                best_axis = a
                best_bin = b
    return best_gain, best_axis, best_bin


@njit(cache=True, nogil=True)
def _best_cut(points, wx, order, lo, hi, mean, integral, h):
    """Best two-way cut of a box perpendicular to one axis (Wu's criterion).

    Each axis's range within the box is cut into 256 equal bins; the cut
    between bins that most lowers the total squared error is kept.  With
    ``integral`` (every coordinate an integer in 0..255, as colours are) the
    bins are the values themselves, which needs one pass over the points
    instead of two; otherwise the bins split the box's range, which is exact
    for integer values too.  The box holds points order[lo:hi]; ``wx`` is
    :func:`_weighted` of the points;
    ``h`` (d, 256, d + 1) float64 is a scratch histogram (per axis and bin:
    the sums of ``wx``), all zero on entry and left all zero; only the bins
    a box occupies are touched, so small boxes cost little.  Writes the box
    mean into ``mean``; returns (error reduction, axis, axis minimum, bin
    scale, last bin of the left part): a point goes left when
    int((x[axis] - minimum) * scale) <= bin.
    """
    d = points.shape[1]
    first = np.zeros(d, np.int64)  # occupied bins of axis a: first[a]..last[a]
    last = np.full(d, _NBINS - 1, np.int64)
    if integral:  # bin = value: minimum 0, scale 1
        _bin_box(points, wx, order, lo, hi, h, first, last)
        best_gain, best_axis, best_bin = _hist_cut(h, first, last, mean)
        _clear_bins(h, first, last)  # leave the scratch histogram zero for the next box
        return best_gain, best_axis, 0.0, 1.0 if best_axis >= 0 else 0.0, best_bin
    tot = np.zeros(d)
    mins = np.full(d, np.inf)
    maxs = np.full(d, -np.inf)
    wtot = 0.0
    scales = np.zeros(d)
    for p in range(lo, hi):  # pass 1: totals and the range of every axis
        i = order[p]
        wtot += wx[i, d]
        for t in range(d):
            v = points[i, t]
            tot[t] += wx[i, t]
            mins[t] = min(mins[t], v)
            maxs[t] = max(maxs[t], v)
    for a in range(d):
        if maxs[a] > mins[a]:
            scales[a] = _NBINS / (np.float64(maxs[a]) - mins[a])
    for p in range(lo, hi):  # pass 2: weight and sums per bin, every axis at once
        i = order[p]
        for a in range(d):
            if scales[a] == 0.0:
                continue
            b = min(_NBINS - 1, int((points[i, a] - mins[a]) * scales[a]))
            for t in range(d + 1):
                h[a, b, t] += wx[i, t]
    best_gain, best_axis, best_bin = _scan(h, first, last, scales, tot, wtot, mean)
    h[:] = 0.0  # such a box spreads over every bin
    best_min = mins[best_axis] if best_axis >= 0 else 0.0
    best_scale = scales[best_axis] if best_axis >= 0 else 0.0
    return best_gain, best_axis, best_min, best_scale, best_bin


@njit(cache=True, nogil=True)
def _exact_sums(weights):
    """Whether every weight is an integer and all sums of weight times a
    0..255 coordinate stay exact in float64 (pixel counts: always)."""
    total = 0.0
    for w in weights:
        if w != np.floor(w):
            return False
        total += w
    return total * _NBINS < 2.0 ** 52


@njit(cache=True, nogil=True)
def _hist_cut(hist, first, last, mean):
    """(error reduction, axis, last left bin) of a box from its integral-bin histogram."""
    d = hist.shape[0]
    tot = np.zeros(d)
    wtot = 0.0
    for b in range(first[0], last[0] + 1):
        wtot += hist[0, b, d]
        for t in range(d):
            tot[t] += hist[0, b, t]
    scales = np.zeros(d)
    for a in range(d):
        if last[a] > first[a]:
            scales[a] = 1.0
    return _scan(hist, first, last, scales, tot, wtot, mean)


@njit(cache=True, nogil=True)
def _occupied(hist, first, last):
    """Narrow first/last (per axis) to the bins of ``hist`` with weight."""
    d = hist.shape[0]
    for a in range(d):
        while first[a] < last[a] and hist[a, first[a], d] == 0.0:
            first[a] += 1
        while last[a] > first[a] and hist[a, last[a], d] == 0.0:
            last[a] -= 1


@njit(cache=True, nogil=True)
def _wu(points, weights, k, integral):
    """Greedy splitting: the box whose best cut lowers the error most is cut, until k boxes.

    With integer coordinates and weights, only the smaller part of a cut box
    is binned; the larger part's histogram is the box's minus the smaller's
    (exact in float64, so the cuts are the same as binning both)."""
    n, d = points.shape
    order = np.arange(n)
    start = np.zeros(k, np.int64)
    end = np.zeros(k, np.int64)
    gain = np.zeros(k)
    axis = np.zeros(k, np.int64)
    amin = np.zeros(k)
    scale = np.ones(k)
    cut = np.zeros(k, np.int64)
    means = np.zeros((k, d))
    wx = _weighted(points, weights)
    h = np.zeros((d, _NBINS, d + 1))
    exact = integral and k * d * _NBINS * (d + 1) <= 1 << 23 and _exact_sums(weights)  # hists <= 64 MB
    hists = np.empty((k if exact else 0, d, _NBINS, d + 1))
    first = np.zeros((k, d), np.int64)
    last = np.zeros((k, d), np.int64)
    end[0] = n
    if exact:
        _bin_box(points, wx, order, 0, n, h, first[0], last[0])
        _move_bins(h, hists[0], first[0], last[0])
        gain[0], axis[0], cut[0] = _hist_cut(hists[0], first[0], last[0], means[0])
    else:
        gain[0], axis[0], amin[0], scale[0], cut[0] = _best_cut(points, wx, order, 0, n, means[0], integral, h)
    nb = 1
    while nb < k:
        b = np.argmax(gain[:nb])
        if gain[b] <= 0.0 or axis[b] < 0:
            break  # no cut lowers the error: every box holds one distinct point
        a = axis[b]
        lo = start[b]
        i = lo
        j = end[b] - 1
        while i <= j:
            if min(_NBINS - 1, int((points[order[i], a] - amin[b]) * scale[b])) <= cut[b]:
                i += 1
            else:
                tmp = order[i]
                order[i] = order[j]
                order[j] = tmp
                j -= 1
        start[nb] = i
        end[nb] = end[b]
        end[b] = i
        if exact:
            # bin the smaller part into h; the larger = the box's histogram minus it
            small, large = (b, nb) if i - lo <= end[nb] - i else (nb, b)
            first[nb] = first[b]
            last[nb] = last[b]
            if large != b:
                for t in range(d):
                    for bb in range(first[b, t], last[b, t] + 1):
                        for u in range(d + 1):
                            hists[large, t, bb, u] = hists[b, t, bb, u]
            _bin_box(points, wx, order, start[small], end[small], h, first[small], last[small])
            for t in range(d):
                for bb in range(first[small, t], last[small, t] + 1):
                    for u in range(d + 1):
                        hists[large, t, bb, u] -= h[t, bb, u]
            _occupied(hists[large], first[large], last[large])
            _move_bins(h, hists[small], first[small], last[small])
            gain[b], axis[b], cut[b] = _hist_cut(hists[b], first[b], last[b], means[b])
            gain[nb], axis[nb], cut[nb] = _hist_cut(hists[nb], first[nb], last[nb], means[nb])
        else:
            gain[b], axis[b], amin[b], scale[b], cut[b] = _best_cut(points, wx, order, lo, i, means[b], integral, h)
            gain[nb], axis[nb], amin[nb], scale[nb], cut[nb] = _best_cut(points, wx, order, i, end[nb], means[nb],
                                                                          integral, h)
        nb += 1
    return _boxes(means, order, start, end, nb)


@njit(cache=True, nogil=True)
def _bin_box(points, wx, order, lo, hi, h, first, last):
    """Integral binning of points order[lo:hi] into the zero histogram h; their value range into first, last."""
    d = points.shape[1]
    for a in range(d):
        first[a] = _NBINS - 1
        last[a] = 0
    for p in range(lo, hi):
        i = order[p]
        for a in range(d):
            b = int(points[i, a])
            first[a] = min(first[a], b)
            last[a] = max(last[a], b)
            for t in range(d + 1):
                h[a, b, t] += wx[i, t]


@njit(cache=True, nogil=True)
def _move_bins(h, dest, first, last):
    """Copy bins first..last of h into dest and zero them in h."""
    d = h.shape[0]
    for a in range(d):
        for b in range(first[a], last[a] + 1):
            for t in range(d + 1):
                dest[a, b, t] = h[a, b, t]
    _clear_bins(h, first, last)


@njit(cache=True, nogil=True)
def _clear_bins(h, first, last):
    """Zero bins first[a]..last[a] of every axis a of h."""
    d = h.shape[0]
    for a in range(d):
        for b in range(first[a], last[a] + 1):
            for t in range(d + 1):
                h[a, b, t] = 0.0


@njit(cache=True, nogil=True)
def _by_cluster(labels, k):
    """Counting sort of the points by cluster: (order (n,), bounds (k + 1,)):
    cluster c holds points order[bounds[c]:bounds[c + 1]]."""
    n = labels.shape[0]
    counts = np.zeros(k + 1, np.int64)
    for i in range(n):
        counts[labels[i] + 1] += 1
    bounds = np.cumsum(counts)
    fill = bounds[:-1].copy()
    order = np.empty(n, np.int64)
    for i in range(n):
        order[fill[labels[i]]] = i
        fill[labels[i]] += 1
    return order, bounds


@njit(cache=True, nogil=True)
def _cuts_range(points, wx, order, bounds, integral, gains, left, right, c0, c1):
    """Best cut of clusters c0..c1-1 (see :func:`_cluster_cuts`) into gains, left, right;
    ``wx`` is :func:`_weighted` of the points."""
    d = points.shape[1]
    mean = np.empty(d)
    h = np.zeros((d, _NBINS, d + 1))
    for c in range(c0, c1):
        lo, hi = bounds[c], bounds[c + 1]
        if hi - lo < 2:
            continue
        g, a, mn, scale, cut = _best_cut(points, wx, order, lo, hi, mean, integral, h)
        if a < 0:
            continue
        gains[c] = g
        wl = 0.0
        wr = 0.0
        for p in range(lo, hi):
            i = order[p]
            if min(_NBINS - 1, int((points[i, a] - mn) * scale)) <= cut:
                wl += wx[i, d]
                for t in range(d):
                    left[c, t] += wx[i, t]
            else:
                wr += wx[i, d]
                for t in range(d):
                    right[c, t] += wx[i, t]
        for t in range(d):
            left[c, t] /= wl
            right[c, t] /= wr


def _cluster_cuts(points, weights, labels, k, integral):
    """Best cut of every cluster: (error reduction (k,), left means (k, d), right means (k, d)),
    zeros for clusters that cannot be cut.  Clusters are independent: above
    THREAD_MIN_POINTS points they are shared out to threads in fixed blocks."""
    d = points.shape[1]
    order, bounds = _by_cluster(labels, k)
    wx = _weighted(points, weights)
    gains = np.zeros(k)
    left = np.zeros((k, d))
    right = np.zeros((k, d))
    n_threads = None if len(points) >= nearest.THREAD_MIN_POINTS else 1
    threads.run_blocks(lambda lo, hi: _cuts_range(points, wx, order, bounds, integral, gains, left, right,
                                                  lo, hi), k, n_threads)
    return gains, left, right


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
        dist[p] = sqdist(points, p, centers, 0)
    for c in range(1, k):
        cum = np.cumsum(weights * dist)
        if cum[-1] <= 0.0:
            return centers[:c].copy()  # every point already is a centre
        i = min(np.searchsorted(cum, np.random.random() * cum[-1], side="right"), n - 1)
        centers[c] = points[i]
        for p in range(n):
            dp = sqdist(points, p, centers, c)
            if dp < dist[p]:
                dist[p] = dp
    return centers


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


# The parallel driver splits the sums into fixed chunks and runs the serial
# range kernel on them; _partial_sums calls the range kernel directly when the
# work is too small to pay for waking the threads.  Either way the chunks are
# the same, so results do not depend on the thread count.

@njit(cache=True, nogil=True, parallel=True)
def _sums_par(points, weights, labels, dist, sums, wsums, errs, chunk):
    n = points.shape[0]
    for c in prange((n + chunk - 1) // chunk):
        _sums_range(points, weights, labels, dist, sums, wsums, errs, c, c * chunk, min(n, (c + 1) * chunk))


def _partial_sums(points, weights, labels, dist, k, chunk):
    """Weighted coordinate sums (k, d) and weight (k,) per centre, and the inertia."""
    n, d = points.shape
    nch = (n + chunk - 1) // chunk
    sums = np.zeros((nch, k, d))
    wsums = np.zeros((nch, k))
    errs = np.zeros(nch)
    if n >= nearest.PARALLEL_MIN_POINTS:
        _sums_par(points, weights, labels, dist, sums, wsums, errs, chunk)
    else:
        # Serial: summing a photo's histogram costs less than handing work to a thread.
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
    return max(nearest.CHUNK, 16 * k)


#: Default over-relaxation of Lloyd's update (see :func:`_lloyd`).  With
#: compress()'s tol=1e-2 and 3 swap rounds, the 12 Kodak photos at k=256 end
#: at a median 0.9994x the MSE of plain Lloyd with tol=5e-3 and 4 rounds, in
#: 8-11 updates instead of 14-16.
OVERRELAX = 0.8

#: Swaps are tried where the cut gain beats this fraction of the merge cost
#: (the Lloyd iterations that follow usually make up the rest); a round that
#: does not end better than the previous solution is discarded.
SWAP_FACTOR = 0.5


def _lloyd(points, weights, centers, labels, max_iter, tol, swap_rounds, overrelax, integral):
    """Lloyd iterations to convergence; then up to ``swap_rounds`` rounds of
    cluster swaps, each followed by Lloyd iterations again; the best converged
    solution is returned.

    With ``overrelax`` > 0 each update moves the centres that much further
    than the weighted means (old + (1 + overrelax) (means - old)).  The step
    is a trial: when the error after the next assignment exceeds what the
    plain means give with the current labels (a bound on plain Lloyd's next
    error), the plain means are taken instead and ``overrelax`` is halved, so
    the error never increases.  ``integral``: :func:`_integral` of the points.
    """
    k = centers.shape[0]
    chunk = _chunk(k)
    prev = np.inf
    n_iter = 0
    rounds = 0
    best = None
    search = Search(len(points), k)
    if search.bounds:  # per-point bounds would not survive a step taken back
        overrelax = 0.0
    plain = None  # the plain means while an over-relaxed step is on trial
    bound = np.inf  # their error with the labels the trial started from
    while True:
        trial_labels, dist = assign(points, centers, labels.copy(), search)
        sums, wsums, inertia = _partial_sums(points, weights, trial_labels, dist, k, chunk)
        if plain is not None and inertia > bound:
            search.moved(centers, plain)
            centers, plain = plain, None
            overrelax = overrelax / 2 if overrelax >= 0.1 else 0.0
            continue
        labels = trial_labels
        converged = prev - inertia <= tol * inertia
        if converged or n_iter >= max_iter:
            if best is None or inertia < best[2]:
                best = (centers, labels.copy(), inertia)
            if n_iter >= max_iter or rounds >= swap_rounds:
                return best + (n_iter,)
        prev = inertia
        old = centers
        centers = centers.copy()
        _new_centers(points, weights, dist, sums, wsums, centers)
        n_iter += 1
        plain = None
        if converged:
            rounds += 1
            if _swap(points, weights, centers, labels, wsums, SWAP_FACTOR, integral):
                prev = np.inf
            else:
                rounds = swap_rounds
        elif overrelax > 0.0:
            step = centers.astype(np.float64) - old
            # parallel axis theorem: the plain means' error with these labels
            bound = inertia - float((wsums * (step * step).sum(axis=1)).sum())
            plain = centers
            centers = (old + (1.0 + overrelax) * step).astype(np.float32)
        search.moved(old, centers)


@njit(cache=True, nogil=True)
def _nearest_other(centers):
    """Every centre's nearest other centre (lowest index on ties) and its squared distance."""
    k = centers.shape[0]
    nn = np.empty(k, np.int64)
    nd = np.empty(k, np.float32)
    for i in range(k):
        best = np.float32(np.inf)
        bj = 0 if i else min(1, k - 1)
        for j in range(k):
            if j != i:
                d = sqdist(centers, i, centers, j)
                if d < best:
                    best = d
                    bj = j
        nn[i] = bj
        nd[i] = best
    return nn, nd


def _swap(points, weights, centers, labels, wsums, factor, integral):
    """One round of cluster swaps (after ELBG, Patane and Russo 2001).

    Merging a cluster into its nearest neighbour costs
    w1 w2 / (w1 + w2) |c1 - c2|^2; cutting a cluster in two gains the
    reduction of its best cut.  Pairs where the gain beats the cost move the
    merged cluster's centre into the cut cluster.  Returns the number of swaps.
    ``integral``: see :func:`_integral`.
    """
    k = len(centers)
    if k < 3 or k > nearest.NEIGHBOR_LIST_MAX_K:  # k x k distances: too many above that
        return 0
    gains, left, right = _cluster_cuts(points, weights, labels, k, integral)
    nn, nd = _nearest_other(centers)
    w1, w2 = wsums, wsums[nn]
    with np.errstate(invalid="ignore", divide="ignore"):
        cost = np.where(w1 + w2 > 0, w1 * w2 / (w1 + w2), 0.0) * nd
    splits = np.argsort(-gains, kind="stable")
    used = np.zeros(k, bool)
    s = 0
    swaps = 0
    for i in np.argsort(cost, kind="stable"):
        j = nn[i]
        if used[i] or used[j]:
            continue
        while s < k and (used[splits[s]] or splits[s] in (i, j)):
            s += 1
        if s == k or gains[splits[s]] <= factor * cost[i]:
            break
        c = splits[s]
        total = w1[i] + w2[i]
        centers[j] = (centers[i] * w1[i] + centers[j] * w2[i]) / total
        centers[i] = left[c]
        centers[c] = right[c]
        used[[i, j, c]] = True
        swaps += 1
    return swaps


def _integral(points):
    """Whether every coordinate is an integer in 0..255 (colours): Wu's cuts then bin by value."""
    return bool(len(points) and points.min() >= 0 and points.max() <= _NBINS - 1
                and np.array_equal(points, np.floor(points)))


def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise OptionError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise OptionError(f"{name} must be >= {low}, got {value}")
    return int(value)


def kmeans(points, k, *, weights=None, seed=0, max_iter=100, tol=1e-4, init="wu", swap_rounds=2,
           overrelax=OVERRELAX):
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
        Lloyd's iterations stop when one lowers the inertia by less than
        ``tol`` times its value.
    init : {"wu", "mediancut", "k-means++"} or (k, d) array_like
        Starting centres: greedy splitting where the error drops most (Wu's
        criterion), variance-based median cut (split at the mean), weighted
        k-means++ from ``seed``, or given centres.
    swap_rounds : int
        After convergence, up to this many rounds of cluster swaps (merge a
        cluster into its neighbour, cut another in two; after ELBG), each
        followed by Lloyd's iterations; the best solution is kept.
    overrelax : float
        0 to 1: each update moves the centres this much further than the
        weighted means, which converges in fewer iterations; a step that
        ends worse than the plain update would is taken back, so the error
        never increases.  0 gives plain Lloyd iterations.

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
    if isinstance(overrelax, bool) or not isinstance(overrelax, (int, float, np.floating)) \
            or not 0 <= overrelax <= 1:
        raise OptionError(f"overrelax must be a number from 0 to 1, got {overrelax!r}")
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
    integral = _integral(pts)
    if isinstance(init, str):
        if init == "mediancut":
            centers, labels = _mediancut(pts, w, k)
        elif init == "wu":
            centers, labels = _wu(pts, w, k, integral)
        elif init == "k-means++":
            centers = _kmeanspp(pts, w, k, seed)
            labels = np.zeros(n, np.int32)
        else:
            raise OptionError(f"init must be 'wu', 'mediancut', 'k-means++' or an array, got {init!r}")
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
            inertia = float((w * dist).sum())
            return KMeansResult(uniq, labels, inertia, 0)
    swap_rounds = _check_int("swap_rounds", swap_rounds, 0)
    if isinstance(init, str) and init != "k-means++":
        # Points in the order of their starting box: a run of points then uses
        # the same centre and neighbour list (compress() 1-4% faster on the
        # Kodak photos, the same output bytes).
        order, _ = _by_cluster(labels, len(centers))
        centers, lab, inertia, n_iter = _lloyd(pts[order], w[order], centers, labels[order], max_iter,
                                               float(tol), swap_rounds, float(overrelax), integral)
        labels = np.empty_like(lab)
        labels[order] = lab
    else:
        centers, labels, inertia, n_iter = _lloyd(pts, w, centers, labels, max_iter, float(tol), swap_rounds,
                                                  float(overrelax), integral)
    return KMeansResult(centers, labels, float(inertia), n_iter)
