"""Writing quantized animations: GIF and APNG frame by frame, with frame deltas, and animated WebP.

Every writer takes the frames as an iterable of ``(indices, palette,
duration)`` and consumes it once, holding one frame (two for a GIF: each
frame's disposal depends on the next), so that a long animation is written
without holding its frames; only the encoded bytes grow.

Frame deltas (GIF and APNG): each frame after the first is cut to the
bounding box of the pixels that differ from what the canvas shows before
it, and inside that box the pixels that do not change are written as a
fully transparent palette entry, which leaves the canvas as it is (GIF: the
frame's transparent index; APNG: blended "over").  Long runs of one index
compress far better than the picture repeated.  The transparent entry is the
palette's own fully transparent one, or one added after the others when the
palette has fewer than 256 entries.  A frame whose pixels become clear
(transparent) where the one before showed something cannot be drawn over it:
in a GIF the frame before is then disposed of ("restore to background") over
a box that covers them, in an APNG the frame is blended "source".
"""

import io as _io
import os
import struct

import numpy as np

from . import png as _png
from .errors import OptionError

#: Output extensions that hold an animation.
ANIMATED_EXTENSIONS = (".gif", ".png", ".apng", ".webp")

_FULL = np.uint32(0xFF000000)


def encode_frames(
    path, frames, *, width, height, n_frames, loop, palette=None, icc_profile=None, deltas=True, exact_palette=False
):
    """Encode an animation by the extension of ``path`` (``.gif``, ``.png``/``.apng``, ``.webp``).

    Parameters
    ----------
    path : str or os.PathLike
        Only its extension counts.
    frames : iterable of (indices, palette, duration)
        (H, W) uint8 indices, the (k, 3|4) uint8 palette they index and the
        duration in milliseconds of each frame, in order; consumed once.
    width, height, n_frames : int
    loop : int or None
        Loop count (0: for ever); None: none stated (a GIF then plays once,
        an APNG gets 1 play).
    palette : (k, 3|4) uint8 ndarray, optional
        The palette every frame shares, if they do (required for APNG).
    icc_profile : bytes, optional
        Embedded in APNG and WebP.
    deltas : bool
        Write frame deltas (GIF, APNG); False writes every frame whole.
    exact_palette : bool
        An APNG's PLTE is ``palette`` exactly: no transparent entry is added
        for the deltas (a palette given by the caller).

    Returns
    -------
    bytes

    Raises
    ------
    OptionError
        The format cannot hold the animation: not an animated format, more
        than 256 colours (GIF, APNG), or frames with palettes of their own in
        an APNG.
    """
    name = os.fspath(path)
    ext = (os.path.splitext(name)[1] or name).lower()  # a bare ".gif" is its own extension
    if ext not in ANIMATED_EXTENSIONS:
        raise OptionError(
            f"{name}: {ext} files cannot hold an animation of {n_frames} frames"
            " (write .gif, .png (APNG) or .webp; frames are never dropped)"
        )
    if ext == ".webp":
        return webp_frames(frames, width, height, n_frames, loop, icc_profile)
    if palette is None and ext != ".gif":
        raise OptionError(
            f"{name}: an animated PNG holds one palette for all frames (with --frame-palettes, write .gif or .webp)"
        )
    if palette is not None and len(palette) > 256:
        raise OptionError(f"{name}: an animated {ext[1:].upper()} holds at most 256 colours, got {len(palette)}")
    if ext == ".gif":
        return gif_frames(frames, width, height, loop, palette=palette, deltas=deltas)
    return apng_frames(
        frames, width, height, n_frames, loop, palette, icc_profile, deltas=deltas, add_clear=not exact_palette
    )


