"""sRGB <-> OKLab, and the point spaces palettes are fitted and searched in.

OKLab (Björn Ottosson, 2020, https://bottosson.github.io/posts/oklab/) is
computed from linear light: sRGB values are decoded with the sRGB transfer
curve (a 256-entry table, exact for uint8 input), mixed into LMS cone
responses, cube-rooted and mixed again, with Ottosson's published matrices.
Euclidean distance in OKLab approximates perceived colour difference far
better than distance in sRGB values.

Names, one pattern for each kind of thing:

- ``srgb_to_oklab`` / ``oklab_to_srgb``: the colour conversions (float
  results, optionally scaled; alpha, when there is a 4th channel, carried
  along as a coordinate); ``srgb_to_oklab_at`` is the per-colour kernel, for
  other modules' kernels to call;
- ``premultiply`` / ``unpremultiply``: straight RGBA <-> premultiplied;
- ``stretch_luma``: sRGB points with their BT.601 luma direction lengthened,
  so that a luma difference costs more than a chroma difference of the
  same size (what compress fits RGB palettes on);
- ``to_points`` / ``from_points``: uint8 colours <-> the float32 *points* of
  a point space (:data:`SPACES`), what the k-means clusters and the nearest
  search measures: ``"rgb"`` (the values), ``"premultiplied"`` (RGBA as
  (r a/255, g a/255, b a/255, a), as pngquant does, so a colour difference
  costs in proportion to how visible it is), ``"composites"`` (RGBA as
  premultiplied colour P and alpha a in (P - a/2, sqrt(3)/2 a): distances
  are the mean of those over black and over white; what RGBA in sRGB is
  clustered in, :func:`composites`) or ``"oklab"`` (OKLab times :data:`SCALE`, so that L spans 0..255 like the
  sRGB values the rest of the package uses, plus alpha unchanged; the
  k-means tolerances and float32 precision were tuned for that range).

Kernels work per colour, so the blocks run on threads (:mod:`fastquant.threads`)
give the same values for any thread count.
"""

import numpy as np

from . import config, threads
from .jit import njit

#: OKLab coordinates are multiplied by this in the quantizer's points, so
#: that L (0..1) spans 0..255 like sRGB values and alpha.
SCALE = 255.0


def _srgb_to_linear_table():
    c = np.arange(256) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


#: Linear-light value of every uint8 sRGB level (float64).
LINEAR = _srgb_to_linear_table()


def gamma_to_srgb(gamma):
    """The sRGB level of every uint8 sample of a PNG with file gamma ``gamma`` (its gAMA chunk).

    A sample ``v`` stands for the light ``(v / 255) ** (1 / gamma)``, which is
    encoded with the sRGB curve, as a viewer that honours gAMA shows it.

    Parameters
    ----------
    gamma : float
        > 0; 1 / 2.2 (0.45455) is about sRGB, 1.0 linear light.

    Returns
    -------
    (256,) uint8 ndarray
    """
    light = (np.arange(256) / 255.0) ** (1.0 / gamma)
    srgb = np.where(light <= 0.0031308, 12.92 * light, 1.055 * light ** (1 / 2.4) - 0.055)
    return np.clip(np.round(srgb * 255.0), 0, 255).astype(np.uint8)


@njit(cache=True, nogil=True, inline="always")
def srgb_to_oklab_at(colors, i, lin, scale, out, j):
    """Write OKLab of colour ``colors[i]``, times ``scale``, into ``out[j]``.

    Alpha becomes ``alpha / 255 * scale``; ``lin`` is :data:`LINEAR`.
    """
    r = lin[colors[i, 0]]
    g = lin[colors[i, 1]]
    b = lin[colors[i, 2]]
    # Ottosson's M1 (linear sRGB -> LMS), cube root, then M2 (-> Lab).
    l_ = np.cbrt(0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * b)
    m_ = np.cbrt(0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * b)
    s_ = np.cbrt(0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * b)
    out[j, 0] = scale * (0.2104542553 * l_ + 0.7936177850 * m_ - 0.0040720468 * s_)
    out[j, 1] = scale * (1.9779984951 * l_ - 2.4285922050 * m_ + 0.4505937099 * s_)
    out[j, 2] = scale * (0.0259040371 * l_ + 0.7827717662 * m_ - 0.8086757660 * s_)
    for t in range(3, colors.shape[1]):
        out[j, t] = colors[i, t] * (scale / 255.0)


@njit(cache=True, nogil=True)
def _srgb_to_oklab_range(colors, lin, scale, out, lo, hi):
    for i in range(lo, hi):
        srgb_to_oklab_at(colors, i, lin, scale, out, i)


