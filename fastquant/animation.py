"""Quantizing animations (animated GIF, APNG, WebP) in two streamed passes; their result, :class:`Animation`.

Pass 1 decodes the frames one at a time (:class:`fastquant.frames.Frames`)
into one histogram for the whole animation: every pixel of every frame when
they add up to at most ``2 * config.SAMPLE_PIXELS``, else an evenly spread
sample of about ``config.SAMPLE_PIXELS`` (with every pixel counted while the
colours stay few), as for one large image.  The palette is fitted once on
it, so that every frame shares it: no flicker between frames, one colour
table.  Pass 2 decodes the frames again and maps each onto that palette, as
the result is saved (or when its frames are first asked for).  With
``frame_palettes=True`` each frame gets a palette of its own instead, fitted
on that frame alone in pass 2.  At most two frames are held at a time.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from . import config, histogram
from . import resize as _resize
from . import write as _write
from .framewrite import encode_frames
from .result import Stats


@dataclass
class AnimationStats(Stats):
    """:class:`fastquant.Stats` of an animation: ``mse``/``psnr`` over every pixel of every
    frame, ``n_colors`` the entries of the shared palette (the largest frame palette with
    ``frame_palettes``); plus ``frames``, the PSNR of each frame (``frame_psnr``, dB) and
    their mean (``mean_frame_psnr``).
    """

    frames: int = 0
    frame_psnr: list[float] = field(default_factory=list)
    mean_frame_psnr: float = 0.0


class _Histogram:
    """The merged histogram of pass 1, as :func:`fastquant.fit.fit` takes one."""

    def __init__(self, colors, counts, sampled):
        self.colors, self.counts, self.weights, self.sampled = colors, counts, counts, sampled
        self.c = colors.shape[1]


def _prepared_frames(frames, size):
    """Yield each frame of ``frames`` as (H, W, 4) uint8 (resized to ``size``; fully transparent
    pixels made (0, 0, 0, 0), as :func:`fastquant.compress` does), with its duration and disposal.
    """
    for f in frames:
        a = f.rgba
        if size != (a.shape[1], a.shape[0]):
            a = _resize.resize(a, size)
        a[a[:, :, 3] == 0] = 0
        yield a, f.duration, f.disposal


def merged_histogram(frames, resize=None):
    """The histogram of every frame of ``frames`` together, as :func:`fastquant.compress` counts an
    animation for its shared palette (pass 1; see the module docstring).

    Returns
    -------
    colors : (M, 3|4) uint8 ndarray
    counts : (M,) int64 ndarray
    pixels : int
        Pixels of all the (resized) frames.
    sampled : bool
    """
    size = _resize.target_size(frames.width, frames.height, resize)
    hist = _merged_histogram(frames, size)[0]
    return hist.colors, hist.counts, frames.n_frames * size[0] * size[1], hist.sampled


def _merged_histogram(frames, size):
    """Pass 1: the histogram of every frame together, the durations, the disposals and
    whether some pixel is not opaque.
    """
    w, h = size
    total = frames.n_frames * w * h
    step = 1 if total <= 2 * config.SAMPLE_PIXELS else -(-total // config.SAMPLE_PIXELS)
    while step > 1 and math.gcd(step, w) != 1:  # as for one large image: columns sampled evenly
        step += 1
    durations, disposal = [], []
    sample = np.empty((-(-total // step), 4), np.uint8)  # pixels 0, step, 2 step... of the stacked frames
    exact = _Exact() if step > 1 else None
    alpha = False
    offset = 0  # pixels of the frames before, in the flattened stack of frames
    for a, duration, disp in _prepared_frames(frames, size):
        durations.append(duration)
        disposal.append(disp)
        flat = a.reshape(-1, 4)
        alpha = alpha or bool((a[:, :, 3] < 255).any())
        first = -(-offset // step) * step - offset
        part = flat[first::step]
        at = -(-offset // step)
        sample[at : at + len(part)] = part
        offset += len(flat)
        if exact is not None:
            exact.add(flat)
    colors, counts, _ = histogram.unique_colors(sample)
    sampled = step > 1
    if sampled and len(colors) <= config.FEW_COLORS and exact.colors is not None:
        colors, counts, sampled = exact.colors, exact.counts, False
    if not alpha:
        colors = np.ascontiguousarray(colors[:, :3])
    return _Histogram(colors, counts, sampled), durations, disposal, alpha


class _Exact:
    """Colours and counts of every pixel added, while there are at most ``config.EXACT_COLORS``
    (``colors`` None past that: counting stops).
    """

    def __init__(self):
        self.colors = np.empty((0, 4), np.uint8)
        self.counts = np.empty(0, np.int64)

    def add(self, pixels):
        if self.colors is None:
            return
        sc, scount = histogram.count_colors(pixels, config.EXACT_COLORS)
        if sc is None:
            self.colors = self.counts = None
            return
        self.colors, self.counts, _ = histogram.merge([(self.colors, self.counts), (sc, scount)])
        if len(self.colors) > config.EXACT_COLORS:
            self.colors = self.counts = None


class Animation:
    """An animation quantized by :func:`fastquant.compress` (an animated GIF, APNG or WebP input).

    Frames are mapped onto the palette in a second pass over the input,
    streamed: :meth:`save` and :meth:`encode` map and write them one at a
    time, without holding them; :attr:`frames` (or :attr:`stats`, or
    :meth:`images`) maps them all once and keeps their indices (one byte a
    pixel of every frame).  The input stays open until then, or until
    :meth:`close` (or the end of a ``with`` block).

    Attributes
    ----------
    palette : (k, 3) or (k, 4) uint8 ndarray, or None
        The palette every frame shares; None with ``frame_palettes=True``.
    durations : list of float
        Each frame's duration in milliseconds, as the input states it.
    loop : int or None
        The input's loop count (0: for ever); None when it states none (a GIF
        without one plays once).
    disposal : list
        The input's disposal method of each frame (GIF 0-3, APNG 0-2; None for
        WebP), for reference: outputs are cut into frame deltas of their own
        (:mod:`fastquant.framewrite`) and show every frame as the input does.
    width, height, n_frames : int
    icc_profile : bytes or None
    """

    def __init__(
        self,
        source: Any,
        palette: npt.NDArray[np.uint8] | None,
        durations: list[float],
        disposal: list[Any],
        loop: int | None,
        size: tuple[int, int],
        options: dict[str, Any],
        icc_profile: bytes | None,
        stats: Any,
    ) -> None:
        self._source, self.palette = source, palette
        self.durations, self.disposal, self.loop = durations, disposal, loop
        self.width, self.height = size
        self.n_frames = len(durations)
        self.icc_profile = icc_profile
        self._options, self._stats = options, stats
        self._frames = self._palettes = None
        self._done = False
        self._exact_palette = False  # a palette given by the caller: an APNG's PLTE is it exactly

    # ------------------------------------------------------------------ pass 2

    def _mapped(self):
        """Yield (indices, palette, duration) of every frame, measuring as it goes; the stats
        are complete when the last frame has been yielded.
        """
        if self._frames is not None:
            yield from zip(self._frames, self._palettes, self.durations)
            return
        if self._source is None:
            raise ValueError("the animation is closed: its frames were not kept")
        from .api import compress

        o = self._options
        sq_sum, psnrs, largest = 0.0, [], 0
        c = self._stats.c
        for a, duration, _ in _prepared_frames(self._source, (self.width, self.height)):
            # Each frame is an image of its own, mapped onto the shared palette (or fitted its own).
            q = compress(np.ascontiguousarray(a[:, :, :c]), **o)
            idx, palette = q.indices, q.palette if self.palette is None else self.palette
            sq = q.stats.mse * q.original.size
            psnrs.append(q.stats.psnr)
            sq_sum += sq
            largest = max(largest, len(palette))
            yield idx, palette, duration
        s = self._stats.stats
        s.mse = sq_sum / (self.n_frames * self.width * self.height * self._stats.c)
        s.psnr = _psnr(s.mse)
        s.frame_psnr = psnrs
        finite = [x for x in psnrs if math.isfinite(x)]
        s.mean_frame_psnr = float(np.mean(finite)) if finite else math.inf
        s.n_colors = len(self.palette) if self.palette is not None else largest
        self._done = True

    def _load(self):
        if self._frames is None:
            frames, palettes = [], []
            for idx, palette, _ in self._mapped():
                frames.append(idx)
                palettes.append(palette)
            self._frames, self._palettes = frames, palettes
            self.close()
        return self

    @property
    def frames(self) -> list[npt.NDArray[np.uint8]]:
        """Each frame's palette indices, (H, W) uint8 (mapped on first use)."""
        return self._load()._frames

    @property
    def palettes(self) -> list[npt.NDArray[np.uint8]]:
        """The palette of each frame, (k, 3|4) uint8: the shared one, or its own."""
        return self._load()._palettes

    @property
    def stats(self) -> AnimationStats:
        """:class:`AnimationStats` (complete once the frames have been mapped: asking maps them)."""
        if not getattr(self, "_done", False):
            self._load()
        return self._stats.stats

    def images(self) -> Iterator[npt.NDArray[np.uint8]]:
        """Yield each frame as an (H, W, 3|4) uint8 array (``palette[indices]``)."""
        for idx, palette in zip(self.frames, self.palettes):
            yield palette[idx]

    # ------------------------------------------------------------------ output

    def encode(self, format: str | os.PathLike = ".gif", *, deltas: bool = True) -> bytes:
        """The encoded animation as bytes.

        ``format`` is ``".gif"``, ``".png"`` (APNG; also ``".apng"``) or
        ``".webp"``, or a file name whose extension says which.
        ``deltas=False`` writes every frame whole (GIF, APNG), for comparison.
        Any other format raises :class:`fastquant.OptionError`: frames are never dropped.
        """
        fmt = os.fspath(format)
        if "." not in fmt:
            fmt = "." + fmt
        return encode_frames(
            fmt,
            self._mapped(),
            width=self.width,
            height=self.height,
            n_frames=self.n_frames,
            loop=self.loop,
            palette=self.palette,
            icc_profile=self.icc_profile,
            deltas=deltas,
            exact_palette=self._exact_palette,
        )

    def save(self, path: str | os.PathLike) -> int:
        """Write the animation; the format follows the extension (``.gif``, ``.png``/``.apng``, ``.webp``).

        Written to a temporary name and renamed over ``path``.

        Returns
        -------
        int
            Bytes written.
        """
        return _write.write_atomic(path, self.encode(path))

    def close(self) -> None:
        """Close the input (frames not mapped yet can no longer be)."""
        if self._source is not None:
            self._source.close()
            self._source = None

    def __enter__(self) -> Animation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        k = f"{len(self.palette)} colours" if self.palette is not None else "a palette per frame"
        return f"<Animation {self.width}x{self.height}, {self.n_frames} frames, {k}>"


