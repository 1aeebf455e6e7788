"""Numba's ``njit`` for fastquant's kernels, loading compiled kernels from the
disk cache with less start-up work.

Before it loads a cached kernel, Numba refreshes its whole compiler context:
it imports and registers the implementations of everything it can compile
(once per process, a noticeable part of a short run's start-up).  A kernel loaded from the cache needs none
of that, only Numba's runtime (its allocator).  So fastquant's kernels
initialize the runtime and load; a cache miss still compiles through Numba's
compiler, which refreshes the context itself.  Other code's Numba functions
are not touched.  With a Numba that lacks the internals used here, or when
the light load fails in any way, kernels load the usual way; setting
``FASTQUANT_PLAIN_NUMBA=1`` always does (``tests/test_jit.py`` fails loudly
when the internals move).
"""

import glob
import os


def _check_thread_count():
    """The error in ``NUMBA_NUM_THREADS``, or None; a bad value is taken out of the environment.

    Numba reads the variable when it is imported and again when it compiles:
    ``0`` or a negative number raises ValueError from inside ``import numba``
    (a traceback before any of fastquant's code runs), a non-number prints a
    warning with a traceback.  Without the variable Numba uses the core count:
    the library goes on so; the command line refuses to run, in one line with
    exit code 2 (it reads :data:`ENV_ERROR`).
    """
    value = os.environ.get("NUMBA_NUM_THREADS")
    if value is None or value.strip() == "":
        return None
    try:
        if int(value) >= 1:
            return None
    except ValueError:
        pass
    del os.environ["NUMBA_NUM_THREADS"]  # spawned workers inherit the repaired environment
    return f"NUMBA_NUM_THREADS={value!r}: expected a whole number of threads >= 1"


#: What is wrong with NUMBA_NUM_THREADS (see :func:`_check_thread_count`), or None.
ENV_ERROR = _check_thread_count()

import numba  # noqa: E402  (after the environment check above)
from numba import prange  # noqa: E402, F401  (re-exported: modules take both from here)

#: Modules whose kernel ``_assign_range`` marks a filled cache (it moves with the k-means split).
_CACHE_MARKERS = ("nearest._assign_range*.nbi", "kmeans._assign_range*.nbi")


def kernels_cached():
    """True when compiled kernels are on disk (so a run will not compile for seconds)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        places = [os.environ["NUMBA_CACHE_DIR"]]
    else:  # next to the package, or numba's user-wide cache where that is read-only
        places = [
            os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__"),
            os.path.join(os.path.expanduser("~"), ".cache", "numba"),
        ]
    return any(glob.glob(os.path.join(d, "**", marker), recursive=True) for d in places for marker in _CACHE_MARKERS)


def njit(**options):
    """``numba.njit(**options)`` whose dispatcher loads cached kernels lightly (see module docstring)."""

    def decorate(fn):
        return _light_loading(numba.njit(**options)(fn))

    return decorate


#: ``FASTQUANT_PLAIN_NUMBA=1`` in the environment: kernels load Numba's own way (no private internals).
PLAIN = os.environ.get("FASTQUANT_PLAIN_NUMBA", "").strip() not in ("", "0")


def _light_loading(dispatcher):
    cache = getattr(dispatcher, "_cache", None)
    load = getattr(cache, "_load_overload", None)
    guard = getattr(cache, "_guard_against_spurious_io_errors", None)
    plain = getattr(cache, "load_overload", None)
    if PLAIN or load is None or guard is None or plain is None:
        return dispatcher

    def load_overload(sig, target_context):
        try:
            from numba.core.runtime import rtsys

            rtsys.initialize(target_context)  # what the skipped refresh does first: the allocator
            with guard():
                return load(sig, target_context)
        except Exception:  # Numba's internals moved under us: load its own way (refresh, then load)
            return plain(sig, target_context)

    cache.load_overload = load_overload
    return dispatcher
