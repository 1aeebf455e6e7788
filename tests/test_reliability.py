"""Issue 6, reliability: every bad input gets a clear error and nothing is lost.

Every failing command-line run here is checked the same way (``_assert_failed``):
the documented exit code, exactly one ``fastquant: error: <file>: <reason>``
line on stderr, nothing on stdout, no traceback, no output file, no leftover
``.fastquant-*.tmp``, and the input (a copy in tmp_path) byte-identical to
before.  Subprocesses always run with a timeout, so a hang fails instead of
blocking the suite; nothing here asserts on timings.
"""

import hashlib
import io as _io
import os
import random
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence

import fastquant
from fastquant import cli, io, metrics, write
from fastquant.errors import FastquantError, InputError, OptionError

from .conftest import DATA, ROOT, names

AS_ROOT = os.geteuid() == 0
ROOT_SKIP = "running as root: permissions do not stop root"

#: Words of the vague messages imageio puts in front of Pillow's own errors.
VAGUE = ("can not handle the given uri", "unknown error occurred")


CORRUPT = names("pngsuite", "x*.png")
VALID = names("pngsuite", "[bfgpst]*.png")
ODD = names("odd", "*")

#: xcsn0g01.png has a bad IDAT CRC and nothing else wrong: Pillow does not check
#: IDAT CRCs (libpng does), the pixels decode completely, so compressing it is fine.
ACCEPTED_CORRUPT = {"xcsn0g01.png"}


# ----------------------------------------------------------------------------- helpers


def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class Input:
    """A file copied (or written) into a folder, with its hash to check it is never modified."""

    def __init__(self, folder, name, data=None, src=None):
        self.path = Path(folder) / name
        if src is not None:
            shutil.copyfile(src, self.path)
        else:
            self.path.write_bytes(data)
        self.digest = sha(self.path)

    def __str__(self):
        return str(self.path)

    def unchanged(self):
        return self.path.is_file() and sha(self.path) == self.digest


