"""fastquant.large: images fitted on a sample and mapped strip by strip, in bounded memory."""

import os

import numpy as np
import pytest

import fastquant
from fastquant import colorspace, config, histogram, large, metrics, remap

from . import naive


@pytest.fixture
def small_large(monkeypatch):
    """Make images above 2 * 3000 pixels "large", with strips of a few rows."""
    monkeypatch.setattr(config, "SAMPLE_PIXELS", 3000)
    monkeypatch.setattr(config, "STRIP_PIXELS", 2000)


def _photo(kodak, size=(120, 160)):
    import imageio.v3 as iio

    return np.ascontiguousarray(iio.imread(kodak[3])[: size[0], : size[1]])


def _rgba(kodak):
    rgb = _photo(kodak)
    h, w = rgb.shape[:2]
    alpha = np.clip(np.add.outer(np.arange(h) * 3, np.arange(w) * 2) - 60, 0, 255).astype(np.uint8)
    return np.dstack([rgb, alpha])


def test_rgba_large_maps_each_pixel_to_its_nearest_composites_entry(kodak, small_large):
    image = _rgba(kodak)
    q = fastquant.compress(image, 32)
    assert q.palette.shape == (len(q.palette), 4)
    fixed = image.copy()
    fixed[fixed[:, :, 3] == 0] = 0
    pts = colorspace.composites(fixed.reshape(-1, 4))
    ref, _ = naive.nearest(pts, colorspace.composites(q.palette))
    np.testing.assert_array_equal(q.indices.reshape(-1), ref)
    np.testing.assert_array_equal(q.original, fixed)  # the caller's array is not touched
    assert (image[:, :, 3] == 0).any() and not np.array_equal(image, fixed)
    # the strip-wise figures are those of the whole image
    out = q.image
    assert q.stats.mse == pytest.approx(metrics.mse(fixed, out), rel=1e-12)
    assert q.stats.alpha_max_error == metrics.alpha_error(fixed, out)
    assert q.stats.psnr_black == pytest.approx(metrics.psnr_over(fixed, out, 0), rel=1e-12)
    assert q.stats.psnr_white == pytest.approx(metrics.psnr_over(fixed, out, 255), rel=1e-12)


@pytest.mark.parametrize("rgba", [False, True])
def test_large_file_copied_once_matches_strips_of_the_array(kodak, small_large, tmp_path, rgba):
    """A file is decoded into an array of fastquant's own, Pillow's image freed at once
    (:meth:`fastquant.io.Decoded.take`); an array source is read strip by strip: the same result."""
    from PIL import Image

    image = _rgba(kodak) if rgba else _photo(kodak)
    path = tmp_path / "large.png"
    Image.fromarray(image).save(path)
    from_file = fastquant.compress(path, 32, ssim=True)
    from_array = fastquant.compress(image, 32, ssim=True)
    np.testing.assert_array_equal(from_file.palette, from_array.palette)
    np.testing.assert_array_equal(from_file.indices, from_array.indices)
    assert (from_file.stats.mse, from_file.stats.ssim) == (from_array.stats.mse, from_array.stats.ssim)
    np.testing.assert_array_equal(from_file.original, from_array.original)


def test_large_graphic_is_counted_exactly_and_matches_the_array_path(monkeypatch):
    rng = np.random.default_rng(5)
    colors = rng.integers(0, 256, (40, 3)).astype(np.uint8)
    labels = np.repeat(rng.integers(0, 40, (60, 10)), 8, axis=1)  # runs of one colour
    image = colors[labels]
    whole = fastquant.compress(image, 16, ssim=True)
    monkeypatch.setattr(config, "SAMPLE_PIXELS", 100)
    monkeypatch.setattr(config, "STRIP_PIXELS", 160)
    strips = fastquant.compress(image, 16, ssim=True)
    np.testing.assert_array_equal(strips.palette, whole.palette)
    np.testing.assert_array_equal(strips.indices, whole.indices)
    assert strips.stats.mse == whole.stats.mse
    assert strips.stats.ssim == pytest.approx(whole.stats.ssim, abs=1e-12)


