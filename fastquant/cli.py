"""Command line: ``python -m fastquant INPUT... [options]``.

Exit codes (also in the README):

0   every file compressed
1   several files failed for different reasons
2   usage error: bad option or value
3   an input could not be read or decoded
4   an output could not be written, or another input of the run gives it too
5   an output exists or would replace the input (use --force)
6   a file took longer than --timeout (its worker was killed; nothing written)
7   out of memory: a MemoryError, or the worker holding the file died (killed by a
    signal, as the out-of-memory killer does); nothing written
70  internal error (a bug: please report it, with -v output)
97  --max-bytes N: even 2 colours give a larger file (nothing written)
98  --skip-if-larger: the result would not be smaller than the input (nothing written;
    one file: of several, skipped files are not failures, and 0 is returned when none failed)
99  --quality MIN-MAX: the result is below MIN even with -k colours (nothing written)
130 interrupted (Ctrl-C)
143 terminated (SIGTERM), stopped as on Ctrl-C

Ctrl-C (or SIGTERM) once: no file is started any more, the running ones
finish; twice: the workers are killed, their temporary files removed, and
fastquant exits at once.  Every output left on disk is reported.

This module parses and prints; planning and running the jobs is
:mod:`fastquant.batch`, the worker processes :mod:`fastquant.workers`.
"""

import json
import os
import sys
import time

from .arguments import _one_line, build_parser
from .errors import FastquantError, OptionError, OutputError, SkippedLargerError

EXIT_OK, EXIT_MIXED, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 70, 130, 143

#: Set by :func:`main` when the run ended normally with every job run in this process, or in
#: fastquant's own worker processes, all of which have exited (not on Dask): nothing is left to
#: clean up, and ``python -m fastquant`` may skip the interpreter's teardown (see
#: :mod:`fastquant.__main__`).
finished_in_process = False


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is: no temporary file left, finished outputs kept."""


def _on_sigterm():
    """Make SIGTERM raise :class:`_Terminated` in this (main) thread; returns the old handler."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise _Terminated()

    return signal.signal(signal.SIGTERM, handler)


def _line(rec, verbose):
    def db(x):
        return "inf dB" if x is None else f"{x:.2f} dB"

    psnr = db(rec["psnr"])
    if rec.get("psnr_quantized", rec["psnr"]) != rec["psnr"]:  # the format changed the pixels (JPEG...)
        psnr += f" as written ({db(rec['psnr_quantized'])} quantized)"
    ratio = f" ({100 * rec['ratio']:.1f}%)" if rec["ratio"] else ""
    ssim = f", SSIM {rec['ssim']:.4f}" if rec["ssim"] is not None else ""
    if rec.get("quality") is not None:
        ssim += f", quality {rec['quality']}"
    if rec.get("max_bytes") is not None:
        ssim += f", k={rec['n_colors']} fits --max-bytes {rec['max_bytes']}"
    if rec.get("frames"):
        mean = rec["mean_frame_psnr"]
        ssim += f", {rec['frames']} frames (mean PSNR {'inf' if mean is None else f'{mean:.2f}'} dB)"
    text = (
        f"{rec['input']} -> {rec['output']}: {rec['input_bytes']} -> {rec['output_bytes']} bytes"
        f"{ratio}, {rec['n_colors']} colours, PSNR {psnr}{ssim}, {rec['total_seconds']:.2f} s"
    )
    if rec.get("preview"):
        text += f"; preview {rec['preview']}"
    if verbose:
        text += " [" + ", ".join(f"{k} {v:.3f}" for k, v in rec["stage_seconds"].items()) + "]"
    return text


def _demo(args):
    from .demo import demo_image

    if args.inputs or args.output:
        raise OptionError("--demo takes no input or -o: it writes into the current folder")
    src = "fastquant-demo.png"
    from .write import encode_array, write_atomic

    write_atomic(src, encode_array(src, demo_image()))
    args.force = True  # the demo rewrites its own files
    if not args.preview:
        args.preview = "fastquant-demo-preview.png"
    return [src]