@njit(cache=True, nogil=True, inline="always")
def _linear_to_srgb(x):
    if x <= 0.0031308:
        v = 12.92 * x
    else:
        v = 1.055 * x ** (1.0 / 2.4) - 0.055
    return min(max(v * 255.0, 0.0), 255.0)


@njit(cache=True, nogil=True)
def _oklab_to_srgb_range(points, scale, out, lo, hi):
    for i in range(lo, hi):
        L = points[i, 0] / scale
        a = points[i, 1] / scale
        b = points[i, 2] / scale
        l_ = L + 0.3963377774 * a + 0.2158037573 * b
        m_ = L - 0.1055613458 * a - 0.0638541728 * b
        s_ = L - 0.0894841775 * a - 1.2914855480 * b
        l3 = l_ * l_ * l_
        m3 = m_ * m_ * m_
        s3 = s_ * s_ * s_
        out[i, 0] = _linear_to_srgb(4.0767416621 * l3 - 3.3077115913 * m3 + 0.2309699292 * s3)
        out[i, 1] = _linear_to_srgb(-1.2684380046 * l3 + 2.6097574011 * m3 - 0.3413193965 * s3)
        out[i, 2] = _linear_to_srgb(-0.0041960863 * l3 - 0.7034186147 * m3 + 1.7076147010 * s3)
        for t in range(3, points.shape[1]):
            out[i, t] = min(max(points[i, t] * (255.0 / scale), 0.0), 255.0)


def _flat(a, dtype, name):
    a = np.asarray(a)
    if a.ndim < 1 or a.shape[-1] not in (3, 4):
        raise ValueError(f"{name} must have 3 or 4 channels in the last axis, got shape {a.shape}")
    return np.ascontiguousarray(a.reshape(-1, a.shape[-1]), dtype)


def srgb_to_oklab(colors, scale=1.0):
    """OKLab of sRGB colours, times ``scale``; alpha kept as a 4th coordinate.

    Parameters
    ----------
    colors : (..., 3) or (..., 4) uint8 ndarray
        sRGB (and alpha) values.
    scale : float
        Multiplies L (0..1), a and b; alpha becomes ``alpha / 255 * scale``.
        The ``"oklab"`` points of :func:`to_points` use :data:`SCALE`.

    Returns
    -------
    (..., 3) or (..., 4) float32 ndarray
    """
    colors = np.asarray(colors)
    if colors.dtype != np.uint8:
        raise ValueError(f"expected uint8 sRGB values, got dtype {colors.dtype}")
    flat = _flat(colors, np.uint8, "colors")
    out = np.empty(flat.shape, np.float32)
    scale = float(scale)
    threads.run_blocks(
        lambda lo, hi: _srgb_to_oklab_range(flat, LINEAR, scale, out, lo, hi),
        len(flat),
        None if len(flat) >= config.PARALLEL_MIN_COLORS else 1,
    )
    return out.reshape(colors.shape)


def oklab_to_srgb(lab, scale=1.0):
    """The sRGB (and alpha) values of OKLab colours times ``scale``: the inverse of :func:`srgb_to_oklab`, in float.

    Parameters
    ----------
    lab : (..., 3) or (..., 4) float ndarray
    scale : float

    Returns
    -------
    (..., 3) or (..., 4) float64 ndarray
        sRGB values clipped to [0, 255] (out-of-gamut colours are clipped
        per channel), not rounded.
    """
    lab = np.asarray(lab)
    flat = _flat(lab, np.float32, "lab")
    out = np.empty(flat.shape, np.float64)
    scale = float(scale)
    threads.run_blocks(
        lambda lo, hi: _oklab_to_srgb_range(flat, scale, out, lo, hi),
        len(flat),
        None if len(flat) >= config.PARALLEL_MIN_COLORS else 1,
    )
    return out.reshape(lab.shape)


# ----------------------------------------------------------------------------- luma emphasis

#: BT.601 luma weights (as :func:`fastquant.metrics.luma`), as a unit vector.
_LUMA_DIR = np.array([0.299, 0.587, 0.114]) / np.linalg.norm([0.299, 0.587, 0.114])


def stretch_luma(points, factor):
    """Points of sRGB colours with their component along the luma direction times ``factor``.

    The map is ``x + (factor - 1) (u . x) u`` with ``u`` the unit vector of the
    BT.601 luma weights: squared distances become ``|d|^2 + (factor^2 - 1) (u . d)^2``,
    so luma differences (what structure, and SSIM, is made of) cost more than
    chroma differences.  Linear, so weighted means commute with it:
    ``stretch_luma(points, 1 / factor)`` is its inverse.

    Parameters
    ----------
    points : (M, 3) float ndarray
    factor : float > 0

    Returns
    -------
    (M, 3) float32 ndarray
    """
    x = np.asarray(points, np.float64)
    along = x @ _LUMA_DIR
    return (x + (float(factor) - 1.0) * along[:, None] * _LUMA_DIR).astype(np.float32)


