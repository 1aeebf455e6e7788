"""fastquant.compress and Quantized: results, sources, determinism, edge cases, errors, resize."""

import io as _io
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fastquant import Quantized, compress, io, metrics
from fastquant.errors import InputError, OptionError
from fastquant.resize import resize as resize_array


@pytest.fixture(scope="module")
def kodim(kodak):
    return kodak[0]


@pytest.fixture(scope="module")
def q256(kodim):
    return compress(kodim, 256)


# ----------------------------------------------------------------------------- the result


def test_result_types_and_shapes(kodim, q256):
    h, w = 512, 768
    with Image.open(kodim) as im:
        assert im.size == (w, h)
    q = q256
    assert isinstance(q, Quantized)
    assert q.palette.dtype == np.uint8 and q.palette.ndim == 2 and q.palette.shape[1] == 3
    assert 1 <= len(q.palette) <= 256
    assert q.indices.dtype == np.uint8 and q.indices.shape == (h, w)
    assert q.original.dtype == np.uint8 and q.original.shape == (h, w, 3)
    assert q.image.dtype == np.uint8 and q.image.shape == (h, w, 3)
    np.testing.assert_array_equal(q.image, q.palette[q.indices])
    np.testing.assert_array_equal(q.original, io.read_image(kodim)[0])


def test_stats_consistent(kodim, q256):
    q, s = q256, q256.stats
    assert s.n_colors == len(q.palette) <= 256
    assert s.n_colors >= 200  # a photo fills (nearly) the whole palette
    assert (s.width, s.height) == (768, 512)
    expected_mse = metrics.mse(q.original, q.image)
    assert s.mse == pytest.approx(expected_mse, rel=1e-9)
    assert s.psnr == pytest.approx(10 * math.log10(255**2 / expected_mse), rel=1e-9)
    assert s.psnr == pytest.approx(metrics.psnr(q.original, q.image), rel=1e-9)
    assert s.psnr >= 38
    assert s.unique_colors == len(np.unique(q.original.reshape(-1, 3), axis=0))
    assert s.input_bytes == Path(kodim).stat().st_size
    assert isinstance(s.iterations, int) and s.iterations >= 0
    assert s.ssim is None
    assert {"read", "resize", "histogram", "palette", "remap"} <= set(s.stage_seconds)
    assert all(v >= 0 for v in s.stage_seconds.values())
    d = s.as_dict()
    assert d["n_colors"] == s.n_colors and d["mse"] == s.mse
    assert str(s.n_colors) in repr(q)


def test_all_palette_entries_used_most_used_first(q256):
    counts = np.bincount(q256.indices.ravel(), minlength=len(q256.palette))
    assert len(counts) == len(q256.palette)
    assert counts.min() > 0
    assert (np.diff(counts) <= 0).all()  # most used first
    assert len(np.unique(q256.palette, axis=0)) == len(q256.palette)  # no duplicate entries


