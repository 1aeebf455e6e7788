"""``compress()``: read, resize, histogram, palette, remap; and its result type."""
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Optional

import numpy as np

from . import histogram, io, kmeans, metrics, remap
from . import resize as _resize
from .errors import OptionError

#: Largest palette: indices are stored as uint16.
MAX_COLORS = 65536
#: RGB images with more than twice this many pixels get their palette fitted
#: on an evenly spread sample of about this many pixels.
SAMPLE_PIXELS = 1 << 21
#: The k-means fits at most this many distinct colours (merging near ones).
FIT_COLORS = 1 << 17


@dataclass
class Stats:
    """What a compression did and cost.

    Attributes
    ----------
    n_colors : int
        Palette entries actually used (fewer than asked when the image has fewer colours).
    unique_colors : int
        Distinct colours in the (resized) input.
    width, height : int
        Size of the result.
    mse, psnr : float
        Mean squared error over all channels and pixels, and PSNR in dB, against the input.
    ssim : float or None
        SSIM of the luma, when asked for (``ssim=True``).
    iterations : int
        K-means centre updates.
    input_bytes : int or None
        Size of the encoded input, when it came from a file or bytes.
    seconds : dict
        Wall time of each stage: read, resize, histogram, palette, remap, metrics.
    """

    n_colors: int
    unique_colors: int
    width: int
    height: int
    mse: float
    psnr: float
    iterations: int
    input_bytes: Optional[int] = None
    ssim: Optional[float] = None
    seconds: dict = field(default_factory=dict)

    def as_dict(self):
        """The stats as a plain dict (JSON-ready)."""
        return asdict(self)


class Quantized:
    """A palette image: the result of :func:`compress`.

    Attributes
    ----------
    palette : (k, 3) or (k, 4) uint8 ndarray
        The colours (RGBA when the input had transparency), most used first.
    indices : (H, W) uint8 ndarray (uint16 when k > 256)
        Palette index of every pixel.
    original : (H, W, 3) or (H, W, 4) uint8 ndarray
        The input after reading and resizing (fully transparent pixels made
        black, as they are in the result).
    stats : Stats
    """

    def __init__(self, palette, indices, original, stats):
        self.palette = palette
        self.indices = indices
        self.original = original
        self.stats = stats

    @property
    def image(self):
        """(H, W, 3|4) uint8 ndarray: ``palette[indices]``."""
        return self.palette[self.indices]

    def encode(self, format=".png"):
        """The encoded file as bytes; ``format`` is an extension such as ``".png"``."""
        fmt = format if format.startswith(".") else "." + format
        return io.encode("x" + fmt, self.indices, self.palette)

    def save(self, path):
        """Write the result; the format follows the extension.

        ``.png`` is an indexed PNG (1, 2, 4 or 8 bits per pixel) when k <= 256,
        ``.gif`` a GIF; other extensions get the RGB(A) image through imageio.
        The file is written to a temporary name and renamed over ``path``.

        Returns
        -------
        int
            Bytes written.
        """
        return io.write_atomic(path, io.encode(path, self.indices, self.palette))

    def preview(self):
        """(H, 2W + 8, 3) uint8 ndarray: original and result side by side."""
        from .preview import side_by_side

        return side_by_side(self.original, self.image)

    def __repr__(self):
        s = self.stats
        return (f"<Quantized {s.width}x{s.height}, {s.n_colors} colours, "
                f"PSNR {s.psnr:.2f} dB>")


def _check_colors(n_colors):
    if isinstance(n_colors, bool) or not isinstance(n_colors, (int, np.integer)):
        raise OptionError(f"n_colors must be an integer, got {n_colors!r}")
    if not 1 <= n_colors <= MAX_COLORS:
        raise OptionError(f"n_colors must be between 1 and {MAX_COLORS}, got {n_colors}")
    return int(n_colors)


