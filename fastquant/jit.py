"""Numba's ``njit`` for fastquant's kernels, loading compiled kernels from the
disk cache with less start-up work.

Before it loads a cached kernel, Numba refreshes its whole compiler context:
it imports and registers the implementations of everything it can compile
(once per process, a noticeable part of a short run's start-up).  A kernel loaded from the cache needs none
of that, only Numba's runtime (its allocator).  So fastquant's kernels
initialize the runtime and load, without importing the modules of Numba's own
implementations they inlined and without parsing their linking bitcode until
a compile links them (see :class:`_lean_unpickling`); a cache miss still
compiles through Numba's compiler, which refreshes the context itself.  Other code's Numba functions
are not touched.  With a Numba that lacks the internals used here, or when
the light load fails in any way, kernels load the usual way; setting
``FASTQUANT_PLAIN_NUMBA=1`` always does (``tests/test_jit.py`` fails loudly
when the internals move).

Where the cache lives: ``NUMBA_CACHE_DIR`` when it is set; else the
package's own ``__pycache__`` when it can be written (Numba's default), or,
on a read-only install, when it holds the kernel already (prepared by
``python -m fastquant --precompile``; what it lacks is compiled but not
kept); else the user's cache folder (``~/.cache``).  When no folder can be
written, a kernel is not cached at all (it compiles in every process),
and the compile notice says so: never an exception at import.
"""

import os
import pickle
import sys


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

import threading  # noqa: E402
import warnings  # noqa: E402

import numba  # noqa: E402  (after the environment check above)
import numba.core.event  # noqa: E402
import numpy as np  # noqa: E402
from numba import prange  # noqa: E402, F401  (re-exported: modules take both from here)


class CompileWarning(UserWarning):
    """Numba is compiling fastquant's kernels: once, then they load from the disk cache.

    Emitted once per process by the first compile.  Silence it with
    ``warnings.simplefilter("ignore", fastquant.CompileWarning)``, or run
    ``python -m fastquant --demo`` once (or any file) to fill the cache.
    """


#: How the first compile of a process is announced: None (the default) emits a
#: :class:`CompileWarning`; a callable is called with the one-line message.  The
#: environment variable ``FASTQUANT_COMPILE_NOTICE`` (``stderr`` or ``off``), which
#: the command line sets for itself and its workers, takes precedence over None.
announce = None

_NOTICE_LOCK = threading.Lock()
_announced: list = []


def _compile_notice(dispatcher):
    """Announce, once per process, that one of fastquant's kernels is about to compile."""
    fn = getattr(dispatcher, "py_func", None)
    module = getattr(fn, "__module__", "") or ""
    if not module.startswith("fastquant."):
        return
    with _NOTICE_LOCK:
        if _announced:
            return
        _announced.append(module)
    what = f"{module.rsplit('.', 1)[-1]}.{fn.__name__}"
    kept = "later runs load them from the cache (or run python -m fastquant --precompile once)"
    locator = getattr(getattr(getattr(dispatcher, "_cache", None), "_impl", None), "locator", None)
    if id(dispatcher) in UNCACHED:
        kept = "no writable cache folder: kernels compile in every run (set NUMBA_CACHE_DIR)"
    elif type(locator).__name__ == "PackageCacheLocator":
        kept = "the package's precompiled cache is read-only, so this compile is not kept (set NUMBA_CACHE_DIR)"
    message = (
        f"fastquant: compiling Numba kernels (first: {what}), once for each feature used: a few seconds each; {kept}"
    )
    mode = os.environ.get("FASTQUANT_COMPILE_NOTICE", "")
    if announce is not None:
        announce(message)
    elif mode == "stderr":
        print(message, file=sys.stderr, flush=True)
    elif mode != "off":
        warnings.warn(message, CompileWarning, stacklevel=2)


#: The cyclic garbage collector's first threshold while Numba compiles (see :class:`_CompileListener`).
COMPILE_GC_THRESHOLD = 50_000


