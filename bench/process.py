"""Whole-process benchmarks of issue #13: start-up, batch throughput, large files.

    python bench/process.py [--startup] [--batch] [--wholefile] [--precompile] [--compare TREE] [--repeat N]
                            [--out bench/results]

Every figure is a median of interleaved runs (each round runs every command once, in turn), so
that the load of a shared machine falls on all of them alike; the load average is printed with
the tables.  Peak memory is the child's ``ru_maxrss`` (``os.wait4``).

- ``--startup``: ``python -c "import numpy, numba"``, a cached ``python -m fastquant photo.png``,
  and the same job in-process (compress, encode, write: the second call in a warm process);
  the start-up overhead is CLI - import - job.  Then like with like on the 12 Kodak photos (the
  README's headline): fastquant's CLI against pngquant 3 and 2.17 as whole processes, and
  fastquant in-process against libimagequant in-process (the ``imagequant`` bindings of the bench
  extra).  Appends to startup.md.
- ``--batch``: 48 files (12 Kodak photos in 4 folders): the default run, the one-core run
  (``NUMBA_NUM_THREADS=1 -j 1``), the default run with ``-q``, and pngquant 3 and 2.17 through
  ``xargs -P 2`` (on their own copies of the files), with wall and CPU seconds.  batch.md.
- ``--wholefile``: a 12 MP JPEG and a 24 MP PNG made from ../shared/images/large (upscaled),
  fastquant's CLI against pngquant 2.17 and 3 (given the PNG of the same pixels: pngquant reads
  PNG only), with time and peak memory; the memory target is ``import fastquant``'s own plus 2x
  the decoded RGBA image, the import measured with the library loaded (``fastquant.compress``:
  the package imports its names lazily, so a bare ``import fastquant`` loads neither numpy nor
  Numba).  The images are made with Pillow (Lanczos upscaling of LadyBird.jpg to 4384x2740, saved
  as a quality-92 JPEG and as a PNG; artificial.png to 6000x4000).  wholefile.md.
- ``--precompile``: ``python -m fastquant --precompile -v`` from an empty ``NUMBA_CACHE_DIR``, N rounds
  (one untimed round first writes the .pyc files): wall, CPU and peak memory of the process, the CPU of
  each stage and each kernel's compile CPU (median over the rounds); the #13 target is 12 s.  startup.md.
- ``--compare TREE``: CPU seconds of a cached one-file run of this checkout against another (say
  ``git worktree add /tmp/old <rev>``, its kernels cached by one run), paired round by round.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = ROOT.parent / "shared" / "images"
if not SHARED.exists():
    SHARED = Path("/work/shared/images")
PY = sys.executable
PNGQUANT3 = shutil.which("pngquant", path=str(Path(PY).parent)) or "pngquant"
PNGQUANT2 = "/usr/bin/pngquant" if Path("/usr/bin/pngquant").exists() else None


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=str(ROOT), FASTQUANT_COMPILE_NOTICE="off")
    # An installed package has its .pyc files; without them every run compiles fastquant's sources
    # again (a tenth of a second or more), which no user pays.  The untimed first round writes them.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(extra)
    return env


#: GNU time, which reports a command's own peak memory (see :func:`run`).
TIME = "/usr/bin/time" if Path("/usr/bin/time").exists() else None


def run(cmd, env=None, shell=False, cwd=None, stderr=False):
    """(wall seconds, peak RSS in MB, CPU seconds: user + system) of one child process
    (with the children it waited for: a worker pool's, xargs's); with ``stderr``, its
    standard error (text) as a fourth item.

    The peak comes from ``/usr/bin/time``, started by it: on Linux a child's ``ru_maxrss`` is at
    least this process's own high-water mark (carried over the fork and the exec), which after
    making the large images is more than pngquant's whole peak.  (Of a shell command, the peak of
    its first command: ``xargs`` and the processes it waited for.)
    """
    peak_file = None
    if TIME:
        fd, peak_file = tempfile.mkstemp(prefix="peak-")
        os.close(fd)
        prefix = [TIME, "-f", "%M", "-o", peak_file]
        cmd = " ".join(prefix) + " " + cmd if shell else prefix + list(cmd)
    try:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, env=env, shell=shell, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(status)
        err = p.stderr.read().decode()
        p.stderr.close()
        if p.returncode:
            raise RuntimeError(f"{cmd}: exit {p.returncode}: {err}")
        peak_kb = int(Path(peak_file).read_text().split()[-1]) if peak_file else usage.ru_maxrss
    finally:
        if peak_file:
            os.unlink(peak_file)
    figures = (wall, peak_kb / 1024, usage.ru_utime + usage.ru_stime)
    return (*figures, err) if stderr else figures


def interleaved(commands, repeat):
    """{name: [(seconds, MB), ...]} over ``repeat`` rounds (after one untimed round)."""
    for _, cmd, kw in commands:
        run(cmd, **kw)
    out = {name: [] for name, _, _ in commands}
    for _ in range(repeat):
        for name, cmd, kw in commands:
            out[name].append(run(cmd, **kw))
    return out


def med(samples, i=0):
    return statistics.median(s[i] for s in samples)


def header():
    load = os.getloadavg()
    return (
        f"- date: {time.strftime('%Y-%m-%dT%H:%M:%S')}; {os.cpu_count()} CPUs; load average during the run "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min: the machine was shared)\n"
        f"- pngquant 3: {PNGQUANT3}; pngquant 2.17: {PNGQUANT2}\n"
    )


#: A warm process timing one job per source: ``{imports}`` then, per run, ``{job}`` (with ``src``
#: and ``out``); median over the sources of the median of the warm runs (the first is not counted).
_TIMED = r"""
import statistics, sys, time
{imports}
out, n, sources = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
wall, cpu = [], []
for src in sources:
    times = []
    for i in range(n + 1):
        t, c = time.perf_counter(), time.process_time()
{job}
        times.append((time.perf_counter() - t, time.process_time() - c))
    wall.append(statistics.median(w for w, _ in times[1:]))
    cpu.append(statistics.median(c for _, c in times[1:]))
