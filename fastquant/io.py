"""Reading images into uint8 arrays.

Reading goes through Pillow, restricted to an allow-list of raster formats
(:data:`READ_FORMATS`): PNG (and APNG: :func:`read_image` gives the first
frame, :func:`open_image` every frame when asked), JPEG (and MPO, the
multi-picture JPEGs of cameras), GIF, BMP, TIFF, WebP, ICO, PPM/PGM/PBM/PFM
and TGA.  Each is decoded inside the process by Pillow's own decoders or the
libraries Pillow links (libpng/zlib, libjpeg, libtiff, libwebp); no other
format is even identified.  PostScript/EPS and PDF (which Pillow hands to
Ghostscript, an external program that runs what the file says), and every
other Pillow plugin, are refused with :class:`~fastquant.errors.InputError`.

Hostile inputs are bounded before they cost anything:

* pixels: the header's width x height is checked against ``max_pixels``
  before decoding; ``max_pixels`` is the only pixel limit (Pillow's own
  ``MAX_IMAGE_PIXELS`` is not consulted; ``None`` means no limit);
* bytes: a source is read up to :func:`read_limit` bytes
  (``64 MiB + 8 bytes x max_pixels``: 8 bytes a pixel is the widest common
  raw layout, 16-bit RGBA, and 64 MiB leaves room for metadata); a pipe or
  file object is read in 1 MiB chunks and given up at the limit, a regular
  file larger than the limit is not read at all;
* truncation: image data that ends early is an error unless
  ``allow_truncated=True``; see :func:`open_image` for how it is detected.

Every mode is normalised to (H, W, 3) RGB or (H, W, 4) RGBA uint8, by
:func:`read_image` for the whole image, or strip by strip by
:func:`open_image`.  Colour values become sRGB values where a PNG says
they are not: see :func:`gamma_table`.  Writing is :mod:`fastquant.write` (the indexed PNG
encoder is :mod:`fastquant.png`).
"""

import os
import sys
import warnings

import numpy as np

from . import config, formats
from .errors import FastquantError, InputError, OptionError, ResourceError
from .formats import READ_FORMATS, read_limit  # noqa: F401  (part of this module's interface)

#: Default of ``max_pixels`` (``config.DEFAULT_MAX_PIXELS`` when this module was imported).
DEFAULT_MAX_PIXELS = config.DEFAULT_MAX_PIXELS
#: Default of ``max_frames`` (``config.DEFAULT_MAX_FRAMES`` when this module was imported).
DEFAULT_MAX_FRAMES = config.DEFAULT_MAX_FRAMES

# Pillow converts every other mode for us; 16/32-bit integer modes are scaled in numpy.
_AS_RGBA = {"LA", "La", "PA", "RGBA", "RGBa"}
_WIDE = {"I;16", "I;16B", "I;16L", "I;16N", "I"}


def pil_image(source):
    """``source`` if it is a ``PIL.Image.Image``, else None (Pillow is not imported for this:
    an image of it can only exist once it was).
    """
    pil = sys.modules.get("PIL.Image")
    return source if pil is not None and isinstance(source, pil.Image) else None


def source_name(source):
    """Short printable name of a source, for messages."""
    if pil_image(source) is not None:
        return getattr(source, "filename", None) or "<PIL image>"
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>"
    if isinstance(source, np.ndarray):
        return "<array>"
    return getattr(source, "name", None) or "<file>"


