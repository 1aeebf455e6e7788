"""``compress()``: options checked (:mod:`fastquant.options`), the image read and counted
(:mod:`fastquant.prepare`), the palette fitted or given, the pixels mapped; and its result type.
"""

from __future__ import annotations

import math
import os
import time
from typing import IO, TYPE_CHECKING, Any, Literal, Union

import numpy as np

from . import colorspace as _cs
from . import config, io, large, metrics, options, remap
from . import fit as fitting
from .errors import OptionError, QualityError
from .fit import MAX_COLORS, Colors  # noqa: F401  (MAX_COLORS: imported from here too)
from .frames import Frames
from .prepare import prepare
from .result import Quantized, Stats

if TYPE_CHECKING:
    import numpy.typing as npt
    import PIL.Image

    from . import animation

# Imported where used, as a run needs them (start-up): animation (animated inputs), budget
# (max_bytes), dither, rdmap (rd_lambda).

#: What :func:`compress` reads: a path, a file's bytes, a binary file object, an array or a PIL image.
ImageSource = Union[
    str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes], "npt.NDArray[Any]", "PIL.Image.Image"
]


def auto_dither_strength(n_colors: int) -> float:
    """Default Floyd-Steinberg strength for a palette of ``n_colors`` entries.

    0.2 from 128 colours up, rising to 1.0 at 8 colours and fewer.  With many
    colours the quantization error is small and full-strength diffusion adds
    more noise than it removes banding, while a fifth of it still breaks up
    bands (and costs fewer bytes).  Few colours band visibly, so the
    strength grows as the palette shrinks.
    """
    return float(np.clip(0.2 + 0.2 * (7 - np.log2(max(n_colors, 1))), 0.2, 1.0))


def _space(colorspace, channels):
    """The point space of a ``colorspace`` option: RGBA in sRGB is clustered and
    mapped in ``"composites"`` space (:func:`fastquant.colorspace.composites`:
    colour differences weighted by alpha, as over black and over white alike).
    """
    return "composites" if colorspace == "rgb" and channels == 4 else colorspace


def _map(p, f, space, dither, strength, lap, rd_lambda=0.0):
    """Indices of every pixel for a fitted palette (``rd_lambda > 0``: rate-distortion-aware,
    :func:`fastquant.rdmap.rd_map`, where every pixel's colour is known).

    Returns (palette, (H, W) indices, squared error summed over pixels and
    channels, the index of every histogram colour or None when pixels of
    one colour may get different entries (dithered) or there is no full
    histogram (large images), and the alpha figures measured while mapping
    a large RGBA image or None (see :func:`fastquant.large.map_rows`)).
    """
    h, w = p.h, p.w
    alpha = None
    palette = f.palette
    if dither:
        # Dithering replaces the mapping: every pixel is mapped on its own.
        # Entries the dithered image does not use are dropped (unless kept:
        # fixed or given colours); the others keep their order, so that
        # dithering with the final palette gives the same indices (ties go
        # to the lowest index).
        from . import dither as _dither

        fn = _dither.dither_fs if dither == "fs" else _dither.dither_ordered
        idx, sq_error = fn(p.flat, w, palette, strength)
        used = np.bincount(idx, minlength=len(palette))
        order = np.flatnonzero((used > 0) | f.keep)
        palette = np.ascontiguousarray(palette[order])
        lut = np.empty(len(used), np.uint8 if len(order) <= 256 else np.uint16)
        lut[order] = np.arange(len(order))
        indices = remap.apply(lut, idx, (h, w))
        per_color = None
    elif isinstance(p, large.Prepared) and p.codes is None:
        indices, sq_error, alpha = large.map_rows(p, palette, space)
        per_color = None
    else:  # every histogram colour's entry, then each pixel's through its colour index
        lut = np.empty(f.n_entries, np.uint8 if len(palette) <= 256 else np.uint16)
        lut[f.order] = np.arange(len(f.order))
        per_color = lut[f.labels]
        sq_error = f.plain_sq
        if rd_lambda and p.inverse is not None:
            pts, ents = (
                (_cs.composites(p.colors), _cs.composites(palette)) if space == "composites" else (p.colors, palette)
            )
            if f.stretch != 1.0:  # measured where the nearest entries were found
                pts, ents = _cs.stretch_luma(pts, f.stretch), _cs.stretch_luma(ents, f.stretch)
            from . import rdmap

            indices, sq_error = rdmap.rd_map(p.inverse, (h, w), pts, ents, per_color, rd_lambda, p.colors, palette)
            per_color = None  # pixels of one colour may now have different entries
        elif p.inverse is not None:
            indices = remap.apply(per_color, p.inverse, (h, w))
        else:  # a large graphic's codes (at most 256 colours), made while counting: mapped in place
            indices, p.codes = p.codes, None
            if not np.array_equal(per_color, np.arange(len(per_color))):  # its palette may be its colours
                remap.apply_in_place(per_color, indices)
    lap("remap")
    return palette, indices, float(sq_error), per_color, alpha


