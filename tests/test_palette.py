"""Palettes across images (fastquant.palette), fixed colours, given palettes and importance weights."""

import imageio.v3 as iio
import numpy as np
import pytest

from fastquant import OptionError, Palette, boxes, colorspace, compress, config, histogram, kmeans, palette
from fastquant import fit as fitting
from fastquant import palette as palette_fn
from fastquant.io import read_image

from . import naive
from .conftest import DATA

pytest_plugins = ["tests.drivers"]


def _crops(kodak):
    """Three photo crops of one width (different images, different heights)."""
    return [
        read_image(kodak[0])[0][:96, :160],
        read_image(kodak[1])[0][40:120, :160],
        read_image(kodak[2])[0][:64, :160],
    ]


def test_merge_equals_histogram_of_the_concatenation():
    rng = np.random.default_rng(3)
    parts = [rng.integers(0, 6, (n, 3)).astype(np.uint8) for n in (500, 1, 333)]
    colors, counts, inverse = histogram.merge([histogram.unique_colors(p)[:2] for p in parts])
    ref_colors, ref_counts, _ = naive.unique_colors(np.concatenate(parts))
    np.testing.assert_array_equal(colors, ref_colors)
    np.testing.assert_array_equal(counts, ref_counts)
    assert counts.dtype == np.int64
    np.testing.assert_array_equal(colors[inverse], np.concatenate([histogram.unique_colors(p)[0] for p in parts]))


