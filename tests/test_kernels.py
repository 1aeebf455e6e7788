"""Kernels of histogram, resize, metrics and remap against their slow references in tests/naive.py.

The k-means stages have their own files: test_boxes.py, test_nearest.py, test_lloyd.py.
"""

import numpy as np
import pytest
from numba.core.types import Array

import fastquant
from fastquant import config, dither, histogram, metrics
from fastquant import resize as resize_mod

from . import naive


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


def test_a_read_only_array_needs_no_second_kernel():
    # np.asarray of a PIL image is read-only: Numba would compile a read-only version of every
    # kernel it reaches (counting, SSIM, dithering...), which --precompile does not make (a compile
    # a user with a warm cache would sit through)
    rng = np.random.default_rng(2)
    pixels = (rng.integers(0, 8, (60, 50, 3)) * 32).astype(np.uint8)
    frozen = pixels.copy()
    frozen.flags.writeable = False
    for kw in ({}, {"dither": "fs"}):
        a, b = fastquant.compress(frozen, 16, ssim=True, **kw), fastquant.compress(pixels, 16, ssim=True, **kw)
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.palette, b.palette)
    assert not frozen.flags.writeable  # the input is left as it is
    for kernel in (histogram._unique, metrics._luma_map, dither._fs):
        assert all(not isinstance(t, Array) or t.mutable for sig in kernel.signatures for t in sig), kernel


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


@pytest.mark.parametrize("sigma", [0.6, 2.2])  # windows of 2 and 8 taps a side: one and two passes of 5
def test_ssim_other_windows_match_naive(kodak, sigma):
    import imageio.v3 as iio

    a = iio.imread(kodak[3])[:70, :90]
    rng = np.random.default_rng(1)
    b = np.clip(a + rng.normal(0, 9, a.shape), 0, 255).astype(np.uint8)
    assert metrics.ssim(a, b, sigma=sigma) == pytest.approx(naive.ssim(a, b, sigma=sigma), abs=1e-9)


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (4, 30), (12, 11)])
def test_ssim_of_images_smaller_than_the_window(shape):
    rng = np.random.default_rng(sum(shape))
    a = rng.integers(0, 256, shape + (3,)).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-30, 31, a.shape), 0, 255).astype(np.uint8)
    assert metrics.ssim(a, a) == pytest.approx(1.0)
    assert -1.0 <= metrics.ssim(a, b) < 1.0


@pytest.mark.parametrize("channels", [3, 4])
def test_ssim_indexed_is_ssim_of_the_mapped_image(kodak, channels):
    import imageio.v3 as iio

    a = iio.imread(kodak[0])[:150, :200]
    if channels == 4:
        a = np.concatenate([a, np.full(a.shape[:2] + (1,), 200, np.uint8)], axis=2)
    rng = np.random.default_rng(channels)
    palette = rng.integers(0, 256, (40, channels)).astype(np.uint8)
    indices = rng.integers(0, 40, a.shape[:2]).astype(np.uint8)
    assert metrics.ssim_indexed(a, palette, indices) == metrics.ssim(a, palette[indices])
    rows = lambda lo, hi: a[lo:hi]  # noqa: E731
    assert metrics.ssim_indexed(rows, palette, indices, max_pixels=9000) == metrics.ssim(
        a, palette[indices], max_pixels=9000
    )


def test_ssim_matches_skimage_when_installed(kodak):
    skm = pytest.importorskip("skimage.metrics")
    import imageio.v3 as iio

    a = iio.imread(kodak[2])[:128, :160]
    b = np.clip(a.astype(int) + 20 * np.sin(np.arange(160) / 5)[None, :, None], 0, 255).astype(np.uint8)
    ref = skm.structural_similarity(
        metrics.luma(a), metrics.luma(b), gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    assert metrics.ssim(a, b) == pytest.approx(ref, abs=1e-6)


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


def test_coarsen_drops_the_fewest_bits_that_fit():
    """The cells are those of the smallest shift whose cell count fits (counted by brute force), RGB and RGBA,
    whether the shift was found on a bitmap of the cells or on the table itself (RGBA at shift 1)."""
    rng = np.random.default_rng(10)
    for c, n, limits in ((3, 20000, (15000, 4000, 300, 1)), (4, 20000, (19000, 12000, 900))):
        colors = np.unique(rng.integers(0, 256, (n, c)).astype(np.uint8), axis=0)
        counts = rng.integers(1, 9, len(colors))
        for limit in limits:
            cells_at = [len(np.unique(colors >> s, axis=0)) for s in range(9)]
            shift = next(s for s in range(1, 9) if cells_at[s] <= limit)
            means, weights, cell = histogram.coarsen(colors, counts, limit)
            assert len(means) == cells_at[shift] <= limit
            key = (colors >> shift).astype(np.int64) @ (1 << (8 * np.arange(c)))
            assert len(np.unique(np.stack([key, cell], 1), axis=0)) == len(means)  # one cell per key


def test_coarsen_keeps_fractional_weights():
    """Importance-weighted counts below 1 are summed as they are, never truncated to 0 (which
    made empty cells and NaN means)."""
    rng = np.random.default_rng(9)
    colors = np.unique(rng.integers(0, 256, (5000, 3)).astype(np.uint8), axis=0)
    weights = rng.uniform(0.01, 0.6, len(colors))
    means, cell_weights, cell = histogram.coarsen(colors, weights, 600)
    assert np.isfinite(means).all() and (cell_weights > 0).all()
    np.testing.assert_allclose(cell_weights.sum(), weights.sum())
    for j in (0, len(means) // 2, len(means) - 1):
        m = cell == j
        np.testing.assert_allclose(means[j], (weights[m, None] * colors[m]).sum(0) / weights[m].sum(), rtol=1e-5)


def test_sampled_path_maps_every_pixel_exactly(kodak, monkeypatch):
    import imageio.v3 as iio

    monkeypatch.setattr(config, "SAMPLE_PIXELS", 30000)  # a Kodak photo is then "large"
    monkeypatch.setattr(config, "FIT_COLORS", 4000)
    image = iio.imread(kodak[3])[:300, :400]
    q = fastquant.compress(image, 64)
    ref, ref_dist = naive.nearest(image.reshape(-1, 3)[::7], q.palette)
    np.testing.assert_array_equal(q.indices.reshape(-1)[::7], ref)
    assert q.stats.mse == pytest.approx(metrics.mse(image, q.image), rel=1e-12)
    assert len(np.unique(q.palette, axis=0)) == len(q.palette)
    assert q.stats.psnr > 30


def test_ssim_bands_on_threads_equal_serial(kodak, monkeypatch):
    import imageio.v3 as iio

    a = iio.imread(kodak[1])
    b = np.clip(a.astype(int) + 9, 0, 255).astype(np.uint8)
    monkeypatch.setattr(fastquant.threads, "THREADS", 1)
    serial = metrics.ssim(a, b)
    monkeypatch.setattr(fastquant.threads, "THREADS", 3)
    assert metrics.ssim(a, b) == serial  # same bands, same order: the same float
