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
    """A palette size tried with one mapping: its fit, a cheap estimate of its indexed PNG's size
    and, once asked for, the real size.

    The pixels mapped are not kept (a search makes many trials): :attr:`mapped` maps them again
    when asked for (the same indices: mapping is deterministic).

    Parameters
    ----------
    k : int
        The palette size asked for (the palette may have fewer entries: unused ones are dropped).
    fit : object
        The palette fitted (``fit.palette``).
    remap : callable
        ``remap(fit, rd)``: (palette, (H, W) indices, squared error, ...) of the mapping.
    icc : bytes or None
        The ICC profile the file embeds.
    rd : float
        The ``rd_lambda`` of the mapping.
    level : int, optional
        The deflate of the real file (see :func:`fastquant.png.png_indexed`).
    optimize : bool
        The real file gets oxipng's lossless pass (:func:`fastquant.optimize.lossless`).
    original : (H, W, 3) uint8 ndarray, optional
        The image, to score the picture by (:func:`picture_score`); None: not scored.
    setting : int
        Which of a search's fits (luma stretches) the palette is from.
    """

    def __init__(self, k, fit, remap, icc, rd=0.0, level=None, optimize=False, original=None, setting=0):
        self.k, self.fit, self.remap, self.icc, self.rd, self.level = k, fit, remap, icc, rd, level
        self.optimize, self.setting, self.original = optimize, setting, original
        self._nbytes = self._judged = None

    @property
    def mapped(self):
        """(palette, (H, W) indices, squared error, ...) of the mapping."""
        return self.remap(self.fit, self.rd)

    def _judge(self):
        """(estimate, layout, score), made once from one mapping."""
        if self._judged is None:
            from .png import estimate

            mapped = self.mapped
            size, layout = estimate(mapped[1], mapped[0], self.icc, level=self.level)
            self._judged = size, layout, None if self.original is None else picture_score(self.original, mapped)
        return self._judged

    @property
    def estimate(self):
        """Estimated size of the file (:func:`fastquant.png.estimate`)."""
        return self._judge()[0]

    @property
    def layout(self):
        """The layout of the file (:func:`fastquant.png.estimate`)."""
        return self._judge()[1]

    @property
    def score(self):
        """:func:`picture_score` of the picture, or None without an original."""
        return self._judge()[2]

    def nbytes(self):
        """Size of the indexed PNG (encoded once, at the real level)."""
        from .png import png_indexed

        if self._nbytes is None:
            palette, indices = self.mapped[:2]
            data = png_indexed(indices, palette, self.icc, level=self.level)
            if self.optimize:
                from .optimize import lossless

                data = lossless(data)
            self._nbytes = len(data)
        return self._nbytes