def test_exact_count_gives_way_to_the_sample_past_its_cap(monkeypatch):
    rng = np.random.default_rng(2)
    image = rng.integers(0, 4, (50, 60, 3)).astype(np.uint8) * 60  # 64 colours
    rows = large.Rows(lambda lo, hi: image[lo:hi], 50, 60, 3)
    monkeypatch.setattr(config, "STRIP_PIXELS", 600)
    p = large.Prepared(large.Rows(rows.strip, 50, 60, 3), None, None, sample_pixels=500, few_colors=4096)
    assert not p.sampled
    ref_colors, ref_counts, _ = naive.unique_colors(image.reshape(-1, 3))
    np.testing.assert_array_equal(p.colors, ref_colors)
    np.testing.assert_array_equal(p.counts, ref_counts)
    monkeypatch.setattr(config, "EXACT_COLORS", 32)
    p = large.Prepared(large.Rows(rows.strip, 50, 60, 3), None, None, sample_pixels=500, few_colors=4096)
    assert p.sampled and p.counts.sum() < image.shape[0] * image.shape[1]


def test_sample_is_the_evenly_spread_one(kodak, monkeypatch):
    image = _photo(kodak)
    monkeypatch.setattr(config, "STRIP_PIXELS", 1000)
    p = large.Prepared(
        large.Rows(lambda lo, hi: image[lo:hi], *image.shape), None, None, sample_pixels=700, few_colors=0
    )
    step = -(-image.shape[0] * image.shape[1] // 700)
    while np.gcd(step, image.shape[1]) != 1:
        step += 1
    ref_colors, ref_counts, _ = naive.unique_colors(image.reshape(-1, 3)[::step])
    np.testing.assert_array_equal(p.colors, ref_colors)
    np.testing.assert_array_equal(p.counts, ref_counts)


def test_histogram_runs_match_naive():
    rng = np.random.default_rng(3)
    pixels = np.repeat(rng.integers(0, 3, (4000, 4)).astype(np.uint8), rng.integers(1, 9, 4000), axis=0)
    colors, counts, inverse = histogram.unique_colors(pixels)
    ref = naive.unique_colors(pixels)
    for got, want in zip((colors, counts, inverse), ref):
        np.testing.assert_array_equal(got, want)


def test_colour_table_shared_by_strips_gives_exact_nearest_with_runs(kodak):
    image = _photo(kodak).reshape(-1, 3)
    pixels = np.repeat(image[::5], 3, axis=0)  # runs of three
    palette = np.ascontiguousarray(image[::997][:40])
    table = remap.lut_table()
    got = np.concatenate(
        [remap.remap_lut(pixels[lo : lo + 777], palette, table=table)[0] for lo in range(0, len(pixels), 777)]
    )
    ref, dist = naive.nearest(pixels, palette)
    np.testing.assert_array_equal(got, ref)
    _, err = remap.remap_lut(pixels, palette, table=table)
    assert err == float(dist.sum())


def test_colour_table_holds_only_the_colours_met_and_takes_memory_only_for_them(kodak):
    """Each colour met holds its entry + 1, every other entry stays 0: the table is allocated
    as zero pages, which take memory only once written (32 MiB untouched is not resident)."""
    pixels = _photo(kodak).reshape(-1, 3)[::7]
    palette = np.ascontiguousarray(pixels[::331][:50])
    table = remap.lut_table()
    got, _ = remap.remap_lut(pixels, palette, table=table)
    keys = (pixels[:, 0].astype(np.int64) << 16) | (pixels[:, 1].astype(np.int64) << 8) | pixels[:, 2]
    assert np.count_nonzero(table) == len(np.unique(keys))
    np.testing.assert_array_equal(table[keys], got.astype(np.int16) + 1)
    if os.path.exists("/proc/self/statm"):
        page = os.sysconf("SC_PAGE_SIZE")

        def resident():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * page

        before = resident()
        fresh = remap.lut_table()
        assert resident() - before < 4 << 20 and fresh.nbytes == 32 << 20


def test_ssim_of_spread_bands_estimates_the_whole(kodak):
    a = _photo(kodak, (512, 768))
    b = np.clip(a.astype(int) + np.random.default_rng(0).integers(-12, 13, a.shape), 0, 255).astype(np.uint8)
    whole = metrics.ssim(a, b)
    part = metrics.ssim(a, b, max_pixels=a.shape[1] * 64 * 3)  # 3 of 8 bands
    assert part != whole
    assert part == pytest.approx(whole, abs=0.01)
    assert metrics.ssim(a, b, max_pixels=a.size) == whole  # at or under the bound: every band


def test_ssim_bands_reads_only_rows_it_is_given(kodak):
    a = _photo(kodak)
    b = a[::-1].copy()
    asked = []

    def rows(img):
        def get(lo, hi):
            asked.append(hi - lo)
            return img[lo:hi]

        return get

    assert metrics.ssim_bands(rows(a), rows(b), a.shape[:2]) == metrics.ssim(a, b)
    assert max(asked) <= 64 + 2 * 5 + 1  # a band and the window's margins


def test_rgba_cell_lists_match_naive_on_every_cell_a_colour_can_reach(kodak):
    """The candidate lists of remap_rgba's grid equal the naive ones on every cell that some uint8
    RGBA colour's composites point falls in; the other cells (no colour reaches them) stay empty."""
    image = _rgba(kodak).reshape(-1, 4)
    palette = np.concatenate([image[::997][:40], [[0, 0, 0, 0], [255, 255, 255, 255], [9, 200, 30, 3]]])
    points = colorspace.composites(np.ascontiguousarray(palette, np.uint8))
    reach = remap._reach(remap._GRID, tuple(remap._ORIGIN), tuple(remap._SIDE))
    starts, lists = remap._cell_lists(points, remap._GRID, remap._ORIGIN, remap._SIDE, reach)
    cells = naive.composites_cells(remap._GRID, remap._ORIGIN, remap._SIDE)
    assert 0 < len(cells) < remap._GRID**4
    for cell, ref in zip(cells, naive.grid_cell_lists(points, remap._GRID, remap._ORIGIN, remap._SIDE, cells)):
        np.testing.assert_array_equal(lists[starts[cell] : starts[cell + 1]], ref)
    sizes = np.diff(starts)
    unreached = np.ones(len(sizes), bool)
    unreached[cells] = False
    assert (sizes[unreached] == 0).all() and (sizes[cells] > 0).all()


@pytest.mark.parametrize("threads", [1, 3])
def test_remap_rgba_matches_naive_and_metrics(kodak, monkeypatch, threads):
    monkeypatch.setattr(fastquant.threads, "THREADS", threads)
    image = _rgba(kodak).reshape(-1, 4)
    pixels = np.repeat(image, 2, axis=0)  # runs, and every colour met again later in the cache
    pixels = np.concatenate([pixels, pixels[::-1]])
    palette = np.ascontiguousarray(image[::331][:50])
    search = remap.RGBASearch(palette)
    search.cache = np.full(64, remap._NO_SLOT)  # a tiny cache: collisions
    idx, sums = remap.remap_rgba(pixels, palette, search=search)
    ref, _ = naive.nearest(colorspace.composites(pixels), colorspace.composites(palette))
    np.testing.assert_array_equal(idx, ref)
    out = palette[idx]
    d = pixels.astype(np.int64) - out
    assert sums[0] == float((d * d).sum())
    assert sums[1] == pytest.approx(metrics.over_sq_error(pixels, out, 0), rel=1e-12)
    assert sums[2] == pytest.approx(metrics.over_sq_error(pixels, out, 255), rel=1e-12)
    assert sums[3] == metrics.alpha_error(pixels, out)
    again, sums2 = remap.remap_rgba(pixels, palette)
    np.testing.assert_array_equal(again, idx)
    np.testing.assert_array_equal(sums2, sums)  # the same floats whatever the cache and threads


def _png_rows(path, w, h, channels, row):
    """Write a PNG streaming its rows (``row(y0, n, w)`` -> (n, w * channels) uint8), in little memory."""
    import struct
    import zlib

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    comp = zlib.compressobj(1)
    with open(path, "wb") as f:
        f.write(
            b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2 if channels == 3 else 6, 0, 0, 0))
        )
        for y0 in range(0, h, 256):
            n = min(256, h - y0)
            raw = np.zeros((n, 1 + w * channels), np.uint8)
            raw[:, 1:] = row(y0, n, w)
            f.write(chunk(b"IDAT", comp.compress(raw.tobytes())))
        f.write(chunk(b"IDAT", comp.flush()) + chunk(b"IEND", b""))


