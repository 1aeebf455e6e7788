"""fastquant's own worker processes: :class:`Pool`.

N processes, each fed one job at a time over a pipe, forked when that is
safe (:func:`start_method`), spawned otherwise.  Unlike a
``concurrent.futures`` process pool, the parent keeps every job in hand:

* time limit: a job that outlives its deadline has its worker killed
  (SIGTERM, then SIGKILL after ``config.KILL_GRACE`` seconds; a worker holds SIGTERM
  while it runs a job, and a Numba kernel would not see it before it
  returns anyway), whatever stage the job is in; the worker's
  temporary files and any output it had already written for that job are
  removed, a fresh worker takes its place, and the file fails with
  :class:`~fastquant.errors.JobTimeoutError` (exit code 6);
* dead workers: a worker that dies (the kernel's out-of-memory killer sends
  SIGKILL) fails only the file it held, with
  :class:`~fastquant.errors.ResourceError` (exit code 7); a new worker takes
  its place (a file whose worker died before starting it is given to another);
* memory budget: each job's peak is estimated from its image header
  (:func:`job_memory`), and no job starts while the running jobs' estimates
  plus its own exceed the budget (default: half the available memory,
  :func:`memory_budget`): big files run one at a time, small ones side by
  side.  A job alone always runs.  The biggest jobs start first, so that the
  workers run out of work at about the same time;
* two-stage stop: during iteration, in the main thread, the first SIGINT
  (Ctrl-C) or SIGTERM starts nothing more and lets the running jobs finish
  (the workers ignore SIGINT and hold SIGTERM until their job is done, so a
  signal to the whole process group acts the same);
  the second kills the workers (their temporary files and unfinished
  outputs removed).  When the pool has stopped, the signal goes on to the
  handler that was there before (``KeyboardInterrupt`` for Ctrl-C), so
  callers see it after every finished output was reported.
"""

import collections
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import warnings
from multiprocessing.connection import wait

from . import batch, config, write
from .errors import JobTimeoutError, OptionError, ResourceError


def memory_budget():
    """Half of MemAvailable (``/proc/meminfo``) in bytes; None where that is not known."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 // 2
    except (OSError, ValueError, IndexError):
        pass
    return None


def image_size(path):
    """(width, height) from an image file's header, without decoding; None when unknown.

    The file is identified as :func:`fastquant.io.read_image` does it (only the
    formats fastquant reads, and no pixel limit but ``max_pixels``).
    """
    if not isinstance(path, (str, bytes, os.PathLike)):
        return None
    from . import formats

    try:
        with open(path, "rb") as f, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with formats.identify(f, "") as im:
                return im.size
    except Exception:  # unreadable, not an image, damaged: the job itself will say so, quickly
        return None


def job_memory(source, options):
    """Estimated peak memory of compressing ``source`` with ``options``, in bytes:
    ``config.JOB_BASE_BYTES + config.JOB_BYTES_PER_PIXEL x pixels``, plus
    ``config.JOB_SMALL_BYTES_PER_PIXEL`` for each pixel up to ``2 * config.SAMPLE_PIXELS``
    (images held as arrays) and ``config.JOB_DITHER_BYTES_PER_PIXEL`` a pixel when
    dithered, where pixels is the larger of the image's (from its header) and the
    ``resize`` target's.  An image whose size is unknown, or that ``max_pixels``
    refuses (at once), counts as no pixels.
    """
    size = image_size(source)
    pixels = size[0] * size[1] if size else 0
    limit = options.get("max_pixels")
    if limit is not None and pixels > limit:
        return config.JOB_BASE_BYTES
    resize = options.get("resize")
    if isinstance(resize, tuple) and len(resize) == 2:  # the decoded input and the resized image
        pixels = max(pixels, resize[0] * resize[1])
    per = config.JOB_BYTES_PER_PIXEL + (config.JOB_DITHER_BYTES_PER_PIXEL if options.get("dither") else 0)
    small = config.JOB_SMALL_BYTES_PER_PIXEL * min(pixels, 2 * config.SAMPLE_PIXELS)
    return config.JOB_BASE_BYTES + per * pixels + small


def process_pool(jobs=None):
    """A ``concurrent.futures`` process pool of ``jobs`` workers (default: CPU count) that share
    the cores, for code that wants an Executor; :func:`compress_many` uses a
    :class:`Pool` by default (time limits, memory budget, dead workers replaced).
    """
    import concurrent.futures as cf

    cores = os.cpu_count() or 1
    jobs = cores if jobs is None else jobs
    if jobs < 1:
        raise OptionError(f"jobs must be >= 1, got {jobs}")
    return cf.ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=multiprocessing.get_context(start_method()),
        initializer=init_worker,
        initargs=(max(1, cores // jobs),),
    )


def start_method():
    """``fork`` when it is safe and available, else ``spawn``.

    A forked worker starts at once with this process's modules and loaded
    kernels; a spawned one first imports and loads them all again.  But
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


