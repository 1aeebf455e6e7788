"""sRGB <-> OKLab, for fitting and mapping palettes in a perceptual colour space.

OKLab (Björn Ottosson, 2020, https://bottosson.github.io/posts/oklab/) is
computed from linear light: sRGB values are decoded with the sRGB transfer
curve (a 256-entry table, exact for uint8 input), mixed into LMS cone
responses, cube-rooted and mixed again, with Ottosson's published matrices.
Euclidean distance in OKLab approximates perceived colour difference far
better than distance in sRGB values.

The quantizer works on *points*: OKLab times :data:`SCALE`, so that L spans
0..255 like the sRGB values the rest of the package uses (the k-means
tolerances and float32 precision were tuned for that range), plus alpha,
unchanged (0..255), as a 4th coordinate for RGBA images.

Kernels (private, fixed types): ``_encode_range`` uint8 colours -> float32
points, ``_decode_range`` float32 points -> float64 sRGB (clipped to 0..255,
not rounded).  Both work per colour, so the parallel drivers give the same
values for any thread count.

RGBA images clustered in sRGB use *premultiplied* points instead
(:func:`premultiply`): (r a/255, g a/255, b a/255, a), as pngquant does, so a
colour difference costs in proportion to how visible it is (nothing at alpha
0).  :func:`encode_points` / :func:`decode_points` name the point space of
each mode: ``"rgb"``, ``"premultiplied"`` (4 channels only) or ``"oklab"``.
"""
import numpy as np
from .jit import njit, prange

#: OKLab coordinates are multiplied by this in the quantizer's points, so
#: that L (0..1) spans 0..255 like sRGB values and alpha.
SCALE = 255.0
#: Colours from which the parallel drivers are used (fewer: one thread).
PARALLEL_MIN_COLORS = 1 << 16
_CHUNK = 4096


def _srgb_to_linear_table():
    c = np.arange(256) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


#: Linear-light value of every uint8 sRGB level (float64).
LINEAR = _srgb_to_linear_table()


@njit(cache=True, nogil=True, inline="always")
def encode_at(colors, i, lin, scale, out, j):
    """Point ``out[j]`` of colour ``colors[i]`` (a kernel, for other modules' kernels to call)."""
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
def _encode_range(colors, lin, scale, out, lo, hi):
    for i in range(lo, hi):
        encode_at(colors, i, lin, scale, out, i)


@njit(cache=True, nogil=True, inline="always")
def _encode_gamma(x):
    if x <= 0.0031308:
        v = 12.92 * x
    else:
        v = 1.055 * x ** (1.0 / 2.4) - 0.055
    return min(max(v * 255.0, 0.0), 255.0)


@njit(cache=True, nogil=True)
def _decode_range(points, scale, out, lo, hi):
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
        out[i, 0] = _encode_gamma(4.0767416621 * l3 - 3.3077115913 * m3 + 0.2309699292 * s3)
        out[i, 1] = _encode_gamma(-1.2684380046 * l3 + 2.6097574011 * m3 - 0.3413193965 * s3)
        out[i, 2] = _encode_gamma(-0.0041960863 * l3 - 0.7034186147 * m3 + 1.7076147010 * s3)
        for t in range(3, points.shape[1]):
            out[i, t] = min(max(points[i, t] * (255.0 / scale), 0.0), 255.0)