# ----------------------------------------------------------------------------- premultiplied alpha

#: The point spaces of :func:`to_points` and :func:`from_points`.
SPACES = ("rgb", "premultiplied", "composites", "oklab")

#: sqrt(3) / 2: alpha times this is the 4th coordinate of the ``"composites"`` points.
COMPOSITE_ALPHA = float(np.sqrt(3.0) / 2.0)


def _rgba(colors, name):
    colors = np.asarray(colors)
    if colors.ndim < 1 or colors.shape[-1] != 4:
        raise ValueError(f"{name} must be RGBA (4 channels in the last axis), got shape {colors.shape}")
    return colors


def premultiply(colors):
    """Premultiplied points of straight RGBA colours.

    Parameters
    ----------
    colors : (..., 4) uint8 ndarray
        Straight (not premultiplied) RGBA.

    Returns
    -------
    (..., 4) float32 ndarray
        ``(r * a / 255, g * a / 255, b * a / 255, a)``, computed in float64
        and rounded once to float32.  Fully transparent colours all become
        ``(0, 0, 0, 0)``; for ``a > 0`` the map is one-to-one.
    """
    colors = _rgba(colors, "colors")
    if colors.dtype != np.uint8:
        raise ValueError(f"expected uint8 RGBA values, got dtype {colors.dtype}")
    x = colors.astype(np.float64)
    out = np.empty(colors.shape, np.float32)
    out[..., :3] = x[..., :3] * x[..., 3:] / 255.0
    out[..., 3] = x[..., 3]
    return out


def unpremultiply(points):
    """Straight RGBA uint8 colours of premultiplied points (inverse of :func:`premultiply`).

    Parameters
    ----------
    points : (..., 4) float ndarray
        Premultiplied RGBA, e.g. k-means centres of :func:`premultiply` points.

    Returns
    -------
    (..., 4) uint8 ndarray
        ``a = rint(alpha)`` clipped to [0, 255]; ``rgb = rint(premultiplied *
        255 / a)`` clipped to [0, 255] (divided by the rounded alpha, so that
        the entry's premultiplied colour is as near the point's as it can be);
        ``(0, 0, 0, 0)`` where ``a`` rounds to 0.  Exact for points made by
        :func:`premultiply`.
    """
    p = np.asarray(_rgba(points, "points"), np.float64)
    a = np.clip(np.rint(p[..., 3:]), 0.0, 255.0)
    rgb = np.divide(p[..., :3] * 255.0, a, out=np.zeros(p.shape[:-1] + (3,)), where=a > 0)
    out = np.empty(p.shape, np.uint8)
    out[..., :3] = np.clip(np.rint(rgb), 0.0, 255.0)
    out[..., 3:] = a
    return out


def composites(colors):
    """``"composites"`` points of straight RGBA colours: premultiplied colour
    ``P = (r a/255, g a/255, b a/255)`` and alpha as ``(P - a/2, sqrt(3)/2 a)``.

    Squared distances between these points are the mean of the squared
    distances between the colours composited over black (``P``) and over
    white (``P + 255 - a``): a palette fitted and searched here is as good
    over a light background as over a dark one, where premultiplied points
    (the composite over black, plus alpha) favour the dark one.

    Parameters
    ----------
    colors : (..., 4) uint8 ndarray
        Straight RGBA.

    Returns
    -------
    (..., 4) float32 ndarray
        Computed in float64 and rounded once; fully transparent colours all
        become ``(0, 0, 0, 0)``.
    """
    colors = _rgba(colors, "colors")
    if colors.dtype != np.uint8:
        raise ValueError(f"expected uint8 RGBA values, got dtype {colors.dtype}")
    x = colors.astype(np.float64)
    a = x[..., 3:]
    out = np.empty(colors.shape, np.float32)
    out[..., :3] = x[..., :3] * a / 255.0 - a / 2.0
    out[..., 3] = COMPOSITE_ALPHA * x[..., 3]
    return out


def from_composites(points):
    """Straight RGBA uint8 colours of ``"composites"`` points (inverse of :func:`composites`).

    Parameters
    ----------
    points : (..., 4) float ndarray

    Returns
    -------
    (..., 4) uint8 ndarray
        Alpha ``rint(y_a / (sqrt(3)/2))``, then as :func:`unpremultiply` of
        ``(y_rgb + alpha/2, alpha)``, with the rounded alpha.
    """
    p = np.asarray(_rgba(points, "points"), np.float64)
    a = np.clip(np.rint(p[..., 3:] / COMPOSITE_ALPHA), 0.0, 255.0)
    pre = np.empty(p.shape)
    pre[..., :3] = p[..., :3] + a / 2.0
    pre[..., 3:] = a
    return unpremultiply(pre)


