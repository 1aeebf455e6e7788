"""Python threads for work that lets go of the GIL (``nogil`` kernels, zlib).

Numba's own parallel loops (``prange``) wake a pool of OpenMP or workqueue
threads, which costs more than it saves on mid-sized work (see
``config.PARALLEL_MIN_POINTS``), and a process that has started them can no longer fork workers
safely.  Mid-sized work (a photo's histogram, a PNG's deflate) is instead
cut into fixed blocks run by plain Python threads.  The blocks never depend
on the thread count, so neither do the results.
"""

import os
import threading

#: Threads to use; None: Numba's configured count (NUMBA_NUM_THREADS, the
#: core count by default).  Batch workers set their share of the cores.
THREADS = None

_pool = None
_pool_size = 0
_lock = threading.Lock()


def count():
    """The number of threads :func:`run` uses."""
    if THREADS is not None:
        return max(1, THREADS)
    import numba  # its config only: numba.get_num_threads() would start Numba's threads

    return max(1, numba.config.NUMBA_NUM_THREADS)


def _forget_pool():
    global _pool, _pool_size
    _pool, _pool_size = None, 0  # a forked child has none of its parent's threads


os.register_at_fork(after_in_child=_forget_pool)


def run(fn, items, threads=None):
    """``[fn(item) for item in items]``, on up to ``threads`` threads (default :func:`count`).

    The calling thread takes a share, so one thread means no pool at all.

    Parameters
    ----------
    fn : callable
        Should let go of the GIL for most of its time, or nothing is gained.
    items : sequence
    threads : int, optional

    Returns
    -------
    list
        The results, in the order of ``items``.
    """
    global _pool, _pool_size
    items = list(items)
    threads = min(count() if threads is None else max(1, threads), len(items))
    if threads <= 1:
        return [fn(item) for item in items]
    with _lock:
        if _pool is None or _pool_size < threads - 1:
            from concurrent.futures import ThreadPoolExecutor

            _pool, _pool_size = ThreadPoolExecutor(threads - 1, thread_name_prefix="fastquant"), threads - 1
        pool = _pool
    # Items are dealt round-robin: item i goes to share i % threads; share 0 is ours.
    shares = [items[s::threads] for s in range(threads)]
    futures = [pool.submit(lambda share: [fn(item) for item in share], share) for share in shares[1:]]
    results = [[fn(item) for item in shares[0]]] + [f.result() for f in futures]
    out = [None] * len(items)
    for s, res in enumerate(results):
        out[s::threads] = res
    return out


def run_blocks(fn, n, threads=None):
    """``fn(lo, hi)`` on contiguous blocks covering 0..n-1, one block a thread
    (up to ``threads``, default :func:`count`).  For work whose result does
    not depend on how it is split (each item computed alone).
    """
    nb = max(1, min(count() if threads is None else threads, n))
    run(lambda b: fn(n * b // nb, n * (b + 1) // nb), range(nb), nb)
