"""Figures that describe what was written: a lossy output is measured as the file decodes, and
an image with transparency is judged by its composites (the lower of over black and over white).
"""

import json

import numpy as np
import pytest
from PIL import Image

import fastquant
from fastquant import cli, metrics

from .conftest import DATA

ICON = DATA / "alpha" / "tango-icon-address-book-new-128-rsvg-convert.png"


def pillow(path, mode):
    with Image.open(path) as im:
        return np.asarray(im.convert(mode))


def over_white(rgba):
    """Independent of fastquant: Pillow's alpha_composite onto white, rounded as written."""
    a = rgba[:, :, 3:].astype(np.float64) / 255
    return np.floor(rgba[:, :, :3] * a + 255 * (1 - a) + 0.5).astype(np.uint8)


def run_json(capsys, *argv):
    code = cli.main([str(a) for a in argv] + ["--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out.splitlines()[0])


@pytest.fixture
def photo(kodak, tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(pillow(kodak[2], "RGB")[64:320, 128:512]).save(path)
    return path


@pytest.mark.parametrize("ext", [".jpg", ".jpeg"])
def test_jpeg_output_reports_the_psnr_of_the_file_as_written(capsys, photo, tmp_path, ext):
    out = tmp_path / f"small{ext}"
    rec = run_json(capsys, photo, "-k", "64", "-o", out)
    measured = metrics.psnr(pillow(photo, "RGB"), pillow(out, "RGB"))
    assert rec["psnr"] == pytest.approx(measured, abs=0.1)
    assert rec["ssim"] == pytest.approx(metrics.ssim(pillow(photo, "RGB"), pillow(out, "RGB")), abs=1e-4)
    assert rec["psnr_quantized"] > rec["psnr"] + 0.3  # JPEG loses more: the two are told apart
    # and the line says which figure it is
    cli.main([str(photo), "-k", "64", "-o", str(tmp_path / f"line{ext}")])
    line = capsys.readouterr().out
    assert f"PSNR {rec['psnr']:.2f} dB as written ({rec['psnr_quantized']:.2f} dB quantized)" in line


def test_png_output_keeps_the_quantized_figures(capsys, photo, tmp_path):
    out = tmp_path / "small.png"
    rec = run_json(capsys, photo, "-k", "64", "-o", out)
    assert rec["psnr"] == rec["psnr_quantized"]
    assert rec["psnr"] == pytest.approx(metrics.psnr(pillow(photo, "RGB"), pillow(out, "RGB")), abs=1e-3)


def test_transparent_output_flattened_into_jpeg_is_measured_over_white(capsys, tmp_path):
    out = tmp_path / "icon.jpg"
    rec = run_json(capsys, ICON, "-k", "32", "-o", out)
    src = pillow(ICON, "RGBA").copy()
    src[src[:, :, 3] == 0] = 0
    measured = metrics.psnr(over_white(src), pillow(out, "RGB"))
    assert rec["psnr"] == pytest.approx(measured, abs=0.1)
    assert rec["psnr_black"] is None and rec["alpha_max_error"] is None  # the file has no alpha


def test_transparent_gif_is_measured_with_its_one_bit_transparency(capsys, tmp_path):
    out = tmp_path / "icon.gif"
    rec = run_json(capsys, ICON, "-k", "32", "-o", out)
    src = pillow(ICON, "RGBA").copy()
    src[src[:, :, 3] == 0] = 0
    written = pillow(out, "RGBA")
    assert set(np.unique(written[:, :, 3])) <= {0, 255}
    black, white = metrics.psnr_over(src, written, 0), metrics.psnr_over(src, written, 255)
    assert rec["psnr"] == pytest.approx(min(black, white), abs=1e-3)
    assert rec["psnr"] < rec["psnr_quantized"]  # soft edges made hard


def test_transparent_icon_headline_is_the_lower_composite(capsys, tmp_path):
    q = fastquant.compress(ICON, 16)
    s = q.stats
    assert s.psnr == min(s.psnr_black, s.psnr_white)
    assert s.psnr_black != s.psnr_white
    assert s.psnr == pytest.approx(
        min(metrics.psnr_over(q.original, q.image, 0), metrics.psnr_over(q.original, q.image, 255)), rel=1e-9
    )
    # not the straight RGBA figure, which counts colour differences nobody sees
    assert s.psnr != pytest.approx(metrics.psnr(q.original, q.image), abs=0.01)
    assert s.mse == pytest.approx(metrics.mse(q.original, q.image), rel=1e-12)
    rec = run_json(capsys, ICON, "-k", "16", "-o", tmp_path / "icon.png")
    assert rec["psnr"] == min(rec["psnr_black"], rec["psnr_white"]) == pytest.approx(s.psnr, abs=1e-3)
