"""fastquant.jit: kernels load from Numba's cache without the compiler context
refresh, give the same results, and leave other Numba code compiling."""

import importlib
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from numba.core.dispatcher import Dispatcher

import fastquant
from fastquant import jit


def _dispatchers():
    for info in pkgutil.iter_modules(fastquant.__path__):
        if info.name == "__main__":  # running it is the CLI
            continue
        module = importlib.import_module(f"fastquant.{info.name}")
        for name, value in vars(module).items():
            if isinstance(value, Dispatcher) and value.__module__ == module.__name__:
                yield f"{info.name}.{name}", value


def _decorated_modules():
    """Modules whose source decorates a function with ``@njit``/``@numba.njit``/``@jit``."""
    here = Path(fastquant.__file__).parent
    return {
        path.stem
        for path in here.glob("*.py")
        if re.search(r"^@(numba\.)?n?jit\b", path.read_text(encoding="utf-8"), re.MULTILINE)
    }


def test_every_kernel_is_cached_and_loads_lightly():
    kernels = dict(_dispatchers())
    found = {name.split(".")[0] for name in kernels}
    expected = _decorated_modules()
    assert expected, "no module decorates a kernel: the source scan is broken"
    assert found == expected, (
        f"modules with @njit kernels but no dispatcher found: {sorted(expected - found)}; "
        f"dispatchers found outside them: {sorted(found - expected)}"
    )
    for name, d in kernels.items():
        loader = d._cache.load_overload  # what Numba asks first (the cache is set up then: jit._LazyCache)
        assert type(d._cache).__name__ == "FunctionCache", f"{name}: cache=True missing"
        assert loader.__qualname__.startswith("_light_loading"), f"{name}: plain numba.njit"


# In a fresh process every kernel comes from the cache the test session has
# filled: the light loader's path.  Prints results to compare with this
# process's, and compiles a function of its own afterwards.
_FRESH = r"""
import sys
import numpy as np
import fastquant
rng = np.random.default_rng(5)
points = rng.integers(0, 256, (70000, 3)).astype(np.float32)  # above PARALLEL_MIN_POINTS: prange kernels
r = fastquant.kmeans(points, 40, weights=rng.integers(1, 5, len(points)).astype(np.float64), max_iter=6)
q = fastquant.compress(rng.integers(0, 256, (64, 48, 3), dtype=np.uint8), 16, ssim=True)
kernels = {f"{m}.{name}": d for m in list(sys.modules) if m.startswith("fastquant.")
           for name, d in vars(sys.modules[m]).items() if hasattr(d, "_cache_misses")}
misses = {name: dict(d._cache_misses) for name, d in kernels.items() if d._cache_misses}
hits = sum(sum(d._cache_hits.values()) for d in kernels.values())

import numba
@numba.njit
def other(x):
    s = sorted([v for v in x])
    return np.cumsum(np.array(s))[-1] + np.sqrt(np.sum(x * x))
print(repr(r.inertia), r.labels.sum(), q.palette.tobytes().hex(), q.indices.sum(), repr(q.stats.ssim))
print(misses, hits > 0, other(np.arange(5.0)))
"""


