"""Many files: where outputs go, and running the jobs on any executor.

``compress_many`` runs one job per file on a ``concurrent.futures.Executor``:
by default a process pool started with the ``spawn`` method (GNU OpenMP,
which Numba may use for its threads, is not fork-safe), each worker using
``cores // jobs`` Numba threads.  A ``dask.distributed`` executor
(``client.get_executor()``) works the same way: the workers read and write
the files themselves, so they need a shared filesystem.  The core never
imports dask.
"""
import concurrent.futures as cf
import multiprocessing
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Optional

from .errors import (FastquantError, JobTimeoutError, OptionError, OutputError, OutputExistsError,
                     SkippedLargerError)

#: Extensions looked for in folders (what imageio's Pillow plugin reads).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ppm",
                    ".pgm", ".pbm", ".tga", ".ico", ".jfif")


@dataclass
class Result:
    """What happened to one source.

    Attributes
    ----------
    source : str
    output : str or None
    status : {"ok", "error"}
    record : dict
        For "ok": bytes, colours, PSNR, SSIM, seconds... (see ``run_job``).
    error : str or None
        One-line reason for "error".
    exit_code : int
        0, or the exit code of the failure kind.
    trace : str or None
        The formatted traceback of a failure (printed by the CLI with -v).
    """

    source: str
    output: Optional[str]
    status: str
    record: dict = field(default_factory=dict)
    error: Optional[str] = None
    exit_code: int = 0
    trace: Optional[str] = None


def default_output(path, n_colors, ext=None):
    """Where the result of ``path`` goes by default: ``<stem>-fq<N>.png`` beside it."""
    stem = os.path.splitext(path)[0]
    return stem + (ext if ext else f"-fq{n_colors}.png")


def output_in(out_dir, root, path, n_colors, ext=None):
    """The output of ``path`` mirrored from ``root`` into ``out_dir``.

    Raises
    ------
    OptionError
        When the result would land outside ``out_dir`` (``..`` in names,
        symlinks), whatever the input names contain.
    """
    # The tree as named, not as resolved: a symlinked file or folder under the
    # root keeps its place (resolved, it would land at the top and collide).
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
        rel = os.path.basename(path)  # an input outside the root: put it at the top
    base = os.path.realpath(out_dir)
    out = os.path.realpath(os.path.join(base, default_output(rel, n_colors, ext)))
    if os.path.commonpath([base, out]) != base:
        raise OptionError(f"{path}: its output would land outside {out_dir}")
    return out


def claim_outputs(pairs):
    """Keep every output to one job.

    Parameters
    ----------
    pairs : list of (str, str)
        (source, output) in the order the jobs were named.

    Returns
    -------
    pairs : list of (str, str)
        The jobs to run: a source named twice with the same output runs once.
    failed : list of Result
        A job whose output an earlier job already writes (``a.png`` and
        ``a.jpg`` both give ``a-fq256.png``), or whose output is another
        job's source, fails (exit code 4) instead of overwriting it.
    """
    def key(path):
        return os.path.normcase(os.path.realpath(path))

    sources = {key(src) for src, _ in pairs}
    writer = {}  # output key -> (source key, source as named)
    kept, failed = [], []
    for src, out in pairs:
        k, s = key(out), key(src)
        if k in writer:
            if writer[k][0] == s:
                continue  # the same job named twice
            reason = f"{out} is also the output of {writer[k][1]}"
        elif k in sources and k != s:
            reason = f"{out} is another input"
        else:
            writer[k] = (s, src)
            kept.append((src, out))
            continue
        failed.append(Result(src, None, "error", exit_code=OutputError.exit_code,
                             error=f"{src}: not compressed: its output {reason} (nothing is overwritten; "
                                   "use --ext or --out-dir to tell them apart)"))
    return kept, failed


