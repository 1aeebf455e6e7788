"""Image quality metrics: MSE, PSNR, SSIM, OKLab colour difference and the 0-100 quality scale.

All take two uint8 images of the same shape.  MSE and PSNR use every channel
(alpha included) of the straight (not premultiplied) values; for images with
alpha, :func:`psnr_over` scores what a viewer sees -- the RGB composite over
a solid background (:func:`composite`) -- and :func:`alpha_error` the largest
alpha change.  SSIM is computed on luma (ITU-R BT.601 weights) with an
11x11 Gaussian window, sigma 1.5 (Wang et al. 2004; the same choices as
``skimage.metrics.structural_similarity(gaussian_weights=True,
use_sample_covariance=False, data_range=255)`` on the luma image).  The SSIM
filter runs in a Numba kernel over bands of rows, so memory stays small on
large images.  :func:`delta_e_ok` converts to OKLab with
:mod:`fastquant.colorspace`'s kernels.
"""

import math

import numpy as np

from . import config, threads
from .errors import OptionError
from .jit import njit

_LUMA = np.array([0.299, 0.587, 0.114])


def _pair(a, b):
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise OptionError(f"images must have the same shape, got {a.shape} and {b.shape}")
    if a.size == 0:
        raise OptionError("images are empty")
    return a, b


def mse(a, b):
    """Mean squared error over all pixels and channels.

    Parameters
    ----------
    a, b : (H, W[, C]) uint8 ndarray

    Returns
    -------
    float
    """
    a, b = _pair(a, b)
    d = a.astype(np.float64) - b
    return float(np.mean(d * d))


def psnr_from_mse(m, data_range=255.0):
    """PSNR in dB for a mean squared error (``inf`` when it is 0)."""
    return float("inf") if m <= 0 else float(10.0 * np.log10(data_range * data_range / m))


def psnr(a, b):
    """Peak signal-to-noise ratio in dB (``inf`` for identical images).

    Parameters
    ----------
    a, b : (H, W[, C]) uint8 ndarray

    Returns
    -------
    float
    """
    return psnr_from_mse(mse(a, b))


def _background(background):
    bg = np.broadcast_to(np.asarray(background, np.float64), (3,))
    if not np.isfinite(bg).all():
        raise OptionError(f"background must be finite, got {background!r}")
    return bg


def composite(image, background):
    """RGB of an image composited over a solid background (straight alpha).

    Parameters
    ----------
    image : (..., 4) uint8 ndarray
        Straight RGBA; (..., 3) counts as opaque.
    background : number or (3,) sequence
        The background colour, 0..255 (0 is black, 255 white).

    Returns
    -------
    (..., 3) float64 ndarray
        ``rgb * a / 255 + background * (1 - a / 255)``.
    """
    image = np.asarray(image)
    if image.ndim < 1 or image.shape[-1] not in (3, 4):
        raise OptionError(f"expected an RGB or RGBA image (3 or 4 channels), got shape {image.shape}")
    bg = _background(background)
    rgb = image[..., :3].astype(np.float64)
    if image.shape[-1] == 3:
        return rgb
    a = image[..., 3:].astype(np.float64) / 255.0
    return rgb * a + bg * (1.0 - a)


def _over_args(a, b, weights):
    a, b = _pair(a, b)
    if a.ndim < 1 or a.shape[-1] not in (3, 4):
        raise OptionError(f"expected RGB or RGBA images (3 or 4 channels), got shape {a.shape}")
    c = a.shape[-1]
    a = a.reshape(-1, c)
    b = b.reshape(-1, c)
    if weights is not None:
        weights = np.asarray(weights, np.float64).reshape(-1)
        if len(weights) != len(a):
            raise OptionError(f"weights must have one value per pixel ({len(a)}), got {len(weights)}")
    return a, b, weights


def over_sq_error(a, b, background, *, weights=None):
    """Summed squared error of the RGB composites of two images over a background.

    Parameters
    ----------
    a, b, background, weights
        As for :func:`psnr_over`.

    Returns
    -------
    float
        The sum over pixels (weighted) and the 3 colour channels; divided by
        3 times the pixel count it is the MSE that :func:`psnr_over` uses.
    """
    a, b, weights = _over_args(a, b, weights)
    return _over_sq(a, b, _background(background), weights)


