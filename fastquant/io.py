"""Reading images into uint8 arrays.

Reading goes through Pillow, restricted to an allow-list of raster formats
(:data:`READ_FORMATS`): PNG (and APNG, first frame), JPEG (and MPO, the
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
:func:`open_image`.  Writing is :mod:`fastquant.write` (the indexed PNG
encoder is :mod:`fastquant.png`).
"""
import contextlib
import io as _pyio
import os
import stat
import struct
import threading
import warnings
from typing import NamedTuple

import numpy as np

from . import config
from .errors import FastquantError, InputError, OptionError, ResourceError

#: Default of ``max_pixels`` (``config.DEFAULT_MAX_PIXELS`` when this module was imported).
DEFAULT_MAX_PIXELS = config.DEFAULT_MAX_PIXELS

#: Pillow formats read, tried in this order (TGA, which has no signature, last).  APNG
#: is Pillow's "PNG", PPM covers PBM, PGM, PPM, PNM and PFM, MPO is a JPEG with
#: more pictures after the first.  Nothing else is identified, let alone decoded.
READ_FORMATS = ("PNG", "JPEG", "MPO", "GIF", "BMP", "TIFF", "WEBP", "ICO", "PPM", "TGA")

# Pillow converts every other mode for us; 16/32-bit integer modes are scaled in numpy.
_AS_RGBA = {"LA", "La", "PA", "RGBA", "RGBa"}
_WIDE = {"I;16", "I;16B", "I;16L", "I;16N", "I"}

# Bits a pixel of a PNG, by the raw mode Pillow decodes it with (grey 1-bit PNGs are "1").
_PNG_BITS = {"1": 1, "L;2": 2, "L;4": 4, "L": 8, "I;16B": 16, "RGB": 24, "RGB;16B": 48, "P;1": 1,
             "P;2": 2, "P;4": 4, "P": 8, "LA": 16, "LA;16B": 32, "RGBA": 32, "RGBA;16B": 64}
_DEFLATE_RATIO = 1032  # deflate's best: a 258-byte match coded in 2 bits
_TRUNCATED = "image file is truncated"  # how Pillow says the data ran out
_LOCK = threading.Lock()  # held while Pillow's own pixel limit is lifted (see _pillow_unlimited)

# EXIF orientation (tag 0x0112) -> the transform giving the upright image, on axes 0 (rows)
# and 1 (columns) of a (H, W) or (H, W, C) array.
_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 1)[:, ::-1],
    8: lambda a: np.rot90(a, 1),
}


def source_name(source):
    """Short printable name of a source, for messages."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>"
    if isinstance(source, np.ndarray):
        return "<array>"
    return getattr(source, "name", None) or "<file>"


def read_limit(max_pixels):
    """Most bytes read from one source: ``64 MiB + 8 * max_pixels`` (None: no limit).

    8 bytes a pixel holds the widest common raw layout (16-bit RGBA, as in an
    uncompressed PNG, PAM or TIFF); compressed files are far smaller, and the
    64 MiB are room for headers, colour profiles and other metadata.
    """
    return None if max_pixels is None else config.READ_SLACK + 8 * int(max_pixels)


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
        A new array, or ``image`` itself when it was already in this form.

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
        raise OptionError(f"unsupported image dtype {a.dtype}: expected uint8, uint16, bool, "
                          "another integer type or a float type")
    a = _grey_to_rgb(a)
    if a.shape[2] == 4 and (a[:, :, 3] == 255).all():
        a = a[:, :, :3]
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
    source : str, os.PathLike, bytes, binary file object or ndarray
        A file in one of the :data:`READ_FORMATS` (first frame of an
        animation; EXIF orientation applied), its bytes, or an array (see
        :func:`to_uint8`).  A path may name a pipe; devices are refused.
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


def open_image(source, *, max_pixels=DEFAULT_MAX_PIXELS, allow_truncated=False, info=None):
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

    Returns
    -------
    Decoded
        Close it (or use it as a context manager) to free the image.
    """
    _check_max_pixels(max_pixels)
    if isinstance(source, np.ndarray):
        return Decoded("<array>", None, array=to_uint8(source))
    name = source_name(source)
    fp, nbytes = _encoded(source, name, read_limit(max_pixels))
    try:
        im, header = _decode(fp, name, nbytes, max_pixels, allow_truncated)
    finally:
        fp.close()
    if info is not None and header.icc_profile:
        info["icc_profile"] = bytes(header.icc_profile)
    return Decoded(name, nbytes, image=im, header=header)


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

    def __init__(self, name, nbytes, *, array=None, image=None, header=None):
        self.name, self.nbytes = name, nbytes
        self._array, self._im = array, image
        self._channels = None
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
        if not (isinstance(y0, (int, np.integer)) and isinstance(y1, (int, np.integer))
                and 0 <= y0 <= y1 <= self.height):
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
        if self._array is not None:
            return self._array
        if self._im is None:
            raise ValueError(f"{self.name}: the decoded image is closed")
        if self._channels is None and self._target == "RGBA" and self._im.mode in _AS_RGBA:
            self._channels = 4 if self._translucent() else 3  # cheap for these: no alpha filled to be dropped
        c = self._channels or 4
        try:
            out = np.empty((self.height, self.width, c), np.uint8)
            for y0, y1 in self._spans(self.strip_rows):
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
        box = {1: (0, y0, w, y1), 2: (0, y0, w, y1), 3: (0, h - y1, w, h - y0), 4: (0, h - y1, w, h - y0),
               5: (y0, 0, y1, h), 6: (y0, 0, y1, h), 7: (w - y1, 0, w - y0, h), 8: (w - y1, 0, w - y0, h)}[o]
        try:  # converting is still decoding: a damaged file can fail here (a palette image without one)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                part = im if box == (0, 0, w, h) else _crop(im, box)
                if self._target is not None and part.mode != self._target:
                    part = part.convert(self._target)
                elif im.format == "PNG" and part.mode == "I":  # as imageio reads 16-bit grey PNGs
                    part = part.convert("I;16")
                a = np.asarray(part)
        except (FastquantError, MemoryError):
            raise
        except Exception as e:
            raise InputError(f"{self.name}: cannot decode image: {_first_line(e)}") from e
        if o != 1:
            a = _ORIENT[o](a)
        if self._grey:
            a = _grey_with_key(a, self._mode in _WIDE, self._key)
        return _grey_to_rgb(a)

    def close(self):
        """Free the decoded image."""
        if self._im is not None:
            self._im.close()
        self._im = self._array = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"<Decoded {self.name} {self.width}x{self.height}>"


