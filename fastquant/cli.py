"""Command line: ``python -m fastquant INPUT... [options]``.

Exit codes (also in the README):

0   every file compressed
1   several files failed for different reasons
2   usage error: bad option or value
3   an input could not be read or decoded
4   an output could not be written
5   an output exists or would replace the input (use --force)
70  internal error (a bug: please report it, with -v output)
98  --skip-if-larger: the result would not be smaller than the input (nothing written)
99  --quality MIN-MAX: the result is below MIN even with -k colours (nothing written)
130 interrupted (Ctrl-C)
"""
import argparse
import glob
import json
import os
import sys
import time
import traceback

from .errors import FastquantError, OptionError, OutputExistsError, SkippedLargerError

EXIT_OK, EXIT_MIXED, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 70, 130


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


def _colors(text):
    from .api import MAX_COLORS

    v = _positive(text)
    if v > MAX_COLORS:
        raise argparse.ArgumentTypeError(f"must be <= {MAX_COLORS}, got {v}")
    return v


def _quality(text):
    """pngquant's MIN-MAX (either end may be left out) or MAX -> (min, max), 0-100."""
    lo, sep, hi = text.partition("-")
    try:
        if not (lo or hi):
            raise ValueError
        lo, hi = (int(lo) if lo else 0), (int(hi) if hi else 100)
        if not sep:
            lo, hi = 0, lo
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected MIN-MAX or MAX (0-100) such as 65-80, got {text!r}") from None
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


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit code 2, as documented
        self.exit(EXIT_USAGE, f"fastquant: error: {message} (see --help)\n")


def build_parser():
    p = _Parser(
        prog="python -m fastquant",
        description="Compress images by k-means colour quantization (indexed PNG by default).",
        epilog="Exit codes: 0 ok, 1 mixed failures, 2 usage, 3 unreadable input, 4 output not "
               "written, 5 output exists (use --force), 70 internal error, 98 not smaller "
               "(--skip-if-larger), 99 quality below MIN (--quality), 130 interrupted.")
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image files (PNG, JPEG, GIF, ...)")
    p.add_argument("-k", "--colors", type=_colors, default=256, metavar="N",
                   help="palette size, 1-65536 (default 256; above 256 PNGs are RGB)")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="output file (one input only); the extension picks the format")
    p.add_argument("--ext", metavar="SUFFIX",
                   help="suffix of outputs written next to inputs (default -fq<N>.png)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resize", type=_size, metavar="WxH", help="resize to exactly W x H pixels")
    g.add_argument("--max-side", type=_positive, metavar="N",
                   help="shrink so that the longer side is at most N pixels")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--dither", choices=("none", "fs", "ordered"), default="none",
                   help="none (default), fs: Floyd-Steinberg error diffusion, ordered: 8x8 Bayer")
    p.add_argument("--dither-strength", type=_fraction, default=1.0, metavar="X",
                   help="amount of dithering, 0-1 (default 1)")
    p.add_argument("--colorspace", choices=("rgb", "oklab"), default="rgb",
                   help="fit and map colours in sRGB values (default) or perceptual OKLab")
    p.add_argument("--quality", type=_quality, metavar="MIN-MAX",
                   help="pngquant-style 0-100 target (pngquant's scale: 80 is about 37 dB PSNR): the "
                        "fewest colours (up to -k) reaching MAX; below MIN nothing is written (exit 99); "
                        "MAX alone means 0-MAX")
    p.add_argument("--skip-if-larger", action="store_true",
                   help="write nothing (exit 98) when the result is not smaller than the input")
    p.add_argument("--keep-metadata", action="store_true",
                   help="copy the input's ICC colour profile into the output (PNG, JPEG, WebP)")
    p.add_argument("--max-pixels", type=_positive, default=None, metavar="N",
                   help="refuse larger images before decoding (default 178956970)")
    p.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--json", action="store_true", help="one JSON object per file on stdout")
    p.add_argument("--preview", metavar="FILE",
                   help="also write original and result side by side to FILE (one input only)")
    p.add_argument("--preview-diff", action="store_true",
                   help="add a difference panel (x4) and a caption to --preview")
    p.add_argument("--demo", action="store_true",
                   help="compress a built-in generated image into the current folder")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("-v", "--verbose", action="store_true", help="stage timings; tracebacks on errors")
    return p