class Search:
    """The largest palettes whose files fit a budget, for several mappings, on estimated sizes.

    Every trial's size is estimated (:func:`fastquant.png.estimate`: zlib at a fast level on
    the layout the real encoder would write) and scaled by the ratio of the real size to the
    estimate of the nearest palette size already encoded for real in the same layout (the
    ratio moves by a few tenths of a percent from one k to the next, by percents between the
    layouts).  Only the trial finally kept, and those tried before it whose real file turned
    out too large, are encoded for real (the real encoder is slow).

    Parameters
    ----------
    fits : list of callable
        ``fits[s](k)``: a palette of at most k entries fitted for setting s (one luma stretch).
    remap : callable
        ``remap(fit, rd)``: the pixels mapped.
    k_max : int
    max_bytes : int
    name : str
        The source's name, for the error message.
    trial : callable
        ``trial(k, fit, rd, setting)``: a :class:`Trial` (or an object with ``k``, ``rd``,
        ``setting``, ``estimate``, ``layout``, ``score`` and ``nbytes()``).
    """

    def __init__(self, fits, k_max, max_bytes, name, trial):
        self.fits, self.k_max, self.max_bytes, self.name, self.make = fits, k_max, max_bytes, name, trial
        self.bottom = min(2, k_max)
        self.trials = {}  # (setting, k, rd) -> trial
        self._fitted = {}  # (setting, k) -> fit
        self.real = []  # trials encoded for real

    def trial(self, s, k, rd, fit=None):
        """The trial of setting ``s``, palette size ``k``, mapping ``rd`` (made once)."""
        key = (s, k, rd)
        if key not in self.trials:
            if (s, k) not in self._fitted:
                self._fitted[s, k] = self.fits[s](k) if fit is None else fit
            self.trials[key] = self.make(k, self._fitted[s, k], rd, s)
        return self.trials[key]

    def real_size(self, t):
        """``t``'s real size (encoded once; its ratio to the estimate then scales the others)."""
        if t._nbytes is None:
            self.real.append(t)
        return t.nbytes()

    def predict(self, t):
        """``t``'s real size when known, else its estimate scaled by the ratio of the encoded trial
        of the nearest palette size in the same layout (any layout when none; 1 when none at all).
        """
        if t._nbytes is not None:
            return t._nbytes
        near = [r for r in self.real if r.layout == t.layout] or self.real
        if not near:
            return t.estimate
        r = min(near, key=lambda r: (abs(r.k - t.k), r.setting != t.setting, abs(r.rd - t.rd), -r.k))
        return t.estimate * r.nbytes() / max(r.estimate, 1)

    def fits_budget(self, t):
        """Whether ``t``'s file is predicted to fit: when no file of its layout was encoded yet,
        within ``config.BUDGET_LAYOUT_DOUBT`` of the budget (its first encode tells).
        """
        known = t._nbytes is not None or any(r.layout == t.layout for r in self.real)
        return self.predict(t) <= self.max_bytes * (1.0 if known else 1.0 + config.BUDGET_LAYOUT_DOUBT)

    def boundary(self, s, rd, k0):
        """The largest palette size of setting ``s`` mapped with ``rd`` whose file is predicted to fit,
        searched from ``k0``: by the secant of the predicted sizes against log k once a size above and
        one below the budget are known (bisection on log k when one side does not move), by
        extrapolation with ``config.BUDGET_SIZE_SLOPE`` before.

        Raises
        ------
        BudgetError
            Even the smallest palette (2 entries, or k_max when smaller) does not fit, for real.
        """
        lo = hi = None  # predicted to fit / not to fit
        k, moved = k0, []
        for _ in range(config.BUDGET_SEARCH_STEPS):
            t = self.trial(s, k, rd)
            if k == self.bottom and not self.fits_budget(t) and self.real_size(t) > self.max_bytes:
                raise BudgetError(
                    f"{self.name}: even {k} colours take {t.nbytes()} bytes, more than the budget of"
                    f" {self.max_bytes} bytes; nothing written"
                )
            if self.fits_budget(t):
                lo = k
                moved.append("lo")
            else:
                hi = k
                moved.append("hi")
            top = self.k_max if hi is None else hi - 1
            bottom = self.bottom if lo is None else lo + 1
            if top < bottom or lo is not None and hi is not None and hi - lo <= lo * config.BUDGET_K_TOLERANCE:
                break
            k = self._next(s, rd, lo, hi, moved, bottom, top)
        if lo is None:  # out of steps above the bottom (only on sizes far from log-linear)
            return self.boundary(s, rd, self.bottom)
        return lo

    def _next(self, s, rd, lo, hi, moved, bottom, top):
        """The next palette size to try, between ``bottom`` and ``top``."""
        B = self.max_bytes
        if lo is not None and hi is not None:
            if len(moved) >= 3 and moved[-1] == moved[-2] == moved[-3]:  # one side stuck: bisect
                guess = math.sqrt(lo * hi)
            else:
                p_lo, p_hi = self.predict(self.trial(s, lo, rd)), self.predict(self.trial(s, hi, rd))
                f = (B - p_lo) / max(p_hi - p_lo, 1.0)
                guess = math.exp(math.log(lo) + min(max(f, 0.0), 1.0) * (math.log(hi) - math.log(lo)))
        else:
            k = hi if lo is None else lo
            p = self.predict(self.trial(s, k, rd))
            guess = k * 2.0 ** ((B / p - 1.0) / config.BUDGET_SIZE_SLOPE)
        return min(max(int(round(guess)), bottom), top)

    def choose(self, rank):
        """The trial of the highest ``rank`` among those predicted to fit whose real file fits.

        The best trial predicted to fit is encoded for real until the best is one encoded
        (each real size rescales the predictions of its neighbours, up or down); one whose
        file does not fit has the boundary of its mapping searched again from it.  After
        ``config.BUDGET_CONFIRMS`` encodes, the best of those that fit is kept.
        """
        encodes = 0
        while True:
            left = [t for t in self.trials.values() if self.fits_budget(t)]
            if encodes >= config.BUDGET_CONFIRMS:
                left = [t for t in left if t._nbytes is not None] or left
            best = max(left, key=rank)
            if best._nbytes is not None:
                return best
            encodes += 1
            if self.real_size(best) > self.max_bytes:
                self.boundary(best.setting, best.rd, best.k)


