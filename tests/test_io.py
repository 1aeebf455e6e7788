"""fastquant.io: reading every kind of input into uint8 arrays, and writing results."""

import io as _io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

import fastquant
from fastquant import config, io, metrics, png, write
from fastquant.errors import InputError, OptionError, OutputError

from . import naive
from .conftest import names

ODD = names("odd", "*")
ALPHA = names("alpha", "*")
PNGSUITE = names("pngsuite", "[bfgpst]*.png")


def _pil_reference(path):
    """What the file should read as, computed with Pillow alone (8-bit modes only)."""
    im = ImageOps.exif_transpose(Image.open(path))
    rgba = im.mode in ("LA", "PA", "RGBA") or "transparency" in im.info
    ref = np.asarray(im.convert("RGBA" if rgba else "RGB"))
    if ref.shape[2] == 4 and (ref[:, :, 3] == 255).all():
        ref = ref[:, :, :3]
    return ref


def _check_read(path):
    a, nbytes = io.read_image(path)
    assert isinstance(a, np.ndarray)
    assert a.dtype == np.uint8
    assert a.ndim == 3 and a.shape[2] in (3, 4)
    assert a.flags.c_contiguous
    assert nbytes == path.stat().st_size
    with Image.open(path) as im:
        mode, (w, h) = im.mode, im.size
        keyed_grey = mode in ("L", "I;16") and isinstance(im.info.get("transparency"), int)
    if mode.startswith("I"):  # 16-bit grey: scaled by 255/65535, rounded, replicated
        raw = np.asarray(Image.open(path)).astype(np.int64)
        expected = naive.shown_srgb(path, ((raw * 255 + 32767) // 65535).astype(np.uint8)[:, :, None])
        assert a.shape == (h, w, 4 if keyed_grey else 3)
        for ch in range(3):
            np.testing.assert_array_equal(a[:, :, ch], expected[:, :, 0])
    elif keyed_grey:  # grey + tRNS key: Pillow's own RGBA is wrong below 8 bits (see below)
        expected = naive.shown_srgb(path, np.asarray(Image.open(path).convert("RGB")))
        np.testing.assert_array_equal(a[:, :, :3], expected)
    else:  # colour values as a gAMA-aware viewer shows them (see test_gamma.py)
        np.testing.assert_array_equal(a, naive.shown_srgb(path, _pil_reference(path)))
    return a, mode


# ----------------------------------------------------------------------------- reading files


@pytest.mark.parametrize("name", ODD)
def test_read_odd(images_dir, name):
    a, mode = _check_read(images_dir / "odd" / name)
    if mode in ("L", "I;16", "CMYK", "RGB") and name != "circle-trns-after-plte.png":
        assert a.shape[2] == 3
    if mode in ("L", "I;16"):
        assert (a[:, :, 0] == a[:, :, 1]).all() and (a[:, :, 1] == a[:, :, 2]).all()


@pytest.mark.parametrize("name", ALPHA)
def test_read_alpha(images_dir, name):
    a, _ = _check_read(images_dir / "alpha" / name)
    assert a.shape[2] == 4
    assert (a[:, :, 3] < 255).any()


@pytest.mark.parametrize("name", PNGSUITE)
def test_read_pngsuite(images_dir, name):
    _check_read(images_dir / "pngsuite" / name)


GREY_16BIT_PALETTE_CMYK = [
    ("kodim03_grayscale_gamma1.6.png", "L"),
    ("gray16bit_kodim03.png", "I;16"),
    ("rgb16bit_kodim05.png", "RGB"),  # 16-bit RGB, which Pillow reads as 8-bit
    ("lorem_ipsum_oxipng.png", "P"),
    ("flower_small.cmyk.jpg", "CMYK"),
]


@pytest.mark.parametrize("name, mode", GREY_16BIT_PALETTE_CMYK)
def test_grey_16bit_palette_cmyk_become_rgb(images_dir, name, mode):
    _check_grey_16bit_palette_cmyk(images_dir / "odd" / name, mode)


def _check_grey_16bit_palette_cmyk(path, mode):
    with Image.open(path) as im:
        assert im.mode == mode
        w, h = im.size
    a, _ = io.read_image(path)
    assert a.shape == (h, w, 3) and a.dtype == np.uint8
    if mode in ("L", "I;16"):
        assert np.array_equal(a[:, :, 0], a[:, :, 1]) and np.array_equal(a[:, :, 0], a[:, :, 2])
    if mode == "I;16":  # the whole range is used, not just the low byte
        assert a.max() > 200
    if mode == "CMYK":
        with Image.open(path) as im:
            np.testing.assert_array_equal(a, np.asarray(im.convert("RGB")))


@pytest.mark.parametrize("rel", ["odd/draw_points.png", "pngsuite/tbbn3p08.png", "pngsuite/tp1n3p08.png"])
def test_palette_with_trns_becomes_rgba(images_dir, rel):
    path = images_dir / rel
    with Image.open(path) as im:
        assert im.mode == "P" and "transparency" in im.info
        expected = np.asarray(im.convert("RGBA"))
    expected = naive.shown_srgb(path, expected)
    a, _ = io.read_image(path)
    assert a.shape == expected.shape and a.shape[2] == 4
    np.testing.assert_array_equal(a, expected)
    assert (a[:, :, 3] < 255).any()


def test_16bit_grey_with_trns_becomes_rgba(images_dir):
    path = images_dir / "pngsuite" / "tbwn0g16.png"
    with Image.open(path) as im:
        raw = np.asarray(im)
        key = im.info["transparency"]
    assert (raw == key).sum() > 0
    a, _ = io.read_image(path)
    assert a.shape == (32, 32, 4)
    np.testing.assert_array_equal(a[:, :, 3] == 0, raw == key)


def test_4bit_grey_with_trns_becomes_rgba(images_dir):
    path = images_dir / "pngsuite" / "tbbn0g04.png"
    with Image.open(path) as im:
        raw = np.asarray(im)
    a, _ = io.read_image(path)
    assert a.shape == (32, 32, 4)
    np.testing.assert_array_equal(a[:, :, 3] == 0, raw == 255)  # sample 15 of 15 = white


def test_exif_orientation_swaps_width_and_height(images_dir):
    path = images_dir / "odd" / "paris_exif_orientation_5.jpg"
    with Image.open(path) as im:
        w, h = im.size
        assert im.getexif().get(0x0112) == 5
        expected = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    assert w != h
    a, _ = io.read_image(path)
    assert a.shape == (w, h, 3)
    np.testing.assert_array_equal(a, expected)


@pytest.mark.parametrize(
    "rel",
    ["kodak/kodim01.png", "odd/paris_exif_orientation_5.jpg", "alpha/tango32_face-smile.png", "odd/traffic_light.gif"],
)
def test_path_bytes_and_file_give_equal_arrays(images_dir, rel):
    path = images_dir / rel
    data = path.read_bytes()
    from_str, n1 = io.read_image(str(path))
    from_path, n2 = io.read_image(path)
    from_bytes, n3 = io.read_image(data)
    from_bytearray, n4 = io.read_image(bytearray(data))
    with open(path, "rb") as f:
        from_file, n5 = io.read_image(f)
    from_buffer, n6 = io.read_image(_io.BytesIO(data))
    for other in (from_path, from_bytes, from_bytearray, from_file, from_buffer):
        np.testing.assert_array_equal(other, from_str)
    assert n1 == n2 == n3 == n4 == n5 == n6 == len(data)


def test_read_array_gives_none_bytes():
    a = np.zeros((2, 3, 3), np.uint8)
    out, nbytes = io.read_image(a)
    assert nbytes is None and out.shape == (2, 3, 3)


# ----------------------------------------------------------------------------- to_uint8


def test_uint16_scaling():
    a = np.array([[0, 1, 128, 129, 257, 32767, 32768, 65534, 65535]], np.uint16)
    out = io.to_uint8(a)
    assert out.shape == (1, 9, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, :, 0], [0, 0, 0, 1, 1, 127, 128, 255, 255])
    # round(v * 255 / 65535) for every value
    v = np.arange(65536, dtype=np.uint16)[None]
    np.testing.assert_array_equal(io.to_uint8(v)[0, :, 0], np.rint(v[0] * (255 / 65535)))
    np.testing.assert_array_equal(out[:, :, 0], out[:, :, 2])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_float_unit_range(dtype):
    a = np.array([[0.0, 0.25, 0.5, 1.0]], dtype)
    out = io.to_uint8(a)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, :, 1], [0, 64, 128, 255])


