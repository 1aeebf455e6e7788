"""Every Numba kernel against its slow reference in tests/naive.py."""
import sys

import numpy as np
import pytest

import fastquant
from fastquant import boxes, histogram, metrics, nearest
from fastquant import kmeans as kmeans_fn
from fastquant import resize as resize_mod
from fastquant.kmeans import _kmeanspp
from fastquant.nearest import assign

from . import naive

km_module = sys.modules["fastquant.kmeans"]
threads_module = sys.modules["fastquant.threads"]


@pytest.fixture(params=["serial", "parallel", "threads"])
def drivers(request, monkeypatch):
    """Run each test with the serial range kernels, through the prange drivers,
    and on blocks shared out to Python threads (fastquant.threads)."""
    if request.param == "parallel":
        monkeypatch.setattr(nearest, "PARALLEL_MIN_POINTS", 0)
        monkeypatch.setattr(nearest, "PARALLEL_MIN_CENTERS", 0)
    elif request.param == "threads":
        monkeypatch.setattr(nearest, "THREAD_MIN_POINTS", 0)
        monkeypatch.setattr(threads_module, "THREADS", 3)
    return request.param


@pytest.fixture(params=["lists", "short-lists", "no-lists"])
def search(request, monkeypatch):
    """Each nearest-centre search path: neighbour lists; lists so short that
    many points fall back to scanning every centre; no lists (bounds only)."""
    if request.param == "short-lists":
        monkeypatch.setattr(nearest, "NEIGHBORS", 3)
    elif request.param == "no-lists":
        monkeypatch.setattr(nearest, "NEIGHBOR_LIST_MAX_K", 0)
    return request.param


def int_points(rng, n, d=3):
    """uint8-valued float32 points: squared distances are exact integers, ties are real."""
    return rng.integers(0, 256, (n, d)).astype(np.float32)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_histogram_matches_naive(channels):
    rng = np.random.default_rng(channels)
    # few distinct values so colours repeat; enough pixels to force table growth and rehashing
    pixels = rng.integers(0, 6, (70000, channels)).astype(np.uint8) * 51
    colors, counts, inverse = histogram.unique_colors(pixels)
    ref_colors, ref_counts, ref_inverse = naive.unique_colors(pixels)
    np.testing.assert_array_equal(colors, ref_colors)
    np.testing.assert_array_equal(counts, ref_counts)
    np.testing.assert_array_equal(inverse, ref_inverse)


def test_histogram_many_colours():
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (200000, 3)).astype(np.uint8)
    colors, counts, inverse = histogram.unique_colors(pixels)
    np.testing.assert_array_equal(colors[inverse], pixels)
    assert counts.sum() == len(pixels)
    assert len(np.unique(colors, axis=0)) == len(colors)


@pytest.mark.parametrize("k", [1, 2, 7, 64, 300, 1100])
def test_assign_is_exact_nearest(k, drivers, search):
    rng = np.random.default_rng(k)
    points = int_points(rng, 3000)
    centers = int_points(rng, k)
    start = rng.integers(0, k, len(points)).astype(np.int32)  # arbitrary starting guesses
    labels, dist = assign(points, centers, start)
    ref_labels, ref_dist = naive.nearest(points, centers)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_array_equal(dist, ref_dist)


def test_assign_float_points(drivers, search):
    rng = np.random.default_rng(5)
    points = rng.normal(size=(5000, 4)).astype(np.float32)
    centers = rng.normal(size=(200, 4)).astype(np.float32)
    labels, dist = assign(points, centers)
    ref_labels, ref_dist = naive.nearest(points, centers)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-5, atol=1e-6)


def test_update_is_weighted_mean(drivers):
    rng = np.random.default_rng(2)
    points = rng.normal(size=(9000, 3)).astype(np.float32)
    weights = rng.integers(1, 50, len(points)).astype(np.float64)
    labels = rng.integers(0, 40, len(points)).astype(np.int32)
    dist = rng.random(len(points)).astype(np.float32)
    sums, wsums, inertia = km_module._partial_sums(points, weights, labels, dist, 40, 4096)
    np.testing.assert_allclose(sums / wsums[:, None], naive.weighted_means(points, weights, labels, 40),
                               rtol=1e-10)
    np.testing.assert_allclose(wsums, np.bincount(labels, weights, 40), rtol=1e-12)
    assert inertia == pytest.approx(float((weights * dist).sum()), rel=1e-12)


