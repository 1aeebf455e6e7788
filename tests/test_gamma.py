"""Colour management basics: a PNG with gAMA (and neither sRGB nor iCCP) is converted to the sRGB
values a gamma-aware viewer shows, before quantizing; ICC profiles are kept with keep_metadata.
"""

import io as pyio
import json
import struct

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

import fastquant
from fastquant import cli, metrics

from . import naive
from .conftest import DATA

SUITE = DATA / "pngsuite"


def raw(path, mode="RGB"):
    """The samples as stored, without colour management (Pillow applies none)."""
    with Image.open(path) as im:
        return np.asarray(im.convert(mode))


def png_with(chunks, pixels):
    """PNG bytes of ``pixels`` with extra chunks (gAMA, sRGB...) before the image data."""
    info = PngImagePlugin.PngInfo()
    for cid, data in chunks:
        info.add(cid, data)
    buf = pyio.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def gama(gamma):
    return (b"gAMA", struct.pack(">I", round(gamma * 100000)))


@pytest.mark.parametrize("name", ["g03n2c08.png", "g07n2c08.png", "g10n2c08.png", "g25n2c08.png", "g25n3p04.png"])
def test_gamma_png_is_read_as_the_srgb_a_viewer_shows(name):
    path = SUITE / name
    expected = naive.shown_srgb(path, raw(path))
    assert not np.array_equal(expected, raw(path))  # the conversion is not a no-op here
    np.testing.assert_array_equal(fastquant.compress(path, 256).original, expected)


def test_gamma_near_srgb_and_colour_managed_files_are_left_alone():
    pixels = np.random.default_rng(0).integers(0, 256, (8, 9, 3), dtype=np.uint8)
    srgb = (b"sRGB", b"\x00")
    icc = Image.open(DATA / "skimage" / "chelsea.png").info["icc_profile"]
    for chunks in ([gama(1 / 2.2)], [gama(0.46)], [gama(1.0), srgb]):
        np.testing.assert_array_equal(fastquant.compress(png_with(chunks, pixels), 256).original, pixels)
    info = PngImagePlugin.PngInfo()
    info.add(*gama(1.0))
    buf = pyio.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG", pnginfo=info, icc_profile=icc)
    np.testing.assert_array_equal(fastquant.compress(buf.getvalue(), 256).original, pixels)
    # and a gamma that is not sRGB's, alone, is converted (alpha untouched)
    rgba = np.dstack([pixels, np.arange(72, dtype=np.uint8).reshape(8, 9)])
    q = fastquant.compress(png_with([gama(1.0)], rgba), 256)
    assert not np.array_equal(q.original[:, :, :3], pixels)
    np.testing.assert_array_equal(q.original[:, :, 3], rgba[:, :, 3])


def shown(path):
    """What a gamma-aware viewer shows of a PNG file: its sRGB values (the reference)."""
    return naive.shown_srgb(path, raw(path)).astype(np.float64)


@pytest.mark.parametrize("name", ["g10n2c08.png", "g25n2c08.png"])
def test_output_looks_as_the_input_does_in_a_gamma_aware_viewer(capsys, tmp_path, name):
    src, out = SUITE / name, tmp_path / "out.png"
    assert cli.main([str(src), "-k", "8", "-o", str(out), "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    with Image.open(out) as im:
        assert "gamma" not in im.info and "srgb" not in im.info  # plain sRGB values, as viewers assume
    seen = metrics.psnr(shown(src), shown(out))
    assert rec["psnr"] == pytest.approx(seen, abs=0.01)  # the figure is of what is seen
    # the old way (samples quantized as stored, gAMA dropped) looked far worse
    old = fastquant.compress(raw(src), 8).image
    assert seen > metrics.psnr(shown(src), old.astype(np.float64)) + 5  # see bench/results/gamma.md
    # and a re-run on the output keeps its pixels
    np.testing.assert_array_equal(fastquant.compress(out, 8).image, raw(out))


def test_keep_metadata_keeps_the_icc_profile_and_its_values(capsys, tmp_path):
    src, out = DATA / "skimage" / "chelsea.png", tmp_path / "c.png"
    assert cli.main([str(src), "-k", "64", "-o", str(out), "--keep-metadata", "-q"]) == 0
    with Image.open(src) as a, Image.open(out) as b:
        assert b.info["icc_profile"] == a.info["icc_profile"]
    assert metrics.psnr(raw(src), raw(out)) > 30  # values as stored: the profile says what they mean