def compress(
    image: ImageSource,
    n_colors: int = 256,
    *,
    resize: None | int | tuple[int, int] = None,
    seed: int = 0,
    speed: int = 4,
    max_iter: int | None = None,
    tol: float | None = None,
    init: Literal["wu", "mediancut", "k-means++"] = "wu",
    swap_rounds: int | None = None,
    posterize: int = 0,
    ssim: bool = False,
    max_pixels: int | None = io.DEFAULT_MAX_PIXELS,
    dither: Literal["fs", "ordered", "none"] | None = None,
    dither_strength: float | None = None,
    colorspace: Literal["rgb", "oklab"] = "rgb",
    quality: None | float | tuple[float, float] = None,
    keep_metadata: bool = False,
    allow_truncated: bool = False,
    max_bytes: None | int | str = None,
    rd_lambda: float | None = None,
    luma_stretch: float | None = None,
    optimize: bool = False,
    palette: Colors | None = None,
    fixed_colors: Colors | None = None,
    weights: npt.ArrayLike | Literal["contrast"] | None = None,
    max_frames: int | None = io.DEFAULT_MAX_FRAMES,
    frame_palettes: bool = False,
) -> Quantized | animation.Animation:
    """Quantize an image, or every frame of an animation, to at most ``n_colors`` colours with weighted k-means.

    Parameters
    ----------
    image : str, os.PathLike, bytes, binary file object, ndarray or PIL.Image.Image
        A file in one of :data:`fastquant.io.READ_FORMATS` (every frame of an animated GIF, APNG or
        WebP, see Returns; grey, palette, 16-bit and CMYK become RGB, transparency becomes RGBA,
        EXIF orientation is applied),
        its bytes, an (H, W), (H, W, 3) or (H, W, 4) array: uint8 as is,
        bool as 0/255, uint16 scaled by 255/65535, floats in [0, 1] scaled
        by 255, other integers in [0, 255]; or a Pillow image in any mode,
        normalised by the same rules except that its EXIF orientation is
        not applied (as in Pillow; see :func:`fastquant.io.open_image`).
    n_colors : int
        Palette size, 1 to 65536 (with ``quality``: the largest allowed).  An image of at
        most ``n_colors`` colours is kept exactly, its colours the palette, whatever
        ``quality``, ``dither`` or ``colorspace`` say: a re-run on an output changes no pixel.
    resize : None, int or (int, int)
        None keeps the size; an int is the maximum side (aspect ratio kept,
        never enlarged); (width, height) is exact.  Area averaging shrinks,
        nearest sampling grows.
    seed : int
        Random seed (used by ``init="k-means++"``); results are reproducible.
    speed : int
        1 (slowest, lowest error) to 11 (fastest), as pngquant's ``--speed``:
        each level sets ``max_iter``, ``tol`` and ``swap_rounds`` (and, from 8
        up, merges near colours into fewer cells before the k-means), see
        :data:`fastquant.fit.SPEEDS`.  4, the default, was chosen on photos
        for a lower error than scikit-learn's ``KMeans`` on all pixels, in few
        iterations.  At 1-3 (and with ``max_bytes`` below 10) PNGs are
        deflated by fastquant's own encoder (~9% smaller, ~10x the write time;
        ``result.png_level`` None), else by zlib at level 9.
    max_iter, tol, init, swap_rounds
        K-means options, see :func:`fastquant.kmeans` (which also
        over-relaxes Lloyd's update by default); those given override what
        ``speed`` sets.
    posterize : int
        0 to 4: fitted palette values use only their top ``8 - posterize``
        bits (:func:`fastquant.fit.posterize`), as pngquant's ``--posterize``
        (4 for RGBA4444 targets).  Pixels are mapped to the posterized palette.
    ssim : bool
        Also compute SSIM (:func:`fastquant.metrics.ssim`; a Numba kernel).
    max_pixels : int or None
        Refuse larger images before decoding them.
    allow_truncated : bool
        Quantize what there is of a file whose image data ends early, instead
        of raising InputError (see :func:`fastquant.io.read_image`).
    dither : {None, "fs", "ordered"}
        Map pixels with Floyd-Steinberg error diffusion (serpentine, error
        clamped to +-32 levels per channel) or an 8x8 Bayer matrix scaled to
        the palette's typical spacing, instead of to their nearest entry.
        The palette is fitted the same way; ``stats`` measure the dithered
        result.  Dithering trades PSNR for smoother gradients (see README).
    dither_strength : float in [0, 1] or None
        Fraction of the error diffused, or of the Bayer offsets; 0 maps each
        pixel to its nearest entry.  None: :func:`auto_dither_strength` of
        the palette size (0.2 at 128 colours and more, 1.0 at 8 and fewer).
    colorspace : {"rgb", "oklab"}
        Where the palette is fitted and colours are mapped to their nearest
        entry: sRGB values, or OKLab (perceptual; alpha a 4th coordinate).
        In ``"rgb"``, RGB palettes are fitted with luma differences weighted
        above chroma differences (:func:`fastquant.fit.luma_stretch`, more so for small
        palettes) and mapped to the nearest entry in sRGB.  Images with
        alpha in ``"rgb"`` are clustered and mapped with points whose
        distances are the mean of the distances over black and over white
        (:func:`fastquant.colorspace.composites`): a colour difference costs
        in proportion to its visibility on either background; palette
        entries are straight RGBA.  Dithering diffuses and searches in
        (straight) sRGB either way.
    quality : None, number or (min, max)
        A pngquant-style target on the 0-100 scale of
        :func:`fastquant.metrics.quality_from_mse` (pngquant's curve on our
        MSE; 80 is about 37.3 dB PSNR, 60 about 33.9 dB): the fewest colours
        (up to ``n_colors``) whose result reaches ``max``, found by
        bisection over k on a log scale; if ``n_colors`` colours cannot
        reach ``max``, the ``n_colors`` result, unless it is below ``min``:
        then :class:`QualityError`.  A single number is ``(0, max)``.
        Quality is judged before dithering, as pngquant does (``stats``
        still measure the dithered result); for images with alpha, on the
        premultiplied values (see ``Stats.quality``).
    keep_metadata : bool
        Keep the input's ICC profile (``result.icc_profile``), written into
        PNG outputs by ``save``/``encode``.  Nothing else is kept.
    max_bytes : None, int or str
        A byte budget for the indexed PNG (``encode(".png")``, ``save`` to a
        ``.png``), or a size such as ``"100k"``: the largest palette up to
        ``n_colors`` (at most 256) whose file fits (:mod:`fastquant.budget`).
        With ``quality``: the fewest colours reaching ``max`` when that file
        fits, else the best that fits, which must reach ``min``.
    rd_lambda : None or float >= 0
        Rate-distortion-aware mapping (:mod:`fastquant.rdmap`): a pixel takes its
        left or upper neighbour's entry when the extra squared error is below
        ``rd_lambda`` times the price of a new symbol.  None: 0 (nearest), or
        ``config.BUDGET_RD_LAMBDA`` with ``max_bytes``.  Not with dithering; not
        on images mapped strip by strip (over ``2 * config.SAMPLE_PIXELS`` pixels).
    luma_stretch : None or float > 0
        RGB images in ``"rgb"``: the palette is fitted *and* pixels are mapped to
        their nearest entry with the BT.601 luma axis of sRGB lengthened by this
        factor (:func:`fastquant.colorspace.stretch_luma`; 1 is plain sRGB), so
        that a luma error costs more than a chroma error of the same size: SSIM
        (on luma) rises, PSNR (over R, G, B) falls.  None: fitted with
        :func:`fastquant.fit.luma_stretch` of the palette size and mapped in
        sRGB, or, with ``max_bytes``, ``config.BUDGET_LUMA_STRETCH`` for both.
        No effect on other images or colour spaces; images mapped strip by strip
        (over ``2 * config.SAMPLE_PIXELS`` pixels) and dithering map in sRGB.
    optimize : bool
        PNGs written from the result (``encode``, ``save``) get a last lossless
        pass by oxipng (:mod:`fastquant.optimize`; needs the optional pyoxipng,
        the ``optimize`` extra, else OptionError): a few percent fewer
        bytes, about a second more per photo.  A byte budget then counts the
        file after the pass (more colours fit; each real size tried costs the
        pass).
    palette : fastquant.Palette, (k, 3|4) array_like or sequence of hex str, optional
        Map onto these colours instead of fitting a palette (``n_colors`` is
        then not used): each pixel gets its nearest entry (or a dithered one);
        the result's palette is this one, every entry in its order, even
        those no pixel uses.  An RGB image with translucent entries is
        mapped as opaque RGBA; opaque RGBA entries on an RGB image are RGB.
    fixed_colors : fastquant.Palette, (f, 3|4) array_like or sequence of hex str, optional
        Colours that are in the palette exactly (``"ff0000"``, ``"#00ff00"``,
        ``"#ff000080"`` with alpha, or rows of 0..255): the other
        ``n_colors - f`` entries are fitted around them by the k-means; they
        are kept even when no pixel uses them.  Duplicates count once; more
        than ``n_colors`` is an OptionError.
    weights : (H, W) array_like of float or "contrast", optional
        Importance map (libimagequant's): every pixel counts this many times
        in the histogram the palette is fitted on, so that heavier areas (a
        face, a logo) get more and closer entries; 0 makes a pixel not pull
        at all (it is still mapped).  Shape of the image as read (before
        ``resize``, which resizes the map alike); only the relative values
        matter.  ``stats`` and quality targets still count every pixel
        once.  Very large images weigh their even sample of pixels.
        ``"contrast"``: an adaptive map from local contrast,
        :func:`fastquant.importance.contrast_map` of the (resized) image:
        smooth areas, where banding shows, pull harder than busy ones, where
        the error hides; SSIM rises for a little PSNR (see README).  Images
        up to ``2 * config.SAMPLE_PIXELS`` pixels (else OptionError).
    max_frames : int or None
        Refuse animations of more frames, from their headers, before decoding
        them; ``max_pixels`` then counts the pixels of every frame.
    frame_palettes : bool
        Animations: fit a palette for each frame on its own, instead of one
        palette for every frame (``fixed_colors`` are in each).

    Returns
    -------
    Quantized, or fastquant.animation.Animation
        An animated GIF, APNG or WebP gives an :class:`~fastquant.animation.Animation`
        of every frame (mapped as it is saved; see its docstring): one palette
        fitted on all the frames together (or ``palette``), each frame mapped
        onto it as ``compress(frame, palette=...)`` maps a still.  Quality
        targets, ``max_bytes``, ``weights`` and ``ssim`` are for still images.

    Raises
    ------
    InputError
        The source cannot be read or decoded.
    OptionError
        An option is out of range, or the array is not an image.
    QualityError
        ``quality=(min, max)`` and even ``n_colors`` colours stay below ``min``.
    BudgetError
        ``max_bytes`` and even 2 colours give a larger file.
    """
    n_colors = options.check_colors(n_colors)
    given = None if palette is None else fitting.check_palette(palette, "palette")
    fixed = None if fixed_colors is None else fitting.unique_rows(fitting.check_palette(fixed_colors, "fixed_colors"))
    if given is not None and (fixed is not None or quality is not None or max_bytes is not None):
        raise OptionError(
            "palette= maps onto a given palette: it cannot be combined with fixed_colors, quality or max_bytes"
        )
    if fixed is not None and len(fixed) > n_colors:
        raise OptionError(f"{len(fixed)} fixed colours are more than n_colors = {n_colors}")
    dither, dither_strength = options.check_dither(dither, dither_strength)
    if max_bytes is not None:
        from .budget import check_max_bytes

        max_bytes = check_max_bytes(max_bytes)
    if max_bytes is not None and n_colors > 256:
        raise OptionError(f"max_bytes budgets an indexed PNG, at most 256 colours; got n_colors={n_colors}")
    if rd_lambda is not None and not (options.is_number(rd_lambda) and 0 <= rd_lambda < math.inf):
        raise OptionError(f"rd_lambda must be a number >= 0 or None, got {rd_lambda!r}")
    if rd_lambda and dither:
        raise OptionError("rd_lambda and dither exclude each other: dithering chooses every pixel's entry itself")
    if luma_stretch is not None and not (options.is_number(luma_stretch) and 0 < luma_stretch < math.inf):
        raise OptionError(f"luma_stretch must be a number > 0 or None, got {luma_stretch!r}")
    if optimize:
        from . import optimize as _optimize

        _optimize.check()
    stretch = luma_stretch
    if stretch is None and max_bytes is not None:
        stretch = config.BUDGET_LUMA_STRETCH
    rd = rd_lambda
    if rd is None:
        rd = config.BUDGET_RD_LAMBDA if max_bytes is not None and not dither else 0.0
    if colorspace not in ("rgb", "oklab"):
        raise OptionError(f"colorspace must be 'rgb' or 'oklab', got {colorspace!r}")
    target = options.check_quality(quality)
    # A budget with the mapping left to it: other (stretch, lambda) searched too, the best picture kept.
    alternatives: tuple[tuple[float, float], ...] = ()
    if max_bytes is not None and luma_stretch is None and rd_lambda is None and not dither and target is None:
        alternatives = config.BUDGET_ALTERNATIVES
    speed_iter, speed_tol, speed_swaps, fit_colors = fitting.SPEEDS[options.check_speed(speed)]
    posterize = options.check_posterize(posterize)
    seconds: dict[str, float] = {}
    t = time.perf_counter()

    def lap(stage):
        nonlocal t
        now = time.perf_counter()
        seconds[stage] = seconds.get(stage, 0.0) + now - t
        t = now

    frame_palettes = options.check_frame_palettes(frame_palettes)
    p = prepare(image, resize, max_pixels, keep_metadata, lap, allow_truncated, weights, n_colors, True, max_frames)
    km = dict(
        seed=seed,
        max_iter=speed_iter if max_iter is None else max_iter,
        tol=speed_tol if tol is None else tol,
        init=init,
        swap_rounds=speed_swaps if swap_rounds is None else swap_rounds,
        fit_colors=fit_colors,  # (these three are fastquant.fit.fit's own)
        posterize=posterize,
        luma_stretch=stretch,
    )
    if isinstance(p, Frames):
        try:
            if target is not None or max_bytes is not None or weights is not None or optimize:
                raise OptionError(
                    f"{p.name}: quality targets, max_bytes, optimize and importance weights are for still images,"
                    f" not animations ({p.n_frames} frames)"
                )
            from . import animation

            return animation.quantize(
                p,
                n_colors,
                km=km,
                colorspace=colorspace,
                dither=dither,
                dither_strength=dither_strength,
                resize=resize,
                frame_palettes=frame_palettes,
                keep_metadata=keep_metadata,
                lap=lap,
                seconds=seconds,
                fixed=fixed,
                given=given,
                rd_lambda=rd_lambda,
            )
        except BaseException:
            p.close()
            raise
    try:
        args = (p, n_colors, km, colorspace, target, dither, dither_strength, ssim, lap, seconds)
        # None: fastquant.deflate (smallest, slow to write); 9: zlib.
        strong = speed <= config.STRONG_WRITE_SPEED or (max_bytes is not None and speed < config.FAST_WRITE_SPEED)
        level = None if strong else 9
        result = _quantize(
            *args,
            io.source_name(image),
            max_bytes=max_bytes,
            rd_lambda=float(rd),
            fixed=fixed,
            given=given,
            png_level=level,
            alternatives=alternatives,
            optimize=bool(optimize),
        )
        result.png_optimize = bool(optimize)
        result._settings = dict(
            {k: v for k, v in km.items() if k != "fit_colors"},
            speed=speed,
            colorspace=colorspace,
            dither=dither,
            dither_strength=dither_strength,
            rd_lambda=rd_lambda,
            luma_stretch=luma_stretch,
        )
        if getattr(p, "decoded", None) is not None:
            result._original = large.original(image, p, max_pixels, allow_truncated)
            p = None
        return result
    finally:
        if p is not None and getattr(p, "decoded", None) is not None:
            p.decoded.close()


