"""fastquant.threads: results in order, whatever the thread count; usable after fork."""

import os
import threading

import numpy as np
import pytest

from fastquant import kmeans, threads


@pytest.mark.parametrize("n_threads", [1, 2, 3, 8])
def test_run_keeps_order(n_threads):
    seen = set()

    def square(x):
        seen.add(threading.get_ident())
        return x * x

    assert threads.run(square, range(11), n_threads) == [x * x for x in range(11)]
    assert threads.run(square, [], n_threads) == []
    assert len(seen) <= n_threads


def test_run_reraises():
    def boom(x):
        if x == 3:
            raise ValueError("three")
        return x

    with pytest.raises(ValueError, match="three"):
        threads.run(boom, range(6), 2)


def test_kmeans_same_result_on_any_thread_count(monkeypatch):
    rng = np.random.default_rng(0)
    points = rng.integers(0, 256, (20000, 3)).astype(np.float32)  # above THREAD_MIN_POINTS
    weights = rng.integers(1, 9, len(points)).astype(np.float64)
    results = []
    for n in (1, 2, 3):
        monkeypatch.setattr(threads, "THREADS", n)
        results.append(kmeans(points, 64, weights=weights))
    for r in results[1:]:
        np.testing.assert_array_equal(r.centers, results[0].centers)
        np.testing.assert_array_equal(r.labels, results[0].labels)
        assert r.inertia == results[0].inertia


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_pool_works_in_a_forked_child():
    threads.run(abs, range(4), 2)  # the parent has a pool now
    pid = os.fork()
    if pid == 0:  # the child: its copy of the pool has no threads; run must not hang
        import signal

        signal.alarm(30)  # a hang kills the child (SIGALRM), which fails the test
        ok = threads.run(abs, range(-4, 0), 2) == [4, 3, 2, 1]
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
