"""What :func:`fastquant.compress` returns: the quantized image (:class:`Quantized`) and its figures
(:class:`Stats`).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from . import metrics
from . import write as _write

if TYPE_CHECKING:
    import numpy.typing as npt
    import PIL.Image


@dataclass
class Stats:
    """What a compression did and cost.

    Attributes
    ----------
    n_colors : int
        Palette entries actually used (fewer than asked when the image has fewer colours).
    unique_colors : int
        Distinct colours in the (resized) input.
    width, height : int
        Size of the result.
    mse : float
        Mean squared error over all channels and pixels against the input.  With alpha: of
        the straight (not premultiplied) RGBA values, alpha included, fully transparent
        pixels counted as black (as in ``original``).
    psnr : float
        PSNR in dB against the input: of ``mse`` without alpha; with alpha, the lower of
        ``psnr_black`` and ``psnr_white`` (what a viewer sees on the worse of the two
        backgrounds: colour differences under transparent pixels cannot make it look worse).
    alpha_max_error : int or None
        Largest change of alpha over all pixels (None without alpha).
    psnr_black, psnr_white : float or None
        PSNR in dB of the RGB composite over black and over white
        (:func:`fastquant.metrics.psnr_over`): what a viewer sees of an image
        with alpha; ``inf`` when equal, None without alpha.
    ssim : float or None
        SSIM of the luma, when asked for (``ssim=True``).
    iterations : int
        K-means centre updates.
    input_bytes : int or None
        Size of the encoded input, when it came from a file or bytes.
    quality : int or None
        With a quality target: the quality 0-100 that decided
        (:func:`fastquant.metrics.quality_from_mse`), of the mapping before
        dithering, over the pixels the palette was fitted on (all of them, or
        the even sample of very large images).  With alpha (``colorspace="rgb"``),
        of the MSE of the premultiplied values, as pngquant judges: the
        straight ``mse`` also counts colour differences nobody sees.
    max_bytes : int or None
        The byte budget the indexed PNG was fitted into (``max_bytes``), or None;
        ``n_colors`` is then the palette size the search kept.
    stage_seconds : dict of str to float
        Wall time of each stage: read, resize, histogram, palette, remap, metrics
        (summed over the palette sizes tried for a quality target or a byte budget).
    total_seconds : float
        The sum of ``stage_seconds`` (read-only).
    seconds : dict of str to float
        Deprecated alias of ``stage_seconds`` (read-only; warns).
    """

    n_colors: int
    unique_colors: int
    width: int
    height: int
    mse: float
    psnr: float
    iterations: int
    input_bytes: int | None = None
    ssim: float | None = None
    quality: int | None = None
    alpha_max_error: int | None = None
    psnr_black: float | None = None
    psnr_white: float | None = None
    max_bytes: int | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def total_seconds(self) -> float:
        """Seconds of all stages together (the sum of ``stage_seconds``)."""
        return float(sum(self.stage_seconds.values()))

    @property
    def seconds(self) -> dict[str, float]:
        """Deprecated: ``stage_seconds`` (the name said neither "stages" nor "total")."""
        warnings.warn(
            "Stats.seconds is deprecated: use Stats.stage_seconds (or Stats.total_seconds)",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.stage_seconds

    def as_dict(self) -> dict[str, Any]:
        """The stats as a plain dict (JSON-ready), ``total_seconds`` included."""
        return dict(asdict(self), total_seconds=self.total_seconds)


class Quantized:
    """A palette image: the result of :func:`compress`.

    Attributes
    ----------
    palette : (k, 3) or (k, 4) uint8 ndarray
        The colours (RGBA when the input had transparency), most used first
        (translucent ones first; by use before dithering when dithered).
    indices : (H, W) uint8 ndarray (uint16 when k > 256)
        Palette index of every pixel.
    original : (H, W, 3) or (H, W, 4) uint8 ndarray
        The input after reading and resizing (fully transparent pixels made
        black, as they are in the result).
    stats : Stats
    icc_profile : bytes or None
        The input's ICC profile, kept with ``keep_metadata=True``; embedded
        by :meth:`encode` and :meth:`save`.
    png_level : int or None
        How an indexed PNG's data is deflated (:func:`fastquant.png.png_indexed`):
        9, zlib (the default); None, fastquant's own encoder (``speed`` 1-3 and
        byte budgets: about 9% smaller, ~10x slower to write).
    png_optimize : bool
        PNGs get a last lossless pass by oxipng (``compress(optimize=True)``,
        :mod:`fastquant.optimize`; the optional pyoxipng).
    """

    png_level: int | None = 9
    png_optimize: bool = False

    def __init__(
        self,
        palette: npt.NDArray[np.uint8],
        indices: npt.NDArray[np.unsignedinteger],
        original: npt.NDArray[np.uint8] | Callable[[], npt.NDArray[np.uint8]],
        stats: Stats,
        icc_profile: bytes | None = None,
    ) -> None:
        self.palette = palette
        self.indices = indices
        self._original = original  # or a callable that makes it (large images: read again on demand)
        self.stats = stats
        self.icc_profile = icc_profile
        self._settings: dict[str, Any] = {}  # compress()'s options, for save(max_bytes=...) to quantize again

    @property
    def original(self) -> npt.NDArray[np.uint8]:
        """(H, W, 3|4) uint8 ndarray: the input after reading and resizing (see the class docstring)."""
        if callable(self._original):
            self._original = self._original()
        return self._original

    @property
    def image(self) -> npt.NDArray[np.uint8]:
        """(H, W, 3|4) uint8 ndarray: ``palette[indices]``."""
        return self.palette[self.indices]

    def encode(self, format: str = ".png") -> bytes:
        """The encoded file as bytes; ``format`` is an extension such as ``".png"``."""
        fmt = format if format.startswith(".") else "." + format
        return _write.encode(
            "x" + fmt, self.indices, self.palette, self.icc_profile, level=self.png_level, optimize=self.png_optimize
        )

    def save(self, path: str | os.PathLike, *, max_bytes: None | int | str = None) -> int:
        """Write the result; the format follows the extension.

        ``.png`` is an indexed PNG (1, 2, 4 or 8 bits per pixel) when k <= 256,
        ``.gif`` a GIF; other extensions get the RGB(A) image through imageio.
        The file is written to a temporary name and renamed over ``path``.

        Parameters
        ----------
        path : str or os.PathLike
        max_bytes : None, int or str
            A byte budget (``.png`` only; a string such as ``"100k"``).  When
            this result's file is larger, the picture is quantized again from
            ``original`` with the options it was made with and at most as many
            colours, as ``compress(..., max_bytes=max_bytes)`` does, and this
            object becomes that result (``palette``, ``indices``, ``stats``)
            before it is written.  :class:`fastquant.BudgetError`, nothing
            written, when even 2 colours do not fit.

        Returns
        -------
        int
            Bytes written.
        """
        data = _write.encode(
            path, self.indices, self.palette, self.icc_profile, level=self.png_level, optimize=self.png_optimize
        )
        if max_bytes is not None:
            from .budget import check_max_bytes
            from .errors import OptionError

            limit = check_max_bytes(max_bytes)
            ext = os.path.splitext(os.fspath(path))[1].lower()
            if ext != ".png" or len(self.palette) > 256:
                raise OptionError(f"{os.fspath(path)}: max_bytes budgets indexed PNGs (.png, at most 256 colours)")
            if len(data) > limit:
                from .api import compress

                again = compress(
                    self.original,
                    len(self.palette),
                    max_bytes=limit,
                    ssim=self.stats.ssim is not None,
                    max_pixels=None,
                    **self._settings,
                )
                assert isinstance(again, Quantized)  # an array is a still, never an Animation
                self.palette, self.indices, self.stats = again.palette, again.indices, again.stats
                self.png_level = again.png_level  # the encoder the budget was searched with
                data = _write.encode(
                    path, self.indices, self.palette, self.icc_profile, level=self.png_level, optimize=self.png_optimize
                )
        return _write.write_atomic(path, data)

    def to_pil(self) -> PIL.Image.Image:
        """The result as a Pillow image, ready for ``im.save("x.png")``.

        Returns
        -------
        PIL.Image.Image
            Mode ``"P"`` with the palette (k <= 256); with transparency,
            ``info["transparency"]`` holds the entries' alpha as bytes (the
            tRNS values), up to the last translucent entry.  Above 256
            colours, an ``"RGB"`` or ``"RGBA"`` image.
        """
        from .pillow import to_pil

        return to_pil(self.indices, self.palette)

    def preview(
        self, diff: bool = False, *, nbytes: int | None = None, max_pixels: int | None = None
    ) -> npt.NDArray[np.uint8]:
        """Original and result side by side, labelled, as an image.

        Parameters
        ----------
        diff : bool
            Add a third panel, the absolute difference amplified 4 times, and
            a caption strip below: k, PSNR, SSIM and the size in bytes.
        nbytes : int, optional
            The size shown in the caption; default: the size of
            ``encode(".png")``.
        max_pixels : int, optional
            Panels of more pixels are scaled down to it (box filter, aspect
            kept; the label says so); default ``config.PREVIEW_PIXELS``
            (about 1 MP), so that the preview of a large photo stays cheap.

        Returns
        -------
        (L + H', 2W' + 8, 3) uint8 ndarray, with W' x H' the panel size and
        L the label strip (:func:`fastquant.preview.label_height`); with
        ``diff``, (L + H' + caption, 3W' + 16, 3) (wider when one caption
        field is wider than that)
        """
        from . import config
        from .preview import preview

        caption = None
        if diff:
            s = self.stats
            score = s.ssim
            if score is None:
                score = metrics.ssim(self.original, self.image, max_pixels=config.SSIM_MAX_PIXELS)
            size = len(self.encode(".png")) if nbytes is None else nbytes
            psnr = "inf" if math.isinf(s.psnr) else f"{s.psnr:.2f}"
            caption = [f"k={s.n_colors}", f"PSNR={psnr}dB", f"SSIM={score:.4f}", f"{size} bytes"]
        return preview(
            self.original, self.image, n_colors=len(self.palette), diff=diff, caption=caption, max_pixels=max_pixels
        )

    def __repr__(self) -> str:
        s = self.stats
        return f"<Quantized {s.width}x{s.height}, {s.n_colors} colours, PSNR {s.psnr:.2f} dB>"
