"""The habits of pngquant users: --version, --speed, --posterize, pipes, skips that are not errors,
and a warning for outputs larger than their input."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import fastquant
from fastquant import OptionError, compress
from fastquant import fit as fitting
from tests.conftest import DATA, ROOT
from tests.test_cli import _errors, run

KODAK = DATA / "kodak" / "kodim03.png"


def pipe(args, stdin=None, cwd=None):
    """python -m fastquant ARGS with bytes on stdin; the CompletedProcess (stdout as bytes)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "fastquant", *map(str, args)],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


# ----------------------------------------------------------------------------- --version


def test_version(capsys):
    code, out, err = run(capsys, "--version")
    assert code == 0 and out.strip() == f"fastquant {fastquant.__version__}" and err == []


def test_console_script_and_distribution_name():
    """`fastquant` is installed as a command; the distribution's name is not PyPI's unrelated `fastquant`."""
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert cfg["metadata"]["name"] == "fastquant-kmeans"
    assert "fastquant = fastquant.cli:main" in cfg["options.entry_points"]["console_scripts"]


def test_help_has_examples_and_the_short_name(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "examples:" in out and "fastquant - < in.png > out.png" in out and "--speed" in out


# ----------------------------------------------------------------------------- --speed


def test_speed_4_is_the_default_exactly(tmp_path):
    a, b = compress(KODAK, 64), compress(KODAK, 64, speed=4)
    assert a.encode(".png") == b.encode(".png")
    # and what the k-means options spelled out give
    c = compress(KODAK, 64, max_iter=100, tol=1e-2, swap_rounds=3, init="wu")
    assert a.encode(".png") == c.encode(".png")


def test_speed_levels_trade_error_for_work():
    slow, fast = compress(KODAK, 64, speed=1), compress(KODAK, 64, speed=11)
    default = compress(KODAK, 64)
    assert slow.stats.iterations > default.stats.iterations > fast.stats.iterations == 0
    assert max(slow.stats.mse, default.stats.mse) < fast.stats.mse  # (1 vs 4 is not ordered on every image)
    assert compress(KODAK, 64, speed=11, max_iter=5).stats.iterations > 0  # explicit options win


@pytest.mark.parametrize("bad", [0, 12, "4", 2.0, True])
def test_speed_refused(bad):
    with pytest.raises(OptionError, match="speed"):
        compress(KODAK, 16, speed=bad)


@pytest.mark.parametrize("bad", ["0", "12", "fast"])
def test_cli_speed_refused(capsys, bad, tmp_path):
    code, _, err = run(capsys, KODAK, "-o", tmp_path / "x.png", "--speed", bad)
    assert code == 2 and len(err) == 1 and "--speed" in err[0]


def test_cli_speed_reaches_compress(capsys, tmp_path):
    code, _, _ = run(capsys, KODAK, "-k", "32", "-o", tmp_path / "a.png", "--speed", "9")
    assert code == 0
    assert (tmp_path / "a.png").read_bytes() == compress(KODAK, 32, speed=9).encode(".png")


# ----------------------------------------------------------------------------- --posterize


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_posterize_palette_uses_top_bits(bits):
    q = compress(KODAK, 64, posterize=bits)
    pal = q.palette.astype(int)
    keep = 8 - bits
    # every value is its top bits repeated: a lossless expansion of a keep-bit value
    assert all(fitting.replicate(v >> bits, keep) == v for v in np.unique(pal))
    assert len(np.unique(pal)) <= 1 << keep
    np.testing.assert_array_equal(q.image, q.palette[q.indices])
    assert len(np.unique(q.palette, axis=0)) == len(q.palette)  # duplicates dropped


def test_posterize_nearest_level():
    p = np.arange(256, dtype=np.uint8)[:, None]
    out = fitting.posterize(p, 4)[:, 0].astype(int)
    levels = np.arange(16) * 17
    want = levels[np.abs(np.arange(256)[:, None] - levels).argmin(axis=1)]
    np.testing.assert_array_equal(out, want)
    assert fitting.posterize(p, 0) is p


def test_posterize_rgba_and_cli(capsys, tmp_path):
    icon = DATA / "alpha" / "tango32_face-smile.png"
    out = tmp_path / "p.png"
    code, _, _ = run(capsys, icon, "-k", "16", "--posterize", "4", "-o", out)
    assert code == 0
    with Image.open(out) as im:
        rgba = np.asarray(im.convert("RGBA"))
    assert (rgba % 17 == 0).all()
    code, _, err = run(capsys, icon, "--posterize", "5", "-o", out)
    assert code == 2 and "--posterize" in err[0]


# ----------------------------------------------------------------------------- pipes


def test_pipe_stdin_to_stdout():
    data = KODAK.read_bytes()
    r = pipe(["-", "-k", "32"], stdin=data)
    assert r.returncode == 0, r.stderr
    assert r.stdout == compress(KODAK, 32).encode(".png")  # the image, whole, and nothing else
    assert b"<stdin> -> <stdout>" in r.stderr


def test_pipe_file_to_stdout_and_stdin_to_file(tmp_path):
    r = pipe([KODAK, "-o", "-", "-k", "16", "--speed", "8", "--preview", tmp_path / "side.png"])
    assert r.returncode == 0, r.stderr
    want = compress(KODAK, 16, speed=8).encode(".png")
    assert r.stdout == want
    with Image.open(tmp_path / "side.png") as im:  # a preview goes to its file
        assert im.width > 768
    r = pipe(["-", "-o", tmp_path / "out.gif", "-k", "16", "--speed", "8"], stdin=KODAK.read_bytes())
    assert r.returncode == 0 and r.stdout.startswith(b"<stdin> -> ")  # the line goes to stdout then
    with Image.open(tmp_path / "out.gif") as im:
        assert im.format == "GIF"


def test_pipe_refusals(tmp_path):
    data = KODAK.read_bytes()
    r = pipe(["-", "--json"], stdin=data)
    assert r.returncode == 2 and r.stdout == b"" and b"--json" in r.stderr
    r = pipe(["-", str(KODAK)], stdin=data)
    assert r.returncode == 2 and b"only input" in r.stderr
    r = pipe(["-", "--timeout", "10"], stdin=data)
    assert r.returncode == 2 and r.stdout == b""


def test_pipe_refuses_terminals(capsys, monkeypatch):
    class Tty:
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdin", Tty())
    code, out, err = run(capsys, "-", "-o", "x.png")
    assert code == 2 and out == "" and "stdin is a terminal" in err[0]


def test_pipe_bad_input_and_the_read_limit():
    r = pipe(["-"], stdin=b"not an image")
    assert r.returncode == 3 and r.stdout == b"" and b"error: <stdin>" in r.stderr
    r = pipe(["-", "--max-pixels", "100"], stdin=KODAK.read_bytes())  # over the pixel limit
    assert r.returncode == 3 and r.stdout == b"" and b"more than the limit" in r.stderr
    # A pipe that goes on past 64 MiB + 8 bytes a pixel is given up, not read into memory.
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastquant", "-", "--max-pixels", "1000"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    chunk = b"\0" * (1 << 20)
    try:
        for _ in range(200):  # at most 200 MiB: far past the limit of ~64 MiB
            proc.stdin.write(chunk)
    except BrokenPipeError:
        pass
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 3 and out == b"" and b"more than" in err and b"bytes" in err


def test_pipe_to_a_closed_reader(tmp_path):
    """A reader that goes away is an output error, in one line."""
    r = subprocess.run(
        f"{sys.executable} -m fastquant {KODAK} -o - | head -c 10 > /dev/null; echo ${{PIPESTATUS[0]}}",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=600,
    )
    code = int(r.stdout.split()[-1])
    assert code in (0, 4), r.stderr  # 0 when the whole image fitted in the pipe's buffer first
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr


# ----------------------------------------------------------------------------- skips and warnings


def test_skip_is_not_an_error(capsys, noisy_jpeg, tmp_path):
    code, out, err = run(capsys, noisy_jpeg, "--skip-if-larger")
    assert code == 98  # one file: pngquant's code
    assert len(err) == 1 and err[0].startswith("fastquant: ") and "error:" not in err[0] and "skipped" in err[0]
    shutil.copy(KODAK, tmp_path / "k.png")
    code, out, err = run(capsys, noisy_jpeg, tmp_path / "k.png", "--skip-if-larger", "--json")
    assert code == 0  # several files, some skipped, none failed
    recs = [json.loads(line) for line in out.splitlines()]
    assert [r.get("status") for r in recs[:-1]].count("skipped") == 1
    assert recs[-1]["summary"]["skipped"] == 1 and recs[-1]["summary"]["failed"] == 0
    assert not any("error:" in line for line in err)


def test_skip_with_a_failure_exits_with_the_failure(capsys, noisy_jpeg, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    code, _, err = run(capsys, noisy_jpeg, bad, "--skip-if-larger")
    assert code == 3
    assert sum("error:" in line for line in err) == 1


def test_larger_output_warns(capsys, noisy_jpeg, tmp_path):
    out = tmp_path / "n.png"
    code, stdout, err = run(capsys, noisy_jpeg, "-o", out)
    assert code == 0 and out.stat().st_size > noisy_jpeg.stat().st_size
    warnings = [line for line in err if "warning" in line]
    assert len(warnings) == 1 and "larger than the input" in warnings[0]
    code, _, err = run(capsys, KODAK, "-o", tmp_path / "k.png")
    assert code == 0 and err == []
    code, _, err = run(capsys, noisy_jpeg, "-o", out, "-f", "-q")
    assert code == 0 and err == []


def test_quality_output_name_is_the_palette_asked_for(capsys, tmp_path):
    """-fq<N> names the most colours asked for (-k), not the fewer that --quality settled on."""
    src = tmp_path / "k.png"
    shutil.copy(KODAK, src)
    code, out, _ = run(capsys, src, "--quality", "0-40", "--json")
    assert code == 0
    rec = json.loads(out.splitlines()[0])
    assert rec["output"].endswith("k-fq256.png") and rec["n_colors"] < 256


def test_demo_says_where_the_preview_went(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "--demo", "--max-side", "200")
    assert code == 0 and "preview fastquant-demo-preview.png" in out
    assert (tmp_path / "fastquant-demo-preview.png").exists()


def test_errors_helper_is_shared():
    assert _errors("fastquant: compiling x\nreal") == ["real"]