def test_merge_of_weighted_counts_sums_the_weights():
    a = np.array([[1, 2, 3], [4, 5, 6]], np.uint8)
    b = np.array([[4, 5, 6], [7, 8, 9]], np.uint8)
    colors, counts, _ = histogram.merge([(a, np.array([0.5, 2.0])), (b, np.array([1, 3]))])
    np.testing.assert_array_equal(colors, [[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    np.testing.assert_allclose(counts, [0.5, 3.0, 3.0])


def test_palette_of_many_images_is_the_kmeans_of_their_pixels_together(kodak):
    crops = _crops(kodak)
    p = palette(crops, 32)
    together = np.concatenate(crops)  # one image: the union of their pixels
    np.testing.assert_array_equal(p.colors, compress(together, 32).palette)
    # and the k-means it ran is the one on the naive histogram of the concatenation
    colors, counts, _ = naive.unique_colors(together.reshape(-1, 3))
    # (RGB palettes are fitted with the luma direction stretched, see fit.luma_stretch)
    s = fitting.luma_stretch(32)
    ref = kmeans(colorspace.stretch_luma(colors, s), 32, weights=counts, tol=1e-2, swap_rounds=3, boxes_on=colors)
    want = colorspace.from_points(colorspace.stretch_luma(ref.centers, 1 / s), "rgb")
    assert sorted(map(tuple, p.colors)) == sorted(map(tuple, want))
    assert p.mse == pytest.approx(compress(together, palette=p).stats.mse, rel=1e-12)
    assert p.n_pixels == together.shape[0] * together.shape[1]


def test_merge_in_batches_is_the_same(kodak, monkeypatch):
    from fastquant.palette import count, merge

    parts = [count(c) for c in _crops(kodak)]
    whole = merge(parts)
    monkeypatch.setattr(config, "MERGE_COLORS", 10)  # every source folded in on its own
    folded = merge(parts)
    np.testing.assert_array_equal(folded.colors, whole.colors)
    np.testing.assert_array_equal(folded.counts, whole.counts)


def test_an_image_kept_by_count_is_mapped_as_one_read_again(kodak, tmp_path, monkeypatch):
    from fastquant import io
    from fastquant.palette import count, forget_kept, kept_sources

    src, crops = tmp_path / "a.png", _crops(kodak)
    iio.imwrite(src, crops[0])
    p16, pixels = palette(src, 16), read_image(src)[0]
    fresh = compress(src, palette=p16, ssim=True)
    reads, open_image = [], io.open_image
    monkeypatch.setattr(io, "open_image", lambda *a, **k: reads.append(a) or open_image(*a, **k))
    counted = count(src, keep=True)
    assert len(reads) == 1 and kept_sources() == {str(src)}
    np.testing.assert_array_equal(counted.colors, histogram.unique_colors(pixels.reshape(-1, 3))[0])
    kept = compress(src, palette=p16, ssim=True)
    assert len(reads) == 1  # compress() took the kept image
    assert not kept_sources()
    for a, b in ((kept.indices, fresh.indices), (kept.palette, fresh.palette), (kept.image, fresh.image)):
        np.testing.assert_array_equal(a, b)
    assert (kept.stats.mse, kept.stats.ssim) == (fresh.stats.mse, fresh.stats.ssim)
    # other options, or a file changed since, read it again; and the kept images can be dropped
    count(src, keep=True)
    compress(src, 16, resize=40)
    assert len(reads) == 3 and kept_sources()
    iio.imwrite(src, crops[1])
    compress(src, 16)
    assert len(reads) == 4
    forget_kept()
    assert not kept_sources()


def test_palette_of_one_image_is_compress_palette(kodak):
    assert np.array_equal(palette(kodak[0], 48).colors, compress(kodak[0], 48).palette)
    assert np.array_equal(
        palette([kodak[0]], 48, colorspace="oklab").colors, compress(kodak[0], 48, colorspace="oklab").palette
    )


def test_palette_takes_paths_arrays_and_pil_images(kodak):
    from PIL import Image

    arr = read_image(kodak[0])[0]
    ref = palette([kodak[0], kodak[1]], 16)
    assert palette([Image.fromarray(arr), read_image(kodak[1])[0]], 16) == ref
    assert palette_fn is palette and Palette.from_image(Image.fromarray(arr[:8, :8])).colors.shape[1] == 3


def test_palette_mixed_rgb_and_rgba_is_the_rgba_union(kodak):
    rgb = read_image(kodak[0])[0][:64, :96]
    rgba = read_image(DATA / "alpha" / "flower_small.rgba.png")[0][:64, :96].copy()
    rgba[:16] = 0  # fully transparent rows
    p = palette([rgb, rgba], 24)
    opaque = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)
    np.testing.assert_array_equal(p.colors, compress(np.concatenate([opaque, rgba]), 24).palette)
    assert p.colors.shape[1] == 4 and (p.colors[:, 3] == 0).any()  # the transparent entry, as for one image


def test_large_sources_are_sampled_as_one_large_image_and_weigh_their_pixels(kodak, monkeypatch):
    monkeypatch.setattr(config, "SAMPLE_PIXELS", 20_000)
    big = read_image(kodak[0])[0]  # 393216 pixels > 2 * 20000: the sampled path
    small = read_image(kodak[1])[0][:100, :100]
    assert palette(big, 32) == Palette(compress(big, 32).palette)
    from fastquant.palette import count, merge

    parts = [count(big), count(small)]
    assert parts[0].sampled and not parts[1].sampled
    merged = merge(parts)
    # the sample's counts stand for all of the big image's pixels
    assert merged.counts.sum() == pytest.approx(big.shape[0] * big.shape[1] + 10_000)


def test_given_palette_maps_to_the_nearest_entry(kodak):
    image = read_image(kodak[2])[0][:80, :120]
    p = Palette(palette(kodak[0], 20).colors[::-1])  # an order no fit gives
    q = compress(image, palette=p)
    np.testing.assert_array_equal(q.palette, p.colors)  # every entry, in its order
    labels, dist = naive.nearest(image.reshape(-1, 3), p.colors)  # brute force, ties to the lowest index
    np.testing.assert_array_equal(q.indices.reshape(-1), labels)
    assert q.stats.mse == pytest.approx(dist.sum() / image.size)
    png = iio.imread(q.encode(".png"), index=None)
    assert set(map(tuple, png.reshape(-1, 3))) <= set(map(tuple, p.colors))


@pytest.mark.parametrize("dither", ["fs", "ordered"])
def test_dithering_onto_a_given_palette_keeps_every_entry(kodak, dither):
    p = Palette.from_colors(["000000", "ffffff", "ff0000", "#00ff00", "0000ff", "00ff00"])
    q = compress(kodak[0], palette=p, dither=dither)
    np.testing.assert_array_equal(q.palette, p.colors)
    plain = compress(kodak[0], palette=p)
    assert not np.array_equal(q.indices, plain.indices)  # dithered, not nearest


def test_given_palette_channels(kodak):
    image = read_image(kodak[0])[0][:32, :32]
    opaque = compress(image, palette=np.array([[0, 0, 0, 255], [255, 255, 255, 255]], np.uint8))
    assert opaque.palette.shape == (2, 3)
    translucent = compress(image, palette=["00000080", "ffffff"])
    assert translucent.palette.shape == (2, 4) and translucent.image.shape == (32, 32, 4)
    rgba = read_image(DATA / "alpha" / "flower_small.rgba.png")[0]
    assert compress(rgba, palette=["ff0000", "00ff00"]).palette.shape == (2, 4)


@pytest.mark.parametrize("colorspace", ["rgb", "oklab"])
def test_fixed_colors_are_in_the_palette_and_no_worse_than_the_free_rest(kodak, colorspace, monkeypatch):
    fixed = ["ff0000", "#00ff00", "123456", "#fefefe"]
    # RGB is fitted with the luma stretch of the palette size: one stretch for both sizes here
    monkeypatch.setattr(config, "LUMA_STRETCH", (1.2, 1.2))
    for path in kodak[:2]:
        q = compress(path, 24, fixed_colors=fixed, colorspace=colorspace)
        free = compress(path, 24 - len(fixed), colorspace=colorspace)
        plte = iio.imread(q.encode(".png"), index=None)  # the file: its palette holds them
        assert len(q.palette) == 24
        rows = set(map(tuple, q.palette))
        assert {(255, 0, 0), (0, 255, 0), (0x12, 0x34, 0x56), (254, 254, 254)} <= rows
        assert plte.shape[:2] == q.indices.shape
        if colorspace == "rgb":  # fitted for the error with luma stretched: judged by it
            assert _stretched_mse(q) <= _stretched_mse(free)
        else:  # fitted for the OKLab error: judged by it
            assert _oklab_mse(q) <= _oklab_mse(free)


def _stretched_mse(q):
    from fastquant.colorspace import stretch_luma

    d = stretch_luma(q.image.reshape(-1, 3), 1.2).astype(np.float64) - stretch_luma(q.original.reshape(-1, 3), 1.2)
    return float((d**2).sum(axis=1).mean())


def _oklab_mse(q):
    from fastquant.colorspace import srgb_to_oklab

    d = srgb_to_oklab(q.image.reshape(-1, 3), 255.0) - srgb_to_oklab(q.original.reshape(-1, 3), 255.0)
    return float((d.astype(np.float64) ** 2).sum(axis=1).mean())


def test_fixed_colors_with_dithering_and_rgba():
    rgba = read_image(DATA / "alpha" / "flower_small.rgba.png")[0]
    q = compress(rgba, 16, fixed_colors=["ff00ff", "00000000"], dither="fs")
    rows = set(map(tuple, q.palette))
    assert (255, 0, 255, 255) in rows and (0, 0, 0, 0) in rows


def test_fixed_colors_in_a_shared_palette(kodak):
    p = palette(kodak[:2], 16, fixed_colors="abcdef,#010203")
    assert {(0xAB, 0xCD, 0xEF), (1, 2, 3)} <= set(map(tuple, p.colors))


def test_too_many_fixed_colors_is_an_option_error(kodak):
    with pytest.raises(OptionError, match="more than n_colors"):
        compress(kodak[0], 2, fixed_colors=["000000", "111111", "222222"])
    with pytest.raises(OptionError, match="more than n_colors"):
        palette(kodak[0], 1, fixed_colors=["000000", "111111"])
    with pytest.raises(OptionError, match="fixed_colors"):
        compress(kodak[0], 8, fixed_colors=["nothex"])
    with pytest.raises(OptionError, match="cannot be combined"):
        compress(kodak[0], palette=["000000"], fixed_colors=["ffffff"])


def test_as_many_fixed_colors_as_k_is_a_mapping(kodak):
    q = compress(kodak[0], 3, fixed_colors=["000000", "808080", "ffffff"])
    assert sorted(map(tuple, q.palette)) == [(0, 0, 0), (128, 128, 128), (255, 255, 255)]


def test_kmeans_fixed_matches_naive(drivers):
    rng = np.random.default_rng(8)
    points = rng.normal(size=(2500, 3)).astype(np.float32) * 40
    weights = rng.integers(1, 9, len(points)).astype(np.float64)
    fixed = np.array([[0, 0, 0], [50, -20, 10], [500, 500, 500]], np.float32)  # one far from every point
    init = points[:12].copy()
    res = kmeans(points, 15, weights=weights, init=init, fixed=fixed, max_iter=8, tol=0, overrelax=0, swap_rounds=0)
    ref_centers, ref_labels, ref_inertia = naive.lloyd_fixed(points, fixed, init, weights, 8)
    np.testing.assert_array_equal(res.centers[:3], fixed)
    np.testing.assert_allclose(res.centers, ref_centers, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(res.labels, ref_labels)
    assert res.inertia == pytest.approx(ref_inertia, rel=1e-5)


@pytest.mark.parametrize("init", ["wu", "mediancut", "k-means++"])
def test_kmeans_fixed_centres_never_move_and_beat_the_free_fit(init):
    rng = np.random.default_rng(1)
    points = rng.integers(0, 256, (4000, 3)).astype(np.float32)
    weights = rng.integers(1, 20, len(points)).astype(np.float64)
    fixed = np.array([[255, 0, 0], [3, 3, 3]], np.float32)
    res = kmeans(points, 10, weights=weights, fixed=fixed, init=init)
    free = kmeans(points, 8, weights=weights, init=init)
    np.testing.assert_array_equal(res.centers[:2], fixed)
    assert len(res.centers) == 10 and res.inertia <= free.inertia


def test_kmeans_fixed_with_few_points():
    points = np.array([[0, 0, 0], [10, 10, 10], [10, 10, 10]], np.float32)
    res = kmeans(points, 5, fixed=[[10, 10, 10], [99, 99, 99]])
    np.testing.assert_array_equal(res.centers, [[10, 10, 10], [99, 99, 99], [0, 0, 0]])
    with pytest.raises(OptionError, match="more than k"):
        kmeans(points, 1, fixed=[[1, 1, 1], [2, 2, 2]])


def test_removal_costs_match_naive():
    rng = np.random.default_rng(5)
    points = rng.integers(0, 256, (700, 3)).astype(np.float32)
    weights = rng.random(len(points))
    centers = rng.integers(0, 256, (9, 3)).astype(np.float32)
    np.testing.assert_allclose(
        boxes._removal_costs(points, weights, centers, 2), naive.removal_costs(points, weights, centers, 2), rtol=1e-9
    )


def test_around_fixed_drops_the_start_a_fixed_colour_stands_in_for():
    # three clumps; a fixed colour on the second one makes its start redundant
    rng = np.random.default_rng(2)
    clumps = np.array([[20, 20, 20], [120, 120, 120], [220, 220, 220]], np.float32)
    points = np.concatenate([c + rng.normal(size=(200, 3)).astype(np.float32) for c in clumps])
    weights = np.ones(len(points))
    kept = boxes.around_fixed(points, weights, clumps, np.array([[121, 119, 120]], np.float32), 2)
    np.testing.assert_array_equal(kept, clumps[[0, 2]])
    # a fixed colour far from every point costs the least useful start instead
    weights[200:400] = 0.01
    kept = boxes.around_fixed(points, weights, clumps, np.array([[255, 0, 255]], np.float32), 2)
    np.testing.assert_array_equal(kept, clumps[[0, 2]])


def test_importance_weights_lower_the_error_of_the_weighted_region(kodak):
    image = read_image(kodak[0])[0]
    region = (slice(0, 128), slice(0, 192))
    w = np.ones(image.shape[:2])
    w[region] = 200.0

    def region_mse(q):
        d = q.image[region].astype(np.float64) - image[region]
        return float((d * d).mean())

    plain = compress(image, 16)
    weighted = compress(image, 16, weights=w)
    assert region_mse(weighted) < 0.8 * region_mse(plain)
    assert weighted.stats.mse > plain.stats.mse  # the rest pays; stats count every pixel once
    assert compress(image, 16, weights=np.full(image.shape[:2], 3.0)).stats.mse == pytest.approx(plain.stats.mse)


def test_importance_weights_with_resize_and_sampling(kodak, monkeypatch):
    image = read_image(kodak[0])[0]
    w = np.ones(image.shape[:2])
    w[:128, :192] = 500.0
    q = compress(image, 16, weights=w, resize=200)
    assert q.indices.shape == (133, 200)
    monkeypatch.setattr(config, "SAMPLE_PIXELS", 20_000)
    big_plain, big_weighted = compress(image, 16), compress(image, 16, weights=w)
    d = [(x.image[:128, :192].astype(float) - image[:128, :192]) ** 2 for x in (big_plain, big_weighted)]
    assert d[1].mean() < 0.8 * d[0].mean()


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.ones((3, 3)), "shape"),
        (-np.ones((512, 768)), ">= 0"),
        (np.zeros((512, 768)), "not all zero"),
        ("x", "array"),
    ],
)
def test_bad_importance_weights(kodak, bad, match):
    with pytest.raises(OptionError, match=match):
        compress(kodak[0], 8, weights=bad)


