"""Preview: original and result (and their difference) in one labelled image.

Labels and captions are drawn with Pillow's ``ImageDraw`` in its built-in
font (``ImageFont.load_default()``): no font file or plotting package is
needed.  Panels larger than ``config.PREVIEW_PIXELS`` are scaled down first,
so that a preview of a large photo costs a second or two, not a full-size
three-panel PNG.
"""

import math

import numpy as np

from . import config

#: Amplification of the difference panel.
DIFF_GAIN = 4
#: Margin around label and caption text, in pixels.
PAD = 4


def _font():
    from PIL import ImageFont

    return ImageFont.load_default()


def _text_height(font):
    box = font.getbbox("Ag0")
    return box[3] - min(box[1], 0)


def fit_size(width, height, max_pixels):
    """The panel size for an image of ``width`` x ``height``: itself, or scaled down (aspect
    kept, each side at least 1) to at most ``max_pixels`` pixels.
    """
    if max_pixels is None or width * height <= max_pixels:
        return width, height
    f = math.sqrt(max_pixels / (width * height))
    return max(1, int(width * f)), max(1, int(height * f))


def scaled(image, size):
    """``image`` box-filtered to ``size`` = (width, height) (itself when it has that size).

    Parameters
    ----------
    image : (H, W, 3|4) uint8 ndarray
        With alpha, colours are averaged weighted by it (Pillow's premultiplied ``RGBa``).
    size : (int, int)

    Returns
    -------
    (height, width, 3|4) uint8 ndarray
    """
    from PIL import Image

    if (image.shape[1], image.shape[0]) == tuple(size):
        return image
    im = Image.fromarray(np.ascontiguousarray(image), "RGBA" if image.shape[2] == 4 else "RGB")
    if im.mode == "RGBA":
        return np.asarray(im.convert("RGBa").resize(size, Image.Resampling.BOX).convert("RGBA"))
    return np.asarray(im.resize(size, Image.Resampling.BOX))


def _over_checkerboard(image, cell=8):
    if image.shape[2] == 3:
        return image
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    board = np.where(((yy // cell + xx // cell) % 2) == 0, 255, 204).astype(np.uint16)[:, :, None]
    alpha = image[:, :, 3:].astype(np.uint16)
    return ((image[:, :, :3] * alpha + board * (255 - alpha) + 127) // 255).astype(np.uint8)


def label_height():
    """Height in pixels of the label strip above the panels."""
    return _text_height(_font()) + 2 * PAD


def side_by_side(original, result, *, gap=8, diff=False, labels=None):
    """Original and result next to each other on a white background, under their labels.

    Parameters
    ----------
    original, result : (H, W, 3|4) uint8 ndarray
        Images with alpha are shown over a grey checkerboard.
    gap : int
        White columns between the panels.
    diff : bool
        Add a third panel: ``DIFF_GAIN`` times the absolute difference of
        the two panels shown, clipped to 255 (black = no difference).
    labels : list of str, optional
        One short label per panel, drawn in a white strip of
        :func:`label_height` rows above it (cut to the panel's width).

    Returns
    -------
    (L + H, 2 * W + gap, 3) uint8 ndarray, or (L + H, 3 * W + 2 * gap, 3) with ``diff``;
    L is :func:`label_height` with ``labels``, else 0
    """
    a = _over_checkerboard(original)
    b = _over_checkerboard(result)
    h, w = a.shape[:2]
    panels = [a, b]
    if diff:
        d = np.abs(a.astype(np.int16) - b) * DIFF_GAIN
        panels.append(np.minimum(d, 255).astype(np.uint8))
    top = label_height() if labels else 0
    out = np.full((top + h, len(panels) * w + (len(panels) - 1) * gap, 3), 255, np.uint8)
    for i, p in enumerate(panels):
        out[top:, i * (w + gap) : i * (w + gap) + w] = p
    if labels:
        from PIL import Image, ImageDraw

        font = _font()
        strip = Image.fromarray(out[:top])
        draw = ImageDraw.Draw(strip)
        for i, text in enumerate(labels[: len(panels)]):
            while text and draw.textlength(text, font=font) > w - 2 and len(text) > 1:
                text = text[:-1]  # a narrow panel gets what fits of its label
            draw.text((i * (w + gap) + 1, PAD), text, fill=(0, 0, 0), font=font)
        out[:top] = np.asarray(strip)
    return out


def captioned(image, fields, *, pad=6):
    """``image`` with a white caption strip below: ``fields`` in black, joined by
    two spaces and wrapped between fields to the image width (the image is
    widened, on a white background, when one field alone is wider).

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
    fields : list of str
    pad : int
        Margin around the text.

    Returns
    -------
    (H + caption height, max(W, text width), 3) uint8 ndarray
    """
    from PIL import Image, ImageDraw

    font = _font()
    h, w = image.shape[:2]
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    lines = []
    for f in fields:
        joined = lines[-1] + "  " + f if lines else f
        if lines and measure.textlength(joined, font=font) <= w - 2 * pad:
            lines[-1] = joined
        else:
            lines.append(f)
    width = max([w] + [math.ceil(measure.textlength(line, font=font)) + 2 * pad for line in lines])
    line_h = _text_height(font) + 4
    out = np.full((h + 2 * pad + line_h * len(lines), width, 3), 255, np.uint8)
    out[:h, :w] = image
    strip = Image.fromarray(out[h:])
    draw = ImageDraw.Draw(strip)
    for i, line in enumerate(lines):
        draw.text((pad, pad + i * line_h), line, fill=(0, 0, 0), font=font)
    out[h:] = np.asarray(strip)
    return out


def preview(original, result, *, n_colors, diff=False, caption=None, max_pixels=None):
    """The labelled preview of a result, scaled down when large.

    Parameters
    ----------
    original, result : (H, W, 3|4) uint8 ndarray
    n_colors : int
        Shown in the result's label.
    diff : bool
        Add the difference panel (``DIFF_GAIN`` times, of the panels as shown).
    caption : list of str, optional
        Fields of a caption strip below (see :func:`captioned`).
    max_pixels : int, optional
        Panels larger than this are box-filtered down to it (aspect kept);
        default ``config.PREVIEW_PIXELS``.  The labels then say so.

    Returns
    -------
    (rows, columns, 3) uint8 ndarray
    """
    h, w = original.shape[:2]
    size = fit_size(w, h, config.PREVIEW_PIXELS if max_pixels is None else max_pixels)
    note = "" if size == (w, h) else f" (shown at {100 * size[0] / w:.0f}%)"
    labels = [f"original{note}", f"{n_colors} colour{'s' * (n_colors != 1)}"]
    if diff:
        labels.append(f"difference x{DIFF_GAIN}")
    panels = side_by_side(scaled(original, size), scaled(result, size), diff=diff, labels=labels)
    return captioned(panels, caption) if caption else panels