class _CompileListener(numba.core.event.Listener):
    """Numba's "numba:compile" event fires on a cache miss, just before compiling (and again,
    nested, for each kernel or Numba function that compile compiles in turn).

    While a compile runs, the garbage collector's first generation is collected after
    :data:`COMPILE_GC_THRESHOLD` allocations instead of Python's 700: Numba's compiler makes
    millions of short-lived objects, and the collections that their count sets off (each
    walking the compiler's large live state) are a good part of a compile's CPU time.  The
    thresholds are restored when the outermost compile ends.
    """

    def __init__(self):
        self.depth = 0  # nested compiles (they run under Numba's compiler lock)
        self.thresholds = None

    def on_start(self, event):
        _init_extensions()
        _compile_notice((event.data or {}).get("dispatcher"))  # (should it raise, nothing has changed)
        if self.depth == 0:
            import gc

            self.thresholds = gc.get_threshold()
            gc.set_threshold(max(self.thresholds[0], COMPILE_GC_THRESHOLD), *self.thresholds[1:])
        self.depth += 1

    def on_end(self, event):
        self.depth -= 1
        if self.depth == 0 and self.thresholds is not None:
            import gc

            gc.set_threshold(*self.thresholds)


numba.core.event.register("numba:compile", _CompileListener())


def skip_blas_probe():
    """Keep Numba from importing scipy (slow, and useless here) in a process of fastquant's own.

    On its first compile or cache load Numba imports scipy.linalg, when scipy
    is installed, to find a BLAS for ``np.dot`` inside jitted code; no
    fastquant kernel uses one.  Only the CLI and pool workers call this:
    their process runs nothing but fastquant.
    """
    if "numba.np.arraymath" not in sys.modules:
        sys.modules.setdefault("scipy.linalg.cython_blas", None)  # None: "not importable"


def _no_hook():
    pass


def _init_extensions():
    """Numba's extensions (the ``numba_extensions`` entry points of installed distributions), as
    Numba initializes them before a compile.

    Numba finds them before a dispatcher's first call (reading every installed distribution's
    metadata: a few milliseconds, more with many packages); a kernel loaded from the cache needs
    none, so fastquant's kernels leave it (see :func:`njit`) to their first compile, when
    :class:`_CompileListener` calls this.  Other code's functions find them as usual.
    """
    try:
        from numba.core import entrypoints

        entrypoints.init_all()
    except Exception:  # Numba's own call, before its own compiles, still stands
        pass


#: Every kernel made by :func:`njit`, in the order their modules defined them
#: (:mod:`fastquant.warmup` checks that each one is compiled).
KERNELS: list = []


def njit(**options):
    """``numba.njit(**options)`` whose dispatcher loads cached kernels lightly (see module docstring);
    the kernel is added to :data:`KERNELS`.  With ``cache=True`` and no folder the cache can be
    written to, the kernel is not cached (it is in :data:`UNCACHED`).

    Numba sets up a kernel's disk cache when it makes the dispatcher (it finds the folder, and
    checks that it can write there): most of the dispatcher's cost, for every kernel of every
    module imported, used or not.  Here it is set up when the kernel first loads or compiles
    (:class:`_LazyCache`).
    """

    def decorate(fn):
        if options.get("cache") and not PLAIN:
            dispatcher = numba.njit(**dict(options, cache=False))(fn)
            if type(getattr(dispatcher, "_cache", None)).__name__ == "NullCache":
                dispatcher._cache = _LazyCache(dispatcher)
            else:  # Numba's internals moved: its own caching, set up now
                _enable_caching(dispatcher)
            _typeof_arrays(dispatcher)
            if hasattr(dispatcher, "_compilation_chain_init_hook"):
                dispatcher._compilation_chain_init_hook = _no_hook  # see _init_extensions
        else:
            dispatcher = numba.njit(**dict(options, cache=False))(fn)
            if options.get("cache"):
                _enable_caching(dispatcher)
        KERNELS.append(dispatcher)
        return dispatcher

    return decorate


