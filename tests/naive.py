"""Slow, obviously-correct references for every kernel (pure Python / plain numpy, float64)."""

import math

import numpy as np


def unique_colors(pixels):
    """Distinct rows in order of first appearance, their counts, and each row's index."""
    index = {}
    colors, counts, inverse = [], [], []
    for px in map(tuple, pixels):
        if px not in index:
            index[px] = len(colors)
            colors.append(px)
            counts.append(0)
        counts[index[px]] += 1
        inverse.append(index[px])
    return (np.array(colors, np.uint8).reshape(-1, pixels.shape[1]), np.array(counts), np.array(inverse))


def nearest(points, centers):
    """Index of the nearest centre of every point (first one on ties) and the squared distance."""
    p = np.asarray(points, np.float64)
    c = np.asarray(centers, np.float64)
    labels = np.empty(len(p), np.int64)
    dist = np.empty(len(p))
    for i, x in enumerate(p):
        d = ((c - x) ** 2).sum(axis=1)
        labels[i] = int(np.argmin(d))
        dist[i] = d[labels[i]]
    return labels, dist


def weighted_means(points, weights, labels, k):
    """Weighted mean of the points of every label (NaN for an empty label)."""
    p = np.asarray(points, np.float64)
    out = np.full((k, p.shape[1]), np.nan)
    for j in range(k):
        m = labels == j
        if weights[m].sum() > 0:
            out[j] = (weights[m, None] * p[m]).sum(axis=0) / weights[m].sum()
    return out


def lloyd(points, centers, weights=None, n_iter=10):
    """Plain weighted Lloyd iterations from given centres (no empty clusters expected)."""
    p = np.asarray(points, np.float64)
    w = np.ones(len(p)) if weights is None else np.asarray(weights, np.float64)
    c = np.asarray(centers, np.float64).copy()
    for _ in range(n_iter):
        labels, _ = nearest(p, c)
        means = weighted_means(p, w, labels, len(c))
        c = np.where(np.isnan(means), c, means)
    labels, dist = nearest(p, c)
    return c, labels, float((w * dist).sum())


