"""Weighted k-means (Lloyd's algorithm) with Numba kernels.

Points carry weights, so clustering an image's unique colours weighted by their
pixel counts gives the same centres as clustering every pixel, at a fraction
of the cost.

The stages: a starting palette (:mod:`fastquant.boxes`: Wu's cuts by
default, or median cut; or weighted k-means++ from a seed, :func:`kmeanspp`);
then Lloyd's iterations, each an exact assignment (:func:`fastquant.nearest.assign`)
and an update of the centres to their clusters' weighted means, optionally
over-relaxed; then rounds of cluster swaps (merge a cluster into its
neighbour, cut another in two with :func:`fastquant.boxes.cluster_cuts`).

Kernels (private, fixed types: float32 points and centres, float64 weights,
int32 labels): ``_sums_range`` sums weights and coordinates per centre over
fixed chunks of points, added up in chunk order, so results do not depend on
the thread count (large work runs blocks of chunks on threads,
:mod:`fastquant.threads`); ``_new_centers``, ``_nearest_other``, ``_kmeanspp``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, NamedTuple

import numpy as np

from . import boxes, config, threads
from .errors import OptionError
from .jit import njit
from .nearest import Search, assign, sqdist

if TYPE_CHECKING:
    import numpy.typing as npt


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
def _draw(cum, weights, dist, u):
    """Index drawn by ``u`` in [0, 1) from the weights times ``dist``:
    what ``np.searchsorted(np.cumsum(...), u * total, side="right")`` gives, clipped to
    the last index, written out (those two would compile Numba's string and cumsum code).
    """
    n = cum.shape[0]
    s = 0.0
    for p in range(n):
        s += weights[p] * dist[p]
        cum[p] = s
    x = u * cum[n - 1]
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if cum[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return min(lo, n - 1)


@njit(cache=True, nogil=True)
def _kmeanspp(points, weights, uniforms, first):
    """Weighted k-means++: len(uniforms) centres, the first ``points[first]``
    (drawn by the caller with ``uniforms[0]``), centre c > 0 picked with the
    uniform draw ``uniforms[c]`` in [0, 1) (the random state is the caller's,
    so the kernel's results depend on its arguments only).  Fewer centres
    when every point already is one.
    """
    n, d = points.shape
    k = uniforms.shape[0]
    centers = np.empty((k, d), np.float32)
    cum = np.empty(n)
    i = first
    for t in range(d):  # element by element: an array assignment compiles Numba's string code
        centers[0, t] = points[i, t]
    dist = np.empty(n)
    for p in range(n):
        dist[p] = sqdist(points, p, centers, 0)
    for c in range(1, k):
        i = _draw(cum, weights, dist, uniforms[c])
        if cum[n - 1] <= 0.0:
            return centers[:c].copy()  # every point already is a centre
        for t in range(d):
            centers[c, t] = points[i, t]
        for p in range(n):
            dp = sqdist(points, p, centers, c)
            if dp < dist[p]:
                dist[p] = dp
    return centers


def _rng(seed):
    """The numpy Generator a seed stands for: ``np.random.default_rng(seed)``
    for seed >= 0; a negative seed gets a stream of its own (its absolute
    value with a spawn key, so it never repeats a non-negative seed's).
    """
    if seed >= 0:
        return np.random.default_rng(seed)
    return np.random.default_rng(np.random.SeedSequence(-seed, spawn_key=(1,)))


def kmeanspp(points, weights, k, seed):
    """Weighted k-means++ starting centres.

    Parameters
    ----------
    points : (n, d) float32 ndarray
    weights : (n,) float64 ndarray
    k : int
        Number of centres wanted, >= 1.
    seed : int
        Any integer: the draws come from :func:`_rng` (one uniform per centre),
        not from numpy's or Numba's global generator.

    Returns
    -------
    (k', d) float32 ndarray
        k' < k only when every point already is a centre.
    """
    uniforms = _rng(seed).random(int(k))
    weights = np.ascontiguousarray(weights, np.float64)
    # The first draw, by the weights alone, in numpy (the same sums and search as the
    # kernel's _draw): a second inlined copy of _draw in the kernel costs compile time.
    cum = np.cumsum(weights)
    first = min(int(np.searchsorted(cum, uniforms[0] * cum[-1], side="right")), len(cum) - 1)
    return _kmeanspp(np.ascontiguousarray(points, np.float32), weights, uniforms, first)


@njit(cache=True, nogil=True)
def _sums_range(points, weights, labels, dist, sums, wsums, errs, chunk, c0, c1):
    """Weighted coordinate sums, weights and error per centre of the points of chunks
    c0..c1-1 (``chunk`` points each), each chunk into its own row.
    """
    n, d = points.shape
    for c in range(c0, c1):
        for i in range(c * chunk, min(n, (c + 1) * chunk)):
            lab = labels[i]
            w = weights[i]
            wsums[c, lab] += w
            errs[c] += w * dist[i]
            for t in range(d):
                sums[c, lab, t] += w * points[i, t]


# The sums are split into fixed chunks, shared out to threads in blocks of
# chunks (serially when the work is too small to pay for handing it over);
# either way the chunks are the same, so results do not depend on the thread count.


def _partial_sums(points, weights, labels, dist, k, chunk):
    """Weighted coordinate sums (k, d) and weight (k,) per centre, and the inertia."""
    n, d = points.shape
    nch = (n + chunk - 1) // chunk
    sums = np.zeros((nch, k, d))
    wsums = np.zeros((nch, k))
    errs = np.zeros(nch)
    # Serial below the threshold: summing a photo's histogram costs less than handing work to a thread.
    threads.run_blocks(
        lambda c0, c1: _sums_range(points, weights, labels, dist, sums, wsums, errs, chunk, c0, c1),
        nch,
        None if n >= config.PARALLEL_MIN_POINTS else 1,
    )
    # Chunk results are added in chunk order: the same sums for any thread count.
    total, wtotal, inertia = sums[0].copy(), wsums[0].copy(), float(errs[0])
    for c in range(1, nch):
        total += sums[c]
        wtotal += wsums[c]
        inertia += float(errs[c])
    return total, wtotal, inertia


@njit(cache=True, nogil=True)
def _new_centers(points, weights, dist, sums, wsums, centers, n_fixed):
    """Centres = weighted means; an empty centre takes the worst-fitting point.
    The first ``n_fixed`` centres stay where they are.
    """
    k, d = sums.shape
    err = weights * dist
    for c in range(n_fixed, k):
        if wsums[c] > 0.0:
            for t in range(d):
                centers[c, t] = sums[c, t] / wsums[c]
        else:
            i = np.argmax(err)
            for t in range(d):
                centers[c, t] = points[i, t]
            err[i] = -1.0  # not chosen twice


def _chunk(k):
    return max(config.CHUNK, 16 * k)


def _lloyd(points, weights, centers, labels, max_iter, tol, swap_rounds, overrelax, integral, n_fixed=0):
    """Lloyd iterations to convergence; then up to ``swap_rounds`` rounds of
    cluster swaps, each followed by Lloyd iterations again; the best converged
    solution is returned.

    With ``overrelax`` > 0 each update moves the centres that much further
    than the weighted means (old + (1 + overrelax) (means - old)).  The step
    is a trial: when the error after the next assignment exceeds what the
    plain means give with the current labels (a bound on plain Lloyd's next
    error), the plain means are taken instead and ``overrelax`` is halved, so
    the error never increases.  ``integral``: :func:`fastquant.boxes.is_integral` of the points.
    The first ``n_fixed`` centres never move (nor take part in swaps).
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
        _new_centers(points, weights, dist, sums, wsums, centers, n_fixed)
        n_iter += 1
        plain = None
        if converged:
            rounds += 1
            if _swap(points, weights, centers, labels, wsums, config.SWAP_FACTOR, integral, n_fixed):
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


def _swap(points, weights, centers, labels, wsums, factor, integral, n_fixed=0):
    """One round of cluster swaps (after ELBG, Patane and Russo 2001).

    Merging a cluster into its nearest neighbour costs
    w1 w2 / (w1 + w2) |c1 - c2|^2; cutting a cluster in two gains the
    reduction of its best cut.  Pairs where the gain beats the cost move the
    merged cluster's centre into the cut cluster.  Returns the number of swaps.
    ``integral``: see :func:`fastquant.boxes.is_integral`.  The first ``n_fixed``
    centres are neither merged, moved nor cut.
    """
    k = len(centers)
    if k < 3 or k > config.NEIGHBOR_LIST_MAX_K:  # k x k distances: too many above that
        return 0
    gains, left, right = boxes.cluster_cuts(points, weights, labels, k, integral)
    nn, nd = _nearest_other(centers)
    w1, w2 = wsums, wsums[nn]
    with np.errstate(invalid="ignore", divide="ignore"):
        cost = np.where(w1 + w2 > 0, w1 * w2 / (w1 + w2), 0.0) * nd
    splits = np.argsort(-gains, kind="stable")
    used = np.zeros(k, bool)
    used[:n_fixed] = True
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


def _check_int(name, value, low=None):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise OptionError(f"{name} must be an integer, got {value!r}")
    if low is not None and value < low:
        raise OptionError(f"{name} must be >= {low}, got {value}")
    return int(value)


def _box_means(points, weights, labels, m):
    """(m, d) float32: the weighted mean of the points of each label (plain mean where they weigh nothing)."""
    d = points.shape[1]
    wsum = np.bincount(labels, weights=weights, minlength=m)
    size = np.bincount(labels, minlength=m).astype(np.float64)
    heavy = wsum > 0
    means = np.empty((m, d))
    for t in range(d):
        x = points[:, t].astype(np.float64)
        s = np.bincount(labels, weights=weights * x, minlength=m)
        plain = np.bincount(labels, weights=x, minlength=m)
        means[:, t] = np.where(heavy, s / np.where(heavy, wsum, 1.0), plain / np.maximum(size, 1.0))
    return means.astype(np.float32)


def kmeans(
    points: npt.ArrayLike,
    k: int,
    *,
    weights: npt.ArrayLike | None = None,
    seed: int = 0,
    max_iter: int = 100,
    tol: float = 1e-4,
    init: Literal["wu", "mediancut", "k-means++"] = "wu",
    swap_rounds: int = 2,
    overrelax: float | None = None,
    fixed: npt.ArrayLike | None = None,
    boxes_on: npt.ArrayLike | None = None,
) -> KMeansResult:
    """Weighted k-means clustering (Lloyd's algorithm).

    Parameters
    ----------
    points : (n, d) array_like of float
        Points to cluster (converted to float32), n >= 1, 1 <= d <= 8.
    k : int
        Number of clusters, >= 1 (fixed centres included).  When the points
        hold k or fewer distinct values, exactly those values are returned as
        centres (after the fixed ones).
    weights : (n,) array_like of float, optional
        Non-negative weight of every point (e.g. pixel counts); default 1.
    seed : int
        Seed of the random draws of ``init="k-means++"`` (any integer; see
        :func:`kmeanspp`).  Nothing else is random.
    max_iter : int
        Maximum number of centre updates.
    tol : float
        Lloyd's iterations stop when one lowers the inertia by less than
        ``tol`` times its value.
    init : {"wu", "mediancut", "k-means++"} or (m, d) array_like
        Starting centres: greedy splitting where the error drops most (Wu's
        criterion), variance-based median cut (split at the mean), weighted
        k-means++ from ``seed``, or given centres (1 <= m <= k, the free ones
        only when ``fixed`` is given: m <= k - len(fixed)).  With ``fixed``,
        the named starts make k centres and keep the k - len(fixed) that the
        fixed ones cannot stand in for (:func:`fastquant.boxes.around_fixed`).
    swap_rounds : int
        After convergence, up to this many rounds of cluster swaps (merge a
        cluster into its neighbour, cut another in two; after ELBG), each
        followed by Lloyd's iterations; the best solution is kept.
    overrelax : float, optional
        0 to 1: each update moves the centres this much further than the
        weighted means, which converges in fewer iterations; a step that
        ends worse than the plain update would is taken back, so the error
        never increases.  0 gives plain Lloyd iterations.  Default:
        ``fastquant.config.OVERRELAX`` (0.8).
    boxes_on : (n, d') array_like of float, optional
        With ``init="wu"`` or ``"mediancut"``: the points the starting boxes
        are cut on instead (e.g. the integer colours of which ``points`` are
        a linear map: integer coordinates cut faster); the starting centres
        are the weighted means of ``points`` in those boxes.
    fixed : (f, d) array_like of float, optional
        Centres that never move, f <= k: they are ``centers[:f]`` of the
        result, exactly (as float32); the other k - f are fitted around them.
        With a named ``init`` the result is never worse than k - f centres
        fitted freely: that fit is made too, and when it ends lower, the
        fixed fit starts again from its centres and the better one is kept.

    Returns
    -------
    KMeansResult
        ``centers`` (k', d) float32, ``labels`` (n,) int32, ``inertia``, ``n_iter``.

    Raises
    ------
    OptionError
        On wrong shapes, non-finite values, negative weights, k < 1 or more
        fixed centres than k.
    """
    k = _check_int("k", k, 1)
    max_iter = _check_int("max_iter", max_iter, 0)
    seed = _check_int("seed", seed)
    if not (isinstance(tol, (int, float, np.floating)) and np.isfinite(tol) and tol >= 0):
        raise OptionError(f"tol must be a finite number >= 0, got {tol!r}")
    if overrelax is None:
        overrelax = config.OVERRELAX
    if isinstance(overrelax, bool) or not isinstance(overrelax, (int, float, np.floating)) or not 0 <= overrelax <= 1:
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
    fx = _check_fixed(fixed, pts.shape[1], k)
    nf = len(fx)
    swap_rounds = _check_int("swap_rounds", swap_rounds, 0)
    if isinstance(init, str) and init not in ("wu", "mediancut", "k-means++"):
        raise OptionError(f"init must be 'wu', 'mediancut', 'k-means++' or an array, got {init!r}")
    cuts = None
    if boxes_on is not None:
        cuts = np.ascontiguousarray(boxes_on, np.float32)
        if cuts.ndim != 2 or len(cuts) != n or not np.isfinite(cuts).all():
            raise OptionError(f"boxes_on must have shape ({n}, d') and finite values, got {cuts.shape}")
    args = (seed, max_iter, float(tol), swap_rounds, float(overrelax), cuts)
    if not nf or nf == k or not isinstance(init, str):
        return _kmeans(pts, w, k, fx, init, *args)
    res = _kmeans(pts, w, k, fx, init, *args)
    free = _kmeans(pts, w, k - nf, fx[:0], init, *args)
    if res.inertia > free.inertia:  # never worse than the free entries alone: start again from them
        again = _kmeans(pts, w, k, fx, free.centers, *args)
        res = again if again.inertia < res.inertia else res
    return res


def _kmeans(pts, w, k, fx, init, seed, max_iter, tol, swap_rounds, overrelax, cuts):
    """:func:`kmeans` on checked arguments (``fx`` (f, d) float32, possibly f = 0; ``cuts``:
    ``boxes_on`` as float32, or None).
    """
    n = len(pts)
    nf = len(fx)
    if nf == k:  # nothing to fit
        labels, dist = assign(pts, fx)
        return KMeansResult(fx, labels, float((w * dist).sum()), 0)
    integral = boxes.is_integral(pts)
    cut_pts, cut_integral = pts, integral
    if cuts is not None and isinstance(init, str) and init != "k-means++":  # boxes only
        cut_pts, cut_integral = cuts, boxes.is_integral(cuts)
    if isinstance(init, str):
        if init == "mediancut":
            centers, labels = boxes.mediancut(cut_pts, w, k)
        elif init == "wu":
            centers, labels = boxes.wu(cut_pts, w, k, cut_integral)
        elif init == "k-means++":
            centers = kmeanspp(pts, w, k, seed)
            labels = np.zeros(n, np.int32)
        if cut_pts is not pts:  # the boxes' centres where the clustering is
            centers = _box_means(pts, w, labels, len(centers))
        if nf:
            centers = np.vstack([fx, boxes.around_fixed(pts, w, centers, fx, k - nf)])
            labels, _ = assign(pts, centers)
    else:
        centers = np.ascontiguousarray(init, np.float32)
        if centers.ndim != 2 or centers.shape[1] != pts.shape[1] or not 1 <= len(centers) <= k - nf:
            raise OptionError(
                f"init centres must have shape (m, {pts.shape[1]}) with 1 <= m <= {k - nf}, got {centers.shape}"
            )
        centers = np.vstack([fx, centers]) if nf else centers
        labels = np.zeros(n, np.int32)
    if len(centers) < k and isinstance(init, str):
        # Fewer distinct points than k: the distinct points are the answer.
        uniq = np.unique(pts[w > 0], axis=0)
        if nf:
            uniq = uniq[~(uniq[:, None, :] == fx[None, :, :]).all(axis=2).any(axis=1)]
        if len(uniq) + nf <= k:
            centers = np.vstack([fx, uniq]) if nf else uniq
            labels, dist = assign(pts, centers)
            inertia = float((w * dist).sum())
            return KMeansResult(centers, labels, inertia, 0)
    if isinstance(init, str) and init != "k-means++":
        # Points in the order of their starting box: a run of points then uses
        # the same centre and neighbour list, which is faster.
        order, _ = boxes.by_cluster(labels, len(centers))
        centers, lab, inertia, n_iter = _lloyd(
            pts[order],
            w[order],
            centers,
            labels[order],
            max_iter,
            tol,
            swap_rounds,
            overrelax,
            integral,
            nf,
        )
        labels = np.empty_like(lab)
        labels[order] = lab
    else:
        centers, labels, inertia, n_iter = _lloyd(
            pts, w, centers, labels, max_iter, tol, swap_rounds, overrelax, integral, nf
        )
    return KMeansResult(centers, labels, float(inertia), n_iter)


def _check_fixed(fixed, d, k):
    """Fixed centres as (f, d) float32 (f = 0 for None), f <= k."""
    if fixed is None:
        return np.empty((0, d), np.float32)
    fx = np.asarray(fixed)
    if fx.ndim != 2 or fx.shape[1] != d or not (np.issubdtype(fx.dtype, np.number) or fx.dtype == bool):
        raise OptionError(f"fixed centres must be numeric with shape (f, {d}), got {fx.shape}")
    fx = np.ascontiguousarray(fx, np.float32)
    if not np.isfinite(fx).all():
        raise OptionError("fixed centres contain NaN or infinity")
    if len(fx) > k:
        raise OptionError(f"{len(fx)} fixed centres are more than k = {k}")
    return fx
