"""Slow, obviously-correct references for every kernel (pure Python / plain numpy, float64)."""
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
    return (np.array(colors, np.uint8).reshape(-1, pixels.shape[1]), np.array(counts),
            np.array(inverse))


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


def kmeanspp(points, weights, k, seed):
    """Weighted k-means++ drawing from numpy's legacy Mersenne Twister (as Numba's np.random)."""
    p = np.asarray(points, np.float32).astype(np.float64)
    w = np.asarray(weights, np.float64)
    rs = np.random.RandomState(seed)
    cum = np.cumsum(w)
    centers = [p[min(np.searchsorted(cum, rs.random_sample() * cum[-1], side="right"), len(p) - 1)]]
    dist = ((p - centers[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        cum = np.cumsum(w * dist)
        if cum[-1] <= 0:
            break
        c = p[min(np.searchsorted(cum, rs.random_sample() * cum[-1], side="right"), len(p) - 1)]
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
    g2 = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * sigma ** 2))
    g2 /= g2.sum()
    h, w = x.shape

    def filt(z):
        zp = np.pad(z, r, mode="symmetric")
        out = np.zeros_like(z)
        for dy in range(2 * r + 1):
            for dx in range(2 * r + 1):
                out += g2[dy, dx] * zp[dy:dy + h, dx:dx + w]
        return out

    mx, my = filt(x), filt(y)
    vx = filt(x * x) - mx ** 2
    vy = filt(y * y) - my ** 2
    cxy = filt(x * y) - mx * my
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return float(s[r:-r, r:-r].mean())
