"""Many files: where outputs go, the job of one file, and running the jobs.

:func:`plan` names the (source, output) pairs of a run, :func:`run_job`
compresses one file and writes its output (and preview) whole or not at
all, and :func:`start` runs the jobs on an executor from
:func:`executor_for`:

* ``None``: one after the other in this process;
* a :class:`fastquant.workers.Pool` (the default of :func:`compress_many`
  and of the command line's ``-j``): fastquant's own worker processes, with
  per-file time limits, a memory budget, dead workers replaced, and a
  two-stage stop;
* any other ``concurrent.futures.Executor``, such as ``dask.distributed``'s
  ``client.get_executor()`` (:class:`Jobs`): the workers read and write the
  files themselves, so they need a shared filesystem; there is no per-file
  time limit there (``timeout`` is refused).  The core never imports dask.
"""

from __future__ import annotations

import concurrent.futures as cf
import inspect
import os
import sys
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Callable

from . import write
from .errors import (
    FastquantError,
    OptionError,
    OutputError,
    OutputExistsError,
    ResourceError,
    SkippedLargerError,
)
from .job import count_job, remove_written, run_job  # noqa: F401  (run_job is the unit of work of a batch)

#: Extensions looked for in folders (what imageio's Pillow plugin reads).
IMAGE_EXTENSIONS = (
    ".png",
    ".jpg",
    ".jpeg",
    ".gif",
    ".bmp",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
    ".pbm",
    ".tga",
    ".ico",
    ".jfif",
)

#: Keywords of a job besides :func:`fastquant.compress`'s own.
JOB_OPTIONS = ("preview", "preview_diff", "skip_if_larger", "timeout")


@dataclass
class Result:
    """What happened to one source.

    Attributes
    ----------
    source : str
    output : str or None
    status : {"ok", "skipped", "error"}
        "skipped": ``skip_if_larger`` kept the input (``exit_code`` 98; a
        skip is not a failure).
    record : dict
        For "ok": bytes, colours, PSNR, SSIM, total_seconds... (see ``run_job``).
    error : str or None
        One-line reason for "error".
    exit_code : int
        0, or the exit code of the failure kind.
    trace : str or None
        The formatted traceback of a failure (printed by the CLI with -v).
    """

    source: str
    output: str | None
    status: str
    record: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    exit_code: int = 0
    trace: str | None = None