def find_images(paths, *, recursive=False, pattern=None, skip_suffix=None, unreadable=None):
    """Expand files and folders into a list of (source, root) pairs.

    Parameters
    ----------
    paths : iterable of str
        Files (kept as given, even with an unknown extension) and folders.
    recursive : bool
        Descend into subfolders.
    pattern : str, optional
        fnmatch pattern on file names in folders (default: image extensions).
    skip_suffix : str, optional
        Files in folders whose names end with it (earlier outputs) are skipped.
    unreadable : list, optional
        Receives an OSError for every folder that could not be listed
        (``filename`` and ``strerror`` say which and why).

    Returns
    -------
    list of (str, str)
        Each source with the folder it was found under (the root that
        ``--out-dir`` mirrors), in sorted order within each folder.
    """
    import fnmatch

    found = []
    for p in paths:
        if not os.path.isdir(p):
            found.append((p, os.path.dirname(p) or "."))
            continue
        for folder, dirs, files in os.walk(p, onerror=None if unreadable is None else unreadable.append):
            dirs.sort()
            if not recursive:
                dirs.clear()
            for name in sorted(files):
                if pattern and not fnmatch.fnmatch(name, pattern):
                    continue
                if not pattern and not name.lower().endswith(IMAGE_EXTENSIONS):
                    continue
                if skip_suffix and name.endswith(skip_suffix):
                    continue
                found.append((os.path.join(folder, name), p))
    return found


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def _db(x):
    """A PSNR for JSON: rounded, None when there is none or it is infinite (lossless)."""
    return round(x, 3) if x is not None and x != float("inf") else None


def run_job(source, output, n_colors=256, force=False, preview=None, preview_diff=False,
            skip_if_larger=False, **options):
    """Compress one file and write it (and its preview); the unit of work of a batch.

    Parameters
    ----------
    source, output : str
    n_colors : int
    force : bool
        Replace an existing output (never the input itself unless forced).
    preview : str, optional
        Also write original | result side by side there (``preview_diff``:
        with an amplified difference panel and a caption).
    skip_if_larger : bool
        Write nothing, raising :class:`SkippedLargerError`, when the result
        is not smaller than the input file.
    **options
        Passed to :func:`fastquant.compress`.

    Returns
    -------
    dict
        input, output, input_bytes, output_bytes, ratio, n_colors, width,
        height, psnr (None for lossless), mse, ssim, quality, iterations,
        alpha_max_error, psnr_black, psnr_white (None without alpha; the
        PSNRs also None when equal, like psnr), seconds, stages (seconds per
        stage), and preview when written.

    Raises
    ------
    FastquantError
        Its ``exit_code`` says what kind of failure.
    """
    from .api import compress
    from .write import encode, encode_array, write_atomic

    for target in filter(None, (output, preview)):
        if os.path.exists(source) and _same_file(source, target) and not force:
            raise OutputExistsError(f"{target}: is the input; refusing to overwrite it (use --force)")
        if os.path.exists(target) and not force:
            raise OutputExistsError(f"{target}: exists, kept (use --force to overwrite)")
    t = time.perf_counter()
    q = compress(source, n_colors, **options)
    tw = time.perf_counter()
    data = encode(output, q.indices, q.palette, q.icc_profile)
    if skip_if_larger and q.stats.input_bytes is not None and len(data) >= q.stats.input_bytes:
        raise SkippedLargerError(f"{source}: skipped: the result, {len(data)} bytes, is not smaller than "
                                 f"the input, {q.stats.input_bytes} bytes; nothing written")
    nbytes = write_atomic(output, data)
    q.stats.seconds["write"] = time.perf_counter() - tw
    if preview:
        write_atomic(preview, encode_array(preview, q.preview(preview_diff, nbytes=nbytes)))
    s = q.stats
    rec = {"input": os.fspath(source), "output": os.fspath(output), "status": "ok",
           "input_bytes": s.input_bytes, "output_bytes": nbytes,
           "ratio": round(nbytes / s.input_bytes, 4) if s.input_bytes else None,
           "n_colors": s.n_colors, "width": s.width, "height": s.height,
           "psnr": round(s.psnr, 3) if s.psnr != float("inf") else None,
           "mse": round(s.mse, 4), "ssim": round(s.ssim, 5) if s.ssim is not None else None,
           "quality": s.quality, "iterations": s.iterations,
           "alpha_max_error": s.alpha_max_error,
           "psnr_black": _db(s.psnr_black), "psnr_white": _db(s.psnr_white),
           "seconds": round(time.perf_counter() - t, 4),
           "stages": {k: round(v, 4) for k, v in s.seconds.items()}}
    if preview:
        rec["preview"] = os.fspath(preview)
    return rec


_WARM = []