_WARM: list = []


def _warm_kernels():
    """Load this process's cached (serial) kernels and image plugins once, on a tiny PNG."""
    if not _WARM:
        import numpy as np

        from .api import compress
        from .png import png_indexed

        png = png_indexed(np.arange(16, dtype=np.uint8).reshape(4, 4), np.arange(48, dtype=np.uint8).reshape(16, 3))
        compress(png, 4, ssim=True).encode(".png")
        _WARM.append(True)


def _exit_on_sigterm(signum, frame):
    sys.exit(143)


def init_worker(threads):
    """Set up a worker process: ``threads`` Numba threads; Ctrl-C left to the parent."""
    import numba

    from .jit import skip_blas_probe

    skip_blas_probe()
    # Ctrl-C in a terminal reaches every process of the group: the parent
    # decides (start nothing more, let running files finish whole).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # SIGTERM ends an idle worker (see _serve for a busy one).
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    threads = max(1, min(threads, numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(threads)
    from . import threads as _threads

    _threads.THREADS = threads


def _serve(conn, threads):
    """A worker's life: run the jobs that come over ``conn`` until None (or the pipe closes)."""
    init_worker(threads)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        source, output, kwargs = job
        conn.send(("started",))  # the deadline counts from here, not from a spawned worker's start-up
        # SIGTERM waits while a job runs: to the process group it then lets the job finish, as
        # Ctrl-C does; the parent that wants a busy worker gone sends SIGKILL after config.KILL_GRACE.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        result = batch._job(
            source, output, dict(kwargs, on_write=lambda path, created: conn.send(("wrote", path, created)))
        )
        conn.send(("done", result))
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


class _Task:
    def __init__(self, source, output, memory):
        self.source, self.output, self.memory = source, output, memory
        self.deadline = None
        self.started = False
        self.tries = 0  # workers that died before they started it
        self.written = []  # (path, created) as the worker reported them

    def folders(self, preview):
        return {os.path.dirname(os.path.abspath(p)) for p in filter(None, (self.output, preview))}


class _Worker:
    def __init__(self, threads):
        ctx = multiprocessing.get_context(start_method())
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child, threads), daemon=True, name="fastquant-worker")
        self.process.start()
        child.close()
        self.task = None
        self.kept = set()  # sources whose image it keeps (fastquant.job.count_job): their next job goes to it

    def stop(self):
        """SIGTERM, and SIGKILL if the worker is still there ``config.KILL_GRACE`` seconds later."""
        if self.process.exitcode is None:
            try:
                self.process.terminate()
            except OSError:
                pass


def _death(exitcode):
    if exitcode is not None and exitcode < 0:
        n = -exitcode
        if n == signal.SIGKILL:
            return f"killed by signal {n}; out of memory?"
        if n == signal.SIGTERM:
            return "terminated by SIGTERM"
        return f"killed by signal {n} ({signal.Signals(n).name})"
    if exitcode == 143:
        return "terminated by SIGTERM"
    return f"exit code {exitcode}"


