"""Byte budgets (max_bytes, --max-bytes) and the rate-distortion-aware mapping (rd_lambda, --rd)."""

import io
import json
import sys

import numpy as np
import pytest
from PIL import Image

import fastquant
from fastquant import budget, colorspace, compress, config, png, rdmap
from fastquant import fit as fitting
from fastquant.errors import BudgetError, OptionError
from fastquant.prepare import Prepared

from . import naive
from .test_cli import run as _run

api = sys.modules["fastquant.api"]


@pytest.fixture(scope="module")
def photo(kodak):
    """A 160x240 piece of a Kodak photo: small enough for many trials."""
    with Image.open(kodak[2]) as im:
        return np.asarray(im.convert("RGB"))[100:260, 200:440].copy()


# ----------------------------------------------------------------------------- sizes


@pytest.mark.parametrize(
    "text, n",
    [
        ("100000", 100000),
        ("100k", 100000),
        ("100K", 100000),
        ("100kB", 100000),
        ("1.5M", 1500000),
        ("1.5mb", 1500000),
        ("200KiB", 204800),
        ("1Mi", 1048576),
        (" 2G ", 2 * 10**9),
        ("0.5k", 500),
        ("1.0009k", 1000),
    ],
)
def test_parse_bytes(text, n):
    assert budget.parse_bytes(text) == n


@pytest.mark.parametrize("text", ["", "k", "5q", "-3", "0", "0.4", "1e5", "10 kk", "nan"])
def test_parse_bytes_refuses(text):
    with pytest.raises(OptionError):
        budget.parse_bytes(text)


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "x", [100]])
def test_max_bytes_option_checked(photo, bad):
    with pytest.raises(OptionError):
        compress(photo, 16, max_bytes=bad)


def test_max_bytes_needs_an_indexed_png(photo):
    with pytest.raises(OptionError, match="256"):
        compress(photo, 300, max_bytes=10**6)


# ----------------------------------------------------------------------------- the search


def test_budget_is_respected_and_tight(photo):
    """Every budget is met by the real file; a smaller budget never gets more colours; the
    next larger palette (mapped the same way) would not have fitted the budget."""
    full = len(compress(photo, 256).encode(".png"))
    previous = None
    for fraction in (0.9, 0.6, 0.35):
        n = int(full * fraction)
        q = compress(photo, 256, max_bytes=n)
        size = len(q.encode(".png"))
        assert size <= n
        assert q.stats.max_bytes == n and q.stats.n_colors == len(q.palette)
        if previous is not None:
            assert q.stats.n_colors <= previous
        previous = q.stats.n_colors
        assert size > 0.8 * n  # the search used the budget: not a tiny palette far below it


class _Sized:
    """A trial of a made-up search: real size 100 + 10 k; the estimate off by ``bias``, and by
    another 1.5% in the "filtered" layout (every third k)."""

    def __init__(self, k, bias, rd=0.0, setting=0):
        self.k, self.rd, self.setting, self.score = k, rd, setting, None
        self.layout = "filtered" if k % 3 == 0 else "plain"
        self._real = 100 + 10 * k
        self.estimate = int(self._real * bias * (1.015 if self.layout == "filtered" else 1.0))
        self._nbytes = None
        self.encodes = 0

    def nbytes(self):
        if self._nbytes is None:
            self.encodes += 1
            self._nbytes = self._real
        return self._nbytes


def _made_up_search(bias, limit, made):
    def trial(k, f, rd, s):
        made.append(_Sized(k, bias, rd, s))
        return made[-1]

    return budget.Search([lambda k: None], 256, limit, "x", trial)