def _bbox(mask):
    """(y0, y1, x0, x1) of the True pixels of ``mask``; None when there are none."""
    rows = np.flatnonzero(mask.any(axis=1))
    if not rows.size:
        return None
    cols = np.flatnonzero(mask[rows[0] : rows[-1] + 1].any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _packed(rgba):
    """(k,) uint32 of (k, 3|4) uint8 colours as shown: 0 for fully transparent ones."""
    c = rgba.astype(np.uint32)
    alpha = c[:, 3] if rgba.shape[1] == 4 else np.full(len(c), 255, np.uint32)
    v = (alpha << 24) | (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]
    return np.where(alpha == 0, np.uint32(0), v).astype(np.uint32)


# ----------------------------------------------------------------------------- GIF


def _gif_palette(palette):
    """(colour table (n, 3) uint8, transparent index or None, (n,) uint32 colours as shown).

    A GIF shows one entry transparent: the most transparent one when its alpha
    is below 128 (as :func:`fastquant.write.gif_indexed`), all others opaque;
    without one, an entry is added for frame deltas when there is room.
    """
    k = len(palette)
    table = np.ascontiguousarray(palette[:, :3])
    t = None
    if palette.shape[1] == 4 and palette[:, 3].min() < 128:
        t = int(np.argmin(palette[:, 3]))
    elif k < 256:
        t = k
        table = np.vstack([table, np.zeros((1, 3), np.uint8)])
    shown = _packed(np.hstack([table, np.full((len(table), 1), 255, np.uint8)]))
    if t is not None:
        shown[t] = 0
    return table, t, shown


def _table_bytes(table):
    """A GIF colour table padded to a power of two, and its size field (2 ** (field + 1) entries)."""
    bits = max(1, int(len(table) - 1).bit_length())
    padded = np.zeros((1 << bits, 3), np.uint8)
    padded[: len(table)] = table
    return padded.tobytes(), bits - 1


def _lzw_frame(sub, table, x, y, local):
    """Image descriptor (with the local colour table when ``local``) and LZW data of one frame."""
    from PIL import GifImagePlugin, Image

    im = Image.fromarray(np.ascontiguousarray(sub, np.uint8), "P")
    im.putpalette(np.ascontiguousarray(table).tobytes())
    params = {"include_color_table": True} if local else {}
    return b"".join(GifImagePlugin.getdata(im, (x, y), **params))


def gif_frames(frames, width, height, loop, *, palette=None, deltas=True):
    """Encode a GIF animation (see :func:`encode_frames`); ``palette``: the global colour table."""
    if not (1 <= width <= 65535 and 1 <= height <= 65535):
        raise OptionError(f"a GIF is at most 65535x65535 pixels, got {width}x{height}")
    out = [b"GIF89a" + struct.pack("<HH", width, height)]
    shared = _gif_palette(palette) if palette is not None else None
    if shared is not None:
        data, field = _table_bytes(shared[0])
        out += [bytes([0xF0 | field, 0, 0]), data]
    else:
        out.append(b"\x00\x00\x00")
    if loop is not None:
        out.append(b"!\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", min(int(loop), 65535)) + b"\x00")
    base = np.zeros((height, width), np.uint32)  # what the canvas shows: all clear at first
    pending = None
    first = True

    def flush(nxt):
        """Write the pending frame, now that the one after it (``nxt``: shown colours, or None) is known."""
        nonlocal base, first
        idx, (table, t, _), duration, cur = pending
        changed = cur != base
        clear_next = None if nxt is None else (nxt == 0) & (cur != 0)
        dispose = 2 if clear_next is not None and clear_next.any() else 1
        if first or not deltas:
            y0, y1, x0, x1 = 0, height, 0, width
        else:
            box = _bbox(changed | clear_next if dispose == 2 else changed)
            y0, y1, x0, x1 = box or (0, 1, 0, 1)  # an unchanged frame is kept, as one pixel
        sub = idx[y0:y1, x0:x1]
        data = _lzw_frame(sub, table, x0, y0, shared is None)
        ch = changed[y0:y1, x0:x1]
        if deltas and t is not None and not first and not ch.all():
            # Unchanged pixels as the transparent index: kept when that compresses smaller
            # (long runs of it do; a few scattered among changed pixels break the runs).
            clear = _lzw_frame(np.where(ch, sub, np.uint8(t)), table, x0, y0, shared is None)
            data = clear if len(clear) < len(data) else data
        cs = min(int(round(duration / 10)), 65535)
        flags = (dispose << 2) | (t is not None)
        gce = b"!\xf9\x04" + bytes([flags]) + struct.pack("<H", cs) + bytes([t or 0, 0])
        out.append(gce + data)
        base = cur
        if dispose == 2:
            base = cur.copy()
            base[y0:y1, x0:x1] = 0
        first = False

    for idx, pal, duration in frames:
        info = shared if shared is not None else _gif_palette(pal)
        if len(info[0]) > 256:
            raise OptionError(f"a GIF holds at most 256 colours, got {len(pal)}")
        cur = info[2][idx]
        if pending is not None:
            flush(cur)
        pending = (idx, info, duration, cur)
    if pending is not None:
        flush(None)
    out.append(b";")
    return b"".join(out)


# ----------------------------------------------------------------------------- APNG


