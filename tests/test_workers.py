"""fastquant's own worker pool: time limits that bite inside kernels, dead workers replaced,
the memory budget, the two-stage stop.

Every test that starts processes has a timeout; times are only checked against generous
bounds (a deadline holds "within 10 s"), never exactly.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from fastquant import config, workers


def _noise(path, side=1000):
    """An image of random colours: with -k 65536 its k-means runs for minutes inside kernels."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(path)
    return path


def _cli(args, cwd, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "fastquant", *map(str, args)],
        cwd=cwd,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        **kw,
    )


def _errors(err):
    return [line for line in err.splitlines() if not line.startswith("fastquant: compiling")]


def _children(pid):
    """Process ids whose parent is ``pid`` (from /proc)."""
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry))
    return kids


def _temporaries(folder):
    return sorted(p.name for p in Path(folder).rglob(".fastquant-*"))


def _started_batch(tmp_path, kodak, n):
    """``-j 2`` on n Kodak copies, once two outputs are there: (process, out-dir)."""
    src = tmp_path / "in"
    src.mkdir()
    for i in range(n):
        shutil.copy(kodak[i % len(kodak)], src / f"img{i:02d}.png")
    out = tmp_path / "out"
    proc = _cli([src, "--out-dir", out, "-j", "2", "-k", "64"], tmp_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(out.glob("*.png"))) < 2 and proc.poll() is None:
        time.sleep(0.02)
    return proc, out


def _finish(proc, timeout=120):
    try:
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


# ----------------------------------------------------------------------------- time limit


def test_timeout_bites_inside_a_kernel(tmp_path):
    """--timeout 2 on a file whose k-means runs for minutes inside Numba kernels: the worker is
    killed at the deadline (before: the time limit waited for the kernel to return, 48-55 s
    for 5 s)."""
    _noise(tmp_path / "noise.png")
    t = time.monotonic()
    proc = _cli(["noise.png", "-k", "65536", "--timeout", "2", "-o", "out.png"], tmp_path)
    out, err = _finish(proc)
    took = time.monotonic() - t
    assert proc.returncode == 6, err
    assert _errors(err) == ["fastquant: error: noise.png: took longer than 2 s (--timeout); nothing written"]
    assert took < 2 + 10, took
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noise.png"]  # nothing written, no temporary file


def test_timeout_kills_the_worker_and_the_batch_goes_on(tmp_path, kodak):
    """Two workers, a stuck file among good ones: the stuck one times out (exit code 6), a fresh
    worker takes its place and every other file is compressed and reported.  (A fresh process
    forks its workers, which inherit the stalled read of stuck.png.)"""
    src = tmp_path / "in"
    src.mkdir()
    for p in kodak[:3] + [kodak[0]]:
        shutil.copy(p, src / ("a-stuck.png" if (src / p.name).exists() else p.name))
    script = (
        "import sys, time\n"
        "from fastquant import api, cli\n"
        "real = api.compress\n"
        "def stuck(source, *a, **kw):\n"
        "    if str(source).endswith('stuck.png'):\n"
        "        time.sleep(600)\n"
        "    return real(source, *a, **kw)\n"
        "api.compress = stuck\n"
        "sys.exit(cli.main(['in', '--out-dir', 'out', '-j', '2', '-k', '16', '--timeout', '6']))\n"
    )
    r = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 6, r.stderr
    errors = _errors(r.stderr)
    assert errors[:-1] == [
        f"fastquant: error: {os.path.join('in', 'a-stuck.png')}: took longer than 6 s (--timeout); nothing written"
    ]
    assert "3 of 4 files compressed" in errors[-1]
    assert len(r.stdout.splitlines()) == 3
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(f"{p.stem}-fq16.png" for p in kodak[:3])


