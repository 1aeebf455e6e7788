"""The indexed PNG encoder: 1/2/4/8-bit indices, PLTE and tRNS, deflate in parallel pieces."""

import struct
import zlib

import numpy as np

from . import config
from . import threads as _threads
from .errors import OptionError


def deflate(data, level=9, threads=None):
    """Zlib stream of ``data``, compressed in pieces on several threads (as pigz does).

    The data is cut into pieces of ``config.DEFLATE_PIECE`` bytes; each piece is
    deflated at ``level`` with the 32 KiB before it as its dictionary and
    ends on a sync flush, so the pieces join into one ordinary zlib stream
    about as small as a one-piece one (a piece boundary costs a block end, not the matches).
    The pieces do not depend on the thread count: neither do the bytes.

    Parameters
    ----------
    data : bytes
    level : int
        zlib level, 0-9.
    threads : int, optional
        Default: :func:`fastquant.threads.count`.

    Returns
    -------
    bytes
    """
    return b"".join(_deflate_parts(data, level, threads))


def _deflate_parts(data, level=9, threads=None):
    """The zlib stream of :func:`deflate` as a list of parts (joined, they are the stream)."""
    view = memoryview(data).cast("B")
    n = len(view)
    size = config.DEFLATE_PIECE
    if n <= size:
        return [zlib.compress(view, level)]
    starts = range(0, n, size)

    def piece(s):
        kw = {"zdict": view[s - 32768 : s]} if s else {}
        c = zlib.compressobj(level, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, **kw)
        last = s + size >= n
        return c.compress(view[s : s + size]) + c.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)

    parts = _threads.run(piece, starts, threads)  # zlib lets go of the GIL while it compresses
    header = b"\x78\xda"  # deflate, 32 KiB window, level 9 flag (the flag is informative only)
    return [header, *parts, struct.pack(">I", zlib.adler32(view))]


def png_indexed(indices, palette, icc_profile=None, *, level=9):
    """Encode an indexed PNG.

    Parameters
    ----------
    indices : (H, W) uint8 ndarray
        Palette index of every pixel, all < len(palette).
    palette : (k, 3) or (k, 4) uint8 ndarray, 1 <= k <= 256
        RGB or RGBA entries; alpha becomes a tRNS chunk, cut after the last
        entry that is not opaque.
    icc_profile : bytes, optional
        An ICC profile to embed (iCCP chunk, named "ICC profile").
    level : int
        zlib level of the image data (lower: faster, larger; for estimates).

    Returns
    -------
    bytes
        The PNG file: 1, 2, 4 or 8 bits per index (the smallest that holds
        k entries), no filter, zlib level 9 (:func:`deflate`), no other metadata.
    """
    k = len(palette)
    if not 1 <= k <= 256:
        raise OptionError(f"an indexed PNG holds 1 to 256 colours, got {k}")
    h, w = indices.shape
    depth = 1 if k <= 2 else 2 if k <= 4 else 4 if k <= 16 else 8
    rows = np.ascontiguousarray(indices, np.uint8)
    if depth < 8:
        per = 8 // depth
        pad = (-w) % per
        if pad:
            rows = np.pad(rows, ((0, 0), (0, pad)))
        rows = rows.reshape(h, -1, per)
        packed = np.zeros(rows.shape[:2], np.uint8)
        for j in range(per):
            packed |= rows[:, :, j] << np.uint8(8 - depth * (j + 1))
        rows = packed
    raw = np.empty((h, rows.shape[1] + 1), np.uint8)
    raw[:, 0] = 0  # filter type None: best for palette images
    raw[:, 1:] = rows

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(tag)))

    out = [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, 3, 0, 0, 0))]
    if icc_profile:  # iCCP must come before PLTE; compression method 0 (zlib)
        out.append(chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(bytes(icc_profile), 9)))
    out.append(chunk(b"PLTE", np.ascontiguousarray(palette[:, :3]).tobytes()))
    if palette.shape[1] == 4:
        alpha = palette[:, 3]
        translucent = np.flatnonzero(alpha < 255)
        if translucent.size:
            out.append(chunk(b"tRNS", alpha[: translucent[-1] + 1].tobytes()))
    # The image data is never copied whole: the raw rows are deflated in
    # place and the compressed parts joined once, into the file.
    parts = _deflate_parts(raw.reshape(-1), level)
    crc = zlib.crc32(b"IDAT")
    for part in parts:
        crc = zlib.crc32(part, crc)
    out += [struct.pack(">I", sum(map(len, parts))) + b"IDAT", *parts, struct.pack(">I", crc)]
    del parts, raw
    out.append(chunk(b"IEND", b""))
    return b"".join(out)
