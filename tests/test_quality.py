"""Picture quality features: dithering, OKLab, quality targets, file-size habits, preview.

Every new kernel is checked against its slow reference in tests/naive.py.
"""

import io as _io
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import fastquant
from fastquant import arguments, cli, colorspace, compress, config, importance, metrics, png, preview
from fastquant import dither as dithering
from fastquant import fit as fitting
from fastquant.errors import OptionError, SkippedLargerError

from . import naive

api = sys.modules["fastquant.api"]


@pytest.fixture(scope="module")
def crop(kodak):
    """A 96x128 piece of a Kodak photo (sky, wall and shutters: gradients and edges)."""
    with Image.open(kodak[0]) as im:
        return np.asarray(im.convert("RGB"))[200:296, 300:428].copy()


@pytest.fixture(scope="module")
def small(kodak):
    """A 20x27 piece of a Kodak photo, small enough for the pure-Python references."""
    with Image.open(kodak[3]) as im:
        return np.asarray(im.convert("RGB"))[100:120, 200:227].copy()


def _rgba(rgb, seed=0):
    """rgb with a soft alpha channel, some pixels fully transparent (and black, as compress makes them)."""
    rng = np.random.default_rng(seed)
    alpha = rng.integers(0, 256, rgb.shape[:2]).astype(np.uint8)
    alpha[rng.random(rgb.shape[:2]) < 0.15] = 0
    out = np.concatenate([rgb, alpha[:, :, None]], axis=2)
    out[alpha == 0] = 0
    return out


def _palette(image, k, seed=0):
    """k distinct colours taken from the image, plus random ones."""
    rng = np.random.default_rng(seed)
    flat = image.reshape(-1, image.shape[2])
    pal = np.unique(
        np.vstack([flat[rng.integers(0, len(flat), k)], rng.integers(0, 256, (k, image.shape[2]))]).astype(np.uint8),
        axis=0,
    )
    return pal[rng.permutation(len(pal))[:k]]


# ============================================================================ dithering: kernels


@pytest.mark.parametrize("k", [1, 2, 7, 16, 64, 300])
@pytest.mark.parametrize("strength", [1.0, 0.55])
@pytest.mark.parametrize("alpha", [False, True])
def test_fs_matches_naive(small, k, strength, alpha):
    image = _rgba(small, k) if alpha else small
    if alpha:
        image[0, 0] = 0  # the transparent entry every RGBA palette of compress has
    pal = _palette(image, k, k)
    if alpha and k > 1:
        pal[-1] = 0
    h, w, c = image.shape
    idx, sq = dithering.dither_fs(image.reshape(-1, c), w, pal, strength)
    ref = naive.floyd_steinberg(image, pal, strength)
    np.testing.assert_array_equal(idx.reshape(h, w), ref)
    assert idx.dtype == (np.uint8 if len(pal) <= 256 else np.uint16)
    assert sq == ((image.astype(np.int64) - pal[ref]) ** 2).sum()


def test_fs_clamps_error(small):
    """A saturated red the palette cannot reach: with the clamp the error stays bounded,
    so the picture next to it is the same as when mapped alone."""
    image = np.zeros((12, 40, 3), np.uint8)
    image[:, :20] = (255, 0, 0)
    image[:, 20:] = (0, 0, 255)
    pal = np.array([[128, 0, 0], [0, 0, 255], [0, 0, 0], [255, 255, 255]], np.uint8)
    idx, _ = dithering.dither_fs(image.reshape(-1, 3), 40, pal)
    np.testing.assert_array_equal(idx.reshape(12, 40), naive.floyd_steinberg(image, pal))
    # blue half: far from the red error's reach, every pixel maps to blue
    assert (idx.reshape(12, 40)[:, 23:] == 1).all()


def test_fs_strength_zero_is_nearest(crop):
    pal = _palette(crop, 24, 3)
    idx, sq = dithering.dither_fs(crop.reshape(-1, 3), crop.shape[1], pal, 0.0)
    ref, dist = naive.nearest(crop.reshape(-1, 3), pal)
    np.testing.assert_array_equal(idx, ref)
    assert sq == dist.sum()