def to_uint8(image):
    """Normalise an array to (H, W, 3) RGB or (H, W, 4) RGBA uint8.

    Conversion rules: uint8 is used as is; bool maps to 0/255; uint16 is
    scaled by 255/65535 and rounded; other integer types must already lie in
    [0, 255]; floats must lie in [0, 1] and are scaled by 255 and rounded.
    (H, W) and (H, W, 1) are grey, (H, W, 2) grey + alpha.  An alpha channel
    that is fully opaque is dropped.

    Parameters
    ----------
    image : (H, W), (H, W, 1), (H, W, 2), (H, W, 3) or (H, W, 4) ndarray

    Returns
    -------
    (H, W, 3) or (H, W, 4) uint8 ndarray
        A new array, or ``image`` itself when it was already in this form and writable.

    Raises
    ------
    OptionError
        On a wrong shape, an empty image, a dtype that is not numeric, or
        values outside the documented range (NaN and infinity included).
    """
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise OptionError(f"expected an image of shape (H, W), (H, W, 3) or (H, W, 4), got {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise OptionError(f"image is empty: expected at least 1x1 pixels, got shape {a.shape}")
    if a.dtype == np.uint8:
        pass
    elif a.dtype == bool:
        a = a.astype(np.uint8) * np.uint8(255)
    elif a.dtype.kind == "u" and a.dtype.itemsize == 2:  # uint16 in either byte order
        a = ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.integer):
        if a.min() < 0 or a.max() > 255:
            raise OptionError(f"{a.dtype} image values must lie in [0, 255], got [{a.min()}, {a.max()}]")
        a = a.astype(np.uint8)
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise OptionError("float image contains NaN or infinity: expected finite values in [0, 1]")
        if a.min() < 0 or a.max() > 1:
            raise OptionError(f"float image values must lie in [0, 1], got [{a.min():g}, {a.max():g}]")
        a = np.rint(a.astype(np.float64) * 255).astype(np.uint8)
    else:
        raise OptionError(
            f"unsupported image dtype {a.dtype}: expected uint8, uint16, bool, another integer type or a float type"
        )
    a = _grey_to_rgb(a)
    if a.shape[2] == 4 and (a[:, :, 3] == 255).all():
        a = a[:, :, :3]
    if not a.flags.writeable:
        # A read-only array (np.asarray of a PIL image, a memory map) would make Numba compile a
        # second version of every kernel it reaches, which --precompile does not make: one copy is cheaper.
        return np.array(a, order="C")
    return np.ascontiguousarray(a)


def _grey_to_rgb(a):
    """(H, W), (H, W, 1) or (H, W, 2) grey (+ alpha) -> (H, W, 3|4) by replicating the grey;
    other arrays as they are.
    """
    if a.ndim == 2:
        a = a[:, :, None]
    if a.shape[2] in (1, 2):
        a = np.concatenate([np.repeat(a[:, :, :1], 3, axis=2), a[:, :, 1:]], axis=2)
    return a


def read_image(source, *, max_pixels=DEFAULT_MAX_PIXELS, allow_truncated=False, info=None):
    """Read an image into a uint8 RGB or RGBA array.

    Parameters
    ----------
    source : str, os.PathLike, bytes, binary file object, ndarray or PIL.Image.Image
        A file in one of the :data:`READ_FORMATS` (first frame of an
        animation; EXIF orientation applied), its bytes, an array (see
        :func:`to_uint8`), or a Pillow image in any mode (see
        :func:`open_image`).  A path may name a pipe; devices are refused.
    max_pixels : int or None
        Refuse images with more pixels than this, from the header, before
        decoding them; it also bounds the bytes read (:func:`read_limit`).
        None: no limit at all.
    allow_truncated : bool
        Decode what there is of a file whose image data ends early (the rest
        is left black, or grey for JPEG) instead of refusing it.
    info : dict, optional
        Filled with metadata worth keeping: ``"icc_profile"`` (bytes), when
        the file embeds an ICC profile.

    Returns
    -------
    image : (H, W, 3) or (H, W, 4) uint8 ndarray
        Grey becomes RGB; an alpha channel or a transparent colour key
        becomes RGBA, unless every pixel is opaque.
    nbytes : int or None
        Size of the encoded input, when it came from a file or bytes.

    Raises
    ------
    InputError
        When the source is missing, unreadable, not an image, in a format not
        read, corrupt, truncated or too large.
    ResourceError
        When there is not enough memory to decode it.
    OptionError
        When ``max_pixels`` is not None or a positive integer, or an array
        source is not an image.
    """
    with open_image(source, max_pixels=max_pixels, allow_truncated=allow_truncated, info=info) as d:
        return d.read(), d.nbytes