def _enable_caching(dispatcher):
    """Numba's disk cache for ``dispatcher``, loading lightly (see :func:`_light_loading`), or no cache
    when no folder for it can be written (the kernel is then in :data:`UNCACHED`).
    """
    try:
        dispatcher.enable_caching()
    except RuntimeError as e:  # "cannot cache function ...: no locator available"
        if "locator" not in str(e):
            raise
        UNCACHED.add(id(dispatcher))
        return
    _light_loading(dispatcher)


class _LazyCache:
    """A kernel's disk cache until it is first asked for anything: then Numba's own is set up
    (:func:`_enable_caching`), which replaces this one on the dispatcher, and answers.
    """

    def __init__(self, dispatcher):
        self._dispatcher = dispatcher

    def __getattr__(self, name):
        d = self._dispatcher
        if d._cache is self:
            from numba.core.caching import NullCache

            d._cache = NullCache()  # what stays when it cannot be cached
            _enable_caching(d)
        return getattr(d._cache, name)


#: ``id()`` of the kernels that could not be cached: no folder for their cache could be written.
UNCACHED: set[int] = set()

_HERE = os.path.dirname(os.path.abspath(__file__))
_writable: dict[str, bool] = {}


def _can_write(folder):
    """Whether a file can be made in ``folder`` (as Numba itself checks it), remembered per folder."""
    if folder not in _writable:
        import tempfile

        try:
            os.makedirs(folder, exist_ok=True)
            tempfile.TemporaryFile(dir=folder).close()
            _writable[folder] = True
        except OSError:
            _writable[folder] = False
    return _writable[folder]


def _add_package_locator():
    """Let kernels load from the package's read-only ``__pycache__`` when it holds them."""
    try:
        from numba.core import caching

        base = getattr(caching, "CacheImpl", None) or caching._CacheImpl  # named so from numba 0.60
        in_tree = getattr(caching, "InTreeCacheLocator", None) or caching._InTreeCacheLocator
    except (ImportError, AttributeError):
        return

    class PackageCacheLocator(in_tree):
        """fastquant's own ``__pycache__``, read-only, that holds the kernel's precompiled index."""

        def ensure_cache_path(self):
            pass  # nothing can be saved here: a new compile is not kept (see _light_loading)

        @classmethod
        def from_function(cls, py_func, py_file):
            if os.path.dirname(os.path.abspath(py_file)) != _HERE:
                return None
            self = cls(py_func, py_file)
            folder = self.get_cache_path()
            if _can_write(folder):
                return None  # Numba's own in-tree locator, next in the list, serves
            stem = os.path.splitext(os.path.basename(py_file))[0]
            version = f"py{sys.version_info[0]}{sys.version_info[1]}{getattr(sys, 'abiflags', '')}"
            index = f"{stem}.{py_func.__qualname__}-{self.get_disambiguator()}.{version}.nbi"
            return self if os.path.exists(os.path.join(folder, index)) else None

    classes = base._locator_classes
    if not any(c.__name__ == "PackageCacheLocator" for c in classes):
        at = next((i + 1 for i, c in enumerate(classes) if c.__name__ == "UserProvidedCacheLocator"), 0)
        classes.insert(at, PackageCacheLocator)


#: ``FASTQUANT_PLAIN_NUMBA=1`` in the environment: kernels load Numba's own way (no private internals).
PLAIN = os.environ.get("FASTQUANT_PLAIN_NUMBA", "").strip() not in ("", "0")
if not PLAIN:
    _add_package_locator()


def _light_loading(dispatcher):
    cache = getattr(dispatcher, "_cache", None)
    load = getattr(cache, "_load_overload", None)
    guard = getattr(cache, "_guard_against_spurious_io_errors", None)
    plain = getattr(cache, "load_overload", None)
    if PLAIN or load is None or guard is None or plain is None:
        return dispatcher

    def load_overload(sig, target_context):
        try:
            with _unobserved_llvm_lock():
                # what the skipped refresh does first: the allocator
                _initialize_runtime(target_context, cache._impl.locator.get_cache_path())
                with guard(), _lean_unpickling(target_context.codegen()):
                    return load(sig, target_context)
        except Exception:  # Numba's internals moved under us: load its own way (refresh, then load)
            return plain(sig, target_context)

    save = cache.save_overload

    def save_overload(sig, data):
        try:
            save(sig, data)
        except OSError:  # a read-only cache (see PackageCacheLocator): the kernel serves this process only
            pass

    cache.load_overload = load_overload
    cache.save_overload = save_overload
    return dispatcher


