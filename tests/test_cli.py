"""The command line: in-process through fastquant.cli.main, plus a few real subprocess runs."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fastquant import arguments, cli, metrics

JSON_KEYS = {"input", "output", "status", "input_bytes", "output_bytes", "ratio", "n_colors", "psnr", "ssim"}
JSON_KEYS |= {"total_seconds", "stage_seconds"}


def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class Copied:
    """A Kodak image copied into tmp_path, with its hash to check it is never modified."""

    def __init__(self, src, folder):
        self.path = Path(folder) / src.name
        shutil.copyfile(src, self.path)
        self.digest = sha(src)
        self.size = self.path.stat().st_size
        assert sha(self.path) == self.digest

    def __str__(self):
        return str(self.path)

    def unchanged(self):
        return self.path.exists() and sha(self.path) == self.digest

    def default_output(self, k=256):
        return self.path.with_name(f"{self.path.stem}-fq{k}.png")


@pytest.fixture
def img(kodak, tmp_path):
    return Copied(kodak[0], tmp_path)


@pytest.fixture
def img2(kodak, tmp_path):
    return Copied(kodak[1], tmp_path)


def _errors(err):
    """stderr lines, without the one-off note printed while Numba compiles."""
    return [line for line in err.splitlines() if not line.startswith("fastquant: compiling")]


def run(capsys, *argv):
    """cli.main in-process; returns (exit code, stdout, stderr lines)."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as e:  # argparse errors exit through SystemExit
        code = e.code
    out, err = capsys.readouterr()
    return code, out, _errors(err)


