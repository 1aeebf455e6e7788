"""The indexed PNG encoder: 1/2/4/8-bit indices, PLTE and tRNS, deflate in parallel pieces.

The image data of a still PNG is deflated by :mod:`fastquant.deflate`
(near-optimal parsing: a few times zlib's time, some 6-17% fewer bytes on
photos with the layout below), or by zlib at a given level (fast: the size estimates of a byte
budget, and APNG frames).  With zlib, rows are not filtered: with palette
entries in order of use, filter None is the smallest (the filters predict
arithmetic neighbours, and neighbouring indices are not neighbouring colours).
With :mod:`fastquant.deflate`, 8-bit files also try the palette reordered so
that neighbouring colours get nearby indices, with a filter for every row
(:mod:`fastquant.reindex`), and keep whichever is smaller.
"""

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


def _deflate_parts(data, level=9, threads=None, strategy=zlib.Z_DEFAULT_STRATEGY):
    """The zlib stream of :func:`deflate` as a list of parts (joined, they are the stream);
    ``strategy``: zlib's (``zlib.Z_FILTERED``: fewer short matches, for filtered rows).
    """
    view = memoryview(data).cast("B")
    n = len(view)
    size = config.DEFLATE_PIECE
    if n <= size:
        c = zlib.compressobj(level, zlib.DEFLATED, 15, 8, strategy)
        return [c.compress(view) + c.flush()]
    starts = range(0, n, size)

    def piece(s):
        kw = {"zdict": view[s - 32768 : s]} if s else {}
        c = zlib.compressobj(level, zlib.DEFLATED, -15, 8, strategy, **kw)
        last = s + size >= n
        return c.compress(view[s : s + size]) + c.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)

    parts = _threads.run(piece, starts, threads)  # zlib lets go of the GIL while it compresses
    header = b"\x78\xda"  # deflate, 32 KiB window, level 9 flag (the flag is informative only)
    return [header, *parts, struct.pack(">I", zlib.adler32(view))]


#: Less data than this is deflated by zlib even where the own encoder is asked for: a
#: dynamic block's header would cost more than its codes save.
_STRONG_MIN = 4096


def _strong_parts(data, threads=None):
    """The zlib stream of ``data`` from :func:`fastquant.deflate.deflate_raw`, in pieces of
    ``config.STRONG_DEFLATE_PIECE`` bytes deflated on several threads (each with the 32 KiB
    before it as its dictionary); the bytes do not depend on the thread count.
    """
    from .deflate import deflate_raw

    view = np.frombuffer(memoryview(data).cast("B"), np.uint8)
    n = len(view)
    if n < _STRONG_MIN:
        return _deflate_parts(view, 9, threads)
    size = config.STRONG_DEFLATE_PIECE
    parts = _threads.run(lambda s: deflate_raw(view, s, min(s + size, n), s + size >= n), range(0, n, size), threads)
    return [b"\x78\xda", *parts, struct.pack(">I", zlib.adler32(view))]


def _depth(k):
    """Bits per index of an indexed PNG of ``k`` entries: the fewest that hold them."""
    if not 1 <= k <= 256:
        raise OptionError(f"an indexed PNG holds 1 to 256 colours, got {k}")
    return 1 if k <= 2 else 2 if k <= 4 else 4 if k <= 16 else 8


def _raw_rows(indices, depth):
    """(H, 1 + ceil(W * depth / 8)) uint8: the rows packed at ``depth`` bits, each after its filter byte (0)."""
    h, w = indices.shape
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
    return raw


def _chunk(tag, body):
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(tag)))


def _data_chunk(tag, prefix, raw, level=9):
    """One IDAT (or fdAT, after its ``prefix``) chunk of the deflated ``raw`` rows, as a list
    of parts: the data is never copied whole, the parts are joined once, into the file.
    """
    parts = _strong_parts(raw.reshape(-1)) if level is None else _deflate_parts(raw.reshape(-1), level)
    if prefix:
        parts = [prefix, *parts]
    crc = zlib.crc32(tag)
    for part in parts:
        crc = zlib.crc32(part, crc)
    return [struct.pack(">I", sum(map(len, parts))) + tag, *parts, struct.pack(">I", crc)]