def test_float_rgb_rounding():
    a = np.array([[[0.0, 0.5, 1.0], [0.1, 0.2, 0.9]]])
    np.testing.assert_array_equal(io.to_uint8(a), [[[0, 128, 255], [26, 51, 230]]])


def test_bool():
    out = io.to_uint8(np.array([[True, False], [False, True]]))
    np.testing.assert_array_equal(out[:, :, 0], [[255, 0], [0, 255]])
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint32, np.uint64])
def test_int_in_range(dtype):
    hi = 127 if dtype == np.int8 else 255
    a = np.array([[[0, 7, hi]]], dtype)
    out = io.to_uint8(a)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[[0, 7, hi]]])


@pytest.mark.parametrize(
    "values, dtype", [([0, 256], np.int64), ([-1, 0], np.int32), ([0, 1000], np.uint32), ([-5, 3], np.int8)]
)
def test_int_out_of_range(values, dtype):
    with pytest.raises(OptionError):
        io.to_uint8(np.array([values], dtype))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_float_non_finite(bad):
    a = np.zeros((2, 2, 3))
    a[1, 1, 2] = bad
    with pytest.raises(OptionError):
        io.to_uint8(a)


@pytest.mark.parametrize("bad", [1.0001, 2.0, 255.0, -0.01])
def test_float_out_of_unit_range(bad):
    a = np.full((2, 2, 3), 0.5)
    a[0, 1, 0] = bad
    with pytest.raises(OptionError):
        io.to_uint8(a)