def failed(source, error, output=None):
    """The :class:`Result` of a file that failed with ``error`` (a :class:`FastquantError`)."""
    return Result(source, output, "error", error=str(error), exit_code=error.exit_code)


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
        job's source, fails (exit code 4) instead of overwriting it; one
        whose output is its own source fails with exit code 5, even with
        ``force`` (an input is never overwritten).
    """

    def key(path):
        return os.path.normcase(os.path.realpath(path))

    sources = {key(src) for src, _ in pairs}
    writer = {}  # output key -> (source key, source as named)
    kept, failures = [], []
    for src, out in pairs:
        k, s = key(out), key(src)
        if k == s or write.same_file(src, out):
            failures.append(failed(src, OutputExistsError(write.input_refused(out)), out))
            continue
        if k in writer:
            if writer[k][0] == s:
                continue  # the same job named twice
            reason = f"{out} is also the output of {writer[k][1]}"
        elif k in sources:
            reason = f"{out} is another input"
        else:
            writer[k] = (s, src)
            kept.append((src, out))
            continue
        failures.append(
            failed(
                src,
                OutputError(
                    f"{src}: not compressed: its output {reason} (nothing is "
                    "overwritten; use --ext or --out-dir to tell them apart)"
                ),
            )
        )
    return kept, failures


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


def named_like_outputs(inputs, n_colors=256, ext=None):
    """A one-line note naming the input files (not folders) named like earlier outputs, or None.

    Such names end with the run's suffix (``ext``, default ``-fq<n_colors>.png``) or with any
    default suffix ``-fq<N>.png``.  They are compressed all the same (a folder search skips
    them instead, see :func:`plan`): an image of at most ``n_colors`` colours comes out with
    the same pixels.
    """
    import re

    suffix = ext or f"-fq{n_colors}.png"
    own = os.path.splitext("x" + suffix)[0] != "x"  # a bare extension (--ext .png) tells no output apart
    named = [
        p for p in inputs if not os.path.isdir(p) and ((own and p.endswith(suffix)) or re.search(r"-fq\d+\.png$", p))
    ]
    if not named:
        return None
    which = named[0] if len(named) == 1 else f"{len(named)} inputs ({named[0]}, ...)"
    return (
        f"note: {which} {'is' if len(named) == 1 else 'are'} named like an earlier output; compressed "
        f"anyway (an image of at most {n_colors} colours keeps its pixels)"
    )


def plan(
    inputs,
    *,
    output=None,
    out_dir=None,
    root=None,
    n_colors=256,
    ext=None,
    recursive=False,
    pattern=None,
    include_outputs=False,
):
    """Name the jobs of a run: (source, output) pairs, and the failures found on the way.

    Parameters
    ----------
    inputs : list of str
        Files and folders (searched for images, see :func:`find_images`).
    output : str, optional
        The output of the one input.
    out_dir : str, optional
        Outputs go under it, mirroring each input's tree (from ``root`` when
        given, else from the folder each input was found in); it is made
        here, its subfolders by the writes.
    n_colors, ext
        Name the outputs (``<stem>-fq<N>.png`` or ``<stem><ext>``).
    recursive, pattern, include_outputs
        How folders are searched (outputs of an earlier run are skipped
        unless ``include_outputs``).

    Returns
    -------
    pairs : list of (str, str)
    failures : list of Result
        Unlistable folders (exit code 3), outputs outside the out-dir (2),
        that are folders (4), or that other jobs give or read (4, 5).

    Raises
    ------
    OptionError
        ``ext`` (or ``output``) names no format fastquant writes.
    OutputError
        ``out_dir`` cannot be made (a read-only filesystem...).
    """
    if output:
        write.check_output(output, inputs[0])
        write.check_format(output)
        return [(inputs[0], output)], []
    write.check_format("x" + (ext or ".png"))
    if out_dir is not None:
        try:
            os.makedirs(out_dir, exist_ok=True)
        except OSError as e:
            raise OutputError(f"{out_dir}: cannot make the output folder: {e.strerror or e}") from None
    suffix = ext or f"-fq{n_colors}.png"
    unreadable = []
    found = find_images(
        inputs,
        recursive=recursive,
        pattern=pattern,
        skip_suffix=None if include_outputs else suffix,
        unreadable=unreadable,
    )
    failures = [
        Result(e.filename, None, "error", exit_code=3, error=f"{e.filename}: cannot read folder: {e.strerror}")
        for e in unreadable
    ]
    pairs = []
    for src, found_in in found:
        try:
            out = (
                output_in(out_dir, root or found_in, src, n_colors, ext)
                if out_dir is not None
                else default_output(src, n_colors, ext)
            )
            write.check_output(out, folder_made=out_dir is not None)
        except FastquantError as e:
            failures.append(failed(src, e))
            continue
        pairs.append((src, out))
    pairs, clashes = claim_outputs(pairs)
    return pairs, failures + clashes


def check_options(options):
    """Raise :class:`OptionError` for a keyword that neither :func:`fastquant.compress` nor a job takes."""
    from .api import compress

    known = set(inspect.signature(compress).parameters) - {"image", "n_colors"} | set(JOB_OPTIONS)
    unknown = sorted(set(options) - known)
    if unknown:
        raise OptionError(
            f"unknown option{'s' * (len(unknown) > 1)} {', '.join(map(repr, unknown))}; "
            f"expected some of {', '.join(sorted(known))}"
        )


def _job(source, output, kwargs):
    """Run one job; never raises for a bad file, so that one cannot stop the batch.

    With ``count_only`` in ``kwargs`` the job only counts the colours of its source
    (:func:`fastquant.job.count_job`, the first stage of a run with one palette).
    """
    try:
        if kwargs.get("count_only"):
            return Result(source, output, "ok", count_job(source, **kwargs))
        return Result(source, output, "ok", run_job(source, output, **kwargs))
    except (Exception, RecursionError) as e:
        # A signal (Ctrl-C) that arrives inside a Numba kernel comes back as a
        # SystemError caused by the real exception.
        cause = e
        while isinstance(cause, SystemError) and (cause.__cause__ or cause.__context__) is not None:
            cause = cause.__cause__ or cause.__context__
        if isinstance(cause, KeyboardInterrupt):
            raise cause from None
        if isinstance(cause, MemoryError):
            cause = ResourceError(f"{source}: out of memory ({type(cause).__name__}: {cause}); nothing written")
        if isinstance(cause, FastquantError):
            return Result(
                source,
                output,
                "skipped" if isinstance(cause, SkippedLargerError) else "error",
                error=str(cause),
                exit_code=cause.exit_code,
                trace=traceback.format_exc(),
            )
        # a bug; reported as such, the batch goes on
        return Result(
            source,
            output,
            "error",
            error=f"{source}: internal error: {type(e).__name__}: {e}",
            exit_code=70,
            trace=traceback.format_exc(),
        )


def executor_for(n_files, *, jobs=None, scheduler=None, timeout=None, max_memory=None):
    """Where the jobs of a run go, and a function that closes it.

    Parameters
    ----------
    n_files : int
    jobs : int, optional
        Worker processes (default: the CPU count).  One worker, or fewer than
        4 files, run in this process (starting workers costs more than they
        save), unless ``timeout`` is set: a time limit needs a worker to kill.
    scheduler : str, optional
        A Dask scheduler address, or ``"local"`` for a LocalCluster.
    timeout : float, optional
        Seconds per file (not with ``scheduler``).
    max_memory : int, optional
        Memory budget of the workers in bytes (see :class:`fastquant.workers.Pool`).

    Returns
    -------
    executor : None, fastquant.workers.Pool or concurrent.futures.Executor
    close : callable
    """
    if scheduler:
        if timeout is not None:
            raise OptionError("--timeout needs fastquant's own workers: it does not work with --scheduler")
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise OptionError(
                "--scheduler needs dask.distributed: pip install '.[dask]' in fastquant's checkout"
            ) from None
        cluster = (
            LocalCluster(processes=True, threads_per_worker=1, dashboard_address=None) if scheduler == "local" else None
        )
        client = Client(cluster if cluster is not None else scheduler)

        def close():
            client.close()
            if cluster is not None:
                cluster.close()

        return client.get_executor(), close
    n = max(1, min(jobs or os.cpu_count() or 1, n_files))
    if timeout is None and (n <= 1 or n_files < 4):
        return None, lambda: None
    from .workers import Pool

    pool = Pool(n, max_memory=max_memory)
    return pool, pool.close


def is_pool(executor):
    """Whether ``executor`` is a :class:`fastquant.workers.Pool` (a run in this process alone
    does without that module, so it is not imported to tell).
    """
    workers = sys.modules.get("fastquant.workers")
    return workers is not None and isinstance(executor, workers.Pool)


def start(pairs, kwargs, executor=None):
    """Start :func:`run_job` on (source, output) pairs; iterate the returned object for
    :class:`Result` objects as they finish.  After a first Ctrl-C, its ``stop(kill_now)``
    starts nothing more and iterates over the results of the running jobs, stopping them at a
    second Ctrl-C (a :class:`~fastquant.workers.Pool` sees it itself; else when ``kill_now()``
    is true); ``kill()`` stops everything at once.
    """
    if is_pool(executor):
        return executor.run(pairs, kwargs)
    if executor is not None and kwargs.get("timeout") is not None:
        raise OptionError("timeout needs fastquant's own workers (executor=None or a fastquant.workers.Pool)")
    return Jobs(pairs, {k: v for k, v in kwargs.items() if k != "timeout"}, executor)


class Jobs:
    """:func:`run_job` on (source, output) pairs on a ``concurrent.futures`` executor (no time
    limit there), or one after the other in this process (``executor=None``).
    """

    def __init__(self, pairs, kwargs, executor=None):
        self.pairs, self.kwargs, self.executor = list(pairs), kwargs, executor
        self.futures = (
            [executor.submit(_job, src, out, kwargs) for src, out in self.pairs] if executor is not None else []
        )
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
            return failed(pair[0], ResourceError(f"{pair[0]}: worker died ({type(e).__name__}: {e})"), pair[1])

    def stop(self, kill_now=None):
        """Cancel the jobs not started; iterate for the results of the running ones, until
        ``kill_now()`` is true (the rest are left to the executor's shutdown).
        """
        running = {f for f in self.futures if not f.cancel()} - self.seen
        sources = dict(zip(self.futures, self.pairs))
        while running:
            done, running = cf.wait(running, timeout=0.2)
            for f in done:
                if not f.cancelled():
                    yield self._result(f, sources[f])
            if kill_now is not None and kill_now():
                return

    def kill(self):
        """Cancel what can be cancelled and wait for nothing."""
        for f in self.futures:
            f.cancel()


def compress_many(
    sources: str | os.PathLike | Iterable[str | os.PathLike],
    out_dir: str | None = None,
    *,
    executor: cf.Executor | None = None,
    root: str | None = None,
    n_colors: int = 256,
    ext: str | None = None,
    force: bool = False,
    jobs: int | None = None,
    max_memory: int | None = None,
    progress: Callable[[Result], object] | None = None,
    **options: Any,
) -> Iterator[Result]:
    """Compress many files, yielding one :class:`Result` per source as each finishes.

    The options are checked before anything starts: an unknown keyword raises
    :class:`OptionError` here, not once per file.

    Parameters
    ----------
    sources : str, os.PathLike, or iterable of them
        Image files (one path alone is one source), or folders (searched as
        :func:`find_images` does).
    out_dir : str, optional
        Folder for the outputs, mirroring the sources' paths below ``root``
        (default: their common folder); without it, outputs go next to the
        sources as ``<stem>-fq<N>.png`` (or ``<stem><ext>``).
    executor : concurrent.futures.Executor or fastquant.workers.Pool, optional
        Where the jobs run: any executor, e.g. ``dask.distributed``'s
        ``client.get_executor()`` (no ``timeout`` there).  Default: a
        :class:`fastquant.workers.Pool` of ``jobs`` workers (default: the
        CPU count) with a ``max_memory`` budget in bytes (default: half the
        available memory), closed at the end.
    root : str, optional
        The folder whose layout ``out_dir`` mirrors.
    n_colors, ext, force
        Palette size, output suffix, and whether existing outputs are replaced
        (the sources themselves never are).
    progress : callable, optional
        Called with each :class:`Result` just before it is yielded (failures
        found while planning first, then in completion order), e.g. to drive
        a progress bar: ``progress=lambda r: bar.update()``.  Whatever it
        returns is ignored; an exception it raises stops the run.
    **options
        Passed to :func:`fastquant.compress`; also ``preview``,
        ``skip_if_larger`` and ``timeout`` (seconds per file: a worker that
        takes longer is killed and replaced) for the job.

    Yields
    ------
    Result
        In completion order, not the order of ``sources`` (``r.source`` says
        which file it is): the failures found while planning (unreadable
        folders, clashing outputs) first, then each file as it finishes; a
        failed file gives ``status == "error"``, one that ``skip_if_larger``
        kept gives ``"skipped"``.
    """
    check_options(options)
    if isinstance(sources, (str, bytes, os.PathLike)):
        sources = [sources]
    sources = [os.fspath(s) for s in sources]
    if out_dir is not None and root is None:
        root = os.path.commonpath([os.path.dirname(os.path.abspath(s)) for s in sources]) if sources else "."
    pairs, failures = plan(sources, out_dir=out_dir, root=root, n_colors=n_colors, ext=ext)
    kwargs = dict(options, n_colors=n_colors, force=force)
    if out_dir is not None:
        kwargs["root"] = os.path.realpath(out_dir)
    running = start(pairs, kwargs, executor) if executor is not None else None  # checks timeout now
    results = _run_many(failures, running, pairs, kwargs, jobs, max_memory)
    return results if progress is None else _reporting(results, progress)


def _reporting(results, progress):
    """``results``, each passed to ``progress`` before it is yielded."""
    try:
        for r in results:
            progress(r)
            yield r
    finally:
        results.close()  # now, not when collected: stops the jobs not started


def _run_many(failures, running, pairs, kwargs, jobs, max_memory):
    yield from failures
    if running is None:
        from .workers import Pool

        with Pool(jobs, max_memory=max_memory) as pool:
            yield from pool.run(pairs, kwargs)
        return
    try:
        yield from running
    finally:
        running.kill()