@njit(cache=True, nogil=True, parallel=True)
def _encode_par(colors, lin, scale, out, chunk):
    n = colors.shape[0]
    for c in prange((n + chunk - 1) // chunk):
        _encode_range(colors, lin, scale, out, c * chunk, min(n, (c + 1) * chunk))


@njit(cache=True, nogil=True, parallel=True)
def _decode_par(points, scale, out, chunk):
    n = points.shape[0]
    for c in prange((n + chunk - 1) // chunk):
        _decode_range(points, scale, out, c * chunk, min(n, (c + 1) * chunk))


def _flat(a, dtype, name):
    a = np.asarray(a)
    if a.ndim < 1 or a.shape[-1] not in (3, 4):
        raise ValueError(f"{name} must have 3 or 4 channels in the last axis, got shape {a.shape}")
    return np.ascontiguousarray(a.reshape(-1, a.shape[-1]), dtype)


def to_points(colors, scale=SCALE):
    """OKLab of sRGB colours, times ``scale``; alpha kept as a 4th coordinate.

    Parameters
    ----------
    colors : (..., 3) or (..., 4) uint8 ndarray
        sRGB (and alpha) values.
    scale : float
        Multiplies L, a and b; alpha becomes ``alpha / 255 * scale``.

    Returns
    -------
    (..., 3) or (..., 4) float32 ndarray
    """
    colors = np.asarray(colors)
    if colors.dtype != np.uint8:
        raise ValueError(f"expected uint8 sRGB values, got dtype {colors.dtype}")
    flat = _flat(colors, np.uint8, "colors")
    out = np.empty(flat.shape, np.float32)
    if len(flat) >= PARALLEL_MIN_COLORS:
        _encode_par(flat, LINEAR, float(scale), out, _CHUNK)
    else:
        _encode_range(flat, LINEAR, float(scale), out, 0, len(flat))
    return out.reshape(colors.shape)


def from_points(points, scale=SCALE):
    """sRGB (and alpha) of OKLab points made by :func:`to_points` (inverse, float).

    Parameters
    ----------
    points : (..., 3) or (..., 4) float ndarray
    scale : float

    Returns
    -------
    (..., 3) or (..., 4) float64 ndarray
        sRGB values clipped to [0, 255] (out-of-gamut colours are clipped
        per channel), not rounded.
    """
    points = np.asarray(points)
    flat = _flat(points, np.float32, "points")
    out = np.empty(flat.shape, np.float64)
    if len(flat) >= PARALLEL_MIN_COLORS:
        _decode_par(flat, float(scale), out, _CHUNK)
    else:
        _decode_range(flat, float(scale), out, 0, len(flat))
    return out.reshape(points.shape)


def srgb_to_oklab(rgb):
    """OKLab (L in [0, 1]) of sRGB uint8 colours.

    Parameters
    ----------
    rgb : (..., 3) uint8 ndarray

    Returns
    -------
    (..., 3) float32 ndarray
    """
    return to_points(rgb, 1.0)


def oklab_to_srgb(lab):
    """sRGB values of OKLab colours, clipped to [0, 255] (float64, not rounded).

    Parameters
    ----------
    lab : (..., 3) float ndarray

    Returns
    -------
    (..., 3) float64 ndarray
    """
    return from_points(lab, 1.0)


# ----------------------------------------------------------------------------- premultiplied alpha

#: The point spaces of :func:`encode_points` and :func:`decode_points`.
SPACES = ("rgb", "premultiplied", "oklab")


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


def encode_points(colors, space):
    """The points that stand for uint8 colours in a point space (what the k-means clusters).

    Parameters
    ----------
    colors : (M, C) uint8 ndarray
    space : {"rgb", "premultiplied", "oklab"}
        ``"rgb"``: the values as float32; ``"premultiplied"``: :func:`premultiply`
        (RGBA only); ``"oklab"``: :func:`to_points`.

    Returns
    -------
    (M, C) float32 ndarray
    """
    if space == "rgb":
        return np.ascontiguousarray(colors, np.float32)
    if space == "premultiplied":
        return premultiply(colors)
    if space == "oklab":
        return to_points(colors)
    raise ValueError(f"space must be one of {SPACES}, got {space!r}")


def decode_points(points, space):
    """uint8 colours of points of a point space (centres back to palette entries).

    Parameters
    ----------
    points : (M, C) float ndarray
    space : {"rgb", "premultiplied", "oklab"}

    Returns
    -------
    (M, C) uint8 ndarray
        Rounded to nearest and clipped to [0, 255] (see :func:`unpremultiply`
        and :func:`from_points`).
    """
    if space == "rgb":
        return np.clip(np.rint(points), 0, 255).astype(np.uint8)
    if space == "premultiplied":
        return unpremultiply(points)
    if space == "oklab":
        return np.rint(from_points(points)).astype(np.uint8)
    raise ValueError(f"space must be one of {SPACES}, got {space!r}")