def _header(w, h, depth, palette, icc_profile, extra=b""):
    """Signature, IHDR, ``extra`` chunks (acTL), iCCP, PLTE and tRNS of an indexed PNG."""
    out = [b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, 3, 0, 0, 0)), extra]
    if icc_profile:  # iCCP must come before PLTE; compression method 0 (zlib)
        out.append(_chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(bytes(icc_profile), 9)))
    out.append(_chunk(b"PLTE", np.ascontiguousarray(palette[:, :3]).tobytes()))
    if palette.shape[1] == 4:
        alpha = palette[:, 3]
        translucent = np.flatnonzero(alpha < 255)
        if translucent.size:
            out.append(_chunk(b"tRNS", alpha[: translucent[-1] + 1].tobytes()))
    return out


def png_indexed(indices, palette, icc_profile=None, *, level=None):
    """Encode an indexed PNG.

    Parameters
    ----------
    indices : (H, W) uint8 ndarray
        Palette index of every pixel, all < len(palette).
    palette : (k, 3) or (k, 4) uint8 ndarray, 1 <= k <= 256
        RGB or RGBA entries; alpha becomes a tRNS chunk, cut after the last
        entry that is not opaque.  The file may hold them in another order
        (``level=None``): the pixels are the same.
    icc_profile : bytes, optional
        An ICC profile to embed (iCCP chunk, named "ICC profile").
    level : int, optional
        None: the image data is deflated by :mod:`fastquant.deflate` (smallest),
        and 8-bit data (4 KiB or more) with the layout of :mod:`fastquant.reindex` when that
        is smaller; 0-9: by zlib at that level, unfiltered (faster, larger;
        for estimates).

    Returns
    -------
    bytes
        The PNG file: 1, 2, 4 or 8 bits per index (the smallest that holds
        k entries), no other metadata.
    """
    depth = _depth(len(palette))
    h, w = indices.shape
    raw = _raw_rows(indices, depth)
    if _layouts(level, depth, palette, raw):
        palette, raw = _smaller_layout(indices, palette, raw, icc_profile)[:2]
    out = _header(w, h, depth, palette, icc_profile)
    out += _data_chunk(b"IDAT", b"", raw, level)
    out.append(_chunk(b"IEND", b""))
    return b"".join(out)


def estimate(indices, palette, icc_profile=None, *, level=None):
    """A cheap stand-in for the size of :func:`png_indexed`'s file, and its layout.

    Parameters
    ----------
    indices : (H, W) uint8 ndarray
    palette : (k, 3) or (k, 4) uint8 ndarray, 1 <= k <= 256
    icc_profile : bytes, optional
    level : int, optional
        As for :func:`png_indexed`.

    Returns
    -------
    size : int
        Bytes of the file with the image data deflated by zlib at ``config.LAYOUT_LEVEL``
        in the layout ``png_indexed(..., level=level)`` writes (level None: the layout
        chosen on these very sizes).
    layout : str
        ``"plain"`` (palette in order of use, unfiltered rows) or ``"filtered"``
        (:mod:`fastquant.reindex`): the real encoder's ratio to the estimate differs between them.
    """
    depth = _depth(len(palette))
    raw = _raw_rows(indices, depth)
    framing = 2 * 12  # IDAT's length, tag and CRC; IEND
    if _layouts(level, depth, palette, raw):
        _, rows, size = _smaller_layout(indices, palette, raw, icc_profile)
        return size + framing, "plain" if rows is raw else "filtered"
    return _layout_size(palette, raw, icc_profile, zlib.Z_DEFAULT_STRATEGY) + framing, "plain"


def _layouts(level, depth, palette, raw):
    """Whether :func:`png_indexed` chooses between the plain and the filtered layout (8-bit
    data of 4 KiB or more for the own encoder; else zlib, as levels 0-9, on the plain one).
    """
    return level is None and depth == 8 and len(palette) > 2 and raw.size >= _STRONG_MIN