def open_image(
    source,
    *,
    max_pixels=DEFAULT_MAX_PIXELS,
    allow_truncated=False,
    info=None,
    animation=False,
    max_frames=DEFAULT_MAX_FRAMES,
):
    """Decode an image once, to hand it out in strips of rows.

    For images too large to hold twice: the memory used is the decoded
    image as Pillow holds it (1 to 4 bytes a pixel, 8 for 16-bit colour;
    for an array source, the normalised array) plus one strip at a time.

    Parameters are those of :func:`read_image`.  Truncation is detected
    thus: a file whose data ends before the image does (the usual cut-off
    download) is reported by Pillow's decoders for every format read; and
    before decoding, a PNG whose file is smaller than its pixels at deflate's
    best ratio (1032:1), or a Huffman-coded JPEG smaller than one bit per 8x8
    block of each component, is refused as truncated or forged (a header that
    claims a huge picture over a few bytes).  Not detected: a PNG or GIF whose
    compressed stream ends properly but early, and a JPEG cut and closed with
    an end marker above that bound (libjpeg only warns; Pillow keeps quiet).

    With ``animation=True``, an animated GIF, APNG or WebP is not decoded
    but handed over as :class:`fastquant.frames.Frames` (every frame, one at a
    time), once its headers have been checked: at most ``max_frames`` frames
    (None: no limit), and ``max_pixels`` counts the pixels of every frame.

    A Pillow image is taken as it is, by the same rules as a file of its
    mode: P and PA through their palette (and ``info["transparency"]``), 16-
    and 32-bit grey (``I;16``, ``I``) scaled by 255/65535, CMYK, YCbCr and
    the rest converted by Pillow to RGB; its EXIF orientation is not applied
    (as Pillow's own methods do not; ``PIL.ImageOps.exif_transpose`` does
    it), and it is never closed or changed here.

    Returns
    -------
    Decoded or fastquant.frames.Frames
        Close it (or use it as a context manager) to free the image.
    """
    formats.check_max_pixels(max_pixels)
    formats.check_max_frames(max_frames)
    if isinstance(source, np.ndarray):
        return Decoded("<array>", None, array=to_uint8(source))
    if pil_image(source) is not None:
        return _from_pil(source, max_pixels, info)
    name = source_name(source)
    fp, nbytes = formats.encoded(source, name, read_limit(max_pixels))
    if animation:
        from .frames import open_frames

        try:
            frames = open_frames(
                fp, name, nbytes, max_pixels=max_pixels, max_frames=max_frames, allow_truncated=allow_truncated
            )
        except BaseException:
            fp.close()
            raise
        if frames is not None:
            if info is not None and frames.icc_profile:
                info["icc_profile"] = bytes(frames.icc_profile)
            return frames
    memory = []
    try:
        im, header = formats.decode(
            fp, name, nbytes, max_pixels, allow_truncated, lambda im: memory.extend(_own_memory(im))
        )
    finally:
        fp.close()
    if info is not None and header.icc_profile:
        info["icc_profile"] = bytes(header.icc_profile)
    if memory and im.im is not memory[1]:  # Pillow decoded elsewhere after all
        memory = []
    return Decoded(name, nbytes, image=im, header=header, memory=memory[0] if memory else None)


