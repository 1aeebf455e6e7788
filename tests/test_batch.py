"""Many files: output placement, folder walking, compress_many on several executors."""

import concurrent.futures as cf
import hashlib
import os
import shutil

import numpy as np
import pytest
from PIL import Image

import fastquant
from fastquant import batch, workers


def _sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_find_images_walks_and_filters(image_tree):
    src = image_tree
    flat = [os.path.relpath(p, src) for p, _ in batch.find_images([str(src)])]
    assert flat == ["a.png", "bad.png"]
    deep = [os.path.relpath(p, src) for p, _ in batch.find_images([str(src)], recursive=True)]
    assert deep == ["a.png", "bad.png", os.path.join("sub", "ünï cødé.png"), os.path.join("sub", "deeper", "c d.png")]
    globbed = [os.path.basename(p) for p, _ in batch.find_images([str(src)], recursive=True, pattern="c*")]
    assert globbed == ["c d.png"]
    (src / "a-fq256.png").write_bytes(b"x")
    skipped = [os.path.basename(p) for p, _ in batch.find_images([str(src)], skip_suffix="-fq256.png")]
    assert "a-fq256.png" not in skipped and "a.png" in skipped
    # a file named explicitly is kept whatever its extension
    assert batch.find_images([str(src / "notes.txt")])[0][0] == str(src / "notes.txt")


@pytest.mark.parametrize("name", ["../../escape.png", "../x.png", "/abs/olute.png", "a/../../b.png"])
def test_output_never_leaves_out_dir(tmp_path, name):
    out_dir = tmp_path / "out"
    root = tmp_path / "in"
    root.mkdir()
    out = batch.output_in(str(out_dir), str(root), str(root / name), 16)
    assert os.path.commonpath([os.path.realpath(out_dir), out]) == os.path.realpath(out_dir)


