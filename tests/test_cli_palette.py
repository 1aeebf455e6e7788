"""The command line's palette options: --shared, --map, --fixed-colors, --save-palette."""

import json

import numpy as np
import pytest
from PIL import Image

from fastquant import Palette, palette
from fastquant.io import read_image

from . import naive
from .test_cli import run, sha


@pytest.fixture
def crops(kodak, tmp_path):
    """Four small photo crops as PNG files in tmp_path/in (four: -j 2 then runs on workers)."""
    folder = tmp_path / "in"
    folder.mkdir()
    paths = []
    for i, src in enumerate(kodak[:4]):
        p = folder / f"c{i}.png"
        Image.fromarray(read_image(src)[0][100 : 100 + 48 + 8 * i, 200:280]).save(p)
        paths.append(p)
    return paths


def _plte(path):
    with Image.open(path) as im:
        assert im.mode == "P"
        return np.array(im.getpalette()[: 3 * len(im.getcolors())], np.uint8).reshape(-1, 3), np.asarray(im)


def test_shared_gives_every_file_the_palette_fitted_on_all(capsys, crops, tmp_path):
    code, out, err = run(capsys, *crops, "--shared", "-k", "24", "--out-dir", tmp_path / "out")
    assert code == 0, err
    expected = palette(crops, 24).colors
    for c in crops:
        with Image.open(tmp_path / "out" / f"{c.stem}-fq24.png") as im:
            plte = np.array(im.getpalette(), np.uint8).reshape(-1, 3)[: len(expected)]
        np.testing.assert_array_equal(plte, expected)
    assert len(out.splitlines()) == 4  # the per-file lines, as without --shared
    line = [e for e in err if "shared palette" in e]
    assert len(line) == 1 and "24 colours fitted on 4 files" in line[0]
    assert f"union PSNR {palette(crops, 24).psnr:.2f} dB" in line[0]


def test_shared_bytes_do_not_depend_on_the_workers(capsys, crops, tmp_path):
    digests = []
    for jobs in ("1", "2"):
        out = tmp_path / f"j{jobs}"
        code, _, err = run(capsys, *crops, "--shared", "-k", "16", "-j", jobs, "--out-dir", out, "--dither", "fs")
        assert code == 0, err
        digests.append([sha(out / f"{c.stem}-fq16.png") for c in crops])
    assert digests[0] == digests[1]


def test_shared_json_reports_the_palette(capsys, crops, tmp_path):
    code, out, _ = run(capsys, *crops[:2], "--shared", "-k", "8", "--json", "--out-dir", tmp_path / "o")
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    fitted = [r["palette"] for r in records if "palette" in r]
    assert fitted == [
        {
            "n_colors": 8,
            "psnr": pytest.approx(palette(crops[:2], 8).psnr, abs=1e-3),
            "mse": pytest.approx(palette(crops[:2], 8).mse, abs=1e-4),
            "pixels": 80 * 48 + 80 * 56,
            "files": 2,
        }
    ]


def test_shared_goes_on_past_an_unreadable_file(capsys, crops, tmp_path):
    bad = tmp_path / "in" / "bad.png"
    bad.write_bytes(b"not an image")
    code, out, err = run(capsys, crops[0], bad, crops[1], "--shared", "-k", "8", "--out-dir", tmp_path / "o")
    assert code == 3
    assert any("bad.png" in e for e in err) and len(out.splitlines()) == 2
    assert not (tmp_path / "o" / "bad-fq8.png").exists()
    with Image.open(tmp_path / "o" / "c0-fq8.png") as im:
        np.testing.assert_array_equal(
            np.array(im.getpalette(), np.uint8).reshape(-1, 3)[:8], palette(crops[:2], 8).colors
        )


def test_save_palette_then_map_gives_the_same_files(capsys, crops, tmp_path):
    for ext in (".gpl", ".png", ".txt"):
        saved = tmp_path / f"pal{ext}"
        code, _, err = run(capsys, *crops, "--shared", "-k", "12", "--out-dir", tmp_path / "a", "--save-palette", saved)
        assert code == 0, err
        assert Palette.load(saved) == palette(crops, 12)
        code, _, err = run(capsys, *crops, "--map", saved, "--out-dir", tmp_path / "b")
        assert code == 0, err
        for c in crops:
            assert sha(tmp_path / "a" / f"{c.stem}-fq12.png") == sha(tmp_path / "b" / f"{c.stem}-fq12.png")
        for folder in ("a", "b"):
            for f in (tmp_path / folder).iterdir():
                f.unlink()


