"""Shared fixtures: the test images in tests/data (always there), and optionally the larger shared corpus."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"  # the suite's own small corpus: see tests/data/README.md
# The larger corpus (more photos, large and unusual images): optional, for the tests that ask for it.
SHARED = Path(os.environ.get("FASTQUANT_IMAGES", ROOT.parent / "shared" / "images"))


def names(folder, pattern):
    """Sorted file names in a folder of tests/data, for parametrize (README.md files left out)."""
    return sorted(p.name for p in (DATA / folder).glob(pattern) if p.suffix != ".md")


@pytest.fixture(scope="session")
def kodak():
    """Sorted list of the Kodak PNG paths in tests/data/kodak (kodim01, 02, 03, 05)."""
    return sorted((DATA / "kodak").glob("*.png"))


@pytest.fixture(scope="session")
def images_dir():
    """tests/data: kodak/, pngsuite/, alpha/, odd/ and skimage/, laid out as the shared corpus."""
    return DATA


@pytest.fixture(scope="session")
def pngsuite():
    """The PngSuite folder (valid files, and the deliberately corrupt x*.png)."""
    return DATA / "pngsuite"


@pytest.fixture(scope="session")
def odd():
    """The folder of unusual images (16-bit, grey, palette, CMYK, animated GIF...)."""
    return DATA / "odd"


@pytest.fixture(scope="session")
def shared_images():
    """The larger shared corpus (../shared/images or $FASTQUANT_IMAGES); the test skips without it."""
    if not SHARED.is_dir():
        pytest.skip(f"optional larger test images not found at {SHARED} (set FASTQUANT_IMAGES)")
    return SHARED


@pytest.fixture
def noisy_jpeg(tmp_path):
    """A small, heavily compressed JPEG of noise: no PNG of it can be smaller."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    path = tmp_path / "noise.jpg"
    Image.fromarray(rng.integers(0, 256, (64, 64, 3)).astype(np.uint8)).save(path, quality=10)
    return path


@pytest.fixture
def image_tree(tmp_path, kodak):
    """tmp/in with a.png, sub/ünï cødé.png, sub/deeper/c d.png (Kodak copies),
    bad.png (text) and notes.txt."""
    import shutil

    src = tmp_path / "in"
    (src / "sub" / "deeper").mkdir(parents=True)
    shutil.copy(kodak[0], src / "a.png")
    shutil.copy(kodak[1], src / "sub" / "ünï cødé.png")
    shutil.copy(kodak[2], src / "sub" / "deeper" / "c d.png")
    (src / "bad.png").write_text("not an image")
    (src / "notes.txt").write_text("ignored")
    return src


@pytest.fixture
def outputs_by_threads():
    """Run a script (argv[1] = a path) with NUMBA_NUM_THREADS = 1, 2, 3; the set of its stdouts."""
    import subprocess
    import sys

    def run(script, path):
        outs = set()
        for threads in ("1", "2", "3"):
            env = dict(os.environ, NUMBA_NUM_THREADS=threads)
            r = subprocess.run(
                [sys.executable, "-c", script, str(path)], env=env, capture_output=True, text=True, timeout=600
            )
            assert r.returncode == 0, r.stderr
            outs.add(r.stdout.strip())
        return outs

    return run
