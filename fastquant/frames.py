"""Reading animations frame by frame: animated GIF, APNG and animated WebP.

:func:`fastquant.io.open_image` hands an animated file over as :class:`Frames`
when asked (``animation=True``).  Its headers were checked against
``max_frames`` and ``max_pixels`` (every frame counts) before any frame is
decoded.  Frames are decoded one at a time, each as the viewer sees it
(composited over what the earlier frames left, after their disposal): going
through them holds one frame, whatever their number, and they can be gone
through again (a second pass re-decodes them).
"""

import warnings
from typing import NamedTuple

import numpy as np

from . import formats
from .errors import InputError


class Frame(NamedTuple):
    """One decoded frame."""

    rgba: np.ndarray  # (H, W, 4) uint8, the whole canvas as shown
    duration: float  # milliseconds
    disposal: object  # the file's disposal method of the frame (GIF 0-3, APNG 0-2), None when not stated


class Frames:
    """An open animation, decoded frame by frame (:func:`fastquant.io.open_image` makes them).

    Attributes
    ----------
    name : str
    nbytes : int or None
        Size of the encoded input.
    width, height : int
        The canvas.
    n_frames : int
    loop : int or None
        Loop count as the file states it (0: for ever); None when the file has
        none (a GIF without a NETSCAPE block plays once).
    format : str
        "GIF", "PNG" (APNG) or "WEBP".
    icc_profile : bytes or None
    """

    def __init__(self, im, fp, name, nbytes, n_frames, *, max_pixels, allow_truncated):
        self._im, self._fp = im, fp
        self.name, self.nbytes, self.n_frames = name, nbytes, n_frames
        self.width, self.height = im.size
        self.format = im.format
        self.loop = im.info.get("loop")
        self.icc_profile = im.info.get("icc_profile") or None
        # An APNG whose default image is not part of the animation shows it to
        # viewers without APNG support only; Pillow counts it as frame 0.
        self._first = 1 if getattr(im, "default_image", False) else 0
        self._max_pixels, self._allow_truncated = max_pixels, allow_truncated

    def __iter__(self):
        """Yield every :class:`Frame`, from the first; each call starts again."""
        if self._im is None:
            raise ValueError(f"{self.name}: the animation is closed")
        for i in range(self._first, self._first + self.n_frames):
            yield self._frame(i)

    def _frame(self, i):
        im, name = self._im, self.name
        with formats.decode_errors(name), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                with formats.pillow_unlimited():  # the limits were checked on the headers
                    im.seek(i)
            except EOFError as e:
                raise InputError(f"{name}: truncated: frame {i + 1} of {self.n_frames} is missing") from e
            if im.size != (self.width, self.height):
                # A GIF frame past the logical screen grows Pillow's canvas: count it before decoding.
                formats.check_frames(name, self.n_frames, *im.size, self._max_pixels, None)
            try:
                im.load()
            except OSError as e:
                if not str(e).startswith(formats._TRUNCATED) or not self._allow_truncated:
                    raise InputError(
                        f"{name}: truncated: frame {i + 1} ends early (--allow-truncated reads what is there)"
                    ) from e
                im.tile = []
            rgba = np.asarray(im.convert("RGBA"))
            duration = float(im.info.get("duration") or 0)
            disposal = getattr(im, "disposal_method", None) if im.format == "GIF" else im.info.get("disposal")
        h, w = self.height, self.width
        if rgba.shape[:2] != (h, w):  # viewers clip a GIF to its logical screen
            out = np.zeros((h, w, 4), np.uint8)
            part = rgba[:h, :w]
            out[: part.shape[0], : part.shape[1]] = part
            rgba = out
        else:
            rgba = rgba.copy()  # ours to change; Pillow reuses its buffers
        return Frame(rgba, duration, disposal)

    def close(self):
        """Free the decoder and its file."""
        if self._im is not None:
            self._im.close()
            self._fp.close()
            self._im = self._fp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"<Frames {self.name}: {self.n_frames} frames of {self.width}x{self.height}>"


def open_frames(fp, name, nbytes, *, max_pixels, max_frames, allow_truncated):
    """:class:`Frames` of the animation in ``fp`` (a binary file at its start), or None when it
    is a still image (``fp`` is then rewound).  Its headers are checked against the limits.
    """
    with formats.decode_errors(name), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with formats.pillow_unlimited():
            im = formats.identify(fp, name)
        try:
            if im.format not in ("GIF", "PNG", "WEBP") or not getattr(im, "is_animated", False):
                fp.seek(0)  # not closed: that would close fp, which the still's decoder reads next
                return None
            n = formats.count_frames(im, max_frames)
            if getattr(im, "default_image", False):
                n -= 1
            formats.check_frames(name, n, *im.size, max_pixels, max_frames)
        except BaseException:
            im.close()
            raise
    return Frames(im, fp, name, nbytes, n, max_pixels=max_pixels, allow_truncated=allow_truncated)