def _peak_mb(*argv):
    """Peak resident memory (MB) of ``python -m fastquant ARGV`` in a fresh process, and its exit code."""
    import subprocess
    import sys

    # The command line's main(): ``python -m fastquant`` itself ends with os._exit, before a line
    # printed after it; the peak is the same.
    script = (
        "import resource, sys\nfrom fastquant.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, code, file=sys.stderr)\n"
    )
    r = subprocess.run([sys.executable, "-c", script, *map(str, argv)], capture_output=True, text=True, timeout=600)
    mb, code = r.stderr.strip().splitlines()[-1].split()
    return int(mb), int(code)


def _free_mb():
    try:
        with open("/proc/meminfo") as f:
            return int(next(ln for ln in f if ln.startswith("MemAvailable")).split()[1]) // 1024
    except (OSError, StopIteration):
        return 0


@pytest.mark.parametrize("kind", ["zeros", "unique"])
def test_memory_of_a_large_image_is_in_proportion(tmp_path, kind):
    """A 24 MP image of one colour, or of all-different RGBA colours, takes no more than
    the decoded image as Pillow holds it (4 bytes a pixel) plus a byte of index a pixel
    and a fixed margin, above what a tiny image takes; before the strip path it took
    several times that (a full int32 index, a colour table as large as the image,
    float64 SSIM maps, the image decoded twice)."""
    if _free_mb() < 3000:
        pytest.skip("needs 3 GB of free memory")
    w, h = 6000, 4000
    if kind == "zeros":
        channels, row = 3, lambda y0, n, w: 0
    else:

        def row(y0, n, w):
            i = (np.arange(y0 * w, (y0 + n) * w, dtype=np.uint64) * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)
            return i.astype(">u4").view(np.uint8).reshape(n, w * 4)

        channels = 4
    src = tmp_path / f"{kind}.png"
    _png_rows(src, w, h, channels, row)
    tiny = tmp_path / "tiny.png"
    _png_rows(tiny, 16, 16, channels, row if kind == "unique" else (lambda y0, n, w: 7))
    base, code = _peak_mb(tiny, "-o", tmp_path / "t-out.png", "-q")
    assert code == 0
    peak, code = _peak_mb(src, "-o", tmp_path / "out.png", "-q")
    assert code == 0
    # 250 MB of fixed cost: the sample's colour table and the k-means on it (capped, whatever the image)
    limit = (4 + 1) * w * h / 2**20 + 250
    assert peak - base <= limit, (peak, base, limit)


