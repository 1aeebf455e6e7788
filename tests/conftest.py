"""Shared fixtures: the test images in ../shared/images (skipped where absent)."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IMAGES = Path(os.environ.get("FASTQUANT_IMAGES", ROOT.parent / "shared" / "images"))


def _folder(name):
    path = IMAGES / name
    if not path.is_dir():
        pytest.skip(f"test images not found at {path} (set FASTQUANT_IMAGES)")
    return path


@pytest.fixture(scope="session")
def kodak():
    """Sorted list of the Kodak PNG paths."""
    return sorted(_folder("kodak").glob("*.png"))


@pytest.fixture(scope="session")
def images_dir():
    """The root of the shared test images."""
    return _folder(".")


@pytest.fixture(scope="session")
def pngsuite():
    """The PngSuite folder (valid files, and the deliberately corrupt x*.png)."""
    return _folder("pngsuite")


@pytest.fixture(scope="session")
def odd():
    """The folder of unusual images (16-bit, grey, palette, CMYK, animated GIF...)."""
    return _folder("odd")


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
            r = subprocess.run([sys.executable, "-c", script, str(path)], env=env,
                               capture_output=True, text=True, timeout=600)
            assert r.returncode == 0, r.stderr
            outs.add(r.stdout.strip())
        return outs
    return run