def fit_within(
    fits,
    firsts,
    remap,
    k_max,
    max_bytes,
    rd_lambdas,
    icc,
    name,
    lap,
    *,
    level=None,
    optimize=False,
    original=None,
    rd_steps=(),
):
    """The :class:`Trial` of the best picture whose indexed PNG fits in ``max_bytes``.

    Setting 0's full palette mapped to its nearest entries is kept when its file fits.
    Otherwise every setting s (a fit, mapped with ``rd_lambdas[s]``) gets the largest palette
    predicted to fit; with an ``original`` to score by, the best of them is searched again
    with its mapping's lambda times each of ``rd_steps`` (a stronger RD mapping, the bytes
    it saves spent on more colours).  The trial kept is the best by :func:`picture_score` (the largest palette
    without ``original``) whose real file fits.

    Parameters
    ----------
    fits : list of callable
        ``fits[s](k)``: a palette of at most k entries fitted (the histogram is reused).
    firsts : list
        ``fits[s](k_max)`` when already made, or None.
    remap : callable
        ``remap(fitted, rd_lambda)``: the pixels mapped, as (palette, indices, squared error, ...).
    k_max : int
    max_bytes : int
    rd_lambdas : list of float
        Strength of the rate-distortion-aware mapping of every setting.
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
    original : (H, W, 3) uint8 ndarray, optional
        The image, to choose the best picture by.
    rd_steps : sequence of float
        Factors of the best setting's lambda searched too (with ``original``).

    Raises
    ------
    BudgetError
        Even 2 colours do not fit.
    """

    def trial(k, f, rd, s):
        t = Trial(k, f, remap, icc, rd, level, optimize, original, s)
        lap("encode")
        return t

    search = Search(fits, k_max, max_bytes, name, trial)
    first = search.trial(0, k_max, 0.0, firsts[0])
    if search.real_size(first) <= max_bytes:  # the nearest mapping is the best picture of k_max colours
        lap("encode")
        return first
    searched = {}  # (setting, rd) -> the largest k predicted to fit
    for s, rd in enumerate(rd_lambdas):
        k0 = k_max if not searched else min(searched.values())
        search.trial(s, k0, rd, firsts[s] if k0 == k_max else None)
        searched[s, rd] = search.boundary(s, rd, k0)
        if s == 0:  # one real size near the boundary: the ratio to the estimates drifts with k
            search.real_size(search.trial(s, searched[s, rd], rd))
            searched[s, rd] = search.boundary(s, rd, searched[s, rd])
    if original is not None and rd_steps:
        best = max((search.trial(s, k, rd) for (s, rd), k in searched.items()), key=lambda t: t.score)
        for step in rd_steps:
            searched[best.setting, best.rd * step] = search.boundary(best.setting, best.rd * step, best.k)

    def rank(t):
        return (t.score, t.k) if original is not None else (t.setting == 0, t.k, -search.predict(t))

    kept = search.choose(rank)
    for _ in range(config.BUDGET_ROUNDS):  # the real sizes now known move the boundaries
        moved = False
        for (s, rd), k in searched.items():
            searched[s, rd] = search.boundary(s, rd, k)
            moved |= searched[s, rd] != k
        if not moved:
            break
        kept = search.choose(rank)
    lap("encode")
    return kept


def picture_score(original, mapped):
    """How good a picture is, to choose among budgets' candidates:
    PSNR plus ``config.BUDGET_SSIM_WEIGHT`` times SSIM in decibels, ``-10 log10(1 - SSIM)``
    (:func:`fastquant.metrics.ssim`, on luma), both higher for a better picture.

    Parameters
    ----------
    original : (H, W, 3) uint8 ndarray
    mapped : tuple
        (palette, (H, W) indices, squared error summed over pixels and channels, ...).

    Returns
    -------
    float
    """
    palette, indices, sq_error = mapped[:3]
    psnr = metrics.psnr_from_mse(sq_error / original.size)
    ssim = metrics.ssim_indexed(original, palette, indices)  # the same floats, no (H, W, 3) copy
    return psnr + config.BUDGET_SSIM_WEIGHT * -10.0 * math.log10(max(1.0 - ssim, 1e-10))


def fit_prepared(
    p, fits, k_max, space, map_fit, rd_lambdas, max_bytes, name, lap, png_level=None, optimize=False, **kw
):
    """:func:`fit_within` on an image prepared by :func:`fastquant.prepare.prepare` (or a large one).

    ``fits``: per setting, (the fit of ``k_max`` colours or None, the k-means options
    :func:`fastquant.fit.fit` takes, fixed colours or None); ``map_fit(f, rd)``: the pixels
    mapped with fit ``f`` (``fastquant.api._map`` with the run's dithering); ``kw``:
    ``original`` and ``rd_steps`` of :func:`fit_within`.
    """
    codes = getattr(p, "codes", None)
    codes = None if codes is None else codes.copy()  # mapping a large graphic consumes its codes

    def remap(f, rd):
        if codes is not None:
            p.codes = codes.copy()
        return map_fit(f, rd)

    def fitter(km, fixed):
        return lambda k: fitting.fit(p, max(k, 0 if fixed is None else len(fixed)), km, space, lap, fixed)

    return fit_within(
        [fitter(km, fixed) for _, km, fixed in fits],
        [first for first, _, _ in fits],
        remap,
        k_max,
        max_bytes,
        rd_lambdas,
        p.icc,
        name,
        lap,
        level=png_level,
        optimize=optimize,
        **kw,
    )
