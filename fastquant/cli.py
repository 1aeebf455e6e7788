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
98  --skip-if-larger: the result would not be smaller than the input (nothing written)
99  --quality MIN-MAX: the result is below MIN even with -k colours (nothing written)
130 interrupted (Ctrl-C)
143 terminated (SIGTERM), stopped as on Ctrl-C

Ctrl-C (or SIGTERM) once: no file is started any more, the running ones
finish; twice: the workers are killed, their temporary files removed, and
fastquant exits at once.  Every output left on disk is reported.

This module parses and prints; planning and running the jobs is
:mod:`fastquant.batch`, the worker processes :mod:`fastquant.workers`.
"""

import argparse
import json
import math
import os
import sys
import time

from . import config
from .errors import FastquantError, OptionError, SkippedLargerError

EXIT_OK, EXIT_MIXED, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 70, 130, 143


def _size(text):
    try:
        w, h = text.lower().split("x")
        w, h = int(w), int(h)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 400x200, got {text!r}") from None
    if w < 1 or h < 1:
        raise argparse.ArgumentTypeError(f"width and height must be >= 1, got {text!r}")
    return w, h


def _positive(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _budget(text):
    from .budget import parse_bytes

    try:
        return parse_bytes(text)
    except OptionError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _rd(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not 0 <= v < math.inf:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    return v


def _colors(text):
    from .api import MAX_COLORS

    v = _positive(text)
    if v > MAX_COLORS:
        raise argparse.ArgumentTypeError(f"must be <= {MAX_COLORS}, got {v}")
    return v


def _quality(text):
    """Pngquant's MIN-MAX (either end may be left out) or MAX -> (min, max), 0-100."""
    lo, sep, hi = text.partition("-")
    try:
        if not (lo or hi):
            raise ValueError
        lo, hi = (int(lo) if lo else 0), (int(hi) if hi else 100)
        if not sep:
            lo, hi = 0, lo
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN-MAX or MAX (0-100) such as 65-80, got {text!r}") from None
    if not 0 <= lo <= hi <= 100:
        raise argparse.ArgumentTypeError(f"expected 0 <= MIN <= MAX <= 100, got {text!r}")
    return lo, hi


def _fraction(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text!r}")
    return v


