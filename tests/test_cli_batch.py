"""The CLI over folders: recursion, filters, --out-dir, workers, Dask, summary, Ctrl-C."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image

from fastquant.cli import main


def _sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture
def tree(image_tree, kodak):
    """The shared image tree plus in/a-fq64.png, which looks like an earlier output."""
    shutil.copy(kodak[3], image_tree / "a-fq64.png")
    return image_tree


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def test_folder_recursive_out_dir_mirrors_tree(capsys, tree, tmp_path):
    before = {p: _sha(p) for p in tree.rglob("*") if p.is_file()}
    out = tmp_path / "out"
    code, lines, err = _run(capsys, tree, "-r", "--out-dir", out, "-k", "64", "-j", "1")
    assert code == 3  # bad.png
    made = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert made == ["a-fq64.png", "sub/deeper/c d-fq64.png", "sub/ünï cødé-fq64.png"]
    assert len(lines) == 3 and all("->" in line for line in lines)
    assert any("bad.png" in e for e in err)
    assert "3 of 4 files compressed" in err[-1] and "1 failed" in err[-1]
    for p in out.rglob("*.png"):
        with Image.open(p) as im:
            assert im.mode == "P"
    assert {p: _sha(p) for p in tree.rglob("*") if p.is_file()} == before


def test_folder_without_recursion_and_glob(capsys, tree, tmp_path):
    code, lines, err = _run(capsys, tree, "--out-dir", tmp_path / "o1", "-k", "16", "--glob", "a*.png")
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "o1").iterdir()) == ["a-fq16.png", "a-fq64-fq16.png"]
    code, lines, err = _run(capsys, tree, "--out-dir", tmp_path / "o2", "-k", "64", "--glob", "a*.png")
    assert sorted(p.name for p in (tmp_path / "o2").iterdir()) == ["a-fq64.png"]  # old output skipped
    code, lines, err = _run(
        capsys, tree, "--out-dir", tmp_path / "o3", "-k", "64", "--glob", "a*.png", "--include-outputs"
    )
    assert sorted(p.name for p in (tmp_path / "o3").iterdir()) == ["a-fq64-fq64.png", "a-fq64.png"]


def test_outputs_next_to_inputs_with_ext(capsys, tree):
    code, lines, err = _run(capsys, tree / "sub", "-r", "-k", "8", "--ext", ".small.png")
    assert code == 0
    assert (tree / "sub" / "ünï cødé.small.png").is_file()
    assert (tree / "sub" / "deeper" / "c d.small.png").is_file()


def test_name_escaping_out_dir_is_refused(capsys, tmp_path, kodak):
    out = tmp_path / "out"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, out / "sub")  # a link inside out-dir pointing outside it
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    shutil.copy(kodak[0], src / "sub" / "x.png")
    shutil.copy(kodak[1], src / "y.png")
    code, lines, err = _run(capsys, src, "-r", "--out-dir", out, "-k", "8")
    assert code == 2
    assert any("outside" in e for e in err)
    assert list(elsewhere.iterdir()) == []
    assert (out / "y-fq8.png").is_file()


def test_symlinked_files_keep_their_place_in_the_tree(capsys, tmp_path, kodak):
    src = tmp_path / "in"
    for sub in ("c1", "c2"):
        (src / sub).mkdir(parents=True)
        os.symlink(kodak[0], src / sub / "x.png")  # both link to one file outside the tree
    out = tmp_path / "out"
    code, lines, err = _run(capsys, src, "-r", "--out-dir", out, "-k", "8")
    assert code == 0, err
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.png")) == ["c1/x-fq8.png", "c2/x-fq8.png"]


def test_two_inputs_with_one_output_name(capsys, tmp_path, kodak):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(kodak[0], src / "a.png")
    Image.open(kodak[1]).save(src / "a.jpg", quality=95)
    shutil.copy(kodak[2], src / "b.png")
    before = {p.name: _sha(p) for p in src.iterdir()}
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}"
        code, lines, err = _run(capsys, src, src / "b.png", "--out-dir", out, "-k", "8", "-j", jobs, "--force")
        assert code == 4  # an output error, documented
        # a.jpg comes first (sorted names) and keeps a-fq8.png; a.png is refused, b.png runs once
        assert sorted(p.name for p in out.iterdir()) == ["a-fq8.png", "b-fq8.png"]
        assert len(lines) == 2
        clash = [e for e in err if "a.png: not compressed" in e]
        assert len(clash) == 1 and "a.jpg" in clash[0]
        assert "2 of 3 files compressed" in err[-1] and "1 failed" in err[-1]
    assert {p.name: _sha(p) for p in src.iterdir()} == before


def test_output_that_is_another_input_is_refused(capsys, tmp_path, kodak):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(kodak[0], src / "a.png")
    shutil.copy(kodak[1], src / "a.small.png")
    before = {p.name: _sha(p) for p in src.iterdir()}
    code, lines, err = _run(capsys, src / "a.png", src / "a.small.png", "--ext", ".small.png", "--force")
    assert code == 4
    assert any("a.png: not compressed" in e and "another input" in e for e in err)
    after = {p.name: _sha(p) for p in src.iterdir()}
    assert after.pop("a.small.small.png") and after == before  # the other input did run


def test_jobs_give_the_same_bytes(capsys, tmp_path, kodak):
    src = tmp_path / "in"
    src.mkdir()
    for p in kodak[:5]:
        shutil.copy(p, src / p.name)
    assert _run(capsys, src, "--out-dir", tmp_path / "j1", "-j", "1", "-k", "64")[0] == 0
    assert _run(capsys, src, "--out-dir", tmp_path / "j2", "-j", "2", "-k", "64")[0] == 0
    one = {p.name: _sha(p) for p in (tmp_path / "j1").iterdir()}
    two = {p.name: _sha(p) for p in (tmp_path / "j2").iterdir()}
    assert one == two and len(one) == len(kodak[:5])


def test_dask_local_scheduler(capsys, tmp_path, kodak):
    pytest.importorskip("dask.distributed")
    src = tmp_path / "in"
    src.mkdir()
    for p in kodak[:4]:
        shutil.copy(p, src / p.name)
    assert _run(capsys, src, "--out-dir", tmp_path / "local", "-j", "1", "-k", "32")[0] == 0
    code, lines, err = _run(capsys, src, "--out-dir", tmp_path / "dask", "--scheduler", "local", "-k", "32", "--json")
    assert code == 0, err
    assert json.loads(lines[-1])["summary"]["ok"] == 4
    local = {p.name: _sha(p) for p in (tmp_path / "local").iterdir()}
    remote = {p.name: _sha(p) for p in (tmp_path / "dask").iterdir()}
    assert local == remote and len(local) == 4


def test_json_summary_line(capsys, tree, tmp_path):
    code, lines, err = _run(capsys, tree, "-r", "--out-dir", tmp_path / "o", "-k", "64", "--json")
    records = [json.loads(line) for line in lines]
    summary = records[-1]["summary"]
    assert summary == {**summary, "files": 4, "ok": 3, "failed": 1, "skipped": 0}
    assert summary["output_bytes"] == sum(r["output_bytes"] for r in records[:-1] if r["status"] == "ok")
    assert err == ["fastquant: error: " + next(r["error"] for r in records[:-1] if r["status"] == "error")]


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "SIGTERM-group"])
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_stops_cleanly(tmp_path, kodak, jobs, how):
    """Ctrl-C (SIGINT) or SIGTERM, to fastquant or to its whole process group
    (workers included): finished outputs stay whole, no temporary file is left."""
    src = tmp_path / "in"
    src.mkdir()
    for i in range(40):  # enough work to be interrupted in the middle
        shutil.copy(kodak[i % len(kodak)], src / f"img{i:02d}.png")
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastquant", str(src), "--out-dir", str(out), "-j", jobs],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("*.png"))) < 2:
        time.sleep(0.05)
    if how == "SIGTERM-group":
        os.killpg(proc.pid, signal.SIGTERM)
    else:
        proc.send_signal(getattr(signal, how))
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == (130 if how == "SIGINT" else 143), stderr
    assert "Traceback" not in stderr
    assert "(interrupted)" in stderr.splitlines()[-1]
    assert ", 0 failed;" in stderr.splitlines()[-1]  # running files finished or were dropped, not failed
    assert not [line for line in stderr.splitlines() if line.startswith("fastquant: error")], stderr
    done = sorted(out.iterdir())
    assert 2 <= len(done) < 40
    assert not [p for p in done if p.name.startswith(".fastquant-")]  # no temporary files left
    for p in done:  # every output that exists is complete
        with Image.open(p) as im:
            im.load()
    # every file reported was written; with -j 1 the file being written when
    # the signal came may be complete but unreported
    assert len(done) - (jobs == "1") <= len(stdout.splitlines()) <= len(done)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_timeout_per_file(capsys, tmp_path, kodak, jobs):
    src = tmp_path / "in"
    src.mkdir()
    for p in kodak[:4]:
        shutil.copy(p, src / p.name)
    out = tmp_path / "out"
    code, lines, err = _run(capsys, src, "--out-dir", out, "-j", jobs, "--timeout", "0.001")
    assert code == 6
    assert sum("--timeout" in e for e in err) == 4 and "4 failed" in err[-1]
    assert list(out.iterdir()) == []  # nothing written, no temporary file left
    code, lines, err = _run(capsys, src, "--out-dir", out, "-j", jobs, "--timeout", "600", "-k", "8")
    assert code == 0 and len(list(out.iterdir())) == 4


def test_timeout_must_be_positive(capsys, kodak):
    assert _run(capsys, kodak[0], "--timeout", "0")[0] == 2


def test_out_dir_folder_swapped_for_a_symlink(capsys, tmp_path, kodak, monkeypatch):
    """A folder of the out-dir replaced by a symbolic link between planning and writing: the write
    refuses to go through it (before: the output landed where the link pointed)."""
    from fastquant import api

    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    shutil.copy(kodak[0], src / "sub" / "x.png")
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    real = api.compress

    def swap(*args, **kwargs):
        q = real(*args, **kwargs)
        if (out / "sub").is_dir():
            shutil.rmtree(out / "sub")
        os.symlink(elsewhere, out / "sub")
        return q

    monkeypatch.setattr(api, "compress", swap)
    code, lines, err = _run(capsys, src, "-r", "--out-dir", out, "-k", "8", "-j", "1")
    assert code == 4 and lines == []
    assert len(err) == 1 and "(sub) is a symbolic link" in err[0], err
    assert list(elsewhere.iterdir()) == []


def test_read_only_out_dir_says_so(capsys, tmp_path, kodak, monkeypatch):
    import errno

    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(os, "mkdir", read_only)
    code, lines, err = _run(capsys, kodak[0], "--out-dir", tmp_path / "out")
    assert code == 4 and lines == []
    assert err == [f"fastquant: error: {tmp_path / 'out'}: cannot make the output folder: Read-only file system"]


def test_read_only_out_dir_subfolder_subprocess(tmp_path, kodak):
    """A real unwritable out-dir (as a user without the permission-override capabilities): the
    reason is "Permission denied", not "No such file or directory"."""
    from .test_reliability import _unprivileged

    prefix = _unprivileged(tmp_path)
    if prefix is None:
        pytest.skip("running as root and cannot drop the permission-override capabilities")
    (tmp_path / "in" / "sub").mkdir(parents=True)
    shutil.copy(kodak[0], tmp_path / "in" / "sub" / "x.png")
    (tmp_path / "out").mkdir()
    (tmp_path / "out").chmod(0o555)
    try:
        r = subprocess.run(
            prefix + [sys.executable, "-m", "fastquant", "in", "-r", "--out-dir", "out"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        (tmp_path / "out").chmod(0o755)
    assert r.returncode == 4, r.stderr
    err = [line for line in r.stderr.splitlines() if not line.startswith("fastquant: compiling")]
    assert err == [f"fastquant: error: {tmp_path / 'out' / 'sub' / 'x-fq256.png'}: cannot write: Permission denied"]


@pytest.mark.parametrize("extra", [[], ["--scheduler", "local"]])
def test_timeout_only_with_own_workers(capsys, tmp_path, kodak, extra):
    code, lines, err = _run(capsys, kodak[0], "-o", tmp_path / "o.png", "--timeout", "60", *extra)
    if extra:
        assert code == 2 and "--scheduler" in err[0]
    else:
        assert code == 0 and len(lines) == 1


def test_a_pool_run_ends_without_the_interpreters_teardown(tmp_path):
    """Once fastquant's own workers have all exited, ``python -m fastquant`` skips the teardown
    (an atexit handler does not run) with every line flushed, every file written and its exit code."""
    import numpy as np

    import fastquant

    rng = np.random.default_rng(11)
    for i in range(4):  # 4 files and -j 2: a worker pool
        Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    run_main = (
        "import atexit, runpy, sys\n"
        "atexit.register(lambda: print('teardown', file=sys.stderr))\n"
        f"sys.argv = ['fastquant', {str(tmp_path)!r}, '-j', '2', '-k', '16']\n"
        "runpy.run_module('fastquant', run_name='__main__')\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-c", run_main], capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr
    assert "teardown" not in out.stderr and "4 of 4 files compressed" in out.stderr
    assert len(out.stdout.splitlines()) == 4
    for i in range(4):
        expected = fastquant.compress(str(tmp_path / f"{i}.png"), 16).encode(".png")
        assert (tmp_path / f"{i}-fq16.png").read_bytes() == expected
    (tmp_path / "bad.png").write_text("not an image")  # a failed file: its exit code all the same
    bad = subprocess.run(
        [sys.executable, "-c", run_main.replace("'-k', '16'", "'-k', '16', '-f'")],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert bad.returncode == 3 and "teardown" not in bad.stderr and "bad.png" in bad.stderr
