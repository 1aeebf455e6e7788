"""Reading an image for :func:`fastquant.compress`: decoded, resized and counted once (:func:`prepare`)."""

import os
import sys

import numpy as np

from . import config, histogram, importance, io, large, options
from . import resize as _resize
from .errors import OptionError


class Prepared:
    """An image read, resized and counted once; palettes of any size are fitted from it.

    Every pixel is counted (``inverse`` maps pixels to their colour); images
    with more than ``2 * config.SAMPLE_PIXELS`` pixels take :class:`fastquant.large.Prepared`
    instead.
    """

    sampled = False

    def __init__(self, arr, nbytes, icc, pixel_weights=None):
        self.arr, self.nbytes, self.icc = arr, nbytes, icc
        self.h, self.w, self.c = arr.shape
        self.flat = arr.reshape(-1, self.c)
        self.colors, self.counts, self.inverse = histogram.unique_colors(self.flat)
        # What the k-means weighs colours by: their pixel counts, or an importance map's sums.
        self.weights = self.counts
        if pixel_weights is not None:
            self.weights = histogram.weighted_counts(self.inverse, pixel_weights.reshape(-1), len(self.colors))


def prepare(
    image,
    resize,
    max_pixels,
    keep_metadata,
    lap,
    allow_truncated=False,
    weights=None,
    n_colors=256,
    frames=False,
    max_frames=None,
):
    """The image read (and resized) as :class:`Prepared`, or as :class:`fastquant.large.Prepared`
    when it has more than ``2 * config.SAMPLE_PIXELS`` pixels (it then holds the open
    :class:`fastquant.io.Decoded` as ``decoded``: close it when done).  ``weights``: an
    importance map of the image as read (see :func:`compress`), or None.  Every pixel of a large
    image is counted when its sample has at most ``config.FEW_COLORS`` or ``n_colors`` colours.
    With ``frames``, an animation comes back as :class:`fastquant.frames.Frames`, not decoded yet
    (at most ``max_frames`` frames); without, as its first frame.
    """
    palette = sys.modules.get("fastquant.palette")  # images are kept by its count(): none before it is imported
    if palette is not None and weights is None and isinstance(image, (str, os.PathLike)):
        kept = palette.take_kept(image, resize, max_pixels, allow_truncated, keep_metadata)
        if kept is not None:  # read and counted by fastquant.palette.count(keep=True)
            lap("histogram")
            return kept
    info = {} if keep_metadata else None
    decoded = io.open_image(
        image,
        max_pixels=max_pixels,
        allow_truncated=allow_truncated,
        info=info,
        animation=frames,
        max_frames=max_frames,
    )
    if not isinstance(decoded, io.Decoded):
        return decoded
    try:
        h, w = decoded.height, decoded.width
        size = _resize.target_size(w, h, resize)
        if size != (w, h) and max_pixels is not None and size[0] * size[1] > max_pixels:
            raise OptionError(
                f"resizing to {size[0]}x{size[1]} = {size[0] * size[1]} pixels is more than "
                f"the limit of {max_pixels} (max_pixels)"
            )
        icc = (info or {}).get("icc_profile")
        adaptive = isinstance(weights, str)
        if adaptive and weights != "contrast":
            raise OptionError(f"weights must be an (H, W) array of numbers or 'contrast', got {weights!r}")
        if adaptive and size[0] * size[1] > 2 * config.SAMPLE_PIXELS:
            raise OptionError(
                f"weights={weights!r} needs the whole image in memory: at most {2 * config.SAMPLE_PIXELS} "
                f"pixels, got {size[0]}x{size[1]} (resize it, or give a map)"
            )
        if weights is not None and not adaptive:
            weights = _resize.resize_map(options.check_weights(weights, h, w), size)
        if size == (w, h) and h * w > 2 * config.SAMPLE_PIXELS:
            # Strip by strip from the decoded image, copied once into an array of our own (Pillow's
            # freed): nothing more that grows with it.  An array or a caller's image is read as it is.
            arr = decoded.take()
            if arr is None:
                rows = large.Rows(decoded.strip, h, w, decoded.channels)
            else:
                rows = large.Rows(lambda lo, hi: arr[lo:hi], h, w, arr.shape[2])  # views, ours to change
            lap("read")
            p = large.Prepared(
                rows,
                decoded.nbytes,
                icc,
                sample_pixels=config.SAMPLE_PIXELS,
                few_colors=max(config.FEW_COLORS, n_colors),
                pixel_weights=weights,
            )
            p.decoded, decoded = decoded, None
            lap("histogram")
            return p
        arr, nbytes = decoded.read(), decoded.nbytes
    finally:
        if decoded is not None:
            decoded.close()
    if isinstance(image, np.ndarray) and arr.shape[2] == 4 and np.may_share_memory(arr, image):
        arr = arr.copy()  # the transparent-pixel fix below must not touch the caller's array
    lap("read")
    h, w, c = arr.shape
    if size != (w, h):
        arr = _resize.resize(arr, size)
        h, w = arr.shape[:2]
    if h * w > 2 * config.SAMPLE_PIXELS:  # a large result of resizing
        p = large.Prepared(
            large.Rows(lambda lo, hi: arr[lo:hi], h, w, c),  # rows of the resized array, ours to change
            nbytes,
            icc,
            sample_pixels=config.SAMPLE_PIXELS,
            few_colors=max(config.FEW_COLORS, n_colors),
            pixel_weights=weights,
        )
        lap("resize")
        return p
    if c == 4:  # invisible colours cost nothing: all fully transparent pixels become one
        arr[arr[:, :, 3] == 0] = 0
    lap("resize")
    if adaptive:  # made from the pixels the palette is fitted on
        weights = importance.contrast_map(arr)
    p = Prepared(arr, nbytes, icc, weights)
    lap("histogram")
    return p