def test_timeout_during_the_preview_leaves_nothing(tmp_path, kodak):
    """A job stopped at its deadline after it wrote the output but before the preview: the
    output it created is removed again, so that "nothing written" is true (a fresh process
    forks its worker, which inherits the stalled preview write)."""
    shutil.copy(kodak[0], tmp_path / "in.png")
    script = (
        "import sys, time\n"
        "from fastquant import write, cli\n"
        "real = write.write_atomic\n"
        "def slow(path, data, **kw):\n"
        "    if str(path).endswith('prev.png'):\n"
        "        time.sleep(600)\n"
        "    return real(path, data, **kw)\n"
        "write.write_atomic = slow\n"
        "sys.exit(cli.main(['in.png', '-o', 'out.png', '--preview', 'prev.png', '--timeout', '8']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 6, proc.stderr
    assert _errors(proc.stderr) == ["fastquant: error: in.png: took longer than 8 s (--timeout); nothing written"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


# ----------------------------------------------------------------------------- dead workers


def test_a_killed_worker_fails_only_its_file(tmp_path, kodak):
    """kill -9 of a busy worker (what the out-of-memory killer does): its file fails with exit
    code 7, a new worker takes its place, every other file is compressed and reported (before:
    BrokenProcessPool failed the rest of the batch, exit 70)."""
    sources = []
    for i in range(12):
        sources.append(tmp_path / f"img{i:02d}.png")
        shutil.copy(kodak[i % len(kodak)], sources[-1])
    out = tmp_path / "out"
    killed = []
    with workers.Pool(2) as pool:
        pairs = [(str(s), str(out / f"{s.stem}-fq64.png")) for s in sources]
        out.mkdir()
        results = []
        for r in pool.run(pairs, {"n_colors": 64}):
            results.append(r)
            busy = [w for w in pool.workers if w.task is not None]
            if not killed and busy:
                killed.append(busy[0].task.source)
                os.kill(busy[0].process.pid, signal.SIGKILL)
    assert len(results) == 12 and len(killed) == 1
    bad = [r for r in results if r.status != "ok"]
    assert len(bad) <= 1  # the worker may have finished in between
    for r in bad:
        assert r.source == killed[0] and r.exit_code == 7
        assert r.error == f"{r.source}: worker died (killed by signal 9; out of memory?); nothing written"
        assert not os.path.exists(r.output)
    ok = [r for r in results if r.status == "ok"]
    assert sorted(os.path.basename(r.output) for r in ok) == sorted(p.name for p in out.iterdir())
    assert _temporaries(out) == []


def test_a_killed_worker_in_the_cli(tmp_path, kodak):
    proc, out = _started_batch(tmp_path, kodak, 16)
    try:
        kids = _children(proc.pid)
        assert kids
        os.kill(kids[0], signal.SIGKILL)
    finally:
        stdout, stderr = _finish(proc)
    errors = _errors(stderr)
    assert proc.returncode in (0, 7), stderr
    assert len(errors) == 1 + (proc.returncode == 7)
    if proc.returncode == 7:
        assert errors[0].endswith(": worker died (killed by signal 9; out of memory?); nothing written")
    done = sorted(p.name for p in out.iterdir())
    assert len(stdout.splitlines()) == len(done) == 16 - (proc.returncode == 7)
    assert "Traceback" not in stderr


# ----------------------------------------------------------------------------- memory budget


def test_job_memory_reads_the_header_only(tmp_path, kodak):
    base, per = config.JOB_BASE_BYTES, config.JOB_BYTES_PER_PIXEL
    small = config.JOB_SMALL_BYTES_PER_PIXEL
    assert workers.image_size(kodak[0]) == (768, 512)
    assert workers.job_memory(kodak[0], {}) == base + (per + small) * 768 * 512
    big = 2000 * 2500  # past the array path: the small-image bytes stop at 2 * SAMPLE_PIXELS
    assert workers.job_memory(kodak[0], {"resize": (2000, 2500)}) == base + per * big + small * 2 * config.SAMPLE_PIXELS
    dithered = workers.job_memory(kodak[0], {"resize": (2000, 2500), "dither": "fs"})
    assert dithered == base + (per + config.JOB_DITHER_BYTES_PER_PIXEL) * big + small * 2 * config.SAMPLE_PIXELS
    assert workers.job_memory(kodak[0], {"max_pixels": 1000}) == base  # refused at once
    eps = tmp_path / "x.eps"  # never identified, let alone opened with Ghostscript
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100000 100000\n")
    assert workers.image_size(eps) is None and workers.job_memory(eps, {}) == base
    assert workers.job_memory(tmp_path / "missing.png", {}) == base


def test_memory_budget_runs_big_files_one_at_a_time(tmp_path, kodak, monkeypatch):
    """Jobs estimated at 60% of the budget never run side by side; small ones do; a job over
    the budget still runs (alone)."""
    sources = [str(p) for p in kodak[:4]]

    def concurrency(estimate, budget):
        monkeypatch.setattr(workers, "job_memory", lambda source, options: estimate)
        most = 0
        with workers.Pool(2, max_memory=budget) as pool:
            pool.run([(s, str(tmp_path / f"{estimate}-{i}.png")) for i, s in enumerate(sources)], {"n_colors": 16})
            original = pool._dispatch

            def dispatch():
                nonlocal most
                original()
                most = max(most, sum(w.task is not None for w in pool.workers))

            pool._dispatch = dispatch
            results = list(pool)
        assert all(r.status == "ok" for r in results), [r.error for r in results]
        return most

    assert concurrency(600, 1000) == 1
    assert concurrency(1500, 1000) == 1
    assert concurrency(100, 1000) == 2


def test_biggest_jobs_start_first(tmp_path):
    """Largest first: the last job to start is a short one, so no worker is left alone with a
    long one at the end (equal sizes keep their order)."""
    sizes = [(16, 16), (300, 200), (40, 30), (120, 90), (40, 30)]
    pairs = []
    for i, (w, h) in enumerate(sizes):
        Image.new("RGB", (w, h), (i * 40, 0, 0)).save(tmp_path / f"{i}.png")
        pairs.append((str(tmp_path / f"{i}.png"), str(tmp_path / f"{i}-out.png")))
    with workers.Pool(2, max_memory=1 << 40) as pool:
        pool.run(pairs, {"n_colors": 4})
        assert [os.path.basename(t.source) for t in pool.pending] == ["1.png", "3.png", "2.png", "4.png", "0.png"]
        results = list(pool)
    assert sorted(r.status for r in results) == ["ok"] * 5


def test_memory_budget_default_is_half_of_available():
    budget = workers.memory_budget()
    if not os.path.exists("/proc/meminfo"):
        assert budget is None
        return
    with open("/proc/meminfo") as f:
        avail = next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:")) * 1024
    assert 0.3 * avail < budget < 0.7 * avail


# ----------------------------------------------------------------------------- Ctrl-C


def _slow_batch(tmp_path, n=4):
    src = tmp_path / "in"
    src.mkdir()
    _noise(src / "noise0.png", 600)
    for i in range(1, n):
        shutil.copy(src / "noise0.png", src / f"noise{i}.png")
    return src


def test_second_ctrl_c_kills_the_workers(tmp_path):
    """Ctrl-C to the group with -j 2 on files that run for minutes: the first lets them run,
    the second kills the workers; the exit (130) is prompt, nothing is left behind."""
    src = _slow_batch(tmp_path)
    out = tmp_path / "out"
    proc = _cli([src, "--out-dir", out, "-j", "2", "-k", "65536"], tmp_path)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(_children(proc.pid)) < 2:
            time.sleep(0.05)
        time.sleep(1)
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(1.5)
        assert proc.poll() is None  # the running files go on after the first Ctrl-C
        os.killpg(proc.pid, signal.SIGINT)
        t = time.monotonic()
        stdout, stderr = _finish(proc, 60)
        took = time.monotonic() - t
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr
    assert took < 10, took
    assert "Traceback" not in stderr and "(interrupted)" in stderr.splitlines()[-1]
    assert list(out.rglob("*")) == [] and stdout == ""  # no output, no temporary file


def test_three_ctrl_c_never_hang(tmp_path, kodak):
    """Three Ctrl-C to the group, close together, with -j 2: exit 130, every output on disk is
    complete and reported, no temporary file (before: the parent waited on idle workers forever)."""
    proc, out = _started_batch(tmp_path, kodak, 24)
    try:
        for _ in range(3):
            os.killpg(proc.pid, signal.SIGINT)
            time.sleep(0.05)
    finally:
        stdout, stderr = _finish(proc, 60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    done = sorted(out.iterdir())
    assert _temporaries(out) == []
    for p in done:
        with Image.open(p) as im:
            im.load()
    assert len(stdout.splitlines()) == len(done)


def test_pool_passes_the_signal_on_after_stopping(tmp_path, kodak):
    """In a script (compress_many), Ctrl-C lets the running files finish, then raises
    KeyboardInterrupt as usual; what finished was yielded first."""
    script = (
        "import os, signal, sys\n"
        "from fastquant import compress_many\n"
        "seen = []\n"
        "try:\n"
        "    for r in compress_many(sys.argv[2:], sys.argv[1], jobs=2, n_colors=16):\n"
        "        seen.append(r.status)\n"
        "        if len(seen) == 1:\n"
        "            os.kill(os.getpid(), signal.SIGINT)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', len(seen), seen.count('ok'))\n"
    )
    sources = []
    for i in range(10):
        sources.append(tmp_path / f"img{i}.png")
        shutil.copy(kodak[i % len(kodak)], sources[-1])
    r = subprocess.run(
        [sys.executable, "-c", script, tmp_path / "out", *sources], capture_output=True, text=True, timeout=300
    )
    words = r.stdout.split()
    assert words[0] == "interrupted", r.stderr
    n, ok = int(words[1]), int(words[2])
    assert n == ok and 1 <= n < 10
    assert len(list((tmp_path / "out").iterdir())) == n


def test_sigterm_to_a_busy_worker_waits_for_its_job(tmp_path, kodak):
    """A worker holds SIGTERM while it runs a job (SIGTERM to the process group acts as Ctrl-C)."""
    with workers.Pool(1) as pool:
        results = []
        for r in pool.run([(str(kodak[i]), str(tmp_path / f"{i}.png")) for i in range(2)], {"n_colors": 16}):
            results.append(r)
            for w in pool.workers:
                if w.task is not None:
                    os.kill(w.process.pid, signal.SIGTERM)
    assert [r.status for r in results] == ["ok", "ok"]


def test_image_size_reads_headers_past_pillows_own_limit(tmp_path):
    """A header larger than Pillow's decompression-bomb limit (2 x 89 MP) still gives its size, so that
    a big file allowed by --max-pixels counts in the memory budget instead of as no pixels."""
    import struct
    import zlib

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    path = tmp_path / "big.png"
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 1, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\0" * 100))
        + chunk(b"IEND", b"")
    )
    assert workers.image_size(path) == (20000, 20000)
    assert workers.job_memory(path, {}) > config.JOB_BYTES_PER_PIXEL * 20000 * 20000