#: Longest --timeout, in seconds (a day): a file still running after that is stuck.
MAX_TIMEOUT = 86400.0

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _timeout(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not (math.isfinite(v) and 0 < v <= MAX_TIMEOUT):
        raise argparse.ArgumentTypeError(f"expected seconds > 0 and <= {MAX_TIMEOUT:g} (a day), got {text!r}")
    return v


def _memory(text):
    """A size such as 512M, 2G, 1.5G or 100000000 (bytes; K, M, G, T are powers of 1024)."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = t[-1:] if t[-1:] in _UNITS else ""
    try:
        v = float(t[: len(t) - len(unit)]) * _UNITS[unit]
    except ValueError:
        v = float("nan")
    if not (math.isfinite(v) and v >= 1 << 20):
        raise argparse.ArgumentTypeError(f"expected a size of at least 1M such as 512M or 2G, got {text!r}")
    return int(v)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit code 2, as documented
        self.exit(EXIT_USAGE, f"fastquant: error: {_one_line(message)} (see --help)\n")


def _one_line(text):
    """``text`` with unprintable characters (a newline in a file name...) escaped, as repr() does."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


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


def build_parser():
    """The command line's argument parser (``--help`` prints its options and exit codes)."""
    p = _Parser(
        prog="python -m fastquant",
        description="Compress images by k-means colour quantization (indexed PNG by default).",
        epilog="Exit codes: 0 ok, 1 mixed failures, 2 usage, 3 unreadable input, 4 output not "
        "written, 5 output exists (use --force) or is the input, 6 timed out, 7 out of memory "
        "(or its worker died), 70 internal error, 97 over the byte budget (--max-bytes), "
        "98 not smaller (--skip-if-larger), 99 quality "
        "below MIN (--quality), 130 interrupted, 143 terminated (SIGTERM). Ctrl-C once lets the "
        "running files finish; twice stops at once.",
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image files (PNG, JPEG, GIF, ...) or folders of them")
    p.add_argument(
        "-k",
        "--colors",
        type=_colors,
        default=256,
        metavar="N",
        help="palette size, 1-65536 (default 256; above 256 PNGs are RGB)",
    )
    p.add_argument("-o", "--output", metavar="OUT", help="output file (one input only); the extension picks the format")
    p.add_argument("--ext", metavar="SUFFIX", help="suffix of outputs written next to inputs (default -fq<N>.png)")
    p.add_argument("--out-dir", metavar="DIR", help="write outputs under DIR, mirroring the input folders")
    p.add_argument("-r", "--recursive", action="store_true", help="descend into subfolders")
    p.add_argument(
        "--glob",
        metavar="PATTERN",
        help="only files in folders whose names match, e.g. '*.png' (default: image extensions)",
    )
    p.add_argument(
        "--include-outputs",
        action="store_true",
        help="also compress files in folders that look like earlier outputs (the suffix)",
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=_positive,
        default=None,
        metavar="N",
        help="worker processes (default: the CPU count; fewer than 4 files run in-process)",
    )
    p.add_argument(
        "--timeout",
        type=_timeout,
        default=None,
        metavar="SECONDS",
        help="give up on a file after this long, at most 86400: its worker is killed, exit "
        "code 6 for it (files then always run in workers; not with --scheduler)",
    )
    p.add_argument(
        "--max-memory",
        type=_memory,
        default=None,
        metavar="SIZE",
        help="memory the workers' files may take together, e.g. 512M or 2G (default: half "
        "the available memory); a file estimated to need more waits until it fits, "
        "or runs alone",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on a Dask cluster (needs fastquant[dask]); 'local' starts a LocalCluster",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resize", type=_size, metavar="WxH", help="resize to exactly W x H pixels")
    g.add_argument("--max-side", type=_positive, metavar="N", help="shrink so that the longer side is at most N pixels")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--dither",
        choices=("none", "fs", "ordered"),
        default="none",
        help="none (default), fs: Floyd-Steinberg error diffusion, ordered: 8x8 Bayer",
    )
    p.add_argument(
        "--dither-strength",
        type=_fraction,
        default=None,
        metavar="X",
        help="amount of dithering, 0-1 (default: 0.2 at 128+ colours, up to 1 at 8 colours)",
    )
    p.add_argument(
        "--colorspace",
        choices=("rgb", "oklab"),
        default="rgb",
        help="fit and map colours in sRGB values (default) or perceptual OKLab",
    )
    p.add_argument(
        "--quality",
        type=_quality,
        metavar="MIN-MAX",
        help="pngquant-style 0-100 target (pngquant's scale: 80 is about 37 dB PSNR): the "
        "fewest colours (up to -k) reaching MAX; below MIN nothing is written (exit 99); "
        "MAX alone means 0-MAX",
    )
    p.add_argument(
        "--max-bytes",
        type=_budget,
        metavar="SIZE",
        help="byte budget of each PNG output, e.g. 100000, 100k or 1.5M (k, M: powers of 1000; "
        "Ki, Mi: of 1024): the most colours (up to -k, at most 256) whose file fits; with --quality "
        "the fewest colours reaching MAX when that fits; exit 97, nothing written, when even 2 "
        "colours do not fit",
    )
    p.add_argument(
        "--rd",
        type=_rd,
        default=None,
        metavar="LAMBDA",
        help="rate-distortion-aware mapping: a pixel may take its neighbour's entry for up to LAMBDA "
        f"more squared error (0 off; default 0, or {config.BUDGET_RD_LAMBDA:g} with --max-bytes)",
    )
    p.add_argument(
        "--skip-if-larger",
        action="store_true",
        help="write nothing (exit 98) when the result is not smaller than the input",
    )
    p.add_argument(
        "--keep-metadata",
        action="store_true",
        help="copy the input's ICC colour profile into the output (PNG, JPEG, WebP)",
    )
    p.add_argument(
        "--max-pixels",
        type=_positive,
        default=None,
        metavar="N",
        help=f"refuse larger images before decoding (default {config.DEFAULT_MAX_PIXELS})",
    )
    p.add_argument(
        "--max-frames",
        type=_positive,
        default=None,
        metavar="N",
        help=f"refuse animations of more frames, from their headers (default {config.DEFAULT_MAX_FRAMES}); "
        "--max-pixels counts every frame",
    )
    p.add_argument(
        "--frame-palettes",
        action="store_true",
        help="animations: a palette for each frame (default: one palette for all frames; not for APNG)",
    )
    p.add_argument(
        "--allow-truncated",
        action="store_true",
        help="quantize what there is of an image whose data ends early (default: exit 3)",
    )
    p.add_argument(
        "--shared",
        action="store_true",
        help="one palette (-k colours) fitted on all the inputs together, every file mapped onto it",
    )
    p.add_argument(
        "--map",
        metavar="FILE",
        help="map onto exactly these colours: a palette file (.txt/.hex, .gpl) or an image of at most 65536 colours",
    )
    p.add_argument(
        "--fixed-colors",
        metavar="LIST",
        help="colours kept exactly in the palette, the rest fitted around them: ff0000,#00ff00 or a file as for --map",
    )
    p.add_argument("--save-palette", metavar="FILE", help="also write the palette: .png swatch strip, .gpl or .txt")
    p.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--json", action="store_true", help="one JSON object per file on stdout")
    p.add_argument(
        "--preview", metavar="FILE", help="also write original and result side by side to FILE (one input only)"
    )
    p.add_argument("--preview-diff", action="store_true", help="add a difference panel (x4) and a caption to --preview")
    p.add_argument("--demo", action="store_true", help="compress a built-in generated image into the current folder")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("-v", "--verbose", action="store_true", help="stage timings; tracebacks on errors")
    return p


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
        f"{ratio}, {rec['n_colors']} colours, PSNR {psnr}{ssim}, {rec['seconds']:.2f} s"
    )
    if verbose:
        text += " [" + ", ".join(f"{k} {v:.3f}" for k, v in rec["stages"].items()) + "]"
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


