"""Fixtures that run kernel tests down each of their execution paths.

Test modules take them with ``pytest_plugins = ["tests.drivers"]``.
"""

import numpy as np
import pytest

from fastquant import config, threads


@pytest.fixture(params=["serial", "parallel", "threads"])
def drivers(request, monkeypatch):
    """Run each test with the serial range kernels, through the prange drivers,
    and on blocks shared out to Python threads (fastquant.threads)."""
    if request.param == "parallel":
        monkeypatch.setattr(config, "PARALLEL_MIN_POINTS", 0)
        monkeypatch.setattr(config, "PARALLEL_MIN_CENTERS", 0)
    elif request.param == "threads":
        monkeypatch.setattr(config, "THREAD_MIN_POINTS", 0)
        monkeypatch.setattr(threads, "THREADS", 3)
    return request.param


@pytest.fixture(params=["lists", "short-lists", "no-lists"])
def search(request, monkeypatch):
    """Each nearest-centre search path: neighbour lists; lists so short that
    many points fall back to scanning every centre; no lists (bounds only)."""
    if request.param == "short-lists":
        monkeypatch.setattr(config, "NEIGHBORS", 3)
    elif request.param == "no-lists":
        monkeypatch.setattr(config, "NEIGHBOR_LIST_MAX_K", 0)
    return request.param


@pytest.fixture
def int_points():
    """A function (rng, n, d=3) -> (n, d) uint8-valued float32 points: squared
    distances are exact integers, ties are real."""
    return lambda rng, n, d=3: rng.integers(0, 256, (n, d)).astype(np.float32)
