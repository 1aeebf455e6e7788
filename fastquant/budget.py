"""A byte budget: the best picture whose PNG file fits in ``max_bytes`` (``--max-bytes``).

The search runs over the palette size k, from one histogram: every trial fits
a palette of k entries, maps the pixels and encodes the file for real, so that
what is kept is never larger than the budget.  The file's size grows with k
(more entries, more distinct symbols in the index stream), so the largest k
that fits is found by bisection on a log scale, as the ``quality`` target's
fewest colours are; the best of the trials that fit is kept.

Sizes are in bytes; :func:`parse_bytes` reads ``100k``, ``1.5M``, ``200KiB``:
``k``/``M``/``G`` are powers of 1000 (as file managers and web budgets count
"100 kB"), ``Ki``/``Mi``/``Gi`` powers of 1024.
"""

import math
import re

from . import config, metrics
from . import fit as fitting
from .errors import BudgetError, OptionError

_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "ki": 1024, "mi": 1024**2, "gi": 1024**3}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmg]i?)?\s*(b|bytes?)?\s*$", re.IGNORECASE)


def parse_bytes(text):
    """Bytes from a size such as ``"100000"``, ``"100k"``, ``"1.5M"``, ``"200KiB"``.

    Parameters
    ----------
    text : str
        A number, optionally followed by ``k``, ``M``, ``G`` (powers of 1000) or
        ``Ki``, ``Mi``, ``Gi`` (powers of 1024), case-insensitive, and an
        optional ``B``.

    Returns
    -------
    int
        The size rounded down to whole bytes, at least 1.

    Raises
    ------
    OptionError
        Not a size, or less than one byte.
    """
    m = _SIZE.match(str(text))
    if not m:
        raise OptionError(f"expected a size in bytes such as 100000, 100k or 1.5M, got {text!r}")
    n = math.floor(float(m.group(1)) * _UNITS[(m.group(2) or "").lower()])
    if n < 1:
        raise OptionError(f"a byte budget must be at least 1 byte, got {text!r}")
    return n


def check_max_bytes(max_bytes):
    """``max_bytes`` checked: None, or a whole number of bytes >= 1 (a size string is read by
    :func:`parse_bytes`).
    """
    if max_bytes is None:
        return None
    if isinstance(max_bytes, str):
        return parse_bytes(max_bytes)
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) and not hasattr(max_bytes, "__index__"):
        raise OptionError(f"max_bytes must be a whole number of bytes or a size such as '100k', got {max_bytes!r}")
    if int(max_bytes) < 1:
        raise OptionError(f"max_bytes must be at least 1, got {max_bytes!r}")
    return int(max_bytes)


class Trial:
    """A palette size tried: its fit, its mapping, the estimated size of its indexed PNG and,
    once asked for, the real one.

    Parameters
    ----------
    fit : object
        The palette fitted (``fit.palette``).
    mapped : tuple
        (palette, (H, W) indices, squared error, ...) of the mapping.
    icc : bytes or None
        The ICC profile the file embeds.
    rd : float
        The ``rd_lambda`` of the mapping.
    level : int, optional
        The deflate of the real file (see :func:`fastquant.png.png_indexed`).
    optimize : bool
        The real file gets oxipng's lossless pass (:func:`fastquant.optimize.lossless`).
    """

    def __init__(self, fit, mapped, icc, rd=0.0, level=None, optimize=False):
        from .png import png_indexed

        self.fit, self.mapped, self.icc, self.rd, self.level = fit, mapped, icc, rd, level
        self.optimize = optimize
        self.estimate = len(png_indexed(mapped[1], mapped[0], icc, level=config.BUDGET_ESTIMATE_LEVEL))
        self._nbytes = None

    def nbytes(self):
        """Size of the indexed PNG (encoded once, at the real level)."""
        from .png import png_indexed

        if self._nbytes is None:
            data = png_indexed(self.mapped[1], self.mapped[0], self.icc, level=self.level)
            if self.optimize:
                from .optimize import lossless

                data = lossless(data)
            self._nbytes = len(data)
        return self._nbytes


def search(trial, n_colors, max_bytes, name, *, first=None):
    """The trial of the largest palette size up to ``n_colors`` whose file fits in ``max_bytes``.

    The bisection runs on cheap estimates of the file size (a faster deflate),
    scaled by how far the estimate of ``n_colors`` was from its real size;
    the trial kept is then encoded for real, and when the estimate was too
    optimistic the bisection goes on below it with real sizes.

    Parameters
    ----------
    trial : callable
        ``trial(k)`` fits and maps with a palette of at most k entries; returns an
        object with ``estimate`` (an estimate of the file's size in bytes) and
        ``nbytes()`` (the real size, encoded when first asked).
    n_colors : int
        The largest palette size tried (k >= 1).
    max_bytes : int
    name : str
        The source's name, for the error message.
    first : object, optional
        ``trial(n_colors)`` when the caller already has it.

    Returns
    -------
    object
        A trial whose real size is at most ``max_bytes``: the one of the largest
        k found (the sizes are not strictly monotonic in k: a larger k that
        also fits may be missed, never a file that does not fit kept).

    Raises
    ------
    BudgetError
        Even the smallest palette tried (2 entries, or ``n_colors`` when smaller) does not fit.
    """
    top = trial(n_colors) if first is None else first
    if top.nbytes() <= max_bytes:
        return top
    scale = top.nbytes() / max(top.estimate, 1)
    lo = min(2, n_colors)
    smallest = trial(lo) if lo < n_colors else top
    if smallest.nbytes() > max_bytes:
        raise BudgetError(
            f"{name}: even {lo} colours take {smallest.nbytes()} bytes, more than the budget of"
            f" {max_bytes} bytes; nothing written"
        )

    def bisect(lo, best, hi, fits):  # lo fits, hi does not
        above = None
        while hi - lo > 1:
            mid = min(max(int(round(math.sqrt(lo * hi))), lo + 1), hi - 1)
            t = trial(mid)
            if fits(t):
                lo, best = mid, t
            else:
                hi, above = mid, t
        return lo, best, hi, above

    lo, best, hi, above = bisect(lo, smallest, n_colors, lambda t: t.estimate * scale <= max_bytes)
    if best.nbytes() > max_bytes:  # the estimate was optimistic: real sizes from here
        return bisect(min(2, n_colors), smallest, lo, lambda t: t.nbytes() <= max_bytes)[1]
    if above is None:
        hi, above = n_colors, top
    elif above.nbytes() <= max_bytes:  # the estimate was pessimistic there
        lo, best, hi, above = hi, above, n_colors, top
    return refine(trial, lo, best, hi, above, max_bytes)