class _StatsBox:
    """The stats being filled and the channel count of the frames mapped."""

    def __init__(self, stats, c):
        self.stats, self.c = stats, c


def _psnr(mse):
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def quantize(
    frames,
    n_colors,
    *,
    km,
    colorspace,
    dither,
    dither_strength,
    resize,
    frame_palettes,
    keep_metadata,
    lap,
    seconds,
    fixed=None,
    given=None,
    rd_lambda=None,
):
    """Pass 1 over ``frames`` (:class:`fastquant.frames.Frames`, left open in the result) and the
    shared palette; the :class:`Animation` maps the frames in pass 2.

    Parameters are those of :func:`fastquant.compress` (checked), ``km`` the k-means options,
    ``fixed`` and ``given`` the checked ``fixed_colors`` and ``palette`` ((f, 3|4) uint8 or None).
    """
    from . import fit as fitting
    from .api import _space

    size = _resize.target_size(frames.width, frames.height, resize)
    hist, durations, disposal, alpha = _merged_histogram(frames, size)
    lap("histogram")
    palette = None
    iterations = 0
    if given is not None:
        palette = fitting.match_channels(hist, given)
    elif not frame_palettes:
        fixed_here = fitting.match_channels(hist, fixed)
        f = fitting.fit(hist, n_colors, km, _space(colorspace, hist.c), lap, fixed_here)
        palette, iterations = f.palette, f.n_iter
    stats = AnimationStats(
        n_colors=len(palette) if palette is not None else 0,
        unique_colors=len(hist.colors),
        width=size[0],
        height=size[1],
        mse=math.nan,
        psnr=math.nan,
        iterations=iterations,
        input_bytes=frames.nbytes,
        stage_seconds=seconds,
        frames=frames.n_frames,
    )
    # What compress() is given for each frame: the shared palette, or what to fit one with.
    options = dict(colorspace=colorspace, dither=dither, dither_strength=dither_strength, rd_lambda=rd_lambda)
    if palette is not None:
        options["palette"] = palette
    else:
        # (fit_colors is fit.fit's, set by compress()'s speed: not a keyword of compress())
        options.update({k: v for k, v in km.items() if k != "fit_colors"}, n_colors=n_colors, fixed_colors=fixed)
    icc = frames.icc_profile if keep_metadata else None
    a = Animation(frames, palette, durations, disposal, frames.loop, size, options, icc, _StatsBox(stats, hist.c))
    a._exact_palette = given is not None
    return a
