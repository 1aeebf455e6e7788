"""Starting palettes: boxes of points cut until there are k, their means the centres.

- Wu (:func:`wu`, the default start of k-means): the box whose best cut
  (Wu's criterion, ``_best_cut``) lowers the squared error most is cut,
  until there are k boxes.  Each cut is found from a histogram of the box
  along every axis; with colours (:func:`is_integral`) the bins are the
  values themselves.
- Median cut (:func:`mediancut`): the box with the largest squared error is
  cut at its mean along its widest axis.

The swap rounds of k-means use the same cuts on its clusters
(:func:`cluster_cuts`).  Kernels are private, with fixed types: float32
points, float64 weights, int32 labels.
"""

import numpy as np

from . import config, threads
from .jit import njit

#: Bins per axis of the histograms Wu's cuts are found from (colours: one per value).
_NBINS = 256


@njit(cache=True, nogil=True)
def _mediancut(points, weights, k):
    """Median cut's boxes (see :func:`mediancut`): (means (k, d) float64, order, start, end, nb):
    box b holds points order[start[b]:end[b]], b < nb.
    """
    n, d = points.shape
    order = np.arange(n)
    start = np.zeros(k, np.int64)
    end = np.zeros(k, np.int64)
    sse = np.zeros(k)
    axis = np.zeros(k, np.int64)
    means = np.zeros((k, d))
    s1 = np.empty(d)
    s2 = np.empty(d)
    end[0] = n
    nb = 1
    b = 0  # the boxes whose statistics are due: b, and nb - 1 after a cut
    fresh = 1
    while True:
        for f in range(fresh):  # the weighted mean, squared error and widest axis of box c
            c = b if f == 0 else nb - 1
            for t in range(d):
                s1[t] = 0.0
                s2[t] = 0.0
            wsum = 0.0
            for p in range(start[c], end[c]):
                i = order[p]
                w = weights[i]
                wsum += w
                for t in range(d):
                    v = np.float64(points[i, t])
                    s1[t] += w * v
                    s2[t] += w * v * v
            err = 0.0
            widest = 0
            best = -1.0
            for t in range(d):
                m = s1[t] / wsum if wsum > 0 else 0.0
                means[c, t] = m
                var = s2[t] - m * s1[t]
                if var < 0.0:
                    var = 0.0
                err += var
                if var > best:
                    best = var
                    widest = t
            sse[c] = err
            axis[c] = widest
        if nb >= k:
            break
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
            fresh = 0
            continue
        start[nb] = i
        end[nb] = end[b]
        end[b] = i
        nb += 1
        fresh = 2
    return means, order, start, end, nb