def test_output_through_symlink_stays_inside(tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", out_dir / "link")
    root = tmp_path / "in"
    (root / "link").mkdir(parents=True)
    with pytest.raises(fastquant.OptionError):
        batch.output_in(str(out_dir), str(root), str(root / "link" / "x.png"), 16)


@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_compress_many_mirrors_tree_and_survives_bad_file(tmp_path, image_tree, kind):
    src = image_tree
    sources = [p for p, _ in batch.find_images([str(src)], recursive=True)]
    before = {p: _sha(p) for p in sources}
    out = tmp_path / "out"
    ex = cf.ThreadPoolExecutor(2) if kind == "threads" else workers.process_pool(2)
    with ex:
        results = list(batch.compress_many(sources, str(out), executor=ex, root=str(src), n_colors=32))
    assert len(results) == 4
    by_src = {os.path.relpath(r.source, src): r for r in results}
    assert by_src["bad.png"].status == "error" and by_src["bad.png"].exit_code == 3
    assert "bad.png" in by_src["bad.png"].error
    for rel in ("a.png", os.path.join("sub", "ünï cødé.png"), os.path.join("sub", "deeper", "c d.png")):
        r = by_src[rel]
        assert r.status == "ok", r.error
        expected = out / (os.path.splitext(rel)[0] + "-fq32.png")
        assert os.path.realpath(r.output) == os.path.realpath(expected)
        with Image.open(expected) as im:
            assert im.mode == "P" and len(im.getpalette()) // 3 <= 32
        assert r.record["psnr"] > 28
    assert not (out / "bad-fq32.png").exists()
    assert {p: _sha(p) for p in sources} == before  # inputs untouched
    assert not [p for p in out.rglob("*") if p.name.startswith(".fastquant-")]


def test_compress_many_same_bytes_as_serial(tmp_path, kodak):
    sources = [str(p) for p in kodak[:3]]
    with cf.ThreadPoolExecutor(1) as ex:
        serial = {
            os.path.basename(r.output): _sha(r.output)
            for r in batch.compress_many(sources, str(tmp_path / "s"), executor=ex, n_colors=64)
        }
    parallel = {
        os.path.basename(r.output): _sha(r.output)
        for r in batch.compress_many(sources, str(tmp_path / "p"), n_colors=64)
    }  # default pool
    assert serial == parallel and len(serial) == 3


def test_compress_many_next_to_inputs_and_force(tmp_path, kodak):
    a = tmp_path / "a.png"
    shutil.copy(kodak[0], a)
    with cf.ThreadPoolExecutor(1) as ex:
        [r] = batch.compress_many([str(a)], executor=ex, n_colors=8)
        assert r.status == "ok" and r.output == str(tmp_path / "a-fq8.png")
        [r] = batch.compress_many([str(a)], executor=ex, n_colors=8)
        assert r.status == "error" and r.exit_code == 5
        [r] = batch.compress_many([str(a)], executor=ex, n_colors=8, force=True, ext=".small.png")
        assert r.status == "ok" and r.output == str(tmp_path / "a.small.png")
    with Image.open(tmp_path / "a.small.png") as im:
        assert np.asarray(im).max() < 8


def test_compress_many_never_writes_one_output_twice(tmp_path, kodak):
    a = tmp_path / "a.png"
    shutil.copy(kodak[0], a)
    Image.open(kodak[1]).save(tmp_path / "a.bmp")
    with cf.ThreadPoolExecutor(2) as ex:
        results = list(batch.compress_many([str(a), str(tmp_path / "a.bmp"), str(a)], executor=ex, n_colors=8))
    assert len(results) == 2  # a.png named twice runs once
    by_source = {os.path.basename(r.source): r for r in results}
    assert by_source["a.png"].status == "ok" and by_source["a.png"].output == str(tmp_path / "a-fq8.png")
    clash = by_source["a.bmp"]
    assert clash.status == "error" and clash.exit_code == 4 and "also the output of" in clash.error
    assert "\n" not in clash.error
    with Image.open(tmp_path / "a-fq8.png") as im, Image.open(a) as orig:
        assert im.size == orig.size  # written from a.png, once


def test_claim_outputs_keeps_the_first_writer():
    pairs = [
        ("x/a.png", "o/a-fq8.png"),
        ("x/a.jpg", "o/a-fq8.png"),
        ("x/a.png", "o/a-fq8.png"),
        ("x/b.png", "x/a.png"),
        ("x/c.png", "o/c-fq8.png"),
    ]
    kept, failed = batch.claim_outputs(pairs)
    assert kept == [("x/a.png", "o/a-fq8.png"), ("x/c.png", "o/c-fq8.png")]
    assert [(r.source, r.exit_code) for r in failed] == [("x/a.jpg", 4), ("x/b.png", 4)]
    assert "another input" in failed[1].error


def test_dask_local_cluster_gives_identical_bytes(tmp_path, kodak):
    distributed = pytest.importorskip("dask.distributed")
    sources = [str(p) for p in kodak]
    with cf.ThreadPoolExecutor(1) as ex:
        local = {
            os.path.basename(r.output): _sha(r.output)
            for r in batch.compress_many(sources, str(tmp_path / "local"), executor=ex, n_colors=64)
        }
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        results = list(
            batch.compress_many(sources, str(tmp_path / "dask"), executor=client.get_executor(), n_colors=64)
        )
    assert all(r.status == "ok" for r in results), [r.error for r in results]
    remote = {os.path.basename(r.output): _sha(r.output) for r in results}
    assert remote == local and len(remote) == len(kodak)


def test_a_dead_worker_is_one_failed_file():
    """On a generic executor too, a worker that died fails its file with exit code 7, not 70."""
    from concurrent.futures.process import BrokenProcessPool

    fut = cf.Future()
    fut.set_exception(BrokenProcessPool("A process in the process pool was terminated abruptly"))
    r = batch.Jobs._result(fut, ("x.png", "x-fq8.png"))
    assert r.status == "error" and r.exit_code == 7 and r.error.startswith("x.png: worker died")


def test_signal_inside_a_kernel_is_not_a_bug(monkeypatch, tmp_path, kodak):
    """Ctrl-C or the time limit arriving inside a Numba kernel surfaces as a
    SystemError caused by the real exception: it must act as that exception."""

    def interrupted(*args, **kwargs):  # as seen: wrapped twice (the dispatcher, then an unpickler)
        try:
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt as e:
                raise SystemError("_numba_unpickle returned a result with an exception set") from e
        except SystemError as e:
            raise SystemError("CPUDispatcher returned a result with an exception set") from e

    def timed_out(*args, **kwargs):
        try:
            raise fastquant.JobTimeoutError("x.png: took longer than 1 s (--timeout); nothing written")
        except fastquant.JobTimeoutError as e:
            raise SystemError("returned a result with an exception set") from e

    monkeypatch.setattr(batch, "run_job", interrupted)
    with pytest.raises(KeyboardInterrupt):
        batch._job(str(kodak[0]), str(tmp_path / "o.png"), {})
    monkeypatch.setattr(batch, "run_job", timed_out)
    r = batch._job(str(kodak[0]), str(tmp_path / "o.png"), {})
    assert r.status == "error" and r.exit_code == 6 and "--timeout" in r.error


def test_a_serial_run_leaves_workers_forkable(tmp_path, kodak):
    """Compressing and writing a photo (threaded deflate included) must not
    start Numba's threads, so that a later pool may fork pre-warmed workers."""
    import subprocess
    import sys

    script = (
        "import sys, fastquant, numba\n"
        "from fastquant import workers\n"
        "fastquant.compress(sys.argv[1], 64).save(sys.argv[2])\n"
        "try:\n"
        "    numba.threading_layer()\n"
        "except ValueError:\n"
        "    print(workers.start_method())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, kodak[0], str(tmp_path / "o.png")], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "fork"


@pytest.mark.parametrize("kind", [str, os.fspath, lambda p: p])
def test_compress_many_takes_one_path(tmp_path, kodak, kind):
    """One path, str or PathLike, is one source (before: a string's characters were the sources)."""
    a = tmp_path / "a.png"
    shutil.copy(kodak[0], a)
    with cf.ThreadPoolExecutor(1) as ex:
        results = list(batch.compress_many(kind(a), executor=ex, n_colors=8))
    assert [(r.source, r.status) for r in results] == [(str(a), "ok")]


def test_compress_many_unknown_option_raises_at_once(tmp_path, kodak):
    with pytest.raises(fastquant.OptionError) as info:
        batch.compress_many([str(kodak[0])], str(tmp_path / "o"), n_colours=8)
    assert "'n_colours'" in str(info.value)
    assert not (tmp_path / "o").exists()


def test_plan_is_shared(tmp_path, image_tree):
    """The CLI and compress_many name outputs with one planner."""
    pairs, failures = batch.plan([str(image_tree)], out_dir=str(tmp_path / "o"), n_colors=8, recursive=True)
    assert [os.path.relpath(o, tmp_path / "o") for _, o in pairs] == [
        "a-fq8.png",
        "bad-fq8.png",
        os.path.join("sub", "ünï cødé-fq8.png"),
        os.path.join("sub", "deeper", "c d-fq8.png"),
    ]
    assert failures == [] and (tmp_path / "o").is_dir()
    with pytest.raises(fastquant.OptionError):
        batch.plan([str(image_tree)], ext=".xyz")


def test_compress_many_default_pool_with_timeout(tmp_path, kodak):
    results = list(
        batch.compress_many([str(p) for p in kodak[:2]], str(tmp_path / "o"), n_colors=8, timeout=120, jobs=2)
    )
    assert sorted(r.status for r in results) == ["ok", "ok"]
    with cf.ThreadPoolExecutor(1) as ex, pytest.raises(fastquant.OptionError):
        batch.compress_many([str(kodak[0])], executor=ex, timeout=5)