@pytest.mark.parametrize("ext", [".png", ".gpl", ".txt"])
def test_palette_save_and_load_round_trip(tmp_path, ext):
    rng = np.random.default_rng(0)
    p = Palette(np.unique(rng.integers(0, 256, (40, 3)).astype(np.uint8), axis=0)[::-1])
    p.save(tmp_path / ("p" + ext))
    assert Palette.load(tmp_path / ("p" + ext)) == p


def test_palette_rgba_round_trip_and_gpl_refuses_alpha(tmp_path):
    p = Palette.from_colors(["ff000080", "00ff00", "00000000"])
    assert p.colors.shape == (3, 4) and p.colors[1, 3] == 255
    for ext in (".png", ".txt"):
        p.save(tmp_path / ("p" + ext))
        assert Palette.load(tmp_path / ("p" + ext)) == p
    with pytest.raises(OptionError, match="no alpha"):
        p.save(tmp_path / "p.gpl")


def test_palette_load_text_formats(tmp_path):
    (tmp_path / "a.txt").write_text("# my colours\n#ff0000\n\n00ff00, 0000ff\n// more\nabc\n")
    assert Palette.load(tmp_path / "a.txt").colors.tolist() == [[255, 0, 0], [0, 255, 0], [0, 0, 255], [170, 187, 204]]
    (tmp_path / "b.gpl").write_text("GIMP Palette\nName: x\nColumns: 4\n#\n255   0   0\tRed\n  0 128 255 Blue\n")
    assert Palette.load(tmp_path / "b.gpl").colors.tolist() == [[255, 0, 0], [0, 128, 255]]