def _quantize(
    p,
    n_colors,
    km,
    colorspace,
    target,
    dither,
    dither_strength,
    ssim,
    lap,
    seconds,
    name,
    max_bytes=None,
    rd_lambda=0.0,
    png_level=None,
    fixed=None,
    given=None,
    alternatives=(),
    optimize=False,
):
    """The in-memory core of :func:`compress`: a prepared image in, a :class:`Quantized` out.

    Parameters
    ----------
    p : _Prepared or fastquant.large.Prepared
    n_colors : int
    km : dict
        Options of :func:`fastquant.kmeans`, with ``fit_colors`` and ``posterize``
        (see :func:`fastquant.fit.fit`).
    colorspace, dither, dither_strength, ssim
        As for :func:`compress` (checked).
    target : (min, max) or None
        The quality target.
    lap : callable
        ``lap(stage)`` adds the time since the last call to ``seconds[stage]``.
    seconds : dict
        Becomes ``Stats.stage_seconds``.
    name : str
        The source's name, for messages.
    max_bytes : int or None
        The byte budget of the indexed PNG (checked).
    rd_lambda : float
        Strength of the rate-distortion-aware mapping (0: nearest).
    fixed, given : (f, 3|4) uint8 ndarray or None
        Fixed colours (see :func:`fastquant.fit.fit`), or a palette to map onto without fitting.
    optimize : bool
        A byte budget counts the file after oxipng's lossless pass (:mod:`fastquant.optimize`).
    alternatives : sequence of (float, float)
        With ``max_bytes``, on an RGB image mapped whole: other (luma stretch, rd_lambda) pairs
        searched too; the file of the best :func:`fastquant.budget.picture_score` is kept.
    """
    fixed, given = fitting.match_channels(p, fixed), fitting.match_channels(p, given)
    space = _space(colorspace, p.c)

    best = fitting.given(p, given, space, lap) if given is not None else fitting.fit(p, n_colors, km, space, lap, fixed)
    k_best = n_colors  # the palette size best was fitted with
    # Every pixel kept (an image of at most n_colors colours, see fastquant.fit.fit): dithering,
    # rd mapping or fewer colours could only lose pixels (a byte budget may still ask for fewer).
    exact = not p.sampled and best.plain_sq == 0
    if exact and max_bytes is None:
        dither, rd_lambda = None, 0.0
    score = None
    if target is not None:
        # Judged on the nearest-entry mapping, before any dithering (as
        # pngquant does): dithering trades PSNR for smoothness, and would
        # otherwise always ask for more colours.
        lo_q, hi_q = target
        score = metrics.quality_from_mse(best.quality_mse)
        if score < lo_q:
            raise QualityError(
                f"{name}: quality {score} (PSNR {metrics.psnr_from_mse(best.quality_mse):.2f}"
                f" dB) with {len(best.palette)} colours is below the minimum {lo_q:g}; nothing written"
            )
        if score >= hi_q and not exact:
            # Fewest colours reaching hi_q: bisection on a log scale between a
            # k known to fall short (lo; 0 = none yet) and one that reaches it.
            lo, hi = (0 if fixed is None else max(0, len(fixed) - 1)), n_colors
            while hi - lo > 1:
                mid = min(max(int(round(math.sqrt(max(lo, 1) * hi))), lo + 1), hi - 1)
                trial = fitting.fit(p, mid, km, space, lap, fixed)
                q = metrics.quality_from_mse(trial.quality_mse)
                if q >= hi_q:
                    hi, best, score = mid, trial, q
                    k_best = mid
                else:
                    lo = mid
    if max_bytes is None:
        strength = auto_dither_strength(len(best.palette)) if dither_strength is None else dither_strength
        palette, indices, sq_error, per_color, alpha = _map(p, best, space, dither, strength, lap, rd_lambda)
    else:
        from . import budget

        def mapping(f, rd):
            strength = auto_dither_strength(len(f.palette)) if dither_strength is None else dither_strength
            return _map(p, f, space, dither, strength, lap, rd)

        whole = getattr(p, "arr", None) is not None and not isinstance(p, large.Prepared)
        scored = alternatives and whole and space == "rgb" and p.c == 3
        fits = [(best, km, fixed)] + [(None, dict(km, luma_stretch=s), fixed) for s, _ in alternatives if scored]
        kept = budget.fit_prepared(
            p,
            fits,
            k_best,
            space,
            mapping,
            [rd_lambda] + [lam for _, lam in alternatives if scored],
            max_bytes,
            name,
            lap,
            png_level,
            optimize,
            original=p.arr if scored else None,
            rd_steps=config.BUDGET_RD_STEPS if scored else (),
        )
        lap("metrics")
        best, (palette, indices, sq_error, per_color, alpha) = kept.fit, kept.mapped
        if target is not None:  # of the mapping made when it is not the nearest one (conservative with alpha)
            score = metrics.quality_from_mse(sq_error / (p.h * p.w * p.c) if kept.rd else best.quality_mse)
            if score < target[0]:
                raise QualityError(
                    f"{name}: quality {score} with {len(best.palette)} colours, the most that fit in"
                    f" {max_bytes} bytes, is below the minimum {target[0]:g}; nothing written"
                )
    err = sq_error / (p.h * p.w * p.c)
    stats = Stats(
        n_colors=len(palette),
        unique_colors=len(p.colors),
        width=p.w,
        height=p.h,
        mse=err,
        psnr=metrics.psnr_from_mse(err),
        iterations=best.n_iter,
        input_bytes=p.nbytes,
        quality=score,
        stage_seconds=seconds,
    )
    stats.max_bytes = max_bytes
    big = isinstance(p, large.Prepared)
    result = Quantized(palette, indices, p.image if big else p.arr, stats, icc_profile=p.icc)
    result.png_level = png_level
    if p.c == 4:
        if big and per_color is None:  # measured while mapping, unless dithered or in OKLab
            alpha = large.alpha_stats(p, palette, indices) if alpha is None else alpha
        else:  # over the histogram when every pixel of a colour got the same entry (the same numbers)
            src, out, weights = (
                (p.colors, palette[per_color], p.counts)
                if per_color is not None
                else (p.flat, palette[indices.reshape(-1)], None)
            )
            alpha = metrics.alpha_figures(src, out, weights=weights)
        stats.alpha_max_error, stats.psnr_black, stats.psnr_white = alpha
        stats.psnr = min(alpha[1:])  # the headline is what a viewer sees: invisible colours do not count
        lap("metrics")
    if ssim:
        stats.ssim = (
            large.ssim(p, palette, indices, config.SSIM_MAX_PIXELS)
            if big
            else metrics.ssim_indexed(p.arr, palette, indices, max_pixels=config.SSIM_MAX_PIXELS)
        )
        lap("metrics")
    return result
