"""Hostile inputs (issue #16, the reading part): formats outside the allow-list,
truncated and lying files, endless pipes, images above Pillow's own pixel limit,
and the strip-wise reader :func:`fastquant.io.open_image`.

Every hostile file is generated here, small.  Command-line cases that could hang
on a reader without these defences run in a subprocess with a time limit."""

import io as _io
import json
import os
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFile, ImageOps

import fastquant
from fastquant import cli, config, io
from fastquant.errors import InputError, OptionError, ResourceError

from .conftest import DATA

TIMEOUT = 120  # seconds for a command-line run in a subprocess; a hang fails the test


# ----------------------------------------------------------------------------- helpers


def _noise(h=64, w=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _encode(array_or_image, fmt, **kw):
    im = array_or_image if isinstance(array_or_image, Image.Image) else Image.fromarray(array_or_image)
    b = _io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()


def _chunk(tag, body):
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))


def lying_jpeg():
    """A valid 8x8 JPEG (~630 bytes) whose SOF0 is patched to claim 13000x13000 pixels."""
    data = bytearray(_encode(Image.new("RGB", (8, 8), (200, 10, 10)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 13000, 13000)
    return bytes(data)


def lying_png():
    """A complete PNG claiming 13000x13000 RGB pixels, with a zlib stream of 1 KiB of zeros."""
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", 13000, 13000, 8, 2, 0, 0, 0))
        + _chunk(b"IDAT", zlib.compress(b"\0" * 1024, 9))
        + _chunk(b"IEND", b"")
    )


def truncated(fmt):
    """(the whole file, its first half) for a 64x64 noise picture."""
    kw = {"JPEG": {"quality": 90}, "GIF": {"interlace": False}}.get(fmt, {})
    data = _encode(_noise(), fmt, **kw)
    return data, data[: len(data) // 2]


POSTSCRIPT = {
    # Ghostscript would never return from the first, would print into the
    # output stream with the second, and dump the error of a file read with the third.
    "loop": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n{ } loop\n",
    "print": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n(hello from postscript) print flush\n",
    "file": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n(/etc/passwd) (r) file 100 string readstring\n",
}


@pytest.fixture
def fake_gs(tmp_path, monkeypatch):
    """A `gs` first on PATH that leaves a marker file when anything runs it; returns the marker."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    marker = tmp_path / "gs-was-run"
    gs = bin_dir / "gs"
    gs.write_text(f"#!/bin/sh\necho \"$@\" >> '{marker}'\nexit 1\n")
    gs.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return marker


def run_cli(capsys, *argv):
    """cli.main in-process; (exit code, stdout, stderr lines without Numba's compile notes)."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if not line.startswith("fastquant: compiling")]


def run_cli_subprocess(argv, cwd):
    """`python -m fastquant` in a subprocess (PATH as the test left it); a hang fails the test."""
    r = subprocess.run(
        [sys.executable, "-m", "fastquant", *map(str, argv)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=dict(os.environ),
    )
    return (
        r.returncode,
        r.stdout,
        [line for line in r.stderr.splitlines() if not line.startswith("fastquant: compiling")],
    )


def assert_refused(code, out, err, folder, before, *words, expected=3, json_flag=False):
    """Exit code 3, one line on stderr naming the reason, nothing written, and nothing on
    stdout, or with --json exactly the one JSON record of the failure (nothing leaks into it)."""
    assert code == expected, err
    if json_flag:
        lines = out.splitlines()
        assert len(lines) == 1, out
        record = json.loads(lines[0])
        assert record["status"] == "error" and record["exit_code"] == expected, record
    else:
        assert out == ""
    assert len(err) == 1, err
    assert err[0].startswith("fastquant: error: ") and "Traceback" not in err[0]
    for word in words:
        assert word.lower() in err[0].lower(), (word, err[0])
    assert sorted(p.name for p in Path(folder).iterdir()) == before


def _listing(folder):
    return sorted(p.name for p in Path(folder).iterdir())


# ----------------------------------------------------------------------------- 1. the allow-list


def test_allow_list_is_documented_and_has_no_program_runners():
    assert io.READ_FORMATS[:4] == ("PNG", "JPEG", "MPO", "GIF")
    assert not {"EPS", "PS", "PDF", "XPS"} & set(io.READ_FORMATS)
    for fmt in io.READ_FORMATS:
        assert fmt in io.__doc__ or fmt.title() in io.__doc__ or fmt == "WEBP"


@pytest.mark.parametrize(
    "fmt, ext",
    [
        ("PNG", "png"),
        ("JPEG", "jpg"),
        ("GIF", "gif"),
        ("BMP", "bmp"),
        ("TIFF", "tif"),
        ("WEBP", "webp"),
        ("ICO", "ico"),
        ("PPM", "ppm"),
        ("TGA", "tga"),
    ],
)
def test_every_allowed_format_reads(tmp_path, fmt, ext):
    src = _noise(32, 48)
    kw = {"sizes": [(48, 32)]} if fmt == "ICO" else {"lossless": True} if fmt == "WEBP" else {}
    path = tmp_path / f"a.{ext}"
    path.write_bytes(_encode(src, fmt, **kw))
    a, nbytes = io.read_image(path)
    with Image.open(path) as im:
        expected = np.asarray(im.convert("RGB"))
    assert nbytes == path.stat().st_size
    np.testing.assert_array_equal(a, expected)
    if fmt not in ("JPEG", "GIF"):
        np.testing.assert_array_equal(a, src)


@pytest.mark.parametrize("kind", sorted(POSTSCRIPT))
@pytest.mark.parametrize("name", ["art.png", "art.eps"])
def test_postscript_refused_without_running_ghostscript(tmp_path, fake_gs, kind, name):
    path = tmp_path / name
    path.write_bytes(POSTSCRIPT[kind])
    for source in (path, POSTSCRIPT[kind], _io.BytesIO(POSTSCRIPT[kind])):
        with pytest.raises(InputError) as info:
            io.read_image(source)
        msg = str(info.value)
        assert "EPS" in msg and "not read" in msg and "\n" not in msg
    with pytest.raises(InputError):
        fastquant.compress(path)
    assert not fake_gs.exists(), fake_gs.read_text()


@pytest.mark.parametrize("json_flag", [False, True])
@pytest.mark.parametrize("name", ["loop.png", "loop.eps"])
def test_postscript_cli_refused_in_a_subprocess(tmp_path, fake_gs, name, json_flag):
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / name).write_bytes(POSTSCRIPT["loop"])
    before = _listing(folder)
    code, out, err = run_cli_subprocess([name] + ["--json"] * json_flag, folder)
    assert_refused(code, out, err, folder, before, name, "EPS", json_flag=json_flag)
    assert not fake_gs.exists()


def test_pdf_is_named_not_read():
    with pytest.raises(InputError) as info:
        io.read_image(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n")
    assert "not read" in str(info.value) or "not an image" in str(info.value)


# ----------------------------------------------------------------------------- 3. truncated and lying files


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "TIFF", "PPM"])
def test_truncated_file_refused(fmt):
    _, cut = truncated(fmt)
    with pytest.raises(InputError) as info:
        io.read_image(cut)
    assert "truncated" in str(info.value) and "\n" not in str(info.value)


def test_truncated_gif_closed_early_refused():
    # The LZW data blocks end halfway, followed by a proper block terminator and trailer.
    data = _encode(Image.fromarray(_noise()).convert("P"), "GIF")
    start = data.index(b"\x2c", 13) + 11  # image descriptor, LZW code size: the first data block
    blocks, k = [], start
    while data[k]:
        blocks.append(data[k : k + 1 + data[k]])
        k += 1 + data[k]
    cut = data[:start] + b"".join(blocks[: len(blocks) // 2]) + b"\x00\x3b"
    with pytest.raises(InputError, match="truncated"):
        io.read_image(cut)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("make", [lying_jpeg, lying_png])
def test_lying_header_refused_before_decoding(make):
    data = make()
    assert len(data) < 700
    with Image.open(_io.BytesIO(data)) as im:
        assert im.size == (13000, 13000)
    with pytest.raises(InputError) as info:
        io.read_image(data)
    msg = str(info.value)
    assert "truncated or forged" in msg and "13000x13000" in msg and "\n" not in msg
    with pytest.raises(InputError):
        io.open_image(data, max_pixels=None)
    with pytest.raises(InputError):
        fastquant.compress(data)


@pytest.mark.parametrize(
    "kw",
    [
        {"quality": 75},
        {"quality": 10, "optimize": True},
        {"quality": 10, "optimize": True, "progressive": True},
        {"quality": 10, "optimize": True, "progressive": True, "subsampling": 0},
    ],
)
def test_flat_jpeg_is_not_taken_for_a_lying_one(kw):
    # The most compressible honest JPEGs (one colour, optimised Huffman tables,
    # progressive) still spend a bit per 8x8 block: the size check lets them through.
    data = _encode(Image.new("RGB", (2400, 1600), (90, 120, 200)), "JPEG", **kw)
    a, _ = io.read_image(data)
    assert a.shape == (1600, 2400, 3)
    assert np.abs(a.astype(int) - (90, 120, 200)).max() <= 8  # quality 10: coarse DC steps


def test_flat_png_is_not_taken_for_a_lying_one():
    data = _encode(Image.new("L", (3000, 3000), 0), "PNG", optimize=True)
    a, _ = io.read_image(data)
    assert a.shape == (3000, 3000, 3) and not a.any()


@pytest.mark.parametrize("json_flag", [False, True])
@pytest.mark.parametrize(
    "name, make",
    [
        ("lie.jpg", lying_jpeg),
        ("lie.png", lying_png),
        ("cut.png", lambda: truncated("PNG")[1]),
        ("cut.jpg", lambda: truncated("JPEG")[1]),
    ],
)
def test_truncated_and_lying_cli(tmp_path, name, make, json_flag):
    # In a subprocess: a reader that believes the lying header quantizes 169 MP for minutes.
    (tmp_path / name).write_bytes(make())
    before = _listing(tmp_path)
    code, out, err = run_cli_subprocess([name] + ["--json"] * json_flag, tmp_path)
    assert_refused(code, out, err, tmp_path, before, name, "truncated", json_flag=json_flag)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "TIFF"])
def test_allow_truncated_reads_what_is_there(fmt):
    whole, cut = truncated(fmt)
    full, _ = io.read_image(whole)
    a, nbytes = io.read_image(cut, allow_truncated=True)
    assert nbytes == len(cut) and a.shape == full.shape
    rows = 8  # the first rows decode as in the whole file
    if fmt == "JPEG":
        assert np.abs(a[:rows].astype(int) - full[:rows]).max() <= 2
    else:
        np.testing.assert_array_equal(a[:rows], full[:rows])
    assert not np.array_equal(a, full)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # Pillow's global switch was not used


def test_allow_truncated_through_compress_and_cli(tmp_path, capsys):
    _, cut = truncated("PNG")
    (tmp_path / "cut.png").write_bytes(cut)
    with pytest.raises(InputError):
        fastquant.compress(tmp_path / "cut.png", 16)
    q = fastquant.compress(tmp_path / "cut.png", 16, allow_truncated=True)
    assert q.indices.shape == (64, 64)
    code, out, err = run_cli(capsys, tmp_path / "cut.png", "-k", "16", "--allow-truncated")
    assert code == 0, err
    assert (tmp_path / "cut-fq16.png").exists() or any(p.name != "cut.png" for p in tmp_path.iterdir())


# ----------------------------------------------------------------------------- 9. bounded reads


def test_read_limit_rule():
    assert io.read_limit(None) is None
    assert io.read_limit(1000) == 64 * 2**20 + 8000
    assert io.read_limit(io.DEFAULT_MAX_PIXELS) == 64 * 2**20 + 8 * io.DEFAULT_MAX_PIXELS


class Endless:
    """A binary file object that never ends (a real one would exhaust memory on read())."""

    def __init__(self):
        self.given = 0

    def read(self, n=-1):
        if n is None or n < 0:
            raise MemoryError("read() of an endless stream")
        self.given += n
        return b"\0" * n


def test_endless_file_object_bounded():
    f = Endless()
    with pytest.raises(InputError) as info:
        io.read_image(f, max_pixels=100)
    limit = io.read_limit(100)
    assert str(limit) in str(info.value) and "bytes" in str(info.value)
    assert limit < f.given <= limit + 2**20


def test_large_regular_file_refused_unread(tmp_path):
    path = tmp_path / "huge.png"
    with open(path, "wb") as f:  # sparse: costs no disk
        f.write(_encode(_noise(8, 8), "PNG"))
        f.truncate(io.read_limit(100) + 1)
    with pytest.raises(InputError, match="bytes"):
        io.read_image(path, max_pixels=100)


def test_device_refused(capsys, tmp_path):
    before = _listing(tmp_path)
    code, out, err = run_cli(capsys, "/dev/zero", "--out-dir", tmp_path)
    assert_refused(code, out, err, tmp_path, before, "/dev/zero", "not a regular file")


def _endless_writer(fifo, stop):
    """Write zeros into a FIFO until its reader goes away (or the test ends)."""
    try:
        with open(fifo, "wb", buffering=0) as f:
            block = b"\0" * 65536
            while not stop.is_set():
                f.write(block)
    except (BrokenPipeError, OSError):
        pass


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
@pytest.mark.parametrize("json_flag", [False, True])
def test_endless_pipe_bounded_in_a_subprocess(tmp_path, json_flag):
    folder = tmp_path / "work"
    folder.mkdir()
    fifo = folder / "endless.png"
    os.mkfifo(fifo)
    stop = threading.Event()
    writer = threading.Thread(target=_endless_writer, args=(fifo, stop), daemon=True)
    writer.start()
    try:
        before = _listing(folder)
        code, out, err = run_cli_subprocess(["endless.png", "--max-pixels", "100"] + ["--json"] * json_flag, folder)
        assert_refused(
            code, out, err, folder, before, "endless.png", "bytes", str(io.read_limit(100)), json_flag=json_flag
        )
    finally:
        stop.set()
        try:  # a writer still waiting for a reader: give it one that leaves at once
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
        except OSError:
            pass
        writer.join(10)


def test_pipe_with_an_image_still_reads(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    data = _encode(_noise(), "PNG")
    t = threading.Thread(target=lambda: Path(fifo).write_bytes(data), daemon=True)
    t.start()
    a, nbytes = io.read_image(fifo)
    t.join(10)
    assert nbytes == len(data)
    np.testing.assert_array_equal(a, _noise())


# ----------------------------------------------------------------------------- 10. max_pixels is the only limit


def _mem_available():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _need_memory(nbytes):
    if _mem_available() < nbytes:
        pytest.skip(f"needs {nbytes >> 20} MiB of free memory")


def test_400_megapixels_read_with_a_higher_max_pixels():
    _need_memory(3 << 30)  # 0.4 GB for Pillow's image, 1.2 GB for read_image's RGB array, headroom
    limit_before = Image.MAX_IMAGE_PIXELS
    im = Image.new("1", (20000, 20000))
    ImageDraw.Draw(im).rectangle((100, 19000, 19899, 19899), fill=1)
    data = _encode(im, "PNG")
    del im
    assert len(data) < 100_000 and 20000 * 20000 > 2 * Image.MAX_IMAGE_PIXELS
    with pytest.raises(InputError, match="limit"):
        io.read_image(data)  # the default max_pixels still refuses it
    with io.open_image(data, max_pixels=500_000_000) as d:
        assert (d.width, d.height, d.channels) == (20000, 20000, 3)
        assert not d.strip(0, 10).any()
        band = d.strip(18990, 19010)
        assert not band[:10].any() and (band[10:, 100:19900] == 255).all() and not band[10:, :100].any()
    a, _ = io.read_image(data, max_pixels=None)
    assert a.shape == (20000, 20000, 3) and a[19500, 5000, 0] == 255 and a[100, 100, 0] == 0
    del a
    assert Image.MAX_IMAGE_PIXELS == limit_before


def test_gif_above_pillows_limit_read_with_a_higher_max_pixels():
    # Pillow's GIF plugin checks Pillow's limit itself, while opening.
    _need_memory(2 << 30)
    limit_before = Image.MAX_IMAGE_PIXELS
    im = Image.new("P", (20000, 9000))
    im.putpalette([0, 0, 0, 255, 255, 255])
    ImageDraw.Draw(im).rectangle((0, 8000, 19999, 8999), fill=1)
    data = _encode(im, "GIF")
    del im
    assert 20000 * 9000 > 2 * Image.MAX_IMAGE_PIXELS
    with io.open_image(data, max_pixels=200_000_000) as d:
        assert (d.width, d.height, d.channels) == (20000, 9000, 3)
        assert (d.strip(8999, 9000) == 255).all() and not d.strip(0, 1).any()
    assert Image.MAX_IMAGE_PIXELS == limit_before


def test_memory_error_while_decoding_is_a_resource_error(monkeypatch):
    def no_memory(self):
        raise MemoryError

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_memory)
    with pytest.raises(ResourceError) as info:
        io.read_image(_encode(_noise(), "PNG"))
    assert info.value.exit_code == 7 and "memory" in str(info.value) and "\n" not in str(info.value)


# ----------------------------------------------------------------------------- 4. open_image

STRIPPED = (
    ["kodak/" + p.name for p in sorted((DATA / "kodak").glob("*.png"))[:1]]
    + ["odd/" + p.name for p in sorted((DATA / "odd").glob("*")) if p.suffix != ".md"]
    + ["alpha/" + p.name for p in sorted((DATA / "alpha").glob("*.png"))[:3]]
    + [
        "pngsuite/" + n
        for n in (
            "tbbn0g04.png",
            "tbwn0g16.png",
            "tbbn3p08.png",
            "tp0n3p08.png",
            "basn0g01.png",
            "basn4a16.png",
            "tbrn2c08.png",
        )
    ]
)


@pytest.mark.parametrize("rel", STRIPPED)
def test_strips_equal_read_image(rel):
    path = DATA / rel
    if not path.exists():
        pytest.skip(f"{rel} not in tests/data")
    full, nbytes = io.read_image(path)
    with io.open_image(path) as d:
        assert (d.height, d.width, d.channels) == full.shape and d.nbytes == nbytes
        rows = max(1, d.height // 5 - 1)  # uneven strips, the last one short
        parts = [s for _, s in d.strips(rows)]
        assert all(p.dtype == np.uint8 and p.flags.c_contiguous and p.flags.writeable for p in parts)
        np.testing.assert_array_equal(np.concatenate(parts), full)
        np.testing.assert_array_equal(d.strip(d.height - 1, d.height), full[-1:])
    with io.open_image(path) as d:
        d.strip_rows = 5  # copied in strips of one row (a quarter), the last one short
        taken = d.take()
        assert taken.flags.writeable and taken.flags.c_contiguous
        np.testing.assert_array_equal(taken, full)
        with pytest.raises(ValueError, match="closed"):  # Pillow's image is freed once copied
            d.strip(0, 1)


@pytest.mark.parametrize("kind", ["jpeg", "rgb", "rgba", "opaque-rgba", "rgb-key", "orientation", "palette"])
def test_take_packs_what_pillow_decoded_into_memory_of_our_own(kind):
    """RGB and RGBA PNGs and JPEGs are decoded into a mapping of fastquant's own (4 bytes a pixel),
    which take() packs to 3 in place; a colour key, an EXIF orientation or another mode is
    copied out of the image as read() does: the same pixels either way."""
    rgb = _noise(37, 29, seed=3)
    alpha = np.where(np.arange(29) % 3 == 0, 255, np.arange(29) * 7).astype(np.uint8)
    if kind == "jpeg":
        data = _encode(rgb, "JPEG", quality=90)
    elif kind in ("rgba", "opaque-rgba"):
        a = np.broadcast_to(alpha if kind == "rgba" else np.uint8(255), (37, 29))
        data = _encode(np.dstack([rgb, a]), "PNG")
    elif kind == "rgb-key":
        data = _encode(rgb, "PNG", transparency=tuple(int(v) for v in rgb[5, 5]))
    elif kind == "orientation":
        exif = Image.Exif()
        exif[0x0112] = 6
        data = _encode(rgb, "JPEG", quality=90, exif=exif)
    elif kind == "palette":
        data = _encode(Image.fromarray(rgb).quantize(17), "PNG")
    else:
        data = _encode(rgb, "PNG")
    full, _ = io.read_image(data)
    with io.open_image(data) as d:
        assert (d._memory is not None) == (kind in ("jpeg", "rgb", "rgba", "opaque-rgba", "rgb-key", "orientation"))
        taken = d.take()
    assert taken.shape == full.shape and full.shape[:2] == ((29, 37) if kind == "orientation" else (37, 29))
    assert taken.flags.writeable and taken.flags.c_contiguous
    np.testing.assert_array_equal(taken, full)
    assert full.shape[2] == (4 if kind in ("rgba", "rgb-key") else 3)


def test_take_packs_by_a_copy_when_pillows_encoder_is_gone(monkeypatch):
    """The in-place packing uses Pillow's private raw encoder: should it move, the pixels are copied."""
    rgb = _noise(37, 29, seed=4)
    data = _encode(rgb, "PNG")

    def gone(*args, **kwargs):
        raise AttributeError("_getencoder")

    monkeypatch.setattr(Image, "_getencoder", gone)
    with io.open_image(data) as d:
        assert d._memory is not None
        taken = d.take()
    assert taken.flags.writeable and taken.flags.c_contiguous
    np.testing.assert_array_equal(taken, rgb)


def test_take_leaves_arrays_and_pillow_images_of_the_caller():
    arr = _noise(8, 6)
    with io.open_image(arr) as d:
        assert d.take() is None
        np.testing.assert_array_equal(d.strip(0, 8), arr)
    im = Image.fromarray(arr)
    with io.open_image(im) as d:
        assert d.take() is None
        np.testing.assert_array_equal(d.strip(0, 8), arr)
    assert im.getpixel((0, 0)) == tuple(arr[0, 0])  # still open


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("mode", ["RGB", "L", "P"])
def test_exif_orientation_in_strips(orientation, mode):
    # Grey and palette pictures too: imageio flipped their channels instead of their columns.
    src = Image.fromarray(_noise(24, 40, seed=orientation)).convert(mode)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _encode(src, "PNG", exif=exif)
    with Image.open(_io.BytesIO(data)) as im:
        assert im.getexif().get(0x0112) == orientation
        expected = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    a, _ = io.read_image(data)
    np.testing.assert_array_equal(a, expected)
    with io.open_image(data) as d:
        np.testing.assert_array_equal(np.concatenate([s for _, s in d.strips(7)]), expected)


@pytest.mark.parametrize("used_alpha, channels", [(255, 3), (254, 4)])
def test_palette_transparency_decides_channels_over_all_strips(used_alpha, channels):
    # Only the last row uses the palette entry with the alpha under test.
    indices = np.zeros((300, 20), np.uint8)
    indices[-1, -1] = 1
    im = Image.fromarray(indices, "P")
    im.putpalette([10, 20, 30, 40, 50, 60])
    data = _encode(im, "PNG", transparency=bytes([255, used_alpha]))
    with io.open_image(data) as d:
        d.strip_rows = 16
        assert d.channels == channels
        assert d.strip(0, 1).shape == (1, 20, channels)
    assert io.read_image(data)[0].shape == (300, 20, channels)


def test_opaque_rgba_drops_alpha():
    rgba = np.dstack([_noise(), np.full((64, 64), 255, np.uint8)])
    with io.open_image(_encode(rgba, "PNG")) as d:
        assert d.channels == 3
        np.testing.assert_array_equal(d.strip(0, 64), rgba[:, :, :3])


def test_open_image_array_source_and_errors():
    arr = np.arange(2 * 5 * 4, dtype=np.uint8).reshape(2, 5, 4)
    d = io.open_image(arr)
    assert (d.width, d.height, d.channels, d.nbytes) == (5, 2, 4, None)
    s = d.strip(1, 2)
    np.testing.assert_array_equal(s, arr[1:2])
    s[...] = 0  # a copy: the caller's array is untouched
    assert arr[1, 0, 0] != 0
    for bad in [(1, 0), (-1, 1), (0, 3), (0.0, 1)]:
        with pytest.raises(OptionError):
            d.strip(*bad)
    d.close()
    with pytest.raises(ValueError):
        d.strip(0, 1)
    with pytest.raises(OptionError):
        io.open_image(_encode(_noise(), "PNG"), max_pixels=0)


def test_open_image_keeps_one_decoded_copy():
    # The decoded Pillow image is the only full-size object: a strip is a few MB.
    data = _encode(Image.new("RGB", (3000, 2000), (1, 2, 3)), "PNG")
    with io.open_image(data) as d:
        assert d.strip_rows * d.width * 4 <= config.STRIP_BYTES
        y0, first = next(d.strips())
        assert y0 == 0 and first.nbytes <= config.STRIP_BYTES