def _array_type(val):
    """Numba's type of a NumPy array of class ``np.ndarray`` itself, as ``numba.typeof`` gives it
    (``tests/test_jit.py`` compares them), without its test for a masked array: that test imports
    ``numpy.ma`` (a sizeable part of a short run's start-up), and a plain array is none.
    """
    from numba.core import types
    from numba.np import numpy_support

    return types.Array(
        numpy_support.from_dtype(val.dtype), val.ndim, numpy_support.map_layout(val), readonly=not val.flags.writeable
    )


def _typeof_arrays(dispatcher):
    """Type the dispatcher's plain-array arguments with :func:`_array_type` (Numba's own way for
    anything else, or when that fails).  Numba asks the dispatcher for the type of an argument
    whose kind it has not met yet in this process.
    """
    plain = dispatcher.typeof_pyval
    active = getattr(dispatcher, "_types_active_call", None)  # Numba keeps the types of the call here
    if not isinstance(active, set):
        return

    def typeof_pyval(val):
        if type(val) is np.ndarray:
            try:
                tp = _array_type(val)
            except Exception:  # an unsupported dtype (Numba's error), or internals that moved
                return plain(val)
            active.add(tp)
            return tp
        return plain(val)

    dispatcher.typeof_pyval = typeof_pyval


def _initialize_runtime(target_context, folder):
    """Numba's runtime (NRT: its allocator and reference counts), its few compiled functions
    loaded from ``folder`` when they were kept there, else compiled and kept there.

    Numba compiles those functions with LLVM in every process, at the first load of a kernel
    (what the rest of a cached run's load costs twice over); their machine code, kept beside the
    kernels, loads as a cached kernel does (:func:`_unserialize_lean`).  The file is named by a
    hash of what the code depends on: the target CPU (as Numba's cache keys kernels), Numba and
    llvmlite (which make the runtime module) and the optimization level.  With
    ``NUMBA_NRT_STATS``, Numba's own initialization.
    """
    from numba.core.runtime import rtsys

    if rtsys._init:
        return
    import hashlib

    import llvmlite
    from llvmlite import binding as ll
    from numba.core import config
    from numba.core.runtime import _nrt_python, nrtdynmod

    if config.NRT_STATS:
        rtsys.initialize(target_context)
        return
    codegen = target_context.codegen()
    key = repr((codegen.magic_tuple(), numba.__version__, llvmlite.__version__, config.OPT))
    path = os.path.join(folder, f"fastquant-nrt-{hashlib.sha256(key.encode()).hexdigest()[:24]}.nrt")
    for name, address in _nrt_python.c_helpers.items():  # the runtime's C functions, as initialize() adds them
        ll.add_symbol(name if name.startswith("_") else "NRT_" + name, address)
    try:
        with open(path, "rb") as f:
            data = pickle.load(f)
    except Exception:  # not kept yet (or unreadable): compiled, as Numba does, and kept
        data = None
    if data is not None:
        library = _unserialize_lean(codegen, ("nrt", "object", data))
    else:
        module, library = nrtdynmod.create_nrt_module(target_context)
        library.enable_object_caching()
        library.add_ir_module(module)
        library.finalize()
        _keep(path, library.serialize_using_object_code()[2])
    rtsys._library = library
    rtsys._init = True


def _keep(path, data):
    """Pickle ``data`` to ``path`` whole (a temporary file renamed), or not at all: the folder may be read-only."""
    import tempfile

    try:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