@njit(cache=True, nogil=True)
def _scan(h, first, last, scales, tot, wtot, mean, integral):
    """Best cut from a box's histogram ``h`` (see :func:`_best_cut`): over
    every axis with a non-zero scale, bins first[a]..last[a]; writes the
    box mean into ``mean``; returns (error reduction, axis, last bin of the
    left part), axis -1 when no cut lowers the error.  With ``integral``
    (one bin a value, the bins a box occupies first[a]..last[a]), the box's
    weight ``wtot``, sums ``tot`` and ``scales`` (1 where an axis has more
    than one bin) are found from ``h`` itself, into ``tot`` and ``scales``.
    """
    d = h.shape[0]
    if integral:
        wtot = 0.0
        for t in range(d):
            tot[t] = 0.0
        for b in range(first[0], last[0] + 1):
            wtot += h[0, b, d]
            for t in range(d):
                tot[t] += h[0, b, t]
        for a in range(d):
            scales[a] = 1.0 if last[a] > first[a] else 0.0
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
    the points' coordinates times their weight, then the weight;
    ``h`` (d, 256, d + 1) float64 is a scratch histogram (per axis and bin:
    the sums of ``wx``), all zero on entry and left all zero; only the bins
    a box occupies are touched, so small boxes cost little.  Writes the box
    mean into ``mean``; returns (error reduction, axis, axis minimum, bin
    scale, last bin of the left part): a point goes left when
    int((x[axis] - minimum) * scale) <= bin.
    """
    d = points.shape[1]
    first = np.zeros(d, np.int64)  # occupied bins of axis a: first[a]..last[a]
    last = np.empty(d, np.int64)
    for a in range(d):  # loops, not np.full: that would compile Numba's string code
        last[a] = _NBINS - 1
    tot = np.zeros(d)
    scales = np.zeros(d)
    mins = np.empty(d)
    maxs = np.empty(d)
    wtot = 0.0
    if integral:  # bin = value: minimum 0, scale 1
        _bin_box(points, wx, order, lo, hi, h, first, last)
    else:
        for a in range(d):
            mins[a] = np.inf
            maxs[a] = -np.inf
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
    best_gain, best_axis, best_bin = _scan(h, first, last, scales, tot, wtot, mean, integral)
    if integral:
        for a in range(d):  # leave the scratch histogram zero for the next box
            for b in range(first[a], last[a] + 1):
                for t in range(d + 1):
                    h[a, b, t] = 0.0
        return best_gain, best_axis, 0.0, 1.0 if best_axis >= 0 else 0.0, best_bin
    h[:] = 0.0  # such a box spreads over every bin
    best_min = mins[best_axis] if best_axis >= 0 else 0.0
    best_scale = scales[best_axis] if best_axis >= 0 else 0.0
    return best_gain, best_axis, best_min, best_scale, best_bin


@njit(cache=True, nogil=True)
def _wu(points, weights, k, integral):
    """Greedy splitting: the box whose best cut lowers the error most is cut, until k boxes
    (returns as :func:`_mediancut`).

    With integer coordinates and weights, only the smaller part of a cut box
    is binned; the larger part's histogram is the box's minus the smaller's
    (exact in float64, so the cuts are the same as binning both).
    """
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
    wx = np.empty((n, d + 1))  # every point's coordinates times its weight, then its weight
    for p in range(n):
        for t in range(d):
            wx[p, t] = weights[p] * points[p, t]
        wx[p, d] = weights[p]
    h = np.zeros((d, _NBINS, d + 1))
    exact = integral and k * d * _NBINS * (d + 1) <= 1 << 23  # hists <= 64 MB
    total = 0.0
    for p in range(n if exact else 0):  # every weight an integer (pixel counts: always) ...
        if weights[p] != np.floor(weights[p]):
            exact = False
            break
        total += weights[p]
    exact = exact and total * _NBINS < 2.0**52  # ... and every sum of weight times 0..255 exact in float64
    hists = np.empty((k if exact else 0, d, _NBINS, d + 1))
    first = np.zeros((k, d), np.int64)
    last = np.zeros((k, d), np.int64)
    tot = np.empty(d)
    scales = np.empty(d)
    end[0] = n
    nb = 1
    b = 0  # the boxes whose best cut is due: b, and nb - 1 after a cut
    fresh = 1
    small = 0  # exact: the box to bin (the smaller part of a cut)
    large = -1  # exact: the larger part, whose histogram is the box's minus the smaller's
    while True:  # one call site of each kernel: each caller's copy costs compile time
        if exact:
            _bin_box(points, wx, order, start[small], end[small], h, first[small], last[small])
            if large >= 0:
                for t in range(d):
                    for bb in range(first[small, t], last[small, t] + 1):
                        for u in range(d + 1):
                            hists[large, t, bb, u] -= h[t, bb, u]
                for t in range(d):  # narrow the larger part's bins to those with weight
                    while first[large, t] < last[large, t] and hists[large, t, first[large, t], d] == 0.0:
                        first[large, t] += 1
                    while last[large, t] > first[large, t] and hists[large, t, last[large, t], d] == 0.0:
                        last[large, t] -= 1
            for t in range(d):  # the smaller part's bins into its histogram, leaving h zero
                for bb in range(first[small, t], last[small, t] + 1):
                    for u in range(d + 1):
                        hists[small, t, bb, u] = h[t, bb, u]
                        h[t, bb, u] = 0.0
        for f in range(fresh):
            c = b if f == 0 else nb - 1
            if exact:
                gain[c], axis[c], cut[c] = _scan(hists[c], first[c], last[c], scales, tot, 0.0, means[c], exact)
            else:
                gain[c], axis[c], amin[c], scale[c], cut[c] = _best_cut(
                    points, wx, order, start[c], end[c], means[c], integral, h
                )
        if nb >= k:
            break
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
            # the smaller part is binned next round; the larger = the box's histogram minus it
            small, large = (b, nb) if i - lo <= end[nb] - i else (nb, b)
            for t in range(d):
                first[nb, t] = first[b, t]
                last[nb, t] = last[b, t]
            if large != b:
                for t in range(d):
                    for bb in range(first[b, t], last[b, t] + 1):
                        for u in range(d + 1):
                            hists[large, t, bb, u] = hists[b, t, bb, u]
        nb += 1
        fresh = 2
    return means, order, start, end, nb


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
def _by_cluster(labels, k):
    """Counting sort of the points by cluster: (order (n,), bounds (k + 1,)):
    cluster c holds points order[bounds[c]:bounds[c + 1]].
    """
    n = labels.shape[0]
    counts = np.zeros(k + 1, np.int64)
    for i in range(n):
        counts[labels[i] + 1] += 1
    bounds = counts  # their running sums, in place
    for c in range(1, k + 1):
        bounds[c] += bounds[c - 1]
    fill = bounds[:-1].copy()
    order = np.empty(n, np.int64)
    for i in range(n):
        order[fill[labels[i]]] = i
        fill[labels[i]] += 1
    return order, bounds


@njit(cache=True, nogil=True)
def _cuts_range(points, wx, order, bounds, integral, gains, left, right, c0, c1):
    """Best cut of clusters c0..c1-1 (see :func:`cluster_cuts`) into gains, left, right;
    ``wx``: the points' coordinates times their weight, then the weight.
    """
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


def wu(points, weights, k, integral):
    """Wu's starting palette: greedy cuts where the squared error drops most.

    Parameters
    ----------
    points : (n, d) float32 ndarray
    weights : (n,) float64 ndarray
    k : int
        Number of boxes wanted, >= 1.
    integral : bool
        :func:`is_integral` of the points (the cuts then bin by value).

    Returns
    -------
    centers : (k', d) float32 ndarray
        Box means; k' < k when no cut lowers the error (too few distinct points).
    labels : (n,) int32 ndarray
        Box of every point.
    """
    points = np.ascontiguousarray(points, np.float32)
    return _centers_labels(*_wu(points, np.ascontiguousarray(weights, np.float64), int(k), bool(integral)))


def mediancut(points, weights, k):
    """Median-cut starting palette: the box with the largest error is cut at its mean along its widest axis.

    Parameters and returns as :func:`wu`.
    """
    return _centers_labels(
        *_mediancut(np.ascontiguousarray(points, np.float32), np.ascontiguousarray(weights, np.float64), int(k))
    )


def _centers_labels(means, order, start, end, nb):
    """(centres (nb, d) float32, labels (n,) int32) of boxes: box b holds the points
    order[start[b]:end[b]] and has mean means[b]; the boxes cover order once.
    """
    first = np.argsort(start[:nb], kind="stable")  # the boxes in their order along ``order``
    labels = np.empty(len(order), np.int32)
    labels[order] = np.repeat(first.astype(np.int32), (end[:nb] - start[:nb])[first])
    return means[:nb].astype(np.float32), labels


def by_cluster(labels, k):
    """Points sorted by cluster (a counting sort, stable).

    Parameters
    ----------
    labels : (n,) int32 ndarray
        Cluster of every point, 0 <= label < k.
    k : int

    Returns
    -------
    order : (n,) int64 ndarray
    bounds : (k + 1,) int64 ndarray
        Cluster c holds points ``order[bounds[c]:bounds[c + 1]]``.
    """
    return _by_cluster(labels, int(k))


def cluster_cuts(points, weights, labels, k, integral):
    """Best cut of every cluster, for the swap rounds of k-means.

    Clusters are independent: from ``config.THREAD_MIN_POINTS`` points on
    they are shared out to threads in fixed blocks.

    Parameters
    ----------
    points : (n, d) float32 ndarray
    weights : (n,) float64 ndarray
    labels : (n,) int32 ndarray
        Cluster of every point, 0 <= label < k.
    k : int
    integral : bool
        :func:`is_integral` of the points.

    Returns
    -------
    gains : (k,) float64 ndarray
        Error reduction of each cluster's best cut (0 where it cannot be cut).
    left, right : (k, d) float64 ndarray
        Means of the two parts (0 where it cannot be cut).
    """
    d = points.shape[1]
    order, bounds = by_cluster(labels, k)
    wx = np.empty((len(points), d + 1))  # weight times coordinates (float64 products), then weight
    np.multiply(points, weights[:, None], out=wx[:, :d])
    wx[:, d] = weights
    gains = np.zeros(k)
    left = np.zeros((k, d))
    right = np.zeros((k, d))
    n_threads = None if len(points) >= config.THREAD_MIN_POINTS else 1
    threads.run_blocks(
        lambda lo, hi: _cuts_range(points, wx, order, bounds, integral, gains, left, right, lo, hi), k, n_threads
    )
    return gains, left, right


def is_integral(points):
    """Whether every coordinate is an integer in 0..255 (colours): Wu's cuts then bin by value."""
    return bool(
        len(points) and points.min() >= 0 and points.max() <= _NBINS - 1 and np.array_equal(points, np.floor(points))
    )


#: Most point-centre distances :func:`around_fixed` computes per round; above it
#: the starts nearest to the fixed centres are dropped instead.
_AROUND_MAX_PAIRS = 1 << 31


def _removal_costs(points, weights, centers, n_fixed):
    """What removing each of ``centers[n_fixed:]`` would add to the error: the summed
    weight times (second nearest - nearest squared distance) of the points
    nearest to it.
    """
    k = len(centers)
    costs = np.zeros(k - n_fixed)
    if k < 2:
        return costs
    c = centers.astype(np.float64)
    step = max(1, (1 << 22) // (k * points.shape[1]))
    for lo in range(0, len(points), step):
        p = points[lo : lo + step].astype(np.float64)
        d = ((p[:, None, :] - c[None, :, :]) ** 2).sum(axis=2)
        two = np.argpartition(d, 1, axis=1)[:, :2]
        d2 = np.take_along_axis(d, two, axis=1)
        near = np.where(d2[:, 0] <= d2[:, 1], two[:, 0], two[:, 1])
        gap = np.abs(d2[:, 1] - d2[:, 0]) * weights[lo : lo + step]
        free = near >= n_fixed
        costs += np.bincount(near[free] - n_fixed, weights=gap[free], minlength=k - n_fixed)
    return costs


def around_fixed(points, weights, centers, fixed, m):
    """The ``m`` starting centres that matter most beside fixed ones.

    A start made for k = len(fixed) + m centres as if none were fixed puts
    boxes where the fixed centres already are.  Starts are dropped, in rounds
    (half of those still to drop, at least one), by their removal cost: the
    error their points would add if they went to their next nearest centre,
    fixed ones included.  A fixed centre far from every point thus costs the
    least useful start, not the one nearest to it.  (With very many points
    times centres, the start nearest to each fixed centre is dropped instead.)

    Parameters
    ----------
    points : (n, d) float32 ndarray
    weights : (n,) float64 ndarray
    centers : (k', d) float32 ndarray
        Starting centres (e.g. :func:`wu`'s for k).
    fixed : (f, d) float32 ndarray
    m : int
        How many to keep.

    Returns
    -------
    (min(m, k'), d) float32 ndarray
        The kept centres, in their order in ``centers``.
    """
    keep = np.arange(len(centers))
    fixed = np.asarray(fixed, np.float32)
    if len(fixed) == 0 or len(keep) <= m:
        return centers[keep[:m]]
    if len(points) * (len(centers) + len(fixed)) > _AROUND_MAX_PAIRS:
        c = centers.astype(np.float64)
        for f in fixed.astype(np.float64):
            if len(keep) <= m:
                break
            keep = np.delete(keep, int(np.argmin(((c[keep] - f) ** 2).sum(axis=1))))
        return centers[keep]
    while len(keep) > m:
        costs = _removal_costs(points, weights, np.vstack([fixed, centers[keep]]), len(fixed))
        drop = max(1, (len(keep) - m) // 2)
        keep = np.sort(np.delete(keep, np.argsort(costs, kind="stable")[:drop]))
    return centers[keep]