def test_each_pixel_gets_its_nearest_entry(q256):
    colors, inverse = np.unique(q256.original.reshape(-1, 3), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    pal = q256.palette.astype(np.int64)
    d = ((colors[:, None, :].astype(np.int64) - pal[None]) ** 2).sum(-1)
    best = d.min(axis=1)
    got = d[inverse, q256.indices.ravel()]
    np.testing.assert_array_equal(got, best[inverse])


def test_ssim_option(kodim):
    q = compress(kodim, 64, ssim=True, resize=256)
    assert 0.8 < q.stats.ssim <= 1.0
    assert q.stats.ssim == pytest.approx(metrics.ssim(q.original, q.image), rel=1e-12)
    assert "metrics" in q.stats.stage_seconds


def test_save_png_smaller_and_exact(tmp_path, kodim, q256):
    out = tmp_path / "x.png"
    n = q256.save(out)
    assert n == out.stat().st_size < Path(kodim).stat().st_size
    im = Image.open(out)
    assert im.format == "PNG" and im.mode == "P"
    np.testing.assert_array_equal(np.asarray(im.convert("RGB")), q256.image)


def test_preview(q256):
    from fastquant.preview import label_height

    p = q256.preview()
    h, w = q256.indices.shape
    top = label_height()
    assert p.shape == (top + h, 2 * w + 8, 3) and p.dtype == np.uint8
    np.testing.assert_array_equal(p[top:, :w], q256.original)
    np.testing.assert_array_equal(p[top:, w + 8 :], q256.image)
    assert (p[:, w : w + 8] == 255).all()
    assert (p[:top, :w] < 128).any() and (p[:top, w + 8 :] < 128).any()  # a label over each panel


# ----------------------------------------------------------------------------- sources


def test_source_kinds_identical(kodim, q256):
    data = Path(kodim).read_bytes()
    arr = np.asarray(Image.open(kodim).convert("RGB"))
    results = [
        compress(str(kodim)),
        compress(Path(kodim)),
        compress(data),
        compress(_io.BytesIO(data)),
        compress(arr.copy()),
    ]
    with open(kodim, "rb") as f:
        results.append(compress(f))
    for r in results:
        np.testing.assert_array_equal(r.palette, q256.palette)
        np.testing.assert_array_equal(r.indices, q256.indices)
        assert r.stats.mse == q256.stats.mse
    assert [r.stats.input_bytes for r in results] == [len(data)] * 4 + [None, len(data)]


def test_input_array_not_modified_rgb(kodim):
    arr = np.asarray(Image.open(kodim).convert("RGB"))[:128, :160].copy()
    before = arr.copy()
    compress(arr, 16)
    compress(arr, 16, resize=(80, 64))
    compress(arr, 16, resize=(400, 300))
    np.testing.assert_array_equal(arr, before)


def test_input_array_not_modified_rgba():
    rng = np.random.default_rng(7)
    arr = rng.integers(0, 256, (40, 50, 4), dtype=np.uint8)
    arr[:10, :, 3] = 0  # transparent pixels with colour: compress blackens them internally
    arr[10:20, :, 3] = 255
    before = arr.copy()
    q = compress(arr, 32)
    np.testing.assert_array_equal(arr, before)
    transparent = arr[:, :, 3] == 0
    assert (q.original[transparent] == 0).all()  # ...in its own copy
    np.testing.assert_array_equal(q.original[~transparent], arr[~transparent])
    compress(arr, 32, resize=(25, 20))
    compress(arr[:, :40], 32)  # a view
    np.testing.assert_array_equal(arr, before)
    ro = before.copy()
    ro.flags.writeable = False
    compress(ro, 8)
    np.testing.assert_array_equal(ro, before)


def test_bad_sources(tmp_path):
    with pytest.raises(InputError):
        compress(tmp_path / "missing.png")
    with pytest.raises(InputError):
        compress(b"not an image")
    with pytest.raises(InputError):
        compress(None)


# ----------------------------------------------------------------------------- determinism


def test_deterministic(kodim, q256):
    again = compress(kodim, 256)
    assert again.encode(".png") == q256.encode(".png")
    np.testing.assert_array_equal(again.palette, q256.palette)


def test_kmeanspp_seed_reproducible(kodim):
    a = compress(kodim, 32, init="k-means++", seed=0, resize=256)
    b = compress(kodim, 32, init="k-means++", seed=0, resize=256)
    np.testing.assert_array_equal(a.palette, b.palette)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert a.encode(".png") == b.encode(".png")
    assert a.stats.psnr > 25


# ----------------------------------------------------------------------------- edge cases


def test_one_pixel():
    img = np.array([[[10, 20, 30]]], np.uint8)
    q = compress(img, 256)
    np.testing.assert_array_equal(q.palette, [[10, 20, 30]])
    assert q.indices.shape == (1, 1) and q.indices[0, 0] == 0
    assert q.stats.mse == 0 and q.stats.psnr == math.inf
    assert (q.stats.width, q.stats.height) == (1, 1)
    im = Image.open(_io.BytesIO(q.encode(".png")))
    assert im.size == (1, 1) and im.convert("RGB").getpixel((0, 0)) == (10, 20, 30)


@pytest.mark.parametrize("k", [1, 2, 256, 1000, 65536])
def test_single_colour(k):
    img = np.empty((20, 30, 3), np.uint8)
    img[:] = (7, 100, 200)
    q = compress(img, k)
    np.testing.assert_array_equal(q.palette, [[7, 100, 200]])
    assert q.stats.n_colors == 1 and q.stats.unique_colors == 1
    assert q.stats.mse == 0 and q.stats.psnr == math.inf
    assert (q.indices == 0).all()
    np.testing.assert_array_equal(q.image, img)


def test_five_colours_exact():
    rng = np.random.default_rng(1)
    cols = np.array([[187, 150, 81], [121, 243, 189], [6, 131, 102], [255, 228, 34], [0, 0, 0]], np.uint8)
    img = cols[rng.integers(0, 5, (40, 50))]
    q = compress(img, 256)
    assert q.stats.n_colors == 5 and len(q.palette) == 5
    assert {tuple(c) for c in q.palette} == {tuple(c) for c in cols}
    assert q.stats.mse == 0 and q.stats.psnr == math.inf
    np.testing.assert_array_equal(q.image, img)
    im = Image.open(_io.BytesIO(q.encode(".png")))
    assert im.mode == "P"
    np.testing.assert_array_equal(np.asarray(im.convert("RGB")), img)


def test_k1_is_the_mean_colour(kodim):
    q = compress(kodim, 1)
    assert q.palette.shape == (1, 3) and (q.indices == 0).all()
    mean = q.original.reshape(-1, 3).mean(axis=0)
    assert np.abs(q.palette[0].astype(float) - mean).max() <= 0.5 + 1e-9
    assert q.stats.mse == pytest.approx(metrics.mse(q.original, q.image), rel=1e-9)


def test_k2(kodim):
    q = compress(kodim, 2)
    assert q.palette.shape == (2, 3)
    assert set(np.unique(q.indices)) == {0, 1}
    assert q.encode(".png")[24] == 1  # 1 bit per pixel


def test_more_colours_better(kodim):
    psnr = [compress(kodim, k, resize=256).stats.psnr for k in (1, 2, 16, 256)]
    assert psnr == sorted(psnr) and psnr[0] < psnr[1] < psnr[2] < psnr[3]


def test_k1000_uint16(tmp_path):
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    q = compress(img, 1000)
    assert q.indices.dtype == np.uint16
    assert 256 < len(q.palette) <= 1000
    assert q.indices.max() == len(q.palette) - 1
    np.testing.assert_array_equal(q.image, q.palette[q.indices])
    assert q.stats.mse == pytest.approx(metrics.mse(q.original, q.image), rel=1e-9)
    path = tmp_path / "x.png"
    q.save(path)
    im = Image.open(path)
    assert im.format == "PNG" and im.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(im), q.image)