@pytest.mark.parametrize("limit", [1 << 20, 50, 13])
def test_count_colors_matches_naive_and_gives_up_past_its_limit(limit):
    rng = np.random.default_rng(4)
    pixels = np.repeat(rng.integers(0, 4, (3000, 3)).astype(np.uint8) * 80, rng.integers(1, 6, 3000), axis=0)
    ref_colors, ref_counts, _ = naive.unique_colors(pixels)
    colors, counts = histogram.count_colors(pixels, limit)
    if len(ref_colors) > limit:
        assert colors is None and counts is None
    else:
        np.testing.assert_array_equal(colors, ref_colors)
        np.testing.assert_array_equal(counts, ref_counts)


@pytest.mark.parametrize("n_colors, channels", [(40, 3), (40, 4), (300, 3), (300, 4)])
def test_large_graphics_match_the_array_path(monkeypatch, n_colors, channels):
    """Up to 256 colours, each pixel's colour index is kept while counting and mapped by lookup;
    past 256 the count goes on and the strips are mapped again: both as the array path does."""
    rng = np.random.default_rng(n_colors + channels)
    colors = rng.integers(0, 256, (n_colors, channels)).astype(np.uint8)
    if channels == 4:
        colors[:5, 3] = 0  # some fully transparent colours
    image = colors[np.repeat(rng.integers(0, n_colors, (90, 20)), 6, axis=1)]
    whole = fastquant.compress(image, 64)
    monkeypatch.setattr(config, "SAMPLE_PIXELS", 400)
    monkeypatch.setattr(config, "STRIP_PIXELS", 360)
    strips = fastquant.compress(image, 64)
    assert isinstance(strips, fastquant.Quantized)
    np.testing.assert_array_equal(strips.palette, whole.palette)
    np.testing.assert_array_equal(strips.indices, whole.indices)
    assert strips.stats.mse == whole.stats.mse
    if channels == 4:
        assert strips.stats.psnr_black == pytest.approx(whole.stats.psnr_black, rel=1e-12)
        assert strips.stats.alpha_max_error == whole.stats.alpha_max_error


def test_apply_in_place_matches_indexing():
    rng = np.random.default_rng(9)
    codes = rng.integers(0, 200, (37, 53)).astype(np.uint8)
    lut = rng.permutation(256)[:200].astype(np.uint8)
    want = lut[codes]
    remap.apply_in_place(lut, codes)
    np.testing.assert_array_equal(codes, want)