def _over_sq(a, b, bg, weights):
    """:func:`over_sq_error` of checked (N, C) arrays and a (3,) background."""
    sq = 0.0
    step = config.PSNR_OVER_CHUNK  # bounded memory, a fixed summation order
    for lo in range(0, len(a), step):
        d = composite(a[lo : lo + step], bg) - composite(b[lo : lo + step], bg)
        per = (d * d).sum(axis=1)
        sq += float(per.sum() if weights is None else (weights[lo : lo + step] * per).sum())
    return sq


def psnr_over(a, b, background, *, weights=None):
    """PSNR in dB of the RGB composites of two images over a background.

    What a viewer sees of an image with alpha; invisible colour differences
    (alpha 0) cost nothing, faint ones little.

    Parameters
    ----------
    a, b : (..., 4) uint8 ndarray
        Straight RGBA of the same shape ((..., 3): opaque).
    background : number or (3,) sequence
        See :func:`composite`.
    weights : (...) array_like, optional
        How many pixels each element stands for (e.g. histogram counts, when
        ``a`` and ``b`` are colours and what they map to); default 1.

    Returns
    -------
    float
        ``10 log10(255**2 / mse)`` of the composites (float64), the MSE taken
        over the 3 colour channels of all pixels; ``inf`` when they are equal.
    """
    a, b, weights = _over_args(a, b, weights)
    n = len(a) if weights is None else float(weights.sum())
    return psnr_from_mse(_over_sq(a, b, _background(background), weights) / (3.0 * n))


def alpha_error(a, b):
    """Largest change of alpha between two images.

    Parameters
    ----------
    a, b : (..., 4) uint8 ndarray
        RGBA of the same shape ((..., 3): opaque, alpha 255).

    Returns
    -------
    int
        ``max |alpha_a - alpha_b|`` over all pixels (0 for RGB images).
    """
    a, b = _pair(a, b)
    if a.ndim < 1 or a.shape[-1] not in (3, 4):
        raise OptionError(f"expected RGB or RGBA images (3 or 4 channels), got shape {a.shape}")
    if a.shape[-1] == 3:
        return 0
    return int(np.abs(a[..., 3].astype(np.int16) - b[..., 3].astype(np.int16)).max())


def alpha_figures(a, b, *, weights=None):
    """What a viewer sees of RGBA image ``b`` made from ``a``.

    Parameters
    ----------
    a, b : (..., 4) uint8 ndarray
        Straight RGBA, the same shape.
    weights : (N,) ndarray, optional
        As for :func:`psnr_over` (pixels, or colours with their counts).

    Returns
    -------
    (int, float, float)
        :func:`alpha_error`, and :func:`psnr_over` over black and over white.
    """
    return alpha_error(a, b), psnr_over(a, b, 0, weights=weights), psnr_over(a, b, 255, weights=weights)


def _luma_weights(channels):
    """Weight of each channel in the luma: BT.601 on R, G, B; a grey channel
    as it is; alpha (the 2nd of 2, the 4th of 4) not at all.
    """
    lw = np.zeros(channels)
    if channels >= 3:
        lw[:3] = _LUMA
    else:
        lw[0] = 1.0
    return lw


def luma(image):
    """(H, W) float64 luma of an (H, W) or (H, W, C) image, C in 1..4 (alpha ignored)."""
    image = np.asarray(image)
    if image.ndim == 2:
        return image.astype(np.float64)
    return _luma_map(np.ascontiguousarray(image), _luma_weights(image.shape[2]))


@njit(cache=True, nogil=True, inline="always")
def _mirror(i, n):
    """Index into [0, n) with 'symmetric' (half-sample) reflection at the edges; indices
    further out than one reflection are clamped (they only meet zero weights, see
    :func:`_ssim_rows`).
    """
    if i < 0:
        i = -i - 1
    if i >= n:
        i = 2 * n - i - 1
    return min(max(i, 0), n - 1)


@njit(cache=True, nogil=True)
def _luma_map(a, lw):
    """(H, W) float64 weighted sum of the channels of a (H, W, C) uint8 image."""
    h, w, nc = a.shape
    out = np.empty((h, w))
    for i in range(h):
        for j in range(w):
            s = 0.0
            for ch in range(nc):
                s += lw[ch] * a[i, j, ch]
            out[i, j] = s
    return out