def test_many_colours_few_unique_is_uint8():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 4, (30, 30, 3), dtype=np.uint8) * 80  # 64 colours
    q = compress(img, 1000)
    assert q.indices.dtype == np.uint8 and len(q.palette) == 64
    np.testing.assert_array_equal(q.image, img)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("k", [0, -1, 65537, 1.5, "8", True, False, None, 8.0])
def test_bad_n_colors(k):
    img = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(OptionError):
        compress(img, k)


def test_numpy_integer_k_accepted():
    img = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    assert compress(img, np.int64(3)).stats.n_colors == 3


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((4, 4, 5), np.uint8),
        np.zeros((0, 4, 3), np.uint8),
        np.zeros((4, 0, 3), np.uint8),
        np.zeros(5, np.uint8),
        np.zeros((2, 2, 2, 3), np.uint8),
        np.full((4, 4, 3), np.nan),
        np.full((4, 4, 3), 2.0),
        np.full((4, 4, 3), -1, np.int16),
        np.zeros((4, 4, 3), object),
        np.zeros((4, 4, 3), complex),
    ],
)
def test_bad_arrays(bad):
    with pytest.raises(OptionError):
        compress(bad, 4)


@pytest.mark.parametrize("resize", [0, -1, (0, 5), (5, 0), (5.0, 5), True, "300", (1, 2, 3), 2.5])
def test_bad_resize(resize):
    with pytest.raises(OptionError):
        compress(np.zeros((4, 4, 3), np.uint8), 4, resize=resize)