def _precompile(args):
    """``--precompile``: fill the kernel cache; 0 when every kernel is cached."""
    from .warmup import precompile

    if args.inputs or args.output or args.demo:
        raise OptionError("--precompile takes no input, -o or --demo")
    live = sys.stderr.isatty() and not args.quiet

    def progress(line):
        if live:
            sys.stderr.write(f"\r\033[Kfastquant: precompiling {line}")
            sys.stderr.flush()
        elif not args.quiet:
            print(f"fastquant: precompiling {line}", file=sys.stderr, flush=True)

    report = precompile(jobs=args.jobs, progress=progress)
    if live:
        sys.stderr.write("\r\033[K")
    if args.verbose:
        for k in report["kernels"]:
            print(f"{k.seconds:8.2f} s  {k.signatures} version{'s' * (k.signatures > 1)}  {k.name}", file=sys.stderr)
        cpu = ", ".join(f"{stage} {s:.1f}" for stage, s in report["cpu"].items())
        print(f"CPU seconds of each stage: {cpu}", file=sys.stderr)
    if report["missing"]:
        print(
            f"fastquant: error: no warm-up reaches {', '.join(report['missing'])}: add one to "
            "fastquant/warmup.py (a bug: please report it)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    if report["cache"] is None or not report["kept"]:
        where = report["cache"] or "any folder"
        print(
            f"fastquant: error: the kernels could not be cached: {where} cannot be written (set NUMBA_CACHE_DIR)",
            file=sys.stderr,
        )
        return OutputError.exit_code
    if not args.quiet:
        print(
            f"fastquant: {report['reached']} kernels compiled and cached in {report['seconds']:.1f} s "
            f"({report['cache']})",
            file=sys.stderr,
        )
    return EXIT_OK


def _emit(line, stream=None):
    """Print a result line (on stdout, or ``stream``); a reader that went away (``| head``) must
    not stop the work.
    """
    try:
        print(line, file=stream or sys.stdout, flush=True)
    except BrokenPipeError:
        try:  # later lines, and the flush at exit, go to /dev/null instead of failing again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass


class _Progress:
    """Live progress on stderr (terminals only) and the totals for the summary."""

    def __init__(self, total, live):
        self.total, self.live = total, live
        self.start = time.perf_counter()
        self.ok = self.skipped = self.failed = 0
        self.bytes_in = self.bytes_out = 0

    def add(self, result):
        if result.status == "ok":
            self.ok += 1
            self.bytes_in += result.record.get("input_bytes") or 0
            self.bytes_out += result.record["output_bytes"]
        elif result.exit_code == SkippedLargerError.exit_code:
            self.skipped += 1
        else:
            self.failed += 1
        if self.live:
            done = self.ok + self.skipped + self.failed
            rate = done / max(time.perf_counter() - self.start, 1e-9)
            eta = (self.total - done) / rate if rate else 0.0
            sys.stderr.write(
                f"\r\033[K[{done}/{self.total}] {(self.bytes_in - self.bytes_out) / 1e6:.1f} MB "
                f"saved, {rate:.1f} files/s, ETA {eta:.0f} s"
            )
            sys.stderr.flush()

    def clear(self):
        if self.live:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()

    def summary(self):
        ratio = self.bytes_out / self.bytes_in if self.bytes_in else None
        return {
            "files": self.total,
            "ok": self.ok,
            "skipped": self.skipped,
            "failed": self.failed,
            "input_bytes": self.bytes_in,
            "output_bytes": self.bytes_out,
            "ratio": round(ratio, 4) if ratio is not None else None,
            "total_seconds": round(time.perf_counter() - self.start, 3),
        }


def _report(result, args):
    """Print one file's result: a line (or JSON) on stdout (on stderr when the image goes to
    stdout), a warning when the output is larger than its input, or the error (or skip) on stderr.
    """
    out = sys.stderr if args.output == "-" else None
    if result.status == "ok":
        rec = result.record
        if args.json:
            _emit(json.dumps(rec))
        elif not args.quiet:
            _emit(_one_line(_line(rec, args.verbose)), out)
        if not args.quiet and rec["input_bytes"] and rec["output_bytes"] > rec["input_bytes"]:
            print(
                f"fastquant: warning: {_one_line(rec['output'])}: {rec['output_bytes']} bytes, larger than "
                f"the input ({rec['input_bytes']} bytes); --skip-if-larger would keep the input instead",
                file=sys.stderr,
                flush=True,
            )
        return
    skipped = result.status == "skipped"
    # A skip is what --skip-if-larger asked for: said as such, not as an error.
    print(f"fastquant: {'' if skipped else 'error: '}{_one_line(result.error)}", file=sys.stderr, flush=True)
    if args.json:
        _emit(
            json.dumps(
                {
                    "input": result.source,
                    "output": result.output,
                    "status": "skipped" if skipped else "error",
                    "exit_code": result.exit_code,
                    "error": result.error,
                }
            )
        )


def _check(args):
    """Checks of the options together, before any work; raises FastquantError."""
    from . import io

    if args.demo:
        args.inputs = _demo(args)
    if not args.inputs:
        raise OptionError("no input files (try --demo, or --help)")
    if args.output and args.out_dir:
        raise OptionError("-o/--output and --out-dir exclude each other")
    if args.output and (len(args.inputs) > 1 or os.path.isdir(args.inputs[0])):
        raise OptionError("-o/--output takes one input file")
    if args.preview and (len(args.inputs) > 1 or os.path.isdir(args.inputs[0])):
        raise OptionError("--preview takes one input file")
    if args.preview_diff and not args.preview:
        raise OptionError("--preview-diff needs --preview FILE")
    if "-" in args.inputs or args.output == "-":
        _check_pipe(args)
    limit = io.DEFAULT_MAX_PIXELS if args.max_pixels is None else args.max_pixels
    if args.resize and args.resize[0] * args.resize[1] > limit:
        w, h = args.resize
        raise OptionError(f"--resize {w}x{h} = {w * h} pixels is more than the limit of {limit} (--max-pixels)")
    _check_palette_options(args)


def _check_palette_options(args):
    """--shared, --map, --fixed-colors, --save-palette: their files read and checked, before any work."""
    args.palette = args.fixed = None
    one_palette = args.shared or args.map
    if args.shared and args.map:
        raise OptionError("--shared and --map exclude each other (--map already gives every file one palette)")
    if args.map and args.fixed_colors:
        raise OptionError("--map and --fixed-colors exclude each other: --map takes its colours as they are")
    for name, value in (("--quality", args.quality), ("--max-bytes", args.max_bytes)):
        if value is not None and one_palette:
            raise OptionError(f"{name} chooses each file's palette size: not with --shared or --map")
    if args.contrast_weights and one_palette:
        raise OptionError("--contrast-weights weighs each file's palette fit: not with --shared or --map")
    if args.optimize:  # once, before any file is read: the extra is missing or not
        from . import optimize

        optimize.check()
    if args.save_palette and not one_palette and (len(args.inputs) > 1 or os.path.isdir(args.inputs[0])):
        raise OptionError("--save-palette needs --shared, --map or one input file")
    if not (args.save_palette or args.map or args.fixed_colors):
        return
    from . import shared

    if args.save_palette:
        shared.check_save_path(args.save_palette, args.force)
    if args.map:
        args.palette = shared.load_map(args.map)
        args.colors = len(args.palette)  # names the outputs (-fq<N>)
    if args.fixed_colors:
        args.fixed = shared.fixed_colors(args.fixed_colors, args.colors)


def _check_pipe(args):
    """The rules of ``-`` (stdin as the one input, stdout as its output): the image alone goes to
    stdout, so the per-file line goes to stderr and --json is refused there.
    """
    from .job import STDIO

    if args.inputs == [STDIO] and not args.output:
        args.output = STDIO  # stdin's result goes to stdout unless -o names a file
    if STDIO in args.inputs and len(args.inputs) > 1:
        raise OptionError("- (stdin) must be the only input")
    if args.inputs == [STDIO] and sys.stdin is not None and sys.stdin.isatty():
        raise OptionError("stdin is a terminal: pipe an image in (fastquant - < in.png > out.png)")
    if args.output == STDIO:
        if args.json:
            raise OptionError("--json cannot share stdout with the image (-o -); the line on stderr says the same")
        if sys.stdout.isatty():
            raise OptionError("stdout is a terminal: not writing image data there (redirect it, or use -o FILE)")
    if args.scheduler or args.timeout is not None:
        raise OptionError("- (stdin or stdout) runs in this process: not with --scheduler or --timeout")
    if args.shared:
        raise OptionError("--shared reads every input twice: not with - (stdin or stdout)")


def _options(args):
    """The keywords of every job."""
    options = {
        "seed": args.seed,
        "speed": args.speed,
        "posterize": args.posterize,
        "ssim": not args.quiet or bool(args.json),  # only the per-file line and --json show it
        "resize": args.resize or args.max_side,
        "dither": args.dither,
        "dither_strength": args.dither_strength,
        "colorspace": args.colorspace,
        "quality": args.quality,
        "max_bytes": args.max_bytes,
        "rd_lambda": args.rd,
        "optimize": args.optimize,
        "keep_metadata": args.keep_metadata,
        "n_colors": args.colors,
        "force": args.force,
        "preview": args.preview,
        "preview_diff": args.preview_diff,
        "skip_if_larger": args.skip_if_larger,
        "timeout": args.timeout,
    }
    if args.fixed is not None:
        options["fixed_colors"] = args.fixed
    if args.contrast_weights:
        options["weights"] = "contrast"
    if args.frame_palettes:
        options["frame_palettes"] = True
    for name in ("max_pixels", "max_frames", "allow_truncated"):  # only when given: compress() has the defaults
        if getattr(args, name, None) not in (None, False):
            options[name] = getattr(args, name)
    if args.out_dir:
        options["root"] = os.path.realpath(args.out_dir)
    return options


def _flag_signals(received):
    """From now on SIGINT and SIGTERM only append their number to ``received`` (once a run is
    interrupted, more signals must not cut the report short); returns a function that puts the
    handlers back.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    old = {
        sig: signal.signal(sig, lambda signum, frame: received.append(signum))
        for sig in (signal.SIGINT, signal.SIGTERM)
    }

    def restore():
        for sig, handler in old.items():
            signal.signal(sig, handler)

    return restore


def main(argv=None):
    """Run the command line; returns the exit code.

    After an interrupted run (130, 143), SIGINT and SIGTERM are left ignored: the process
    is expected to exit with the code returned, and a late Ctrl-C must not change it.
    A first compile of the kernels is announced in one line on stderr (not with ``-q``),
    by this process and by its workers.  Without ``argv`` (``python -m fastquant``, the
    ``fastquant`` script) the process is taken as the command line's own: Numba is imported with
    the garbage collector paused, and what the imports made is frozen (:func:`_import_numba`).
    """
    quiet = (
        argv is not None
        and any(a in ("-q", "--quiet") for a in argv)
        or (argv is None and any(a in ("-q", "--quiet") for a in sys.argv[1:]))
    )
    before = os.environ.get("FASTQUANT_COMPILE_NOTICE")
    os.environ["FASTQUANT_COMPILE_NOTICE"] = "off" if quiet else "stderr"  # workers inherit it
    try:
        return _main(argv, own_process=argv is None)
    finally:
        if before is None:
            os.environ.pop("FASTQUANT_COMPILE_NOTICE", None)
        else:
            os.environ["FASTQUANT_COMPILE_NOTICE"] = before


def _import_numba():
    """Import Numba (through :mod:`fastquant.jit`) in the command line's own process, its objects
    (and numpy's: tens of thousands, which live as long as the process) kept out of the garbage
    collector's reach: Python's collector would otherwise walk them all again and again while
    they are made, and once more in a full collection soon after, for nothing.
    """
    import gc

    enabled = gc.isenabled()
    gc.disable()
    try:
        from . import jit  # noqa: F401
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _main(argv, own_process=False):
    if own_process:
        _import_numba()
    from . import batch, jit, write

    jit.skip_blas_probe()
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2), already printed
        return e.code
    err = sys.stderr
    try:
        if jit.ENV_ERROR:
            raise OptionError(jit.ENV_ERROR)
        if args.precompile:
            return _precompile(args)
        _check(args)
        stdio = "-" in (args.inputs[0], args.output)
        if stdio:  # stdin or stdout: nothing to plan
            if args.output != "-":
                write.check_output(args.output)
                write.check_format(args.output)
            pairs, failures = [(args.inputs[0], args.output)], []
        else:
            pairs, failures = batch.plan(
                args.inputs,
                output=args.output,
                out_dir=args.out_dir,
                n_colors=args.colors,
                ext=args.ext,
                recursive=args.recursive,
                pattern=args.glob,
                include_outputs=args.include_outputs,
            )
        if args.preview:
            write.check_output(args.preview, None if args.inputs[0] == "-" else args.inputs[0])
            write.check_format(args.preview)
            if pairs and os.path.realpath(args.preview) == os.path.realpath(pairs[0][1]):
                raise OptionError(f"--preview and the output are the same file: {args.preview}")
        if not pairs and not failures:
            raise OptionError(f"no image files found in {', '.join(args.inputs)}")
        note = None if args.quiet else batch.named_like_outputs(args.inputs, args.colors, args.ext)
        if note:
            print(f"fastquant: {_one_line(note)}", file=err)
        executor, close = batch.executor_for(
            len(pairs), jobs=args.jobs, scheduler=args.scheduler, timeout=args.timeout, max_memory=args.max_memory
        )
    except FastquantError as e:
        print(f"fastquant: error: {_one_line(str(e))}", file=err)
        return e.exit_code

    many = len(pairs) + len(failures) > 1
    progress = _Progress(len(pairs) + len(failures), live=many and not args.quiet and err.isatty())
    codes = []

    def take(result):
        progress.clear()
        _report(result, args)
        if result.status != "ok" and args.verbose and result.trace:
            print(result.trace, file=err, end="")
        codes.append(result.exit_code)
        progress.add(result)

    import signal

    jobs = None
    received = []  # SIGINT / SIGTERM, once they are only noted (see _flag_signals)
    old_term = _on_sigterm()
    restore = None
    try:
        for result in failures:
            take(result)
        if args.shared or args.map or args.save_palette:
            from .shared import PaletteRun

            jobs = PaletteRun(pairs, _options(args), executor, palette=args.palette, save_palette=args.save_palette)
        else:
            jobs = batch.start(pairs, _options(args), executor)
        if batch.is_pool(executor):  # it stops in two stages itself, and says when
            restore = _flag_signals(received)
        for result in jobs:
            take(result)
    except KeyboardInterrupt as e:
        # The first Ctrl-C: start nothing more, let the running files finish and report them;
        # a second one meanwhile stops them at once.
        received.insert(0, signal.SIGTERM if isinstance(e, _Terminated) else signal.SIGINT)
        restore = restore or _flag_signals(received)
        for result in jobs.stop(kill_now=lambda: len(received) > 1) if jobs else []:
            take(result)
    finally:
        try:
            close()
        except KeyboardInterrupt:
            received.append(signal.SIGINT)
        progress.clear()
    interrupted = bool(received)
    summary = progress.summary()
    fitted = getattr(jobs, "fitted", None)
    if fitted is not None and args.json:
        _emit(json.dumps({"palette": fitted}))
    elif fitted is not None and not args.quiet:
        psnr = "inf" if fitted["psnr"] is None else f"{fitted['psnr']:.2f}"
        print(
            f"fastquant: shared palette: {fitted['n_colors']} colours fitted on {fitted['files']} "
            f"file{'s' * (fitted['files'] != 1)}, "
            f"union PSNR {psnr} dB" + (f", saved to {args.save_palette}" if args.save_palette else ""),
            file=err,
        )
    if args.json and many:
        _emit(json.dumps({"summary": summary}))
    if (many or interrupted) and not args.quiet and not args.json:
        ratio = f" ({100 * summary['ratio']:.1f}%)" if summary["ratio"] is not None else ""
        print(
            f"fastquant: {summary['ok']} of {summary['files']} files compressed, {summary['skipped']} "
            f"skipped, {summary['failed']} failed; {summary['input_bytes']} -> {summary['output_bytes']} "
            f"bytes{ratio}; {summary['total_seconds']:.2f} s" + (" (interrupted)" if interrupted else ""),
            file=err,
        )
    if interrupted:  # the process ends now: a Ctrl-C more must not kill it with its code unsaid
        if restore is not None:
            for sig in (signal.SIGINT, signal.SIGTERM):  # ignored (not noted) stays so at exit
                signal.signal(sig, signal.SIG_IGN)
        return EXIT_TERMINATED if received[0] == signal.SIGTERM else EXIT_INTERRUPTED
    if restore is not None:
        restore()
    if old_term is not None:
        signal.signal(signal.SIGTERM, old_term)
    global finished_in_process
    # every job ran here, or in workers that close() saw exit: all is written and closed
    finished_in_process = executor is None or (batch.is_pool(executor) and executor.ended)
    failed = sorted({c for c in codes if c})
    if many and SkippedLargerError.exit_code in failed:  # of several files, a skip is no failure
        failed.remove(SkippedLargerError.exit_code)
    if not failed:
        return EXIT_OK
    return failed[0] if len(failed) == 1 else EXIT_MIXED