@pytest.mark.parametrize("shape", [(4, 4, 5), (0, 5, 3), (5, 0, 3), (5,), (2, 2, 3, 1), (4, 4, 0)])
def test_wrong_shapes(shape):
    with pytest.raises(OptionError):
        io.to_uint8(np.zeros(shape, np.uint8))


@pytest.mark.parametrize("dtype", [complex, object, "U1"])
def test_wrong_dtypes(dtype):
    with pytest.raises(OptionError):
        io.to_uint8(np.zeros((2, 2, 3), dtype))


def test_opaque_alpha_dropped():
    a = np.zeros((3, 4, 4), np.uint8)
    a[:, :, 0] = 9
    a[:, :, 3] = 255
    out = io.to_uint8(a)
    assert out.shape == (3, 4, 3)
    np.testing.assert_array_equal(out, a[:, :, :3])


def test_translucent_alpha_kept():
    a = np.full((3, 4, 4), 255, np.uint8)
    a[1, 1, 3] = 254
    out = io.to_uint8(a)
    assert out.shape == (3, 4, 4)
    np.testing.assert_array_equal(out, a)


def test_grey_and_grey_alpha():
    g = np.array([[10, 20]], np.uint8)
    np.testing.assert_array_equal(io.to_uint8(g), [[[10] * 3, [20] * 3]])
    np.testing.assert_array_equal(io.to_uint8(g[:, :, None]), [[[10] * 3, [20] * 3]])
    ga = np.array([[[10, 0], [20, 200]]], np.uint8)
    np.testing.assert_array_equal(io.to_uint8(ga), [[[10, 10, 10, 0], [20, 20, 20, 200]]])
    assert io.to_uint8(np.array([[[10, 255]]], np.uint8)).shape == (1, 1, 3)


def test_uint8_rgb_returned_as_is_and_input_untouched():
    a = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    before = a.copy()
    assert io.to_uint8(a) is a
    np.testing.assert_array_equal(a, before)
    view = a[:, ::2]  # not contiguous: a contiguous copy
    out = io.to_uint8(view)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, view)