def rgb(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def files(folder):
    return sorted(p.name for p in Path(folder).iterdir())


# ----------------------------------------------------------------------------- success paths


def test_default_output(capsys, img, tmp_path):
    code, out, err = run(capsys, img)
    assert code == 0, err
    assert err == []
    dst = img.default_output()
    assert dst.name == "kodim01-fq256.png"
    assert files(tmp_path) == ["kodim01-fq256.png", "kodim01.png"]
    with Image.open(dst) as im:
        assert im.format == "PNG" and im.mode == "P" and im.size == (768, 512)
    assert dst.stat().st_size < img.size
    assert metrics.psnr(rgb(img.path), rgb(dst)) >= 38
    lines = out.splitlines()
    assert len(lines) == 1
    line = lines[0]
    assert "->" in line and "bytes" in line and "PSNR" in line
    assert str(img) in line and str(dst) in line
    assert str(img.size) in line and str(dst.stat().st_size) in line
    assert img.unchanged()


def test_output_option(capsys, img, tmp_path):
    (tmp_path / "sub").mkdir()
    dst = tmp_path / "sub" / "result.png"
    code, out, err = run(capsys, img, "-o", dst)
    assert code == 0 and err == []
    assert dst.is_file() and not img.default_output().exists()
    with Image.open(dst) as im:
        assert im.mode == "P"
    assert str(dst) in out
    assert img.unchanged()


def test_k16_four_bit_png(capsys, img):
    code, out, err = run(capsys, img, "-k", "16")
    assert code == 0 and err == []
    dst = img.default_output(16)
    assert dst.name == "kodim01-fq16.png"
    data = dst.read_bytes()
    assert data[24] == 4 and data[25] == 3  # 4-bit palette
    with Image.open(dst) as im:
        assert im.mode == "P"
        colours = im.convert("RGB").getcolors(256)
    assert colours is not None and 2 <= len(colours) <= 16
    assert img.unchanged()


def test_json(capsys, img, img2, tmp_path):
    code, out, err = run(capsys, "--json", img, img2)
    assert code == 0 and err == []
    lines = out.splitlines()
    assert len(lines) == 3  # one object per file (in completion order), then the summary
    summary = json.loads(lines[-1])["summary"]
    assert summary["files"] == summary["ok"] == 2 and summary["failed"] == 0
    assert summary["input_bytes"] == img.size + img2.size
    records = {json.loads(line)["input"]: json.loads(line) for line in lines[:2]}
    for src in (img, img2):
        rec = records[str(src)]
        assert JSON_KEYS <= set(rec)
        dst = src.default_output()
        assert rec["input"] == str(src) and rec["output"] == str(dst)
        assert rec["status"] == "ok"
        assert rec["input_bytes"] == src.size
        assert rec["output_bytes"] == dst.stat().st_size
        assert rec["ratio"] == pytest.approx(dst.stat().st_size / src.size, abs=1e-4)
        assert 200 <= rec["n_colors"] <= 256
        assert rec["psnr"] >= 38
        assert rec["psnr"] == pytest.approx(metrics.psnr(rgb(src.path), rgb(dst)), abs=1e-3)
        assert 0.9 < rec["ssim"] <= 1
        assert rec["total_seconds"] > 0
        assert src.unchanged()


def test_json_records_errors(capsys, img, tmp_path):
    missing = tmp_path / "missing.png"
    code, out, err = run(capsys, "--json", missing, img)
    assert code == 3
    recs = [json.loads(line) for line in out.splitlines()]
    assert recs[-1]["summary"]["failed"] == 1 and recs[-1]["summary"]["ok"] == 1
    recs = recs[:-1]
    assert [r["status"] for r in recs] == ["error", "ok"]
    assert recs[0]["input"] == str(missing) and recs[0]["exit_code"] == 3
    assert str(missing) in recs[0]["error"]
    assert img.unchanged()


def test_existing_output_kept_without_force(capsys, img):
    dst = img.default_output()
    dst.write_bytes(b"keep me")
    code, out, err = run(capsys, img)
    assert code == 5
    assert dst.read_bytes() == b"keep me"
    assert out == ""
    assert len(err) == 1 and err[0].startswith("fastquant: error:")
    assert str(dst) in err[0] and "--force" in err[0]
    code, out, err = run(capsys, img, "--force")
    assert code == 0 and err == []
    with Image.open(dst) as im:
        assert im.mode == "P" and im.size == (768, 512)
    code, out, err = run(capsys, img, "-f")
    assert code == 0
    assert img.unchanged()


@pytest.mark.parametrize("spelling", ["same", "dotted"])
def test_output_equal_to_input_refused(capsys, img, tmp_path, spelling):
    target = img.path if spelling == "same" else tmp_path / "." / img.path.name
    code, out, err = run(capsys, img, "-o", target)
    assert code == 5
    assert len(err) == 1 and err[0].startswith("fastquant: error:") and "Traceback" not in err[0]
    assert img.unchanged()
    assert files(tmp_path) == ["kodim01.png"]


def test_bad_file_in_the_middle(capsys, img, img2, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_text("not a png\n")
    code, out, err = run(capsys, img, bad, img2)
    assert code == 3
    assert img.default_output().is_file() and img2.default_output().is_file()
    assert not (tmp_path / "broken-fq256.png").exists()
    assert len(out.splitlines()) == 2
    assert len(err) == 2
    assert err[0].startswith("fastquant: error:") and str(bad) in err[0]
    assert "2 of 3" in err[1] and "1 failed" in err[1]
    assert "Traceback" not in "\n".join(err)
    assert img.unchanged() and img2.unchanged()
    assert bad.read_text() == "not a png\n"


def test_mixed_failures_exit_1(capsys, img, img2, tmp_path):
    img2.default_output().write_bytes(b"old")  # exit code 5 for this one
    code, out, err = run(capsys, tmp_path / "missing.png", img2, img)  # 3, 5, ok
    assert code == 1
    assert len(err) == 3 and "1 of 3" in err[2]
    assert img2.default_output().read_bytes() == b"old"
    assert img.default_output().is_file()
    assert img.unchanged() and img2.unchanged()


def _empty(folder):
    path = Path(folder) / "empty.png"
    path.write_bytes(b"")
    return path


def _text(folder):
    path = Path(folder) / "x.png"
    path.write_text("hello, I am text\n")
    return path


def _empty_folder(tmp_path):
    path = tmp_path / "nothing here"
    path.mkdir()
    return path


@pytest.mark.parametrize(
    "case, expected_code",
    [
        ("missing", 3),
        ("text", 3),
        ("empty", 3),
        ("empty-folder", 2),
        ("max-pixels", 3),
        ("k0", 2),
        ("k-3", 2),
        ("kabc", 2),
        ("k65537", 2),
        ("resize10", 2),
        ("resize0x5", 2),
        ("max-side0", 2),
        ("resize-and-max-side", 2),
        ("no-inputs", 2),
        ("o-two-inputs", 2),
        ("preview-two-inputs", 2),
        ("bad-extension", 2),
        ("unknown-option", 2),
        ("no-folder", 4),
    ],
)
def test_errors(capsys, img, img2, tmp_path, case, expected_code):
    named = None
    argv = {
        "missing": [tmp_path / "missing.png"],
        "text": [_text(tmp_path)],
        "empty": [_empty(tmp_path)],
        "empty-folder": [_empty_folder(tmp_path)],
        "max-pixels": [img, "--max-pixels", "100"],
        "k0": [img, "-k", "0"],
        "k-3": [img, "-k", "-3"],
        "kabc": [img, "-k", "abc"],
        "k65537": [img, "-k", "65537"],
        "resize10": [img, "--resize", "10"],
        "resize0x5": [img, "--resize", "0x5"],
        "max-side0": [img, "--max-side", "0"],
        "resize-and-max-side": [img, "--resize", "40x30", "--max-side", "30"],
        "no-inputs": [],
        "o-two-inputs": [img, img2, "-o", tmp_path / "out.png"],
        "preview-two-inputs": [img, img2, "--preview", tmp_path / "p.png"],
        "bad-extension": [img, "-o", tmp_path / "out.xyz"],
        "unknown-option": [img, "--frobnicate"],
        "no-folder": [img, "-o", tmp_path / "nowhere" / "out.png"],
    }[case]
    if case in ("missing", "text", "empty"):
        named = str(argv[0])
    elif case == "no-folder":
        named = str(tmp_path / "nowhere" / "out.png")
    before = files(tmp_path)
    code, out, err = run(capsys, *argv)
    assert code == expected_code
    assert out == ""
    assert len(err) == 1, err
    assert err[0].startswith("fastquant: error:")
    assert "Traceback" not in err[0]
    if named:
        assert named in err[0]
    if case == "max-pixels":
        assert "limit" in err[0] and "100" in err[0]
    assert files(tmp_path) == before  # nothing written
    assert img.unchanged() and img2.unchanged()


def test_help_exits_zero(capsys):
    code, out, err = run(capsys, "--help")
    assert code == 0 and "Exit codes" in out


def test_preview(capsys, img, tmp_path):
    pv = tmp_path / "side.png"
    code, out, err = run(capsys, img, "--preview", pv)
    assert code == 0 and err == []
    from fastquant.preview import label_height

    top = label_height()
    with Image.open(pv) as im:
        assert im.size == (2 * 768 + 8, top + 512)
        prev = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(prev[top:, :768], rgb(img.path))
    np.testing.assert_array_equal(prev[top:, 776:], rgb(img.default_output()))
    assert img.unchanged()


def test_preview_onto_input_refused(capsys, img, tmp_path):
    code, out, err = run(capsys, img, "-o", tmp_path / "out.png", "--preview", img)
    assert img.unchanged()
    assert code == 5


@pytest.mark.parametrize("force", [False, True])
def test_preview_onto_output_refused(capsys, img, tmp_path, force):
    out = tmp_path / "out.png"
    code, _, err = run(capsys, img, "-o", out, "--preview", tmp_path / "." / "out.png", *(["--force"] if force else []))
    assert code == 2 and err == [
        f"fastquant: error: --preview and the output are the same file: {tmp_path / '.' / 'out.png'}"
    ]
    assert not out.exists() and img.unchanged()


def test_preview_existing_kept_without_force(capsys, img, tmp_path):
    pv = tmp_path / "side.png"
    pv.write_bytes(b"keep me")
    code, out, err = run(capsys, img, "--preview", pv)
    assert img.unchanged()
    assert pv.read_bytes() == b"keep me"
    assert code == 5


def test_resize_and_max_side(capsys, img, tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    code, out, err = run(capsys, img, "--resize", "400x200", "-o", a)
    assert code == 0 and err == []
    code, out, err = run(capsys, img, "--max-side", "300", "-o", b)
    assert code == 0 and err == []
    with Image.open(a) as im:
        assert im.size == (400, 200) and im.mode == "P"
    with Image.open(b) as im:
        assert im.size == (300, 200) and im.mode == "P"
    code, out, err = run(capsys, img, "--max-side", "5000", "-o", tmp_path / "c.png")
    with Image.open(tmp_path / "c.png") as im:
        assert im.size == (768, 512)  # never enlarged
    assert img.unchanged()


def test_quiet(capsys, img):
    code, out, err = run(capsys, "-q", img)
    assert code == 0
    assert out == "" and err == []
    assert img.default_output().is_file()
    code, out, err = run(capsys, "-q", img)  # errors still reported, on stderr
    assert code == 5 and out == "" and len(err) == 1
    assert img.unchanged()


def test_quiet_computes_no_ssim(capsys, img, monkeypatch):
    calls = []
    real = metrics.ssim_indexed
    monkeypatch.setattr(metrics, "ssim_indexed", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert run(capsys, "-q", "-f", img)[0] == 0  # nothing shows it
    assert calls == []
    code, out, _ = run(capsys, "-q", "-f", "--json", img)  # --json does
    assert code == 0 and calls == [1] and 0.9 < json.loads(out)["ssim"] <= 1
    code, out, _ = run(capsys, "-f", img)  # and so does the line
    assert code == 0 and calls == [1, 1] and "SSIM 0.9" in out


def test_ext_and_other_formats(capsys, img, tmp_path):
    code, out, err = run(capsys, img, "--ext", ".gif", "-k", "32")
    assert code == 0 and err == []
    with Image.open(tmp_path / "kodim01.gif") as im:
        assert im.format == "GIF" and im.mode == "P"
    code, out, err = run(capsys, img, "-o", tmp_path / "k.jpg")
    assert code == 0
    with Image.open(tmp_path / "k.jpg") as im:
        assert im.format == "JPEG" and im.mode == "RGB"
    assert img.unchanged()


def test_verbose_prints_stages(capsys, img):
    code, out, err = run(capsys, "-v", img)
    assert code == 0
    assert "histogram" in out and "palette" in out and "[" in out
    assert img.unchanged()


def test_demo_in_process(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):  # the demo rewrites its own files
        code, out, err = run(capsys, "--demo", "-k", "16")
        assert code == 0 and err == []
    assert files(tmp_path) == ["fastquant-demo-fq16.png", "fastquant-demo-preview.png", "fastquant-demo.png"]
    code, out, err = run(capsys, "--demo", tmp_path / "fastquant-demo.png")
    assert code == 2 and len(err) == 1


# ----------------------------------------------------------------------------- subprocesses


def _subprocess(args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "fastquant", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def test_subprocess_end_to_end(img, tmp_path):
    r = _subprocess(["kodim01.png", "-k", "64"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert _errors(r.stderr) == []
    dst = tmp_path / "kodim01-fq64.png"
    with Image.open(dst) as im:
        assert im.mode == "P" and im.size == (768, 512)
    assert dst.stat().st_size < img.size
    assert metrics.psnr(rgb(img.path), rgb(dst)) >= 30
    assert "kodim01.png -> kodim01-fq64.png" in r.stdout and "PSNR" in r.stdout
    assert img.unchanged()


def test_subprocess_error(tmp_path):
    r = _subprocess(["missing.png"], tmp_path)
    assert r.returncode == 3
    err = _errors(r.stderr)
    assert err == ["fastquant: error: missing.png: no such file"] or (
        len(err) == 1 and err[0].startswith("fastquant: error:") and "missing.png" in err[0]
    )
    assert "Traceback" not in r.stderr and r.stdout == ""
    r = _subprocess(["-k", "0", "x.png"], tmp_path)
    assert r.returncode == 2 and len(_errors(r.stderr)) == 1
    assert "Traceback" not in r.stderr


def test_subprocess_demo(tmp_path):
    r = _subprocess(["--demo"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert files(tmp_path) == ["fastquant-demo-fq256.png", "fastquant-demo-preview.png", "fastquant-demo.png"]
    with Image.open(tmp_path / "fastquant-demo.png") as im:
        assert im.mode == "RGB"
        w, h = im.size
    with Image.open(tmp_path / "fastquant-demo-fq256.png") as im:
        assert im.mode == "P" and im.size == (w, h)
    from fastquant.preview import label_height

    with Image.open(tmp_path / "fastquant-demo-preview.png") as im:
        assert im.size == (2 * w + 8, label_height() + h)
    assert "fastquant-demo.png ->" in r.stdout and "; preview fastquant-demo-preview.png" in r.stdout
    assert os.path.getsize(tmp_path / "fastquant-demo-fq256.png") < os.path.getsize(tmp_path / "fastquant-demo.png")


def test_cli_process_loads_no_blas_probe(tmp_path, kodak):
    """Numba would import scipy.linalg (when installed) to look for a BLAS that
    no kernel uses; the CLI's own process skips it, and runs fine without it."""
    pytest.importorskip("scipy.linalg", reason="scipy is not installed: Numba has nothing to import")
    script = (
        "import sys\n"
        "from fastquant.cli import main\n"
        "code = main([sys.argv[1], '-o', sys.argv[2], '-q', '-k', '16'])\n"
        "print(code, 'scipy.linalg' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(kodak[0]), str(tmp_path / "o.png")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.stdout.split() == ["0", "False"], out.stderr


def test_a_newline_in_a_name_stays_on_one_line(capsys, img, tmp_path):
    odd = tmp_path / "two\nlines.png"
    shutil.copyfile(img.path, odd)
    code, out, err = run(capsys, odd, "-k", "16")
    assert code == 0 and out.count("\n") == 1 and "two\\nlines" in out
    code, out, err = run(capsys, tmp_path / "no\nsuch.png")
    assert code == 3 and len(err) == 1 and "no\\nsuch.png" in err[0]


# ------------------------------------------------------------- hostile inputs, resource bounds (issue 16)


@pytest.mark.parametrize("value", ["inf", "1e300", "nan", "0", "-1", "86401", "abc"])
def test_timeout_out_of_range_is_a_usage_error(capsys, img, tmp_path, value):
    code, out, err = run(capsys, img, "--timeout", value)
    assert code == 2 and out == "" and len(err) == 1 and "--timeout" in err[0], err
    assert files(tmp_path) == ["kodim01.png"]


@pytest.mark.parametrize(
    "value, ok",
    [
        ("512M", True),
        ("2G", True),
        ("1.5GiB", True),
        ("3000000000", True),
        ("0", False),
        ("-1G", False),
        ("abc", False),
        ("nan", False),
        ("infG", False),
        ("10K", False),
    ],
)
def test_max_memory_sizes(value, ok):
    if ok:
        assert arguments.build_parser().parse_args(["x.png", "--max-memory", value]).max_memory >= 1 << 20
    else:
        with pytest.raises(SystemExit) as info:
            arguments.build_parser().parse_args(["x.png", "--max-memory", value])
        assert info.value.code == 2
    assert arguments._memory("2G") == 2 << 30 and arguments._memory("512m") == 512 << 20


@pytest.mark.parametrize("value", ["0", "-2", "abc"])
def test_bad_numba_num_threads_is_one_line(tmp_path, img, value):
    r = subprocess.run(
        [sys.executable, "-m", "fastquant", img.path.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, NUMBA_NUM_THREADS=value),
    )
    assert r.returncode == 2 and r.stdout == ""
    assert _errors(r.stderr) == [
        f"fastquant: error: NUMBA_NUM_THREADS={value!r}: expected a whole number of threads >= 1"
    ]
    assert files(tmp_path) == ["kodim01.png"]


@pytest.mark.parametrize(
    "argv",
    [["--resize", "14000x14000"], ["--resize", "1000000x1000000"], ["--resize", "100x100", "--max-pixels", "9999"]],
)
def test_resize_over_max_pixels_is_refused_before_work(capsys, img, tmp_path, argv):
    code, out, err = run(capsys, img, *argv)
    assert code == 2 and out == "" and len(err) == 1
    assert "--resize" in err[0] and "--max-pixels" in err[0]
    assert files(tmp_path) == ["kodim01.png"]


def test_memory_error_is_exit_7(capsys, img, tmp_path, monkeypatch):
    from fastquant import api

    def no_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 5.3 GiB for an array")

    monkeypatch.setattr(api, "compress", no_memory)
    code, out, err = run(capsys, img)
    assert code == 7 and out == ""
    assert err == [
        f"fastquant: error: {img}: out of memory (MemoryError: Unable to allocate 5.3 GiB for an "
        "array); nothing written"
    ]
    assert files(tmp_path) == ["kodim01.png"]


@pytest.mark.parametrize("how", ["-o", "--ext", "--preview"])
def test_input_never_replaced_even_with_force(capsys, img, tmp_path, how):
    argv = {
        "-o": ["-o", tmp_path / "." / "kodim01.png"],
        "--ext": ["--ext", ".png"],
        "--preview": ["-o", tmp_path / "out.png", "--preview", tmp_path / "." / "kodim01.png"],
    }[how]
    code, out, err = run(capsys, img, "--force", *argv)
    assert code == 5 and out == "" and len(err) == 1
    assert "is the input" in err[0] and "even with --force" in err[0]
    assert files(tmp_path) == ["kodim01.png"] and img.unchanged()


def test_output_that_is_a_folder(capsys, img, tmp_path):
    (tmp_path / "dir").mkdir()
    code, out, err = run(capsys, img, "-o", tmp_path / "dir", "--force")
    assert code == 4 and err == [f"fastquant: error: {tmp_path / 'dir'}: cannot write: is a folder"]
    assert files(tmp_path / "dir") == []


@pytest.mark.parametrize("case", ["no-extension", "unknown-extension", "missing-folder"])
def test_preview_checked_before_any_work(capsys, img, tmp_path, case):
    """A preview that cannot be written fails the run before the output is written (before: the
    output was written, then the preview failed with "nothing written")."""
    preview = {
        "no-extension": tmp_path / "prev",
        "unknown-extension": tmp_path / "prev.xyz",
        "missing-folder": tmp_path / "nowhere" / "prev.png",
    }[case]
    code, out, err = run(capsys, img, "--preview", preview)
    assert code == (4 if case == "missing-folder" else 2) and out == "" and len(err) == 1, err
    assert str(preview) in err[0]
    assert files(tmp_path) == ["kodim01.png"]


@pytest.mark.parametrize("existing", [False, True])
def test_output_and_preview_written_together(capsys, img, tmp_path, monkeypatch, existing):
    """The preview's disk is full: the output this job created is removed again; one that --force
    replaced cannot come back, and the error says so."""
    from fastquant import write

    real = write.write_atomic

    def full(path, data, **kw):
        if str(path).endswith("prev.png"):
            raise write.OutputError(f"{path}: cannot write: No space left on device")
        return real(path, data, **kw)

    monkeypatch.setattr(write, "write_atomic", full)
    dst = tmp_path / "out.png"
    if existing:
        dst.write_bytes(b"old")
    code, out, err = run(capsys, img, "-o", dst, "--preview", tmp_path / "prev.png", "--force")
    assert code == 4 and out == "" and len(err) == 1
    assert err[0].startswith(
        f"fastquant: error: {tmp_path / 'prev.png'}: cannot write: No space left on device; {dst} removed again"
    )
    assert err[0].endswith("(the file it replaced is gone)" if existing else ": nothing written")
    assert files(tmp_path) == ["kodim01.png"]


def test_a_second_run_racing_for_an_output_gets_exit_5(capsys, img, tmp_path, monkeypatch):
    """Without --force the output is created exclusively: when another run writes the same name
    while this one computes, this one fails (exit code 5) and the other's file is kept."""
    from fastquant import api

    real = api.compress
    dst = img.default_output()

    def racing(*args, **kwargs):
        q = real(*args, **kwargs)
        dst.write_bytes(b"the other run's result")
        return q

    monkeypatch.setattr(api, "compress", racing)
    code, out, err = run(capsys, img)
    assert code == 5 and out == ""
    assert err == [f"fastquant: error: {dst}: exists, kept (use --force to overwrite)"]
    assert dst.read_bytes() == b"the other run's result"
    assert [p for p in files(tmp_path) if p.startswith(".fastquant-")] == []


def test_contrast_weights_flag_fits_as_compress_weights_contrast(capsys, img, tmp_path):
    """--contrast-weights gives the pixels of compress(weights="contrast"), not those of the default run."""
    from fastquant import compress

    code, _, err = run(capsys, img, "-k", "24", "--contrast-weights", "-o", tmp_path / "cw.png")
    assert code == 0, err
    shown = np.asarray(Image.open(tmp_path / "cw.png").convert("RGB"))
    want = compress(str(img), 24, weights="contrast")
    plain = compress(str(img), 24)
    np.testing.assert_array_equal(shown, want.image)
    assert not np.array_equal(shown, plain.image)
    assert img.unchanged()


def test_contrast_weights_refuses_a_given_palette(capsys, img, img2, tmp_path):
    for extra in (["--shared"], ["--map", str(img2)]):
        code, _, err = run(capsys, img, "-k", "8", "--contrast-weights", *extra, "--out-dir", tmp_path)
        assert code == 2 and len(err) == 1 and "--contrast-weights" in err[0], err
    assert img.unchanged() and not any(tmp_path.rglob("*-fq*"))