def default_output(path, n_colors, ext=None):
    """Where the result of ``path`` goes without -o: ``<stem>-fq<N>.png`` beside it."""
    stem = os.path.splitext(path)[0]
    return stem + (ext if ext else f"-fq{n_colors}.png")


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def _kernels_cached():
    """True when compiled kernels are on disk (so the run will not compile)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        places = [os.environ["NUMBA_CACHE_DIR"]]
    else:  # next to the package, or numba's user-wide cache where that is read-only
        places = [os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__"),
                  os.path.join(os.path.expanduser("~"), ".cache", "numba")]
    return any(glob.glob(os.path.join(d, "**", "kmeans._assign_range*.nbi"), recursive=True)
               for d in places)


def _compress_one(src, out, args, options):
    """Compress one file; returns the record printed for it."""
    from .api import compress

    for target in filter(None, (out, args.preview)):
        if os.path.exists(src) and _same_file(src, target) and not args.force:
            raise OutputExistsError(f"{target}: is the input; refusing to overwrite it (use --force)")
        if os.path.exists(target) and not args.force:
            raise OutputExistsError(f"{target}: exists, kept (use --force to overwrite)")
    t = time.perf_counter()
    q = compress(src, args.colors, **options)
    tw = time.perf_counter()
    from .io import encode, encode_array, write_atomic

    data = encode(out, q.indices, q.palette, q.icc_profile)
    if args.skip_if_larger and q.stats.input_bytes is not None and len(data) >= q.stats.input_bytes:
        raise SkippedLargerError(f"{src}: skipped: the result, {len(data)} bytes, is not smaller than "
                                 f"the input, {q.stats.input_bytes} bytes; nothing written")
    nbytes = write_atomic(out, data)
    q.stats.seconds["write"] = time.perf_counter() - tw
    if args.preview:
        write_atomic(args.preview, encode_array(args.preview, q.preview(args.preview_diff, nbytes=nbytes)))
    s = q.stats
    rec = {"input": src, "output": out, "status": "ok", "input_bytes": s.input_bytes,
           "output_bytes": nbytes,
           "ratio": round(nbytes / s.input_bytes, 4) if s.input_bytes else None,
           "n_colors": s.n_colors, "width": s.width, "height": s.height,
           "psnr": round(s.psnr, 3) if s.psnr != float("inf") else None,
           "mse": round(s.mse, 4), "ssim": round(s.ssim, 5) if s.ssim is not None else None,
           "iterations": s.iterations, "quality": s.quality,
           "seconds": round(time.perf_counter() - t, 4),
           "stages": {k: round(v, 4) for k, v in s.seconds.items()}}
    if args.preview:
        rec["preview"] = args.preview
    return rec


def _line(rec, verbose):
    psnr = "inf" if rec["psnr"] is None else f"{rec['psnr']:.2f}"
    ratio = f" ({100 * rec['ratio']:.1f}%)" if rec["ratio"] else ""
    ssim = f", SSIM {rec['ssim']:.4f}" if rec["ssim"] is not None else ""
    if rec.get("quality") is not None:
        ssim += f", quality {rec['quality']}"
    text = (f"{rec['input']} -> {rec['output']}: {rec['input_bytes']} -> {rec['output_bytes']} bytes"
            f"{ratio}, {rec['n_colors']} colours, PSNR {psnr} dB{ssim}, {rec['seconds']:.2f} s")
    if verbose:
        text += " [" + ", ".join(f"{k} {v:.3f}" for k, v in rec["stages"].items()) + "]"
    return text


def _demo(args, options):
    from .demo import demo_image

    if args.inputs or args.output:
        raise OptionError("--demo takes no input or -o: it writes into the current folder")
    src = "fastquant-demo.png"
    from .io import encode_array, write_atomic

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


def main(argv=None):
    """Run the command line; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2), already printed
        return e.code
    options = {"seed": args.seed, "ssim": True,
               "resize": args.resize or args.max_side, "dither": args.dither,
               "dither_strength": args.dither_strength, "colorspace": args.colorspace,
               "quality": args.quality, "keep_metadata": args.keep_metadata}
    if args.max_pixels is not None:
        options["max_pixels"] = args.max_pixels
    err = sys.stderr
    try:
        inputs = _demo(args, options) if args.demo else list(args.inputs)
        if not inputs:
            raise OptionError("no input files (try --demo, or --help)")
        if args.output and len(inputs) > 1:
            raise OptionError("-o/--output takes one input; several were given")
        if args.preview and len(inputs) > 1:
            raise OptionError("--preview takes one input; several were given")
        if args.preview_diff and not args.preview:
            raise OptionError("--preview-diff needs --preview FILE")
    except FastquantError as e:
        print(f"fastquant: error: {e}", file=err)
        return e.exit_code
    if not args.quiet and not _kernels_cached():
        print("fastquant: compiling the Numba kernels, once (about 10 s); later runs load them "
              "from the cache", file=err)
    codes = []
    try:
        for src in inputs:
            out = args.output or default_output(src, args.colors, args.ext)
            try:
                rec = _compress_one(src, out, args, options)
            except FastquantError as e:
                code, msg, exc = e.exit_code, str(e), e
            except (Exception, RecursionError) as e:  # a bug: say so in one line, keep going
                code, msg, exc = EXIT_INTERNAL, f"{src}: internal error: {type(e).__name__}: {e}", e
            else:
                codes.append(EXIT_OK)
                if args.json:
                    _emit(json.dumps(rec))
                elif not args.quiet:
                    _emit(_line(rec, args.verbose))
                continue
            codes.append(code)
            print(f"fastquant: error: {msg}", file=err, flush=True)
            if args.verbose:
                traceback.print_exception(type(exc), exc, exc.__traceback__, file=err)
            if args.json:
                _emit(json.dumps({"input": src, "output": out, "status": "error",
                                  "exit_code": code, "error": msg}))
    except KeyboardInterrupt:
        print("fastquant: interrupted", file=err)
        return EXIT_INTERRUPTED
    failed = sorted({c for c in codes if c})
    if len(inputs) > 1 and failed and not args.quiet:
        print(f"fastquant: {codes.count(0)} of {len(codes)} files compressed, "
              f"{len(codes) - codes.count(0)} failed", file=err)
    if not failed:
        return EXIT_OK
    return failed[0] if len(failed) == 1 else EXIT_MIXED
