"""Pillow in and out: compress() of PIL images, Quantized.to_pil(), and fastquant.quantize()."""

import io as pyio
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from fastquant import OptionError, compress, quantize
from tests.conftest import DATA

KODAK = DATA / "kodak" / "kodim03.png"
ICON = DATA / "alpha" / "tango32_face-smile.png"


def test_import_does_not_load_pillow():
    r = subprocess.run(
        [sys.executable, "-c", "import sys, fastquant; print('PIL' in sys.modules)"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr


def test_quantize_is_a_drop_in():
    with Image.open(KODAK) as im:
        q = quantize(im, 64)
    assert isinstance(q, Image.Image) and q.mode == "P" and q.size == (768, 512)
    assert len(q.getcolors(256)) <= 64
    ours = compress(KODAK, 64)  # the same picture as compress() of the file
    np.testing.assert_array_equal(np.asarray(q.convert("RGB")), ours.image)


def test_quantize_rgba_keeps_transparency_through_save(tmp_path):
    with Image.open(ICON) as im:
        assert im.mode == "RGBA"
        q = quantize(im, 16)
    assert q.mode == "P" and isinstance(q.info["transparency"], bytes)
    q.save(tmp_path / "x.png")
    with Image.open(tmp_path / "x.png") as back:
        assert back.mode == "P" and "transparency" in back.info
        rgba = np.asarray(back.convert("RGBA"))
    np.testing.assert_array_equal(rgba, compress(ICON, 16).image)


def test_to_pil_matches_the_result():
    q = compress(ICON, 8)
    im = q.to_pil()
    assert im.mode == "P"
    np.testing.assert_array_equal(np.asarray(im), q.indices)
    pal = np.array(im.getpalette("RGB"), np.uint8).reshape(-1, 3)[: len(q.palette)]
    np.testing.assert_array_equal(pal, q.palette[:, :3])
    alpha = np.frombuffer(im.info["transparency"], np.uint8)
    np.testing.assert_array_equal(alpha, q.palette[: len(alpha), 3])
    assert (q.palette[len(alpha) :, 3] == 255).all()
    opaque = compress(KODAK, 16).to_pil()
    assert opaque.mode == "P" and "transparency" not in opaque.info
    rgb = compress(KODAK, 300).to_pil()  # above 256 colours no mode P exists
    assert rgb.mode == "RGB"


@pytest.mark.parametrize(
    "dither, same_as",
    [(Image.Dither.FLOYDSTEINBERG, "fs"), (Image.Dither.NONE, None), (Image.Dither.ORDERED, "ordered"), ("fs", "fs")],
)
def test_quantize_dither_spellings(dither, same_as):
    got = np.asarray(quantize(str(KODAK), 16, dither=dither).convert("RGB"))
    np.testing.assert_array_equal(got, compress(KODAK, 16, dither=same_as).image)


@pytest.mark.parametrize("bad", [Image.Dither.RASTERIZE, "diffuse", 7, True])
def test_quantize_refuses_bad_dither(bad):
    with pytest.raises(OptionError, match="dither"):
        quantize(str(KODAK), 16, dither=bad)


def test_quantize_onto_a_pillow_palette_image():
    pal = Image.new("P", (1, 1))
    pal.putpalette([0, 0, 0, 255, 255, 255, 200, 30, 30])
    with Image.open(KODAK) as im:
        q = quantize(im, palette=pal)
        assert q.mode == "P"
        want = compress(KODAK, palette=[[0, 0, 0], [255, 255, 255], [200, 30, 30]]).image
    np.testing.assert_array_equal(np.asarray(q.convert("RGB")), want)
    used = {tuple(c) for c in np.asarray(q.convert("RGB")).reshape(-1, 3)}
    assert used <= {(0, 0, 0), (255, 255, 255), (200, 30, 30)}
    for bad in ({"method": 2}, {"kmeans": 1}, {"palette": Image.new("RGB", (1, 1))}):
        with pytest.raises(OptionError):
            quantize(str(KODAK), 16, **bad)


@pytest.mark.parametrize("colors", [0, 257, 2.5])
def test_quantize_refuses_bad_colors(colors):
    with pytest.raises(OptionError, match="colors"):
        quantize(str(KODAK), colors)


@pytest.mark.parametrize(
    "path",
    [
        "pngsuite/basn3p08.png",  # P
        "pngsuite/tbbn3p08.png",  # P with tRNS
        "odd/flower_small.ga.png",  # LA
        "odd/gray16bit_kodim03.png",  # 16-bit grey
        "odd/flower_small.cmyk.jpg",  # CMYK
        "odd/rgb16bit_kodim05.png",
        "pngsuite/tbrn2c08.png",  # RGB with a colour key
        "alpha/abc.png",
    ],
)
def test_pil_images_are_normalised_as_files_are(path):
    """Every mode is read as the same file read by path (none of these has an EXIF orientation)."""
    with Image.open(DATA / path) as im:
        mode = im.mode
        from_pil = compress(im, 32)
        assert im.mode == mode
        np.asarray(im)  # the caller's image is left open (a closed one raises here)
    from_file = compress(DATA / path, 32)
    np.testing.assert_array_equal(from_pil.original, from_file.original)
    np.testing.assert_array_equal(from_pil.image, from_file.image)
    assert from_pil.stats.input_bytes is None


def test_pil_palette_alpha_mode_pa():
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = np.arange(20).reshape(4, 5) * 10
    im = Image.fromarray(rgba, "RGBA").convert("PA")
    q = compress(im, 8)
    assert q.original.shape == (4, 5, 4)
    np.testing.assert_array_equal(q.original[..., 3], np.asarray(im.convert("RGBA"))[..., 3])


def test_pil_exif_orientation_is_the_callers_business():
    path = DATA / "odd" / "paris_exif_orientation_5.jpg"
    with Image.open(path) as im:
        w, h = im.size
        q = compress(im, 16)
    assert q.original.shape[:2] == (h, w)  # as stored, as Pillow shows it
    assert compress(path, 16).original.shape[:2] == (w, h)  # a file is turned upright


def test_pil_image_bounded_by_max_pixels():
    im = Image.new("RGB", (100, 100))
    with pytest.raises(Exception, match="more than the limit"):
        compress(im, 4, max_pixels=5000)


def test_lazily_opened_damaged_pil_image_is_an_input_error():
    data = KODAK.read_bytes()
    im = Image.open(pyio.BytesIO(data[: len(data) // 2]))
    from fastquant import InputError

    with pytest.raises(InputError, match="cannot decode"):
        compress(im, 16)


def test_quantize_refuses_an_animation_in_one_line():
    with pytest.raises(OptionError, match="animation"):
        quantize(DATA / "odd" / "traffic_light.gif", 16)
