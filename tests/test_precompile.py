"""--precompile: every kernel of every feature cached, then no feature compiles; a read-only
install uses the cache prepared in it, and runs (uncached, saying so in one line) without one."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fastquant
from fastquant import jit, warmup

NOTICE = "compiling Numba kernels"


def _package_copy(root):
    """The package's sources copied under ``root`` (no caches): an install of its own."""
    src = Path(fastquant.__file__).parent
    dst = root / "fastquant"
    dst.mkdir(parents=True)
    for path in src.glob("*.py"):
        shutil.copy2(path, dst / path.name)
    return root


def _images(folder):
    rng = np.random.default_rng(7)
    folder.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:70, 0:90]
    photo = np.stack([x * 2, y * 3, (x + y)], -1) + rng.integers(0, 20, (70, 90, 3))
    Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)).save(folder / "photo.png")
    rgba = np.concatenate([photo, (x * 3 % 256)[..., None]], -1)
    Image.fromarray(np.clip(rgba, 0, 255).astype(np.uint8), "RGBA").save(folder / "alpha.png")
    # above 2 * SAMPLE_PIXELS: the large-image path
    y, x = np.mgrid[0:2100, 0:2050]
    big = np.stack([x // 9, y // 9, (x ^ y) & 255], -1) + rng.integers(0, 6, (2100, 2050, 3))
    Image.fromarray(np.clip(big, 0, 255).astype(np.uint8)).save(folder / "big.png", compress_level=1)
    return folder


def _env(pythonpath, **extra):
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "FASTQUANT_COMPILE_NOTICE")}
    env.update(PYTHONPATH=str(pythonpath), **extra)
    return env


def _cli(env, *args, user=None):
    cmd = [sys.executable, "-m", "fastquant", *args]
    if user is not None:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]  # noqa: S603
    # run from the install's folder: ``-m`` puts the working folder first on sys.path
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, cwd=env["PYTHONPATH"])


#: Runs that together use every feature.
FEATURES = [
    ["photo.png"],
    ["photo.png", "--dither", "fs"],
    ["photo.png", "--dither", "ordered", "--colorspace", "oklab"],
    ["photo.png", "--quality", "0-30"],
    ["alpha.png"],
    ["alpha.png", "--dither", "fs", "--colorspace", "oklab"],
    ["big.png"],
    ["big.png", "--colorspace", "oklab", "-k", "300"],
]


def test_every_kernel_is_reached_by_a_warmup():
    """The registry holds every kernel; the source scan of _reached finds callees."""
    kernels = warmup._kernels()
    assert len(kernels) == len(jit.KERNELS) >= 40
    reached = warmup._reached(kernels, {"fastquant.lloyd._kmeanspp": 1})
    assert "fastquant.nearest.sqdist" in reached and "fastquant.boxes._wu" not in reached


@pytest.fixture(scope="module")
def install(tmp_path_factory):
    """A copy of the package precompiled in place (its own __pycache__), and test images."""
    root = _package_copy(tmp_path_factory.mktemp("site"))
    env = _env(root)
    out = _cli(env, "--precompile")
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert lines[-1].startswith("fastquant: ") and "kernels compiled and cached" in lines[-1], out.stderr
    assert str(root / "fastquant" / "__pycache__") in lines[-1]
    assert all(line.startswith("fastquant: precompiling [") for line in lines[:-1]), out.stderr
    return root, _images(tmp_path_factory.mktemp("images"))


def test_precompiled_features_compile_nothing(install, tmp_path):
    root, images = install
    env = _env(root)
    again = _cli(env, "--precompile")
    assert again.returncode == 0 and NOTICE not in again.stderr, again.stderr
    for n, args in enumerate(FEATURES):
        out = _cli(env, str(images / args[0]), *args[1:], "-o", str(tmp_path / f"{n}.png"))
        assert out.returncode == 0, (args, out.stderr)
        assert NOTICE not in out.stderr, (args, out.stderr)
    # the batch workers' path (6 files: worker processes)
    for i in range(6):
        shutil.copy(images / "photo.png", tmp_path / f"b{i}.png")
    out = _cli(env, *[str(tmp_path / f"b{i}.png") for i in range(6)], "-j", "2")
    assert out.returncode == 0 and NOTICE not in out.stderr, out.stderr


needs_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="running as another user needs root and setpriv",
)


@pytest.fixture
def public(tmp_path):
    """A folder that another user can reach (pytest's own are private to this one)."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="fastquant-test-", dir="/tmp"))
    os.chmod(folder, 0o755)
    yield folder
    subprocess.run(["chmod", "-R", "u+w", str(folder)], check=False)
    shutil.rmtree(folder, ignore_errors=True)


NOBODY = 65534


def _read_only(root):
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chmod(os.path.join(folder, name), 0o555 if name in dirs else 0o444)
    os.chmod(root, 0o555)


@needs_root
def test_read_only_install_uses_its_precompiled_cache(install, public):
    """Another user, a read-only package and a HOME that cannot be written: the cache prepared
    by --precompile in the package is used, nothing compiles, nothing is written."""
    root, images = install
    ro = _package_copy(public / "ro")
    shutil.copytree(root / "fastquant" / "__pycache__", ro / "fastquant" / "__pycache__")
    shutil.copytree(images, public / "img", ignore=shutil.ignore_patterns("big.png"))
    _read_only(ro)
    _read_only(public / "img")
    out_dir = public / "out"
    out_dir.mkdir()
    os.chmod(out_dir, 0o777)
    env = _env(ro, HOME="/nonexistent")
    for n, args in enumerate(FEATURES[:3] + FEATURES[4:6]):
        out = _cli(env, str(public / "img" / args[0]), *args[1:], "-o", str(out_dir / f"{n}.png"), user=NOBODY)
        assert out.returncode == 0, (args, out.stderr)
        assert out.stderr == "", (args, out.stderr)


@needs_root
def test_no_writable_cache_runs_uncached_in_one_line(public):
    """No cache anywhere and nowhere to write one: the file is compressed, one line says so."""
    ro = _package_copy(public / "bare")
    _read_only(ro)
    out_dir = public / "out"
    out_dir.mkdir()
    os.chmod(out_dir, 0o777)
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(public / "a.png")
    os.chmod(public / "a.png", 0o444)
    env = _env(ro, HOME="/nonexistent")
    out = _cli(env, str(public / "a.png"), "-k", "16", "-o", str(out_dir / "a.png"), user=NOBODY)
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and NOTICE in lines[0] and "no writable cache folder" in lines[0], out.stderr
    assert "Traceback" not in out.stderr
