"""Compiling every kernel ahead of time: ``python -m fastquant --precompile``, :func:`precompile`.

Numba compiles a kernel the first time it is called with new argument types and
keeps the machine code in its disk cache (``cache=True``).  Precompiling runs
every feature once on small generated images (:data:`WARMUPS`), with the
thresholds of :mod:`fastquant.config` lowered so that small inputs take the
paths large ones take (threads, the strip-by-strip large-image path), and so
fills the cache with every kernel a run can use.  This process first compiles
the kernels that both of the next two would reach (:func:`_shared`), then
forks them: the core's kernels compile in one while the other compiles what
the features add to them (:func:`_direct_features`); then this process runs
the warm-ups neither ran, loading what they compiled and compiling anything
they missed, and checks that every registered kernel
(:data:`fastquant.jit.KERNELS`) was reached.

A new kernel is covered when some warm-up reaches it: a new ``compress()``
option adds an entry to :data:`WARMUPS` (``tests/test_precompile.py`` fails
for a kernel that none reaches).
"""

import contextlib
import os
import sys
import time
from typing import Any, Callable, NamedTuple, Optional

import numpy as np

#: Thresholds of :mod:`fastquant.config` lowered during warm-ups, so that small
#: images take every path that large ones take.  Only the Python side reads
#: them: the kernels and their argument types are the same either way.
_SMALL = {
    "SAMPLE_PIXELS": 1 << 11,
    "FEW_COLORS": 64,
    "EXACT_COLORS": 1 << 9,
    "FIT_COLORS": 1 << 10,
    "STRIP_PIXELS": 1 << 10,
    "PARALLEL_MIN_POINTS": 1 << 10,
    "PARALLEL_MIN_CENTERS": 64,
    "THREAD_MIN_POINTS": 1 << 8,
    "PARALLEL_MIN_COLORS": 1 << 9,
    "PARALLEL_MIN_PIXELS": 1 << 9,
    "NEIGHBOR_LIST_MAX_K": 1 << 7,
    "SSIM_MAX_PIXELS": 1 << 12,
    "DEFLATE_PIECE": 1 << 10,
    "STRONG_DEFLATE_PIECE": 1 << 11,
}


@contextlib.contextmanager
def small_thresholds():
    """Within ``with``: :data:`_SMALL`'s values in :mod:`fastquant.config` (restored after)."""
    from . import config

    old = {name: getattr(config, name) for name in _SMALL if hasattr(config, name)}
    try:
        for name in old:
            setattr(config, name, _SMALL[name])
        yield
    finally:
        for name, value in old.items():
            setattr(config, name, value)


