"""Reading images into uint8 arrays.

Reading goes through imageio's Pillow plugin and normalises every mode to
(H, W, 3) RGB or (H, W, 4) RGBA uint8.  Writing is :mod:`fastquant.write`
(the indexed PNG encoder is :mod:`fastquant.png`).
"""
import os
import stat
import warnings

import numpy as np

from .errors import FastquantError, InputError, OptionError

#: Default refusal threshold in pixels, Pillow's own decompression-bomb limit.
DEFAULT_MAX_PIXELS = 178_956_970

# Pillow converts every other mode for us; 16/32-bit integer modes are scaled in numpy.
_AS_RGBA = {"LA", "La", "PA", "RGBA", "RGBa"}
_WIDE = {"I;16", "I;16B", "I;16L", "I;16N", "I"}


def source_name(source):
    """Short printable name of a source, for messages."""
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
    c = a.shape[2]
    if c in (1, 2):  # grey (+ alpha): replicate to RGB
        a = np.concatenate([np.repeat(a[:, :, :1], 3, axis=2), a[:, :, 1:]], axis=2)
    if a.shape[2] == 4 and (a[:, :, 3] == 255).all():
        a = a[:, :, :3]
    return np.ascontiguousarray(a)


def read_image(source, *, max_pixels=DEFAULT_MAX_PIXELS, info=None):
    """Read an image into a uint8 RGB or RGBA array.

    Parameters
    ----------
    source : str, os.PathLike, bytes, binary file object or ndarray
        A file imageio can read (first frame of an animation; EXIF
        orientation applied), its bytes, or an array (see :func:`to_uint8`).
    max_pixels : int or None
        Refuse images with more pixels than this before decoding them.
    info : dict, optional
        Filled with metadata worth keeping: ``"icc_profile"`` (bytes), when
        the file embeds an ICC profile.

    Returns
    -------
    image : (H, W, 3) or (H, W, 4) uint8 ndarray
    nbytes : int or None
        Size of the encoded input, when it came from a file or bytes.

    Raises
    ------
    InputError
        When the source is missing, unreadable, not an image, corrupt or too large.
    OptionError
        When ``max_pixels`` is not None or a positive integer.
    """
    if max_pixels is not None and (isinstance(max_pixels, bool) or not isinstance(
            max_pixels, (int, np.integer)) or max_pixels < 1):
        raise OptionError(f"max_pixels must be None or an integer >= 1, got {max_pixels!r}")
    if isinstance(source, np.ndarray):
        return to_uint8(source), None
    name = source_name(source)
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
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise InputError(f"{name}: cannot read: {e.strerror or e}") from e
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif hasattr(source, "read"):
        try:
            data = source.read()
        except UnicodeDecodeError as e:
            raise InputError(f"{name}: file object must be opened in binary mode ('rb')") from e
        except (OSError, ValueError) as e:  # ValueError: a closed file
            raise InputError(f"{name}: cannot read: {getattr(e, 'strerror', None) or e}") from e
        if not isinstance(data, bytes):
            raise InputError(f"{name}: file object must be opened in binary mode")
    else:
        raise InputError(f"expected a path, bytes, a binary file or an ndarray, got {type(source).__name__}")
    if not data:
        raise InputError(f"{name}: empty file")
    return _decode(data, name, max_pixels, info), len(data)


def _decode(data, name, max_pixels, info=None):
    import imageio.v3 as iio  # deferred: keeps `import fastquant` light

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with iio.imopen(data, "r", plugin="pillow") as f:
                h, w = f.properties(index=0).shape[:2]  # from the header: metadata() decodes PNGs
                if max_pixels is not None and w * h > max_pixels:
                    raise InputError(
                        f"{name}: {w}x{h} = {w * h} pixels is more than the limit of {max_pixels}"
                        " (--max-pixels)")
                meta = f.metadata(index=0, exclude_applied=False)
                if info is not None and meta.get("icc_profile"):
                    info["icc_profile"] = bytes(meta["icc_profile"])
                mode = meta.get("mode", "")
                key = meta.get("transparency")
                has_alpha = key is not None or mode in _AS_RGBA
                grey_key = mode in _WIDE or (mode == "L" and isinstance(key, int))
                if grey_key:
                    target = None  # the colour key is applied below, on the raw grey values
                else:
                    target = "RGBA" if has_alpha else "RGB"
                a = f.read(index=0, rotate=True, mode=target)
    except FastquantError:  # ours, including a time limit that struck while decoding
        raise
    except MemoryError as e:
        raise InputError(f"{name}: image too large to decode") from e
    except Exception as e:  # decoders raise anything: OSError, SyntaxError, ValueError, zlib.error...
        inner = e.__cause__ or e.__context__
        while inner is not None:  # imageio wraps what is raised while it opens a file (a time limit)
            if isinstance(inner, FastquantError):
                raise inner from None
            inner = inner.__cause__ or inner.__context__
        raise InputError(f"{name}: {_reason(e)}") from e
    if grey_key:
        a = _grey_with_key(a, mode, key, data)
    try:
        return to_uint8(a)
    except OptionError as e:
        raise InputError(f"{name}: {e}") from e


def _reason(e):
    """Why decoding failed, in one line.  imageio hides the errors Pillow raises
    while opening behind vague ones ("`pillow` can not handle the given uri",
    "An unknown error occurred..."): use the cause, where there is one."""
    from PIL import Image

    for x in (e, e.__cause__):
        if isinstance(x, Image.DecompressionBombError):
            return f"image too large: {x}"
    if type(e.__cause__).__name__ == "InitializationError":
        return "cannot decode image: not an image, or a format Pillow cannot read (damaged header?)"
    if e.__cause__ is not None and "unknown error" in str(e):
        e = e.__cause__
    text = str(e).strip()
    return f"cannot decode image: {text.splitlines()[0] if text else type(e).__name__}"


def _grey_with_key(a, mode, key, data):
    """Grey values (8 or 16 bit) with an optional tRNS colour key -> uint8 grey or grey + alpha."""
    if mode in _WIDE:
        a = np.clip(a, 0, 65535).astype(np.uint16)
        grey = ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    else:
        grey = a
        # Pillow scales 1/2/4-bit grey PNG samples to 0..255 but not the tRNS key.
        ihdr = data.find(b"IHDR", 8)  # not always at 12: Pillow accepts chunks before it
        if isinstance(key, int) and data[:8] == b"\x89PNG\r\n\x1a\n" and 0 < ihdr < len(data) - 12:
            depth = data[ihdr + 12]
            if depth in (1, 2, 4):
                key = key * (255 // ((1 << depth) - 1))
    if not isinstance(key, int):
        return grey
    alpha = np.where(a == key, 0, 255).astype(np.uint8)
    return np.stack([grey, alpha], axis=-1)