def run(capsys, *argv):
    """cli.main in-process; returns (exit code, stdout, stderr lines but the compile notice and the
    warning for an output larger than its input, which tiny test files often get)."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as e:  # pragma: no cover - main() returns its code
        code = e.code
    out, err = capsys.readouterr()
    notes = ("fastquant: compiling", "fastquant: warning:")
    return code, out, [line for line in err.splitlines() if not line.startswith(notes)]


def cli_subprocess(args, cwd, timeout=300, **kw):
    return subprocess.run(
        [sys.executable, "-m", "fastquant", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kw,
    )


def n_failed(summary):
    """The failure count of the closing summary line, whatever its wording."""
    m = re.search(r"\b(\d+) failed\b", summary)
    assert summary.startswith("fastquant: ") and m, summary
    return int(m.group(1))


def listing(folder):
    return sorted(p.name for p in Path(folder).iterdir())


def leftovers(folder):
    return sorted(p.name for p in Path(folder).glob(".fastquant-*.tmp"))


def _assert_failed(code, out, err, *, expected, name, words=(), folder=None, before=None):
    """The checks every failing run must pass; returns the error line."""
    assert code == expected, err
    assert out == ""
    assert len(err) == 1, err
    line = err[0]
    assert "Traceback" not in line
    prefix = f"fastquant: error: {name}: "
    assert line.startswith(prefix), line
    reason = line[len(prefix) :]
    assert re.search(r"\w{3}", reason), f"no reason given: {line!r}"
    for vague in VAGUE:
        assert vague not in reason
    for word in words:
        assert word.lower() in reason.lower(), (word, line)
    if folder is not None:
        assert leftovers(folder) == []
        if before is not None:
            assert listing(folder) == before  # no output, no temporary file
    return line


def _decoded(path, channels):
    with Image.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGBA" if channels == 4 else "RGB"))


def _visible(a):
    """Fully transparent pixels made (0, 0, 0, 0): their colour is invisible and
    compress() gives them all one palette entry."""
    if a.shape[2] == 4:
        a = a.copy()
        a[a[:, :, 3] == 0] = 0
    return a


def _n_colors(a):
    """Distinct colours of an (H, W, C) uint8 image (packed: np.unique on rows is slow)."""
    packed = np.zeros(a.shape[:2], np.uint32)
    for ch in range(a.shape[2]):
        packed = (packed << np.uint32(8)) | a[:, :, ch]
    return len(np.unique(packed))


def _n_colors_all_frames(path):
    """Distinct colours over every frame of ``path`` (RGBA, invisible ones as one)."""
    with Image.open(path) as im:
        frames = [_visible(np.asarray(f.convert("RGBA"))) for f in ImageSequence.Iterator(im)]
    return _n_colors(np.concatenate(frames)) if len(frames) > 1 else None


def _assert_good_output(out, original, n_colors=None):
    """``out`` is a PNG of the same size as ``original`` (an array as read_image gives):
    lossless when ``original`` has <= 256 colours, else PSNR >= 30 dB -- with alpha,
    of the composites over black and over white (what is seen: RGBA is clustered
    premultiplied, so colour differences under low alpha cost little, and the
    straight-RGBA PSNR counts them in full).  Returns the (straight) PSNR."""
    original = _visible(original)
    result = _visible(_decoded(out, original.shape[2]))
    assert result.shape == original.shape
    n = _n_colors(original) if n_colors is None else n_colors
    p = metrics.psnr(original, result)
    if n <= 256:
        np.testing.assert_array_equal(result, original, err_msg=f"{n} colours, PSNR {p:.2f}")
        assert p == float("inf")
    elif original.shape[2] == 4:
        for bg in (0, 255):
            seen = metrics.psnr_over(original, result, bg)
            assert seen >= 30, f"{n} colours, PSNR over {bg} {seen:.2f} dB"
    else:
        assert p >= 30, f"{n} colours, PSNR {p:.2f} dB"
    return p


# ----------------------------------------------------------------------------- 1. corrupt PngSuite


@pytest.mark.parametrize("name", CORRUPT)
def test_corrupt_pngsuite_cli(capsys, pngsuite, tmp_path, name):
    src = Input(tmp_path, name, src=pngsuite / name)
    dst = tmp_path / "out.png"
    before = listing(tmp_path)
    code, out, err = run(capsys, src, "-o", dst)
    if name in ACCEPTED_CORRUPT and code == 0:
        assert err == [] and "->" in out
        _assert_good_output(dst, io.read_image(src.path)[0])
    else:
        _assert_failed(code, out, err, expected=3, name=str(src), folder=tmp_path, before=before)
        assert not dst.exists()
    assert leftovers(tmp_path) == []
    assert src.unchanged()


@pytest.mark.parametrize("name", CORRUPT)
def test_corrupt_pngsuite_compress(pngsuite, name):
    path = pngsuite / name
    data = path.read_bytes()
    for source, shown in ((path, str(path)), (data, "<bytes>")):
        if name in ACCEPTED_CORRUPT:
            q = fastquant.compress(source, 256)
            np.testing.assert_array_equal(q.image, io.read_image(path)[0])
            continue
        with pytest.raises(InputError) as info:
            fastquant.compress(source, 256)
        msg = str(info.value)
        assert msg.startswith(f"{shown}: ") and "\n" not in msg
        assert re.search(r"\w{3}", msg[len(shown) + 2 :])
        assert not any(v in msg for v in VAGUE), msg


def test_corrupt_pngsuite_all_in_one_run(capsys, pngsuite, tmp_path):
    # One run over every corrupt file and a good one: each failure gets its own
    # line, the good file is still compressed, the exit code is 3.
    inputs = [Input(tmp_path, n, src=pngsuite / n) for n in CORRUPT]
    good = Input(tmp_path, "basn2c08.png", src=pngsuite / "basn2c08.png")
    code, out, err = run(capsys, *inputs, good)
    failing = [i for i in inputs if i.path.name not in ACCEPTED_CORRUPT]
    assert code == 3
    assert len(err) == len(failing) + 1
    assert n_failed(err[-1]) == len(failing)
    for i in failing:
        assert len([line for line in err if line.startswith(f"fastquant: error: {i}: ")]) == 1
        assert not (tmp_path / f"{i.path.stem}-fq256.png").exists()
    assert (tmp_path / "basn2c08-fq256.png").is_file()
    assert "Traceback" not in "\n".join(err) and leftovers(tmp_path) == []
    assert all(i.unchanged() for i in inputs + [good])


# ----------------------------------------------------------------------------- 2. valid files

_GOOD = [f"pngsuite/{n}" for n in VALID] + [f"odd/{n}" for n in ODD]


@pytest.mark.parametrize("rel", _GOOD)
def test_valid_files_compress(capsys, images_dir, tmp_path, rel):
    _check_valid_file_compresses(capsys, images_dir / rel, tmp_path)


def _check_valid_file_compresses(capsys, src, tmp_path):
    digest = sha(src)
    dst = tmp_path / "out.png"
    code, out, err = run(capsys, src, "-k", "256", "-o", dst)
    assert code == 0, err
    assert err == [] and "Traceback" not in out
    with Image.open(dst) as im:
        assert im.mode == "P"
    # An animation's frames share one palette: lossless only when all of them
    # together have <= 256 colours (its first frame is compared).
    _assert_good_output(dst, io.read_image(src)[0], n_colors=_n_colors_all_frames(src))
    assert listing(tmp_path) == ["out.png"]
    assert sha(src) == digest


# ----------------------------------------------------------------------------- 3. bad input files

CUTS = ["0", "8", "33", "100", "1000", "half", "len-12"]


def _cut(data, where):
    n = {"half": len(data) // 2, "len-12": len(data) - 12}.get(where)
    return data[: int(where) if n is None else n]


@pytest.mark.parametrize("where", CUTS)
@pytest.mark.parametrize("kind", ["png", "jpeg"])
def test_truncated(capsys, kodak, odd, tmp_path, kind, where):
    original = kodak[0] if kind == "png" else odd / "paris_exif_orientation_5.jpg"
    src = Input(tmp_path, "cut" + original.suffix, _cut(original.read_bytes(), where))
    before = listing(tmp_path)
    code, out, err = run(capsys, src)
    if kind == "png" and where == "len-12" and code == 0:
        # Only the IEND chunk is lost: every pixel is there, so a result is fine.
        _assert_good_output(tmp_path / "cut-fq256.png", io.read_image(original)[0])
    else:
        words = ["empty"] if where == "0" else []
        _assert_failed(code, out, err, expected=3, name=str(src), words=words, folder=tmp_path, before=before)
    assert src.unchanged()


def _loop(folder):
    a, b = folder / "a.png", folder / "b.png"
    a.symlink_to(b.name)
    b.symlink_to(a.name)
    return a


def _dangling(folder):
    link = folder / "link.png"
    link.symlink_to("nowhere.png")
    return link


def _unreadable(folder):
    path = Input(folder, "secret.png", src=DATA / "odd" / "draw_points.png").path
    path.chmod(0)
    return path


def _random_bytes(name):
    def make(folder):
        rng = random.Random(name)
        return Input(folder, name, bytes(rng.randrange(256) for _ in range(4096))).path

    return make


BAD_INPUTS = {
    # case: (make the input in tmp_path, words the reason must contain)
    "zero-bytes": (lambda d: Input(d, "empty.png", b"").path, ["empty"]),
    "text.png": (lambda d: Input(d, "notes.png", b"I am text, not a picture\n" * 20).path, ["cannot decode"]),
    "text.jpg": (lambda d: Input(d, "notes.jpg", b"I am text, not a picture\n" * 20).path, ["cannot decode"]),
    "random.png": (_random_bytes("random.png"), ["cannot decode"]),
    "random.jpg": (_random_bytes("random.jpg"), ["cannot decode"]),
    "png-signature-only": (lambda d: Input(d, "sig.png", b"\x89PNG\r\n\x1a\n").path, ["cannot decode"]),
    "symlink-loop": (_loop, ["symbolic links"]),
    "dangling-symlink": (_dangling, ["no such file", "broken symbolic link"]),
    "missing": (lambda d: d / "missing.png", ["no such file"]),
    "unreadable": (_unreadable, ["permission denied"]),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input(capsys, images_dir, tmp_path, case):
    if case == "unreadable" and AS_ROOT:
        pytest.skip(ROOT_SKIP)
    make, words = BAD_INPUTS[case]
    path = make(tmp_path)
    before = listing(tmp_path)
    digest = sha(path) if path.is_file() and os.access(path, os.R_OK) else None
    try:
        code, out, err = run(capsys, path)
        _assert_failed(code, out, err, expected=3, name=str(path), words=words, folder=tmp_path, before=before)
        with pytest.raises(InputError) as info:  # the API says the same
            fastquant.compress(path)
        assert str(info.value) == err[0][len("fastquant: error: ") :]
    finally:
        if case == "unreadable":
            path.chmod(0o644)
    if digest:
        assert sha(path) == digest


def test_folder_input(capsys, odd, tmp_path):
    # compress() wants a file; the command line walks folders, and one without
    # images is a usage error naming it.
    folder = tmp_path / "folder.png"
    folder.mkdir()
    with pytest.raises(InputError) as info:
        fastquant.compress(folder)
    assert str(info.value) == f"{folder}: is a folder, not an image file"
    code, out, err = run(capsys, folder)
    assert code == 2 and out == "" and len(err) == 1, err
    assert err[0].startswith("fastquant: error: ") and str(folder) in err[0] and "no image" in err[0]
    assert listing(folder) == [] and listing(tmp_path) == ["folder.png"]
    # A folder of bad files: each one named in its own line, nothing written.
    bad = [Input(folder, "a.png", b"not a png"), Input(folder, "b.jpg", b""), Input(folder, "c.gif", b"GIF89a")]
    code, out, err = run(capsys, folder)
    assert code == 3 and out == ""
    assert len(err) == 4 and n_failed(err[-1]) == 3
    for i in bad:
        assert len([line for line in err if line.startswith(f"fastquant: error: {i}: ")]) == 1
        assert i.unchanged()
    assert listing(folder) == ["a.png", "b.jpg", "c.gif"]


def test_device_refused(capsys, tmp_path):
    dst = tmp_path / "out.png"
    code, out, err = run(capsys, os.devnull, "-o", dst)
    _assert_failed(
        code, out, err, expected=3, name=os.devnull, words=["not a regular file"], folder=tmp_path, before=[]
    )


def test_endless_device_refused_without_reading(tmp_path):
    # /dev/zero never ends: reading it would eat all memory.  In a subprocess
    # with a 2 GB address-space limit and a timeout, in case that ever regresses.
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    r = cli_subprocess(["/dev/zero", "-o", tmp_path / "out.png"], tmp_path, timeout=120, preexec_fn=limit)
    assert r.returncode == 3, r.stderr
    err = [line for line in r.stderr.splitlines() if not line.startswith("fastquant: compiling")]
    assert err == ["fastquant: error: /dev/zero: not a regular file (a device or a socket)"]
    assert listing(tmp_path) == []


def test_named_pipe_is_read(capsys, odd, tmp_path):
    # Pipes are read (``fastquant <(curl ...)``); a writer thread feeds one.
    fifo = tmp_path / "pipe.gif"
    os.mkfifo(fifo)
    data = (odd / "traffic_light.gif").read_bytes()

    def feed():
        with open(fifo, "wb") as f:
            f.write(data)

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    code, out, err = run(capsys, fifo, "-o", tmp_path / "out.png")
    t.join(60)
    assert code == 0 and err == []
    _assert_good_output(tmp_path / "out.png", io.read_image(data)[0])


def test_chunk_before_ihdr(capsys, pngsuite, tmp_path):
    # Found by the fuzzer: Pillow reads a PNG with a chunk before IHDR; the grey
    # colour-key code took the bit depth from a fixed offset and divided by zero.
    data = (pngsuite / "tbbn0g04.png").read_bytes()  # 4-bit grey with a tRNS colour key
    src = Input(tmp_path, "moved.png", data[:8] + _chunk(b"tEXt", b"Comment\0first") + data[8:])
    np.testing.assert_array_equal(io.read_image(src.path)[0], io.read_image(data)[0])
    code, out, err = run(capsys, src)
    assert code == 0 and err == []
    _assert_good_output(tmp_path / "moved-fq256.png", io.read_image(data)[0])
    assert src.unchanged()


def test_closed_file_object(odd):
    with open(odd / "traffic_light.gif", "rb") as f:
        pass
    with pytest.raises(InputError) as info:
        fastquant.compress(f)
    assert "closed" in str(info.value) and "traffic_light.gif" in str(info.value)


def test_bad_inputs_subprocess(tmp_path):
    # The real process: exit code, one line per file, no traceback, nothing written.
    for name, data in (("empty.png", b""), ("text.jpg", b"hello\n"), ("cut.png", b"\x89PNG\r\n\x1a\n\0")):
        (tmp_path / name).write_bytes(data)
    _loop(tmp_path)
    before = listing(tmp_path)
    names = ["empty.png", "text.jpg", "cut.png", "a.png", "missing.png"]
    r = cli_subprocess(names, tmp_path)
    assert r.returncode == 3
    assert r.stdout == "" and "Traceback" not in r.stderr
    err = [line for line in r.stderr.splitlines() if not line.startswith("fastquant: compiling")]
    assert len(err) == len(names) + 1 and n_failed(err[-1]) == len(names)
    for name in names:
        mine = [line for line in err if line.startswith(f"fastquant: error: {name}: ")]
        assert len(mine) == 1 and len(mine[0]) > len(name) + 25, err
    assert listing(tmp_path) == before


# ----------------------------------------------------------------------------- 4. decompression bombs


def _chunk(tag, body):
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))


def bomb_png(width, height):
    """A valid PNG header claiming width x height RGB pixels, with a tiny IDAT."""
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + _chunk(b"IDAT", zlib.compress(b"\0" * 1024, 9))
        + _chunk(b"IEND", b"")
    )


def bomb_gif(width, height):
    """A GIF whose screen and image claim width x height pixels, with 4 bytes of LZW data."""
    return (
        b"GIF89a"
        + struct.pack("<HHBBB", width, height, 0x80, 0, 0)
        + b"\0\0\0\xff\xff\xff"
        + b","
        + struct.pack("<HHHHB", 0, 0, width, height, 0)
        + b"\x02\x02\x44\x01\x00;"
    )


BOMBS = {"png": lambda: bomb_png(100_000, 100_000), "gif": lambda: bomb_gif(65535, 65535)}


def test_bomb_is_what_it_claims():
    with Image.open(_io.BytesIO(bomb_png(300, 200))) as im:
        assert im.size == (300, 200) and im.format == "PNG"


@pytest.mark.parametrize("kind", sorted(BOMBS))
@pytest.mark.parametrize("limit", [None, "1000"])
def test_bomb_refused(capsys, tmp_path, kind, limit):
    src = Input(tmp_path, f"bomb.{kind}", BOMBS[kind]())
    before = listing(tmp_path)
    argv = [src] + (["--max-pixels", limit] if limit else [])
    code, out, err = run(capsys, *argv)
    _assert_failed(code, out, err, expected=3, name=str(src), words=["pixels", "limit"], folder=tmp_path, before=before)
    assert src.unchanged()


@pytest.mark.parametrize("max_pixels", [io.DEFAULT_MAX_PIXELS, 1000, None])
def test_bomb_refused_by_compress(max_pixels):
    # Pillow's own decompression-bomb check also holds with max_pixels=None.
    with pytest.raises(InputError) as info:
        fastquant.compress(bomb_png(100_000, 100_000), max_pixels=max_pixels)
    msg = str(info.value)
    assert "pixels" in msg and "limit" in msg and "10000000000" in msg


def test_bomb_below_pillow_limit_refused_by_max_pixels(capsys, tmp_path):
    # 10000 x 10000 is under Pillow's limit: fastquant's own check refuses it
    # from the header, before a 300 MB image is allocated.
    src = Input(tmp_path, "big.png", bomb_png(10_000, 10_000))
    before = listing(tmp_path)
    code, out, err = run(capsys, src, "--max-pixels", "50000000")
    line = _assert_failed(code, out, err, expected=3, name=str(src), folder=tmp_path, before=before)
    assert "10000x10000 = 100000000 pixels is more than the limit of 50000000 (--max-pixels)" in line


def test_max_pixels_on_a_kodak_photo(capsys, kodak, tmp_path):
    src = Input(tmp_path, kodak[0].name, src=kodak[0])
    before = listing(tmp_path)
    code, out, err = run(capsys, src, "--max-pixels", "1000")
    line = _assert_failed(
        code, out, err, expected=3, name=str(src), words=["limit", "--max-pixels"], folder=tmp_path, before=before
    )
    assert "768x512 = 393216 pixels" in line and "1000" in line
    assert src.unchanged()


def test_bomb_subprocess(tmp_path):
    (tmp_path / "bomb.png").write_bytes(bomb_png(100_000, 100_000))
    r = cli_subprocess(["bomb.png"], tmp_path, timeout=120)
    assert r.returncode == 3 and r.stdout == "" and "Traceback" not in r.stderr
    err = [line for line in r.stderr.splitlines() if not line.startswith("fastquant: compiling")]
    assert len(err) == 1 and err[0].startswith("fastquant: error: bomb.png: ")
    assert "pixels" in err[0] and "limit" in err[0]
    assert listing(tmp_path) == ["bomb.png"]


# ----------------------------------------------------------------------------- 5. nothing lost


@pytest.fixture
def photo(kodak, tmp_path):
    return Input(tmp_path, kodak[0].name, src=kodak[0])


@pytest.mark.parametrize("spelling", ["same", "dotted", "symlink", "hardlink"])
def test_output_onto_input_refused(capsys, photo, tmp_path, spelling):
    target = {
        "same": photo.path,
        "dotted": tmp_path / "." / photo.path.name,
        "symlink": tmp_path / "link.png",
        "hardlink": tmp_path / "hard.png",
    }[spelling]
    if spelling == "symlink":
        target.symlink_to(photo.path.name)
    elif spelling == "hardlink":
        os.link(photo.path, target)
    before = listing(tmp_path)
    code, out, err = run(capsys, photo, "-o", target)
    _assert_failed(
        code, out, err, expected=5, name=str(target), words=["input", "--force"], folder=tmp_path, before=before
    )
    assert photo.unchanged()


def test_existing_output_kept_without_force(capsys, photo, tmp_path):
    dst = tmp_path / "out.png"
    dst.write_bytes(b"precious")
    before = listing(tmp_path)
    code, out, err = run(capsys, photo, "-o", dst)
    _assert_failed(
        code, out, err, expected=5, name=str(dst), words=["exists", "--force"], folder=tmp_path, before=before
    )
    assert dst.read_bytes() == b"precious"
    code, out, err = run(capsys, photo, "-o", dst, "--force")
    assert code == 0 and err == []
    _assert_good_output(dst, io.read_image(photo.path)[0])
    assert listing(tmp_path) == before and photo.unchanged()


def test_unwritable_folder(capsys, photo, tmp_path):
    if AS_ROOT:
        pytest.skip(ROOT_SKIP)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        code, out, err = run(capsys, photo, "-o", ro / "out.png")
        _assert_failed(code, out, err, expected=4, name=str(ro / "out.png"), words=["permission"], folder=ro, before=[])
    finally:
        ro.chmod(0o755)
    assert photo.unchanged()


def _unprivileged(folder):
    """Command prefix that makes permissions count: none for a normal user; for root,
    setpriv without the capabilities that override file permissions.  None when
    that is not possible here."""
    if not AS_ROOT:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    prefix = [setpriv, "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search", "--"]
    probe = Path(folder) / "probe"
    probe.write_text("x")
    probe.chmod(0)
    try:
        r = subprocess.run(
            prefix + [sys.executable, "-c", f"open({str(probe)!r}).read()"], capture_output=True, timeout=60
        )
    except OSError:
        return None
    finally:
        probe.unlink()
    return prefix if r.returncode != 0 and b"PermissionError" in r.stderr else None


@pytest.mark.parametrize("case", ["unreadable-file", "unsearchable-folder", "unwritable-folder"])
def test_permissions_subprocess(odd, tmp_path, case):
    # The same as test_bad_input[unreadable] and test_unwritable_folder, in a real
    # process, which can also run as root (through setpriv).
    prefix = _unprivileged(tmp_path)
    if prefix is None:
        pytest.skip("running as root and cannot drop the permission-override capabilities")
    src = Input(tmp_path, "t.gif", src=odd / "traffic_light.gif")
    locked = tmp_path / "locked"
    locked.mkdir()
    if case == "unreadable-file":
        args, name, expected = ["t.gif"], "t.gif", 3
        src.path.chmod(0)
    elif case == "unsearchable-folder":
        shutil.copyfile(src.path, locked / "t.gif")
        args, name, expected = ["locked/t.gif"], "locked/t.gif", 3
        locked.chmod(0)
    else:
        args, name, expected = ["t.gif", "-o", "locked/out.png"], "locked/out.png", 4
        locked.chmod(0o555)
    before = listing(tmp_path)
    try:
        r = subprocess.run(
            prefix + [sys.executable, "-m", "fastquant", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        inside = listing(locked) if case == "unwritable-folder" else None
    finally:
        src.path.chmod(0o644)
        locked.chmod(0o755)
    err = [line for line in r.stderr.splitlines() if not line.startswith("fastquant: compiling")]
    assert r.returncode == expected, r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert err == [f"fastquant: error: {name}: cannot {'write' if expected == 4 else 'read'}: Permission denied"]
    assert listing(tmp_path) == before
    assert inside in (None, [])
    assert src.unchanged()


@pytest.mark.parametrize("case", ["missing-folder", "parent-is-a-file", "output-is-a-folder"])
def test_output_cannot_be_written(capsys, photo, tmp_path, case):
    target = {
        "missing-folder": tmp_path / "nowhere" / "out.png",
        "parent-is-a-file": photo.path / "out.png",
        "output-is-a-folder": tmp_path / "out.png",
    }[case]
    if case == "output-is-a-folder":
        target.mkdir()
        (target / "keep.txt").write_text("keep")
    before = listing(tmp_path)
    code, out, err = run(capsys, photo, "-o", target, "--force")
    _assert_failed(code, out, err, expected=4, name=str(target), words=["cannot write"], folder=tmp_path, before=before)
    if case == "output-is-a-folder":
        assert listing(target) == ["keep.txt"]
    assert photo.unchanged()


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_closed_stdout_does_not_stop_the_work(odd, tmp_path, fmt):
    # ``fastquant *.png | head -1``: the reader goes away; every file is still
    # compressed, with no traceback and exit code 0.
    a = Input(tmp_path, "a.gif", src=odd / "traffic_light.gif")
    b = Input(tmp_path, "b.png", src=odd / "draw_points.png")
    p = subprocess.Popen(
        [sys.executable, "-m", "fastquant", "a.gif", "b.png"] + (["--json"] if fmt == "json" else []),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    p.stdout.close()  # before the first result line is printed
    try:
        _, err = p.communicate(timeout=300)
    finally:
        p.kill()
    assert p.returncode == 0, err
    assert b"Traceback" not in err and b"Broken pipe" not in err
    assert (tmp_path / "a-fq256.png").is_file() and (tmp_path / "b-fq256.png").is_file()
    assert a.unchanged() and b.unchanged() and leftovers(tmp_path) == []


# A process that replaces one file again and again with write_atomic, with
# contents A and B of different sizes, until it is killed.
WRITER = r"""
import sys
from fastquant.write import write_atomic
path, size = sys.argv[1], int(sys.argv[2])
a = b"A" * size
b = bytes(range(256)) * (size * 3 // 2 // 256)
print("ready", flush=True)
n = 0
while True:
    write_atomic(path, b if n % 2 else a)
    n += 1
"""
SIZE = 3 << 20


def test_sigkill_while_writing_leaves_old_or_new_file(tmp_path):
    a = b"A" * SIZE
    b = bytes(range(256)) * (SIZE * 3 // 2 // 256)
    target = tmp_path / "out.bin"
    write.write_atomic(target, a)  # an old output, as when -f replaces one
    rng = random.Random(6)
    for kill in range(1, 9):
        p = subprocess.Popen([sys.executable, "-c", WRITER, str(target), str(SIZE)], stdout=subprocess.PIPE, cwd=ROOT)
        watchdog = threading.Timer(120, p.kill)  # never wait forever for "ready"
        watchdog.start()
        try:
            assert p.stdout.readline() == b"ready\n"
            time.sleep(rng.uniform(0.02, 0.5))
        finally:
            watchdog.cancel()
            p.send_signal(signal.SIGKILL)
            p.wait(60)
            p.stdout.close()
        assert p.returncode == -signal.SIGKILL
        data = target.read_bytes()  # the old or the new content, complete; never a mix or a prefix
        assert data == a or data == b, f"partial file: {len(data)} bytes"
        # Besides the target, at most one temporary file per kill.  A leftover
        # .fastquant-*.tmp is accepted: SIGKILL gives the process no chance to
        # remove it, it is hidden, named so it is never taken for an output,
        # and the target itself is intact.
        others = [n for n in listing(tmp_path) if n != "out.bin"]
        assert all(re.fullmatch(r"\.fastquant-.*\.tmp", n) for n in others), others
        assert len(others) <= kill
    write.write_atomic(target, b"after the crashes")  # later writes still work
    assert target.read_bytes() == b"after the crashes"
    for tmp in leftovers(tmp_path):  # what a crash leaves is at most a partial temp file
        assert tmp_path.joinpath(tmp).stat().st_size <= len(b)


# ----------------------------------------------------------------------------- 6. API errors


def _with(value, where=(1, 1, 0), dtype=float):
    a = np.full((3, 3, 3), 0.5, dtype)
    a[where] = value
    return a


BAD_IMAGES = [
    # (id, image, error class, words the message must contain: what was expected and what was got)
    ("complex", np.zeros((4, 4, 3), complex), OptionError, ["complex128", "expected", "uint8"]),
    ("object", np.zeros((4, 4, 3), object), OptionError, ["object", "expected", "uint8"]),
    ("str", np.full((4, 4, 3), "a"), OptionError, ["<U1", "expected", "float"]),
    ("nan", _with(np.nan), OptionError, ["NaN", "expected", "finite", "[0, 1]"]),
    ("inf", _with(np.inf), OptionError, ["infinity", "expected", "finite"]),
    ("-inf", _with(-np.inf), OptionError, ["infinity", "expected", "finite"]),
    ("float-range", _with(1.5), OptionError, ["[0, 1]", "1.5"]),
    ("int-range", np.full((2, 2, 3), 300, np.int32), OptionError, ["[0, 255]", "300"]),
    ("empty-hw", np.zeros((0, 0, 3), np.uint8), OptionError, ["empty", "expected", "(0, 0, 3)"]),
    ("empty-w", np.zeros((4, 0), np.uint8), OptionError, ["empty", "(4, 0"]),
    ("empty-1d", np.zeros(0, np.uint8), OptionError, ["(H, W, 3)", "got (0,)"]),
    ("1d", np.zeros(5, np.uint8), OptionError, ["(H, W, 3)", "got (5,)"]),
    ("5-channels", np.zeros((4, 4, 5), np.uint8), OptionError, ["(H, W, 4)", "got (4, 4, 5)"]),
    ("4d", np.zeros((2, 2, 3, 1), np.uint8), OptionError, ["(H, W)", "got (2, 2, 3, 1)"]),
    ("0-channels", np.zeros((4, 4, 0), np.uint8), OptionError, ["(H, W, 3)", "got (4, 4, 0)"]),
    ("list", [[1, 2], [3, 4]], InputError, ["expected a path", "ndarray", "got list"]),
    ("none", None, InputError, ["expected a path", "got NoneType"]),
    ("int", 12, InputError, ["expected a path", "got int"]),
]


@pytest.mark.parametrize("image, cls, words", [b[1:] for b in BAD_IMAGES], ids=[b[0] for b in BAD_IMAGES])
def test_api_bad_image(image, cls, words):
    with pytest.raises(cls) as info:
        fastquant.compress(image, 4)
    assert isinstance(info.value, FastquantError)
    msg = str(info.value)
    assert "\n" not in msg
    for word in words:
        assert word in msg, (word, msg)


@pytest.mark.parametrize("k", [0, -1, 65537, 10**9, 1.5, "16", True, None, np.float64(4)])
def test_api_bad_n_colors(k):
    with pytest.raises(OptionError) as info:
        fastquant.compress(np.zeros((4, 4, 3), np.uint8), k)
    msg = str(info.value)
    assert "n_colors" in msg and (repr(k) in msg or str(k) in msg)
    assert "integer" in msg or "between 1 and 65536" in msg


@pytest.mark.parametrize(
    "resize, words",
    [
        (0, [">= 1", "got 0"]),
        (-3, [">= 1", "got -3"]),
        ((0, 5), ["integers >= 1", "(0, 5)"]),
        ((5, -1), ["integers >= 1", "(5, -1)"]),
        ((2.5, 3), ["integers", "(2.5, 3)"]),
        ((None, 4), ["integers", "(None, 4)"]),
        ((1, 2, 3), ["(width, height)", "(1, 2, 3)"]),
        (1.5, ["(width, height)", "1.5"]),
        (True, ["(width, height)", "True"]),
        ("64", ["integers", "'64'"]),
    ],
)
def test_api_bad_resize(resize, words):
    with pytest.raises(OptionError) as info:
        fastquant.compress(np.zeros((4, 4, 3), np.uint8), 4, resize=resize)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


@pytest.mark.parametrize("max_pixels", [0, -5, 1.5, "abc", True, [100]])
@pytest.mark.parametrize("source", ["array", "file"])
def test_api_bad_max_pixels(odd, max_pixels, source):
    image = np.zeros((4, 4, 3), np.uint8) if source == "array" else odd / "traffic_light.gif"
    with pytest.raises(OptionError) as info:
        fastquant.compress(image, 4, max_pixels=max_pixels)
    msg = str(info.value)
    assert "max_pixels" in msg and "integer >= 1" in msg and repr(max_pixels) in msg


def test_api_good_edge_values_accepted():
    # What the checks must not refuse.
    big_endian = np.full((4, 4, 3), 65535, ">u2")
    np.testing.assert_array_equal(fastquant.compress(big_endian, 4).image, 255)
    assert fastquant.compress(np.zeros((1, 1), bool), 1, max_pixels=1).stats.n_colors == 1
    assert fastquant.compress(np.ones((2, 2, 3)), np.int64(2), resize=np.int32(1)).stats.width == 1


def test_unlistable_subfolder_is_reported_and_the_rest_done(odd, tmp_path):
    prefix = _unprivileged(tmp_path)
    if prefix is None:
        pytest.skip("running as root and cannot drop the permission-override capabilities")
    tree = tmp_path / "tree"
    locked = tree / "locked"
    locked.mkdir(parents=True)
    shutil.copyfile(odd / "traffic_light.gif", tree / "a.gif")
    shutil.copyfile(odd / "traffic_light.gif", locked / "b.gif")
    locked.chmod(0)
    try:
        r = subprocess.run(
            prefix + [sys.executable, "-m", "fastquant", "tree", "-r", "--out-dir", "out", "-k", "16", "--json"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        locked.chmod(0o755)
    assert r.returncode == 3, r.stderr
    assert "Traceback" not in r.stderr
    err = [line for line in r.stderr.splitlines() if not line.startswith("fastquant: compiling")]
    assert err == [f"fastquant: error: {os.path.join('tree', 'locked')}: cannot read folder: Permission denied"]
    assert sorted(p.name for p in (tmp_path / "out").rglob("*.png")) == ["a-fq16.png"]