class Pool:
    """fastquant's worker processes (see the module docstring).

    Parameters
    ----------
    jobs : int, optional
        Worker processes (default: the CPU count), started as jobs need them;
        each runs ``cores // jobs`` Numba threads.
    max_memory : int, optional
        Memory budget in bytes for the running jobs' estimates
        (:func:`job_memory`); default :func:`memory_budget`.

    Use :meth:`run` for the jobs, then :meth:`close` (or ``with Pool() as pool``).
    """

    def __init__(self, jobs=None, *, max_memory=None):
        cores = os.cpu_count() or 1
        self.size = cores if jobs is None else jobs
        if self.size < 1:
            raise OptionError(f"jobs must be >= 1, got {self.size}")
        if max_memory is not None and not max_memory > 0:
            raise OptionError(f"max_memory must be a number of bytes > 0, got {max_memory!r}")
        self.threads = max(1, cores // self.size)
        self.budget = memory_budget() if max_memory is None else max_memory
        self.workers = []
        self.pending = collections.deque()
        self.done = collections.deque()
        self.kwargs, self.timeout, self.preview, self.root = {}, None, None, None
        self.signals = []  # SIGINT/SIGTERM received while running
        self.stopping = False  # stop() called: the caller has seen a first signal
        self.ended = False  # close() saw every worker process exit

    # ------------------------------------------------------------------ the caller's side

    def run(self, pairs, kwargs):
        """Queue :func:`fastquant.batch.run_job` on (source, output) pairs; returns the pool, whose
        iteration yields each :class:`~fastquant.batch.Result` as it finishes.  ``kwargs`` may
        hold ``timeout`` (seconds per file).
        """
        kwargs = dict(kwargs)
        self.timeout, self.stopping = kwargs.pop("timeout", None), False
        self.kwargs, self.preview, self.root = kwargs, kwargs.get("preview"), kwargs.get("root")
        estimate = self.size > 1 and self.budget is not None
        tasks = [_Task(src, out, job_memory(src, kwargs) if estimate else 0) for src, out in pairs]
        # The biggest first (the estimate grows with the pixels, as the time does): a long job
        # started last would keep one worker busy while the others have nothing left to do.
        tasks.sort(key=lambda t: -t.memory)
        self.pending.extend(tasks)
        return self

    def __iter__(self):
        with _Signals(self.signals):
            while True:
                while self.done:
                    yield self.done.popleft()
                if len(self.signals) + self.stopping >= 2:
                    self._kill()  # their results (if any came in) are yielded next time round
                elif self.signals or self.stopping:
                    self.pending.clear()
                self._dispatch()
                busy = [w for w in self.workers if w.task is not None]
                if not busy:
                    if self.done:
                        continue
                    break
                now = time.monotonic()
                tick = min([config.POLL_TICK] + [w.task.deadline - now for w in busy if w.task.deadline is not None])
                ready = wait([w.conn for w in busy] + [w.process.sentinel for w in self.workers], max(0, tick))
                self._collect(ready)
                self._expire()
        if self.signals:  # stopped: on to the handler the caller had (KeyboardInterrupt...)
            first = self.signals[0]
            self.signals.clear()
            signal.raise_signal(first)

    def stop(self, kill_now=None):
        """Start no more jobs (a first Ctrl-C seen by the caller); iterate for the results of the
        running ones.  One more SIGINT or SIGTERM meanwhile kills them (the pool sees it itself:
        ``kill_now`` is there for the callers of :class:`fastquant.batch.Jobs`).
        """
        self.pending.clear()
        self.stopping = True
        return self

    def kill(self):
        """Stop now: the running jobs are killed, their outputs removed (results not yet
        iterated over stay in the pool).
        """
        self._kill()

    def close(self):
        """Kill what still runs, end the idle workers; :attr:`ended` then says whether every
        worker process has exited.
        """
        self.pending.clear()
        self._kill()
        for w in self.workers:
            try:
                w.conn.send(None)
            except OSError:
                pass
        for w in self.workers:
            w.process.join(2)
            if w.process.exitcode is None:
                w.process.kill()
                w.process.join(5)
            w.conn.close()
        self.ended = all(w.process.exitcode is not None for w in self.workers)
        self.workers = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # ------------------------------------------------------------------ bookkeeping

    def _dispatch(self):
        """Give pending jobs that fit the memory budget to idle (or new) workers."""
        while self.pending:
            busy = [w for w in self.workers if w.task is not None]
            idle = [w for w in self.workers if w.task is None]
            if not idle and len(self.workers) >= self.size:
                return
            used = sum(w.task.memory for w in busy)
            fits = [t for t in self.pending if not busy or self.budget is None or used + t.memory <= self.budget]
            if not fits:
                return
            # A worker that keeps a source's image (the first stage of a --shared run) takes its job
            # first: no reading and counting it again.  Only the time depends on who runs a job.
            worker, task = next(((w, t) for w in idle for t in fits if t.source in w.kept), (None, fits[0]))
            if worker is None:
                worker = idle[0] if idle else self._start()
            worker.kept.discard(task.source)
            try:
                worker.conn.send((task.source, task.output, dict(self.kwargs, timeout=self.timeout)))
            except OSError:  # it died idle: forget it and try again
                self._forget(worker)
                continue
            self.pending.remove(task)
            worker.task = task
            task.deadline = time.monotonic() + self.timeout if self.timeout else None

    def _start(self):
        worker = _Worker(self.threads)
        self.workers.append(worker)
        return worker

    def _forget(self, worker):
        worker.stop()
        worker.process.join(config.KILL_GRACE)
        if worker.process.exitcode is None:
            worker.process.kill()
            worker.process.join(5)
        worker.conn.close()
        self.workers.remove(worker)

    def _drain(self, worker):
        """Read what ``worker`` has sent; False when its pipe is broken (it died)."""
        try:
            while worker.conn.poll():
                kind, *rest = worker.conn.recv()
                if kind == "started":
                    worker.task.started = True
                    if self.timeout:
                        worker.task.deadline = time.monotonic() + self.timeout
                elif kind == "wrote":
                    worker.task.written.append(tuple(rest))
                else:
                    record = getattr(rest[0], "record", None)
                    if isinstance(record, dict) and record.get("kept"):
                        worker.kept.add(worker.task.source)
                    self.done.append(rest[0])
                    worker.task = None
        except (EOFError, OSError, pickle.UnpicklingError, Exception):  # a message cut short by its death
            return False
        return True

    def _collect(self, ready):
        ready = set(ready)
        for w in list(self.workers):
            alive = True
            if w.task is not None and (w.conn in ready or w.process.sentinel in ready):
                alive = self._drain(w)
            if w.process.sentinel in ready or not alive:
                w.process.join(1)
                if w.task is not None:
                    self._drain(w)  # what it sent before it died
                task = w.task
                if task is not None and not task.started and task.tries < 2:  # it never ran: again
                    w.task, task.tries = None, task.tries + 1
                    if not (self.signals or self.stopping):
                        self.pending.appendleft(task)
                elif task is not None:
                    why = _death(w.process.exitcode)
                    self._undo(w, ResourceError(f"{task.source}: worker died ({why}); nothing written"))
                self._forget(w)

    def _expire(self):
        now = time.monotonic()
        late = [
            w for w in self.workers if w.task is not None and w.task.deadline is not None and w.task.deadline <= now
        ]
        if late:
            self._end(
                late,
                lambda t: JobTimeoutError(
                    f"{t.source}: took longer than {self.timeout:g} s (--timeout); nothing written"
                ),
            )

    def _kill(self):
        self.pending.clear()
        busy = [w for w in self.workers if w.task is not None]
        if busy:
            self._end(busy, None)

    def _end(self, workers, error):
        """Stop ``workers`` (SIGTERM, SIGKILL after config.KILL_GRACE); their unfinished jobs fail with ``error(task)``,
        or are dropped when ``error`` is None.
        """
        for w in workers:
            w.stop()
        limit = time.monotonic() + config.KILL_GRACE
        for w in workers:
            w.process.join(max(0, limit - time.monotonic()))
        for w in workers:
            if w.process.exitcode is None:
                w.process.kill()
            w.process.join(5)
            self._drain(w)
            if w.task is not None:
                self._undo(w, error(w.task) if error else None)
            self._forget(w)

    def _undo(self, worker, error):
        """Take back what ``worker``'s unfinished job wrote, and record its failure (``error``)."""
        task, worker.task = worker.task, None
        for folder in task.folders(self.preview):
            write.remove_temporary(folder, worker.process.pid)
        replaced = []
        for path, created in task.written:
            if created:
                batch.remove_written(path, self.root if path == task.output else None)
            else:
                replaced.append(path)
        if error is None:
            return
        if replaced:  # --force had replaced them: the old files cannot come back
            error = type(error)(str(error).replace("nothing written", f"{', '.join(replaced)} already replaced"))
        self.done.append(batch.failed(task.source, error, task.output))


class _Signals:
    """Within ``with``: SIGINT and SIGTERM, in the main thread, only append their number to
    ``received`` (for the pool to act on between jobs); the old handlers come back at the end.
    """

    def __init__(self, received):
        self.received, self.old = received, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                old = signal.getsignal(sig)
                if old is not signal.SIG_IGN and old is not None:
                    self.old[sig] = signal.signal(sig, lambda signum, frame: self.received.append(signum))
        return self

    def __exit__(self, *exc):
        for sig, old in self.old.items():
            signal.signal(sig, old)
        self.old = {}
        return False