def test_empty_cluster_takes_worst_point():
    points = np.array([[0, 0], [1, 0], [100, 0]], np.float32)
    weights = np.ones(3)
    labels = np.array([0, 0, 0], np.int32)
    dist = np.array([0, 1, 10000], np.float32)
    sums, wsums, _ = km_module._partial_sums(points, weights, labels, dist, 2, 4096)
    centers = np.zeros((2, 2), np.float32)
    km_module._new_centers(points, weights, dist, sums, wsums, centers)
    np.testing.assert_allclose(centers[0], points.mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(centers[1], [100, 0])


@pytest.mark.parametrize("k", [1, 5, 64])
def test_mediancut_matches_naive(k):
    rng = np.random.default_rng(k)
    points = rng.normal(size=(2000, 3)).astype(np.float32)
    weights = rng.integers(1, 20, len(points)).astype(np.float64)
    centers, labels = boxes.mediancut(points, weights, k)
    ref_centers, ref_labels = naive.mediancut(points, weights, k)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(centers, ref_centers, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("integral, counts", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("k", [1, 6, 40])
def test_wu_matches_naive(k, integral, counts):
    rng = np.random.default_rng(k)
    # colours (integers, several sharing each value) or real numbers
    points = (int_points(rng, 1500) // 4 if integral else rng.normal(size=(1500, 3)) * 50).astype(np.float32)
    weights = rng.integers(1, 20, len(points)).astype(np.float64)
    if not counts:  # fractional weights: every box binned (no sibling subtraction)
        weights += rng.random(len(points))
    assert boxes._exact_sums(weights) == counts
    assert boxes.is_integral(points) == integral
    centers, labels = boxes.wu(points, weights, k, integral)
    ref_centers, ref_labels = naive.wu(points, weights, k, integral)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(centers, ref_centers, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("integral", [True, False])
def test_cluster_cuts_match_naive(integral, drivers):
    rng = np.random.default_rng(9)
    points = (int_points(rng, 2000) if integral else rng.normal(size=(2000, 3)) * 50).astype(np.float32)
    weights = rng.integers(1, 20, len(points)).astype(np.float64)
    labels = rng.integers(0, 30, len(points)).astype(np.int32)
    labels[labels == 7] = 8  # an empty cluster
    labels[np.flatnonzero(labels == 9)[1:]] = 10  # a cluster of one point
    gains, left, right = boxes.cluster_cuts(points, weights, labels, 30, integral)
    ref_gains, ref_left, ref_right = naive.cluster_cuts(points, weights, labels, 30, integral)
    np.testing.assert_allclose(gains, ref_gains, rtol=1e-9)
    np.testing.assert_allclose(left, ref_left, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(right, ref_right, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("k", [3, 40, 300])
def test_nearest_other_matches_naive(k):
    rng = np.random.default_rng(k)
    centers = rng.integers(0, 16, (k, 3)).astype(np.float32)  # small range: duplicates and ties
    nn, nd = km_module._nearest_other(centers)
    ref_nn, ref_nd = naive.nearest_other(centers)
    np.testing.assert_array_equal(nn, ref_nn)
    np.testing.assert_array_equal(nd, ref_nd)
    assert (nn != np.arange(k)).all()


@pytest.mark.parametrize("n", [1, 2, 7, 256, 1000])
def test_kth_smallest_matches_a_sort(n):
    rng = np.random.default_rng(n)
    v = rng.integers(0, max(2, n // 3), n).astype(np.float32)  # many ties
    for kth in sorted({0, n // 2, n - 1}):
        w = v.copy()
        assert nearest._kth_smallest(w, kth) == np.sort(v)[kth]
        np.testing.assert_array_equal(np.sort(w), np.sort(v))  # reordered, nothing lost


def test_kmeanspp_matches_naive():
    rng = np.random.default_rng(3)
    points = rng.normal(size=(1500, 3)).astype(np.float32)
    weights = rng.integers(1, 10, len(points)).astype(np.float64)
    got = _kmeanspp(points, weights, 12, 7)
    np.testing.assert_allclose(got, naive.kmeanspp(points, weights, 12, 7), rtol=1e-6)


def test_lloyd_matches_naive(drivers, search):
    rng = np.random.default_rng(4)
    points = rng.normal(size=(3000, 3)).astype(np.float32)
    weights = rng.integers(1, 9, len(points)).astype(np.float64)
    init = points[:16].copy()
    res = kmeans_fn(points, 16, weights=weights, init=init, max_iter=8, tol=0, overrelax=0)
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
    res = kmeans_fn(points, 16, weights=weights, init=init, max_iter=8, tol=0, overrelax=overrelax)
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
    on_pixels = kmeans_fn(pixels, 24, init=init, max_iter=20, tol=0)
    on_hist = kmeans_fn(colors, 24, weights=counts, init=init, max_iter=20, tol=0)
    np.testing.assert_allclose(on_hist.centers, on_pixels.centers, rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(on_hist.labels[inverse], on_pixels.labels)
    assert on_hist.inertia == pytest.approx(on_pixels.inertia, rel=1e-5)


def test_inertia_never_increases():
    rng = np.random.default_rng(6)
    points = rng.normal(size=(4000, 3)).astype(np.float32)
    weights = rng.integers(1, 5, len(points)).astype(np.float64)
    inertias = [kmeans_fn(points, 32, weights=weights, max_iter=i, tol=0).inertia for i in range(12)]
    assert all(b <= a * (1 + 1e-6) for a, b in zip(inertias, inertias[1:]))
    assert inertias[-1] < inertias[0]


@pytest.mark.parametrize("init", ["mediancut", "k-means++"])
def test_kmeans_few_distinct_points_returns_them(init):
    pts = np.repeat(np.array([[0, 0, 0], [10, 20, 30], [255, 0, 0]], np.float32), 50, axis=0)
    res = kmeans_fn(pts, 8, init=init)
    np.testing.assert_array_equal(res.centers, np.unique(pts, axis=0))
    assert res.inertia == 0
    res = kmeans_fn(pts, 2, init=init)
    assert len(res.centers) == 2


@pytest.mark.parametrize("init", ["wu", "mediancut"])
@pytest.mark.parametrize("k", [1, 4096])
def test_kmeans_k_range(k, init):
    # the labels come back in the caller's order (k-means runs on the points sorted by box)
    rng = np.random.default_rng(k)
    pts = rng.normal(size=(6000, 3)).astype(np.float32)
    res = kmeans_fn(pts, k, max_iter=3, init=init)
    assert res.centers.shape == (k, 3)
    ref_labels, _ = naive.nearest(pts, res.centers)
    np.testing.assert_array_equal(res.labels, ref_labels)
    if k == 1:
        np.testing.assert_allclose(res.centers[0], pts.astype(np.float64).mean(axis=0), atol=1e-5)


@pytest.mark.parametrize("bad", [
    dict(k=0), dict(k=-1), dict(k=2.5), dict(k=True), dict(max_iter=-1), dict(tol=-1.0),
    dict(overrelax=-0.1), dict(overrelax=1.5), dict(overrelax="0.5"), dict(overrelax=True),
    dict(tol=float("nan")), dict(init="nope"), dict(weights=np.ones(3)),
    dict(weights=-np.ones(10)), dict(points=np.zeros((10,))), dict(points=np.full((10, 3), np.nan)),
])
def test_kmeans_rejects_bad_arguments(bad):
    args = dict(points=np.zeros((10, 3)), k=2)
    args.update(bad)
    with pytest.raises(fastquant.OptionError):
        kmeans_fn(args.pop("points"), args.pop("k"), **args)


@pytest.mark.parametrize("shape,size", [((10, 12, 3), (5, 4)), ((9, 7, 4), (3, 5)), ((31, 17, 3), (7, 13))])
def test_area_resize_matches_naive(shape, size):
    rng = np.random.default_rng(sum(shape))
    image = rng.integers(0, 256, shape).astype(np.uint8)
    got = resize_mod.resize(image, size)
    ref = naive.area_resize(image, *size)
    # float rounding at exact .5 can differ by one level
    assert np.abs(got.astype(int) - ref).max() <= 1
    assert (got == ref).mean() > 0.99


def test_ssim_matches_naive(kodak):
    import imageio.v3 as iio

    a = iio.imread(kodak[1])[:96, :128]
    rng = np.random.default_rng(0)
    b = np.clip(a + rng.normal(0, 12, a.shape), 0, 255).astype(np.uint8)
    assert metrics.ssim(a, b) == pytest.approx(naive.ssim(a, b), abs=1e-9)
    assert metrics.ssim(a, a) == pytest.approx(1.0)
    assert metrics.ssim(a, b) < 0.95


def test_ssim_matches_skimage_when_installed(kodak):
    skm = pytest.importorskip("skimage.metrics")
    import imageio.v3 as iio

    a = iio.imread(kodak[2])[:128, :160]
    b = np.clip(a.astype(int) + 20 * np.sin(np.arange(160) / 5)[None, :, None], 0, 255).astype(np.uint8)
    ref = skm.structural_similarity(metrics.luma(a), metrics.luma(b), gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, data_range=255)
    assert metrics.ssim(a, b) == pytest.approx(ref, abs=1e-6)


_THREAD_SCRIPT = """
import hashlib, sys
import fastquant
from fastquant import nearest
nearest.PARALLEL_MIN_POINTS = 0
nearest.PARALLEL_MIN_CENTERS = 0
q = fastquant.compress(sys.argv[1], 256)
print(hashlib.sha256(q.encode(".png")).hexdigest(), q.stats.iterations)
"""


def test_same_bytes_for_any_thread_count(kodak, outputs_by_threads):
    outs = outputs_by_threads(_THREAD_SCRIPT, kodak[4])
    assert len(outs) == 1, outs


@pytest.mark.parametrize("k", [3, 256, 300])
def test_lut_remap_is_exact_nearest(k):
    from fastquant.remap import remap_lut

    rng = np.random.default_rng(k)
    pixels = rng.integers(0, 64, (20000, 3)).astype(np.uint8) * 4  # repeats: the table is reused
    palette = rng.integers(0, 256, (k, 3)).astype(np.uint8)
    indices, sq_error = remap_lut(pixels, palette)
    ref, ref_dist = naive.nearest(pixels, palette)
    np.testing.assert_array_equal(indices, ref)
    assert indices.dtype == (np.uint8 if k <= 256 else np.uint16)
    assert sq_error == ref_dist.sum()


def test_coarsen_merges_to_weighted_cell_means():
    rng = np.random.default_rng(8)
    colors = np.unique(rng.integers(0, 256, (5000, 3)).astype(np.uint8), axis=0)
    counts = rng.integers(1, 9, len(colors))
    means, weights, cell = histogram.coarsen(colors, counts, 600)
    assert len(means) <= 600 < len(colors)
    assert weights.sum() == counts.sum()
    for j in (0, len(means) // 2, len(means) - 1):  # each cell: weighted mean of its members
        m = cell == j
        np.testing.assert_allclose(means[j], (counts[m, None] * colors[m]).sum(0) / counts[m].sum(), rtol=1e-6)
    # the cells are exactly the groups of colours that agree once a few low bits are dropped
    groupings = []
    for shift in range(1, 9):
        key = (colors.astype(np.int64) >> shift) @ np.array([1 << 16, 1 << 8, 1])
        pairs = len(np.unique(np.stack([key, cell], 1), axis=0))
        groupings.append(pairs == len(np.unique(key)) == len(np.unique(cell)))
    assert any(groupings)
    same, _, cell = histogram.coarsen(colors, counts, len(colors))
    np.testing.assert_array_equal(same, colors)
    np.testing.assert_array_equal(cell, np.arange(len(colors)))


def test_sampled_path_maps_every_pixel_exactly(kodak, monkeypatch):
    import imageio.v3 as iio

    api = sys.modules["fastquant.api"]
    monkeypatch.setattr(api, "SAMPLE_PIXELS", 30000)  # a Kodak photo is then "large"
    monkeypatch.setattr(api, "FIT_COLORS", 4000)
    image = iio.imread(kodak[3])[:300, :400]
    q = fastquant.compress(image, 64)
    ref, ref_dist = naive.nearest(image.reshape(-1, 3)[::7], q.palette)
    np.testing.assert_array_equal(q.indices.reshape(-1)[::7], ref)
    assert q.stats.mse == pytest.approx(metrics.mse(image, q.image), rel=1e-12)
    assert len(np.unique(q.palette, axis=0)) == len(q.palette)
    assert q.stats.psnr > 30


def test_ssim_parallel_bands_equal_serial(kodak, monkeypatch):
    import imageio.v3 as iio

    a = iio.imread(kodak[5])
    b = np.clip(a.astype(int) + 9, 0, 255).astype(np.uint8)
    serial = metrics.ssim(a, b)
    monkeypatch.setattr(metrics, "SSIM_PARALLEL_PIXELS", 0)
    assert metrics.ssim(a, b) == serial  # same bands, same order: the same float


@pytest.mark.parametrize("shift", [0.0, 0.5, 30.0])
def test_neighbor_lists_with_hint_equal_a_fresh_build(shift, drivers):
    rng = np.random.default_rng(int(shift * 10))
    before = int_points(rng, 300)
    after = (before + rng.normal(0, shift, before.shape)).astype(np.float32)  # centres that moved
    _, hint = nearest.neighbor_lists(before)
    order, sorted_d = nearest.neighbor_lists(after, hint)
    fresh_order, fresh_d = nearest.neighbor_lists(after)
    np.testing.assert_array_equal(order, fresh_order)
    np.testing.assert_array_equal(sorted_d, fresh_d)
    ref = np.sort(((after[:, None, :].astype(np.float64) - after[None]) ** 2).sum(-1), axis=1)[:, :32]
    np.testing.assert_allclose(sorted_d, ref, rtol=1e-6)