def to_points(colors, space):
    """The points that stand for uint8 colours in a point space (what the k-means clusters).

    Parameters
    ----------
    colors : (M, C) uint8 ndarray
    space : {"rgb", "premultiplied", "composites", "oklab"}
        ``"rgb"``: the values as float32; ``"premultiplied"``: :func:`premultiply`
        (RGBA only); ``"composites"``: :func:`composites` (RGBA only);
        ``"oklab"``: :func:`srgb_to_oklab` times :data:`SCALE`.

    Returns
    -------
    (M, C) float32 ndarray
    """
    if space == "rgb":
        return np.ascontiguousarray(colors, np.float32)
    if space == "premultiplied":
        return premultiply(colors)
    if space == "composites":
        return composites(colors)
    if space == "oklab":
        return srgb_to_oklab(colors, SCALE)
    raise ValueError(f"space must be one of {SPACES}, got {space!r}")


def from_points(points, space):
    """uint8 colours of points of a point space (centres back to palette entries).

    Parameters
    ----------
    points : (M, C) float ndarray
    space : {"rgb", "premultiplied", "composites", "oklab"}

    Returns
    -------
    (M, C) uint8 ndarray
        Rounded to nearest and clipped to [0, 255] (see :func:`unpremultiply`,
        :func:`from_composites` and :func:`oklab_to_srgb`).
    """
    if space == "rgb":
        return np.clip(np.rint(points), 0, 255).astype(np.uint8)
    if space == "premultiplied":
        return unpremultiply(points)
    if space == "composites":
        return from_composites(points)
    if space == "oklab":
        return np.rint(oklab_to_srgb(points, SCALE)).astype(np.uint8)
    raise ValueError(f"space must be one of {SPACES}, got {space!r}")


# ----------------------------------------------------------------------------- colour lists

#: Hex digits of the colour notations :func:`parse_colors` reads: rgb, rgba, rrggbb, rrggbbaa.
_HEX_LENGTHS = (3, 4, 6, 8)


def parse_hex(text):
    """One colour from hex notation, ``#`` optional: ``rgb``, ``rgba``, ``rrggbb`` or ``rrggbbaa``.

    Returns
    -------
    tuple of 3 or 4 int
        RGB, or RGBA when an alpha was written.

    Raises
    ------
    ValueError
        Not such a colour (the message names it).
    """
    h = text.strip()
    h = h[1:] if h.startswith("#") else h
    if len(h) not in _HEX_LENGTHS or any(ch not in "0123456789abcdefABCDEF" for ch in h):
        raise ValueError(f"{text.strip()!r} is not a hex colour (rrggbb or rrggbbaa, '#' optional)")
    if len(h) <= 4:
        h = "".join(ch * 2 for ch in h)
    return tuple(int(h[i : i + 2], 16) for i in range(0, len(h), 2))


def parse_colors(colors):
    """A list of colours as one (k, 3|4) uint8 array.

    Parameters
    ----------
    colors : sequence of str, or (k, 3|4) array_like of int
        Hex strings (:func:`parse_hex`; a single string may hold several,
        comma-separated) or rows of values 0..255.  When any colour has an
        alpha, all get one (255 for those written without).

    Returns
    -------
    (k, 3) or (k, 4) uint8 ndarray
        In the order given, k >= 1.

    Raises
    ------
    ValueError
        Not colours (the message says what was wrong).
    """
    if isinstance(colors, str):
        colors = [c for c in colors.split(",") if c.strip()]
    if len(colors) and all(isinstance(c, str) for c in colors):
        rows = [parse_hex(c) for c in colors]
        width = max(len(r) for r in rows)
        a = np.array([r + (255,) * (width - len(r)) for r in rows], np.int64)
    else:
        try:
            a = np.asarray(colors)
        except (TypeError, ValueError):
            raise ValueError("colours must be hex strings or rows of numbers") from None
        if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
            raise ValueError("colours must be hex strings or rows of numbers 0..255")
        if a.ndim == 1 and a.shape[0] in (3, 4) and len(a):
            a = a[None]
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] not in (3, 4):
        raise ValueError(f"colours must be a (k, 3) or (k, 4) array with k >= 1, got shape {a.shape}")
    if not np.isfinite(a).all() or (a < 0).any() or (a > 255).any() or (a != np.floor(a)).any():
        raise ValueError("colour values must be integers 0..255")
    return np.ascontiguousarray(a, np.uint8)