def test_option_error_is_value_error():
    with pytest.raises(ValueError):
        compress(np.zeros((4, 4, 3), np.uint8), 0)


# ----------------------------------------------------------------------------- resize


def test_resize_exact(kodim):
    q = compress(kodim, 64, resize=(400, 200))
    assert (q.stats.width, q.stats.height) == (400, 200)
    assert q.indices.shape == (200, 400) and q.original.shape == (200, 400, 3)
    im = Image.open(_io.BytesIO(q.encode(".png")))
    assert im.size == (400, 200)


def test_resize_max_side(kodim):
    q = compress(kodim, 64, resize=300)
    assert (q.stats.width, q.stats.height) == (300, 200)
    assert q.indices.shape == (200, 300)


def test_resize_never_enlarges(kodim):
    q = compress(kodim, 64, resize=2000)
    assert (q.stats.width, q.stats.height) == (768, 512)
    np.testing.assert_array_equal(q.original, io.read_image(kodim)[0])
    q = compress(kodim, 64, resize=768)
    assert (q.stats.width, q.stats.height) == (768, 512)


@pytest.mark.parametrize("size", [(20, 10), (33, 17), (140, 100), (7, 50), (1, 1), (70, 50)])
def test_resize_constant_image(size):
    img = np.empty((50, 70, 3), np.uint8)
    img[:] = (13, 77, 201)
    out = resize_array(img, size)
    assert out.shape == (size[1], size[0], 3) and out.dtype == np.uint8
    assert (out == (13, 77, 201)).all()
    q = compress(img, 8, resize=size)
    np.testing.assert_array_equal(q.palette, [[13, 77, 201]])


def test_resize_area_average_blocks():
    rng = np.random.default_rng(11)
    img = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    means = img.reshape(2, 2, 2, 2, 3).astype(np.float64).mean(axis=(1, 3))
    out = resize_array(img, (2, 2))
    assert np.abs(out - means).max() <= 0.5 + 1e-9
    not_tie = np.abs(means - np.floor(means) - 0.5) > 1e-9
    np.testing.assert_array_equal(out[not_tie], np.rint(means)[not_tie])
    q = compress(img, 256, resize=(2, 2))
    np.testing.assert_array_equal(q.original, out)
    np.testing.assert_array_equal(q.image, out)  # <= 4 colours: exact


def test_resize_area_average_fractional():
    row = np.array([[[0, 0, 0], [90, 90, 90], [180, 180, 180]]], np.uint8)  # 3 -> 2 pixels
    out = resize_array(row, (2, 1))
    # [0, 1.5) -> (0 + 0.5 * 90) / 1.5 = 30; [1.5, 3) -> (0.5 * 90 + 180) / 1.5 = 150
    np.testing.assert_array_equal(out[0, :, 0], [30, 150])


def test_resize_nearest_upscale():
    img = np.array([[[1, 2, 3], [4, 5, 6]], [[7, 8, 9], [10, 11, 12]]], np.uint8)
    expected = img.repeat(2, axis=0).repeat(2, axis=1)
    np.testing.assert_array_equal(resize_array(img, (4, 4)), expected)
    q = compress(img, 256, resize=(4, 4))
    np.testing.assert_array_equal(q.original, expected)
    np.testing.assert_array_equal(q.image, expected)


def test_resize_shrink_one_axis_grow_other():
    img = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    out = resize_array(img, (3, 8))  # width 6 -> 3 (pairs averaged), height 4 -> 8 (repeated)
    expected = img.astype(float).reshape(4, 3, 2, 3).mean(axis=2).repeat(2, axis=0)
    assert np.abs(out - expected).max() <= 0.5


def _naive_axis(a, n_out, axis):
    """Slow reference: exact area weights when shrinking, centre sampling when growing."""
    a = np.moveaxis(a.astype(np.float64), axis, 0)
    n_in = a.shape[0]
    if n_out >= n_in:
        idx = np.minimum(((np.arange(n_out) + 0.5) * (n_in / n_out)).astype(int), n_in - 1)
        return np.moveaxis(a[idx], 0, axis)
    out = np.zeros((n_out,) + a.shape[1:])
    step = n_in / n_out
    for i in range(n_out):
        lo, hi = i * step, (i + 1) * step
        for j in range(int(lo), min(n_in, int(np.ceil(hi)))):
            out[i] += (min(hi, j + 1) - max(lo, j)) * a[j]
        out[i] /= step
    return np.moveaxis(out, 0, axis)