def _photo(h, w, channels=3, seed=0):
    """A smooth, noisy test picture: (h, w, channels) uint8 with many colours (alpha varies too)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) * 127 // max(h + w - 2, 1)], -1)
    img = img + rng.integers(-12, 13, img.shape)
    if channels == 4:
        alpha = np.where((x // 8 + y // 8) % 3 == 0, 0, np.clip(x * 4, 0, 255))
        img = np.concatenate([img, alpha[..., None]], -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def _graphic(h, w, n_colors, channels=3):
    """Flat areas of ``n_colors`` colours: what the large path counts exactly."""
    y, x = np.mgrid[0:h, 0:w]
    table = _photo(1, n_colors, channels, seed=1)[0]
    table[:, -1] = np.maximum(table[:, -1], 1) if channels == 4 else table[:, -1]
    return table[(x // 3 + 7 * (y // 3)) % n_colors]


def _png(image):
    """``image`` as PNG bytes (so that warm-ups read files as the command line does)."""
    from .write import encode_array

    return encode_array("x.png", image)


def _run(image, **options):
    """compress() ``image`` (PNG bytes or an array), encode the result as PNG, as a job does."""
    from .api import compress

    q = compress(image, options.pop("n_colors", 16), **options)
    q.encode(".png")
    return q


# ----------------------------------------------------------------------------- warm-ups


def _warm_core():
    """The default path: RGB photo and graphic, k small and large, SSIM, quality; kmeans() itself."""
    from . import lloyd

    for shape in ((40, 50), (60, 70)):  # below and above the thread thresholds
        png = _png(_photo(*shape))
        _run(png, ssim=True)
        _run(png, n_colors=256, ssim=True, quality=(0, 90))
    _run(_png(_graphic(30, 30, 6)), ssim=True)
    _run(_photo(70, 80), n_colors=200)  # k above NEIGHBOR_LIST_MAX_K (lowered): the bounds search
    pts = _photo(40, 40).reshape(-1, 3).astype(np.float32)
    for init in ("wu", "mediancut", "k-means++"):
        lloyd.kmeans(pts, 12, weights=np.ones(len(pts)), init=init)


def _warm_alpha():
    """RGBA: premultiplied fit and mapping, alpha metrics."""
    png = _png(_photo(50, 60, 4))
    _run(png, ssim=True)
    _run(png, n_colors=200, ssim=True, quality=(0, 90))


def _warm_oklab():
    """OKLab fit and mapping, RGB and RGBA."""
    for channels in (3, 4):
        png = _png(_photo(60, 70, channels))
        _run(png, colorspace="oklab", ssim=True)
        _run(png, n_colors=200, colorspace="oklab")


def _warm_dither():
    """Floyd-Steinberg and ordered dithering, RGB and RGBA, both colour spaces."""
    for channels in (3, 4):
        png = _png(_photo(60, 70, channels))
        for dither in ("fs", "ordered"):
            for colorspace in ("rgb", "oklab"):
                _run(png, dither=dither, colorspace=colorspace, ssim=True)


def _warm_large():
    """The strip-by-strip path of :mod:`fastquant.large`: photos and graphics, RGB and RGBA,
    both colour spaces, dithered; resizing into it.
    """
    for channels in (3, 4):
        photo = _png(_photo(90, 100, channels))
        for colorspace in ("rgb", "oklab"):
            _run(photo, colorspace=colorspace, ssim=True)
            _run(photo, n_colors=300, colorspace=colorspace)  # uint16 indices
        _run(photo, dither="fs", ssim=True)
        _run(photo, dither="ordered")
        _run(_png(_graphic(90, 100, 40, channels)), ssim=True)  # counted exactly: codes
        _run(_png(_graphic(90, 100, 300, channels)), n_colors=64)  # counted, more than 256 colours
    _run(_png(_photo(30, 40)), resize=(120, 100))


def _direct_features():
    """The kernels of the features beyond the core (the own deflate, colour spaces, dithering,
    the large path's mappers and counters), reached through their modules' entry points with a
    made-up palette: this needs none of the core's kernels, so it compiles beside
    :func:`_warm_core` (which compiles what the core reaches, every start included: a kernel
    compiled in both processes is time lost).  It starts before :func:`_shared` has compiled:
    first SSIM and the importance map, which the core reaches seconds later and then loads from
    the cache (a balance of the two processes' work), then the own deflate, which needs nothing
    of :func:`_shared` (16 colours: no palette order); by the time the rest needs it, it loads
    from the cache.
    """
    from . import colorspace, dither, histogram, importance, metrics, png, remap

    rng = np.random.default_rng(3)
    # First what the core process reaches only seconds later (having loaded them from the
    # cache by then): SSIM and the importance map.
    photo = _photo(40, 50)
    metrics.ssim(photo, photo[::-1])
    importance.contrast_map(photo)
    indices = rng.integers(0, 7, (120, 120)).astype(np.uint8)
    png.png_indexed(indices * 2, _photo(1, 16)[0])
    for channels in (3, 4):
        pixels = _photo(40, 50, channels).reshape(-1, channels)
        colorspace.oklab_to_srgb(colorspace.srgb_to_oklab(pixels))
        histogram.count_colors(pixels, 100)
        for palette in (pixels[::97][:40], pixels[::5][:300]):  # uint8 and uint16 indices
            palette = np.ascontiguousarray(palette)
            dither.dither_fs(pixels, 50, palette, 0.5)
            dither.dither_ordered(pixels, 50, palette, 0.5)
            if channels == 4:  # (RGB's colour table, in both colour spaces: the core's own)
                remap.remap_rgba(pixels, palette)
    remap.apply_in_place(np.arange(4, dtype=np.uint8), np.zeros((3, 5), np.uint8))
    png.png_indexed(indices * 30, _photo(1, 256)[0])  # 8 bits: the reordered, filtered layout too


def _shared():
    """The kernels that both processes' warm-ups reach (nearest-entry search and its neighbour
    lists, colour counting, the palette order of :mod:`fastquant.reindex`), compiled before they
    fork: each inherits them (a kernel compiled in both is time lost).  Called with the types the
    modules' own callers use, so that no second version compiles.
    """
    from . import histogram, nearest, reindex

    pixels = _photo(20, 30).reshape(-1, 3)
    histogram.count_colors(pixels, 100)
    palette = np.ascontiguousarray(pixels[::37], np.float32)
    neighbors, sorted_d = nearest.neighbor_lists(palette)
    zero = np.int64(0)
    nearest.search(palette, zero, palette, neighbors, sorted_d, zero, np.float32(0.0))
    reindex.order((np.arange(600, dtype=np.int64).reshape(20, 30) % 7).astype(np.uint8), 7)


def _warm_options():
    """The options that change how a palette is fitted or a PNG written: speeds, posterize,
    a byte budget and rate-distortion mapping, given and fixed colours, an importance map.
    """
    photo = _photo(40, 45)  # below 2 * SAMPLE_PIXELS (lowered): rate-distortion mapping runs on arrays only
    png = _png(photo)
    for speed in (1, 10, 11):
        _run(png, speed=speed)
    _run(png, posterize=2, rd_lambda=5.0)
    _run(png, n_colors=64, max_bytes=4000)
    _run(png, palette=np.ascontiguousarray(photo[::7, ::9].reshape(-1, 3)[:30]))
    _run(png, fixed_colors=["ff0000", "#00ff00"])
    _run(png, weights=np.linspace(1.0, 3.0, photo.shape[0] * photo.shape[1]).reshape(photo.shape[:2]))
    _run(png, weights="contrast")
    rgba = _png(_photo(40, 45, 4))
    _run(rgba, rd_lambda=5.0)
    _run(rgba, n_colors=64, max_bytes=4000)


def _warm_animation():
    """Animated inputs: one palette for all frames or one each, written as GIF and APNG."""
    import io

    from PIL import Image

    from .api import compress

    for mode in ("RGB", "RGBA"):
        frames = [Image.fromarray(_photo(40, 50, len(mode), seed=s)).convert(mode) for s in range(3)]
        buf = io.BytesIO()
        frames[0].save(buf, "PNG", save_all=True, append_images=frames[1:], duration=100, loop=0)
        for frame_palettes in (False, True):
            a = compress(buf.getvalue(), 32, frame_palettes=frame_palettes, ssim=True)
            a.encode(".gif")
            if not frame_palettes:  # an APNG holds one palette
                a.encode(".png")


#: The warm-ups: (name, function).  Each runs under :func:`small_thresholds`;
#: together they must reach every kernel.  Add an entry (or extend one) for a
#: feature whose kernels none of these reach.
WARMUPS = [
    ("core", _warm_core),
    ("alpha", _warm_alpha),
    ("oklab", _warm_oklab),
    ("dither", _warm_dither),
    ("large", _warm_large),
    ("options", _warm_options),
    ("animation", _warm_animation),
]

#: Warm-ups that only speed the work up: "shared" before the processes fork, "features"
#: beside "core" in a second process (the final pass, the rest of :data:`WARMUPS`, then
#: mostly loads).
_EXTRA = {"features": _direct_features, "shared": _shared}


class KernelTime(NamedTuple):
    """One kernel's line of :func:`precompile`'s report."""

    name: str  # module.function
    seconds: float  # compile time (CPU), not counting the kernels it compiled in turn
    signatures: int


class _Timer:
    """Compile time of every kernel of this process, exclusive of nested compiles."""

    def __init__(self):
        self.stack, self.seconds = [], {}

    def listener(self):
        import numba.core.event as ev

        timer = self

        class Listener(ev.Listener):
            def on_start(self, event):
                timer.stack.append([time.process_time(), 0.0])

            def on_end(self, event):
                start, nested = timer.stack.pop()
                took = time.process_time() - start
                if timer.stack:
                    timer.stack[-1][1] += took
                d = (event.data or {}).get("dispatcher")
                fn = getattr(d, "py_func", None)
                name = f"{fn.__module__}.{fn.__name__}" if fn else "?"
                timer.seconds[name] = timer.seconds.get(name, 0.0) + took - nested

        return Listener()


def _kernels():
    """Every kernel of the package: all its modules imported, the registry of :mod:`fastquant.jit`."""
    import importlib
    import pkgutil

    import fastquant

    from . import jit

    for info in pkgutil.iter_modules(fastquant.__path__):
        if info.name != "__main__":
            importlib.import_module(f"fastquant.{info.name}")
    return {f"{d.py_func.__module__}.{d.py_func.__name__}": d for d in jit.KERNELS}


def run_warmups(names):
    """Run the warm-ups ``names`` in this process.

    Returns
    -------
    dict
        ``compiled``: {kernel: seconds} of what compiled here; ``used``: {kernel: signatures}
        of every kernel that has a compiled or loaded version.
    """
    import numba.core.event as ev

    timer = _Timer()
    listener = timer.listener()
    ev.register("numba:compile", listener)
    try:
        with small_thresholds():
            for name, fn in WARMUPS + list(_EXTRA.items()):
                if name in names:
                    fn()
    finally:
        ev.unregister("numba:compile", listener)
    kernels = _kernels()
    used = {name: len(d.overloads) for name, d in kernels.items() if d.overloads}
    return {"compiled": timer.seconds, "used": used, "cpu": time.process_time()}


def _child(conn, names):
    import warnings

    warnings.simplefilter("ignore")
    os.environ["FASTQUANT_COMPILE_NOTICE"] = "off"
    try:
        conn.send(run_warmups(names))
    except BaseException as e:  # reported by the parent
        conn.send({"error": f"{type(e).__name__}: {e}"})
    finally:
        conn.close()


#: Warm-ups of each worker process, by the number of processes: the core's path in one,
#: the kernels only features reach (about as much compile time) in the other.
_SHARES = {1: [["core"]], 2: [["core", "options", "animation"], ["features"]]}

#: Shares that start before :func:`_shared` compiles (what they need of it first loads from the
#: cache by then), so that both cores work from the start.
_EARLY = {"features"}


def precompile(jobs: Optional[int] = None, progress: Optional[Callable[[str], None]] = None) -> dict:
    """Compile every kernel of every feature into Numba's disk cache.

    Parameters
    ----------
    jobs : int, optional
        Processes compiling side by side (default: the CPU count, at most 2).
    progress : callable, optional
        Called with a short line of text as the work goes on.

    Returns
    -------
    dict
        ``seconds`` (wall time), ``kernels`` (list of :class:`KernelTime`, slowest first),
        ``cpu`` ({stage: CPU seconds of the process that ran it}), ``missing`` (kernels no
        warm-up reached), ``cache`` (the folder, or None when nothing can be cached) and
        ``kept`` (whether every kernel compiled was saved there).
    """
    notice = os.environ.get("FASTQUANT_COMPILE_NOTICE")
    os.environ["FASTQUANT_COMPILE_NOTICE"] = "off"  # the progress lines say it all
    try:
        return _precompile(jobs, progress or (lambda line: None))
    finally:
        if notice is None:
            os.environ.pop("FASTQUANT_COMPILE_NOTICE", None)
        else:
            os.environ["FASTQUANT_COMPILE_NOTICE"] = notice


def _precompile(jobs: Optional[int], say: Callable[[str], None]) -> dict:
    import multiprocessing

    t0 = time.perf_counter()
    jobs = max(1, min(jobs or os.cpu_count() or 1, max(_SHARES)))
    shares = _SHARES[jobs]
    compiled: dict[str, Any] = {}
    used: dict[str, Any] = {}
    cpu: dict[str, float] = {}

    def merge(label, res, seconds):
        for k, v in res["compiled"].items():
            compiled[k] = compiled.get(k, 0.0) + v
        for k, v in res["used"].items():
            used[k] = max(used.get(k, 0), v)
        cpu[label] = seconds

    steps = len(shares) + 1 + (len(shares) > 1)
    done = 0
    ctx: Any = multiprocessing.get_context("spawn" if sys.platform != "linux" else "fork")
    procs = []

    def start(names):
        parent, child = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_child, args=(child, names), daemon=True)
        p.start()
        child.close()
        procs.append((names, p, parent))

    early = [names for names in shares if len(shares) > 1 and set(names) <= _EARLY]
    for names in early:
        start(names)
    if len(shares) > 1:  # what the other workers would each compile: here, once, before they fork
        before = time.process_time()
        merge("shared", run_warmups(["shared"]), time.process_time() - before)
        done += 1
        say(f"[{done}/{steps}] shared kernels compiled ({time.perf_counter() - t0:.1f} s)")
    for names in shares:
        if names not in early:
            start(names)
    errors = []
    for names, p, conn in procs:
        try:
            res = conn.recv()
        except EOFError:
            res = {"error": f"worker died (exit code {p.exitcode})"}
        p.join()
        done += 1
        if "error" in res:
            errors.append(f"{'+'.join(names)}: {res['error']}")
            continue
        merge(" ".join(names), res, res["cpu"])
        say(f"[{done}/{steps}] {' '.join(names)} compiled ({time.perf_counter() - t0:.1f} s)")
    if errors:
        raise RuntimeError("; ".join(errors))
    # The final pass, here: the warm-ups no worker ran, loading what the workers compiled and
    # compiling what they missed.
    ran = {name for names in shares for name in names}
    before = time.process_time()
    merge("check", run_warmups([name for name, _ in WARMUPS if name not in ran]), time.process_time() - before)
    say(f"[{steps}/{steps}] every feature checked ({time.perf_counter() - t0:.1f} s)")
    kernels = _kernels()
    reached = _reached(kernels, used)
    table = sorted(
        (KernelTime(k, s, used.get(k, 0)) for k, s in compiled.items()),
        key=lambda r: -r.seconds,
    )
    return {
        "seconds": time.perf_counter() - t0,
        "cpu": cpu,
        "kernels": table,
        "reached": len(reached),
        "missing": sorted(set(kernels) - reached),
        **_where(kernels, [k for k in compiled if k in kernels]),
    }


def _reached(kernels, used):
    """The kernels ``used`` (called from Python in some process) and those they call, in turn
    (a kernel loaded from the cache carries its callees; inlined ones compile into their callers).
    """
    by_id = {id(d): name for name, d in kernels.items()}
    todo = [name for name in used if name in kernels]
    reached = set(todo)
    while todo:
        fn = kernels[todo.pop()].py_func
        for ref in fn.__code__.co_names:
            callee = by_id.get(id(fn.__globals__.get(ref)))
            if callee is not None and callee not in reached:
                reached.add(callee)
                todo.append(callee)
    return reached


def _where(kernels, compiled):
    """``cache``: the folder the kernels are cached in (None: not cached); ``kept``: whether
    every kernel ``compiled`` now could be saved there.
    """
    folder, kept = None, True
    for name, d in kernels.items():
        locator = getattr(getattr(getattr(d, "_cache", None), "_impl", None), "locator", None)
        if locator is not None:
            folder = folder or locator.get_cache_path()
        if name in compiled and (locator is None or type(locator).__name__ == "PackageCacheLocator"):
            kept = False  # no cache, or a read-only one
    return {"cache": folder, "kept": kept}
