"""A built-in test picture, generated in code (no file or network needed)."""

import numpy as np


def demo_image(width=640, height=400, seed=0):
    """A synthetic landscape: sky gradient, sun with a glow, hills, texture and noise.

    Parameters
    ----------
    width, height : int
    seed : int
        Seed of the grain noise.

    Returns
    -------
    (height, width, 3) uint8 ndarray
    """
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    u, v = x / width, y / height
    sky = np.stack([0.25 + 0.55 * v, 0.45 + 0.35 * v, 0.95 - 0.25 * v], axis=-1)
    r = np.hypot(u - 0.72, (v - 0.3) * height / width)
    glow = np.exp(-((r / 0.12) ** 2))[..., None]
    img = sky * (1 - glow) + np.array([1.0, 0.85, 0.45]) * glow
    img[r < 0.05] = (1.0, 0.95, 0.7)
    for k, (base, amp, freq, col) in enumerate(
        [
            (0.62, 0.06, 5.0, (0.30, 0.55, 0.25)),
            (0.75, 0.05, 9.0, (0.20, 0.42, 0.18)),
            (0.88, 0.03, 17.0, (0.45, 0.33, 0.20)),
        ]
    ):
        ridge = base + amp * np.sin(2 * np.pi * freq * u + k) + 0.02 * np.sin(40 * u * (k + 1))
        mask = v > ridge
        shade = 1.0 - 0.6 * (v - ridge).clip(0, 1)
        texture = 0.08 * np.sin(60 * u + 25 * v * (k + 2)) * np.cos(35 * v - 10 * u)
        img[mask] = (np.array(col) * (shade + texture)[..., None])[mask]
    for i, hue in enumerate(np.linspace(0, 1, 12, endpoint=False)):  # a row of colour swatches
        x0 = int(width * (0.04 + 0.075 * i))
        rgb = 0.5 + 0.5 * np.cos(2 * np.pi * (hue + np.array([0.0, 1 / 3, 2 / 3])))
        img[int(0.05 * height) : int(0.12 * height), x0 : x0 + int(0.06 * width)] = rgb
    grain = np.random.default_rng(seed).normal(0, 0.015, img.shape)
    return np.clip(np.rint((img + grain) * 255), 0, 255).astype(np.uint8)
