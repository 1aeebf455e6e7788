"""The command line's arguments: the parser, its value types and its help text.

:mod:`fastquant.cli` runs what is parsed here.
"""

import argparse
import math
import textwrap

from . import config

EXIT_USAGE = 2


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
    from .errors import OptionError

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


def _bounded(lo, hi):
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number from {lo} to {hi}, got {text!r}") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"must be from {lo} to {hi}, got {v}")
        return v

    return parse


_speed, _posterize = _bounded(1, 11), _bounded(0, 4)


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


#: The examples at the end of ``--help``.
EXAMPLES = """\
examples:
  fastquant photo.png                        -> photo-fq256.png next to it
  fastquant *.png -k 64 --skip-if-larger     64 colours, keep only smaller files
  fastquant photo.jpg -k 32 -o small.png --preview side.png --preview-diff
  fastquant photos/ -r --out-dir small/ --speed 8
  fastquant photo.png --quality 65-80 --dither fs
  fastquant - < in.png > out.png             stdin to stdout (PNG)
  curl -s URL | fastquant - -o out.png -k 64
  fastquant in.png -o - | base64             the image alone on stdout
"""

_EXIT_CODES = (
    "Exit codes: 0 ok (also when some files of several were skipped by --skip-if-larger), 1 mixed "
    "failures, 2 usage, 3 unreadable input, 4 output not written, 5 output exists (use --force) or is "
    "the input, 6 timed out, 7 out of memory (or its worker died), 70 internal error, 97 over the byte "
    "budget (--max-bytes), 98 not smaller "
    "(--skip-if-larger, one file), 99 quality below MIN (--quality), 130 interrupted, 143 terminated "
    "(SIGTERM). Ctrl-C once lets the running files finish; twice stops at once."
)

#: What each ``--speed`` level does (see ``fastquant.fit.SPEEDS``).
SPEED_HELP = (
    "1 (slowest, lowest error) to 11 (fastest), as pngquant (default 4): fewer k-means "
    "iterations, a looser stop and fewer swap rounds as it grows (1: up to 300 iterations and 8 "
    "swap rounds; 4: 100 and 3; 7: 20 and none); from 8 up near colours are also merged into "
    "fewer cells first; 1-3 deflate PNGs with fastquant's own encoder (~9%% smaller, slower to "
    "write); 11 "
    "keeps Wu's starting boxes without k-means"
)


def build_parser():
    """The command line's argument parser (``--help`` prints its options, examples and exit codes)."""
    from . import __version__

    p = _Parser(
        prog="python -m fastquant",
        description="Compress images by k-means colour quantization (indexed PNG by default).\n"
        "Also installed as the command fastquant.",
        epilog=EXAMPLES + "\n" + textwrap.fill(_EXIT_CODES, 100, break_on_hyphens=False),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"fastquant {__version__}")
    p.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="image files (PNG, JPEG, GIF, ...) or folders of them; - alone reads stdin and writes stdout",
    )
    p.add_argument(
        "-k",
        "--colors",
        type=_colors,
        default=256,
        metavar="N",
        help="palette size, 1-65536 (default 256; above 256 PNGs are RGB)",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="output file (one input only); the extension picks the format; - is stdout (PNG)",
    )
    p.add_argument(
        "--ext",
        metavar="SUFFIX",
        help="suffix of outputs written next to inputs (default -fq<N>.png, N the -k asked for)",
    )
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
        help="run on a Dask cluster (needs the dask extra: pip install '.[dask]'); 'local' starts a LocalCluster",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resize", type=_size, metavar="WxH", help="resize to exactly W x H pixels")
    g.add_argument("--max-side", type=_positive, metavar="N", help="shrink so that the longer side is at most N pixels")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--speed", type=_speed, default=4, metavar="N", help=SPEED_HELP)
    p.add_argument(
        "--posterize",
        type=_posterize,
        default=0,
        metavar="N",
        help="0-4: palette values use only their top 8-N bits, as pngquant (4 for RGBA4444 targets)",
    )
    p.add_argument(
        "--contrast-weights",
        action="store_true",
        help="fit each palette on a map of local contrast: smooth areas, where banding shows, pull harder "
        f"than busy ones (as compress(weights='contrast'); still images of up to {2 * config.SAMPLE_PIXELS / 1e6:.1f} "
        "megapixels)",
    )
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
        "--optimize",
        action="store_true",
        help="pass each PNG output through oxipng at the end (lossless, a few percent smaller, about a "
        "second more per photo); needs the optional pyoxipng: pip install '.[optimize]'",
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
    p.add_argument("--json", action="store_true", help="one JSON object per file on stdout (not with -o -)")
    p.add_argument(
        "--preview", metavar="FILE", help="also write original and result side by side to FILE (one input only)"
    )
    p.add_argument("--preview-diff", action="store_true", help="add a difference panel (x4) and a caption to --preview")
    p.add_argument("--demo", action="store_true", help="compress a built-in generated image into the current folder")
    p.add_argument(
        "--precompile",
        action="store_true",
        help="compile the kernels of every feature into Numba's cache, then exit (once per install: "
        "Docker images, read-only deployments); -j sets the processes, -v lists each kernel",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("-v", "--verbose", action="store_true", help="stage timings; tracebacks on errors")
    return p