def skip_blas_probe():
    """Keep Numba from importing scipy (0.15-0.2 s) in a process of fastquant's own.

    On its first compile or cache load Numba imports scipy.linalg, when scipy
    is installed, to find a BLAS for ``np.dot`` inside jitted code; no
    fastquant kernel uses one.  Only the CLI and pool workers call this:
    their process runs nothing but fastquant.
    """
    if "numba.np.arraymath" not in sys.modules:
        sys.modules.setdefault("scipy.linalg.cython_blas", None)  # None: "not importable"


def _warm_kernels():
    """Load this process's cached (serial) kernels and image plugins once, on a tiny PNG."""
    if not _WARM:
        import numpy as np

        from .api import compress
        from .png import png_indexed

        png = png_indexed(np.arange(16, dtype=np.uint8).reshape(4, 4), np.arange(48, dtype=np.uint8).reshape(16, 3))
        compress(png, 4, ssim=True).encode(".png")
        _WARM.append(True)


class _time_limit:
    """Raise :class:`JobTimeoutError` in this thread after ``seconds`` (SIGALRM).

    Only possible in a process's main thread (process-pool workers and the
    CLI's own loop); elsewhere (Dask worker threads) there is no limit.  A
    Numba kernel is not interrupted: the error comes when it returns.
    """

    def __init__(self, seconds, source):
        self.seconds, self.source = seconds, source
        self.armed = False

    def _fire(self, signum, frame):
        import signal

        # Fire again later in case a library swallows this exception.
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        raise JobTimeoutError(f"{self.source}: took longer than {self.seconds:g} s (--timeout); "
                              "nothing written")

    def __enter__(self):
        import signal
        import threading

        if self.seconds and threading.current_thread() is threading.main_thread() \
                and hasattr(signal, "setitimer"):
            _warm_kernels()  # never interrupt Numba while it loads compiled code
            self.old = signal.signal(signal.SIGALRM, self._fire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
            self.armed = True
        return self

    def __exit__(self, *exc):
        import signal

        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.old)
        return False


def _job(source, output, kwargs):
    """Worker entry point: never raises for a bad file, so one cannot stop the batch."""
    kwargs = dict(kwargs)
    timeout = kwargs.pop("timeout", None)
    try:
        with _time_limit(timeout, source):
            return Result(source, output, "ok", run_job(source, output, **kwargs))
    except (Exception, RecursionError) as e:
        # A signal (Ctrl-C, the time limit) that arrives inside a Numba kernel
        # comes back as a SystemError caused by the real exception.
        cause = e
        while isinstance(cause, SystemError) and (cause.__cause__ or cause.__context__) is not None:
            cause = cause.__cause__ or cause.__context__
        if isinstance(cause, KeyboardInterrupt):
            raise cause from None
        if isinstance(cause, FastquantError):
            return Result(source, output, "error", error=str(cause), exit_code=cause.exit_code,
                          trace=traceback.format_exc())
        # a bug; reported as such, the batch goes on
        return Result(source, output, "error", error=f"{source}: internal error: {type(e).__name__}: {e}",
                      exit_code=70, trace=traceback.format_exc())


def _exit_on_sigterm(signum, frame):
    sys.exit(143)


def _init_worker(threads):
    import signal

    import numba

    skip_blas_probe()
    # Ctrl-C in a terminal reaches every process of the group: the parent
    # decides (cancel what has not started, let running files finish whole).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # SIGTERM (to the group, or from a pool that shuts down broken) ends the
    # worker through Python, so that a file being written is removed.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    threads = max(1, min(threads, numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(threads)
    from . import threads as _threads

    _threads.THREADS = threads


def _start_method():
    """``fork`` when it is safe and available, else ``spawn``.

    A forked worker starts at once with this process's modules and loaded
    kernels; a spawned one spends ~0.7 s importing and loading them.  But
    GNU OpenMP is not fork-safe: once this process has run a parallel
    kernel (Numba's threading layer is then initialized), only spawn is.
    """
    if "fork" not in multiprocessing.get_all_start_methods() or sys.platform != "linux":
        return "spawn"
    import numba

    try:
        numba.threading_layer()
    except ValueError:  # not initialized: no OpenMP state to inherit
        _warm_kernels()  # serial kernels only: the children inherit them loaded
        return "fork"
    return "spawn"