def _check_max_pixels(max_pixels):
    if max_pixels is not None and (isinstance(max_pixels, bool) or not isinstance(
            max_pixels, (int, np.integer)) or max_pixels < 1):
        raise OptionError(f"max_pixels must be None or an integer >= 1, got {max_pixels!r}")


def _encoded(source, name, limit):
    """A binary file positioned at the encoded image, and its size in bytes.

    A regular file is handed over open, unread (refused when larger than
    ``limit``); a pipe or a file object is read into memory, ``limit`` bytes at
    most, in chunks.
    """
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        try:
            mode = os.stat(path).st_mode
        except (FileNotFoundError, ValueError) as e:  # ValueError: a NUL in the name
            broken = " (broken symbolic link)" if os.path.islink(path) else ""
            raise InputError(f"{name}: no such file{broken}") from e
        except OSError as e:  # a symbolic link loop, a folder we may not search...
            raise InputError(f"{name}: cannot read: {e.strerror or e}") from e
        if stat.S_ISDIR(mode):
            raise InputError(f"{name}: is a folder, not an image file")
        if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):  # pipes are fine: <(cat x.png)
            raise InputError(f"{name}: not a regular file (a device or a socket)")
        try:
            f = open(path, "rb")
        except OSError as e:
            raise InputError(f"{name}: cannot read: {e.strerror or e}") from e
        try:
            st = os.fstat(f.fileno())
            if stat.S_ISREG(st.st_mode) and st.st_size > 0:  # size 0: maybe /proc, read it as a pipe
                if limit is not None and st.st_size > limit:
                    raise InputError(_too_many_bytes(name, limit))
                return f, st.st_size
            buf, nbytes = _read_bounded(f, name, limit)
        except OSError as e:
            f.close()
            raise InputError(f"{name}: cannot read: {e.strerror or e}") from e
        except BaseException:
            f.close()
            raise
        f.close()
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = source if isinstance(source, bytes) else bytes(source)
        buf, nbytes = _pyio.BytesIO(data), len(data)
    elif hasattr(source, "read"):
        buf, nbytes = _read_bounded(source, name, limit)
    else:
        raise InputError(f"expected a path, bytes, a binary file or an ndarray, got {type(source).__name__}")
    if not nbytes:
        raise InputError(f"{name}: empty file")
    return buf, nbytes