print(statistics.median(wall), statistics.median(cpu))
"""

_JOB = _TIMED.format(
    imports="from fastquant.job import run_job",
    job="        run_job(src, out, force=True, ssim=True)",
)

#: libimagequant in-process through the ``imagequant`` bindings (GPL: bench extra only): decode,
#: quantize (no dithering, 256 colours), save an optimised PNG.
_IMAGEQUANT = _TIMED.format(
    imports="import imagequant\nfrom PIL import Image",
    job="""        with Image.open(src) as im:
            q = imagequant.quantize_pil_image(im.convert("RGBA"), dithering_level=0.0, max_colors=256)
        q.save(out, optimize=True)""",
)


#: Where a cached one-file run's CPU time goes, stage by stage, in one process (CPU ms on stdout as
#: ``name=ms|...``): the command line's own imports, numpy and Numba imported as the command line
#: does it, then what fastquant adds.
_BREAKDOWN = r"""
import contextlib, io, sys, time
T = time.process_time
marks = []
t0 = T()
from fastquant import cli
marks.append(("the command line's modules (fastquant.cli: argparse, json; no Numba yet)", T() - t0)); t = T()
cli._import_numba()
marks.append(("import numpy, numba, as the command line does (garbage collector paused, then frozen)", T() - t))
t = T()
from numba.core.registry import cpu_target
ctx = cpu_target.target_context
marks.append(("Numba's CPU target context", T() - t)); t = T()
import fastquant.job, fastquant.api
from fastquant import jit
marks.append((f"fastquant's modules a run imports ({len(jit.KERNELS)} @njit dispatchers)", T() - t)); t = T()
from PIL import Image, PngImagePlugin
marks.append(("Pillow: Image and its PNG plugin", T() - t)); t = T()
runtime, load = [0.0], [0.0, 0]
def timed_runtime(ctx, folder, f=jit._initialize_runtime):
    a = T(); r = f(ctx, folder); runtime[0] += T() - a; return r
jit._initialize_runtime = timed_runtime
def timed_loading(d, f=jit._light_loading):  # a kernel's cache is set up at its first load
    d = f(d)
    def timed(sig, tc, f=d._cache.load_overload):
        a = T(); r = f(sig, tc); load[0] += T() - a; load[1] += 1; return r
    d._cache.load_overload = timed
    return d
jit._light_loading = timed_loading
args = [sys.argv[1], "-o", sys.argv[2], "-f"]
with contextlib.redirect_stdout(io.StringIO()):
    t = T(); cli.main(args); first = T() - t
    t = T(); cli.main(args); second = T() - t