@pytest.mark.parametrize("tolerance", [0.0, config.BUDGET_K_TOLERANCE])
def test_budget_search_finds_the_largest_fitting_k(monkeypatch, tolerance):
    """With sizes that grow with k, the search keeps the largest k whose real size fits (within the
    tolerance), whatever the estimates (too small, right, too large, and off by another 1.5% in one
    layout), in few trials and fewer real encodes; the smallest palette that does not fit is the error."""
    monkeypatch.setattr(config, "BUDGET_K_TOLERANCE", tolerance)
    for bias in (0.9, 1.0, 1.2):
        for limit in (125, 1000, 1005, 2650, 2659, 2660):
            made = []
            search = _made_up_search(bias, limit, made)
            first = search.trial(0, 256, 0.0)
            search.real_size(first)
            search.boundary(0, 0.0, 256)
            got = search.choose(lambda t: t.k)
            assert got.nbytes() <= limit
            want = min(256, (limit - 100) // 10)
            assert want * (1 - tolerance) - 1 <= got.k <= want
            assert len(made) <= 14 and sum(t.encodes for t in made) <= 6
            assert len({t.k for t in made}) == len(made)  # no palette size tried twice
    with pytest.raises(BudgetError, match="even 2 colours take 120 bytes"):
        search = _made_up_search(1.0, 119, [])
        search.boundary(0, 0.0, 256)
        search.choose(lambda t: t.k)


def test_budget_search_confirms_the_best_candidate():
    """The kept trial is the best-ranked of those whose real file fits among all the trials
    made: one predicted to fit that does not is encoded, rescales its neighbours, and loses."""
    made = []
    search = _made_up_search(0.9, 1500, made)  # every estimate 10% optimistic
    search.boundary(0, 0.0, 256)  # no real size known: predictions are the raw estimates
    got = search.choose(lambda t: t.k)
    assert got.k == 140 and got.nbytes() <= 1500
    assert all(t.k <= got.k for t in made if t._nbytes is not None and t._nbytes <= 1500)
    assert any(t._nbytes is not None and t._nbytes > 1500 for t in made)  # one was tried and lost


def test_generous_budget_is_the_plain_result(photo):
    """A budget that the full palette fits: the result of the budget's mapping space, unsearched."""
    plain = compress(photo, 64, luma_stretch=config.BUDGET_LUMA_STRETCH)
    q = compress(photo, 64, max_bytes=10**7)
    assert np.array_equal(q.palette, plain.palette) and np.array_equal(q.indices, plain.indices)
    # The same picture, written by the smaller encoder a budget uses.
    assert q.png_level is None and plain.png_level == 9
    assert q.encode(".png") == png.png_indexed(plain.indices, plain.palette)
    assert len(q.encode(".png")) < len(plain.encode(".png"))


def test_impossible_budget(photo):
    with pytest.raises(BudgetError, match="even 2 colours take") as e:
        compress(photo, 256, max_bytes=100)
    assert e.value.exit_code == 97


def test_budget_with_alpha_and_icc(kodak):
    with Image.open(kodak[0]) as im:
        rgb = np.asarray(im.convert("RGB"))[:128, :192]
    alpha = np.tile(np.linspace(0, 255, 192).astype(np.uint8), (128, 1))
    rgba = np.dstack([rgb, alpha])
    full = len(compress(rgba, 128).encode(".png"))
    q = compress(rgba, 128, max_bytes=full // 2)
    assert q.palette.shape[1] == 4 and len(q.encode(".png")) <= full // 2


def test_budget_with_dither(photo):
    full = len(compress(photo, 128, dither="fs").encode(".png"))
    q = compress(photo, 128, dither="fs", max_bytes=full * 2 // 3)
    assert len(q.encode(".png")) <= full * 2 // 3


def test_quality_and_budget(photo):
    """The fewest colours reaching MAX when that file fits; the budget when it does not; MIN still binds."""
    by_quality = compress(photo, 256, quality=(0, 80), luma_stretch=config.BUDGET_LUMA_STRETCH)
    size = len(by_quality.encode(".png"))
    q = compress(photo, 256, quality=(0, 80), max_bytes=size)
    assert np.array_equal(q.palette, by_quality.palette) and np.array_equal(q.indices, by_quality.indices)
    assert len(q.encode(".png")) <= size
    tight = compress(photo, 256, quality=(0, 80), max_bytes=size // 2)
    assert len(tight.encode(".png")) <= size // 2 and tight.stats.n_colors <= by_quality.stats.n_colors
    with pytest.raises(fastquant.QualityError, match="the most that fit"):
        compress(photo, 256, quality=(75, 80), max_bytes=size // 8)


def test_save_with_budget(photo, tmp_path):
    q = compress(photo, 256)
    full = len(q.encode(".png"))
    out = tmp_path / "a.png"
    assert q.save(out, max_bytes=full) == full  # fits as it is: the same file
    assert out.read_bytes() == q.encode(".png")
    n = q.save(out, max_bytes=full // 2)
    assert n == out.stat().st_size <= full // 2
    assert out.read_bytes() == q.encode(".png")  # the object became what was written
    assert q.stats.max_bytes == full // 2
    with Image.open(out) as im:
        assert np.array_equal(np.asarray(im.convert("RGB")), q.image)
    with pytest.raises(BudgetError):
        q.save(tmp_path / "b.png", max_bytes=50)
    assert not (tmp_path / "b.png").exists()
    with pytest.raises(OptionError):
        q.save(tmp_path / "c.gif", max_bytes=full)


# ----------------------------------------------------------------------------- command line


def test_cli_max_bytes(capsys, kodak, tmp_path):
    out = tmp_path / "a.png"
    code, stdout, err = _run(capsys, kodak[0], "-o", out, "--max-bytes", "150k", "--max-side", "300", "--json")
    assert code == 0 and err == []
    rec = json.loads(stdout)
    assert rec["max_bytes"] == 150000 and rec["output_bytes"] == out.stat().st_size <= 150000
    with Image.open(out) as im:
        assert len(im.getcolors(256)) == rec["n_colors"]
    code, stdout, err = _run(capsys, kodak[0], "-o", out, "--max-bytes", "60k", "--max-side", "300", "-f")
    assert code == 0 and f"k={len(Image.open(out).getcolors(256))} fits --max-bytes 60000" in stdout
    assert out.stat().st_size <= 60000


def test_cli_impossible_budget(capsys, kodak, tmp_path):
    out = tmp_path / "a.png"
    code, stdout, err = _run(capsys, kodak[0], "-o", out, "--max-bytes", "1k", "--max-side", "200")
    assert code == 97 and stdout == ""
    assert len(err) == 1 and "more than the budget of 1000 bytes; nothing written" in err[0]
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == []


def test_cli_max_bytes_refusals(capsys, kodak, tmp_path):
    code, _, err = _run(capsys, kodak[0], "-o", tmp_path / "a.gif", "--max-bytes", "100k")
    assert code == 2 and "budgets PNG outputs" in err[0]
    code, _, err = _run(capsys, kodak[0], "-o", tmp_path / "a.png", "--max-bytes", "100q")
    assert code == 2 and "--max-bytes" in err[0]
    code, _, err = _run(capsys, kodak[0], "-o", tmp_path / "a.png", "--rd", "-1")
    assert code == 2 and "--rd" in err[0]
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- rate-distortion mapping


def _mapping_inputs(image, k, space="rgb", seed=0):
    p = Prepared(image.copy(), None, None)
    km = dict(seed=seed, max_iter=10, tol=1e-2, init="wu", swap_rounds=0)
    f = fitting.fit(p, k, km, space, lambda s: None)
    lut = np.empty(f.n_entries, np.uint8 if len(f.palette) <= 256 else np.uint16)
    lut[f.order] = np.arange(len(f.order))
    return p, f.palette, lut[f.labels]


@pytest.mark.parametrize("lam", [0.0, 7.0, 40.0, 300.0])
def test_rd_kernel_matches_naive(photo, lam):
    image = photo[:32, :48]  # big enough that lam=7 moves a few pixels
    p, palette, per_color = _mapping_inputs(image, 12)
    pts = p.colors.astype(np.float32)
    got, err = rdmap.rd_map(p.inverse, (p.h, p.w), pts, palette, per_color, lam, p.colors, palette)
    want, want_err = naive.rd_map(p.inverse, (p.h, p.w), pts, palette, per_color, lam, p.colors, palette)
    assert np.array_equal(got, want) and err == want_err
    if lam == 0:
        assert np.array_equal(got, per_color[p.inverse].reshape(p.h, p.w))
    else:
        assert not np.array_equal(got, per_color[p.inverse].reshape(p.h, p.w))


def test_rd_kernel_matches_naive_premultiplied(photo):
    rng = np.random.default_rng(3)
    alpha = rng.integers(1, 256, photo[:20, :30].shape[:2]).astype(np.uint8)
    image = np.dstack([photo[:20, :30], alpha])
    p, palette, per_color = _mapping_inputs(image, 10, "premultiplied")
    pts, ents = colorspace.premultiply(p.colors), colorspace.premultiply(palette)
    got, err = rdmap.rd_map(p.inverse, (p.h, p.w), pts, ents, per_color, 25.0, p.colors, palette)
    want, want_err = naive.rd_map(p.inverse, (p.h, p.w), pts, ents, per_color, 25.0, p.colors, palette)
    assert np.array_equal(got, want) and err == want_err


def test_rd_mapping_trades_error_for_bytes(photo):
    sizes, errors = [], []
    for lam in (0, 10, 40):
        q = compress(photo, 128, rd_lambda=lam)
        sizes.append(len(q.encode(".png")))
        errors.append(q.stats.mse)
        assert q.stats.mse == pytest.approx(np.mean((q.image.astype(float) - photo) ** 2))
    assert sizes[0] > sizes[1] > sizes[2] and errors[0] < errors[1] < errors[2]
    assert np.array_equal(compress(photo, 128, rd_lambda=0).indices, compress(photo, 128).indices)


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), "x", True])
def test_rd_lambda_checked(photo, bad):
    with pytest.raises(OptionError):
        compress(photo, 16, rd_lambda=bad)


def test_rd_lambda_excludes_dither(photo):
    with pytest.raises(OptionError, match="dither"):
        compress(photo, 16, rd_lambda=5, dither="fs")


def test_fast_speeds_write_with_zlib(photo, tmp_path):
    """speed 1-3 deflate with fastquant's own encoder (smaller, slower), faster speeds with zlib;
    a budget is searched with the encoder the file is written with (the own one below speed 10)."""
    from fastquant import png

    slow, fast = compress(photo, 128, speed=3), compress(photo, 128, speed=4)
    assert slow.png_level is None and fast.png_level == 9
    assert compress(photo, 128, speed=9, max_bytes=10**7).png_level is None
    assert compress(photo, 128, speed=10, max_bytes=10**7).png_level == 9
    assert fast.encode(".png") == png.png_indexed(fast.indices, fast.palette, level=9)
    assert slow.encode(".png") == png.png_indexed(slow.indices, slow.palette)
    assert len(slow.encode(".png")) < len(png.png_indexed(slow.indices, slow.palette, level=9))
    fast.save(tmp_path / "a.png")
    assert (tmp_path / "a.png").read_bytes() == fast.encode(".png")
    n = len(fast.encode(".png")) * 2 // 3
    q = compress(photo, 128, speed=10, max_bytes=n)
    assert len(q.encode(".png")) <= n


def test_cli_default_writes_zlib(capsys, kodak, tmp_path):
    out = tmp_path / "a.png"
    code, _, err = _run(capsys, kodak[0], "-o", out, "--max-side", "200")
    assert code == 0 and err == []
    q = compress(str(kodak[0]), 256, resize=200)
    assert out.read_bytes() == q.encode(".png") and q.png_level == 9


# ----------------------------------------------------------------------------- the luma stretch


@pytest.mark.parametrize("bad", [0, -1.5, float("nan"), float("inf"), "x", True])
def test_luma_stretch_checked(photo, bad):
    with pytest.raises(OptionError, match="luma_stretch"):
        compress(photo, 16, luma_stretch=bad)


@pytest.mark.parametrize("stretch", [1.0, 1.6, 2.5])
def test_luma_stretch_maps_to_the_nearest_entry_in_the_stretched_space(photo, stretch):
    """Every pixel gets its nearest entry with the luma axis stretched (brute force, naive
    stretch); the stats measure the picture made, in sRGB."""
    q = compress(photo, 48, luma_stretch=stretch)
    pts = naive.stretch_luma(photo.reshape(-1, 3), stretch).astype(np.float64)
    ents = naive.stretch_luma(q.palette, stretch).astype(np.float64)
    d = ((pts[:, None, :] - ents[None, :, :]) ** 2).sum(axis=2)
    got = d[np.arange(len(d)), q.indices.reshape(-1)]
    assert np.allclose(got, d.min(axis=1), rtol=1e-5, atol=1e-3)
    assert q.stats.mse == pytest.approx(np.mean((q.image.astype(float) - photo) ** 2))


def test_luma_stretch_trades_psnr_for_ssim(photo):
    """Luma errors weighing more: SSIM (luma) up, PSNR (R, G, B) down."""
    plain = compress(photo, 32, luma_stretch=1.0, ssim=True)
    luma = compress(photo, 32, luma_stretch=2.0, ssim=True)
    assert luma.stats.ssim > plain.stats.ssim and luma.stats.psnr < plain.stats.psnr


def _score(photo, q):
    ssim = fastquant.metrics.ssim(photo, q.image)
    return q.stats.psnr - config.BUDGET_SSIM_WEIGHT * 10 * np.log10(1 - ssim)


def _spy_trials(monkeypatch):
    made = []
    init = budget.Trial.__init__

    def spy(self, *a, **kw):
        init(self, *a, **kw)
        made.append(self)

    monkeypatch.setattr(budget.Trial, "__init__", spy)
    return made


def test_budget_keeps_the_best_candidate(photo, monkeypatch):
    """A binding budget with the mapping left to it searches (BUDGET_LUMA_STRETCH, BUDGET_RD_LAMBDA),
    every pair of BUDGET_ALTERNATIVES and stronger RD mappings of the best (BUDGET_RD_STEPS), and
    keeps the picture of the highest PSNR + weight x SSIM in dB among the files that fit: no trial
    encoded for real that fits scores higher, and most trials are only estimated.  With no
    alternatives and no steps, the first pair alone.  Other colour spaces ignore luma_stretch."""
    made = _spy_trials(monkeypatch)
    n = int(len(compress(photo, 256).encode(".png")) * 0.7)
    got = compress(photo, 256, max_bytes=n)
    data = got.encode(".png")
    assert len(data) <= n
    stretches = {config.BUDGET_LUMA_STRETCH} | {s for s, _ in config.BUDGET_ALTERNATIVES}
    assert {t.fit.stretch for t in made} == stretches and len(stretches) > 1
    assert {lam for _, lam in config.BUDGET_ALTERNATIVES} <= {t.rd for t in made}
    assert len({(t.fit.stretch, t.rd) for t in made}) > 1 + len(stretches)  # nearest, each pair, a step
    fitting_real = [t for t in made if t._nbytes is not None and t._nbytes <= n]
    assert max(t.score for t in fitting_real) == pytest.approx(_score(photo, got), abs=1e-6)
    assert sum(t._nbytes is not None for t in made) <= len(made) // 3
    made.clear()
    assert compress(photo, 256, max_bytes=n).encode(".png") == data  # deterministic
    monkeypatch.setattr(config, "BUDGET_ALTERNATIVES", ())
    monkeypatch.setattr(config, "BUDGET_RD_STEPS", ())
    alone = compress(photo, 256, max_bytes=n)
    first = compress(
        photo, 256, max_bytes=n, luma_stretch=config.BUDGET_LUMA_STRETCH, rd_lambda=config.BUDGET_RD_LAMBDA
    )
    assert np.array_equal(alone.indices, first.indices) and np.array_equal(alone.palette, first.palette)
    assert compress(photo, 64, colorspace="oklab", luma_stretch=3.0).encode(".png") == compress(
        photo, 64, colorspace="oklab"
    ).encode(".png")


def test_size_estimate_follows_the_layout_written(photo):
    """png.estimate: the zlib size of the file in the layout png_indexed writes (plain: exactly the
    file at that zlib level), a few percent from the real encoder's."""
    for k, rd in ((200, 0.0), (40, 30.0), (3, 0.0)):
        q = compress(photo, k, rd_lambda=rd)
        est, layout = png.estimate(q.indices, q.palette)
        real = png.png_indexed(q.indices, q.palette)
        moved = not np.array_equal(np.asarray(Image.open(io.BytesIO(real))), q.indices)
        assert layout == ("filtered" if moved else "plain")
        if layout == "plain":
            assert est == len(png.png_indexed(q.indices, q.palette, level=config.LAYOUT_LEVEL))
        assert 0.8 < len(real) / est < 1.05
        assert png.estimate(q.indices, q.palette, level=9) == (
            len(png.png_indexed(q.indices, q.palette, level=config.LAYOUT_LEVEL)),
            "plain",
        )
