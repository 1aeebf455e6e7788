"""Write the small derived images of tests/data/odd/ from the Kodak photos carried here.

They stand in for large files of the shared corpus (16-bit grey and RGB photos,
a progressive JPEG of several MB) with the same formats at a few tens of kB.
Run from anywhere: ``python tests/data/make_derived.py``; the output is the same
bytes every time (given the same Pillow for the JPEG).
"""

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent


def _area(rgb, f):
    """Mean of every f x f block (float64): values between uint8 levels, so 16-bit samples have real low bytes."""
    h, w = (rgb.shape[0] // f) * f, (rgb.shape[1] // f) * f
    return rgb[:h, :w].astype(np.float64).reshape(h // f, f, w // f, f, -1).mean(axis=(1, 3))


def _png16(path, samples):
    """A 16-bit PNG (grey (H, W) or RGB (H, W, 3) uint16) written by hand: Pillow cannot write 16-bit RGB."""
    color_type = 0 if samples.ndim == 2 else 2
    h, w = samples.shape[:2]
    rows = samples.astype(">u2").reshape(h, -1).view(np.uint8).reshape(h, -1)
    raw = np.hstack([np.zeros((h, 1), np.uint8), rows]).tobytes()  # filter type 0 on every row

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    path.write_bytes(data)


def main():
    kodim03 = np.asarray(Image.open(HERE / "kodak" / "kodim03.png").convert("RGB"))
    kodim05 = np.asarray(Image.open(HERE / "kodak" / "kodim05.png").convert("RGB"))

    luma = _area(kodim03, 4) @ np.array([0.299, 0.587, 0.114])  # 192 x 128
    _png16(HERE / "odd" / "gray16bit_kodim03.png", np.round(luma * 257).astype(np.uint16))

    rgb = _area(kodim05, 6)  # 128 x 85
    _png16(HERE / "odd" / "rgb16bit_kodim05.png", np.round(rgb * 257).astype(np.uint16))

    half = np.round(_area(kodim05, 2)).astype(np.uint8)  # 384 x 256
    Image.fromarray(half).save(
        HERE / "odd" / "kodim05_progressive_q85_420.jpg", quality=85, subsampling=2, progressive=True, optimize=True
    )


if __name__ == "__main__":
    main()
