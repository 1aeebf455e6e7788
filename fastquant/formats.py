"""Which files are read, and opening them safely: the allow-list of formats,
bounded reads, the header's pixel count, and truncated or lying data.

:mod:`fastquant.io` opens every source through :func:`decode`; see its
module docstring for the rules these functions enforce.
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

#: Pillow formats read, tried in this order (TGA, which has no signature, last).  APNG
#: is Pillow's "PNG", PPM covers PBM, PGM, PPM, PNM and PFM, MPO is a JPEG with
#: more pictures after the first.  Nothing else is identified, let alone decoded.
READ_FORMATS = ("PNG", "JPEG", "MPO", "GIF", "BMP", "TIFF", "WEBP", "ICO", "PPM", "TGA")

# Bits a pixel of a PNG, by the raw mode Pillow decodes it with (grey 1-bit PNGs are "1").
_PNG_BITS = {
    "1": 1,
    "L;2": 2,
    "L;4": 4,
    "L": 8,
    "I;16B": 16,
    "RGB": 24,
    "RGB;16B": 48,
    "P;1": 1,
    "P;2": 2,
    "P;4": 4,
    "P": 8,
    "LA": 16,
    "LA;16B": 32,
    "RGBA": 32,
    "RGBA;16B": 64,
}
_DEFLATE_RATIO = 1032  # deflate's best: a 258-byte match coded in 2 bits
_TRUNCATED = "image file is truncated"  # how Pillow says the data ran out
_LOCK = threading.Lock()  # held while Pillow's own pixel limit is lifted (see _pillow_unlimited)

# EXIF orientation (tag 0x0112) -> the transform giving the upright image, on axes 0 (rows)
# and 1 (columns) of a (H, W) or (H, W, C) array.
ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 1)[:, ::-1],
    8: lambda a: np.rot90(a, 1),
}


def read_limit(max_pixels):
    """Most bytes read from one source: ``64 MiB + 8 * max_pixels`` (None: no limit).

    8 bytes a pixel holds the widest common raw layout (16-bit RGBA, as in an
    uncompressed PNG, PAM or TIFF); compressed files are far smaller, and the
    64 MiB are room for headers, colour profiles and other metadata.
    """
    return None if max_pixels is None else config.READ_SLACK + 8 * int(max_pixels)


def check_max_pixels(max_pixels):
    """Raise :class:`OptionError` unless ``max_pixels`` is None or an integer >= 1."""
    if max_pixels is not None and (
        isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or max_pixels < 1
    ):
        raise OptionError(f"max_pixels must be None or an integer >= 1, got {max_pixels!r}")


def encoded(source, name, limit):
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
    return (
        f"{name}: more than {limit} bytes, the most read for the pixel limit (64 MiB + 8 bytes a pixel of --max-pixels)"
    )


def decode(fp, name, nbytes, max_pixels, allow_truncated, before_load=None):
    """Identify (allow-listed formats only), check and decode the first frame of ``fp``;
    ``before_load(im)``, when given, is called on the opened image just before it is decoded.
    """
    from PIL import Image

    with decode_errors(name), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return _open_checked(fp, name, nbytes, max_pixels, allow_truncated, before_load)
        except Image.DecompressionBombError:
            # Pillow's own limit, which some plugins (GIF, TIFF, ICO, MPO) check
            # themselves: max_pixels is the limit here, so try again without it.
            with pillow_unlimited():
                return _open_checked(fp, name, nbytes, max_pixels, allow_truncated, before_load)


@contextlib.contextmanager
def decode_errors(name):
    """Turn what a decoder raises inside the block into fastquant's errors: ours pass through,
    a MemoryError becomes :class:`ResourceError`, anything else a one-line :class:`InputError`.
    """
    try:
        yield
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
        raise InputError(f"{name}: cannot decode image: {first_line(e)}") from e


def count_frames(im, stop):
    """Frames of an opened image, from its headers alone (no pixel is decoded); counting
    stops past ``stop`` (None: no stop) so that a frame bomb costs no more than its limit.

    APNG and WebP state their frame count; a GIF's frames are counted by walking
    its blocks, skipping the image data.
    """
    if im.format != "GIF" or not hasattr(im, "_seek"):
        return getattr(im, "n_frames", 1)
    n = 1
    try:
        while stop is None or n <= stop:
            im._seek(n, False)  # Pillow's own n_frames walks the same way, without a stop
            n += 1
    except EOFError:
        pass
    im.seek(0)
    return n


def check_frames(name, n_frames, width, height, max_pixels, max_frames):
    """Refuse an animation whose headers announce more frames, or more pixels over all its
    frames, than the limits, before any frame is decoded (:class:`InputError`).
    """
    if max_frames is not None and n_frames > max_frames:
        at_least = "at least " if n_frames == max_frames + 1 else ""  # a GIF is counted up to the limit
        raise InputError(f"{name}: {at_least}{n_frames} frames is more than the limit of {max_frames} (--max-frames)")
    total = n_frames * width * height
    if max_pixels is not None and total > max_pixels:
        raise InputError(
            f"{name}: {n_frames} frames of {width}x{height} = {total} pixels is more than the limit of"
            f" {max_pixels} (--max-pixels counts every frame)"
        )


def check_max_frames(max_frames):
    """Raise :class:`OptionError` unless ``max_frames`` is None or an integer >= 1."""
    if max_frames is not None and (
        isinstance(max_frames, bool) or not isinstance(max_frames, (int, np.integer)) or max_frames < 1
    ):
        raise OptionError(f"max_frames must be None or an integer >= 1, got {max_frames!r}")


class Header(NamedTuple):
    """What a file says of its first frame before it is decoded: the normalisation follows it."""

    mode: str  # Pillow's mode
    rawmode: object  # how Pillow decodes it ("L;4": 4-bit grey)
    key: object  # info["transparency"]: a colour key, or alpha by palette entry
    icc_profile: object
    orientation: int  # EXIF orientation, 1 to 8 (1 when absent or invalid)


def _open_checked(fp, name, nbytes, max_pixels, allow_truncated, before_load=None):
    im = identify(fp, name)
    try:
        mode, key, icc = im.mode, im.info.get("transparency"), im.info.get("icc_profile")
        args = im.tile[0][3] if im.tile else None
        rawmode = args if isinstance(args, str) else args[0] if args else None
        _check_size(im, name, max_pixels)
        if not allow_truncated:
            _check_data_size(im, fp, name, nbytes, rawmode)
        elif im.format in ("JPEG", "MPO"):
            im.fp = _EndMarkerAtEOF(im.fp)  # libjpeg then ends the picture with what it has
        if before_load is not None:
            before_load(im)
        try:
            im.load()
        except OSError as e:
            if not str(e).startswith(_TRUNCATED):
                raise
            if not allow_truncated:
                raise InputError(
                    f"{name}: truncated: the image data ends early (--allow-truncated reads what is there)"
                ) from e
            im.tile = []  # keep the rows decoded; the rest stays black
        _check_size(im, name, max_pixels)  # an ICO's picture may differ from its directory
        orientation = im.getexif().get(0x0112)  # after load(): a PNG's eXIf may follow its data
        return im, Header(mode, rawmode, key, icc, orientation if orientation in ORIENT else 1)
    except BaseException:
        im.close()
        raise


#: The Pillow plugin of each format of READ_FORMATS.  :func:`identify` imports one only when the
#: formats before it did not take the file: a PNG needs PNG's alone (``Image.preinit()`` would
#: import JPEG's, GIF's, BMP's and PPM's too).
_PLUGINS = {
    "PNG": "PngImagePlugin",
    "JPEG": "JpegImagePlugin",
    "MPO": "MpoImagePlugin",
    "GIF": "GifImagePlugin",
    "BMP": "BmpImagePlugin",
    "TIFF": "TiffImagePlugin",
    "WEBP": "WebPImagePlugin",
    "ICO": "IcoImagePlugin",
    "PPM": "PpmImagePlugin",
    "TGA": "TgaImagePlugin",
}


def identify(fp, name):
    """Open ``fp`` with the first plugin of :data:`READ_FORMATS` that takes it (what
    ``PIL.Image.open(fp, formats=READ_FORMATS)`` does, but without Pillow's own pixel limit).
    """
    import importlib

    from PIL import Image

    fp.seek(0)
    prefix = fp.read(16)
    failed = None
    for fmt in READ_FORMATS:
        if fmt in _PLUGINS and fmt not in Image.OPEN:
            importlib.import_module(f"PIL.{_PLUGINS[fmt]}")
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
                failed = failed or f"cannot decode image: damaged {fmt} header ({first_line(e)})"
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
        raise InputError(f"{name}: {w}x{h} = {w * h} pixels is more than the limit of {max_pixels} (--max-pixels)")


def _check_data_size(im, fp, name, nbytes, rawmode):
    """Refuse a PNG or JPEG too small to hold the picture its header announces."""
    w, h = im.size
    if im.format == "PNG":
        bits = w * h * _PNG_BITS.get(rawmode, 1)
        if nbytes * 8 * _DEFLATE_RATIO < bits:
            raise InputError(
                f"{name}: truncated or forged: {nbytes} bytes cannot hold {w}x{h} = {w * h}"
                f" pixels (deflate's limit is {_DEFLATE_RATIO}:1)"
            )
    elif im.format in ("JPEG", "MPO") and getattr(im, "layer", None):
        hmax = max(c[1] for c in im.layer) or 1
        vmax = max(c[2] for c in im.layer) or 1
        blocks = sum(_ceil(_ceil(w * c[1], hmax), 8) * _ceil(_ceil(h * c[2], vmax), 8) for c in im.layer)
        if nbytes * 8 < blocks and not _jpeg_arithmetic(fp):
            raise InputError(
                f"{name}: truncated or forged: {nbytes} bytes cannot hold {w}x{h} = {w * h}"
                f" pixels ({blocks} blocks of 8x8, at least a bit each: the limit of Huffman coding)"
            )


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


def crop(im, box):
    """``im.crop(box)``, past Pillow's own pixel limit (``max_pixels`` was checked already)."""
    from PIL import Image

    try:
        return im.crop(box)
    except Image.DecompressionBombError:  # Pillow checks its own limit on crops too
        with pillow_unlimited():
            return im.crop(box)


@contextlib.contextmanager
def pillow_unlimited():
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


def first_line(e):
    """The first line of an exception's message, for a one-line error."""
    text = str(e).strip()
    return text.splitlines()[0] if text else f"damaged or inconsistent data ({type(e).__name__})"
