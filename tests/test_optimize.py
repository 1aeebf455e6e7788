"""The optional lossless pass by oxipng (compress(optimize=True), --optimize; fastquant.optimize)."""

import io
import sys

import numpy as np
import pytest
from PIL import Image

from fastquant import compress, optimize
from fastquant.errors import OptionError

from .test_cli import run


@pytest.fixture(scope="module")
def photo(kodak):
    with Image.open(kodak[1]) as im:
        return np.asarray(im.convert("RGB"))[:200, :300].copy()


def _pixels(data):
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def test_missing_extra_is_one_line(photo, monkeypatch, capsys, kodak, tmp_path):
    """Without pyoxipng: OptionError naming the extra, before any work; the CLI exits 2, writes nothing."""
    monkeypatch.setitem(sys.modules, "oxipng", None)  # import oxipng raises ImportError
    with pytest.raises(OptionError, match=r"\.\[optimize\]"):
        compress(photo, 64, optimize=True)
    out = tmp_path / "x.png"
    code, _, err = run(capsys, kodak[0], "-o", out, "--optimize")
    assert code == 2 and len(err) == 1 and "pyoxipng" in err[0]
    assert not out.exists()
    assert compress(photo, 64).png_optimize is False  # without the option nothing asks for it


def test_optimized_png_is_smaller_same_pixels(photo, tmp_path):
    pytest.importorskip("oxipng")
    plain = compress(photo, 200)
    opt = compress(photo, 200, optimize=True)
    a, b = plain.encode(".png"), opt.encode(".png")
    assert len(b) <= len(a)
    assert np.array_equal(_pixels(b), _pixels(a))
    n = opt.save(tmp_path / "o.png")
    assert (tmp_path / "o.png").read_bytes() == b and n == len(b)
    assert optimize.lossless(b) == b or len(optimize.lossless(b)) < len(b)  # never larger


def test_optimize_with_budget_still_fits(photo, capsys, kodak, tmp_path):
    pytest.importorskip("oxipng")
    n = int(len(compress(photo, 256, speed=3).encode(".png")) * 0.8)
    q = compress(photo, 256, max_bytes=n, optimize=True)
    assert len(q.encode(".png")) <= n
    out = tmp_path / "c.png"
    code, _, _ = run(capsys, kodak[0], "-o", out, "--optimize", "--max-bytes", "200k")
    assert code == 0 and out.stat().st_size <= 200_000


def test_budget_counts_the_optimized_file(photo, monkeypatch):
    """With optimize, the search measures real sizes after the pass (what is written)."""
    pytest.importorskip("oxipng")
    from fastquant import budget

    sizes = []
    real = budget.Trial.nbytes

    def spy(self):
        n = real(self)
        sizes.append((self.optimize, n))
        return n

    monkeypatch.setattr(budget.Trial, "nbytes", spy)
    n = int(len(compress(photo, 256, speed=3).encode(".png")) * 0.8)
    q = compress(photo, 256, max_bytes=n, optimize=True)
    assert sizes and all(flag for flag, _ in sizes)
    assert len(q.encode(".png")) in [size for _, size in sizes]