def _read_bounded(f, name, limit):
    """What is left in ``f`` as a BytesIO, and its size, read in chunks; an error past ``limit`` bytes."""
    buf = _pyio.BytesIO()
    try:
        while True:
            chunk = f.read(config.READ_CHUNK)
            if not chunk:
                break
            if not isinstance(chunk, (bytes, bytearray)):
                raise InputError(f"{name}: file object must be opened in binary mode")
            buf.write(chunk)
            if limit is not None and buf.tell() > limit:
                raise InputError(_too_many_bytes(name, limit))
    except UnicodeDecodeError as e:
        raise InputError(f"{name}: file object must be opened in binary mode ('rb')") from e
    except (OSError, ValueError) as e:  # ValueError: a closed file
        raise InputError(f"{name}: cannot read: {getattr(e, 'strerror', None) or e}") from e
    except MemoryError as e:
        raise ResourceError(f"{name}: not enough memory to read {buf.tell()} bytes and more") from e
    n = buf.tell()
    buf.seek(0)
    return buf, n


def _too_many_bytes(name, limit):
    return (f"{name}: more than {limit} bytes, the most read for the pixel limit"
            " (64 MiB + 8 bytes a pixel of --max-pixels)")


def _decode(fp, name, nbytes, max_pixels, allow_truncated):
    """Identify (allow-listed formats only), check and decode the first frame of ``fp``."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return _open_checked(fp, name, nbytes, max_pixels, allow_truncated)
            except Image.DecompressionBombError:
                # Pillow's own limit, which some plugins (GIF, TIFF, ICO, MPO) check
                # themselves: max_pixels is the limit here, so try again without it.
                with _pillow_unlimited():
                    return _open_checked(fp, name, nbytes, max_pixels, allow_truncated)
    except FastquantError:  # ours, including a time limit that struck while decoding
        raise
    except MemoryError as e:
        raise ResourceError(f"{name}: not enough memory to decode the image") from e
    except Exception as e:  # decoders raise anything: OSError, SyntaxError, ValueError, zlib.error...
        inner = e.__cause__ or e.__context__
        while inner is not None:  # a time limit that struck in a plugin's own error handling
            if isinstance(inner, FastquantError):
                raise inner from None
            inner = inner.__cause__ or inner.__context__
        raise InputError(f"{name}: cannot decode image: {_first_line(e)}") from e


class _Header(NamedTuple):
    """What a file says of its first frame before it is decoded: the normalisation follows it."""

    mode: str  # Pillow's mode
    rawmode: object  # how Pillow decodes it ("L;4": 4-bit grey)
    key: object  # info["transparency"]: a colour key, or alpha by palette entry
    icc_profile: object
    orientation: int  # EXIF orientation, 1 to 8 (1 when absent or invalid)


def _open_checked(fp, name, nbytes, max_pixels, allow_truncated):
    im = _identify(fp, name)
    try:
        mode, key, icc = im.mode, im.info.get("transparency"), im.info.get("icc_profile")
        args = im.tile[0][3] if im.tile else None
        rawmode = args if isinstance(args, str) else args[0] if args else None
        _check_size(im, name, max_pixels)
        if not allow_truncated:
            _check_data_size(im, fp, name, nbytes, rawmode)
        elif im.format in ("JPEG", "MPO"):
            im.fp = _EndMarkerAtEOF(im.fp)  # libjpeg then ends the picture with what it has
        try:
            im.load()
        except OSError as e:
            if not str(e).startswith(_TRUNCATED):
                raise
            if not allow_truncated:
                raise InputError(f"{name}: truncated: the image data ends early"
                                 " (--allow-truncated reads what is there)") from e
            im.tile = []  # keep the rows decoded; the rest stays black
        _check_size(im, name, max_pixels)  # an ICO's picture may differ from its directory
        orientation = im.getexif().get(0x0112)  # after load(): a PNG's eXIf may follow its data
        return im, _Header(mode, rawmode, key, icc, orientation if orientation in _ORIENT else 1)
    except BaseException:
        im.close()
        raise


def _identify(fp, name):
    """Open ``fp`` with the first plugin of :data:`READ_FORMATS` that takes it (what
    ``PIL.Image.open(fp, formats=READ_FORMATS)`` does, but without Pillow's own pixel limit).
    """
    from PIL import IcoImagePlugin, Image, MpoImagePlugin, TgaImagePlugin, TiffImagePlugin, WebPImagePlugin  # noqa: F401

    Image.preinit()  # PNG, JPEG, GIF, BMP, PPM; the others are imported above
    fp.seek(0)
    prefix = fp.read(16)
    failed = None
    for fmt in READ_FORMATS:
        factory, accept = Image.OPEN.get(fmt, (None, None))
        if factory is None:  # MPO has no opener of its own: JPEG's returns MPO files
            continue
        ok = accept is None or accept(prefix)
        if not ok or isinstance(ok, str):  # a string: Pillow built without the format
            continue
        fp.seek(0)
        try:
            im = factory(fp, "")
        except (SyntaxError, IndexError, TypeError, struct.error) as e:  # not this format after all
            if accept is not None:  # but its signature: say why it failed
                failed = failed or f"cannot decode image: damaged {fmt} header ({_first_line(e)})"
            continue
        if im.format in READ_FORMATS:
            return im
        im.close()
    if failed:
        raise InputError(f"{name}: {failed}")
    raise InputError(f"{name}: {_not_read(prefix)}")


def _not_read(prefix):
    """Why nothing in READ_FORMATS took a file starting with ``prefix``."""
    from PIL import Image

    Image.init()  # every plugin registers its signature check; none is asked to open the file
    for fmt, (_, accept) in sorted(Image.OPEN.items()):
        if fmt in READ_FORMATS or accept is None:
            continue
        try:
            ok = accept(prefix)
        except Exception:
            continue
        if ok and not isinstance(ok, str):
            return f"{fmt} files are not read (fastquant reads only {', '.join(READ_FORMATS)})"
    return f"cannot decode image: not an image, or not in a format fastquant reads ({', '.join(READ_FORMATS)})"


def _check_size(im, name, max_pixels):
    w, h = im.size
    if max_pixels is not None and w * h > max_pixels:
        raise InputError(f"{name}: {w}x{h} = {w * h} pixels is more than the limit of {max_pixels}"
                         " (--max-pixels)")


def _check_data_size(im, fp, name, nbytes, rawmode):
    """Refuse a PNG or JPEG too small to hold the picture its header announces."""
    w, h = im.size
    if im.format == "PNG":
        bits = w * h * _PNG_BITS.get(rawmode, 1)
        if nbytes * 8 * _DEFLATE_RATIO < bits:
            raise InputError(f"{name}: truncated or forged: {nbytes} bytes cannot hold {w}x{h} = {w * h}"
                             f" pixels (deflate's limit is {_DEFLATE_RATIO}:1)")
    elif im.format in ("JPEG", "MPO") and getattr(im, "layer", None):
        hmax = max(c[1] for c in im.layer) or 1
        vmax = max(c[2] for c in im.layer) or 1
        blocks = sum(_ceil(_ceil(w * c[1], hmax), 8) * _ceil(_ceil(h * c[2], vmax), 8) for c in im.layer)
        if nbytes * 8 < blocks and not _jpeg_arithmetic(fp):
            raise InputError(f"{name}: truncated or forged: {nbytes} bytes cannot hold {w}x{h} = {w * h}"
                             f" pixels ({blocks} blocks of 8x8, at least a bit each: the limit of Huffman coding)")


def _ceil(a, b):
    return -(-a // b)


def _jpeg_arithmetic(fp):
    """Whether the JPEG in ``fp`` is arithmetic-coded (SOF9 and up), by walking its markers."""
    fp.seek(2)
    while True:
        b = fp.read(4)
        if len(b) < 4 or b[0] != 0xFF:
            return False
        if b[1] == 0xFF:  # fill byte
            fp.seek(-3, 1)
        elif 0xC0 <= b[1] <= 0xCF and b[1] not in (0xC4, 0xC8, 0xCC):
            return b[1] >= 0xC9
        else:
            fp.seek(int.from_bytes(b[2:], "big") - 2, 1)


class _EndMarkerAtEOF:
    """A file that, once at its end, reads a JPEG end-of-image marker once: what Pillow
    does for truncated JPEGs with its global LOAD_TRUNCATED_IMAGES, for one file.
    """

    def __init__(self, f):
        self._f, self._ended = f, False

    def read(self, n=-1):
        s = self._f.read(n)
        if not s and n and not self._ended:
            self._ended = True
            return b"\xff\xd9"
        return s

    def __getattr__(self, attr):
        return getattr(self._f, attr)


def _crop(im, box):
    from PIL import Image

    try:
        return im.crop(box)
    except Image.DecompressionBombError:  # Pillow checks its own limit on crops too
        with _pillow_unlimited():
            return im.crop(box)


@contextlib.contextmanager
def _pillow_unlimited():
    """Lift Pillow's process-wide pixel limit for the few plugins that check it
    themselves (max_pixels has been checked); restored on leaving.
    """
    from PIL import Image

    with _LOCK:
        old, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = old


def _first_line(e):
    text = str(e).strip()
    return text.splitlines()[0] if text else f"damaged or inconsistent data ({type(e).__name__})"


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
