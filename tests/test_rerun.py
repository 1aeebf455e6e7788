"""Re-runs that do not degrade: an image of at most k colours comes out with the same pixels,
whatever the quality target or dithering; a run on its own output changes nothing.
"""

import numpy as np
import pytest
from PIL import Image

import fastquant
from fastquant import cli, config

from .conftest import DATA

OPTIONS = [
    {"n_colors": 64},
    {"n_colors": 256, "quality": (0, 80)},
    {"n_colors": 48, "dither": "ordered"},
    {"n_colors": 32, "dither": "fs", "quality": 90},
]


def pixels(path):
    """The decoded pixels as Pillow (not fastquant) reads them, RGBA when there is transparency."""
    with Image.open(path) as im:
        im.load()
        trans = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
        return np.asarray(im.convert("RGBA" if trans else "RGB"))


@pytest.fixture(scope="module")
def sources():
    photo = np.asarray(Image.open(DATA / "kodak" / "kodim03.png").convert("RGB"))[100:228, 200:392].copy()
    icon = np.asarray(Image.open(DATA / "alpha" / "tango-icon-address-book-new-128-rsvg-convert.png"))
    assert icon.shape[2] == 4 and 0 < (icon[:, :, 3] == 0).mean() < 1
    return {"rgb": photo, "rgba": icon}


@pytest.mark.parametrize("kind", ["rgb", "rgba"])
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(f"{k}{v}" for k, v in o.items()))
def test_api_rerun_on_its_own_output_is_pixel_identical(sources, kind, options):
    first = fastquant.compress(sources[kind], **options)
    assert first.stats.n_colors < len(np.unique(first.original.reshape(-1, first.original.shape[2]), axis=0))
    again = fastquant.compress(first.encode(".png"), **options)
    np.testing.assert_array_equal(again.image, first.image)
    assert again.stats.psnr == float("inf") and again.stats.n_colors == first.stats.n_colors
    if "quality" in options:
        assert again.stats.quality == 100


def _few_colors(n, shape=(60, 80), alpha=False, seed=3):
    rng = np.random.default_rng(seed)
    colors = rng.integers(0, 256, (n, 4 if alpha else 3)).astype(np.uint8)
    if alpha:
        colors[:3, 3] = (0, 40, 255)  # a clear, a faint and an opaque colour at least
        colors[0] = 0
    image = colors[rng.integers(0, n, shape)]
    image[0, 0] = colors[n - 1]  # every colour at least once
    return image


@pytest.mark.parametrize("alpha", [False, True])
@pytest.mark.parametrize(
    "options",
    [{"dither": "ordered"}, {"dither": "fs", "dither_strength": 1.0}, {"quality": (0, 30)}, {"colorspace": "oklab"}],
)
def test_few_colours_are_kept_whatever_the_options(alpha, options):
    image = _few_colors(40, alpha=alpha)
    q = fastquant.compress(image, 40, **options)
    np.testing.assert_array_equal(q.image, image)
    assert q.stats.n_colors == len(np.unique(image.reshape(-1, image.shape[2]), axis=0))
    # one colour fewer than the image has: quantized as before, and the options have their say
    fewer = fastquant.compress(image, 39, **options)
    assert not np.array_equal(fewer.image, image)


def test_large_image_of_few_colours_is_counted_whole_and_kept(monkeypatch):
    # 300 colours (more than a byte of codes), one of them on a single pixel that an
    # even sample misses: above FEW_COLORS, kept only because -k 512 holds them all.
    colors = np.unique(np.random.default_rng(1).integers(0, 256, (400, 3)).astype(np.uint8), axis=0)[:300]
    idx = np.arange(200 * 240) % 299
    idx[-1] = 299
    image = colors[idx].reshape(200, 240, 3)
    monkeypatch.setattr(config, "SAMPLE_PIXELS", 2000)
    monkeypatch.setattr(config, "STRIP_PIXELS", 4000)
    monkeypatch.setattr(config, "FEW_COLORS", 16)
    q = fastquant.compress(image, 512, dither="ordered")
    np.testing.assert_array_equal(q.image, image)
    assert q.stats.psnr == float("inf")


# ----------------------------------------------------------------------------- command line


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if not line.startswith("fastquant: compiling")]


@pytest.mark.parametrize("kind", ["rgb", "rgba"])
@pytest.mark.parametrize("args", [["-k", "64"], ["--quality", "60-80"], ["-k", "32", "--dither", "ordered"]])
def test_cli_rerun_on_its_own_output_is_pixel_identical(capsys, tmp_path, sources, kind, args):
    src = tmp_path / "x.png"
    Image.fromarray(sources[kind]).save(src)
    code, _, err = run(capsys, src, *args)
    first = tmp_path / ("x-fq64.png" if args[1] == "64" else "x-fq32.png" if args[1] == "32" else "x-fq256.png")
    assert code == 0 and first.exists() and err == []
    code, _, err = run(capsys, first, *args, "-o", tmp_path / "again.png")
    assert code == 0
    np.testing.assert_array_equal(pixels(tmp_path / "again.png"), pixels(first))
    assert not np.array_equal(pixels(first), pixels(src))  # the first run did change pixels
    # (a re-encoded palette may come out a byte larger than the input: that warning may come too)
    notes = [e for e in err if "named like an earlier output" in e]
    assert len(notes) == 1 and str(first) in notes[0]
    assert all(e in notes or "larger than the input" in e for e in err)


def test_cli_note_once_for_many_and_folder_scans_skip_outputs(capsys, tmp_path):
    for name in ("a.png", "b.png"):
        Image.fromarray(_few_colors(20)).save(tmp_path / name)
    assert run(capsys, tmp_path, "-k", "16")[0] == 0
    outputs = sorted(tmp_path.glob("*-fq16.png"))
    assert len(outputs) == 2
    code, out, err = run(capsys, tmp_path, "-k", "16", "-f")  # the scan skips the outputs, and says nothing
    assert code == 0 and not any("named like" in e for e in err)
    assert not list(tmp_path.glob("*-fq16-fq16.png")) and len(out.splitlines()) == 2
    code, _, err = run(capsys, *outputs, "--ext", ".again.png")
    assert code == 0
    notes = [e for e in err if "named like" in e]
    assert len(notes) == 1 and "2 inputs" in notes[0]
    for o in outputs:
        np.testing.assert_array_equal(pixels(str(o).replace("-fq16.png", "-fq16.again.png")), pixels(o))
    code, _, err = run(capsys, outputs[0], "-q", "-f", "--ext", ".again.png")
    assert code == 0 and err == []


def test_few_colours_with_fixed_colours_keep_both():
    image = _few_colors(20)
    fixed = np.array([[1, 2, 3], image[5, 5]], np.uint8)  # one the image lacks, one it has
    q = fastquant.compress(image, 21, fixed_colors=fixed, dither="ordered")
    np.testing.assert_array_equal(q.image, image)
    assert {tuple(c) for c in fixed} <= {tuple(c) for c in q.palette}
