"""fastquant.lloyd: the update, k-means++, Lloyd's iterations and kmeans() against tests/naive.py."""

import numba
import numpy as np
import pytest

import fastquant
from fastquant import histogram, kmeans, lloyd

from . import naive

pytest_plugins = ["tests.drivers"]


def test_update_is_weighted_mean(drivers):
    rng = np.random.default_rng(2)
    points = rng.normal(size=(9000, 3)).astype(np.float32)
    weights = rng.integers(1, 50, len(points)).astype(np.float64)
    labels = rng.integers(0, 40, len(points)).astype(np.int32)
    dist = rng.random(len(points)).astype(np.float32)
    sums, wsums, inertia = lloyd._partial_sums(points, weights, labels, dist, 40, 4096)
    np.testing.assert_allclose(sums / wsums[:, None], naive.weighted_means(points, weights, labels, 40), rtol=1e-10)
    np.testing.assert_allclose(wsums, np.bincount(labels, weights, 40), rtol=1e-12)
    assert inertia == pytest.approx(float((weights * dist).sum()), rel=1e-12)


def test_empty_cluster_takes_worst_point():
    points = np.array([[0, 0], [1, 0], [100, 0]], np.float32)
    weights = np.ones(3)
    labels = np.array([0, 0, 0], np.int32)
    dist = np.array([0, 1, 10000], np.float32)
    sums, wsums, _ = lloyd._partial_sums(points, weights, labels, dist, 2, 4096)
    centers = np.zeros((2, 2), np.float32)
    lloyd._new_centers(points, weights, dist, sums, wsums, centers, 0)
    np.testing.assert_allclose(centers[0], points.mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(centers[1], [100, 0])


@pytest.mark.parametrize("k", [3, 40, 300])
def test_nearest_other_matches_naive(k):
    rng = np.random.default_rng(k)
    centers = rng.integers(0, 16, (k, 3)).astype(np.float32)  # small range: duplicates and ties
    nn, nd = lloyd._nearest_other(centers)
    ref_nn, ref_nd = naive.nearest_other(centers)
    np.testing.assert_array_equal(nn, ref_nn)
    np.testing.assert_array_equal(nd, ref_nd)
    assert (nn != np.arange(k)).all()


@pytest.mark.parametrize("distinct", [1500, 5])
def test_kmeanspp_matches_naive(distinct):
    rng = np.random.default_rng(3)
    points = rng.normal(size=(distinct, 3)).astype(np.float32)[rng.integers(0, distinct, 1500)]
    weights = rng.integers(1, 10, len(points)).astype(np.float64)
    got = lloyd.kmeanspp(points, weights, 12, 7)
    assert len(got) == min(12, distinct)  # with 5 distinct points, k-means++ stops at 5
    np.testing.assert_allclose(got, naive.kmeanspp(points, weights, 12, 7), rtol=1e-6)


@pytest.mark.parametrize("seed", [0, 7, -1, -7, 2**63, 2**80, -(2**80), np.int64(-3), np.uint64(2**64 - 1)])
def test_kmeanspp_takes_any_integer_seed(seed):
    rng = np.random.default_rng(1)
    points = rng.normal(size=(800, 3)).astype(np.float32)
    a = kmeans(points, 8, init="k-means++", seed=seed, max_iter=2)
    b = kmeans(points, 8, init="k-means++", seed=seed, max_iter=2)
    np.testing.assert_array_equal(a.centers, b.centers)
    np.testing.assert_array_equal(a.labels, b.labels)


def test_kmeanspp_seeds_give_their_own_draws():
    rng = np.random.default_rng(2)
    points = rng.normal(size=(800, 3)).astype(np.float32)
    weights = np.ones(len(points))
    starts = {seed: lloyd.kmeanspp(points, weights, 8, seed).tobytes() for seed in (5, -5, 6, 2**80, -(2**80))}
    assert len(set(starts.values())) == len(starts)


@pytest.mark.parametrize("seed", [1.5, 2.0, "3", None, True, np.float64(1)])
def test_kmeans_rejects_a_seed_that_is_not_an_integer(seed):
    with pytest.raises(fastquant.OptionError, match="seed must be an integer"):
        kmeans(np.zeros((10, 3)), 2, init="k-means++", seed=seed)


def test_compress_takes_a_huge_or_negative_seed():
    image = np.random.default_rng(3).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    for seed in (2**80, -(2**80), -1):
        a = fastquant.compress(image, 16, seed=seed, init="k-means++")
        b = fastquant.compress(image, 16, seed=seed, init="k-means++")
        assert a.encode(".png") == b.encode(".png")
    with pytest.raises(fastquant.OptionError):
        fastquant.compress(image, 16, seed=0.5, init="k-means++")


@numba.njit(cache=False)
def _numba_seed(seed):
    np.random.seed(seed)


@numba.njit(cache=False)
def _numba_random():
    return np.random.random()


def test_kmeanspp_leaves_the_global_generators_alone():
    points = np.random.default_rng(4).normal(size=(500, 3)).astype(np.float32)
    np.random.seed(123)
    _numba_seed(123)
    expected = np.random.random(), _numba_random()
    np.random.seed(123)
    _numba_seed(123)
    kmeans(points, 8, init="k-means++", seed=5, max_iter=2)
    assert (np.random.random(), _numba_random()) == expected


def test_lloyd_matches_naive(drivers, search):
    rng = np.random.default_rng(4)
    points = rng.normal(size=(3000, 3)).astype(np.float32)
    weights = rng.integers(1, 9, len(points)).astype(np.float64)
    init = points[:16].copy()
    res = kmeans(points, 16, weights=weights, init=init, max_iter=8, tol=0, overrelax=0)
    ref_centers, ref_labels, ref_inertia = naive.lloyd(points, init, weights, n_iter=8)
    assert res.n_iter == 8
    np.testing.assert_allclose(res.centers, ref_centers, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(res.labels, ref_labels)
    assert res.inertia == pytest.approx(ref_inertia, rel=1e-5)


@pytest.mark.parametrize("overrelax, seed", [(0.8, 11), (1.0, 4)])
def test_overrelaxed_lloyd_matches_naive(drivers, overrelax, seed):
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(3000, 3)).astype(np.float32)
    weights = rng.integers(1, 9, len(points)).astype(np.float64)
    init = points[:16].copy()
    res = kmeans(points, 16, weights=weights, init=init, max_iter=8, tol=0, overrelax=overrelax)
    ref_centers, ref_labels, ref_inertia, taken_back = naive.lloyd_overrelaxed(points, init, weights, 8, overrelax)
    assert res.n_iter == 8
    np.testing.assert_allclose(res.centers, ref_centers, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(res.labels, ref_labels)
    assert res.inertia == pytest.approx(ref_inertia, rel=1e-5)
    plain = naive.lloyd(points, init, weights, n_iter=8)[2]
    assert ref_inertia < plain  # the feature does something: a lower error after the same updates
    if overrelax == 1.0:
        assert taken_back > 0  # and the take-back path is exercised


def test_histogram_kmeans_equals_pixel_kmeans(kodak):
    import imageio.v3 as iio

    image = iio.imread(kodak[0])[200:264, 300:364]  # 4096 pixels of a real photo
    pixels = image.reshape(-1, 3)
    colors, counts, inverse = histogram.unique_colors(pixels)
    assert len(colors) < len(pixels)  # the histogram really merges pixels
    init = colors[:24].astype(np.float32)
    on_pixels = kmeans(pixels, 24, init=init, max_iter=20, tol=0)
    on_hist = kmeans(colors, 24, weights=counts, init=init, max_iter=20, tol=0)
    np.testing.assert_allclose(on_hist.centers, on_pixels.centers, rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(on_hist.labels[inverse], on_pixels.labels)
    assert on_hist.inertia == pytest.approx(on_pixels.inertia, rel=1e-5)


@pytest.mark.parametrize("init", ["wu", "mediancut"])
def test_boxes_on_cuts_the_starting_boxes_elsewhere(init):
    """boxes_on: the starting boxes are those of the other points; the starting centres
    are the weighted means of ``points`` in them (naive), here a linear map of the others."""
    from fastquant import boxes, colorspace

    rng = np.random.default_rng(4)
    colors = np.unique(rng.integers(0, 256, (3000, 3)), axis=0).astype(np.float32)
    w = rng.integers(1, 9, len(colors)).astype(float)
    pts = colorspace.stretch_luma(colors, 1.3)
    res = kmeans(pts, 20, weights=w, init=init, max_iter=0, swap_rounds=0, boxes_on=colors)
    _, labels = boxes.wu(colors, w, 20, True) if init == "wu" else boxes.mediancut(colors, w, 20)
    want = naive.weighted_means(pts, w, labels, 20)
    np.testing.assert_allclose(np.sort(res.centers, axis=0), np.sort(want, axis=0), rtol=1e-5, atol=1e-3)
    with pytest.raises(fastquant.OptionError, match="boxes_on"):
        kmeans(pts, 20, weights=w, boxes_on=colors[:-1])
    # k-means++ and given centres draw no boxes: boxes_on changes nothing there
    for start in ("k-means++", res.centers):
        a = kmeans(pts, 20, weights=w, init=start, boxes_on=colors)
        b = kmeans(pts, 20, weights=w, init=start)
        np.testing.assert_array_equal(a.centers, b.centers)


def test_inertia_never_increases():
    rng = np.random.default_rng(6)
    points = rng.normal(size=(4000, 3)).astype(np.float32)
    weights = rng.integers(1, 5, len(points)).astype(np.float64)
    inertias = [kmeans(points, 32, weights=weights, max_iter=i, tol=0).inertia for i in range(12)]
    assert all(b <= a * (1 + 1e-6) for a, b in zip(inertias, inertias[1:]))
    assert inertias[-1] < inertias[0]


@pytest.mark.parametrize("init", ["mediancut", "k-means++"])
def test_kmeans_few_distinct_points_returns_them(init):
    pts = np.repeat(np.array([[0, 0, 0], [10, 20, 30], [255, 0, 0]], np.float32), 50, axis=0)
    res = kmeans(pts, 8, init=init)
    np.testing.assert_array_equal(res.centers, np.unique(pts, axis=0))
    assert res.inertia == 0
    res = kmeans(pts, 2, init=init)
    assert len(res.centers) == 2


@pytest.mark.parametrize("init", ["wu", "mediancut"])
@pytest.mark.parametrize("k", [1, 4096])
def test_kmeans_k_range(k, init):
    # the labels come back in the caller's order (k-means runs on the points sorted by box)
    rng = np.random.default_rng(k)
    pts = rng.normal(size=(6000, 3)).astype(np.float32)
    res = kmeans(pts, k, max_iter=3, init=init)
    assert res.centers.shape == (k, 3)
    ref_labels, _ = naive.nearest(pts, res.centers)
    np.testing.assert_array_equal(res.labels, ref_labels)
    if k == 1:
        np.testing.assert_allclose(res.centers[0], pts.astype(np.float64).mean(axis=0), atol=1e-5)


@pytest.mark.parametrize(
    "bad",
    [
        dict(k=0),
        dict(k=-1),
        dict(k=2.5),
        dict(k=True),
        dict(max_iter=-1),
        dict(tol=-1.0),
        dict(overrelax=-0.1),
        dict(overrelax=1.5),
        dict(overrelax="0.5"),
        dict(overrelax=True),
        dict(tol=float("nan")),
        dict(init="nope"),
        dict(weights=np.ones(3)),
        dict(weights=-np.ones(10)),
        dict(points=np.zeros((10,))),
        dict(points=np.full((10, 3), np.nan)),
    ],
)
def test_kmeans_rejects_bad_arguments(bad):
    args = dict(points=np.zeros((10, 3)), k=2)
    args.update(bad)
    with pytest.raises(fastquant.OptionError):
        kmeans(args.pop("points"), args.pop("k"), **args)


_THREAD_SCRIPT = """
import hashlib, sys
import fastquant
from fastquant import config
config.PARALLEL_MIN_POINTS = 0
config.PARALLEL_MIN_CENTERS = 0
q = fastquant.compress(sys.argv[1], 256)
print(hashlib.sha256(q.encode(".png")).hexdigest(), q.stats.iterations)
"""


def test_same_bytes_for_any_thread_count(kodak, outputs_by_threads):
    outs = outputs_by_threads(_THREAD_SCRIPT, kodak[3])
    assert len(outs) == 1, outs