@pytest.mark.parametrize(
    "name, text, match",
    [
        ("bad.txt", "ff0000\nzz0000\n", "line 2"),
        ("empty.txt", "\n# nothing\n", "no colours"),
        ("bad.gpl", "255 0 0\n", "GIMP Palette"),
        ("range.gpl", "GIMP Palette\n300 0 0\n", "line 2"),
    ],
)
def test_bad_palette_files_are_option_errors(tmp_path, name, text, match):
    (tmp_path / name).write_text(text)
    with pytest.raises(OptionError, match=match):
        Palette.load(tmp_path / name)


def test_an_image_with_too_many_colours_is_not_a_palette(tmp_path):
    rng = np.random.default_rng(0)
    iio.imwrite(tmp_path / "noise.png", rng.integers(0, 256, (300, 300, 3)).astype(np.uint8))
    with pytest.raises(OptionError, match="more than 65536 colours"):
        Palette.load(tmp_path / "noise.png")


def test_palette_of_a_palette_image_is_its_colours(kodak, tmp_path):
    q = compress(kodak[0], 12)
    q.save(tmp_path / "q.gif")
    assert set(map(tuple, Palette.load(tmp_path / "q.gif").colors)) == set(map(tuple, q.palette))


def test_importance_weights_on_a_large_graphic(monkeypatch):
    # few colours, every pixel counted on the strip path: the weights are summed per colour over every pixel
    monkeypatch.setattr(config, "SAMPLE_PIXELS", 2000)
    rng = np.random.default_rng(4)
    image = np.empty((120, 120, 3), np.uint8)
    tiles = rng.integers(0, 256, (2, 20, 3)).astype(np.uint8)  # 20 colours in the corner, 20 elsewhere
    which = rng.integers(0, 20, (12, 12)).repeat(10, 0).repeat(10, 1)
    image[:] = tiles[1][which]
    image[:40, :40] = tiles[0][which[:40, :40]]
    w = np.ones((120, 120))
    w[:40, :40] = 100.0

    def corner(q):
        d = q.image[:40, :40].astype(np.float64) - image[:40, :40]
        return float((d * d).mean())

    plain, weighted = compress(image, 8), compress(image, 8, weights=w)
    assert corner(weighted) < 0.8 * corner(plain)