def refine(trial, lo, best, hi, above, max_bytes):
    """The trial of the largest k between ``lo`` (its trial ``best`` fits) and ``hi`` (``above``
    does not) whose real size fits, closing in by interpolation on the real sizes, at most
    ``config.BUDGET_REFINE_STEPS`` more trials (estimates can be off by a few percent, as the
    layout of the file, :func:`fastquant.png.png_indexed`, changes with k).
    """
    for _ in range(config.BUDGET_REFINE_STEPS):
        if hi - lo <= 1:
            break
        low, high = best.nbytes(), above.nbytes()
        guess = lo + (max_bytes - low) * (hi - lo) / max(high - low, 1)
        mid = min(max(int(guess), lo + 1), hi - 1)
        t = trial(mid)
        if t.nbytes() <= max_bytes:
            lo, best = mid, t
        else:
            hi, above = mid, t
    return best


def fit_within(fit, mapping, first_fit, k_max, max_bytes, rd_lambda, icc, name, lap, *, level=None, optimize=False):
    """The :class:`Trial` of the largest palette up to ``k_max`` whose indexed PNG fits in ``max_bytes``.

    ``first_fit`` mapped to its nearest entries is kept when its file fits;
    otherwise every trial is mapped with ``rd_lambda``.

    Parameters
    ----------
    fit : callable
        ``fit(k)``: a palette of at most k entries fitted (the histogram is reused).
    mapping : callable
        ``mapping(fitted, rd_lambda)``: the pixels mapped, as (palette, indices, squared error, ...).
    first_fit : object
        ``fit(k_max)``, already made.
    k_max : int
    max_bytes : int
    rd_lambda : float
        Strength of the rate-distortion-aware mapping of every trial.
    icc : bytes or None
        The ICC profile the file embeds.
    name : str
        The source's name, for messages.
    lap : callable
        ``lap(stage)`` times the stages.
    level : int, optional
        The deflate the file is written with (see :func:`fastquant.png.png_indexed`).
    optimize : bool
        Real sizes are those after oxipng's lossless pass (``compress(optimize=True)``).

    Raises
    ------
    BudgetError
        Even 2 colours do not fit.
    """

    def trial(k, f=None, rd=rd_lambda):
        f = fit(k) if f is None else f
        t = Trial(f, mapping(f, rd), icc, rd, level, optimize)
        lap("encode")
        return t

    if rd_lambda:  # the nearest mapping is the best picture of k_max colours: kept when it fits
        first = trial(k_max, first_fit, 0.0)
        if first.nbytes() <= max_bytes:
            return first
    kept = search(trial, k_max, max_bytes, name, first=trial(k_max, first_fit))
    lap("encode")
    return kept


def picture_score(original, kept):
    """How good the picture of a kept :class:`Trial` is, to choose among budgets' candidates:
    PSNR plus ``config.BUDGET_SSIM_WEIGHT`` times SSIM in decibels, ``-10 log10(1 - SSIM)``
    (:func:`fastquant.metrics.ssim`, on luma), both higher for a better picture.

    Parameters
    ----------
    original : (H, W, 3) uint8 ndarray
    kept : Trial

    Returns
    -------
    float
    """
    palette, indices, sq_error = kept.mapped[:3]
    psnr = metrics.psnr_from_mse(sq_error / original.size)
    ssim = metrics.ssim_indexed(original, palette, indices)  # the same floats, no (H, W, 3) copy
    return psnr + config.BUDGET_SSIM_WEIGHT * -10.0 * math.log10(max(1.0 - ssim, 1e-10))


def fit_prepared(
    p, fit, k_max, km, space, map_fit, rd_lambda, max_bytes, name, lap, fixed=None, png_level=None, optimize=False
):
    """:func:`fit_within` on an image prepared by :func:`fastquant.prepare.prepare` (or a large one).

    ``fit``: the fit of ``k_max`` colours; ``map_fit(f, rd)``: the pixels mapped
    with fit ``f`` (``fastquant.api._map`` with the run's dithering);
    ``fixed``: fixed colours, in every palette tried.
    """
    codes = getattr(p, "codes", None)
    codes = None if codes is None else codes.copy()  # mapping a large graphic consumes its codes

    def mapping(f, rd):
        if codes is not None:
            p.codes = codes.copy()
        return map_fit(f, rd)

    return fit_within(
        lambda k: fitting.fit(p, max(k, 0 if fixed is None else len(fixed)), km, space, lap, fixed),
        mapping,
        fit,
        k_max,
        max_bytes,
        rd_lambda,
        p.icc,
        name,
        lap,
        level=png_level,
        optimize=optimize,
    )