def test_fresh_process_loads_kernels_lightly_with_the_same_results():
    rng = np.random.default_rng(5)
    points = rng.integers(0, 256, (70000, 3)).astype(np.float32)
    r = fastquant.kmeans(points, 40, weights=rng.integers(1, 5, len(points)).astype(np.float64), max_iter=6)
    q = fastquant.compress(rng.integers(0, 256, (64, 48, 3), dtype=np.uint8), 16, ssim=True)
    out = subprocess.run([sys.executable, "-c", _FRESH], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    results, loading = out.stdout.splitlines()
    assert results == f"{r.inertia!r} {r.labels.sum()} {q.palette.tobytes().hex()} {q.indices.sum()} {q.stats.ssim!r}"
    # nothing compiled (all from the cache), and afterwards other code still compiles and runs
    assert loading == f"{{}} True {10.0 + np.sqrt(30.0)}"


def test_plain_arrays_are_typed_as_numba_types_them():
    """jit._array_type (Numba's typing of an array, less its masked-array test) agrees with
    numba.typeof on every dtype, layout, dimension and writability the kernels meet."""
    import numba

    base = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    arrays = []
    for dtype in (np.uint8, np.uint16, np.int32, np.int64, np.float32, np.float64, np.bool_, np.intp):
        a = base.astype(dtype)
        arrays += [a, a[0], a[0, 0], a[0, 0, 0], a[:, ::2], np.asfortranarray(a[0]), a[0, :, 1], np.zeros(0, dtype)]
    arrays.append(np.array(3.0))
    readonly = base[0].copy()
    readonly.flags.writeable = False
    arrays += [readonly, np.frombuffer(b"abcd", np.uint8)]
    for a in arrays:
        assert jit._array_type(a) == numba.typeof(a), (a.dtype, a.shape, a.strides, a.flags.writeable)
    # and a kernel's dispatcher types them so (the internals it uses are where they were)
    kernels = dict(_dispatchers())
    assert kernels and all(d.typeof_pyval.__qualname__.startswith("_typeof_arrays") for d in kernels.values())


def test_numba_extensions_are_found_before_a_kernel_compiles_not_for_a_load(tmp_path):
    """Numba's search for extensions (entry points) is left to a kernel's first compile
    (jit._init_extensions): a process that compiles makes it, one that loads from the cache does not."""
    script = (
        "import numpy as np\n"
        "from numba.core import entrypoints\n"
        "from fastquant import histogram\n"
        "histogram._unique(np.zeros((5, 3), np.uint8))\n"
        "print(entrypoints._already_initialized)\n"
    )
    compiled = _fresh(script, NUMBA_CACHE_DIR=str(tmp_path), FASTQUANT_COMPILE_NOTICE="off")
    loaded = _fresh(script, NUMBA_CACHE_DIR=str(tmp_path), FASTQUANT_COMPILE_NOTICE="off")
    assert compiled == ["True"] and loaded == ["False"]


def test_llvm_lock_callbacks_are_left_out_while_a_kernel_loads_then_put_back():
    import numba.core.base  # noqa: F401  (registers Numba's callbacks: its numba:llvm_lock events)
    from llvmlite.binding import ffi

    callbacks = ffi.lib._lock._cblist  # (where llvmlite keeps them: jit._unobserved_llvm_lock)
    before = list(callbacks)
    assert before
    with jit._unobserved_llvm_lock():
        assert callbacks == []
    assert callbacks == before


def test_njit_keeps_numba_options():
    @jit.njit(cache=False, nogil=True)
    def add(a, b):
        return a + b

    assert isinstance(add, Dispatcher) and add.targetoptions["nogil"]
    assert add(2, 3) == 5


def _fresh(script, **env):
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600, env=dict(os.environ, **env)
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_plain_numba_switch_and_fallback_give_the_same_results():
    """FASTQUANT_PLAIN_NUMBA=1 leaves the dispatchers as Numba made them; a light load that
    fails (internals that moved: here, rtsys.initialize raising) falls back to Numba's own;
    both load from the cache (no compile) and give this process's results."""
    rng = np.random.default_rng(5)
    points = rng.integers(0, 256, (70000, 3)).astype(np.float32)
    r = fastquant.kmeans(points, 40, weights=rng.integers(1, 5, len(points)).astype(np.float64), max_iter=6)
    q = fastquant.compress(rng.integers(0, 256, (64, 48, 3), dtype=np.uint8), 16, ssim=True)
    want = f"{r.inertia!r} {r.labels.sum()} {q.palette.tobytes().hex()} {q.indices.sum()} {q.stats.ssim!r}"
    wired = (
        "print(all(d._cache.load_overload.__qualname__.startswith('_light_loading') for d in "
        "[fastquant.nearest._assign_range, fastquant.histogram._unique]))\n"
    )
    plain = _fresh(
        "import fastquant, fastquant.nearest, fastquant.histogram\n" + wired + _FRESH, FASTQUANT_PLAIN_NUMBA="1"
    )
    assert plain[0] == "False" and plain[1] == want and plain[2].startswith("{} True")
    # Numba's own modules hold their own reference to rtsys; the light loader looks it up when it
    # loads, so a module attribute that no longer works is what it meets.
    boom = (
        "import fastquant, numba.core.cpu, numba.core.runtime as rt\n"
        "class Moved:\n    def initialize(self, ctx):\n        raise AttributeError('moved')\n"
        "rt.rtsys = Moved()\n"
    )
    fallen = _fresh(boom + "import fastquant.nearest, fastquant.histogram\n" + wired + _FRESH)
    assert fallen[0] == "True" and fallen[1] == want and fallen[2].startswith("{} True")


def test_first_compile_is_announced_once(tmp_path):
    """With an empty cache the command line says, in one line on stderr, that it compiles; a second
    run says nothing; -q says nothing; the API emits one CompileWarning, which a filter silences."""
    from PIL import Image

    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("FASTQUANT_COMPILE_NOTICE", None)

    def cli(*args):
        r = subprocess.run(
            [sys.executable, "-m", "fastquant", str(tmp_path / "a.png"), "-o", str(tmp_path / "b.png"), "-f", *args],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )
        assert r.returncode == 0, r.stderr
        return [line for line in r.stderr.splitlines() if "compiling Numba kernels" in line]

    first = cli("-k", "8")
    assert len(first) == 1 and "later runs load them from the cache" in first[0]
    assert cli("-k", "8") == []  # cached
    assert cli("-k", "8", "--dither", "ordered", "-q") == []  # compiles the ordered kernels, quietly
    api = (
        "import sys, warnings, fastquant\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    fastquant.compress(sys.argv[1], 8, dither='fs')\n"
        "    fastquant.compress(sys.argv[1], 8, dither='fs', colorspace='oklab')\n"
        "print(sum(issubclass(x.category, fastquant.CompileWarning) for x in w))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", api, str(tmp_path / "a.png")], capture_output=True, text=True, timeout=600, env=env
    )
    assert r.returncode == 0 and r.stdout.strip() == "1", r.stderr  # one warning, however many kernels compile
    silenced = "import warnings, fastquant\nwarnings.simplefilter('ignore', fastquant.CompileWarning)\n" + api.replace(
        "simplefilter('always')", "simplefilter('ignore', fastquant.CompileWarning)"
    )
    r = subprocess.run(
        [sys.executable, "-c", silenced, str(tmp_path / "a.png")],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(env, NUMBA_CACHE_DIR=str(tmp_path / "cache2")),
    )
    assert r.returncode == 0 and r.stdout.strip() == "0" and "compiling" not in r.stderr, r.stderr


def test_garbage_collector_runs_less_often_while_numba_compiles_then_as_before():
    import gc

    import numba
    import numba.core.event as ev

    seen = []

    class Probe(ev.Listener):  # registered after fastquant's: its start runs after fastquant's start
        def on_start(self, event):
            seen.append(gc.get_threshold())

        def on_end(self, event):
            pass

    before = gc.get_threshold()
    probe = Probe()
    ev.register("numba:compile", probe)
    try:
        f = numba.njit(lambda x: x + 1)  # a fresh function: it compiles (not one of fastquant's kernels)
        assert f(1) == 2
    finally:
        ev.unregister("numba:compile", probe)
    assert seen and seen[0][0] == max(before[0], jit.COMPILE_GC_THRESHOLD)
    assert gc.get_threshold() == before