def compress(image, n_colors=256, *, resize=None, seed=0, max_iter=100, tol=5e-3,
             init="wu", swap_rounds=4, ssim=False, max_pixels=io.DEFAULT_MAX_PIXELS):
    """Quantize an image to at most ``n_colors`` colours with weighted k-means.

    Parameters
    ----------
    image : str, os.PathLike, bytes, binary file object or ndarray
        A file imageio reads (first frame; grey, palette, 16-bit and CMYK
        become RGB, transparency becomes RGBA, EXIF orientation is applied),
        its bytes, or an (H, W), (H, W, 3) or (H, W, 4) array: uint8 as is,
        bool as 0/255, uint16 scaled by 255/65535, floats in [0, 1] scaled
        by 255, other integers in [0, 255].
    n_colors : int
        Palette size, 1 to 65536.
    resize : None, int or (int, int)
        None keeps the size; an int is the maximum side (aspect ratio kept,
        never enlarged); (width, height) is exact.  Area averaging shrinks,
        nearest sampling grows.
    seed : int
        Random seed (used by ``init="k-means++"``); results are reproducible.
    max_iter, tol, init, swap_rounds
        K-means options, see :func:`fastquant.kmeans`.  The defaults were
        chosen on the Kodak photos: every one ends with a lower MSE than
        scikit-learn's ``KMeans(256)`` on all pixels, in ~15 iterations.
    ssim : bool
        Also compute SSIM (costs about as much as the quantization).
    max_pixels : int or None
        Refuse larger images before decoding them.

    Returns
    -------
    Quantized

    Raises
    ------
    InputError
        The source cannot be read or decoded.
    OptionError
        An option is out of range, or the array is not an image.
    """
    n_colors = _check_colors(n_colors)
    seconds = {}
    t = time.perf_counter()

    def lap(stage):
        nonlocal t
        now = time.perf_counter()
        seconds[stage] = seconds.get(stage, 0.0) + now - t
        t = now

    arr, nbytes = io.read_image(image, max_pixels=max_pixels)
    if isinstance(image, np.ndarray) and arr.shape[2] == 4 and np.may_share_memory(arr, image):
        arr = arr.copy()  # the transparent-pixel fix below must not touch the caller's array
    lap("read")
    h, w, c = arr.shape
    size = _resize.target_size(w, h, resize)
    if size != (w, h):
        arr = _resize.resize(arr, size)
        w, h = size
    if c == 4:  # invisible colours cost nothing: all fully transparent pixels become one
        arr[arr[:, :, 3] == 0] = 0
    lap("resize")
    flat = arr.reshape(-1, c)
    sampled = c == 3 and h * w > 2 * SAMPLE_PIXELS
    if sampled:  # fit on an evenly spread sample; every pixel is mapped afterwards
        step = -(-h * w // SAMPLE_PIXELS)
        while math.gcd(step, w) != 1:  # a step sharing a factor with the width samples columns unevenly
            step += 1
        colors, counts, _ = histogram.unique_colors(flat[::step])
    else:
        colors, counts, inverse = histogram.unique_colors(flat)
    lap("histogram")
    # Fully transparent pixels (all made (0, 0, 0, 0) above) get an entry of
    # their own; the k-means spends the other entries on visible colours.
    clear = np.flatnonzero(colors[:, 3] == 0) if c == 4 else np.empty(0, np.intp)
    reserve = len(clear) == 1 and n_colors > 1 and len(colors) > 1
    visible = np.delete(np.arange(len(colors)), clear) if reserve else np.arange(len(colors))
    fit, fit_weights, cell = histogram.coarsen(colors[visible], counts[visible], FIT_COLORS)
    km = kmeans.kmeans(fit, n_colors - reserve, weights=fit_weights, seed=seed,
                       max_iter=max_iter, tol=tol, init=init, swap_rounds=swap_rounds)
    palette = np.clip(np.rint(km.centers), 0, 255).astype(np.uint8)
    start = np.zeros(len(colors), np.int32)
    start[visible] = km.labels[cell]
    if reserve:
        start[clear] = len(palette)
        palette = np.vstack([palette, np.zeros((1, 4), np.uint8)])
    lap("palette")
    labels, dist = remap.nearest(colors, palette, start)
    used = np.bincount(labels, weights=counts, minlength=len(palette))
    # Most used first, translucent entries before opaque ones so the tRNS
    # chunk stays short; entries no colour uses (centres that rounded onto
    # another) are dropped -- in a sample, only duplicates can be dropped.
    keys = [-used] if c == 3 else [-used, palette[:, 3]]
    order = np.lexsort(keys)
    if sampled:
        order = order[np.unique(palette[order], axis=0, return_index=True)[1]]
        order = order[np.lexsort([-used[order]])]
    else:
        order = order[used[order] > 0]
    palette = np.ascontiguousarray(palette[order])
    if sampled:
        indices, sq_error = remap.remap_lut(flat, palette)
        indices = indices.reshape(h, w)
    else:
        lut = np.empty(len(used), np.uint8 if len(order) <= 256 else np.uint16)
        lut[order] = np.arange(len(order))
        indices = remap.apply(lut[labels], inverse, (h, w))
        sq_error = float(np.dot(counts, dist))
    lap("remap")
    err = sq_error / (h * w * c)
    stats = Stats(n_colors=len(palette), unique_colors=len(colors), width=w, height=h,
                  mse=err, psnr=metrics.psnr_from_mse(err), iterations=km.n_iter,
                  input_bytes=nbytes, seconds=seconds)
    result = Quantized(palette, indices, arr, stats)
    if ssim:
        stats.ssim = metrics.ssim(arr, result.image)
        lap("metrics")
    return result
