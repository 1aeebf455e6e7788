"""Side-by-side preview: original and result in one image, no plotting library."""
import numpy as np


def _over_checkerboard(image, cell=8):
    if image.shape[2] == 3:
        return image
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    board = np.where(((yy // cell + xx // cell) % 2) == 0, 255, 204).astype(np.uint16)[:, :, None]
    alpha = image[:, :, 3:].astype(np.uint16)
    return ((image[:, :, :3] * alpha + board * (255 - alpha) + 127) // 255).astype(np.uint8)


def side_by_side(original, result, *, gap=8):
    """Original and result next to each other on a white background.

    Parameters
    ----------
    original, result : (H, W, 3|4) uint8 ndarray
        Images with alpha are shown over a grey checkerboard.
    gap : int
        White columns between the two.

    Returns
    -------
    (H, 2 * W + gap, 3) uint8 ndarray
    """
    a = _over_checkerboard(original)
    b = _over_checkerboard(result)
    h, w = a.shape[:2]
    out = np.full((h, 2 * w + gap, 3), 255, np.uint8)
    out[:, :w] = a
    out[:, w + gap:] = b
    return out