#: Taps of the SSIM window handled in one pass of :func:`_ssim_rows` on each side of the centre.
_TAPS = 5


@njit(cache=True, nogil=True, inline="always")
def _five_taps(s, pa, pb, j, g, t):
    """``s`` plus taps t .. t + 4 of the symmetric window ``g``, each on the pair of values
    at equal distance from the centre: ``pa[j + e]`` and ``pb[j + 4 - e]``.  Fixed offsets
    from two views, so that the loop over ``j`` around it runs on vectors.
    """
    s += g[t] * (pa[j] + pb[j + 4])
    s += g[t + 1] * (pa[j + 1] + pb[j + 3])
    s += g[t + 2] * (pa[j + 2] + pb[j + 2])
    s += g[t + 3] * (pa[j + 3] + pb[j + 1])
    s += g[t + 4] * (pa[j + 4] + pb[j])
    return s


@njit(cache=True, nogil=True)
def _ssim_rows(x, y, g, c1, c2, crop, top, h, r0, r1):
    """Sum of the SSIM map of lumas x, y over output rows r0 .. r1 - 1 of an
    image of height h, and columns [crop, w - crop).

    ``x`` and ``y`` hold rows ``top .. top + len(x) - 1`` of the luma maps:
    at least the rows within the window radius of r0 .. r1 - 1 (mirrored at
    the image's edges).  Separable Gaussian filtering of x, y, x*x, y*y and
    x*y; the window is symmetric, so each pair of taps at equal distance
    shares one multiply.  ``g`` has a multiple of :data:`_TAPS` taps on each
    side, zeros beyond the window's radius (adding them changes no bit: the
    sums are of values >= 0); rows and columns they reach beyond the data are
    clamped.  Each output is the centre tap plus the others from the outside
    in, the same sums whatever the padding.
    """
    w = x.shape[1]
    r = len(g) // 2
    last = top + x.shape[0] - 1
    ring = 2 * r + 1  # the rows of the window: horizontally filtered rows are kept for as long as it reaches them
    hz = np.empty((5, ring, w))  # horizontally filtered x, y, x*x, y*y, x*y; row q in slot q % ring
    pad = np.empty((5, w + 2 * r))  # one row of the five maps, mirrored at both ends
    gc = g[r]
    done = 0  # rows of hz filtered so far (row q: image row r0 - r + q)
    acc = 0.0
    mv = np.empty((5, w))
    sv = np.empty(w)
    for i in range(max(r0, crop), min(r1, h - crop)):
        q0 = i - r0
        done = max(done, q0)  # rows above the window are never needed
        while done <= q0 + 2 * r:
            q = done
            done += 1
            i_src = min(max(_mirror(r0 - r + q, h), top), last) - top
            for j in range(w):
                lx = x[i_src, j]
                ly = y[i_src, j]
                pad[0, r + j] = lx
                pad[1, r + j] = ly
                pad[2, r + j] = lx * lx
                pad[3, r + j] = ly * ly
                pad[4, r + j] = lx * ly
            for e in range(r):
                for m in range(5):
                    pad[m, r - 1 - e] = pad[m, r + min(e, w - 1)]
                    pad[m, r + w + e] = pad[m, r + max(w - 1 - e, 0)]
            for m in range(5):
                p = pad[m]
                out = hz[m, q % ring]
                centre, pa, pb = p[r:], p[0:], p[2 * r - 4 :]
                for j in range(w):
                    out[j] = _five_taps(gc * centre[j], pa, pb, j, g, 0)
                for t in range(_TAPS, r, _TAPS):
                    pa, pb = p[t:], p[2 * r - t - 4 :]
                    for j in range(w):
                        out[j] = _five_taps(out[j], pa, pb, j, g, t)
        for m in range(5):
            hm = hz[m]
            out = mv[m]
            for t in range(0, r, _TAPS):
                a0, a1, a2 = hm[(q0 + t) % ring], hm[(q0 + t + 1) % ring], hm[(q0 + t + 2) % ring]
                a3, a4 = hm[(q0 + t + 3) % ring], hm[(q0 + t + 4) % ring]
                d = q0 + 2 * r - t
                b0, b1, b2, b3, b4 = (
                    hm[d % ring],
                    hm[(d - 1) % ring],
                    hm[(d - 2) % ring],
                    hm[(d - 3) % ring],
                    hm[(d - 4) % ring],
                )
                c = hm[(q0 + r) % ring]
                g0, g1, g2, g3, g4 = g[t], g[t + 1], g[t + 2], g[t + 3], g[t + 4]
                for j in range(crop, w - crop):
                    s = gc * c[j] if t == 0 else out[j]
                    s += g0 * (a0[j] + b0[j])
                    s += g1 * (a1[j] + b1[j])
                    s += g2 * (a2[j] + b2[j])
                    s += g3 * (a3[j] + b3[j])
                    s += g4 * (a4[j] + b4[j])
                    out[j] = s
        m0a, m1a, m2a, m3a, m4a = mv[0], mv[1], mv[2], mv[3], mv[4]
        for j in range(crop, w - crop):  # apart from the sum below, so that it runs on vectors
            m0 = m0a[j]
            m1 = m1a[j]
            vx = m2a[j] - m0 * m0
            vy = m3a[j] - m1 * m1
            cxy = m4a[j] - m0 * m1
            sv[j] = ((2 * m0 * m1 + c1) * (2 * cxy + c2)) / ((m0 * m0 + m1 * m1 + c1) * (vx + vy + c2))
        for j in range(crop, w - crop):
            acc += sv[j]
    return acc


