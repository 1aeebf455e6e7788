"""What a cached single-file run loads: only the Pillow plugins and Numba modules it needs
(issue #13, start-up), with the same results."""

import subprocess
import sys

import numpy as np

from fastquant import write

# A fresh process: a cached one-file run through the command line, then what it imported.
_RUN = r"""
import sys
from fastquant.cli import main
code = main([sys.argv[1], "-o", sys.argv[2], "-f", "-q"])
print(code, " ".join(sorted(m for m in sys.modules if m.startswith(("PIL.", "numba.np.", "numpy.ma")))))
from fastquant import jit
set_up = [type(d._cache).__name__ == "FunctionCache" for d in jit.KERNELS]
print(len(set_up), sum(set_up), sum(bool(d.overloads) for d in jit.KERNELS))
"""


def test_a_cached_single_file_run_imports_no_other_plugin_or_numba_implementation(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(2)
    Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    argv = [sys.executable, "-c", _RUN, str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    subprocess.run(argv, check=True, capture_output=True, timeout=600)  # fills the cache if needed
    lines = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=600).stdout.splitlines()
    out = lines[0].split()
    assert out[0] == "0" and (tmp_path / "b.png").exists()
    loaded = set(out[1:])
    # Only the kernels the run loaded had their disk cache set up (jit._LazyCache), not all those imported.
    made, set_up, used = map(int, lines[1].split())
    assert 0 < used == set_up < made
    # Pillow's other plugins (Image.init() imports all of them) and the modules
    # of Numba's own implementations (imported by the compiler, or by a cached kernel's pickled
    # environments) are not needed to load cached kernels and write one PNG.
    assert "PIL.PngImagePlugin" in loaded
    assert not loaded & {"PIL.PdfImagePlugin", "PIL.IcnsImagePlugin", "PIL.EpsImagePlugin", "PIL.AvifImagePlugin"}
    assert not loaded & {"PIL.TiffImagePlugin", "PIL.WebPImagePlugin", "PIL.TgaImagePlugin"}  # not for a PNG
    assert not loaded & {"PIL.JpegImagePlugin", "PIL.GifImagePlugin", "PIL.BmpImagePlugin", "PIL.PpmImagePlugin"}
    assert not loaded & {"numba.np.arraymath", "numba.np.arrayobj", "numba.np.linalg"}
    assert "numpy.ma" not in loaded  # imported by Numba's typing of arrays (see jit._array_type)


_CHECK = r"""
import sys
from fastquant import write
from fastquant.errors import OptionError
ok = []
for ext in sys.argv[1:]:
    try:
        write.check_format("out" + ext)
        ok.append(ext)
    except OptionError:
        pass
print(" ".join(ok))
print("PIL.PdfImagePlugin" in sys.modules)
"""


def test_output_formats_are_checked_without_importing_every_plugin():
    """The extensions accepted are those Pillow, with every plugin registered, gives to the
    formats outputs are written in."""
    from PIL import Image

    Image.init()
    every = sorted(Image.EXTENSION) + [".xyz", ".PNG"]
    want = [e for e in every if Image.EXTENSION.get(e.lower()) in write.WRITE_FORMATS]
    out = subprocess.run(
        [sys.executable, "-c", _CHECK, *every], check=True, capture_output=True, text=True, timeout=120
    ).stdout.splitlines()
    assert out[0].split() == want and ".png" in want and ".PNG" in want and ".pdf" not in want
    assert out[1] == "False"


# A cached kernel loaded lightly is linked into a function compiled afterwards (its linking
# bitcode is parsed only then), which gives the kernel's own result; so is Numba's runtime, whose
# compiled functions were kept beside the kernels by the first process (jit._initialize_runtime).
_LINK = r"""
import numba, numpy as np
from numba.core.runtime import rtsys
from fastquant import histogram
rng = np.random.default_rng(4)
pixels = rng.integers(0, 4, (3500, 3), dtype=np.uint8)
colors, inverse, counts = histogram._unique(pixels)
lib = histogram._unique.overloads[histogram._unique.signatures[0]].library
print(type(lib).__name__, lib._shared_module is None, type(rtsys.library).__name__)

@numba.njit
def calls_it(p):
    c, i, n = histogram._unique(p)
    return len(c), i.sum(), n.max()

print(calls_it(pixels) == (len(colors), inverse.sum(), counts.max()), lib._shared_module is None)
"""


def test_a_lightly_loaded_kernel_links_into_a_later_compile():
    subprocess.run([sys.executable, "-c", _LINK], capture_output=True, timeout=600)  # fills the cache if needed
    out = subprocess.run([sys.executable, "-c", _LINK], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["_CachedLibrary True _CachedLibrary", "True False"]


def test_python_m_fastquant_ends_fast_with_its_output_flushed_and_its_exit_code(tmp_path):
    """After an in-process run, ``python -m fastquant`` skips the interpreter's teardown: the
    line (block-buffered, to a pipe), the written file and the exit code are all there."""
    from PIL import Image

    import fastquant

    rng = np.random.default_rng(6)
    Image.fromarray(rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    argv = [sys.executable, "-m", "fastquant", str(tmp_path / "a.png"), "-o", str(tmp_path / "b.png")]
    first = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0 and first.stdout.startswith(f"{tmp_path / 'a.png'} -> {tmp_path / 'b.png'}: ")
    assert (tmp_path / "b.png").read_bytes() == fastquant.compress(str(tmp_path / "a.png")).encode(".png")
    again = subprocess.run(argv, capture_output=True, text=True, timeout=600)  # the output exists: exit 5
    assert again.returncode == 5 and again.stderr.startswith("fastquant: error: ") and again.stdout == ""
    piped = subprocess.run(argv[:-2] + ["-o", "-"], capture_output=True, timeout=600)
    assert piped.returncode == 0 and piped.stdout == (tmp_path / "b.png").read_bytes()
    # The teardown is skipped (an atexit handler does not run), which is the point.
    run_main = (
        "import atexit, runpy, sys\n"
        "atexit.register(lambda: print('teardown', file=sys.stderr))\n"
        f"sys.argv = ['fastquant', {str(tmp_path / 'a.png')!r}, '-o', {str(tmp_path / 'c.png')!r}, '-q']\n"
        "runpy.run_module('fastquant', run_name='__main__')\n"
    )
    fast = subprocess.run([sys.executable, "-c", run_main], capture_output=True, text=True, timeout=600)
    assert fast.returncode == 0 and "teardown" not in fast.stderr and (tmp_path / "c.png").exists()