def _emit(line):
    """Print a result line; a reader that went away (``| head``) must not stop the work."""
    try:
        print(line, flush=True)
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
            "seconds": round(time.perf_counter() - self.start, 3),
        }


def _report(result, args):
    """Print one file's result: a line (or JSON) on stdout, or the error on stderr."""
    if result.status == "ok":
        if args.json:
            _emit(json.dumps(result.record))
        elif not args.quiet:
            _emit(_one_line(_line(result.record, args.verbose)))
        return
    print(f"fastquant: error: {_one_line(result.error)}", file=sys.stderr, flush=True)
    if args.json:
        _emit(
            json.dumps(
                {
                    "input": result.source,
                    "output": result.output,
                    "status": "error",
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
    limit = io.DEFAULT_MAX_PIXELS if args.max_pixels is None else args.max_pixels
    if args.resize and args.resize[0] * args.resize[1] > limit:
        w, h = args.resize
        raise OptionError(f"--resize {w}x{h} = {w * h} pixels is more than the limit of {limit} (--max-pixels)")
    _check_palette_options(args)


def _check_palette_options(args):
    """--shared, --map, --fixed-colors, --save-palette: their files read and checked, before any work."""
    from . import shared

    args.palette = args.fixed = None
    one_palette = args.shared or args.map
    if args.shared and args.map:
        raise OptionError("--shared and --map exclude each other (--map already gives every file one palette)")
    if args.map and args.fixed_colors:
        raise OptionError("--map and --fixed-colors exclude each other: --map takes its colours as they are")
    for name, value in (("--quality", args.quality), ("--max-bytes", args.max_bytes)):
        if value is not None and one_palette:
            raise OptionError(f"{name} chooses each file's palette size: not with --shared or --map")
    if args.save_palette and not one_palette and (len(args.inputs) > 1 or os.path.isdir(args.inputs[0])):
        raise OptionError("--save-palette needs --shared, --map or one input file")
    if args.save_palette:
        shared.check_save_path(args.save_palette, args.force)
    if args.map:
        args.palette = shared.load_map(args.map)
        args.colors = len(args.palette)  # names the outputs (-fq<N>)
    if args.fixed_colors:
        args.fixed = shared.fixed_colors(args.fixed_colors, args.colors)


def _options(args):
    """The keywords of every job."""
    options = {
        "seed": args.seed,
        "ssim": True,
        "resize": args.resize or args.max_side,
        "dither": args.dither,
        "dither_strength": args.dither_strength,
        "colorspace": args.colorspace,
        "quality": args.quality,
        "max_bytes": args.max_bytes,
        "rd_lambda": args.rd,
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
    by this process and by its workers.
    """
    quiet = (
        argv is not None
        and any(a in ("-q", "--quiet") for a in argv)
        or (argv is None and any(a in ("-q", "--quiet") for a in sys.argv[1:]))
    )
    before = os.environ.get("FASTQUANT_COMPILE_NOTICE")
    os.environ["FASTQUANT_COMPILE_NOTICE"] = "off" if quiet else "stderr"  # workers inherit it
    try:
        return _main(argv)
    finally:
        if before is None:
            os.environ.pop("FASTQUANT_COMPILE_NOTICE", None)
        else:
            os.environ["FASTQUANT_COMPILE_NOTICE"] = before


def _main(argv):
    from . import batch, jit, workers, write

    workers.skip_blas_probe()
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2), already printed
        return e.code
    err = sys.stderr
    try:
        if jit.ENV_ERROR:
            raise OptionError(jit.ENV_ERROR)
        _check(args)
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
            write.check_output(args.preview, args.inputs[0])
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
        if isinstance(executor, workers.Pool):  # it stops in two stages itself, and says when
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
            f"bytes{ratio}; {summary['seconds']:.2f} s" + (" (interrupted)" if interrupted else ""),
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
    failed = sorted({c for c in codes if c})
    if not failed:
        return EXIT_OK
    return failed[0] if len(failed) == 1 else EXIT_MIXED
