"""Encoding a result by the output's extension, checking outputs before any work, and writing files atomically.

Encoding happens in memory first; the bytes then go to a temporary file in
the target's folder, which is renamed (or, when an existing file must be
kept, hard-linked) onto the target, so readers never see a partial file.
"""

import io as _io
import os
import stat

import numpy as np

from .errors import FastquantError, OptionError, OutputError, OutputExistsError
from .png import png_indexed


def gif_indexed(indices, palette):
    """Encode a GIF (k <= 256); the most transparent entry, if alpha < 128, is transparent."""
    from PIL import Image

    k = len(palette)
    if k > 256:
        raise OptionError(f"a GIF holds at most 256 colours, got {k}")
    im = Image.fromarray(np.ascontiguousarray(indices, np.uint8), "P")
    im.putpalette(np.ascontiguousarray(palette[:, :3]).tobytes())
    kw = {}
    if palette.shape[1] == 4 and palette[:, 3].min() < 128:
        kw["transparency"] = int(np.argmin(palette[:, 3]))
    buf = _io.BytesIO()
    im.save(buf, format="GIF", optimize=False, **kw)
    return buf.getvalue()


_JPEG = {".jpg", ".jpeg", ".jpe", ".jfif"}
_NO_ALPHA = _JPEG | {".bmp", ".ppm", ".pgm", ".pbm"}


def keeps_pixels(path, channels):
    """Whether a file written to ``path`` (by :func:`encode`) decodes to the quantized pixels
    exactly.  Not so for JPEG (lossy), for images with alpha (``channels == 4``) in a format
    without it (composited over white, see :func:`over_white`), nor for GIFs with alpha (one
    fully transparent entry, the rest opaque).
    """
    ext = os.path.splitext(os.fspath(path))[1].lower()
    return ext not in _JPEG and not (channels == 4 and (ext in _NO_ALPHA or ext == ".gif"))