def nearest_other(centers):
    """Every centre's nearest other centre (lowest index on ties) and the squared distance."""
    c = np.asarray(centers, np.float64)
    d = ((c[:, None, :] - c[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(d, np.inf)
    nn = d.argmin(axis=1)
    return nn, d[np.arange(len(c)), nn]


def lloyd_overrelaxed(points, centers, weights, n_iter, overrelax):
    """Weighted Lloyd iterations where each update moves the centres
    (1 + overrelax) times the way to the weighted means, on trial: when the
    error after reassigning exceeds the means' error with the labels before
    the step, the means are used instead and overrelax halves (to 0 below
    0.1).  Returns (centres, labels, inertia, number of steps taken back)."""
    p = np.asarray(points, np.float64)
    w = np.asarray(weights, np.float64)
    c = np.asarray(centers, np.float64).copy()
    labels, dist = nearest(p, c)
    taken_back = 0
    for _ in range(n_iter):
        means = weighted_means(p, w, labels, len(c))
        means = np.where(np.isnan(means), c, means)
        bound = float((w * ((p - means[labels]) ** 2).sum(axis=1)).sum())
        if overrelax > 0:
            trial = c + (1 + overrelax) * (means - c)
            trial_labels, trial_dist = nearest(p, trial)
            if float((w * trial_dist).sum()) <= bound:
                c, labels, dist = trial, trial_labels, trial_dist
                continue
            taken_back += 1
            overrelax = overrelax / 2 if overrelax >= 0.1 else 0.0
        c = means
        labels, dist = nearest(p, c)
    return c, labels, float((w * dist).sum()), taken_back


def mediancut(points, weights, k):
    """Variance-based median cut: split the box with the largest weighted squared error
    at its weighted mean along its widest axis, until k boxes or no box can be split."""
    p = np.asarray(points, np.float64)
    w = np.asarray(weights, np.float64)

    def stats(members):
        ww = w[members]
        mean = (ww[:, None] * p[members]).sum(axis=0) / ww.sum()
        var = (ww[:, None] * (p[members] - mean) ** 2).sum(axis=0)
        return var.sum(), int(np.argmax(var)), mean

    boxes = [np.arange(len(p))]
    info = [stats(boxes[0])]
    while len(boxes) < k:
        b = int(np.argmax([s for s, _, _ in info]))
        sse, axis, mean = info[b]
        if sse <= 1e-9:
            break
        left = boxes[b][p[boxes[b], axis] <= mean[axis]]
        right = boxes[b][p[boxes[b], axis] > mean[axis]]
        boxes[b], info[b] = left, stats(left)
        boxes.append(right)
        info.append(stats(right))
    labels = np.empty(len(p), np.int64)
    for j, members in enumerate(boxes):
        labels[members] = j
    return np.array([m for _, _, m in info]), labels


def best_cut(points, weights, integral):
    """Wu's best cut of one box: over every axis and every boundary between
    occupied bins (the values themselves when ``integral``, else 256 equal
    bins of the box's range), the largest drop of the squared error
    sum|S_l|^2/W_l + |S_r|^2/W_r - |S|^2/W.  Returns (gain, axis, left mask,
    mean); axis -1 and an empty mask when no cut lowers the error."""
    p = np.asarray(points, np.float64)
    w = np.asarray(weights, np.float64)
    tot, wtot = (w[:, None] * p).sum(axis=0), w.sum()
    base = (tot * tot).sum() / wtot
    best = (0.0, -1, np.zeros(len(p), bool))
    for a in range(p.shape[1]):
        lo, hi = p[:, a].min(), p[:, a].max()
        if hi == lo:
            continue
        bins = (
            p[:, a].astype(np.int64)
            if integral
            else np.minimum(255, ((p[:, a] - lo) * (256 / (hi - lo))).astype(np.int64))
        )
        for b in np.unique(bins)[:-1]:
            left = bins <= b
            wl, sl = w[left].sum(), (w[left, None] * p[left]).sum(axis=0)
            g = (sl * sl / wl + (tot - sl) ** 2 / (wtot - wl)).sum() - base
            if g > best[0] * (1 + 1e-12):
                best = (g, a, left)
    return best + (tot / wtot,)


def wu(points, weights, k, integral):
    """Greedy splitting: the box whose best cut lowers the error most is cut
    (first box on ties; its left part keeps its place, the right part goes
    last), until k boxes or no cut helps.  Returns (box means, labels)."""
    p = np.asarray(points, np.float64)
    boxes = [np.arange(len(p))]
    cuts = [best_cut(p, weights, integral)]
    while len(boxes) < k:
        b = int(np.argmax([c[0] for c in cuts]))
        gain, axis, left, _ = cuts[b]
        if gain <= 0 or axis < 0:
            break
        members = boxes[b]
        boxes[b], right = members[left], members[~left]
        boxes.append(right)
        cuts[b] = best_cut(p[boxes[b]], weights[boxes[b]], integral)
        cuts.append(best_cut(p[right], weights[right], integral))
    labels = np.empty(len(p), np.int64)
    for j, members in enumerate(boxes):
        labels[members] = j
    return np.array([c[3] for c in cuts]), labels


def cluster_cuts(points, weights, labels, k, integral):
    """Best cut of every cluster: (gains, left means, right means), zeros where none."""
    p = np.asarray(points, np.float64)
    gains, left_means, right_means = np.zeros(k), np.zeros((k, p.shape[1])), np.zeros((k, p.shape[1]))
    for c in range(k):
        members = np.flatnonzero(labels == c)
        if len(members) < 2:
            continue
        g, a, left, _ = best_cut(p[members], weights[members], integral)
        if a < 0:
            continue
        w = weights[members]
        gains[c] = g
        left_means[c] = (w[left, None] * p[members][left]).sum(axis=0) / w[left].sum()
        right_means[c] = (w[~left, None] * p[members][~left]).sum(axis=0) / w[~left].sum()
    return gains, left_means, right_means


def kmeanspp(points, weights, k, seed):
    """Weighted k-means++ drawing one uniform per centre from ``np.random.default_rng(seed)`` (seed >= 0)."""
    p = np.asarray(points, np.float32).astype(np.float64)
    w = np.asarray(weights, np.float64)
    rng = np.random.default_rng(seed)
    cum = np.cumsum(w)
    centers = [p[min(np.searchsorted(cum, rng.random() * cum[-1], side="right"), len(p) - 1)]]
    dist = ((p - centers[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        cum = np.cumsum(w * dist)
        if cum[-1] <= 0:
            break
        c = p[min(np.searchsorted(cum, rng.random() * cum[-1], side="right"), len(p) - 1)]
        centers.append(c)
        dist = np.minimum(dist, ((p - c) ** 2).sum(axis=1))
    return np.array(centers)


def area_resize(image, width, height):
    """Box (area) average: each output pixel is the overlap-weighted mean of the input
    pixels its footprint covers, rounded; with 4 channels the colour is weighted by
    alpha (premultiplied) and alpha is averaged plainly."""
    h, w, c = image.shape
    out = np.empty((height, width, c), np.uint8)
    sy, sx = h / height, w / width
    for oy in range(height):
        for ox in range(width):
            acc = np.zeros(c)
            area = 0.0
            for iy in range(int(oy * sy), min(h, int(np.ceil((oy + 1) * sy)))):
                wy = min(iy + 1, (oy + 1) * sy) - max(iy, oy * sy)
                for ix in range(int(ox * sx), min(w, int(np.ceil((ox + 1) * sx)))):
                    wx = min(ix + 1, (ox + 1) * sx) - max(ix, ox * sx)
                    px = image[iy, ix].astype(np.float64)
                    if c == 4:
                        px[:3] *= px[3]
                    acc += wy * wx * px
                    area += wy * wx
            if c == 4:
                acc[:3] = acc[:3] / acc[3] if acc[3] > 0 else 0.0
                acc[3] /= area
            else:
                acc /= area
            out[oy, ox] = np.clip(np.rint(acc), 0, 255)
    return out


def ssim(a, b, sigma=1.5, data_range=255.0):
    """SSIM of the BT.601 luma with a 2-D Gaussian window applied by direct summation
    over the window (no separable filtering), 'symmetric' edges, border cropped."""

    def luma(x):
        x = np.asarray(x, np.float64)
        return x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114

    x, y = luma(a), luma(b)
    r = int(3.5 * sigma + 0.5)
    t = np.arange(-r, r + 1)
    g2 = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * sigma**2))
    g2 /= g2.sum()
    h, w = x.shape

    def filt(z):
        zp = np.pad(z, r, mode="symmetric")
        out = np.zeros_like(z)
        for dy in range(2 * r + 1):
            for dx in range(2 * r + 1):
                out += g2[dy, dx] * zp[dy : dy + h, dx : dx + w]
        return out

    mx, my = filt(x), filt(y)
    vx = filt(x * x) - mx**2
    vy = filt(y * y) - my**2
    cxy = filt(x * y) - mx * my
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(s[r:-r, r:-r].mean())


def floyd_steinberg(image, palette, strength=1.0, limit=32):
    """Serpentine Floyd-Steinberg on an (H, W, C) uint8 image, written the plain way.

    Integer arithmetic as specified: errors in 1/16 levels, strength in 1/64
    steps, each diffused part (7, 3, 5, 1)/16 rounded half up; the error a
    pixel receives is clamped to +-limit levels and the target to [0, 255];
    the entry is the nearest (lowest index on ties) to the target rounded to
    whole levels; fully transparent pixels neither take nor pass on error.
    """
    h, w, c = image.shape
    if c == 4:
        return _floyd_steinberg_rgba(image, palette, strength, limit)
    s = int(round(strength * 64))
    pal = np.asarray(palette, np.int64)
    err = np.zeros((h + 1, w + 2, c), np.int64)  # column x at x + 1
    idx = np.empty((h, w), np.int64)
    for y in range(h):
        fwd = 1 if y % 2 == 0 else -1
        for x in range(w) if fwd == 1 else range(w - 1, -1, -1):
            px = image[y, x].astype(np.int64)
            visible = c < 4 or px[3] > 0
            target = px * 16
            if visible:
                target = np.clip(target + np.clip(err[y, x + 1], -16 * limit, 16 * limit), 0, 255 * 16)
            key = (target + 8) // 16
            j = int(np.argmin(((pal - key) ** 2).sum(axis=1)))
            idx[y, x] = j
            if visible:
                e = (target - 16 * pal[j]) * s
                for dy, dx, wt in ((0, fwd, 7), (1, -fwd, 3), (1, 0, 5), (1, fwd, 1)):
                    err[y + dy, x + 1 + dx] += (e * wt + 512) // 1024
    return idx


def composites_point(pre):
    """float32 "composites" point of premultiplied values times 255, (r a, g a, b a, 255 a)
    (Python ints), as the dithering kernels compute it."""
    r, g, b, a255 = (float(v) for v in pre)
    h = math.sqrt(3.0) / 2.0
    return np.array([r / 255 - a255 / 510, g / 255 - a255 / 510, b / 255 - a255 / 510, h * (a255 / 255)], np.float32)


def nearest_f32(point, points):
    """Index of the entry of float32 ``points`` nearest to float32 ``point`` (lowest on ties),
    the squared distances summed channel by channel in float32, as the kernels do."""
    pts = np.asarray(points, np.float32)
    d = np.zeros(len(pts), np.float32)
    for t in range(pts.shape[1]):
        diff = np.float32(point[t]) - pts[:, t]
        d = d + diff * diff
    return int(np.argmin(d))


def _floyd_steinberg_rgba(image, palette, strength, limit):
    """Floyd-Steinberg of RGBA in premultiplied values: each pixel's (r a, g a, b a, 255 a)
    plus the error it receives (clamped to +-limit levels, i.e. limit * 255 units), alpha
    clamped to [0, 255 * 255], colour to [0, that alpha]; the nearest entry by
    composites point (:func:`composites_point`); the error (target - entry's
    premultiplied values) times strength/64 diffused as for RGB; fully transparent
    pixels neither take nor pass on error."""
    h, w, _ = image.shape
    s = int(round(strength * 64))
    lim = 255 * limit
    pre = [[int(r) * int(a), int(g) * int(a), int(b) * int(a), 255 * int(a)] for r, g, b, a in palette.tolist()]
    points = np.array([composites_point(p) for p in pre], np.float32)
    err = np.zeros((h + 1, w + 2, 4), np.int64)
    idx = np.empty((h, w), np.int64)
    for y in range(h):
        fwd = 1 if y % 2 == 0 else -1
        for x in range(w) if fwd == 1 else range(w - 1, -1, -1):
            r, g, b, a = (int(v) for v in image[y, x])
            target = [r * a, g * a, b * a, 255 * a]
            visible = a > 0
            if visible:
                e = [min(max(int(v), -lim), lim) for v in err[y, x + 1]]
                target[3] = min(max(target[3] + e[3], 0), 255 * 255)
                target[:3] = [min(max(target[t] + e[t], 0), target[3]) for t in range(3)]
            j = nearest_f32(composites_point(target), points)
            idx[y, x] = j
            if visible:
                for t in range(4):
                    e = (target[t] - pre[j][t]) * s
                    for dy, dx, wt in ((0, fwd, 7), (1, -fwd, 3), (1, 0, 5), (1, fwd, 1)):
                        err[y + dy, x + 1 + dx, t] += (e * wt + 512) // 1024
    return idx


def bayer(n):
    """Bayer matrix by its recursive definition M2n = [[4M, 4M+2], [4M+3, 4M+1]]."""
    m = np.zeros((1, 1), np.int64)
    while len(m) < n:
        m = np.block([[4 * m, 4 * m + 2], [4 * m + 3, 4 * m + 1]])
    return m


def ordered_dither(image, palette, strength=1.0):
    """Ordered dithering: R, G and B of every visible pixel shifted by the 8x8 Bayer
    threshold ((t + 0.5) / 64 - 0.5) * strength * spacing / sqrt(3), rounded, the
    target clamped to [0, 255]; spacing = median distance from each entry to its
    nearest other entry (RGB); then the nearest entry (lowest index on ties)."""
    h, w, c = image.shape
    pal = np.asarray(palette, np.int64)
    rgb = pal[:, :3].astype(np.float64)
    if len(pal) > 1:
        d2 = [min(((rgb[i] - rgb[j]) ** 2).sum() for j in range(len(pal)) if j != i) for i in range(len(pal))]
        spacing = float(np.sqrt(np.median(d2)))
    else:
        spacing = 0.0
    off = np.rint(((bayer(8) + 0.5) / 64 - 0.5) * strength * spacing / np.sqrt(3)).astype(np.int64)
    idx = np.empty((h, w), np.int64)
    for y in range(h):
        for x in range(w):
            px = image[y, x].astype(np.int64)
            if c < 4 or px[3] > 0:
                px[:3] = np.clip(px[:3] + off[y % 8, x % 8], 0, 255)
            if c == 4:  # searched by composites point, as premultiplied
                a = int(px[3])
                points = [composites_point([int(v) * int(e[3]) for v in e[:3]] + [255 * int(e[3])]) for e in pal]
                idx[y, x] = nearest_f32(composites_point([int(v) * a for v in px[:3]] + [255 * a]), points)
            else:
                idx[y, x] = int(np.argmin(((pal - px) ** 2).sum(axis=1)))
    return idx


# Björn Ottosson's OKLab matrices (https://bottosson.github.io/posts/oklab/)
_M1 = np.array(
    [
        [0.4122214708, 0.5363325363, 0.0514459929],
        [0.2119034982, 0.6806995451, 0.1073969566],
        [0.0883024619, 0.2817188376, 0.6299787005],
    ]
)
_M2 = np.array(
    [
        [0.2104542553, 0.7936177850, -0.0040720468],
        [1.9779984951, -2.4285922050, 0.4505937099],
        [0.0259040371, 0.7827717662, -0.8086757660],
    ]
)


def srgb_to_oklab(rgb):
    """OKLab of sRGB uint8 values, float64: decode the sRGB curve, M1, cube root, M2."""
    c = np.asarray(rgb, np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return np.cbrt(lin @ _M1.T) @ _M2.T


def oklab_to_srgb(lab):
    """sRGB values (float64, clipped to [0, 255], not rounded) of OKLab colours,
    through the exact inverses of M2 and M1."""
    lms = (np.asarray(lab, np.float64) @ np.linalg.inv(_M2).T) ** 3
    lin = lms @ np.linalg.inv(_M1).T
    c = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * np.abs(lin) ** (1 / 2.4) - 0.055)
    return np.clip(c * 255.0, 0.0, 255.0)


def premultiply(colors):
    """Premultiplied RGBA points, one colour at a time: (r a / 255, g a / 255, b a / 255, a)
    in Python floats (float64), rounded once to float32."""
    out = np.empty((len(colors), 4), np.float32)
    for i, (r, g, b, a) in enumerate(np.asarray(colors).tolist()):
        out[i] = [r * a / 255, g * a / 255, b * a / 255, a]
    return out


def composites(colors):
    """ "composites" points of straight RGBA, one colour at a time: premultiplied colour P
    and alpha a as (P - a/2, sqrt(3)/2 a), in Python floats, rounded once to float32."""
    out = np.empty((len(colors), 4), np.float32)
    h = math.sqrt(3.0) / 2.0
    for i, (r, g, b, a) in enumerate(np.asarray(colors).tolist()):
        out[i] = [r * a / 255 - a / 2, g * a / 255 - a / 2, b * a / 255 - a / 2, h * a]
    return out


def stretch_luma(points, factor):
    """sRGB points with the component along the (unit) BT.601 luma direction times
    ``factor``, point by point in Python floats, rounded once to float32."""
    w = [0.299, 0.587, 0.114]
    n = math.sqrt(sum(v * v for v in w))
    u = [v / n for v in w]
    out = np.empty((len(points), 3), np.float32)
    for i, x in enumerate(np.asarray(points, np.float64).tolist()):
        along = sum(x[t] * u[t] for t in range(3))
        out[i] = [x[t] + (factor - 1.0) * along * u[t] for t in range(3)]
    return out


def unpremultiply(points):
    """Straight RGBA uint8 of premultiplied points, one at a time: alpha rounded (half to
    even) and clamped to 0..255; (0, 0, 0, 0) when it rounds to 0; otherwise each colour
    channel p * 255 / alpha, rounded and clamped."""
    out = np.zeros((len(points), 4), np.uint8)
    for i, p in enumerate(np.asarray(points, np.float64).tolist()):
        a = min(255, max(0, round(p[3])))
        if a > 0:
            out[i] = [min(255, max(0, round(v * 255 / a))) for v in p[:3]] + [a]
    return out


def composite(image, background):
    """RGB composite of straight RGBA over a solid background, pixel by pixel (float64)."""
    img = np.asarray(image, np.float64).reshape(-1, image.shape[-1])
    bg = np.broadcast_to(np.asarray(background, np.float64), (3,))
    out = np.empty((len(img), 3))
    for i, px in enumerate(img):
        a = px[3] / 255 if len(px) == 4 else 1.0
        out[i] = [px[c] * a + bg[c] * (1 - a) for c in range(3)]
    return out.reshape(image.shape[:-1] + (3,))


def rd_map(inverse, shape, points, entries, per_color, lam, colors, palette):
    """Rate-distortion-aware mapping, pixel by pixel in raster order (see fastquant.rdmap): of the
    nearest entry, the left neighbour's and the one above, the least squared error plus price,
    where the price is 0 for the left neighbour's entry, lam / 2 for the entry above when the
    left pixel copied the one above it, else lam; ties keep the earlier in that order.
    Returns the indices and the straight squared error (float64)."""
    h, w = shape
    pts = np.asarray(points, np.float64)
    ent = np.asarray(entries, np.float64)
    out = np.zeros((h, w), np.int64)
    err = 0.0
    for i in range(h):
        for j in range(w):
            c = int(inverse[i * w + j])
            left = int(out[i, j - 1]) if j > 0 else None
            up = int(out[i - 1, j]) if i > 0 else None
            copying = i > 0 and j > 0 and left == out[i - 1, j - 1]

            def cost(e, left=left, up=up, copying=copying, c=c):
                price = 0.0 if e == left else lam / 2 if (e == up and copying) else lam
                return float(((pts[c] - ent[e]) ** 2).sum()) + price

            candidates = list(dict.fromkeys(e for e in (int(per_color[c]), left, up) if e is not None))
            costs = [cost(e) for e in candidates]
            pick = candidates[int(np.argmin(costs))]  # argmin: the first of equal costs
            out[i, j] = pick
            err += float(((np.asarray(colors[c], np.float64) - np.asarray(palette[pick], np.float64)) ** 2).sum())
    return out, err


def lloyd_fixed(points, fixed, centers, weights, n_iter):
    """Plain weighted Lloyd iterations where the ``fixed`` centres (first in the result) never move:
    each point goes to its nearest of all centres, and only the others move to their points' mean
    (an empty one stays).  Returns (centres, labels, inertia)."""
    f = np.asarray(fixed, np.float64)
    c = np.vstack([f, np.asarray(centers, np.float64)])
    p = np.asarray(points, np.float64)
    w = np.asarray(weights, np.float64)
    for _ in range(n_iter):
        labels, _ = nearest(p, c)
        means = weighted_means(p, w, labels, len(c))
        moved = np.where(np.isnan(means), c, means)
        c = np.vstack([f, moved[len(f) :]])
    labels, dist = nearest(p, c)
    return c, labels, float((w * dist).sum())


def removal_costs(points, weights, centers, n_fixed):
    """For each of centers[n_fixed:], the error added if it were removed: its points' weight times
    (squared distance to their second nearest centre - to it), summed."""
    p = np.asarray(points, np.float64)
    c = np.asarray(centers, np.float64)
    costs = np.zeros(len(c) - n_fixed)
    for x, w in zip(p, weights):
        d = ((c - x) ** 2).sum(axis=1)
        j = int(np.argmin(d))
        if j >= n_fixed:
            costs[j - n_fixed] += w * (np.sort(d)[1] - d[j])
    return costs


def shown_srgb(path, pixels):
    """``pixels`` (H, W, 3|4) uint8 as read from PNG ``path`` without colour management, made the
    sRGB values a gAMA-honouring viewer shows: light ``(v / 255) ** (1 / gamma)`` encoded with the
    sRGB curve, when the file has gAMA (outside 5% of 1/2.2) and neither sRGB nor iCCP; alpha stays.
    """
    from PIL import Image

    with Image.open(path) as im:
        gamma, info, fmt = im.info.get("gamma"), im.info, im.format
    if fmt != "PNG" or not gamma or "srgb" in info or info.get("icc_profile") or abs(gamma * 2.2 - 1) < 0.05:
        return pixels
    table = np.zeros(256, np.uint8)
    for v in range(256):  # one level at a time, with the sRGB curve written out
        light = (v / 255.0) ** (1.0 / gamma)
        srgb = 12.92 * light if light <= 0.0031308 else 1.055 * light ** (1 / 2.4) - 0.055
        table[v] = min(255, max(0, int(np.floor(srgb * 255.0 + 0.5))))
    out = pixels.copy()
    out[..., :3] = table[pixels[..., :3]]
    return out


def huffman_cost(freq):
    """Bits of the symbols counted in ``freq`` under an optimal (unlimited) prefix code (heapq Huffman)."""
    import heapq

    weights = [int(f) for f in freq if f > 0]
    if len(weights) < 2:
        return sum(weights)
    heapq.heapify(weights)
    total = 0
    while len(weights) > 1:
        a, b = heapq.heappop(weights), heapq.heappop(weights)
        total += a + b  # every symbol below this node gets one bit longer
        heapq.heappush(weights, a + b)
    return total


def cheapest_parse_cost(data, matches, lit_cost, len_cost, dist_cost):
    """Least total cost of a parse of ``data`` into literals and matches (shortest paths by DP).

    ``matches[i]`` lists (length, distance) pairs found at position i, nearest first; a match of
    any length m from 3 up is taken at the nearest distance whose match reaches m."""
    n = len(data)
    best = [float("inf")] * (n + 1)
    best[0] = 0.0
    for i in range(n):
        best[i + 1] = min(best[i + 1], best[i] + lit_cost[data[i]])
        longest = max((length for length, _ in matches[i]), default=0)
        for m in range(3, min(longest, n - i) + 1):
            dist = next(d for length, d in matches[i] if length >= m)
            best[i + m] = min(best[i + m], best[i] + len_cost[m] + dist_cost[dist])
    return best[n]


def contrast_map(image, radius, power):
    """Importance of every pixel, the plain way: BT.601 luma; over the (2r+1)^2 window around
    it (indices clamped to the image) the mean and the mean square, their variance
    max(mean square - mean^2, 0); weight (1 + 2 var / C2) ** -power, C2 = (0.03 * 255)^2."""
    img = np.asarray(image, np.float64)
    h, w = img.shape[:2]
    y = [[0.299 * img[i, j, 0] + 0.587 * img[i, j, 1] + 0.114 * img[i, j, 2] for j in range(w)] for i in range(h)]
    c2 = (0.03 * 255.0) ** 2
    n = (2 * radius + 1) ** 2
    out = np.empty((h, w))
    for i in range(h):
        for j in range(w):
            vals = [
                y[min(max(i + di, 0), h - 1)][min(max(j + dj, 0), w - 1)]
                for di in range(-radius, radius + 1)
                for dj in range(-radius, radius + 1)
            ]
            mean = sum(vals) / n
            var = max(sum(v * v for v in vals) / n - mean * mean, 0.0)
            out[i, j] = (1.0 + 2.0 * var / c2) ** -power
    return out


def arrangement_order(c):
    """Greedy linear arrangement (fastquant.reindex.order): pair of most adjacencies first, then the
    unplaced entry most adjacent to those placed goes where the total of c * index distance is least.
    """
    c = np.asarray(c, np.int64)
    k = len(c)

    def cost(seq):
        return sum(int(c[seq[i], seq[j]]) * (j - i) for i in range(len(seq)) for j in range(i + 1, len(seq)))

    pairs = [(int(c[i, j]), -i, -j) for i in range(k) for j in range(i + 1, k)]
    _, a, b = max(pairs)
    seq = [-a, -b]
    while len(seq) < k:
        rest = [e for e in range(k) if e not in seq]
        e = max(rest, key=lambda e: (sum(int(c[e, s]) for s in seq), -e))
        costs = [cost(seq[:p] + [e] + seq[p:]) for p in range(len(seq) + 1)]
        p = costs.index(min(costs))
        seq.insert(p, e)
    return np.array(seq)


def png_filters(indices):
    """The five PNG filter outputs (None, Sub, Up, Average, Paeth) of 8-bit rows, pixel by pixel."""
    x = np.asarray(indices, np.int64)
    h, w = x.shape
    out = np.zeros((5, h, w), np.uint8)
    for i in range(h):
        for j in range(w):
            a = x[i, j - 1] if j else 0
            b = x[i - 1, j] if i else 0
            c = x[i - 1, j - 1] if i and j else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
            for t, v in enumerate((0, a, b, (a + b) // 2, pred)):
                out[t, i, j] = (x[i, j] - v) % 256
    return out


def grid_cell_lists(points, grid, origin, sides, cells):
    """For each of ``cells`` (indices into a ``grid**4`` grid, the last axis varying fastest), the
    entries of ``points`` that can be nearest to a point in it: distance to the cell's box at most
    the smallest distance of any entry to the box's farthest corner (times 1 + 1e-6, plus 1e-3).
    """
    p = np.asarray(points, np.float64)
    out = []
    for cell in cells:
        coords = [(cell // grid ** (3 - ch)) % grid for ch in range(4)]
        lo = np.array([origin[ch] + coords[ch] * sides[ch] for ch in range(4)])
        hi = lo + np.asarray(sides, np.float64)
        gap = np.maximum(np.maximum(lo - p, p - hi), 0.0)
        reach = np.maximum(np.abs(lo - p), np.abs(p - hi))
        bound = (reach**2).sum(axis=1).min() * (1.0 + 1e-6) + 1e-3
        out.append(np.flatnonzero((gap**2).sum(axis=1) <= bound))
    return out


def composites_cells(grid, origin, sides):
    """Every cell of the grid of :func:`grid_cell_lists` that the composites point of some uint8
    RGBA colour falls in (each channel's cell clamped to the grid), by trying every colour value
    and alpha (a channel's cell depends only on its own value and the alpha)."""
    v = np.arange(256.0)
    cells = set()
    for a in range(256):
        axis = [
            set(np.clip(((np.float32(v * a / 255.0 - a / 2.0) - origin[ch]) / sides[ch]).astype(int), 0, grid - 1))
            for ch in range(3)
        ]
        g3 = min(grid - 1, max(0, int((np.float64(np.float32(math.sqrt(3.0) / 2.0 * a)) - origin[3]) / sides[3])))
        for x in axis[0]:
            for y in axis[1]:
                for z in axis[2]:
                    cells.add(((int(x) * grid + int(y)) * grid + int(z)) * grid + g3)
    return sorted(cells)
