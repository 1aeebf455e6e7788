"""Image quality metrics: MSE, PSNR and SSIM (numpy only).

All take two uint8 images of the same shape.  MSE and PSNR use every channel
(alpha included); SSIM is computed on luma (ITU-R BT.601 weights) with an
11x11 Gaussian window, sigma 1.5 (Wang et al. 2004; the same choices as
``skimage.metrics.structural_similarity(gaussian_weights=True,
use_sample_covariance=False, data_range=255)`` on the luma image).
"""
import numpy as np

from .errors import OptionError

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


def luma(image):
    """(H, W) float64 luma of an (H, W), (H, W, 3) or (H, W, 4) image (alpha ignored)."""
    image = np.asarray(image, np.float64)
    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[:, :, 0]
    return image[:, :, :3] @ _LUMA


def _gauss_filter(x, weights):
    """Separable filter with 'symmetric' (half-sample) edges, along both axes."""
    r = len(weights) // 2
    for axis in (0, 1):
        p = np.pad(x, [(r, r) if ax == axis else (0, 0) for ax in (0, 1)], mode="symmetric")
        n = x.shape[axis]
        out = np.zeros_like(x)
        for t, wt in enumerate(weights):
            out += wt * (p[t:t + n] if axis == 0 else p[:, t:t + n])
        x = out
    return x


def ssim(a, b, *, sigma=1.5, data_range=255.0):
    """Mean structural similarity of the luma of two images.

    Parameters
    ----------
    a, b : (H, W[, C]) uint8 ndarray
    sigma : float
        Standard deviation of the Gaussian window (truncated at 3.5 sigma).
    data_range : float
        Range of the values.

    Returns
    -------
    float
        In [-1, 1]; 1 for identical images.  Pixels closer than the window
        radius to the border are left out of the mean; images smaller than
        the window use all pixels.
    """
    a, b = _pair(a, b)
    x, y = luma(a), luma(b)
    r = int(3.5 * sigma + 0.5)
    t = np.arange(-r, r + 1)
    g = np.exp(-0.5 * (t / sigma) ** 2)
    g /= g.sum()
    if min(x.shape) <= 2 * r:  # too small for the window: shrink it to fit
        r = max(0, (min(x.shape) - 1) // 2)
        g = g[len(g) // 2 - r: len(g) // 2 + r + 1]
        g /= g.sum()
    mx, my = _gauss_filter(x, g), _gauss_filter(y, g)
    sxx = _gauss_filter(x * x, g) - mx * mx
    syy = _gauss_filter(y * y, g) - my * my
    sxy = _gauss_filter(x * y, g) - mx * my
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    if r and min(s.shape) > 2 * r:
        s = s[r:-r, r:-r]
    return float(s.mean())
