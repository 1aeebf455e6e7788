"""Pillow out: a result as a ``PIL.Image``, and :func:`quantize`, a drop-in for ``Image.quantize()``.

Pillow images in are normalised where every other source is, in
:mod:`fastquant.io`.  Pillow is imported only when these functions run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import OptionError

if TYPE_CHECKING:
    import PIL.Image

    from .api import ImageSource

# Pillow's Image.Dither values (NONE, ORDERED, RASTERIZE, FLOYDSTEINBERG) -> fastquant's dither.
_PIL_DITHER = {0: None, 1: "ordered", 3: "fs"}


def to_pil(indices, palette):
    """A palette image as a ``PIL.Image.Image``.

    Parameters
    ----------
    indices : (H, W) uint8 or uint16 ndarray
    palette : (k, 3) or (k, 4) uint8 ndarray

    Returns
    -------
    PIL.Image.Image
        Mode ``"P"`` when k <= 256, with the palette and, for a (k, 4)
        palette, ``info["transparency"]``: the alpha of the entries up to
        the last translucent one (a PNG's tRNS chunk), so that
        ``im.save("x.png")`` keeps the transparency.  Above 256 colours, the
        ``"RGB"`` or ``"RGBA"`` image ``palette[indices]``.
    """
    from PIL import Image

    if len(palette) > 256:
        return Image.fromarray(np.ascontiguousarray(palette[indices]), "RGBA" if palette.shape[1] == 4 else "RGB")
    im = Image.fromarray(np.ascontiguousarray(indices, np.uint8), "P")
    im.putpalette(np.ascontiguousarray(palette[:, :3]).tobytes(), "RGB")
    if palette.shape[1] == 4:
        alpha = palette[:, 3]
        translucent = np.flatnonzero(alpha < 255)
        if len(translucent):
            im.info["transparency"] = alpha[: translucent[-1] + 1].tobytes()
    return im


def pil_dither(dither):
    """The ``dither`` of fastquant for a value in either spelling: ``None``, ``"none"``, ``"fs"``,
    ``"ordered"``, or Pillow's ``Image.Dither.NONE``, ``ORDERED`` or ``FLOYDSTEINBERG``.
    """
    if dither is None or isinstance(dither, str):
        return dither
    if isinstance(dither, (int, np.integer)) and not isinstance(dither, bool) and int(dither) in _PIL_DITHER:
        return _PIL_DITHER[int(dither)]
    raise OptionError(
        f"dither must be None, 'fs', 'ordered', Image.Dither.NONE, ORDERED or FLOYDSTEINBERG, got {dither!r}"
    )


def quantize(
    image: ImageSource, colors: int = 256, *, dither: str | int | None = None, **options: Any
) -> PIL.Image.Image:
    """Quantize an image to at most ``colors`` colours and return it as a Pillow palette image.

    A drop-in for ``image.quantize(colors)`` of Pillow: the same name for the
    colour count and a mode ``"P"`` result, fitted by fastquant's k-means.
    Unlike Pillow's, the default is no dithering (the lowest error and the
    smallest files); ``dither=Image.Dither.FLOYDSTEINBERG`` asks for it.

    Parameters
    ----------
    image : PIL.Image.Image, str, os.PathLike, bytes, binary file or ndarray
        Any source :func:`fastquant.compress` reads; a Pillow image in any
        mode (P and PA through their palette, I;16 scaled, CMYK converted;
        its EXIF orientation is not applied, as in Pillow).
    colors : int
        Palette size, 1 to 256.
    dither : None, str or int
        ``None``/``"none"``, ``"fs"`` or ``"ordered"``, or Pillow's
        ``Image.Dither.NONE``, ``FLOYDSTEINBERG`` or ``ORDERED``.
    **options
        The other keywords of :func:`fastquant.compress` (``speed``,
        ``colorspace``, ``dither_strength``...).  ``palette`` may also be a
        mode "P" Pillow image, as in Pillow: the result is then mapped onto
        its palette's colours (``colors`` is ignored).  Pillow's ``method``
        and ``kmeans`` are refused: the palette is always fastquant's k-means.

    Returns
    -------
    PIL.Image.Image
        Mode ``"P"``; with transparency, ``info["transparency"]`` holds the
        palette's alpha (see :meth:`fastquant.Quantized.to_pil`).

    Raises
    ------
    OptionError
        ``colors`` is not 1 to 256, an option is wrong, or the source is an
        animation (:func:`fastquant.compress` quantizes every frame of one).
    """
    from .api import compress
    from .result import Quantized

    if isinstance(colors, bool) or not isinstance(colors, (int, np.integer)) or not 1 <= colors <= 256:
        raise OptionError(f"colors must be an integer from 1 to 256 (a mode P image), got {colors!r}")
    for name in ("method", "kmeans"):
        if name in options:
            raise OptionError(f"{name}= is Pillow's choice of quantizer: fastquant.quantize() always fits its k-means")
    pal = options.get("palette")
    if pal is not None and getattr(pal, "mode", None) is not None and hasattr(pal, "getpalette"):
        if pal.mode != "P":
            raise OptionError(f"palette must be a mode P image, as in Pillow, got mode {pal.mode}")
        options["palette"] = np.array(pal.getpalette("RGB"), np.uint8).reshape(-1, 3)
    q = compress(image, int(colors), dither=pil_dither(dither), **options)
    if not isinstance(q, Quantized):
        q.close()
        raise OptionError("quantize() makes one image, and this source is an animation: use fastquant.compress()")
    return q.to_pil()