def _own_memory(im):
    """``(mapping, core)``: an anonymous memory mapping and a Pillow image core over it, made
    the image's own before it is decoded, so that the decoder writes the pixels there; or ``()``.

    For RGB and RGBA PNGs and JPEGs (one frame), which Pillow decodes at 4 bytes a pixel
    whatever the mode: :meth:`Decoded.take` then packs RGB to 3 bytes a pixel in place and
    gives the rest back to the system, instead of copying it out while Pillow's image is held
    (7 bytes a pixel at once).  Pillow keeps an image core it finds there (``load_prepare``);
    :func:`open_image` checks that it did.
    """
    import mmap

    from PIL import Image

    if im.format not in ("PNG", "JPEG") or im.mode not in ("RGB", "RGBA") or getattr(im, "n_frames", 1) != 1:
        return ()
    if not hasattr(mmap, "MAP_ANONYMOUS") or not hasattr(mmap, "MADV_DONTNEED"):
        return ()
    w, h = im.size
    try:
        mapping = mmap.mmap(-1, 4 * w * h, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        core = Image.core.map_buffer(mapping, (w, h), "raw", 0, (im.mode, 0, 1))
        im.im = core
    except Exception:  # Pillow's internals moved: it allocates its own
        return ()
    return mapping, core


def gamma_table(im):
    """The sRGB level of each colour sample of a Pillow image, or None to keep them.

    A PNG with a gAMA chunk and neither sRGB nor iCCP (which viewers follow
    instead) is shown by gamma-aware viewers (browsers) as
    :func:`fastquant.colorspace.gamma_to_srgb` says, and written out without
    gAMA: so its samples are converted to sRGB values first, as pngquant does,
    and the palette is fitted on what is seen.  A gamma within 5% of sRGB's
    1/2.2 counts as sRGB, as libpng counts it (no change).  Alpha is not
    gamma-encoded and stays.  Other formats and chunks are left as they are.
    """
    info = im.info
    gamma = info.get("gamma")
    if im.format != "PNG" or not gamma or "srgb" in info or info.get("icc_profile"):
        return None
    if abs(gamma * 2.2 - 1.0) < 0.05:
        return None
    from .colorspace import gamma_to_srgb

    return gamma_to_srgb(float(gamma))


def _from_pil(im, max_pixels, info):
    """:class:`Decoded` of a caller's Pillow image (see :func:`open_image`)."""
    name = source_name(im)
    w, h = im.size
    if w == 0 or h == 0:
        raise OptionError(f"{name}: image is empty ({w}x{h})")
    if max_pixels is not None and w * h > max_pixels:
        raise InputError(f"{name}: {w}x{h} = {w * h} pixels is more than the limit of {max_pixels} (max_pixels)")
    try:
        im.load()  # a lazily opened file decodes now: its errors are the input's
    except (FastquantError, MemoryError):
        raise
    except Exception as e:
        raise InputError(f"{name}: cannot decode image: {formats.first_line(e)}") from e
    icc = im.info.get("icc_profile")
    if info is not None and icc:
        info["icc_profile"] = bytes(icc)
    header = formats.Header(im.mode, None, im.info.get("transparency"), icc, 1)
    return Decoded(name, None, image=im, header=header, owned=False)


class Decoded:
    """A decoded image, handed out in strips of rows; :func:`open_image` makes them.

    Attributes
    ----------
    width, height : int
        Size of the upright image (after the EXIF orientation).
    nbytes : int or None
        Size of the encoded input; None for an array.
    name : str
        The source's name, for messages.
    strip_rows : int
        Rows in a strip of about ``config.STRIP_BYTES`` bytes: the default of :meth:`strips`.
    """

    def __init__(self, name, nbytes, *, array=None, image=None, header=None, owned=True, memory=None):
        self.name, self.nbytes = name, nbytes
        self._array, self._im = array, image
        self._memory = memory  # the mapping Pillow decoded into (see _own_memory), or None
        self._owned = owned  # a caller's Pillow image is left open
        self._channels = self._gamma = None
        if array is not None:
            self.height, self.width, self._channels = array.shape
            self._alpha = self._channels == 4
        else:
            self._setup(image, header)
        self.strip_rows = max(1, config.STRIP_BYTES // (4 * self.width))

    def _setup(self, im, header):
        """The normalisation rules of one Pillow image, from what its file said."""
        mode, key = self._mode, self._key = header.mode, header.key
        self._grey = mode in _WIDE or (mode == "L" and isinstance(key, int))
        if self._grey:  # the colour key is applied to the raw grey values
            self._target = None
            self._alpha = isinstance(key, int)
            depth = {"L;2": 2, "L;4": 4}.get(header.rawmode)
            if depth and im.format == "PNG" and isinstance(key, int):
                # Pillow scales 1/2/4-bit grey PNG samples to 0..255 but not the tRNS key.
                self._key = key * (255 // ((1 << depth) - 1))
        else:
            self._alpha = key is not None or mode in _AS_RGBA
            self._target = "RGBA" if self._alpha else "RGB"
        if not self._alpha:
            self._channels = 3
        self._gamma = gamma_table(im)
        self._orient = header.orientation
        w, h = im.size
        self.width, self.height = (h, w) if self._orient >= 5 else (w, h)

    @property
    def channels(self):
        """3 (RGB) or 4 (RGBA: some pixel is not fully opaque)."""
        if self._channels is None:
            self._channels = 4 if self._translucent() else 3
        return self._channels

    def _translucent(self):
        """Whether some pixel has alpha < 255, in one cheap pass: Pillow's extrema for a
        mode with an alpha band, the strips' alpha otherwise (colour keys, palettes).
        """
        im = self._im
        if self._target == "RGBA" and im.mode in _AS_RGBA:
            return im.getextrema()[-1][0] < 255
        return any((self._rows(y0, y1)[:, :, 3] < 255).any() for y0, y1 in self._spans(self.strip_rows))

    def _spans(self, rows):
        return ((y0, min(y0 + rows, self.height)) for y0 in range(0, self.height, rows))

    def strip(self, y0, y1):
        """Rows ``y0:y1`` of the image, exactly as :func:`read_image` gives them.

        Returns
        -------
        (y1 - y0, width, channels) uint8 ndarray
            A new, writable array.
        """
        if self._array is None and self._im is None:
            raise ValueError(f"{self.name}: the decoded image is closed")
        if not (
            isinstance(y0, (int, np.integer)) and isinstance(y1, (int, np.integer)) and 0 <= y0 <= y1 <= self.height
        ):
            raise OptionError(f"strip rows must satisfy 0 <= y0 <= y1 <= {self.height}, got {y0!r}, {y1!r}")
        c = self.channels
        if self._array is not None:
            return self._array[y0:y1].copy()
        try:
            out = np.empty((y1 - y0, self.width, c), np.uint8)
            out[...] = self._rows(y0, y1)[:, :, :c]
        except MemoryError as e:
            raise ResourceError(f"{self.name}: not enough memory for rows {y0}:{y1}") from e
        return out

    def strips(self, rows=None):
        """Yield ``(y0, strip)`` from the top down, ``rows`` rows each (default :attr:`strip_rows`)."""
        for y0, y1 in self._spans(rows or self.strip_rows):
            yield y0, self.strip(y0, y1)

    def read(self):
        """The whole image: what :func:`read_image` returns (an array source may be returned as is)."""
        return self._read(self.strip_rows)

    def take(self):
        """The whole image as :meth:`read` gives it, with the decoded image closed once it is copied;
        None for an array or a caller's Pillow image (neither is ours to drop).

        For an image read several times in strips (:mod:`fastquant.large`): Pillow holds RGB at 4 bytes
        a pixel, the array 3, and strips of it are views, converted once.  It is copied in strips of a
        quarter of :attr:`strip_rows`: while both are held, the strips in flight are what comes on top.
        """
        if self._im is None or not self._owned:
            return None
        self._channels = self.channels  # decided first (a cheap pass): no 4-channel copy made only to drop its alpha
        memory = self._memory
        if memory is not None and self._orient == 1 and self._gamma is None and self._target == self._im.mode:
            out = _packed(self._im, memory, self.height, self.width, self._channels, self.name)
        else:
            out = self._read(max(1, self.strip_rows // 4))
        self.close()
        return out

    def _read(self, rows):
        """:meth:`read`, copied from the decoded image ``rows`` rows at a time."""
        if self._array is not None:
            return self._array
        if self._im is None:
            raise ValueError(f"{self.name}: the decoded image is closed")
        if self._channels is None and self._target == "RGBA" and self._im.mode in _AS_RGBA:
            self._channels = 4 if self._translucent() else 3  # cheap for these: no alpha filled to be dropped
        c = self._channels or 4
        try:
            out = np.empty((self.height, self.width, c), np.uint8)
            for y0, y1 in self._spans(rows):
                out[y0:y1] = self._rows(y0, y1)[:, :, :c]
            if self._channels is None:  # decided while it is all here, as to_uint8 does
                self._channels = 4 if (out[:, :, 3] < 255).any() else 3
                if self._channels == 3:
                    out = np.ascontiguousarray(out[:, :, :3])
        except MemoryError as e:
            raise ResourceError(f"{self.name}: not enough memory for the {self.width}x{self.height} image") from e
        return out

    def _rows(self, y0, y1):
        """Rows y0:y1 of the upright image as uint8 (n, W, 3|4), with the alpha channel
        whenever the mode or a key calls for one; a view of a temporary, maybe read-only.
        """
        im, o = self._im, self._orient
        w, h = im.size
        box = {
            1: (0, y0, w, y1),
            2: (0, y0, w, y1),
            3: (0, h - y1, w, h - y0),
            4: (0, h - y1, w, h - y0),
            5: (y0, 0, y1, h),
            6: (y0, 0, y1, h),
            7: (w - y1, 0, w - y0, h),
            8: (w - y1, 0, w - y0, h),
        }[o]
        try:  # converting is still decoding: a damaged file can fail here (a palette image without one)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                part = im if box == (0, 0, w, h) else formats.crop(im, box)
                if self._target is not None and part.mode != self._target:
                    part = part.convert(self._target)
                elif im.format == "PNG" and part.mode == "I":  # as imageio reads 16-bit grey PNGs
                    part = part.convert("I;16")
                a = np.asarray(part)
        except (FastquantError, MemoryError):
            raise
        except Exception as e:
            raise InputError(f"{self.name}: cannot decode image: {formats.first_line(e)}") from e
        if o != 1:
            a = formats.ORIENT[o](a)
        if self._grey:
            a = _grey_with_key(a, self._mode in _WIDE, self._key)
        a = _grey_to_rgb(a)
        if self._gamma is not None:  # new array: ``a`` may be a read-only view
            a = np.concatenate([self._gamma[a[:, :, :3]], a[:, :, 3:]], axis=2)
        return a

    def close(self):
        """Free the decoded image."""
        if self._im is not None and self._owned:
            self._im.close()
        self._im = self._array = self._memory = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"<Decoded {self.name} {self.width}x{self.height}>"


def _packed(im, memory, h, w, c, name):
    """The (h, w, c) uint8 pixels of ``memory``, which holds Pillow's RGB or RGBA image ``im``
    at 4 bytes a pixel: for ``c`` = 3 packed to 3 bytes in place and the pages past them given
    back to the system.  Pillow's raw encoder packs (as ``tobytes`` does) a band of rows at a
    time, and each band is written where rows it has already read were: no byte is written over
    before it is read.
    """
    import mmap

    from PIL import Image

    pixels = np.frombuffer(memory, np.uint8, count=4 * h * w).reshape(h, w, 4)
    if c == 4:
        return pixels
    flat = np.frombuffer(memory, np.uint8, count=3 * h * w)
    try:
        encoder = Image._getencoder(im.mode, "raw", "RGB")
        encoder.setimage(im.im, (0, 0, w, h))
    except Exception:  # Pillow's internals moved: the same pixels by a copy, at 3 bytes a pixel more
        return np.ascontiguousarray(pixels[..., :3])
    done, status = 0, 0
    while not status:
        _, status, data = encoder.encode(max(1 << 20, 4 * w))
        flat[done : done + len(data)] = np.frombuffer(data, np.uint8)
        done += len(data)
    if status < 0 or done != flat.size:
        raise InputError(f"{name}: cannot convert the decoded image (Pillow error {status})")
    start = -(-flat.size // mmap.PAGESIZE) * mmap.PAGESIZE
    if start < len(memory):
        memory.madvise(mmap.MADV_DONTNEED, start, len(memory) - start)
    return flat.reshape(h, w, 3)


def _grey_with_key(a, wide, key):
    """Grey values (8 or 16 bit) with an optional colour key -> uint8 grey or grey + alpha."""
    if wide:
        a = np.clip(a, 0, 65535).astype(np.uint16)
        grey = ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    else:
        grey = a
    if not isinstance(key, int):
        return grey
    alpha = np.where(a == key, 0, 255).astype(np.uint8)
    return np.stack([grey, alpha], axis=-1)
