"""Preview: original and result (and their difference) in one image, no plotting library.

The caption under the panels is drawn with a tiny built-in 5x7 bitmap font
(:data:`FONT`), so no font file or plotting package is needed.
"""

import numpy as np

#: Amplification of the difference panel.
DIFF_GAIN = 4

# 5x7 glyphs, one string of 7 rows per character ('#' = ink).
_GLYPHS = {
    "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
    "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
    "2": ".###. #...# ....# ...#. ..#.. .#... #####",
    "3": "##### ...#. ..#.. ...#. ....# #...# .###.",
    "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
    "5": "##### #.... ####. ....# ....# #...# .###.",
    "6": "..##. .#... #.... ####. #...# #...# .###.",
    "7": "##### ....# ...#. ..#.. .#... .#... .#...",
    "8": ".###. #...# #...# .###. #...# #...# .###.",
    "9": ".###. #...# #...# .#### ....# ...#. .##..",
    ".": "..... ..... ..... ..... ..... .##.. .##..",
    "=": "..... ..... ##### ..... ##### ..... .....",
    "-": "..... ..... ..... ##### ..... ..... .....",
    ":": "..... .##.. .##.. ..... .##.. .##.. .....",
    " ": "..... ..... ..... ..... ..... ..... .....",
    "?": ".###. #...# ....# ...#. ..#.. ..... ..#..",
    "A": ".###. #...# #...# ##### #...# #...# #...#",
    "B": "####. #...# #...# ####. #...# #...# ####.",
    "C": ".###. #...# #.... #.... #.... #...# .###.",
    "D": "###.. #..#. #...# #...# #...# #..#. ###..",
    "E": "##### #.... #.... ####. #.... #.... #####",
    "F": "##### #.... #.... ####. #.... #.... #....",
    "G": ".###. #...# #.... #.### #...# #...# .####",
    "H": "#...# #...# #...# ##### #...# #...# #...#",
    "I": ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
    "J": "..### ...#. ...#. ...#. ...#. #..#. .##..",
    "K": "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
    "L": "#.... #.... #.... #.... #.... #.... #####",
    "M": "#...# ##.## #.#.# #.#.# #...# #...# #...#",
    "N": "#...# #...# ##..# #.#.# #..## #...# #...#",
    "O": ".###. #...# #...# #...# #...# #...# .###.",
    "P": "####. #...# #...# ####. #.... #.... #....",
    "Q": ".###. #...# #...# #...# #.#.# #..#. .##.#",
    "R": "####. #...# #...# ####. #.#.. #..#. #...#",
    "S": ".#### #.... #.... .###. ....# ....# ####.",
    "T": "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
    "U": "#...# #...# #...# #...# #...# #...# .###.",
    "V": "#...# #...# #...# #...# #...# .#.#. ..#..",
    "W": "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
    "X": "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
    "Y": "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
    "Z": "##### ....# ...#. ..#.. .#... #.... #####",
    "b": "#.... #.... #.##. ##..# #...# #...# ####.",
    "d": "....# ....# .##.# #..## #...# #...# .####",
    "e": "..... ..... .###. #...# ##### #.... .###.",
    "f": "..##. .#..# .#... ###.. .#... .#... .#...",
    "i": "..#.. ..... .##.. ..#.. ..#.. ..#.. .###.",
    "k": "#.... #.... #..#. #.#.. ##... #.#.. #..#.",
    "n": "..... ..... #.##. ##..# #...# #...# #...#",
    "s": "..... ..... .###. #.... .###. ....# ####.",
    "t": ".#... .#... ###.. .#... .#... .#..# ..##.",
    "y": "..... ..... #...# #...# .#### ....# .###.",
}
#: char -> (7, 5) bool ndarray.  Lowercase letters without a glyph are drawn
#: in uppercase, other unknown characters as '?'.
FONT = {ch: np.array([[c == "#" for c in row] for row in rows.split()], bool) for ch, rows in _GLYPHS.items()}


def render_text(text, scale=2):
    """Text as a bool mask (True = ink): 5x7 glyphs, 1 pixel apart, scaled ``scale`` times.

    Returns
    -------
    (7 * scale, 6 * scale * len(text)) bool ndarray
    """
    glyphs = [FONT.get(ch, FONT.get(ch.upper(), FONT["?"])) for ch in text]
    cells = [np.pad(g, ((0, 0), (0, 1))) for g in glyphs] or [np.zeros((7, 0), bool)]
    mask = np.concatenate(cells, axis=1)
    return np.repeat(np.repeat(mask, scale, axis=0), scale, axis=1)


def _over_checkerboard(image, cell=8):
    if image.shape[2] == 3:
        return image
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    board = np.where(((yy // cell + xx // cell) % 2) == 0, 255, 204).astype(np.uint16)[:, :, None]
    alpha = image[:, :, 3:].astype(np.uint16)
    return ((image[:, :, :3] * alpha + board * (255 - alpha) + 127) // 255).astype(np.uint8)


def side_by_side(original, result, *, gap=8, diff=False):
    """Original and result next to each other on a white background.

    Parameters
    ----------
    original, result : (H, W, 3|4) uint8 ndarray
        Images with alpha are shown over a grey checkerboard.
    gap : int
        White columns between the panels.
    diff : bool
        Add a third panel: ``DIFF_GAIN`` times the absolute difference of
        the two panels shown, clipped to 255 (black = no difference).

    Returns
    -------
    (H, 2 * W + gap, 3) uint8 ndarray, or (H, 3 * W + 2 * gap, 3) with ``diff``
    """
    a = _over_checkerboard(original)
    b = _over_checkerboard(result)
    h, w = a.shape[:2]
    panels = [a, b]
    if diff:
        d = np.abs(a.astype(np.int16) - b) * DIFF_GAIN
        panels.append(np.minimum(d, 255).astype(np.uint8))
    out = np.full((h, len(panels) * w + (len(panels) - 1) * gap, 3), 255, np.uint8)
    for i, p in enumerate(panels):
        out[:, i * (w + gap) : i * (w + gap) + w] = p
    return out


def captioned(image, fields, *, scale=2, pad=6):
    """``image`` with a white caption strip below: ``fields`` in black, joined by
    two spaces and wrapped between fields to the image width (the image is
    widened, on a white background, when one field alone is wider).

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
    fields : list of str
    scale : int
        Size of a font pixel.
    pad : int
        Margin around the text.

    Returns
    -------
    (H + caption height, max(W, text width), 3) uint8 ndarray
    """
    h, w = image.shape[:2]
    per_line = max(1, (w - 2 * pad) // (6 * scale))
    lines = []
    for f in fields:
        if lines and len(lines[-1]) + 2 + len(f) <= per_line:
            lines[-1] += "  " + f
        else:
            lines.append(f)
    masks = [render_text(line, scale) for line in lines]
    width = max([w] + [m.shape[1] + 2 * pad for m in masks])
    line_h = 9 * scale  # glyph height plus two rows of leading
    out = np.full((h + 2 * pad + line_h * len(masks), width, 3), 255, np.uint8)
    out[:h, :w] = image
    for i, m in enumerate(masks):
        y = h + pad + i * line_h + scale
        out[y : y + m.shape[0], pad : pad + m.shape[1]][m] = 0
    return out