# ----------------------------------------------------------------------------- read errors


def _input_error(source, needle, **kw):
    with pytest.raises(InputError) as info:
        io.read_image(source, **kw)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.png"
    msg = _input_error(path, str(path))
    assert "no such file" in msg


def test_folder(tmp_path):
    (tmp_path / "folder.png").mkdir()
    msg = _input_error(tmp_path / "folder.png", "folder.png")
    assert "folder" in msg


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    msg = _input_error(path, str(path))
    assert "empty" in msg


def test_text_file_named_png(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not a picture\n")
    _input_error(path, str(path))


@pytest.mark.parametrize("fraction", [0.5, 0.05])
def test_truncated_png(tmp_path, kodak, fraction):
    data = kodak[0].read_bytes()
    path = tmp_path / "cut.png"
    path.write_bytes(data[: int(len(data) * fraction)])
    _input_error(path, str(path))


def test_corrupt_bytes_named_in_message():
    _input_error(b"\x89PNG\r\n\x1a\nrubbish", "<bytes>")
    _input_error(b"", "<bytes>")


def test_not_a_source():
    with pytest.raises(InputError):
        io.read_image(12)


def test_text_mode_file_object(kodak):
    with open(kodak[0]) as f:
        with pytest.raises(InputError):
            io.read_image(f)


def test_max_pixels(kodak):
    with Image.open(kodak[0]) as im:
        w, h = im.size
    msg = _input_error(kodak[0], str(kodak[0]), max_pixels=100)
    assert "100" in msg and "limit" in msg and str(w * h) in msg
    a, _ = io.read_image(kodak[0], max_pixels=w * h)  # exactly at the limit is fine
    assert a.shape == (h, w, 3)
    a, _ = io.read_image(kodak[0], max_pixels=None)
    assert a.shape == (h, w, 3)


# ----------------------------------------------------------------------------- png_indexed


def _chunks(data):
    """[(tag, body)] of a PNG, checking the signature and every CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    out, pos = [], 8
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        tag, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n : pos + 12 + n])
        assert crc == zlib.crc32(tag + body)
        out.append((tag, body))
        pos += 12 + n
    return out


@pytest.mark.parametrize("k, depth", [(1, 1), (2, 1), (3, 2), (4, 2), (5, 4), (16, 4), (17, 8), (256, 8)])
def test_png_indexed_depth_and_round_trip(k, depth):
    rng = np.random.default_rng(k)
    palette = rng.integers(0, 256, (k, 3), dtype=np.uint8)
    indices = rng.integers(0, k, (13, 21), dtype=np.uint8)
    indices[0, 0] = k - 1
    data = png.png_indexed(indices, palette)
    assert data[24] == depth
    assert data[25] == 3  # colour type: palette
    tags = [t for t, _ in _chunks(data)]
    assert tags[0] == b"IHDR" and tags[-1] == b"IEND" and b"PLTE" in tags and b"tRNS" not in tags
    im = Image.open(_io.BytesIO(data))
    im.load()
    assert im.mode == "P" and im.size == (21, 13)
    np.testing.assert_array_equal(np.asarray(im), indices)
    np.testing.assert_array_equal(np.array(im.getpalette()[: 3 * k]).reshape(k, 3), palette)
    np.testing.assert_array_equal(np.asarray(im.convert("RGB")), palette[indices])


@pytest.mark.parametrize("k", [2, 4, 16, 256])
@pytest.mark.parametrize("width", [1, 3, 7, 9])
def test_png_indexed_odd_widths(k, width):
    rng = np.random.default_rng(1000 * k + width)
    palette = rng.integers(0, 256, (k, 3), dtype=np.uint8)
    indices = rng.integers(0, k, (5, width), dtype=np.uint8)
    indices[:, -1] = k - 1  # the last (padded) column carries the highest index
    data = png.png_indexed(indices, palette)
    im = Image.open(_io.BytesIO(data))
    im.load()
    assert im.size == (width, 5)
    np.testing.assert_array_equal(np.asarray(im), indices)


def test_png_indexed_rgba_writes_trns():
    palette = np.array([[255, 0, 0, 0], [0, 255, 0, 128], [0, 0, 255, 255], [9, 9, 9, 255], [1, 2, 3, 255]], np.uint8)
    rng = np.random.default_rng(3)
    indices = rng.integers(0, len(palette), (6, 11), dtype=np.uint8)
    data = png.png_indexed(indices, palette)
    chunks = dict(_chunks(data))
    assert chunks[b"tRNS"] == bytes([0, 128])  # cut after the last translucent entry
    assert chunks[b"PLTE"] == palette[:, :3].tobytes()
    im = Image.open(_io.BytesIO(data))
    assert im.mode == "P"
    np.testing.assert_array_equal(np.asarray(im.convert("RGBA")), palette[indices])


def test_png_indexed_opaque_rgba_has_no_trns():
    palette = np.array([[1, 2, 3, 255], [4, 5, 6, 255]], np.uint8)
    data = png.png_indexed(np.array([[0, 1]], np.uint8), palette)
    assert b"tRNS" not in dict(_chunks(data))


@pytest.mark.parametrize("k", [0, 257])
def test_png_indexed_refuses_bad_palette_size(k):
    with pytest.raises(OptionError):
        png.png_indexed(np.zeros((2, 2), np.uint8), np.zeros((k, 3), np.uint8))


# ----------------------------------------------------------------------------- Quantized.save


@pytest.fixture(scope="module")
def quantized(kodak):
    return fastquant.compress(kodak[0], 64)


def test_save_png(tmp_path, quantized):
    path = tmp_path / "out.png"
    n = quantized.save(path)
    assert n == path.stat().st_size
    im = Image.open(path)
    assert im.mode == "P" and im.format == "PNG"
    np.testing.assert_array_equal(np.asarray(im), quantized.indices)
    np.testing.assert_array_equal(np.asarray(im.convert("RGB")), quantized.image)
    assert path.read_bytes() == quantized.encode(".png") == quantized.encode("png")


def test_save_gif(tmp_path, quantized):
    path = tmp_path / "out.gif"
    n = quantized.save(str(path))
    assert n == path.stat().st_size
    im = Image.open(path)
    assert im.mode == "P" and im.format == "GIF"
    np.testing.assert_array_equal(np.asarray(im.convert("RGB")), quantized.image)


@pytest.mark.parametrize("ext, fmt", [(".bmp", "BMP"), (".tif", "TIFF"), (".tiff", "TIFF"), (".ppm", "PPM")])
def test_save_lossless_rgb(tmp_path, quantized, ext, fmt):
    path = tmp_path / ("out" + ext)
    assert quantized.save(path) == path.stat().st_size
    im = Image.open(path)
    assert im.format == fmt and im.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(im), quantized.image)


@pytest.mark.parametrize("ext, fmt", [(".jpg", "JPEG"), (".jpeg", "JPEG"), (".webp", "WEBP")])
def test_save_lossy_rgb(tmp_path, quantized, ext, fmt):
    path = tmp_path / ("out" + ext)
    assert quantized.save(path) == path.stat().st_size
    im = Image.open(path)
    assert im.format == fmt and im.mode == "RGB" and im.size == quantized.indices.shape[::-1]
    assert metrics.psnr(np.asarray(im), quantized.image) > 30


def test_save_unknown_or_missing_extension(tmp_path, quantized):
    for name in ("out.xyz", "out"):
        with pytest.raises(OptionError):
            quantized.save(tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_save_k1000_png_is_rgb(tmp_path):
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    q = fastquant.compress(img, 1000)
    assert len(q.palette) > 256 and q.indices.dtype == np.uint16
    path = tmp_path / "k1000.png"
    q.save(path)
    im = Image.open(path)
    assert im.format == "PNG" and im.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(im), q.image)
    with pytest.raises(OptionError):
        q.save(tmp_path / "k1000.gif")


def test_save_rgba_png_and_tif(tmp_path, images_dir):
    q = fastquant.compress(images_dir / "alpha" / "tango32_weather-few-clouds.png", 64)
    assert q.palette.shape[1] == 4
    q.save(tmp_path / "a.png")
    im = Image.open(tmp_path / "a.png")
    assert im.mode == "P" and "transparency" in im.info
    np.testing.assert_array_equal(np.asarray(im.convert("RGBA")), q.image)
    q.save(tmp_path / "a.tif")
    im = Image.open(tmp_path / "a.tif")
    assert im.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(im), q.image)


# ----------------------------------------------------------------------------- write_atomic


def _leftovers(folder):
    return sorted(p.name for p in Path(folder).glob(".fastquant-*.tmp"))


def test_write_atomic_writes(tmp_path):
    path = tmp_path / "a.bin"
    assert write.write_atomic(path, b"hello") == 5
    assert path.read_bytes() == b"hello"
    assert _leftovers(tmp_path) == []
    umask = os.umask(0)
    os.umask(umask)
    assert (path.stat().st_mode & 0o777) == 0o666 & ~umask


def test_write_atomic_replaces(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"old content, longer than the new one")
    assert write.write_atomic(str(path), b"new") == 3
    assert path.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_write_atomic_failure_unwritable_folder(tmp_path):
    if os.geteuid() == 0:  # root ignores permissions: fail on a missing folder instead
        target = tmp_path / "missing" / "a.bin"
        watched = tmp_path
    else:
        watched = tmp_path / "ro"
        watched.mkdir()
        watched.chmod(0o500)
        target = watched / "a.bin"
    try:
        with pytest.raises(OutputError) as info:
            write.write_atomic(target, b"data")
        assert str(target) in str(info.value)
        assert not target.exists()
        assert _leftovers(watched) == []
    finally:
        if watched != tmp_path:
            watched.chmod(0o700)


def test_write_atomic_failure_removes_temp_file(tmp_path):
    # The temporary file is created, then the rename over a folder fails.
    target = tmp_path / "a_folder"
    target.mkdir()
    with pytest.raises(OutputError) as info:
        write.write_atomic(target, b"data")
    assert "a_folder" in str(info.value)
    assert target.is_dir()
    assert _leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_folder"]


def test_output_error_exit_code():
    assert OutputError.exit_code == 4 and InputError.exit_code == 3 and OptionError.exit_code == 2
    assert issubclass(fastquant.OutputExistsError, OutputError)
    assert fastquant.OutputExistsError.exit_code == 5


def test_shared_images_untouched(images_dir):
    # Nothing above writes next to the shared images.
    assert not list(Path(images_dir).rglob(".fastquant-*.tmp"))
    assert not list(Path(images_dir).rglob("*-fq*.png"))


@pytest.mark.parametrize(
    "size", [0, 1, 1000, config.DEFLATE_PIECE, config.DEFLATE_PIECE + 1, 5 * config.DEFLATE_PIECE + 77]
)
def test_deflate_in_pieces_is_one_zlib_stream(size):
    rng = np.random.default_rng(size)
    # repetitive bytes (long matches across piece boundaries) followed by noise
    data = (
        np.repeat(rng.integers(0, 4, size // 50 + 1), 50)[: size // 2].astype(np.uint8).tobytes()
        + rng.integers(0, 256, size - size // 2).astype(np.uint8).tobytes()
    )
    assert len(data) == size
    one = png.deflate(data, threads=1)
    assert zlib.decompress(one) == data
    assert png.deflate(data, threads=3) == one  # the pieces do not depend on the threads
    assert len(one) <= len(zlib.compress(data, 9)) * 1.01 + 16


def test_deflate_keeps_matches_across_pieces():
    # a random block repeated: only the 32 KiB dictionary of each piece lets
    # the later pieces be coded as matches
    block = np.random.default_rng(0).integers(0, 256, 20000).astype(np.uint8).tobytes()
    data = block * 20
    assert len(data) > 5 * config.DEFLATE_PIECE
    assert len(png.deflate(data)) < 2 * len(block)