def ssim_bands(rows_a, rows_b, shape, *, sigma=1.5, data_range=255.0, max_pixels=None):
    """Mean SSIM of the luma of two images given band by band.

    The images are never needed whole: each band of ``config.SSIM_BAND_ROWS`` output rows reads
    its rows plus the window's margin, so memory stays at a few rows.

    Parameters
    ----------
    rows_a, rows_b : callable
        ``rows(lo, hi)`` returns rows lo .. hi - 1 of an image as a
        (hi - lo, W[, C]) uint8 ndarray (or their luma, (hi - lo, W) float64).
    shape : (int, int)
        (H, W).
    sigma, data_range
        See :func:`ssim`.
    max_pixels : int or None
        Above this many pixels, only evenly spaced bands covering about
        ``max_pixels`` pixels are measured (the same bands whatever the
        thread count); None measures all.

    Returns
    -------
    float
    """
    h, w = shape
    r = int(3.5 * sigma + 0.5)
    r = min(r, max(0, (min(shape) - 1) // 2))  # too small for the window: shrink it to fit
    t = np.arange(-r, r + 1)
    g = np.exp(-0.5 * (t / sigma) ** 2)
    g /= g.sum()
    zeros = np.zeros(_TAPS * max(1, -(-r // _TAPS)) - r)  # whole passes of _ssim_rows
    g = np.concatenate([zeros, g, zeros])
    crop = r if r and min(shape) > 2 * r else 0
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    band_rows = config.SSIM_BAND_ROWS  # fixed, so the float sums do not depend on threads
    n_bands = (h + band_rows - 1) // band_rows
    bands = np.arange(n_bands)
    if max_pixels is not None and h * w > max_pixels:
        keep = max(1, min(n_bands, max_pixels // (band_rows * w)))
        bands = (np.arange(keep) * n_bands) // keep

    def band_sum(band):
        r0, r1 = band * band_rows, min(h, (band + 1) * band_rows)
        lo, hi = max(0, r0 - r), min(h, r1 + r)  # the rows the window reaches (mirrors stay inside)
        x, y = luma(rows_a(lo, hi)), luma(rows_b(lo, hi))
        return _ssim_rows(x, y, g, c1, c2, crop, lo, h, r0, r1)

    total = float(np.sum(threads.run(band_sum, bands)))  # added in band order: any thread count
    counted = sum(max(0, min((b + 1) * band_rows, h - crop) - max(b * band_rows, crop)) for b in bands.tolist())
    return total / (max(counted, 1) * (w - 2 * crop))


def ssim(a, b, *, sigma=1.5, data_range=255.0, max_pixels=None):
    """Mean structural similarity of the luma of two images.

    Parameters
    ----------
    a, b : (H, W[, C]) uint8 ndarray
    sigma : float
        Standard deviation of the Gaussian window (truncated at 3.5 sigma).
    data_range : float
        Range of the values.
    max_pixels : int, optional
        Bound the cost on huge images: above this many pixels, the mean is
        taken over evenly spaced bands of 64 rows that cover about
        ``max_pixels`` pixels (:func:`ssim_bands`).  Default: every pixel.

    Returns
    -------
    float
        In [-1, 1]; 1 for identical images.  Pixels closer than the window
        radius to the border are left out of the mean; images smaller than
        the window use all pixels.
    """
    a, b = _pair(a, b)
    a = np.ascontiguousarray(a, np.uint8)
    b = np.ascontiguousarray(b, np.uint8)
    return ssim_bands(
        lambda lo, hi: a[lo:hi],
        lambda lo, hi: b[lo:hi],
        a.shape[:2],
        sigma=sigma,
        data_range=data_range,
        max_pixels=max_pixels,
    )


def ssim_indexed(image, palette, indices, *, max_pixels=None):
    """:func:`ssim` of an image against ``palette[indices]``, which is never made whole: the
    luma of each palette entry is looked up, band by band (the same floats as :func:`ssim`).

    Parameters
    ----------
    image : (H, W, C) uint8 ndarray, or callable
        The reference, or ``rows(lo, hi)`` giving its rows (see :func:`ssim_bands`).
    palette : (k, C) uint8 ndarray
    indices : (H, W) integer ndarray
    max_pixels : int, optional
        See :func:`ssim`.

    Returns
    -------
    float
    """
    lut = luma(np.asarray(palette)[None])[0]  # (k,) float64: as luma() gives each pixel of that colour
    rows = image if callable(image) else (lambda lo, hi: image[lo:hi])
    return ssim_bands(rows, lambda lo, hi: lut[indices[lo:hi]], indices.shape, max_pixels=max_pixels)


def delta_e_ok(a, b):
    """Mean colour difference in OKLab: Euclidean distance times 100 (alpha ignored).

    A simple perceptual measure: about 1 is the smallest difference people
    notice between flat patches side by side; 2 or more is clearly visible.

    Parameters
    ----------
    a, b : (H, W, 3|4) uint8 ndarray

    Returns
    -------
    float
    """
    from .colorspace import srgb_to_oklab

    a, b = _pair(a, b)
    la = srgb_to_oklab(np.ascontiguousarray(a[..., :3], np.uint8)).astype(np.float64)
    lb = srgb_to_oklab(np.ascontiguousarray(b[..., :3], np.uint8)).astype(np.float64)
    return float(100.0 * np.sqrt(((la - lb) ** 2).sum(axis=-1)).mean())


# The 0-100 quality scale is pngquant's (libimagequant's quality_to_mse), so
# that ``--quality 65-80`` means what pngquant users expect.  libimagequant
# divides its per-pixel sum over channels by 6 where our MSE averages over 3,
# so its "MSE" is half of ours for the same per-channel errors (on photos the
# ratio is a little above 2: libimagequant also weights by its gamma).
_MSE_UNIT = 65536.0 / 3.0


def mse_for_quality(q):
    """The largest MSE (as :func:`mse`, uint8 units) that still has quality ``q``.

    ``65536 / 3 * (2.5 / (210 + q) ** 1.2 * (100.1 - q) / 100
    + max(0, 0.016 / (0.001 + q) - 0.001))`` for 0 < q < 100 (pngquant's
    curve, in our units); 0 for q >= 100 (lossless), infinity for q <= 0.
    In PSNR: q 95 = 43.5 dB, 90 = 40.4, 80 = 37.3, 70 = 35.3, 60 = 33.9,
    40 = 31.8, 20 = 30.1, 10 = 28.6.
    """
    if q >= 100:
        return 0.0
    if q <= 0:
        return math.inf
    return _MSE_UNIT * (2.5 / (210.0 + q) ** 1.2 * (100.1 - q) / 100.0 + max(0.0, 0.016 / (0.001 + q) - 0.001))


def quality_from_mse(m):
    """Quality 0-100 of a result with mean squared error ``m``: the largest
    whole q with ``m <= mse_for_quality(q)`` (100 only when lossless).

    Returns
    -------
    int
    """
    for q in range(100, 0, -1):
        if m <= mse_for_quality(q) * (1 + 1e-9):  # slack for float noise, as pngquant's
            return q
    return 0