def over_white(image):
    """(H, W, 3) uint8: an (H, W, 4) uint8 image composited over white, rounded, as formats
    without alpha are written.
    """
    alpha = image[:, :, 3:].astype(np.uint16)
    return ((image[:, :, :3] * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)


def encode(path, indices, palette, icc_profile=None, *, level=None, optimize=False):
    """Encode a quantized image by the extension of ``path``.

    ``.png``: indexed PNG when k <= 256 (its image data deflated as ``level``
    says, see :func:`fastquant.png.png_indexed`), else RGB(A) PNG; ``.gif``: GIF;
    anything else imageio writes: the RGB(A) image, composited over white for
    formats without alpha.  ``icc_profile`` (bytes) is embedded where the
    format can hold one (not in GIFs).  ``optimize``: PNGs are passed through
    :func:`fastquant.optimize.lossless` (the optional pyoxipng).
    """
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if optimize and ext == ".png":
        from .optimize import lossless

        return lossless(encode(path, indices, palette, icc_profile, level=level))
    if ext == ".png" and len(palette) <= 256:
        return png_indexed(indices, palette, icc_profile, level=level)
    if ext == ".gif":
        return gif_indexed(indices, palette)
    return encode_array(path, palette[indices], icc_profile)


def encode_array(path, image, icc_profile=None, *, fast=False):
    """Encode an (H, W, 3|4) uint8 array by the extension of ``path`` with imageio
    (embedding ``icc_profile`` where Pillow's writer for the format takes one).
    ``fast``: a PNG at zlib level 1 instead of 9 (previews: about 10 times faster
    for 10% more bytes).
    """
    import imageio.v3 as iio

    ext = os.path.splitext(os.fspath(path))[1].lower()
    if not ext:
        raise OptionError(f"{os.fspath(path)}: no file extension to choose a format by")
    if image.shape[2] == 4 and ext in _NO_ALPHA:
        image = over_white(image)
    try:
        kw = {".png": {"compress_level": 1 if fast else 9}, ".webp": {"lossless": True}}.get(ext, {})
        if icc_profile:
            kw = dict(kw, icc_profile=bytes(icc_profile))
        return iio.imwrite("<bytes>", image, extension=ext, plugin="pillow", **kw)
    except FastquantError:
        raise
    except Exception as e:
        raise OptionError(f"{os.fspath(path)}: cannot encode as {ext}: {e}") from e


# ----------------------------------------------------------------------------- checks before any work

#: Pillow formats an output (or preview) may be written in, chosen by its extension.
WRITE_FORMATS = ("PNG", "GIF", "JPEG", "BMP", "TIFF", "WEBP", "PPM", "TGA")


def same_file(a, b):
    """Whether paths ``a`` and ``b`` name one file (by their absolute paths when one is missing)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def input_refused(path):
    """The message refusing to write output ``path`` over its own input."""
    return f"{path}: is the input; refusing to overwrite it (inputs are never overwritten, even with --force)"


def check_format(path):
    """Raise :class:`OptionError` unless ``path``'s extension names a format outputs are written in
    (:data:`WRITE_FORMATS`).
    """
    from PIL import Image

    ext = os.path.splitext(os.fspath(path))[1].lower()
    if not ext:
        raise OptionError(f"{os.fspath(path)}: no file extension to choose a format by (such as .png)")
    # The plugins of WRITE_FORMATS register their extensions: Image.init() would import all
    # forty-odd of Pillow's plugins, a tenth of a short run's start-up.  PNG's first (the usual
    # output, and the reader imports it anyway); then preinit() has JPEG, GIF, BMP and PPM; the
    # other three only when the extension is none of theirs.
    from PIL import PngImagePlugin  # noqa: F401

    if Image.EXTENSION.get(ext) not in WRITE_FORMATS:
        Image.preinit()
    if Image.EXTENSION.get(ext) not in WRITE_FORMATS:
        from PIL import TgaImagePlugin, TiffImagePlugin, WebPImagePlugin  # noqa: F401
    if Image.EXTENSION.get(ext) not in WRITE_FORMATS:
        raise OptionError(
            f"{os.fspath(path)}: cannot write {ext} files (use .png, .gif, .jpg, .webp, .bmp, .tif, .ppm or .tga)"
        )


def check_output(path, source=None, *, folder_made=False):
    """Check, before any work, that ``path`` can be an output (or preview) of ``source``.

    Raises
    ------
    OutputExistsError
        ``path`` is ``source`` (under any name): inputs are never overwritten.
    OutputError
        ``path`` is a folder, or its folder is missing or not a folder (unless
        ``folder_made``: an out-dir's folders are made by the write).
    """
    path = os.fspath(path)
    if source is not None and os.path.exists(source) and same_file(source, path):
        raise OutputExistsError(input_refused(path))
    if os.path.isdir(path):
        raise OutputError(f"{path}: cannot write: is a folder")
    folder = os.path.dirname(os.path.abspath(path))
    if not folder_made and not os.path.isdir(folder):
        why = "is not a folder" if os.path.exists(folder) else "does not exist"
        raise OutputError(f"{path}: cannot write: its folder {os.path.dirname(path) or folder} {why}")


# ----------------------------------------------------------------------------- atomic writes

_UMASK: list = []

#: Name prefix of temporary files; the writing process's id follows, so that
#: a parent can remove what a killed worker left (:func:`remove_temporary`).
TEMP_PREFIX = ".fastquant-"


def _file_mode():
    """0o666 less the umask: the mode of a new file, as ``open()`` would give it."""
    if not _UMASK:
        old = os.umask(0o022)
        os.umask(old)
        _UMASK.append(old)
    return 0o666 & ~_UMASK[0]


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


def open_folder(path, root):
    """A file descriptor of ``path``'s folder.

    Without ``root`` the folder is opened as named.  With ``root``, the
    folders below it are opened one at a time without following symbolic
    links (and created where missing), so that a folder swapped for a link
    while a batch runs cannot send the write outside ``root``.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if root is None:
        return os.open(folder, os.O_RDONLY | _DIRECTORY)
    root = os.path.abspath(root)
    rel = os.path.relpath(folder, root)
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        raise OutputError(f"{path}: not inside {root}")
    fd = os.open(root, os.O_RDONLY | _DIRECTORY)
    try:
        for part in [] if rel == os.curdir else rel.split(os.sep):
            try:
                os.mkdir(part, 0o777, dir_fd=fd)
            except FileExistsError:
                pass
            try:
                sub = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW, dir_fd=fd)
            except OSError as e:
                try:  # O_NOFOLLOW with O_DIRECTORY says ENOTDIR or ELOOP for a link: tell which it was
                    link = stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode)
                except OSError:
                    link = False
                if link:
                    raise OutputError(
                        f"{path}: a folder on its way ({part}) is a symbolic link; not writing through it"
                    ) from e
                raise
            os.close(fd)
            fd = sub
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_atomic(path, data, *, replace=True, root=None):
    """Write ``data`` to ``path`` through a temporary file in the same folder.

    Readers see the old file or the complete new one, never a partial file;
    on failure the temporary file is removed and :class:`OutputError` raised.
    A new file gets mode 0o666 less the umask; a regular file that is
    replaced keeps its permission bits, never setuid, setgid or sticky bits.

    Parameters
    ----------
    path : str or os.PathLike
    data : bytes-like
    replace : bool
        Replace an existing ``path``.  False: the final name is created
        exclusively (a hard link of the temporary file), so that of two
        writers racing for one name, the second gets
        :class:`OutputExistsError` and the first file is kept.
    root : str, optional
        A folder ``path`` must stay inside: the folders between them are
        created as needed and never followed through symbolic links.

    Returns
    -------
    int
        Bytes written.

    Raises
    ------
    OutputExistsError
        ``replace=False`` and ``path`` exists.
    OutputError
        The file or a folder cannot be written.
    """
    path = os.fspath(path)
    name = os.path.basename(path)
    fd_dir = tmp = None
    try:
        fd_dir = open_folder(path, root)
        mode = _file_mode()
        if replace:
            try:
                st = os.stat(name, dir_fd=fd_dir, follow_symlinks=False)
                if stat.S_ISREG(st.st_mode):
                    mode = st.st_mode & 0o777  # a replaced file keeps its permissions, not setuid
            except FileNotFoundError:
                pass
        for _attempt in range(100):
            tmp = f"{TEMP_PREFIX}{os.getpid()}-{os.urandom(6).hex()}.tmp"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600, dir_fd=fd_dir)
                break
            except FileExistsError:
                tmp = None
        else:
            raise OutputError(f"{path}: cannot create a temporary file")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, name, src_dir_fd=fd_dir, dst_dir_fd=fd_dir)
        else:
            try:
                os.link(tmp, name, src_dir_fd=fd_dir, dst_dir_fd=fd_dir, follow_symlinks=False)
            except FileExistsError:
                raise OutputExistsError(f"{path}: exists, kept (use --force to overwrite)") from None
            except OSError:  # a filesystem without hard links: reserve the name, then rename onto it
                try:
                    os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, mode, dir_fd=fd_dir))
                except FileExistsError:
                    raise OutputExistsError(f"{path}: exists, kept (use --force to overwrite)") from None
                os.replace(tmp, name, src_dir_fd=fd_dir, dst_dir_fd=fd_dir)
                tmp = None
        if tmp is not None and not replace:
            os.unlink(tmp, dir_fd=fd_dir)
        tmp = None
    except FastquantError:
        raise
    except OSError as e:
        raise OutputError(f"{path}: cannot write: {e.strerror or e}") from e
    finally:
        if tmp is not None and fd_dir is not None:
            try:
                os.unlink(tmp, dir_fd=fd_dir)
            except OSError:
                pass
        if fd_dir is not None:
            os.close(fd_dir)
    return len(data)


def write_stream(data, stream, name):
    """Write ``data`` whole to a binary ``stream`` (stdout) and flush it.

    Returns
    -------
    int
        Bytes written.

    Raises
    ------
    OutputError
        The stream is closed or its reader went away.
    """
    try:
        stream.write(data)
        stream.flush()
    except (OSError, ValueError) as e:  # BrokenPipeError; ValueError: a closed stream
        try:  # what is left in the buffer must not fail again at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
        except (OSError, ValueError):
            pass
        raise OutputError(f"{name}: cannot write: {getattr(e, 'strerror', None) or e}") from e
    return len(data)


def remove_temporary(folder, pid):
    """Remove the temporary files process ``pid`` left in ``folder`` (a killed worker's).

    Returns
    -------
    list of str
        The paths removed.
    """
    removed = []
    prefix = f"{TEMP_PREFIX}{pid}-"
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for n in names:
        if n.startswith(prefix) and n.endswith(".tmp"):
            try:
                os.unlink(os.path.join(folder, n))
                removed.append(os.path.join(folder, n))
            except OSError:
                pass
    return removed
