"""Every ```python block of README.md runs as written.

Each block runs as a script of its own, in a fresh temporary folder. The example files a block reads
(``photo.png``, ``logo.png``, ``tests/data/...``) are made when the block first says they are missing: a path
of this checkout is copied to the same relative path, any other name gets a test image of its kind (a photo,
an icon with alpha for names such as ``logo``/``icon``, an animation for ``.gif``). So a block another
contributor adds is tested as it stands, with no list to keep up to date here.
"""

import os
import re
import shutil
import subprocess
import sys

import pytest
from PIL import Image

from tests.conftest import DATA, ROOT

README = ROOT / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), re.S | re.M)

# How a missing file is reported: fastquant's InputError, or Python's own FileNotFoundError.
_MISSING = (
    re.compile(r"(?:Error|error): (.+?): no such file"),
    re.compile(r"No such file or directory: '([^']+)'"),
)


def _sample(name, dest):
    """Make the example file ``name`` at ``dest``: this checkout's file of that path, or a test image."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if (ROOT / name).is_file():
        shutil.copyfile(ROOT / name, dest)
        return
    stem, ext = os.path.splitext(os.path.basename(name).lower())
    if ext == ".gif":
        shutil.copyfile(DATA / "odd" / "traffic_light.gif", dest)
        return
    icon = any(word in stem for word in ("logo", "icon", "alpha"))
    src = DATA / "alpha" / "tango-icon-address-book-new-128-rsvg-convert.png"
    if not icon:
        src = DATA / "kodak" / "kodim03.png"
    with Image.open(src) as im:
        if ext in (".png", ""):
            shutil.copyfile(src, dest)
        else:  # .jpg, .webp, .bmp...: the same picture in that format
            im.convert("RGB" if ext in (".jpg", ".jpeg", ".bmp") else im.mode).save(dest)


def _missing(stderr):
    for pattern in _MISSING:
        m = pattern.search(stderr)
        if m:
            return m.group(1)
    return None


def test_readme_has_python_blocks():
    assert len(BLOCKS) >= 5


def test_readme_help_is_the_real_help():
    """The README's ``--help`` block is what ``python -m fastquant --help`` prints at 100 columns."""
    text = README.read_text(encoding="utf-8")
    start = text.index("```text\nusage: python -m fastquant") + len("```text\n")
    shown = text[start : text.index("```", start)]
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="100")
    r = subprocess.run(
        [sys.executable, "-m", "fastquant", "--help"], env=env, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0
    assert shown == r.stdout, "README's --help block is stale: paste `COLUMNS=100 python -m fastquant --help`"


def run_block(block, folder):
    """Run ``block`` as a script in ``folder``, making the example files it misses; returns
    (the last CompletedProcess, the names made).
    """
    script = folder / "readme_block.py"
    script.write_text(block, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    made = []
    for _ in range(10):
        r = subprocess.run(
            [sys.executable, str(script)], cwd=folder, env=env, capture_output=True, text=True, timeout=600
        )
        name = _missing(r.stderr) if r.returncode else None
        if name is None or name in made or os.path.isabs(name):
            break
        _sample(name, folder / name)  # an example input the block expects: make it, run again
        made.append(name)
    return r, made


def test_the_runner_makes_inputs_and_reports_failures(tmp_path):
    r, made = run_block("open('photo.png', 'rb').read()\nopen('sub/logo.png', 'rb').read()\n", tmp_path)
    assert r.returncode == 0 and made == ["photo.png", "sub/logo.png"]
    with Image.open(tmp_path / "sub" / "logo.png") as im:
        assert im.mode == "RGBA"
    r, made = run_block("open('photo.png', 'rb')\nraise SystemExit(3)\n", tmp_path)
    assert r.returncode == 3 and made == []


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_block_runs(block, tmp_path):
    if re.search(r"^\s*(from|import) dask", block, re.M):
        pytest.importorskip("dask.distributed")
    r, made = run_block(block, tmp_path)
    assert r.returncode == 0, (
        f"README block failed (example files made: {made}):\n{block}\n--- stderr:\n{r.stderr[-3000:]}"
    )
