"""Palettes not tied to one image: :class:`Palette`, and :func:`palette` fitted on many images at once.

The k-means works on a weighted colour histogram, and histograms merge
exactly (:func:`fastquant.histogram.merge`): the palette of many images is
the k-means of their merged histogram, which equals the k-means of all their
pixels side by side.  Each source is read and counted as
:func:`fastquant.compress` reads and counts one image (resizing, the even
sample of very large images, transparency), with :func:`count`; the counts
are merged (:func:`merge`) and fitted once (:func:`fit`), by the same code
that fits one image's palette.  :func:`count` of each source can run in a
separate process (it returns a small picklable :class:`Counted`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Union, cast

import numpy as np

from . import animation, api, config, histogram, io, options
from . import colorspace as _cs
from . import fit as fitting
from . import write as _write
from .errors import InputError, OptionError
from .fit import Colors
from .frames import Frames
from .prepare import prepare

if TYPE_CHECKING:
    from PIL import Image

    from .api import ImageSource

    #: A source :func:`palette` reads: as :func:`fastquant.compress` does, or a PIL image.
    Source = Union[ImageSource, Image.Image]

#: Pixels per side of a colour's square in a saved swatch strip (one pixel above 256 colours).
SWATCH = 8


class Palette:
    """A set of colours to map images onto (``compress(src, palette=p)``).

    Parameters
    ----------
    colors : (k, 3) or (k, 4) uint8 array_like
        The entries, 1 <= k <= 65536, in their order (the order of the PLTE
        of every image mapped onto them).

    Attributes
    ----------
    colors : (k, 3) or (k, 4) uint8 ndarray
    mse, psnr : float or None
        For a fitted palette (:func:`palette`): the mean squared error over
        all channels of all the sources' pixels together (straight values,
        each pixel mapped to its nearest entry, no dithering) and its PSNR
        in dB -- the "union PSNR".  Over the even sample of very large
        sources, scaled to their pixel counts.  None for colours given or loaded.
    n_pixels : int or None
        Pixels the palette was fitted on (sum over the sources).
    """

    def __init__(self, colors: Colors, *, mse: float | None = None, n_pixels: int | None = None) -> None:
        self.colors = fitting.check_palette(colors, "colors")
        self.mse, self.n_pixels = mse, n_pixels
        self.psnr = None if mse is None else _psnr(mse)

    def __len__(self) -> int:
        return len(self.colors)

    def __repr__(self) -> str:
        psnr = "" if self.psnr is None else f", union PSNR {self.psnr:.2f} dB"
        return f"<Palette {len(self.colors)} colours{psnr}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Palette) and np.array_equal(self.colors, other.colors)

    __hash__ = None  # type: ignore[assignment]  # mutable colours: not hashable

    @classmethod
    def from_colors(cls, colors: Colors) -> Palette:
        """A palette of given colours.

        Parameters
        ----------
        colors : sequence of str, str or (k, 3|4) array_like of int
            Hex colours (``"ff0000"``, ``"#00ff00"``, ``"#0000ff80"``; one
            string may hold several, comma-separated) or rows of 0..255.
        """
        return cls(colors)

    @classmethod
    def from_image(cls, source: Source, *, max_pixels: int | None = io.DEFAULT_MAX_PIXELS) -> Palette:
        """The colours of an image with at most 65536 of them, exactly.

        Parameters
        ----------
        source : str, os.PathLike, bytes, binary file, ndarray or PIL.Image.Image
            Read as :func:`fastquant.compress` reads (a palette PNG or a GIF
            gives the colours its pixels use).
        max_pixels : int or None

        Returns
        -------
        Palette
            In order of first appearance (row by row): a strip saved by
            :meth:`save` comes back in its order.

        Raises
        ------
        OptionError
            The image has more than 65536 colours.
        """
        arr = io.read_image(_as_source(source), max_pixels=max_pixels)[0]
        colors, _ = histogram.count_colors(arr.reshape(-1, arr.shape[2]), fitting.MAX_COLORS)
        if colors is None:
            name = io.source_name(source) if not _is_pil(source) else "<PIL image>"
            raise OptionError(f"{name}: more than {fitting.MAX_COLORS} colours, not a palette")
        return cls(colors)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Palette:
        """A palette from a file: ``.txt`` or ``.hex`` (hex colours), ``.gpl`` (GIMP), or an image.

        A text list holds one hex colour per line (``rrggbb`` or
        ``rrggbbaa``, ``#`` optional, or several comma-separated); empty
        lines, lines starting with ``//`` or ``;`` and lines with ``#``
        followed by a space are comments.  A GIMP palette holds ``R G B
        name`` lines in decimal after its ``GIMP Palette`` header.  Any other
        file is read as an image with :meth:`from_image`.

        Raises
        ------
        InputError
            The file cannot be read.
        OptionError
            It holds no colours, a line that is not one, or more than 65536.
        """
        ext = os.path.splitext(os.fspath(path))[1].lower()
        if ext not in (".txt", ".hex", ".gpl"):
            return cls.from_image(path)
        name = os.fspath(path)
        try:
            with open(path, "rb") as f:
                data = f.read(64 << 20)
            text = data.decode("utf-8-sig")
        except OSError as e:
            raise InputError(f"{name}: cannot read: {e.strerror or e}") from None
        except UnicodeDecodeError:
            raise OptionError(f"{name}: not a text palette (not UTF-8)") from None
        rows = _gpl_rows(text, name) if ext == ".gpl" else _hex_rows(text, name)
        if not rows:
            raise OptionError(f"{name}: no colours")
        return cls(_rows_array(rows))

    def save(self, path: str | os.PathLike) -> int:
        """Write the palette: ``.gpl`` (GIMP, opaque colours only), ``.txt``/``.hex`` (hex, one a
        line) or a PNG swatch strip.

        The strip (any other extension is written as PNG: ``.png`` expected)
        is one row of squares of :data:`SWATCH` pixels, one colour each in
        order (single pixels above 256 colours), as an indexed PNG whose PLTE
        is the palette: :meth:`load` of any of these gives the colours back.
        Written atomically (temporary file and rename).

        Returns
        -------
        int
            Bytes written.
        """
        ext = os.path.splitext(os.fspath(path))[1].lower()
        c = self.colors
        if ext in (".txt", ".hex"):
            data = "".join("#" + bytes(row).hex() + "\n" for row in c).encode()
        elif ext == ".gpl":
            if c.shape[1] == 4 and (c[:, 3] != 255).any():
                raise OptionError(f"{os.fspath(path)}: a GIMP palette holds no alpha; save as .txt or .png")
            head = f"GIMP Palette\nName: fastquant {len(c)}\nColumns: 16\n#\n"
            lines = [f"{r:3d} {g:3d} {b:3d}\t#{bytes(row).hex()}\n" for row, (r, g, b) in zip(c, c[:, :3].tolist())]
            data = (head + "".join(lines)).encode()
        else:
            side = SWATCH if len(c) <= 256 else 1
            idx = np.repeat(np.arange(len(c), dtype=np.uint16 if len(c) > 256 else np.uint8), side)
            data = _write.encode("x.png", np.ascontiguousarray(np.tile(idx, (side, 1))), c)
        return _write.write_atomic(path, data)


def _psnr(mse):
    from .metrics import psnr_from_mse

    return psnr_from_mse(mse)


def _rows_array(rows):
    width = max(len(r) for r in rows)
    return np.array([r + (255,) * (width - len(r)) for r in rows], np.uint8)


def _hex_rows(text, name):
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith(("//", ";", "# ")) or s == "#":
            continue
        for item in s.split(","):
            if item.strip():
                try:
                    rows.append(_cs.parse_hex(item.split()[0]))
                except ValueError as e:
                    raise OptionError(f"{name}, line {n}: {e}") from None
    return rows


def _gpl_rows(text, name):
    lines = text.splitlines()
    if not lines or lines[0].strip() != "GIMP Palette":
        raise OptionError(f"{name}: not a GIMP palette (no 'GIMP Palette' header)")
    rows = []
    for n, line in enumerate(lines[1:], 2):
        s = line.strip()
        if not s or s.startswith("#") or s.split(":")[0] in ("Name", "Columns"):
            continue
        parts = s.split()
        try:
            rgb = tuple(int(v) for v in parts[:3])
        except ValueError:
            rgb = ()
        if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
            raise OptionError(f"{name}, line {n}: expected 'R G B [name]' with values 0..255, got {s!r}")
        rows.append(rgb)
    return rows


def _is_pil(source):
    return hasattr(source, "mode") and hasattr(source, "convert") and hasattr(source, "getbands")


def _as_source(source):
    """A PIL image as an array (RGBA when it has transparency); other sources as they are."""
    if not _is_pil(source):
        return source
    alpha = "A" in source.getbands() or "transparency" in source.info
    return np.asarray(source.convert("RGBA" if alpha else "RGB"))


class Counted(NamedTuple):
    """The histogram of one source, as :func:`count` makes it (picklable).

    Attributes
    ----------
    colors : (M, C) uint8 ndarray
    counts : (M,) int64 ndarray
        Pixel counts: of every pixel, or of the even sample of a very large image.
    pixels : int
        Pixels of the (resized) image.
    sampled : bool
        Whether ``counts`` are a sample's.
    """

    colors: np.ndarray
    counts: np.ndarray
    pixels: int
    sampled: bool


def count(
    source: Source,
    *,
    resize: None | int | tuple[int, int] = None,
    max_pixels: int | None = io.DEFAULT_MAX_PIXELS,
    allow_truncated: bool = False,
    keep: bool = False,
) -> Counted:
    """Histogram of one source, read as :func:`fastquant.compress` reads it (every frame
    of an animation).

    Parameters are those of :func:`fastquant.compress` (``source`` may also
    be a PIL image).  With ``keep``, a file's image as read and counted
    (a still that is not read strip by strip) stays in this process, up to
    ``config.KEEP_BYTES`` in all, for the next :func:`fastquant.compress`
    of the same path with the same ``resize``, ``max_pixels`` and
    ``allow_truncated`` (no importance map), which takes it instead of
    reading and counting the file again (the same result); see :func:`forget_kept`.
    """
    key = _keep_key(source, resize, max_pixels, allow_truncated) if keep else None
    # The ICC profile is kept too, for a compress() that keeps metadata (see take_kept).
    p = prepare(
        _as_source(source), resize, max_pixels, key is not None, lambda stage: None, allow_truncated, frames=True
    )
    if isinstance(p, Frames):
        with p:
            return Counted(*animation.merged_histogram(p, resize))
    decoded = getattr(p, "decoded", None)
    if decoded is not None:
        decoded.close()
    elif key is not None:
        size = sum(a.nbytes for a in (p.arr, p.inverse, p.colors, p.counts))
        if _kept_bytes() + size <= config.KEEP_BYTES:
            _KEPT[key] = (p, size)
    return Counted(p.colors, p.counts, p.h * p.w, bool(p.sampled))


#: Images kept by :func:`count` with ``keep``: key -> (prepared image, bytes).
_KEPT: dict[tuple, tuple[Any, int]] = {}


def _kept_bytes():
    return sum(size for _, size in _KEPT.values())


def _keep_key(source, resize, max_pixels, allow_truncated):
    """What a kept image is found by: the file (path, size, modification time) and the
    options that change how it is read; None for sources that are not paths.
    """
    if not isinstance(source, (str, os.PathLike)):
        return None
    try:
        st = os.stat(source)
    except OSError:
        return None
    size = tuple(resize) if isinstance(resize, (tuple, list)) else resize
    return (os.path.abspath(source), st.st_size, st.st_mtime_ns, size, max_pixels, bool(allow_truncated))


def take_kept(source, resize, max_pixels, allow_truncated, keep_metadata):
    """The image :func:`count` kept for this source and these options (taken out: it is
    used once), or None.
    """
    if not _KEPT:
        return None
    key = _keep_key(source, resize, max_pixels, allow_truncated)
    p = _KEPT.pop(key, (None, 0))[0] if key is not None else None
    if p is not None and not keep_metadata:
        p.icc = None
    return p


def kept_sources():
    """Paths (as given to :func:`os.path.abspath`) of the images :func:`count` keeps in this process."""
    return {key[0] for key in _KEPT}


def forget_kept():
    """Drop every image :func:`count` kept in this process."""
    _KEPT.clear()


class Merged:
    """Merged histograms, as :func:`fastquant.fit.fit` takes a histogram.

    Attributes
    ----------
    colors : (M, C) uint8 ndarray
    counts, weights : (M,) ndarray
        Pixel counts of the union (int64; float64 when a sampled source's
        counts were scaled to its pixels).
    c : int
    sampled : bool
        Whether any source was sampled.
    pixels : int
    """

    def __init__(self, colors, counts, sampled, pixels):
        self.colors, self.counts, self.weights = colors, counts, counts
        self.c = colors.shape[1]
        self.sampled, self.pixels = sampled, pixels


def merge(parts: Iterable[Counted]) -> Merged:
    """One histogram of the pixels of all the sources together.

    RGB sources become opaque RGBA when any source has alpha.  A sampled
    source's counts are scaled to its pixel count (when there is more than
    one source), so that every image weighs as much as its pixels.

    Parameters
    ----------
    parts : sequence of Counted

    Returns
    -------
    Merged
        Colours in order of first appearance over the sources in turn: the
        same histogram whatever the order the counts were made in.
    """
    parts = list(parts)
    if not parts:
        raise OptionError("no sources to fit a palette on")
    c = max(p.colors.shape[1] for p in parts)
    merged: tuple[Any, Any] | None = None
    batch: list[tuple[Any, Any]] = []
    held = 0
    for i, p in enumerate(parts):
        colors, counts = p.colors, p.counts
        if colors.shape[1] < c:
            colors = np.hstack([colors, np.full((len(colors), 1), 255, np.uint8)])
        if p.sampled and len(parts) > 1:
            counts = counts * (p.pixels / float(counts.sum()))
        batch.append((colors, counts))
        held += len(colors)
        # Merged in batches of about config.MERGE_COLORS colours, folded into the running
        # result: one pass per batch, and no more than a batch beside the merged table.
        if held >= config.MERGE_COLORS or i == len(parts) - 1:
            merged = histogram.merge(([merged] if merged is not None else []) + batch)[:2]
            batch, held = [], len(merged[0])
    assert merged is not None  # parts is not empty
    return Merged(merged[0], merged[1], any(p.sampled for p in parts), sum(p.pixels for p in parts))


def fit(
    merged: Merged,
    n_colors: int = 256,
    *,
    fixed_colors: Colors | None = None,
    colorspace: str = "rgb",
    seed: int = 0,
    max_iter: int = 100,
    tol: float = 1e-2,
    init: str = "wu",
    swap_rounds: int = 3,
) -> Palette:
    """The palette of a merged histogram (options as for :func:`palette`)."""
    n_colors = options.check_colors(n_colors)
    if colorspace not in ("rgb", "oklab"):
        raise OptionError(f"colorspace must be 'rgb' or 'oklab', got {colorspace!r}")
    fixed = None
    if fixed_colors is not None:
        fixed = fitting.unique_rows(fitting.check_palette(fixed_colors, "fixed_colors"))
        if len(fixed) > n_colors:
            raise OptionError(f"{len(fixed)} fixed colours are more than n_colors = {n_colors}")
        fixed = fitting.match_channels(merged, fixed)
    km = dict(seed=seed, max_iter=max_iter, tol=tol, init=init, swap_rounds=swap_rounds)
    f = fitting.fit(merged, n_colors, km, api._space(colorspace, merged.c), lambda stage: None, fixed)
    total = float(merged.counts.sum())
    return Palette(f.palette, mse=f.plain_sq / (total * merged.c), n_pixels=merged.pixels)


def palette(
    sources: Source | Sequence[Source],
    n_colors: int = 256,
    *,
    fixed_colors: Colors | None = None,
    colorspace: str = "rgb",
    resize: None | int | tuple[int, int] = None,
    seed: int = 0,
    max_iter: int = 100,
    tol: float = 1e-2,
    init: str = "wu",
    swap_rounds: int = 3,
    max_pixels: int | None = io.DEFAULT_MAX_PIXELS,
    allow_truncated: bool = False,
) -> Palette:
    """One palette for many images: the k-means of all their pixels together.

    Every source is read and counted as :func:`fastquant.compress` reads one
    image; the histograms are merged (a large image counts as much as its
    pixels) and the k-means runs once on the merged histogram.  With one
    source the palette is the one ``compress`` fits (in its order).  Map each
    image onto it with ``compress(src, palette=p)``.

    Parameters
    ----------
    sources : source or sequence of sources
        Paths, bytes, file objects, (H, W[, 3|4]) arrays or PIL images
        (RGB and RGBA mixed: the palette is RGBA, as for one RGBA image).
    n_colors : int
        Palette size, 1 to 65536.
    fixed_colors : sequence of str or (f, 3|4) array_like, optional
        Colours in the palette exactly (see :func:`fastquant.compress`).
    colorspace, resize, seed, max_iter, tol, init, swap_rounds, max_pixels, allow_truncated
        As for :func:`fastquant.compress`.

    Returns
    -------
    Palette
        ``mse``/``psnr`` over the union of the sources' pixels.

    Raises
    ------
    InputError, OptionError
        As :func:`fastquant.compress`; OptionError for no sources.
    """
    one = isinstance(sources, (str, os.PathLike, bytes, bytearray, memoryview, np.ndarray))
    whole = one or _is_pil(sources) or hasattr(sources, "read")
    items: list[Any] = [sources] if whole else list(cast(Iterable[Any], sources))
    counted = [count(s, resize=resize, max_pixels=max_pixels, allow_truncated=allow_truncated) for s in items]
    return fit(
        merge(counted),
        n_colors,
        fixed_colors=fixed_colors,
        colorspace=colorspace,
        seed=seed,
        max_iter=max_iter,
        tol=tol,
        init=init,
        swap_rounds=swap_rounds,
    )