def test_map_uses_exactly_its_colours_each_pixel_its_nearest(capsys, crops, tmp_path):
    (tmp_path / "map.txt").write_text("# a few colours\n000000\n#ffffff\nff0000\n00ff00, 0000ff\n808080\n")
    code, _, err = run(capsys, crops[0], "--map", tmp_path / "map.txt", "-o", tmp_path / "m.png")
    assert code == 0, err
    colors = Palette.load(tmp_path / "map.txt").colors
    plte, idx = _plte(tmp_path / "m.png")
    np.testing.assert_array_equal(plte, colors[: len(plte)])
    labels, _ = naive.nearest(read_image(crops[0])[0].reshape(-1, 3), colors)  # brute force
    np.testing.assert_array_equal(idx.reshape(-1), labels)
    code, _, err = run(capsys, crops[0], "--map", tmp_path / "map.txt", "--dither", "fs", "-o", tmp_path / "d.png")
    assert code == 0, err
    with Image.open(tmp_path / "d.png") as im:
        used = {tuple(c) for _, c in im.convert("RGB").getcolors()}
    assert used <= set(map(tuple, colors.tolist())) and len(used) > 3


def test_map_takes_an_image_palette(capsys, crops, tmp_path):
    run(capsys, crops[1], "-k", "10", "-o", tmp_path / "p.gif")
    code, _, err = run(capsys, crops[0], "--map", tmp_path / "p.gif", "-o", tmp_path / "m.png")
    assert code == 0, err
    with Image.open(tmp_path / "m.png") as im:
        used = {c for _, c in im.convert("RGB").getcolors()}
    assert used <= set(map(tuple, Palette.load(tmp_path / "p.gif").colors.tolist()))


def test_fixed_colors_in_the_plte(capsys, crops, tmp_path):
    code, _, err = run(capsys, crops[0], "-k", "12", "--fixed-colors", "ff0000,#00ff00", "-o", tmp_path / "f.png")
    assert code == 0, err
    with Image.open(tmp_path / "f.png") as im:
        plte = set(map(tuple, np.array(im.getpalette(), np.uint8).reshape(-1, 3)[:12].tolist()))
    assert {(255, 0, 0), (0, 255, 0)} <= plte
    (tmp_path / "fixed.gpl").write_text("GIMP Palette\n1 2 3\n250 251 252\n")
    code, _, err = run(capsys, *crops, "--shared", "-k", "9", "--fixed-colors", tmp_path / "fixed.gpl", "-j", "1")
    assert code == 0, err
    with Image.open(crops[2].with_name("c2-fq9.png")) as im:
        plte = set(map(tuple, np.array(im.getpalette(), np.uint8).reshape(-1, 3)[:9].tolist()))
    assert {(1, 2, 3), (250, 251, 252)} <= plte


@pytest.mark.parametrize(
    "args, message",
    [
        (["--fixed-colors", "ff0000,00ff00,0000ff", "-k", "2"], "--fixed-colors: 3 colours are more than -k 2"),
        (["--fixed-colors", "ff0000,nothex"], "--fixed-colors: 'nothex' is not a hex colour"),
        (["--map", "missing.txt"], "--map: missing.txt: cannot read"),
        (["--map", "BAD"], "--map: "),
        (["--map", "NOISE"], "more than 65536 colours"),
        (["--shared", "--map", "MAP"], "exclude each other"),
        (["--map", "MAP", "--fixed-colors", "ff0000"], "exclude each other"),
        (["--shared", "--quality", "80"], "not with --shared or --map"),
        (["SECOND", "--save-palette", "x.gpl"], "--save-palette needs --shared, --map or one input"),
        (["--shared", "--save-palette", "x.bmp"], "expected a .png, .gpl or .txt"),
    ],
)
def test_palette_option_errors_are_one_line_exit_2(capsys, crops, tmp_path, args, message):
    (tmp_path / "bad.gpl").write_text("not a palette\n")
    (tmp_path / "map.txt").write_text("ff0000\n")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)).save(tmp_path / "noise.png")
    names = {"BAD": tmp_path / "bad.gpl", "MAP": tmp_path / "map.txt", "NOISE": tmp_path / "noise.png"}
    names["SECOND"] = crops[1]
    argv = [names.get(a, a) for a in args]
    where = ["--ext=-x.png"] if "SECOND" in args else ["-o", tmp_path / "o.png"]
    code, out, err = run(capsys, crops[0], *argv, *where)
    assert code == 2
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "o.png").exists()


def test_save_palette_of_one_file_is_its_own(capsys, crops, tmp_path):
    code, _, err = run(capsys, crops[0], "-k", "6", "-o", tmp_path / "o.png", "--save-palette", tmp_path / "p.txt")
    assert code == 0, err
    assert Palette.load(tmp_path / "p.txt") == palette(crops[0], 6)
    code, _, err = run(capsys, crops[0], "-k", "6", "-o", tmp_path / "o2.png", "--save-palette", tmp_path / "p.txt")
    assert code == 5 and "exists" in err[0]  # kept without --force, before any work
    assert not (tmp_path / "o2.png").exists()