marks.append(("Numba's runtime (NRT), loaded from fastquant's cache at the first kernel load", runtime[0]))
marks.append((f"loading the {load[1]} cached kernels the job uses", load[0] - runtime[0]))
marks.append(("the rest of the first run beyond a warm one (first touches, the CLI)", first - second - load[0]))
marks.append(("the job itself (cli.main in a warm process)", second))
print("|".join(f"{n}={1000 * v:.1f}" for n, v in marks))
"""


def _breakdown(repeat, photo, out):
    """Table lines: the median CPU ms of each stage of :data:`_BREAKDOWN` over ``repeat`` processes."""
    runs = []
    for _ in range(repeat):
        text = subprocess.run(
            [PY, "-c", _BREAKDOWN, photo, str(out)], env=_env(), check=True, capture_output=True, text=True
        ).stdout
        runs.append(dict(part.rsplit("=", 1) for part in text.strip().split("|")))
    lines = ["| stage (one process, in order) | CPU ms |", "|---|---:|"]
    for name in runs[0]:
        lines.append(f"| {name} | {statistics.median(float(r[name]) for r in runs):.0f} |")
    return lines


def _in_process(script, out, repeat, photos):
    """(wall, CPU) seconds: medians over ``photos`` of the median warm in-process run of ``script``;
    (None, None) when it cannot run (``imagequant`` not installed).
    """
    argv = [PY, "-c", script, str(out), str(repeat), *map(str, photos)]
    try:
        wall, cpu = subprocess.run(argv, env=_env(), check=True, capture_output=True, text=True).stdout.split()
    except subprocess.CalledProcessError:
        return None, None
    return float(wall), float(cpu)


def startup(repeat, out):
    photos = sorted((SHARED / "kodak").glob("kodim*.png"))[:12]
    photo = str(photos[0])
    tmp = Path(tempfile.mkdtemp())
    env = _env()
    subprocess.run([PY, "-m", "fastquant", photo, "-o", str(tmp / "o.png"), "-f"], env=env, check=True)
    res = interleaved(
        [
            ("python -c 'import numpy, numba'", [PY, "-c", "import numpy, numba"], {"env": env}),
            ("python -c 'import fastquant'", [PY, "-c", "import fastquant"], {"env": env}),
            (
                "the same, garbage collector paused (as the CLI imports Numba)",
                [PY, "-c", "import gc; gc.disable(); import numpy, numba; gc.freeze()"],
                {"env": env},
            ),
            (
                "python -m fastquant kodim01.png -o OUT -f (cached)",
                [PY, "-m", "fastquant", photo, "-o", str(tmp / "o.png"), "-f"],
                {"env": env},
            ),
        ],
        repeat,
    )
    job, job_cpu = _in_process(_JOB, tmp / "j.png", repeat, [photo])
    names = list(res)
    lines = [
        "",
        "## Whole-process start-up, cached kernels (bench/process.py --startup)",
        "",
        header(),
        "| command | median s | CPU s | peak MB |",
        "|---|---:|---:|---:|",
    ]
    for name in names:
        lines.append(f"| {name} | {med(res[name]):.3f} | {med(res[name], 2):.3f} | {med(res[name], 1):.0f} |")
    lines.append(f"| the same job in-process (run_job, warm process) | {job:.3f} | {job_cpu:.3f} | |")
    cli = names[3]
    over = med(res[cli]) - med(res[names[0]]) - job
    over_cpu = med(res[cli], 2) - med(res[names[0]], 2) - job_cpu
    floor = med(res[cli]) - med(res[names[2]]) - job
    floor_cpu = med(res[cli], 2) - med(res[names[2]], 2) - job_cpu
    lines += [
        "",
        f"Start-up overhead: CLI - import numpy, numba - in-process job = {over:.3f} s (target <= 0.15 s); "
        f"in CPU seconds, which the load changes less: {over_cpu:.3f} s.  Against the import with the "
        f"garbage collector paused, as the CLI does it: {floor:.3f} s ({floor_cpu:.3f} CPU s).",
        "",
    ]
    lines += [f"Where the CPU time of a cached run of {Path(photo).name} goes:", ""]
    lines += _breakdown(repeat, photo, tmp / "b.png") + [""]
    lines += _like_with_like(repeat, photos, tmp)
    _write(out / "startup.md", lines)


def _like_with_like(repeat, photos, tmp):
    """The 12 Kodak photos at 256 colours, no dithering: whole processes against whole processes,
    in-process against in-process (the README's headline comparison).
    """
    env = _env()
    commands = []
    for p in photos:
        commands.append(
            (f"fastquant {p.name}", [PY, "-m", "fastquant", str(p), "-o", str(tmp / "o.png"), "-f"], {"env": env})
        )
        commands.append(
            (f"pngquant 3 {p.name}", [PNGQUANT3, "--nofs", "-f", "-o", str(tmp / "p3.png"), "256", str(p)], {})
        )
        if PNGQUANT2:
            commands.append(
                (f"pngquant 2.17 {p.name}", [PNGQUANT2, "--nofs", "-f", "-o", str(tmp / "p2.png"), "256", str(p)], {})
            )
    res = interleaved(commands, repeat)
    tools = ["fastquant", "pngquant 3"] + (["pngquant 2.17"] if PNGQUANT2 else [])

    def per_tool(i):
        return {t: statistics.median(med(res[f"{t} {p.name}"], i) for p in photos) for t in tools}

    wall, cpu, mb = per_tool(0), per_tool(2), per_tool(1)
    job, job_cpu = _in_process(_JOB, tmp / "j.png", repeat, photos)
    liq, liq_cpu = _in_process(_IMAGEQUANT, tmp / "l.png", repeat, photos)
    lines = [
        f"### Like with like: {len(photos)} Kodak photos, 256 colours, no dithering",
        "",
        "Medians over the photos of each photo's median; whole processes are `python -m fastquant PHOTO -o OUT -f`",
        "(cached kernels) and `pngquant --nofs 256 PHOTO`; in-process is a warm process reading, quantizing and",
        "writing the PNG (fastquant's `run_job`, with SSIM as the command line computes it; libimagequant through",
        "the `imagequant` bindings, saved by Pillow with `optimize=True`).",
        "",
        "| comparison | tool | median s | CPU s | peak MB |",
        "|---|---|---:|---:|---:|",
    ]
    for t in tools:
        lines.append(f"| whole process | {t} | {wall[t]:.3f} | {cpu[t]:.3f} | {mb[t]:.0f} |")
    lines.append(f"| in-process | fastquant | {job:.3f} | {job_cpu:.3f} | |")
    if liq is not None:
        lines.append(f"| in-process | libimagequant (imagequant) | {liq:.3f} | {liq_cpu:.3f} | |")
    ratio = f"; in-process, libimagequant / fastquant = {liq / job:.2f}x" if liq is not None else ""
    lines += [
        "",
        f"Whole process, fastquant / pngquant 3 = {wall['fastquant'] / wall['pngquant 3']:.2f}x the time{ratio}.",
        "",
    ]
    return lines


def _pngquant_xargs(binary, files, out):
    """pngquant over copies of ``files`` under ``out``: its outputs land beside its inputs, and
    must not land among fastquant's (a folder run would compress them too).
    """
    copies = []
    for f in files:
        copies.append(out / f.parent.name / f.name)
        copies[-1].parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, copies[-1])
    listing = out / "list.txt"
    listing.write_text("\n".join(str(f) for f in copies) + "\n")
    return f"xargs -P 2 -n 1 -a {listing} {binary} --nofs --force --ext -pq.png 256"


def batch(repeat, out):
    tmp = Path(tempfile.mkdtemp())
    photos = sorted((SHARED / "kodak").glob("kodim*.png"))[:12]
    files = []
    for d in range(4):
        (tmp / "in" / f"d{d}").mkdir(parents=True)
        for p in photos:
            files.append(tmp / "in" / f"d{d}" / p.name)
            shutil.copy(p, files[-1])
    # As a user types it: per-file lines printed (to a pipe here), which show the SSIM.
    fq = [PY, "-m", "fastquant", str(tmp / "in"), "-r", "--out-dir", str(tmp / "out"), "-f"]
    commands = [
        ("python -m fastquant DIR (default)", fq, {"env": _env()}),
        (
            "NUMBA_NUM_THREADS=1 python -m fastquant DIR -j 1 (one core)",
            fq + ["-j", "1"],
            {"env": _env(NUMBA_NUM_THREADS="1")},
        ),
        (
            "xargs -P 2 pngquant --nofs 256 (pngquant 3)",
            _pngquant_xargs(PNGQUANT3, files, tmp / "pq3"),
            {"shell": True},
        ),
        ("python -m fastquant DIR -q (no per-file lines)", fq + ["-q"], {"env": _env()}),
    ]
    if PNGQUANT2:
        commands.append(
            (
                "xargs -P 2 pngquant --nofs 256 (pngquant 2.17)",
                _pngquant_xargs(PNGQUANT2, files, tmp / "pq2"),
                {"shell": True},
            )
        )
    res = interleaved(commands, repeat)
    written = sorted((tmp / "out").rglob("*.png"))
    if len(written) != len(files):
        raise RuntimeError(f"fastquant wrote {len(written)} outputs for {len(files)} inputs")
    names = list(res)
    lines = [
        "",
        f"## Batch of {len(files)} files (12 Kodak photos in 4 folders; bench/process.py --batch)",
        "",
        header(),
        "CPU: user + system seconds of the command and the processes it waited for (its workers), which",
        "the load of a shared machine changes less than the wall time.",
        "",
        "| command | median s | files/s | CPU s | CPU ms per file | peak MB (parent) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        s, cpu = med(res[name]), med(res[name], 2)
        lines.append(
            f"| {name} | {s:.3f} | {len(files) / s:.2f} | {cpu:.2f} | {1000 * cpu / len(files):.0f} "
            f"| {med(res[name], 1):.0f} |"
        )
    d, one, pq3 = (med(res[n]) for n in names[:3])
    lines += [
        "",
        f"Default / one core: {one / d:.2f}x the files per second (target >= 1.6x); "
        f"default / pngquant 3 (xargs -P 2): {pq3 / d:.2f}x (target >= 1.0x).",
        "",
    ]
    _write(out / "batch.md", lines)


def _large_images(tmp):
    from PIL import Image

    jpg = tmp / "photo-12mp.jpg"
    png = tmp / "render-24mp.png"
    with Image.open(SHARED / "large" / "LadyBird.jpg") as im:
        big = im.convert("RGB").resize((4384, 2740), Image.LANCZOS)  # 12.0 MP
        big.save(jpg, quality=92)
        big.save(tmp / "photo-12mp.png", compress_level=6)
    with Image.open(SHARED / "large" / "artificial.png") as im:
        im.convert("RGB").resize((6000, 4000), Image.LANCZOS).save(png, compress_level=6)  # 24 MP
    return [(jpg, tmp / "photo-12mp.png", 4384 * 2740), (png, png, 6000 * 4000)]


def wholefile(repeat, out):
    tmp = Path(tempfile.mkdtemp())
    images = _large_images(tmp)
    base = interleaved(
        [
            ("import", [PY, "-c", "import fastquant; fastquant.compress"], {"env": _env()}),
            ("bare", [PY, "-c", "import fastquant"], {"env": _env()}),
        ],
        repeat,
    )
    import_mb = med(base["import"], 1)
    lines = [
        "",
        "## Whole-file time and memory (bench/process.py --wholefile)",
        "",
        header(),
        f"`python -c 'import fastquant; fastquant.compress'` (the library loaded) peaks at {import_mb:.0f} MB"
        f" (a bare `import fastquant`, which loads its names lazily: {med(base['bare'], 1):.0f} MB).",
        "",
        "| image | command | median s | CPU s | peak MB | MB target (import + 2 x RGBA) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for src, as_png, pixels in images:
        commands = [
            (
                f"fastquant {src.name}",
                [PY, "-m", "fastquant", str(src), "-o", str(tmp / "fq.png"), "-f"],
                {"env": _env()},
            )
        ]
        commands.append(
            (
                f"pngquant 3 {as_png.name}",
                [PNGQUANT3, "--nofs", "--force", "--output", str(tmp / "p3.png"), "256", str(as_png)],
                {},
            )
        )
        if PNGQUANT2:
            commands.append(
                (
                    f"pngquant 2.17 {as_png.name}",
                    [PNGQUANT2, "--nofs", "--force", "--output", str(tmp / "p2.png"), "256", str(as_png)],
                    {},
                )
            )
        res = interleaved(commands, repeat)
        target = import_mb + 2 * 4 * pixels / 2**20
        for name in res:
            lines.append(
                f"| {src.stem} ({pixels / 1e6:.1f} MP) | {name} | {med(res[name]):.2f} | {med(res[name], 2):.2f} | "
                f"{med(res[name], 1):.0f} | {target:.0f} |"
            )
    lines.append("")
    _write(out / "wholefile.md", lines)


def precompile(repeat, out):
    """``--precompile`` from an empty cache, ``repeat`` rounds (see the module docstring)."""
    import re

    rounds, kernels, stages = [], {}, {}
    for i in range(repeat + 1):
        cache = Path(tempfile.mkdtemp(prefix="fq-precompile-"))
        try:
            cmd = [PY, "-m", "fastquant", "--precompile", "-v"]
            wall, peak, cpu, err = run(cmd, env=_env(NUMBA_CACHE_DIR=str(cache)), stderr=True)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        if i == 0:
            continue  # .pyc files written, file caches warm
        rounds.append((wall, float(re.search(r"cached in ([0-9.]+) s", err).group(1)), cpu, peak))
        for seconds, name in re.findall(r"^\s*([0-9.]+) s\s+\d+ versions?\s+(\S+)$", err, re.M):
            kernels.setdefault(name, []).append(float(seconds))
        stage_line = err.split("CPU seconds of each stage: ")[1].splitlines()[0]
        for stage, seconds in re.findall(r"([a-z ]+?) ([0-9.]+)(?:,|$)", stage_line):
            stages.setdefault(stage.strip(), []).append(float(seconds))
    lines = [
        "",
        "## `--precompile` from an empty cache (bench/process.py --precompile)",
        "",
        header(),
        f"`python -m fastquant --precompile -v` with an empty `NUMBA_CACHE_DIR`, {repeat} rounds after an untimed one.",
        "",
        "| round | process wall s | --precompile's own s | CPU s (user + system) | peak MB |",
        "|---:|---:|---:|---:|---:|",
    ]
    for i, (wall, own, cpu, peak) in enumerate(rounds, 1):
        lines.append(f"| {i} | {wall:.1f} | {own:.1f} | {cpu:.1f} | {peak:.0f} |")
    wall = statistics.median(r[0] for r in rounds)
    lines += [
        f"| median | {wall:.1f} | {statistics.median(r[1] for r in rounds):.1f} | "
        f"{statistics.median(r[2] for r in rounds):.1f} | {statistics.median(r[3] for r in rounds):.0f} |",
        "",
        f"Target (#13 item 1): <= 12 s; median process wall {wall:.1f} s: {'met' if wall <= 12 else 'not met'}.",
        "CPU seconds of each stage (median): "
        + ", ".join(f"{stage} {statistics.median(v):.1f}" for stage, v in stages.items())
        + ".",
        "",
        "| kernel (compile CPU s, exclusive of the kernels it compiles in turn; median) | s |",
        "|---|---:|",
    ]
    for name, v in sorted(kernels.items(), key=lambda kv: -statistics.median(kv[1])):
        lines.append(f"| `{name.removeprefix('fastquant.')}` | {statistics.median(v):.2f} |")
    lines.append(f"| total | {sum(statistics.median(v) for v in kernels.values()):.1f} |")
    lines.append("")
    _write(out / "startup.md", lines)


def _write(path, lines):
    text = "\n".join(lines) + "\n"
    print(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(text)


def compare(other, repeat):
    """Print the CPU seconds of a cached ``python -m fastquant kodim01.png`` of this checkout and of
    ``other`` (a folder holding another ``fastquant`` package, its kernels cached): per round both
    run, in alternating order, and the median of the differences is less hostage to the load than
    a difference of medians.
    """
    photo = str(sorted((SHARED / "kodak").glob("kodim*.png"))[0])
    tmp = Path(tempfile.mkdtemp())
    trees = [ROOT, Path(other).resolve()]

    def cpu(tree):  # run from the tree: -m puts the working folder first on sys.path
        cmd = [PY, "-m", "fastquant", photo, "-o", str(tmp / "o.png"), "-f"]
        return run(cmd, env=_env(PYTHONPATH=str(tree)), cwd=str(tree))[2]

    for tree in trees:
        cpu(tree)  # writes the .pyc files
    this, that = [], []
    for i in range(repeat):
        for tree in trees if i % 2 == 0 else trees[::-1]:
            (this if tree == ROOT else that).append(cpu(tree))
    diff = statistics.median(a - b for a, b in zip(this, that))
    load = os.getloadavg()
    print(
        f"CPU s of a cached run, median of {repeat}: {other} {statistics.median(that):.3f}, this checkout "
        f"{statistics.median(this):.3f}; median difference {diff:+.3f} s (load average {load[0]:.1f})"
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--startup", action="store_true")
    p.add_argument("--batch", action="store_true")
    p.add_argument("--wholefile", action="store_true")
    p.add_argument("--precompile", action="store_true", help="--precompile from an empty cache")
    p.add_argument("--compare", metavar="TREE", help="paired CPU of a cached run against another checkout")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--out", type=Path, default=HERE / "results")
    args = p.parse_args(argv)
    if args.startup:
        startup(args.repeat, args.out)
    if args.batch:
        batch(args.repeat, args.out)
    if args.wholefile:
        wholefile(args.repeat, args.out)
    if args.precompile:
        precompile(args.repeat, args.out)
    if args.compare:
        compare(args.compare, args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