@pytest.mark.parametrize(
    "shape, size", [((1500, 7), (5, 1100)), ((1030, 3), (2, 1029)), ((700, 5), (3, 1100)), ((9, 13), (4, 5))]
)
def test_resize_matches_reference(shape, size):
    # output heights above 512 rows cross the bands resize() works in
    rng = np.random.default_rng(sum(shape))
    img = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
    ref = _naive_axis(_naive_axis(img, size[1], 0), size[0], 1)
    out = resize_array(img, size)
    assert out.shape == (size[1], size[0], 3)
    assert np.abs(out - ref).max() <= 0.5 + 1e-6


def test_resize_rgba_ignores_invisible_colours():
    a = np.zeros((2, 2, 4), np.uint8)
    a[:, 0] = (255, 0, 0, 255)  # left column opaque red, right column fully transparent black
    b = a.copy()
    b[:, 1, :3] = (0, 255, 0)  # the same picture: only the invisible colour differs
    qa = compress(a, 4, resize=(1, 1))
    qb = compress(b, 4, resize=(1, 1))
    np.testing.assert_array_equal(qa.image, qb.image)
    np.testing.assert_array_equal(qa.image[0, 0], [255, 0, 0, 128])  # what Pillow's BOX gives


# ----------------------------------------------------------------------------- alpha

ICONS = [
    "tango32_face-smile.png",
    "tango32_internet-web-browser.png",
    "tango32_weather-few-clouds.png",
    "tango-icon-address-book-new-128-rsvg-convert.png",
]


@pytest.mark.parametrize("name", ICONS)
def test_rgba_keeps_alpha(images_dir, name):
    path = images_dir / "alpha" / name
    src, _ = io.read_image(path)
    transparent = src[:, :, 3] == 0
    assert transparent.any()
    q = compress(path, 256)
    assert q.palette.ndim == 2 and q.palette.shape[1] == 4 and len(q.palette) <= 256
    assert q.image.shape == src.shape
    np.testing.assert_array_equal(q.image, q.palette[q.indices])
    assert (q.image[transparent][:, 3] == 0).all()
    assert (q.original[transparent] == 0).all()  # documented: made black
    np.testing.assert_array_equal(q.original[~transparent], src[~transparent])
    assert q.stats.mse == pytest.approx(metrics.mse(q.original, q.image), rel=1e-9)
    im = Image.open(_io.BytesIO(q.encode(".png")))
    assert im.mode == "P"
    np.testing.assert_array_equal(np.asarray(im.convert("RGBA")), q.image)
    from fastquant.preview import label_height

    p = q.preview()
    assert p.shape == (label_height() + src.shape[0], 2 * src.shape[1] + 8, 3)


def test_rgba_translucent_entries_first(images_dir):
    q = compress(images_dir / "alpha" / "tango-icon-address-book-new-128-rsvg-convert.png", 64)
    alpha = q.palette[:, 3]
    # translucent entries come first so the tRNS chunk stays short
    assert (np.diff((alpha == 255).astype(int)) >= 0).all()


@pytest.mark.parametrize("k", [2, 16])
def test_rgba_small_palette_keeps_transparent_pixels_transparent(images_dir, k):
    bad = []
    for name in ICONS:
        path = images_dir / "alpha" / name
        src, _ = io.read_image(path)
        q = compress(path, k)
        alpha = np.unique(q.image[src[:, :, 3] == 0][:, 3])
        if alpha.max() != 0:
            bad.append((name, alpha.tolist()))
    assert bad == []


def test_opaque_rgba_array_gives_rgb_palette():
    img = np.full((5, 6, 4), 255, np.uint8)
    img[:, :, 0] = np.arange(6) * 40
    q = compress(img, 8)
    assert q.palette.shape == (6, 3)
    np.testing.assert_array_equal(q.image, img[:, :, :3])
