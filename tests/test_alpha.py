"""Alpha: clustering and mapping in composites space, alpha-aware metrics, tRNS output.

RGBA images in ``colorspace="rgb"`` are clustered and mapped with "composites"
points (P - a/2, sqrt(3)/2 a), P the premultiplied colour (r a/255, g a/255,
b a/255), whose distances are the mean of the composites' over black and over
white; the palette comes back as straight RGBA.
"""

import io as _io
import json
import struct
import sys

import numpy as np
import pytest
from PIL import Image

from fastquant import cli, colorspace, compress, config, io, metrics, remap
from fastquant import fit as fitting
from fastquant.batch import run_job
from fastquant.errors import OptionError

from . import naive

api = sys.modules["fastquant.api"]

ICONS = [
    "tango32_face-smile.png",
    "tango32_internet-web-browser.png",
    "tango32_weather-few-clouds.png",
    "tango-icon-address-book-new-128-rsvg-convert.png",
]
ICON = "tango-icon-address-book-new-128-rsvg-convert.png"


def _random_rgba(n, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.integers(0, 256, (n, 4)).astype(np.uint8)
    c[: n // 8, 3] = 0
    c[n // 8 : n // 4, 3] = 255
    c[n // 4 : n // 3, 3] = rng.integers(1, 4, n // 3 - n // 4)  # nearly invisible
    return c


# ============================================================================ points and palette


def test_premultiply_matches_naive():
    c = _random_rgba(5000)
    pts = colorspace.premultiply(c)
    assert pts.dtype == np.float32 and pts.shape == c.shape
    np.testing.assert_array_equal(pts, naive.premultiply(c))
    np.testing.assert_array_equal(colorspace.to_points(c, "premultiplied"), pts)
    np.testing.assert_array_equal(pts[c[:, 3] == 0], 0)  # invisible colours all coincide
    np.testing.assert_array_equal(colorspace.premultiply(c.reshape(50, 100, 4)), pts.reshape(50, 100, 4))


def test_premultiply_rejects():
    with pytest.raises(ValueError, match="RGBA"):
        colorspace.premultiply(np.zeros((3, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        colorspace.premultiply(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="space"):
        colorspace.to_points(np.zeros((3, 4), np.uint8), "linear")


def test_unpremultiply_matches_naive():
    rng = np.random.default_rng(1)
    pts = np.concatenate(
        [
            colorspace.premultiply(_random_rgba(2000, 2)),
            rng.uniform(-2, 260, (2000, 4)),  # centres of any kind, clipping
            np.column_stack([rng.uniform(0, 1, (300, 3)), rng.uniform(0, 0.6, 300)]),  # alpha near 0
            [[1.0, 2.0, 3.0, 0.49], [1.0, 2.0, 3.0, 0.5], [1.0, 2.0, 3.0, 0.51], [0.5, 0.5, 0.5, 1.5]],
        ]
    ).astype(np.float32)
    out = colorspace.unpremultiply(pts)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, naive.unpremultiply(pts))
    np.testing.assert_array_equal(out[out[:, 3] == 0], 0)
    np.testing.assert_array_equal(colorspace.from_points(pts, "premultiplied"), out)


def test_palette_round_trip_exact():
    """Every straight colour with alpha > 0 comes back from its premultiplied point exactly."""
    v = np.arange(256)
    a = np.repeat(np.arange(1, 256), 256)
    rgb = np.tile(np.column_stack([v, 255 - v, (v * 37) % 256]), (255, 1))
    c = np.column_stack([rgb, a]).astype(np.uint8)
    np.testing.assert_array_equal(colorspace.unpremultiply(colorspace.premultiply(c)), c)
    clear = np.array([[9, 8, 7, 0]], np.uint8)
    np.testing.assert_array_equal(colorspace.unpremultiply(colorspace.premultiply(clear)), [[0, 0, 0, 0]])


def test_fit_points_are_premultiplied(monkeypatch):
    c = _random_rgba(3000, 3)
    c = c[c[:, 3] > 0]
    counts = np.arange(1, len(c) + 1)
    pts, w, cell = fitting.fit_points(c, counts, "premultiplied")
    np.testing.assert_array_equal(pts, naive.premultiply(c))
    np.testing.assert_array_equal(w, counts)
    # Coarsened: cells are means of premultiplied points, weighted by the counts.
    monkeypatch.setattr(config, "FIT_COLORS", 200)
    pts, w, cell = fitting.fit_points(c, counts, "premultiplied")
    assert len(pts) <= 200
    ref = naive.weighted_means(naive.premultiply(c), counts.astype(float), cell, len(pts))
    np.testing.assert_allclose(pts, ref, rtol=1e-6, atol=1e-4)


def test_composites_matches_naive():
    c = _random_rgba(5000, 7)
    pts = colorspace.composites(c)
    assert pts.dtype == np.float32 and pts.shape == c.shape
    np.testing.assert_array_equal(pts, naive.composites(c))
    np.testing.assert_array_equal(colorspace.to_points(c, "composites"), pts)
    np.testing.assert_array_equal(pts[c[:, 3] == 0], 0)
    # back to the same straight colours (alpha > 0), through the space's inverse
    visible = c[c[:, 3] > 0]
    back = colorspace.from_points(colorspace.to_points(visible, "composites"), "composites")
    np.testing.assert_array_equal(back, visible)
    np.testing.assert_array_equal(colorspace.from_composites(pts[c[:, 3] == 0]), 0)


def test_composites_distance_is_the_mean_of_both_backgrounds():
    """|x - y|^2 in composites space = mean of the squared differences of the composites
    over black and over white (in the same units), for any two colours."""
    a, b = _random_rgba(3000, 8), _random_rgba(3000, 9)
    d = colorspace.composites(a).astype(np.float64) - colorspace.composites(b)
    black = naive.composite(a, 0) - naive.composite(b, 0)
    white = naive.composite(a, 255) - naive.composite(b, 255)
    mean = ((black**2).sum(axis=1) + (white**2).sum(axis=1)) / 2
    np.testing.assert_allclose((d * d).sum(axis=1), mean, rtol=1e-5, atol=1e-2)


def test_space_of_options():
    assert api._space("rgb", 4) == "composites"
    assert api._space("rgb", 3) == "rgb"
    assert api._space("oklab", 4) == "oklab"


@pytest.mark.parametrize("space", ["premultiplied", "composites"])
def test_nearest_rgba_spaces_are_exact(space):
    points = naive.premultiply if space == "premultiplied" else naive.composites
    colors = _random_rgba(4000, 4)
    palette = _random_rgba(64, 5)
    labels, dist = remap.nearest(colors, palette, None, space)
    d = ((points(colors).astype(np.float64)[:, None, :] - points(palette).astype(np.float64)[None, :, :]) ** 2).sum(
        axis=2
    )
    chosen = d[np.arange(len(colors)), labels]
    assert (chosen <= d.min(axis=1) + 1e-3).all()  # float32 kernel vs float64 reference: ties only
    ref, _ = naive.nearest(points(colors), points(palette))
    assert (labels == ref).mean() > 0.99
    # dist stays the straight sRGB distance (what stats.mse is made of)
    diff = colors.astype(np.int64) - palette[labels]
    np.testing.assert_array_equal(dist, (diff * diff).sum(axis=1))


# ============================================================================ what it changes


def test_nearly_invisible_difference_merged_first():
    """Two colours that differ only under alpha 2 (invisible: 2/255 of a channel at most)
    are merged before two clearly visible ones 10 levels apart."""
    colors = np.array([[255, 0, 0, 2], [0, 0, 255, 2], [100, 100, 100, 255], [110, 100, 100, 255]], np.uint8)
    img = np.repeat(colors[None, :, :], 8, axis=0).repeat(4, axis=1)  # 8 x 16, equal counts
    q = compress(img, 3)
    out = q.image
    for j in (2, 3):  # the visible ones stay exact
        np.testing.assert_array_equal(out[img[:, :, 0] == colors[j, 0]][:, :4], np.tile(colors[j], (32, 1)))
    faint = out[img[:, :, 3] == 2]
    assert len(np.unique(faint, axis=0)) == 1  # one entry for both faint colours
    assert q.stats.psnr_black > 45 and q.stats.psnr_white > 45  # nearly invisible: nearly no cost
    assert q.stats.alpha_max_error <= 1


@pytest.mark.parametrize("k", [4, 16, 256])
def test_few_colours_lossless(k):
    """<= k distinct straight colours (nearly invisible ones that differ by one level
    included): the result is the input."""
    rng = np.random.default_rng(k)
    colors = _random_rgba(max(k, 8) * 2, k)
    colors[:2] = [(10, 20, 30, 1), (11, 20, 30, 1)]
    colors = np.unique(colors[colors[:, 3] > 0], axis=0)[: k - 1]
    palette = np.vstack([colors, [[0, 0, 0, 0]]]).astype(np.uint8)
    img = palette[rng.integers(0, len(palette), (24, 40))]
    img.reshape(-1, 4)[: len(palette)] = palette  # every colour present
    assert len(np.unique(img.reshape(-1, 4), axis=0)) == len(palette) <= k
    q = compress(img, k)
    np.testing.assert_array_equal(q.image, img)
    s = q.stats
    assert s.psnr == s.psnr_black == s.psnr_white == float("inf")
    assert s.alpha_max_error == 0


@pytest.mark.parametrize("k", [2, 16, 256])
@pytest.mark.parametrize("name", ICONS)
def test_transparent_pixels_get_the_reserved_entry(images_dir, name, k):
    src, _ = io.read_image(images_dir / "alpha" / name)
    clear = src[:, :, 3] == 0
    q = compress(src, k)
    assert (q.palette[:, 3] == 0).sum() == 1
    entry = int(np.flatnonzero(q.palette[:, 3] == 0)[0])
    np.testing.assert_array_equal(q.palette[entry], 0)
    assert (q.indices[clear] == entry).all()


def test_oklab_rgba_still_works(images_dir):
    path = images_dir / "alpha" / ICON
    q = compress(path, 32, colorspace="oklab")
    src, _ = io.read_image(path)
    assert q.palette.shape[1] == 4 and (q.image[src[:, :, 3] == 0] == 0).all()
    assert q.stats.psnr_black > 25 and q.stats.psnr_white > 25


def test_alpha_weighting_helps_composites(images_dir):
    """Against straight 4-D clustering (the same code with straight points), the
    composites over black and over white together are better on the soft-alpha icons at k=16."""
    wins = 0
    for name in ICONS:
        src, _ = io.read_image(images_dir / "alpha" / name)
        err = []
        for space in ("composites", "rgb"):
            api._space, saved = (lambda colorspace, channels, space=space: space), api._space
            try:
                q = compress(src, 16)
            finally:
                api._space = saved
            err.append(metrics.over_sq_error(src, q.image, 0) + metrics.over_sq_error(src, q.image, 255))
        wins += err[0] < err[1]
    assert wins == len(ICONS)


SOFT = [f"alpha/{n}" for n in ICONS + ["flower_small.rgba.png"]] + [
    f"pngsuite/{n}.png" for n in ("basn4a08", "basn6a08", "basn6a16", "pp0n6a08")
]


@pytest.mark.parametrize("k", [64, 256])
def test_composites_space_serves_both_backgrounds(images_dir, k):
    """Against premultiplied points (the composite over black, and alpha), the composites
    points give less error over black and over white together on every soft-alpha image,
    and lift the worse of the two composites where premultiplied left white far behind."""
    lifted = {}
    for name in SOFT:
        src, _ = io.read_image(images_dir / name)
        both = {}
        for space in ("premultiplied", "composites"):
            api._space, saved = (lambda colorspace, channels, space=space: space), api._space
            try:
                q = compress(src, k)
            finally:
                api._space = saved
            both[space] = metrics.over_sq_error(src, q.image, 0) + metrics.over_sq_error(src, q.image, 255)
            lifted.setdefault(name, []).append(min(q.stats.psnr_black, q.stats.psnr_white))
        assert both["composites"] < 0.97 * both["premultiplied"], name
    assert lifted["pngsuite/basn4a08.png"][1] > lifted["pngsuite/basn4a08.png"][0] + 3.0
    assert sum(c > p for p, c in lifted.values()) >= len(SOFT) - 2


@pytest.mark.parametrize("name", ICONS)
def test_quality_target_judges_premultiplied_error(images_dir, name):
    """Quality targets judge what is seen: the MSE of the premultiplied values (as pngquant),
    not the straight one, which counts colour differences under alpha 0..few in full."""
    q = compress(images_dir / "alpha" / name, 256, quality=(50, 80))
    assert q.stats.quality >= 80 and len(q.palette) < 256
    pa = naive.premultiply(q.original.reshape(-1, 4)).astype(np.float64)
    pb = naive.premultiply(q.image.reshape(-1, 4)).astype(np.float64)
    assert q.stats.quality == metrics.quality_from_mse(np.mean((pa - pb) ** 2))


# ============================================================================ stats and metrics


def _over_ref(a, b, bg):
    ca = a[..., :3].astype(np.float64) * (a[..., 3:] / 255.0) + bg * (1 - a[..., 3:] / 255.0)
    cb = b[..., :3].astype(np.float64) * (b[..., 3:] / 255.0) + bg * (1 - b[..., 3:] / 255.0)
    m = np.mean((ca - cb) ** 2)
    return 10 * np.log10(255.0**2 / m)


@pytest.mark.parametrize("opts", [{}, {"dither": "fs"}, {"dither": "ordered"}, {"colorspace": "oklab"}])
def test_stats_alpha_fields(images_dir, opts):
    q = compress(images_dir / "alpha" / ICON, 16, **opts)
    a, b = q.original, q.image
    s = q.stats
    assert s.alpha_max_error == int(np.abs(a[..., 3].astype(int) - b[..., 3]).max())
    assert isinstance(s.alpha_max_error, int) and s.alpha_max_error > 0
    assert s.psnr_black == pytest.approx(_over_ref(a, b, 0.0), rel=1e-10)
    assert s.psnr_white == pytest.approx(_over_ref(a, b, 255.0), rel=1e-10)
    # mse / psnr stay on the straight RGBA values
    assert s.mse == pytest.approx(np.mean((a.astype(np.float64) - b) ** 2), rel=1e-9)
    assert "metrics" in s.stage_seconds
    d = s.as_dict()
    assert {"alpha_max_error", "psnr_black", "psnr_white"} <= set(d)


def test_stats_alpha_fields_none_without_alpha(kodak):
    with Image.open(kodak[0]) as im:
        rgb = np.asarray(im.convert("RGB"))[:64, :64].copy()
    s = compress(rgb, 16).stats
    assert s.alpha_max_error is None and s.psnr_black is None and s.psnr_white is None


def test_composite_matches_reference():
    rng = np.random.default_rng(7)
    img = _random_rgba(600, 7).reshape(20, 30, 4)
    for bg in (0, 255, 127.5, (10, 200, 30)):
        out = metrics.composite(img, bg)
        assert out.shape == (20, 30, 3) and out.dtype == np.float64
        np.testing.assert_allclose(out, naive.composite(img, bg), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(metrics.composite(img, 0), img[..., :3] * (img[..., 3:] / 255.0))
    rgb = rng.integers(0, 256, (5, 6, 3)).astype(np.uint8)
    np.testing.assert_array_equal(metrics.composite(rgb, 255), rgb)  # opaque
    with pytest.raises(OptionError):
        metrics.composite(np.zeros((4, 2), np.uint8), 0)


def test_psnr_over_and_alpha_error_match_reference(monkeypatch):
    a = _random_rgba(3000, 8).reshape(50, 60, 4)
    rng = np.random.default_rng(9)
    b = np.clip(a.astype(int) + rng.integers(-6, 7, a.shape), 0, 255).astype(np.uint8)
    for bg in (0, 255, (30, 60, 90)):
        ref = _over_ref(a, b, np.asarray(bg, np.float64))
        assert metrics.psnr_over(a, b, bg) == pytest.approx(ref, rel=1e-12)
        monkeypatch.setattr(config, "PSNR_OVER_CHUNK", 97)  # chunking changes nothing but the order of sums
        assert metrics.psnr_over(a, b, bg) == pytest.approx(ref, rel=1e-12)
        monkeypatch.undo()
    assert metrics.alpha_error(a, b) == int(np.abs(a[..., 3].astype(int) - b[..., 3]).max())
    assert metrics.alpha_error(a, a) == 0
    assert metrics.psnr_over(a, a, 0) == float("inf")
    # weights: colours standing for several pixels == those pixels repeated
    w = rng.integers(1, 5, 3000)
    fa, fb = a.reshape(-1, 4), b.reshape(-1, 4)
    rep = np.repeat(np.arange(3000), w)
    assert metrics.psnr_over(fa, fb, 255, weights=w) == pytest.approx(
        metrics.psnr_over(fa[rep], fb[rep], 255), rel=1e-12
    )
    # RGB: the composite is the image; alpha error 0
    ra, rb = a[..., :3], b[..., :3]
    assert metrics.psnr_over(ra, rb, 0) == pytest.approx(metrics.psnr(ra, rb), rel=1e-12)
    assert metrics.alpha_error(ra, rb) == 0
    with pytest.raises(OptionError):
        metrics.psnr_over(a, b[:10], 0)
    with pytest.raises(OptionError):
        metrics.psnr_over(fa, fb, 0, weights=w[:5])


# ============================================================================ JSON record, PNG output


def test_json_record_has_alpha_fields(images_dir, tmp_path, capsys):
    code = cli.main([str(images_dir / "alpha" / ICON), "-o", str(tmp_path / "o.png"), "-k", "16", "--json"])
    out, _ = capsys.readouterr()
    assert code == 0
    rec = json.loads(out.splitlines()[0])
    q = compress(images_dir / "alpha" / ICON, 16)
    assert rec["alpha_max_error"] == q.stats.alpha_max_error
    assert rec["psnr_black"] == round(q.stats.psnr_black, 3)
    assert rec["psnr_white"] == round(q.stats.psnr_white, 3)


def test_record_alpha_fields_none_for_rgb_and_lossless(kodak, tmp_path):
    rec = run_job(str(kodak[0]), str(tmp_path / "a.png"), 16)
    assert rec["alpha_max_error"] is None and rec["psnr_black"] is None and rec["psnr_white"] is None
    img = np.zeros((4, 4, 4), np.uint8)
    img[:2] = (200, 10, 10, 128)
    Image.fromarray(img, "RGBA").save(tmp_path / "few.png")
    rec = run_job(str(tmp_path / "few.png"), str(tmp_path / "b.png"), 16)
    assert rec["alpha_max_error"] == 0 and rec["psnr_black"] is None and rec["psnr_white"] is None
    json.dumps(rec)  # plain JSON: no infinities


def _chunks(data):
    pos, out = 8, {}
    while pos < len(data):
        n, tag = struct.unpack(">I4s", data[pos : pos + 8])
        out.setdefault(tag.decode(), data[pos + 8 : pos + 8 + n])
        pos += 12 + n
    return out


@pytest.mark.parametrize("k", [16, 64, 256])
@pytest.mark.parametrize("name", ICONS + ["flower_small.rgba.png", "abc.png"])
def test_trns_translucent_first_and_pillow_decodes_the_same(images_dir, name, k):
    q = compress(images_dir / "alpha" / name, k)
    alpha = q.palette[:, 3]
    translucent = int((alpha < 255).sum())
    assert (alpha[:translucent] < 255).all() and (alpha[translucent:] == 255).all()
    data = q.encode(".png")
    chunks = _chunks(data)
    assert chunks["tRNS"] == alpha[:translucent].tobytes()
    assert len(chunks["PLTE"]) == 3 * len(q.palette)
    with Image.open(_io.BytesIO(data)) as im:
        assert im.mode == "P"
        np.testing.assert_array_equal(np.asarray(im.convert("RGBA")), q.image)