def _smaller_layout(indices, palette, raw, icc_profile):
    """(palette, raw rows, estimated size) of the plain layout or of the reordered, filtered one
    (:mod:`fastquant.reindex`): the latter when, both deflated by zlib at
    ``config.LAYOUT_LEVEL`` (a cheap stand-in for the real encoder; the filtered rows
    with ``zlib.Z_FILTERED``, whose few short matches are nearer the real encoder's
    parse of them), its file is below ``config.LAYOUT_MARGIN`` times the plain one's.
    The size is that stand-in's, of the layout kept, without the IDAT and IEND framing
    (see :func:`estimate`).
    """
    from . import reindex

    order = reindex.order(indices, len(palette))
    position = np.empty(len(order), np.uint8)
    position[order] = np.arange(len(order))
    moved = palette[order]
    filtered = reindex.filter_rows(position[indices])

    plain = _layout_size(palette, raw, icc_profile, zlib.Z_DEFAULT_STRATEGY)
    other = _layout_size(moved, filtered, icc_profile, zlib.Z_FILTERED)
    if other < config.LAYOUT_MARGIN * plain:
        return np.ascontiguousarray(moved), filtered, other
    return palette, raw, plain


def _layout_size(palette, rows, icc_profile, strategy):
    """Bytes of the headers (IHDR's length does not depend on the size) and of ``rows``
    deflated by zlib at ``config.LAYOUT_LEVEL`` with ``strategy``.
    """
    head = sum(map(len, _header(1, 1, 8, palette, icc_profile)))
    return head + sum(map(len, _deflate_parts(rows.reshape(-1), config.LAYOUT_LEVEL, None, strategy)))


#: APNG blend operations: a frame's pixels replace the canvas's, or are composited over them.
BLEND_SOURCE, BLEND_OVER = 0, 1


def apng_indexed(frames, palette, width, height, n_frames, loop=0, icc_profile=None):
    """Encode an animated PNG (APNG) whose frames share one palette, frame by frame.

    Parameters
    ----------
    frames : iterable of (x, y, choices, duration)
        Each frame's rectangle (its top left corner on the canvas) and
        ``choices``, a list of ways to draw it, each ((h, w) uint8 indices,
        :data:`BLEND_SOURCE` or :data:`BLEND_OVER`), of which the one that
        compresses smallest at zlib level 1 is written (the first on a tie); its duration in
        milliseconds (rounded to whole ones).  The first
        covers the whole canvas: it is also the still image that viewers
        without APNG support show.  Every frame is disposed of with
        APNG_DISPOSE_OP_NONE (the next one is drawn on what it left).
    palette : (k, 3) or (k, 4) uint8 ndarray, 1 <= k <= 256
    width, height : int
        The canvas.
    n_frames : int
        How many ``frames`` yields (acTL comes before them).
    loop : int
        Plays: 0 for ever.
    icc_profile : bytes, optional

    Returns
    -------
    bytes
    """
    depth = _depth(len(palette))
    out = _header(width, height, depth, palette, icc_profile, _chunk(b"acTL", struct.pack(">II", n_frames, loop)))
    seq = 0
    count = 0
    for x, y, choices, duration in frames:
        h, w = choices[0][0].shape
        if count == 0 and (x, y, w, h) != (0, 0, width, height):
            raise OptionError("the first frame of an APNG covers the whole canvas")
        delay = min(int(round(duration)), 65535)
        tag, prefix = (b"IDAT", b"") if count == 0 else (b"fdAT", struct.pack(">I", seq + 1))
        if len(choices) > 1:  # ranked at deflate's fastest level, a fraction of the cost of its best
            raws = [_raw_rows(idx, depth) for idx, _ in choices]
            best = int(np.argmin([len(zlib.compress(r, 1)) for r in raws]))
            raw, blend = raws[best], choices[best][1]
        else:
            raw, blend = _raw_rows(choices[0][0], depth), choices[0][1]
        data = _data_chunk(tag, prefix, raw)
        out.append(_chunk(b"fcTL", struct.pack(">IIIIIHHBB", seq, w, h, x, y, delay, 1000, 0, blend)))
        out += data
        seq += 1 if count == 0 else 2
        count += 1
    if count != n_frames:
        raise OptionError(f"an APNG announced {n_frames} frames but was given {count}")
    out.append(_chunk(b"IEND", b""))
    return b"".join(out)