def process_pool(jobs=None):
    """A process pool of ``jobs`` workers (default: CPU count) that share the cores.

    Workers run ``cores // jobs`` Numba threads each and are forked when that
    is safe (see :func:`_start_method`), spawned otherwise.
    """
    cores = os.cpu_count() or 1
    jobs = cores if jobs is None else jobs
    if jobs < 1:
        raise OptionError(f"jobs must be >= 1, got {jobs}")
    return cf.ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context(_start_method()),
                                  initializer=_init_worker, initargs=(max(1, cores // jobs),))


def compress_many(sources, out_dir=None, *, executor=None, root=None, n_colors=256, ext=None,
                  force=False, **options):
    """Compress many files, yielding one :class:`Result` per source as each finishes.

    Parameters
    ----------
    sources : iterable of str or os.PathLike
        Image files.
    out_dir : str, optional
        Folder for the outputs, mirroring the sources' paths below ``root``
        (default: their common folder); without it, outputs go next to the
        sources as ``<stem>-fq<N>.png`` (or ``<stem><ext>``).
    executor : concurrent.futures.Executor, optional
        Where the jobs run: any executor, e.g. ``dask.distributed``'s
        ``client.get_executor()``.  Default: :func:`process_pool`, shut down
        at the end.
    root : str, optional
        The folder whose layout ``out_dir`` mirrors.
    n_colors, ext, force
        Palette size, output suffix, and whether existing outputs are replaced.
    **options
        Passed to :func:`fastquant.compress`; also ``preview``,
        ``skip_if_larger`` and ``timeout`` (seconds per file, in process
        workers) for the job.

    Yields
    ------
    Result
        In completion order; a failed file gives ``status == "error"``.
    """
    sources = [os.fspath(s) for s in sources]
    if out_dir is not None and root is None:
        root = os.path.commonpath([os.path.dirname(os.path.abspath(s)) for s in sources]) if sources else "."
    if executor is None:
        with process_pool() as pool:
            yield from compress_many(sources, out_dir, executor=pool, root=root, n_colors=n_colors,
                                     ext=ext, force=force, **options)
        return
    pairs = []
    failed = []
    for src in sources:
        try:
            pairs.append((src, output_in(out_dir, root, src, n_colors, ext) if out_dir is not None
                          else default_output(src, n_colors, ext)))
        except FastquantError as e:
            failed.append(Result(src, None, "error", error=str(e), exit_code=e.exit_code))
    pairs, clashes = claim_outputs(pairs)
    yield from failed + clashes
    if out_dir is not None:
        make_folders(pairs)
    yield from run_all(pairs, dict(options, n_colors=n_colors, force=force), executor)


class Jobs:
    """:func:`run_job` on (source, output) pairs: iterate for :class:`Result`
    objects as they finish; :meth:`stop` on Ctrl-C.

    ``executor=None`` runs the jobs one after the other in this process.
    """

    def __init__(self, pairs, kwargs, executor=None):
        self.pairs, self.kwargs, self.executor = list(pairs), kwargs, executor
        self.futures = [executor.submit(_job, src, out, kwargs) for src, out in self.pairs] \
            if executor is not None else []
        self.seen = set()

    def __iter__(self):
        if self.executor is None:
            for src, out in self.pairs:
                yield _job(src, out, self.kwargs)
            return
        sources = dict(zip(self.futures, self.pairs))
        for fut in cf.as_completed(self.futures):
            self.seen.add(fut)
            yield self._result(fut, sources[fut])

    @staticmethod
    def _result(fut, pair):
        try:
            return fut.result()
        except BaseException as e:  # the worker died (killed, out of memory, crashed)
            if isinstance(e, KeyboardInterrupt):
                raise
            return Result(pair[0], pair[1], "error", exit_code=70,
                          error=f"{pair[0]}: worker failed: {type(e).__name__}: {e}")

    def stop(self):
        """Cancel the jobs not started, wait for the running ones; return their results."""
        running = [f for f in self.futures if not f.cancel()]
        cf.wait(running)
        sources = dict(zip(self.futures, self.pairs))
        return [self._result(f, sources[f]) for f in running if f not in self.seen and not f.cancelled()]


def run_all(pairs, kwargs, executor=None):
    """Run :func:`run_job` on (source, output) pairs; yield :class:`Result` as each finishes."""
    jobs = Jobs(pairs, kwargs, executor)
    try:
        yield from jobs
    finally:
        for fut in jobs.futures:
            fut.cancel()


def make_folders(pairs):
    """Create the folders of the outputs (the mirrored tree under an out-dir)."""
    for folder in sorted({os.path.dirname(out) for _, out in pairs if out}):
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError:
            pass  # the write itself then reports the problem, file by file