def apng_frames(frames, width, height, n_frames, loop, palette, icc_profile=None, *, deltas=True, add_clear=True):
    """Encode an APNG whose frames share ``palette`` (see :func:`encode_frames`); ``add_clear``: a
    fully transparent entry may be put first for the deltas when the palette has none and room.
    """
    t, shift = None, 0
    if palette.shape[1] == 4 and (palette[:, 3] == 0).any():
        t = int(np.flatnonzero(palette[:, 3] == 0)[0])
    elif len(palette) < 256 and deltas and add_clear:
        # The clear entry goes first, so that the tRNS chunk is one byte; indices move up by one.
        t, shift = 0, 1
        rgba = palette if palette.shape[1] == 4 else np.hstack([palette, np.full((len(palette), 1), 255, np.uint8)])
        palette = np.vstack([np.zeros((1, 4), np.uint8), rgba])
    shown = _packed(palette)

    def cut():
        base = None
        for idx, _, duration in frames:
            if shift:
                idx = idx + np.uint8(shift)
            cur = shown[idx]
            if base is None or not deltas:
                yield 0, 0, [(idx, _png.BLEND_SOURCE)], duration
            else:
                changed = cur != base
                y0, y1, x0, x1 = _bbox(changed) or (0, 1, 0, 1)
                sub, ch = idx[y0:y1, x0:x1], changed[y0:y1, x0:x1]
                choices = [(sub, _png.BLEND_SOURCE)]
                if t is not None and not ch.all() and ((cur[y0:y1, x0:x1][ch] >> 24) == 255).all():
                    # Every changed pixel is opaque: drawn over the canvas, the unchanged ones left clear.
                    choices.append((np.where(ch, sub, np.uint8(t)), _png.BLEND_OVER))
                yield x0, y0, choices, duration
            base = cur

    plays = 1 if loop is None else int(loop)
    return _png.apng_indexed(cut(), palette, width, height, n_frames, plays, icc_profile)


# ----------------------------------------------------------------------------- WebP


def webp_frames(frames, width, height, n_frames, loop, icc_profile=None):
    """Encode a lossless animated WebP (libwebp, through Pillow), frame by frame.

    libwebp cuts its own sub-frames; ``loop`` None is written as 1.
    """
    frames = iter(frames)
    durations = []

    def rgba():
        for idx, pal, duration in frames:
            durations.append(duration)
            yield pal[idx]

    seq = _Sequence(rgba(), n_frames, (width, height))
    # libwebp takes a frame's start time as it is added: Pillow adds up durations[i] after
    # adding frame i, so the list only has to be long enough by then.
    buf = _io.BytesIO()
    kw = {"icc_profile": bytes(icc_profile)} if icc_profile else {}
    seq.save(
        buf,
        format="WEBP",
        save_all=True,
        lossless=True,
        loop=1 if loop is None else int(loop),
        duration=_Growing(durations),
        **kw,
    )
    if next(frames, None) is not None:  # also lets the frames' source finish its own work
        raise OptionError(f"an animated WebP was announced {n_frames} frames and given more")
    return buf.getvalue()


class _Growing(list):
    """The durations list Pillow reads frame by frame: filled as the frames are made.

    (A list subclass: Pillow checks ``isinstance(duration, (list, tuple))``.)
    """

    def __init__(self, source):
        super().__init__()
        self._source = source

    def __getitem__(self, i):
        return self._source[i]


def _make_sequence():
    from PIL import Image

    class Sequence(Image.Image):
        """A multi-frame image whose frames are made when Pillow's WebP writer seeks to them, in order."""

        def __init__(self, arrays, n_frames, size):
            super().__init__()
            self._arrays, self.n_frames = arrays, n_frames
            self._size, self._at = size, -1
            self.seek(0)

        def seek(self, frame):
            if frame == self._at + 1 and frame < self.n_frames:  # the writer's final seek(0) changes nothing
                a = next(self._arrays)
                self._mode = "RGBA" if a.shape[2] == 4 else "RGB"
                self.im = Image.fromarray(np.ascontiguousarray(a), self._mode).im
                self._at = frame

        def tell(self):
            return max(self._at, 0)

    return Sequence


def _Sequence(arrays, n_frames, size):  # noqa: N802  (a class made on first use: Pillow is imported lazily)
    global _SEQUENCE
    if _SEQUENCE is None:
        _SEQUENCE = _make_sequence()
    return _SEQUENCE(arrays, n_frames, size)


_SEQUENCE = None