# What a cached kernel's unpickling costs beyond its machine code, and how it is avoided (only while
# one of fastquant's kernels loads, under Numba's compiler lock; with :func:`_light_loading`'s
# fallback to Numba's own load if anything here fails):
# - each function inlined into a kernel (``np.empty``, ``argmax``...) brings back its Environment,
#   which imports the module that defined it: ``numba.np.arraymath`` and the like, a large part of a
#   short run's start-up.  A nopython function reads only the Environment's constants (unpickled
#   as they are); its globals serve object mode alone.  So for a Numba module not imported yet, the
#   Environment gets a stand-in globals dict naming the module instead of importing it.
# - the library keeps LLVM bitcode of everything it contains, for linking into later compiles, and
#   Numba parses it and walks all its symbols on load.  Only a compile that links the kernel in
#   needs it: it is parsed then (see _CachedLibrary).


def _rebuild_env_lean(modname, consts, env_name):
    from numba.core import environment

    env = environment.lookup_environment(env_name)
    if env is not None:
        return env
    if modname in sys.modules or not str(modname).startswith("numba."):
        return _REBUILD_ENV[0](modname, consts, env_name)
    env = environment.Environment({"__name__": modname})
    env.consts[:] = consts
    env.env_name = env_name
    environment.Environment._memo[env_name] = env
    return env


_REBUILD_ENV: list = []
_LIBRARY_CLASSES: dict = {}


def _cached_library_class(base):
    """``base`` (Numba's JIT code library) that parses its linking bitcode only when linked."""
    if base not in _LIBRARY_CLASSES:

        class _CachedLibrary(base):
            _shared_bitcode = None

            def _get_module_for_linking(self):
                if self._shared_module is None and self._shared_bitcode is not None:
                    from numba.core.codegen import ll  # llvmlite.binding, as Numba's codegen has it

                    self._shared_module = ll.parse_bitcode(self._shared_bitcode)
                    self._shared_bitcode = None
                    self._codegen._engine._load_defined_symbols(self._shared_module)
                return super()._get_module_for_linking()

            def get_pointer_to_function(self, name):
                # Numba looks the name up in the symbols it walked; the engine knows them (0 if not).
                self._ensure_finalized()
                return self._codegen._engine.get_function_address(name)

        _LIBRARY_CLASSES[base] = _CachedLibrary
    return _LIBRARY_CLASSES[base]


def _unserialize_lean(codegen, state):
    name, kind, data = state
    if kind != "object":
        return type(codegen).unserialize_library(codegen, state)
    object_code, shared_bitcode = data
    library = _cached_library_class(codegen._library_class)(codegen, name)
    library.enable_object_caching()
    library._set_compiled_object(object_code)
    library._shared_bitcode = shared_bitcode
    library._finalize_final_module()
    return library


class _lean_unpickling:
    """While a kernel loads: :func:`_rebuild_env_lean` and :func:`_unserialize_lean` in Numba's place."""

    def __init__(self, codegen):
        self.codegen = codegen

    def __enter__(self):
        from numba.core import environment

        if not _REBUILD_ENV:
            _REBUILD_ENV.append(environment._rebuild_env)
        environment._rebuild_env = _rebuild_env_lean
        try:
            self.codegen.unserialize_library = lambda state: _unserialize_lean(self.codegen, state)
        except Exception:  # Numba's own functions back before the fallback loads its way
            environment._rebuild_env = _REBUILD_ENV[0]
            raise

    def __exit__(self, *exc):
        from numba.core import environment

        environment._rebuild_env = _REBUILD_ENV[0]
        self.codegen.__dict__.pop("unserialize_library", None)
        return False


class _unobserved_llvm_lock:
    """While a kernel loads, llvmlite's lock calls no callbacks.

    Numba registers callbacks on the lock llvmlite takes around each of its calls, which emit
    events that time the LLVM work of a compile.  Loading a kernel makes a few dozen LLVM calls,
    most of them cheaper than their two events, and keeps no timing (a cached result has no
    metadata to keep it in).  Callbacks registered meanwhile stay after the ones put back.
    """

    def __enter__(self):
        from llvmlite.binding import ffi

        callbacks = getattr(getattr(getattr(ffi, "lib", None), "_lock", None), "_cblist", None)
        self.callbacks = callbacks if isinstance(callbacks, list) else []
        self.saved = self.callbacks[:]
        self.callbacks.clear()

    def __exit__(self, *exc):
        self.callbacks[:0] = self.saved
        return False
