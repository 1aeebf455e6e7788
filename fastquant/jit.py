"""Numba's ``njit`` for fastquant's kernels, loading compiled kernels from the
disk cache with less start-up work.

Before it loads a cached kernel, Numba refreshes its whole compiler context:
it imports and registers the implementations of everything it can compile
(~0.15-0.25 s, once per process).  A kernel loaded from the cache needs none
of that, only Numba's runtime (its allocator).  So fastquant's kernels
initialize the runtime and load; a cache miss still compiles through Numba's
compiler, which refreshes the context itself.  Other code's Numba functions
are not touched.  With a Numba that lacks the internals used here, kernels
load the usual way.
"""
import numba
from numba import prange  # noqa: F401  (re-exported: modules take both from here)


def njit(**options):
    """``numba.njit(**options)`` whose dispatcher loads cached kernels lightly (see module docstring)."""
    def decorate(fn):
        return _light_loading(numba.njit(**options)(fn))
    return decorate


def _light_loading(dispatcher):
    cache = getattr(dispatcher, "_cache", None)
    load = getattr(cache, "_load_overload", None)
    guard = getattr(cache, "_guard_against_spurious_io_errors", None)
    if load is None or guard is None:
        return dispatcher

    def load_overload(sig, target_context):
        from numba.core.runtime import rtsys

        rtsys.initialize(target_context)  # what the skipped refresh does first: the allocator
        with guard():
            return load(sig, target_context)

    cache.load_overload = load_overload
    return dispatcher
