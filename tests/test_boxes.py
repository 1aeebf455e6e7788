"""fastquant.boxes: Wu's cuts, median cut and the cluster cuts against tests/naive.py."""

import numpy as np
import pytest

from fastquant import boxes

from . import naive

pytest_plugins = ["tests.drivers"]


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
def test_wu_matches_naive(k, integral, counts, int_points):
    rng = np.random.default_rng(k)
    # colours (integers, several sharing each value) or real numbers
    points = (int_points(rng, 1500) // 4 if integral else rng.normal(size=(1500, 3)) * 50).astype(np.float32)
    weights = rng.integers(1, 20, len(points)).astype(np.float64)
    if not counts:  # fractional weights: every box binned (no sibling subtraction)
        weights += rng.random(len(points))
    assert bool(np.all(weights == np.floor(weights))) == counts  # counts: the exact path (no sibling subtraction)
    assert boxes.is_integral(points) == integral
    centers, labels = boxes.wu(points, weights, k, integral)
    ref_centers, ref_labels = naive.wu(points, weights, k, integral)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(centers, ref_centers, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("integral", [True, False])
def test_cluster_cuts_match_naive(integral, drivers, int_points):
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