def test_fs_keeps_the_mean_colour(crop):
    """Error diffusion keeps local averages: 8x8 block means follow the original
    far better than with plain nearest mapping."""
    pal = _palette(crop, 8, 5)
    h, w, _ = crop.shape
    fs, _ = dithering.dither_fs(crop.reshape(-1, 3), w, pal)
    plain, _ = dithering.dither_fs(crop.reshape(-1, 3), w, pal, 0.0)

    def block_err(idx):
        img = pal[idx.reshape(h, w)].astype(float)
        blocks = lambda a: a.reshape(h // 8, 8, w // 8, 8, 3).mean(axis=(1, 3))  # noqa: E731
        return np.abs(blocks(img) - blocks(crop.astype(float))).mean()

    assert block_err(fs) < 0.6 * block_err(plain)


def test_rgba_fs_diffuses_what_is_seen():
    """RGBA is dithered in premultiplied values: the large straight error of a nearly
    invisible area (alpha 2, a red the palette only has in blue) is tiny once weighted
    by its alpha, so none leaks into the opaque area next to it, whose colours are in
    the palette; diffusing straight values would pass the red on."""
    image = np.zeros((16, 40, 4), np.uint8)
    image[:, :20] = (255, 0, 0, 2)
    image[:, 20:] = (128, 128, 128, 255)
    pal = np.array([[0, 0, 255, 2], [128, 128, 128, 255], [148, 128, 128, 255], [108, 128, 128, 255]], np.uint8)
    idx, _ = dithering.dither_fs(image.reshape(-1, 4), 40, pal, 1.0)
    np.testing.assert_array_equal(idx.reshape(16, 40), naive.floyd_steinberg(image, pal))
    assert (idx.reshape(16, 40)[:, :20] == 0).all() and (idx.reshape(16, 40)[:, 20:] == 1).all()


def test_bayer_matrix():
    np.testing.assert_array_equal(dithering.bayer(8), naive.bayer(8))
    np.testing.assert_array_equal(dithering.bayer(4), naive.bayer(4))
    assert sorted(dithering.bayer(8).ravel()) == list(range(64))


@pytest.fixture(params=["serial", "parallel"])
def row_drivers(request, monkeypatch):
    """Run once with the serial row kernel and once through the prange driver."""
    if request.param == "parallel":
        monkeypatch.setattr(config, "PARALLEL_MIN_PIXELS", 0)
        monkeypatch.setattr(config, "PARALLEL_MIN_COLORS", 0)
    return request.param


@pytest.mark.parametrize("k", [1, 2, 9, 64, 300])
@pytest.mark.parametrize("strength", [1.0, 0.4])
@pytest.mark.parametrize("alpha", [False, True])
def test_ordered_matches_naive(small, k, strength, alpha, row_drivers):
    image = _rgba(small, k) if alpha else small
    pal = _palette(image, k, k + 1)
    h, w, c = image.shape
    idx, sq = dithering.dither_ordered(image.reshape(-1, c), w, pal, strength)
    ref = naive.ordered_dither(image, pal, strength)
    np.testing.assert_array_equal(idx.reshape(h, w), ref)
    assert sq == ((image.astype(np.int64) - pal[ref]) ** 2).sum()


def test_ordered_spreads_a_gradient():
    """A grey ramp between two palette greys: the share of pixels on the upper grey
    follows the ramp (that is what the Bayer offsets are for)."""
    ramp = np.repeat(np.linspace(100, 140, 64).round().astype(np.uint8)[None, :], 64, axis=0)
    image = np.repeat(ramp[:, :, None], 3, axis=2)
    pal = np.repeat(np.array([100, 140, 20, 60, 180, 220], np.uint8)[:, None], 3, axis=1)  # greys 40 apart
    idx, _ = dithering.dither_ordered(image.reshape(-1, 3), 64, pal)
    assert set(np.unique(idx)) == {0, 1}
    share = (idx.reshape(64, 64) == 1).mean(axis=0).reshape(8, 8).mean(axis=1)  # per 8x8 tile column
    expected = ((ramp[0] - 100) / 40.0).reshape(8, 8).mean(axis=1)
    assert np.abs(share - expected).max() < 0.05
    assert (np.diff(share) > 0).all()


# ============================================================================ dithering: compress and CLI


def test_auto_dither_strength(crop):
    from fastquant.api import auto_dither_strength

    assert [auto_dither_strength(k) for k in (2, 8, 16, 32, 64, 128, 256, 4096)] == pytest.approx(
        [1.0, 1.0, 0.8, 0.6, 0.4, 0.2, 0.2, 0.2]
    )
    auto = compress(crop, 32, dither="fs")
    assert auto.encode() == compress(crop, 32, dither="fs", dither_strength=0.6).encode()
    assert auto.encode() != compress(crop, 32, dither="fs", dither_strength=1.0).encode()


@pytest.mark.parametrize("dither", ["fs", "ordered"])
@pytest.mark.parametrize("alpha", [False, True])
def test_compress_dither_stats_are_exact(crop, dither, alpha):
    image = _rgba(crop) if alpha else crop
    q = compress(image, 16, dither=dither, dither_strength=1.0, ssim=True)
    assert q.stats.mse == pytest.approx(metrics.mse(q.original, q.image), rel=1e-12, abs=0)
    seen = [metrics.psnr_over(q.original, q.image, bg) for bg in (0, 255)]  # with alpha: the worse composite
    assert q.stats.psnr == pytest.approx(min(seen) if alpha else metrics.psnr(q.original, q.image), rel=1e-12)
    assert q.stats.ssim == pytest.approx(metrics.ssim(q.original, q.image), rel=1e-12)
    counts = np.bincount(q.indices.ravel(), minlength=len(q.palette))
    assert (counts > 0).all() and q.stats.n_colors == len(q.palette)
    h, w, c = image.shape
    fn = dithering.dither_fs if dither == "fs" else dithering.dither_ordered
    ref, sq = fn(q.original.reshape(-1, c), w, q.palette)  # the result is the dithering of its palette
    np.testing.assert_array_equal(q.indices.ravel(), ref)
    assert sq == q.stats.mse * h * w * c
    plain = compress(image, 16)
    # the palette is fitted without dithering; only the mapping differs
    assert set(map(tuple, q.palette)) <= set(map(tuple, plain.palette))
    assert not np.array_equal(q.image, plain.image)
    again = compress(image, 16, dither=dither, dither_strength=1.0)
    assert again.encode() == q.encode()
    if alpha:  # invisible pixels stay invisible
        assert (q.image[image[:, :, 3] == 0, 3] == 0).all()


def test_compress_dither_strength_zero_equals_plain_mapping(crop):
    q = compress(crop, 32, dither="fs", dither_strength=0.0)
    plain = compress(crop, 32)
    # every pixel on a nearest entry; only exact ties (equidistant entries) may differ
    d = lambda img: ((crop.astype(int) - img) ** 2).sum(axis=2)  # noqa: E731
    np.testing.assert_array_equal(d(q.image), d(plain.image))
    # (ties are rare: 1.1% of this crop's pixels with the default palette)
    assert (q.image != plain.image).any(axis=2).mean() < 0.02
    assert q.stats.mse == plain.stats.mse


def test_compress_dither_on_sampled_path(kodak, monkeypatch):
    monkeypatch.setattr(config, "SAMPLE_PIXELS", 30000)
    with Image.open(kodak[3]) as im:
        image = np.asarray(im.convert("RGB"))[:300, :400]
    q = compress(image, 64, dither="fs", dither_strength=1.0)
    assert q.stats.mse == pytest.approx(metrics.mse(image, q.image), rel=1e-12)
    h, w, _ = image.shape
    ref, _ = dithering.dither_fs(image.reshape(-1, 3), w, q.palette)
    np.testing.assert_array_equal(q.indices.ravel(), ref)


@pytest.mark.parametrize(
    "bad",
    [
        dict(dither="floyd"),
        dict(dither=1),
        dict(dither_strength=1.5),
        dict(dither_strength=-0.1),
        dict(dither_strength="1"),
        dict(colorspace="lab"),
        dict(quality=(80, 60)),
        dict(quality=(0, 101)),
        dict(quality="80"),
        dict(quality=(1, 2, 3)),
    ],
)
def test_bad_options(crop, bad):
    with pytest.raises(OptionError):
        compress(crop, 8, **bad)


def run(capsys, *argv):
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, [x for x in err.splitlines() if not x.startswith("fastquant: compiling")]


@pytest.fixture
def img(kodak, tmp_path):
    path = tmp_path / kodak[0].name
    shutil.copyfile(kodak[0], path)
    return path


def rgb(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@pytest.mark.parametrize("dither", ["fs", "ordered"])
def test_cli_dither(capsys, img, tmp_path, dither):
    out = tmp_path / "d.png"
    code, _, err = run(capsys, img, "-o", out, "-k", "32", "--dither", dither, "--dither-strength", "0.75")
    assert code == 0 and err == []
    q = compress(img, 32, dither=dither, dither_strength=0.75)
    assert out.read_bytes() == q.encode()


@pytest.mark.parametrize(
    "args", [["--dither", "floyd"], ["--dither-strength", "2"], ["--dither-strength", "x"], ["--colorspace", "lab"]]
)
def test_cli_bad_quality_options(capsys, img, tmp_path, args):
    code, _, err = run(capsys, img, "-o", tmp_path / "x.png", *args)
    assert code == 2 and len(err) == 1
    assert not (tmp_path / "x.png").exists()


# ============================================================================ OKLab


def _all_colors(lo, hi):
    v = np.arange(lo, hi, dtype=np.uint32)
    return np.stack([(v >> 16) & 255, (v >> 8) & 255, v & 255], axis=1).astype(np.uint8)


def test_oklab_round_trip_every_srgb_colour():
    """All 2**24 colours: sRGB -> OKLab float32 points -> sRGB, rounded, gives them back."""
    step = 1 << 22
    for lo in range(0, 1 << 24, step):
        rgb = _all_colors(lo, lo + step)
        back = colorspace.from_points(colorspace.to_points(rgb, "oklab"), "oklab")
        bad = np.flatnonzero((back != rgb).any(axis=1))
        assert bad.size == 0, rgb[bad[:5]]


def test_oklab_matches_reference(row_drivers):
    rng = np.random.default_rng(0)
    levels = np.arange(0, 256, 5, dtype=np.uint8)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    rgb = np.vstack(
        [
            grid,
            rng.integers(0, 256, (50000, 3)).astype(np.uint8),
            np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1),
        ]
    )
    lab = colorspace.srgb_to_oklab(rgb)
    assert lab.dtype == np.float32
    ref = naive.srgb_to_oklab(rgb)
    np.testing.assert_allclose(lab, ref, rtol=0, atol=2e-7)
    # the kernel uses Ottosson's published inverse matrices (10 digits), the
    # reference exact inverses: they differ by < 1e-3 of a level
    np.testing.assert_allclose(
        colorspace.oklab_to_srgb(lab), naive.oklab_to_srgb(lab.astype(np.float64)), rtol=0, atol=1e-3
    )
    # white is L = 1, a = b = 0; black is 0
    np.testing.assert_allclose(
        colorspace.srgb_to_oklab(np.array([[255, 255, 255], [0, 0, 0]], np.uint8)), [[1, 0, 0], [0, 0, 0]], atol=1e-4
    )
    # points: OKLab times SCALE, alpha kept
    rgba = np.concatenate([rgb[:100], np.arange(100, dtype=np.uint8)[:, None]], axis=1)
    pts = colorspace.to_points(rgba, "oklab")
    np.testing.assert_allclose(pts[:, :3], ref[:100] * colorspace.SCALE, rtol=1e-6, atol=1e-4)
    np.testing.assert_array_equal(pts[:, 3], np.arange(100))
    np.testing.assert_allclose(colorspace.oklab_to_srgb(pts, colorspace.SCALE), rgba, atol=1e-3)


def test_oklab_to_srgb_clips_out_of_gamut():
    lab = np.array([[1.2, 0, 0], [-0.1, 0, 0], [0.6, 0.4, 0.0], [0.5, -0.3, 0.3]], np.float32)
    out = colorspace.oklab_to_srgb(lab)
    assert out.min() >= 0 and out.max() <= 255
    np.testing.assert_allclose(out[0], 255)
    np.testing.assert_allclose(out[1], 0)
    np.testing.assert_allclose(out[2:], np.clip(naive.oklab_to_srgb(lab[2:]), 0, 255), atol=1e-3)


@pytest.mark.parametrize("alpha", [False, True])
def test_compress_oklab_maps_to_nearest_in_oklab(crop, alpha):
    image = _rgba(crop) if alpha else crop
    q = compress(image, 32, colorspace="oklab")
    c = image.shape[2]
    assert q.stats.mse == pytest.approx(metrics.mse(q.original, q.image), rel=1e-12)
    pts = naive.srgb_to_oklab(q.original.reshape(-1, c)[:, :3]) * colorspace.SCALE
    pal = naive.srgb_to_oklab(q.palette[:, :3]) * colorspace.SCALE
    if alpha:
        pts = np.hstack([pts, q.original.reshape(-1, 4)[:, 3:]])
        pal = np.hstack([pal, q.palette[:, 3:]])
    d = ((pts[:, None, :] - pal[None, :, :]) ** 2).sum(axis=2)
    chosen = d[np.arange(len(d)), q.indices.ravel()]
    assert (chosen <= d.min(axis=1) + 1e-3).all()  # float32 kernels vs float64 reference: ties only
    assert (np.bincount(q.indices.ravel(), minlength=len(q.palette)) > 0).all()


def test_oklab_lowers_perceptual_error(kodak):
    """What OKLab is for: a lower mean colour difference (Delta E_ok) than fitting sRGB values."""
    with Image.open(kodak[1]) as im:
        image = np.asarray(im.convert("RGB"))[::2, ::2].copy()
    by_rgb = compress(image, 32)
    by_lab = compress(image, 32, colorspace="oklab")
    assert metrics.delta_e_ok(image, by_lab.image) < 0.95 * metrics.delta_e_ok(image, by_rgb.image)


def test_oklab_on_sampled_path(kodak, monkeypatch):
    monkeypatch.setattr(config, "SAMPLE_PIXELS", 30000)
    with Image.open(kodak[3]) as im:
        image = np.asarray(im.convert("RGB"))[:300, :400]
    q = compress(image, 48, colorspace="oklab")
    assert q.stats.mse == pytest.approx(metrics.mse(image, q.image), rel=1e-12)
    sample = image.reshape(-1, 3)[::11]
    ref, _ = naive.nearest(colorspace.to_points(sample, "oklab"), colorspace.to_points(q.palette, "oklab"))
    np.testing.assert_array_equal(q.indices.ravel()[::11], ref)


def test_oklab_rgba_keeps_transparency(images_dir):
    q = compress(images_dir / "alpha" / "tango32_weather-few-clouds.png", 16, colorspace="oklab")
    assert q.palette.shape[1] == 4
    clear = q.original[:, :, 3] == 0
    assert (q.image[clear, 3] == 0).all()
    assert metrics.psnr(q.original, q.image) > 20


def test_delta_e_ok():
    a = np.zeros((4, 4, 3), np.uint8)
    b = np.full((4, 4, 3), 255, np.uint8)
    assert metrics.delta_e_ok(a, a) == 0
    assert metrics.delta_e_ok(a, b) == pytest.approx(100, abs=0.01)


def test_cli_colorspace(capsys, img, tmp_path):
    out = tmp_path / "o.png"
    code, _, err = run(capsys, img, "-o", out, "-k", "24", "--colorspace", "oklab")
    assert code == 0 and err == []
    assert out.read_bytes() == compress(img, 24, colorspace="oklab").encode()


# ============================================================================ luma emphasis


def test_stretch_luma_matches_naive():
    rng = np.random.default_rng(11)
    pts = rng.uniform(0, 255, (3000, 3))
    for factor in (1.0, 1.4, 0.7):
        np.testing.assert_allclose(colorspace.stretch_luma(pts, factor), naive.stretch_luma(pts, factor), rtol=1e-6)
    # its inverse, and what it does to distances: luma differences grow, chroma ones do not
    back = colorspace.stretch_luma(colorspace.stretch_luma(pts, 1.3), 1 / 1.3)
    np.testing.assert_allclose(back, pts, atol=1e-3)
    grey = colorspace.stretch_luma(np.array([[10.0, 10, 10], [20, 20, 20]]), 2.0).astype(np.float64)
    chroma = colorspace.stretch_luma(np.array([[0.0, 0, 0], [0.587, -0.299, 0]]), 2.0)  # luma 0
    u = np.array([0.299, 0.587, 0.114])
    along = (10 * u.sum() / np.linalg.norm(u)) ** 2
    assert np.sum((grey[1] - grey[0]) ** 2) == pytest.approx(300 + 3 * along, rel=1e-5)
    np.testing.assert_allclose(chroma[1], [0.587, -0.299, 0], atol=1e-6)


def test_luma_stretch_schedule(monkeypatch):
    monkeypatch.setattr(config, "LUMA_STRETCH", (1.4, 1.15))
    assert [fitting.luma_stretch(k) for k in (2, 16, 64, 256, 4096)] == pytest.approx([1.4, 1.4, 1.275, 1.15, 1.15])


def test_luma_stretch_is_how_rgb_palettes_are_fitted(crop, monkeypatch):
    """compress's RGB palette is the kmeans of the stretched histogram, stretched back."""
    from fastquant import histogram, kmeans

    colors, counts, _ = histogram.unique_colors(crop.reshape(-1, 3))
    s = fitting.luma_stretch(32)
    res = kmeans(colorspace.stretch_luma(colors, s), 32, weights=counts, tol=1e-2, swap_rounds=3, boxes_on=colors)
    want = colorspace.from_points(colorspace.stretch_luma(res.centers, 1 / s), "rgb")
    got = compress(crop, 32).palette
    assert set(map(tuple, got)) == set(map(tuple, want))
    monkeypatch.setattr(config, "LUMA_STRETCH", (1.0, 1.0))
    plain = kmeans(colors.astype(np.float32), 32, weights=counts, tol=1e-2, swap_rounds=3)
    assert set(map(tuple, compress(crop, 32).palette)) == set(map(tuple, colorspace.from_points(plain.centers, "rgb")))


@pytest.mark.parametrize("k", [16, 64, 256])
def test_luma_stretch_raises_ssim_for_little_psnr(kodak, k, monkeypatch):
    """On the test photos: SSIM higher on average with the luma stretch than with plain sRGB
    clustering (no photo lower by more than 0.0005), and PSNR lower by less than 0.2 dB."""
    gains = []
    for path in kodak:
        with Image.open(path) as im:
            a = np.asarray(im.convert("RGB"))
        monkeypatch.setattr(config, "LUMA_STRETCH", (1.0, 1.0))
        plain = compress(a, k)
        monkeypatch.undo()
        q = compress(a, k)
        gains.append(metrics.ssim(a, q.image) - metrics.ssim(a, plain.image))
        assert gains[-1] > -0.0005, path.name
        assert q.stats.psnr > plain.stats.psnr - 0.2, path.name
    assert np.mean(gains) > 0


# ============================================================================ importance map


@pytest.mark.parametrize("radius, power", [(2, 0.25), (1, 1.0), (3, 0.5)])
@pytest.mark.parametrize("threads", [1, 3])
def test_contrast_map_matches_naive(small, radius, power, threads, monkeypatch):
    monkeypatch.setattr(fastquant.threads, "THREADS", threads)
    got = importance.contrast_map(small, radius=radius, power=power)
    np.testing.assert_allclose(got, naive.contrast_map(small, radius, power), rtol=1e-12, atol=0)
    rgba = np.dstack([small, np.full(small.shape[:2], 7, np.uint8)])  # alpha is ignored
    np.testing.assert_array_equal(importance.contrast_map(rgba, radius=radius, power=power), got)


def test_contrast_map_weighs_flat_above_busy():
    rng = np.random.default_rng(5)
    img = np.full((40, 80, 3), 120, np.uint8)
    img[:, 40:] = rng.integers(0, 256, (40, 40, 3))  # noise on the right
    m = importance.contrast_map(img)
    assert m.shape == (40, 80) and m.dtype == np.float64
    np.testing.assert_array_equal(m[:, :37], 1.0)  # flat windows weigh 1
    assert (m[:, 43:] < 0.5).all() and (m > 0).all()
    np.testing.assert_array_equal(importance.contrast_map(img, power=0.0), 1.0)


def test_compress_contrast_weights_is_the_map(crop):
    q = compress(crop, 48, weights="contrast")
    assert q.encode() == compress(crop, 48, weights=importance.contrast_map(crop)).encode()
    assert q.encode() != compress(crop, 48).encode()
    # resized first: the map is made from the pixels the palette is fitted on
    small = compress(crop, 16, weights="contrast", resize=64)
    want = compress(small.original, 16, weights=importance.contrast_map(small.original))
    assert small.encode() == want.encode()


def test_compress_contrast_weights_refused(crop, monkeypatch):
    with pytest.raises(OptionError, match="'contrast'"):
        compress(crop, 16, weights="edges")
    monkeypatch.setattr(config, "SAMPLE_PIXELS", 1000)
    with pytest.raises(OptionError, match="whole image"):
        compress(crop, 16, weights="contrast")


@pytest.mark.parametrize("k", [64, 256])
def test_contrast_weights_raise_ssim_for_little_psnr(kodak, k):
    """On every test photo at k=64 and 256: SSIM higher with the contrast map, PSNR lower by
    less than 0.2 dB."""
    for path in kodak:
        with Image.open(path) as im:
            a = np.asarray(im.convert("RGB"))
        plain, weighted = compress(a, k), compress(a, k, weights="contrast")
        assert metrics.ssim(a, weighted.image) > metrics.ssim(a, plain.image), path.name
        assert weighted.stats.psnr > plain.stats.psnr - 0.2, path.name


# ============================================================================ quality target


def test_quality_scale():
    qs = range(0, 101)
    mses = [metrics.mse_for_quality(q) for q in qs]
    assert all(a > b for a, b in zip(mses, mses[1:]))  # strictly monotone
    for q in range(1, 100):
        assert metrics.quality_from_mse(mses[q]) == q
        assert metrics.quality_from_mse(mses[q] * 1.01) == q - 1
    assert metrics.quality_from_mse(0.0) == 100
    assert metrics.quality_from_mse(1e-9) == 99
    assert metrics.quality_from_mse(1e9) == 0
    # the documented PSNR of a few points of the scale
    for q, db in [(95, 43.5), (90, 40.4), (80, 37.3), (60, 33.9), (40, 31.7)]:
        assert metrics.psnr_from_mse(metrics.mse_for_quality(q)) == pytest.approx(db, abs=0.05)


@pytest.fixture(scope="module")
def photo(kodak):
    with Image.open(kodak[3]) as im:
        return np.asarray(im.convert("RGB"))[::2, ::2].copy()


def test_quality_picks_the_fewest_colours(photo):
    q = compress(photo, 256, quality=(0, 80))
    k = q.stats.n_colors
    assert q.stats.quality == metrics.quality_from_mse(q.stats.mse) >= 80
    assert 2 < k < 256
    # one colour fewer does not reach 80: k is the fewest (bisection with a
    # quality that grows with k)
    assert metrics.quality_from_mse(compress(photo, k - 1).stats.mse) < 80
    assert q.encode() == compress(photo, k).encode()  # the same as asking for k colours


def test_quality_between_min_and_max_uses_n_colors(photo):
    q = compress(photo, 64, quality=(10, 100))
    assert q.stats.n_colors == 64
    assert 10 <= q.stats.quality < 100
    assert q.encode() == compress(photo, 64).encode()


def test_quality_below_min_raises(photo):
    with pytest.raises(fastquant.QualityError) as e:
        compress(photo, 8, quality=(90, 95))
    assert e.value.exit_code == 99
    assert "below the minimum 90" in str(e.value)
    assert isinstance(e.value, fastquant.FastquantError)


def test_quality_single_number_and_exact_images():
    image = np.zeros((8, 8, 3), np.uint8)
    image[:4] = (10, 200, 30)
    q = compress(image, 256, quality=100)
    assert q.stats.quality == 100 and q.stats.n_colors == 2


def test_quality_with_dither_is_judged_before_dithering(photo):
    """As pngquant: the palette size is chosen on the plain mapping; stats measure the dithered image."""
    plain = compress(photo, 256, quality=(0, 80))
    q = compress(photo, 256, quality=(0, 80), dither="fs")
    assert q.stats.quality == plain.stats.quality >= 80
    assert q.stats.n_colors <= plain.stats.n_colors  # (dithering may leave an entry unused)
    assert q.stats.mse == pytest.approx(metrics.mse(q.original, q.image), rel=1e-12)
    assert q.stats.mse > plain.stats.mse
    assert q.encode() == compress(photo, plain.stats.n_colors, dither="fs").encode()


@pytest.mark.parametrize(
    "text,expected", [("60-80", (60, 80)), ("80", (0, 80)), ("-80", (0, 80)), ("65-", (65, 100)), ("0-100", (0, 100))]
)
def test_cli_quality_parsing(text, expected):
    assert arguments._quality(text) == expected


@pytest.mark.parametrize("text", ["80-60", "abc", "101", "-5-10", "60-80-90", "", "-"])
def test_cli_quality_rejected(capsys, img, tmp_path, text):
    code, _, err = run(capsys, img, "-o", tmp_path / "x.png", f"--quality={text}")
    assert code == 2 and len(err) == 1 and not (tmp_path / "x.png").exists()


def test_cli_quality(capsys, img, tmp_path):
    out = tmp_path / "q.png"
    code, stdout, err = run(capsys, img, "-o", out, "--quality", "60-80", "--json")
    assert code == 0 and err == []
    import json

    rec = json.loads(stdout)
    assert rec["quality"] >= 80 and rec["n_colors"] < 256
    assert out.read_bytes() == compress(img, 256, quality=(60, 80)).encode()


def test_cli_quality_below_min_writes_nothing(capsys, img, tmp_path):
    out = tmp_path / "q.png"
    code, stdout, err = run(capsys, img, "-o", out, "-k", "4", "--quality", "70-90")
    assert code == 99
    assert len(err) == 1 and "below the minimum 70" in err[0]
    assert not out.exists() and stdout == ""


# ============================================================================ skip-if-larger, metadata, EXIF


def test_cli_skip_if_larger(capsys, noisy_jpeg, tmp_path):
    out = tmp_path / "n.png"
    code, stdout, err = run(capsys, noisy_jpeg, "-o", out, "--skip-if-larger")
    assert code == 98 == SkippedLargerError.exit_code
    assert len(err) == 1 and "not smaller" in err[0]
    assert not out.exists() and stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noise.jpg"]  # no temporary file either
    code, _, _ = run(capsys, noisy_jpeg, "-o", out)  # without the option it is written
    assert code == 0 and out.stat().st_size > noisy_jpeg.stat().st_size


def test_cli_skip_if_larger_writes_smaller(capsys, img, tmp_path):
    out = tmp_path / "k.png"
    code, _, err = run(capsys, img, "-o", out, "--skip-if-larger")
    assert code == 0 and err == []
    assert 0 < out.stat().st_size < img.stat().st_size


def _profile():
    """A real ICC profile (sRGB, made by LittleCMS through Pillow)."""
    cms = pytest.importorskip("PIL.ImageCms")
    return cms.ImageCmsProfile(cms.createProfile("sRGB")).tobytes()


@pytest.mark.parametrize("k", [2, 16, 256])
def test_png_indexed_icc_round_trip(k):
    prof = _profile()
    rng = np.random.default_rng(k)
    palette = rng.integers(0, 256, (k, 3)).astype(np.uint8)
    indices = rng.integers(0, k, (9, 13)).astype(np.uint8)
    data = png.png_indexed(indices, palette, icc_profile=prof)
    with Image.open(_io.BytesIO(data)) as im:
        assert im.info["icc_profile"] == prof
        np.testing.assert_array_equal(np.asarray(im), indices)
    with Image.open(_io.BytesIO(png.png_indexed(indices, palette))) as im:
        assert "icc_profile" not in im.info


def test_compress_keep_metadata(images_dir, tmp_path):
    src = images_dir / "skimage" / "chelsea.png"
    with Image.open(src) as im:
        prof = im.info["icc_profile"]
    q = compress(src, 64, keep_metadata=True)
    assert q.icc_profile == prof
    for name in ("out.png", "out.jpg"):
        q.save(tmp_path / name)
        with Image.open(tmp_path / name) as im:
            assert im.info.get("icc_profile") == prof
    assert compress(src, 64).icc_profile is None
    with Image.open(_io.BytesIO(compress(src, 64).encode())) as im:
        assert "icc_profile" not in im.info
    big = compress(src, 300, keep_metadata=True)  # RGB PNG through Pillow
    with Image.open(_io.BytesIO(big.encode())) as im:
        assert im.info.get("icc_profile") == prof


def test_cli_keep_metadata(capsys, images_dir, tmp_path):
    src = tmp_path / "cat.png"
    shutil.copyfile(images_dir / "skimage" / "chelsea.png", src)
    with Image.open(src) as im:
        prof = im.info["icc_profile"]
    code, _, err = run(capsys, src, "-o", tmp_path / "kept.png", "--keep-metadata")
    assert code == 0 and err == []
    with Image.open(tmp_path / "kept.png") as im:
        assert im.info.get("icc_profile") == prof
    code, _, _ = run(capsys, src, "-o", tmp_path / "plain.png")
    with Image.open(tmp_path / "plain.png") as im:
        assert "icc_profile" not in im.info
    # an input without a profile: nothing to keep, nothing written for it
    kodim = images_dir / "kodak" / "kodim01.png"
    code, _, _ = run(capsys, kodim, "-o", tmp_path / "k.png", "--keep-metadata")
    with Image.open(tmp_path / "k.png") as im:
        assert code == 0 and "icc_profile" not in im.info


def test_compress_applies_exif_orientation(images_dir):
    from PIL import ImageOps

    path = images_dir / "odd" / "paris_exif_orientation_5.jpg"
    with Image.open(path) as im:
        upright = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    q = compress(path, 64)
    assert q.original.shape == upright.shape and upright.shape[0] != upright.shape[1]
    np.testing.assert_array_equal(q.original, upright)


# ============================================================================ preview


def _caption(width, fields):
    """The caption strip ``fields`` give under a panel row ``width`` pixels wide."""
    return preview.captioned(np.zeros((0, width, 3), np.uint8), fields)


def _label(text, width):
    """A label as Pillow draws it in its built-in font, on a white strip ``width`` pixels wide."""
    from PIL import ImageDraw, ImageFont

    strip = Image.new("RGB", (width, preview.label_height()), (255, 255, 255))
    ImageDraw.Draw(strip).text((1, preview.PAD), text, fill=(0, 0, 0), font=ImageFont.load_default())
    return np.asarray(strip)


def test_preview_diff(crop):
    q = compress(crop, 16)
    p = q.preview(diff=True)
    h, w, _ = crop.shape
    top = preview.label_height()
    assert p.shape[1] == 3 * w + 16 and p.shape[0] > top + h
    np.testing.assert_array_equal(p[top : top + h, :w], crop)
    np.testing.assert_array_equal(p[top : top + h, w + 8 : 2 * w + 8], q.image)
    expected = np.minimum(np.abs(crop.astype(int) - q.image) * 4, 255)
    np.testing.assert_array_equal(p[top : top + h, 2 * w + 16 :], expected)
    assert (p[: top + h, w : w + 8] == 255).all()
    # labels drawn with Pillow's built-in font, one over each panel
    for i, text in enumerate(["original", "16 colours", "difference x4"]):
        np.testing.assert_array_equal(p[:top, i * (w + 8) : i * (w + 8) + w], _label(text, w))
    size = len(q.encode(".png"))
    ssim = metrics.ssim(crop, q.image)
    fields = ["k=16", f"PSNR={q.stats.psnr:.2f}dB", f"SSIM={ssim:.4f}", f"{size} bytes"]
    np.testing.assert_array_equal(p[top + h :], _caption(3 * w + 16, fields))
    plain = q.preview()
    assert plain.shape == (top + h, 2 * w + 8, 3)
    np.testing.assert_array_equal(plain[top:, w + 8 :], q.image)


def test_preview_caption_wraps_on_a_small_image(images_dir):
    q = compress(images_dir / "alpha" / "tango32_face-smile.png", 8)
    p = q.preview(diff=True, nbytes=1234)
    top = preview.label_height()
    strip = p[top + 32 :]
    one_line = _caption(10_000, ["k=8"])
    assert strip.shape[0] > one_line.shape[0]  # wrapped onto several lines
    assert (strip < 128).any()


def test_preview_of_a_large_image_is_scaled_down(monkeypatch, kodak):
    """Panels over config.PREVIEW_PIXELS are box-filtered down, and the label says so."""
    monkeypatch.setattr(config, "PREVIEW_PIXELS", 400 * 260)
    q = compress(kodak[0], 16)
    h, w = q.indices.shape
    pw, ph = preview.fit_size(w, h, 400 * 260)
    assert pw * ph <= 400 * 260 and pw < w and abs(pw / ph - w / h) < 0.01
    p = q.preview()
    top = preview.label_height()
    assert p.shape == (top + ph, 2 * pw + 8, 3)
    with Image.fromarray(q.original) as im:
        box = np.asarray(im.resize((pw, ph), Image.Resampling.BOX))
    np.testing.assert_array_equal(p[top:, :pw], box)
    np.testing.assert_array_equal(p[:top, :pw], _label(f"original (shown at {100 * pw / w:.0f}%)", pw))


def test_preview_scales_alpha_weighted():
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[:, :20] = (255, 0, 0, 255)  # opaque red beside transparent "green" that must not bleed in
    rgba[:, 20:] = (0, 255, 0, 0)
    small = preview.scaled(rgba, (2, 2))
    assert small[0, 0].tolist() == [255, 0, 0, 255] and small[0, 1, 3] == 0


def test_cli_preview_diff(capsys, img, tmp_path):
    pv = tmp_path / "pv.png"
    out = tmp_path / "o.png"
    code, stdout, err = run(capsys, img, "-o", out, "-k", "32", "--preview", pv, "--preview-diff")
    assert code == 0 and err == []
    assert f"; preview {pv}" in stdout  # the line says where the preview went
    with Image.open(pv) as im:
        arr = np.asarray(im.convert("RGB"))
    top = preview.label_height()
    assert arr.shape[1] == 3 * 768 + 16 and arr.shape[0] > top + 512
    np.testing.assert_array_equal(arr[top : top + 512, 776:1544], rgb(out))
    assert (arr[top + 512 :] < 128).any()  # the caption
    code, _, err = run(capsys, img, "-o", tmp_path / "p.png", "--preview-diff")
    assert code == 2 and len(err) == 1 and not (tmp_path / "p.png").exists()


def test_cli_preview_time_is_its_own(capsys, img, tmp_path):
    code, stdout, _ = run(capsys, img, "-o", tmp_path / "o.png", "--preview", tmp_path / "pv.png", "--json")
    rec = json.loads(stdout.splitlines()[0])
    assert code == 0 and rec["preview_seconds"] > 0
    assert "preview" not in rec["stage_seconds"]


# ============================================================================ determinism, import

_THREAD_SCRIPT = """
import hashlib, sys
import fastquant
from fastquant import config
config.PARALLEL_MIN_POINTS = 0
config.PARALLEL_MIN_CENTERS = 0
config.PARALLEL_MIN_PIXELS = 0
config.PARALLEL_MIN_COLORS = 0
h = hashlib.sha256()
for kw in (dict(dither="ordered"), dict(colorspace="oklab"), dict(dither="fs", colorspace="oklab")):
    h.update(fastquant.compress(sys.argv[1], 256, **kw).encode(".png"))
config.SAMPLE_PIXELS = 40000  # the OKLab colour table, shared by threads
h.update(fastquant.compress(sys.argv[1], 128, colorspace="oklab").encode(".png"))
print(h.hexdigest())
"""


def test_same_bytes_for_any_thread_count(kodak, outputs_by_threads):
    outs = outputs_by_threads(_THREAD_SCRIPT, kodak[3])
    assert len(outs) == 1, outs


_IMPORT_SCRIPT = """
import sys, fastquant, fastquant.colorspace, fastquant.remap, fastquant.preview, fastquant.metrics
from numba.core.registry import CPUDispatcher
compiled = [f"{m}.{n}" for m in list(sys.modules) if m.startswith("fastquant")
            for n, f in vars(sys.modules[m]).items() if isinstance(f, CPUDispatcher) and f.signatures]
print(compiled)
"""


def test_import_compiles_nothing():
    r = subprocess.run([sys.executable, "-c", _IMPORT_SCRIPT], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
