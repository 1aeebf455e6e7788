"""fastquant.nearest: every search path against the brute-force nearest centre in tests/naive.py."""

import numpy as np
import pytest

from fastquant import nearest
from fastquant.nearest import assign

from . import naive

pytest_plugins = ["tests.drivers"]


@pytest.mark.parametrize("k", [1, 2, 7, 64, 300, 1100])
def test_assign_is_exact_nearest(k, drivers, search, int_points):
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


@pytest.mark.parametrize("n", [1, 2, 7, 256, 1000])
def test_kth_smallest_matches_a_sort(n):
    rng = np.random.default_rng(n)
    v = rng.integers(0, max(2, n // 3), n).astype(np.float32)  # many ties
    for kth in sorted({0, n // 2, n - 1}):
        w = v.copy()
        assert nearest._kth_smallest(w, kth) == np.sort(v)[kth]
        np.testing.assert_array_equal(np.sort(w), np.sort(v))  # reordered, nothing lost


@pytest.mark.parametrize("shift", [0.0, 0.5, 30.0])
def test_neighbor_lists_with_hint_equal_a_fresh_build(shift, drivers, int_points):
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
