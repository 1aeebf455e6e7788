#!/usr/bin/env python
"""Fuzz fastquant's input handling with mutated real images.

    python tests/fuzz.py --cases 5000 --seed 1
    python tests/fuzz.py --seed 1 --replay 1234          # one case, with a full traceback
    python tests/fuzz.py --seed 1 --replay 1234 --save /tmp/case.png

Every case takes the bytes of a real PNG, JPEG or GIF from the test images
(tests/data, or --images / $FASTQUANT_IMAGES: PngSuite valid files, odd/,
alpha/ icons, rarely a Kodak photo),
applies one to three mutations (bit flips, overwritten byte runs, truncations,
insertions, interesting 16/32-bit values; PNG chunk shuffles, duplications,
removals and body edits with and without CRC fix-up, IHDR field edits,
re-compressed IDAT damage; GIF block, descriptor and LZW damage; JPEG marker,
segment-length and segment damage) and feeds the result to
``fastquant.compress()``.  A case passes when compress returns a valid
``Quantized`` (sane palette and indices, encodes to a PNG that Pillow decodes
to the same pixels) or raises a ``FastquantError`` with a one-line message;
any other exception is a failure.

The in-process part runs in a worker subprocess watched by this process: a
case that takes longer than ``--timeout`` seconds is reported as a hang (the
worker is killed and restarted after it), and a worker that dies (segfault,
out of memory) is reported with the case it was running.  Every
``--cli-every``-th case is also written to a file and run through
``python -m fastquant`` (in batches of ``--cli-batch`` files per process):
the exit code must be 0 or 3, stderr must hold no traceback, each failed file
gets exactly one error line naming it and no output file, each output decodes,
no ``.fastquant-*.tmp`` is left behind, and the outcome must agree with the
in-process one.

Cases are kept cheap (``n_colors=16``, ``resize=64``, ``max_pixels=2**22``)
so that thousands run in a few minutes.  Case ``i`` of seed ``S`` is generated
from ``random.Random(S * 1_000_003 + i)`` alone, so any case is reproduced by
``--seed S --replay i``.  Exit status: 0 when no case failed, 1 otherwise.
"""

import argparse
import json
import os
import random
import re
import selectors
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
IMAGES = Path(os.environ.get("FASTQUANT_IMAGES", HERE / "data"))

N_COLORS = 16
RESIZE = 64
MAX_PIXELS = 1 << 22

PNG_SIG = b"\x89PNG\r\n\x1a\n"
INTERESTING_16 = [0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF]
INTERESTING_32 = INTERESTING_16 + [0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 100000, 65536 * 3]


# ----------------------------------------------------------------------------- seed files


def seed_files(images=IMAGES):
    """Sorted list of (path, weight): small files weigh more, Kodak photos little."""
    images = Path(images)
    picked = []

    def add(paths, weight):
        picked.extend((p, weight) for p in sorted(paths))

    add((images / "pngsuite").glob("[bfgpst]*.png"), 1.0)
    ext = {".png", ".jpg", ".jpeg", ".gif"}
    odd = [p for p in (images / "odd").glob("*") if p.suffix.lower() in ext]
    add([p for p in odd if p.stat().st_size <= 60_000], 6.0)  # tRNS, GIFs, EXIF JPEG, oxipng
    add([p for p in odd if 60_000 < p.stat().st_size <= 600_000], 1.0)  # CMYK / progressive JPEG...
    add([p for p in (images / "alpha").glob("*.png") if p.stat().st_size <= 20_000], 3.0)
    add(sorted((images / "kodak").glob("*.png"))[:2], 0.5)
    if not picked:
        raise SystemExit(f"fuzz: no seed images under {images} (set FASTQUANT_IMAGES or --images)")
    return picked


_CACHE = {}


def _read(path):
    if path not in _CACHE:
        _CACHE[path] = path.read_bytes()
    return _CACHE[path]


# ----------------------------------------------------------------------------- generic mutations


def _pos(rng, n, head=256):
    """A byte position, biased towards the header where the structure is."""
    if n <= 0:
        return 0
    if rng.random() < 0.5:
        return rng.randrange(min(n, head))
    return rng.randrange(n)


def flip_bits(rng, data):
    if not data:
        return insert_bytes(rng, data)
    b = bytearray(data)
    n = rng.choice([1, 1, 2, 3, 8, 32])
    for _ in range(n):
        i = _pos(rng, len(b))
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b), f"flip {n} bits"


def overwrite_run(rng, data):
    if not data:
        return insert_bytes(rng, data)
    b = bytearray(data)
    i = _pos(rng, len(b))
    n = rng.choice([1, 2, 4, 16, 64, 512])
    kind = rng.choice(["random", "zero", "ff", "repeat"])
    fill = {
        "random": lambda: bytes(rng.randrange(256) for _ in range(n)),
        "zero": lambda: b"\0" * n,
        "ff": lambda: b"\xff" * n,
        "repeat": lambda: bytes([rng.randrange(256)]) * n,
    }[kind]()
    b[i : i + n] = fill[: max(0, len(b) - i)]
    return bytes(b), f"overwrite {n} bytes at {i} ({kind})"


def truncate(rng, data):
    n = len(data)
    r = rng.random()
    if r < 0.3:
        cut = rng.randrange(min(n, 64) + 1)
    elif r < 0.6:
        cut = max(0, n - rng.randrange(1, 64))
    else:
        cut = rng.randrange(n + 1)
    return data[:cut], f"truncate to {cut} of {n}"


def insert_bytes(rng, data):
    i = _pos(rng, len(data) + 1)
    if rng.random() < 0.5 and data:
        j = rng.randrange(len(data))
        chunk = data[j : j + rng.choice([1, 8, 64, 1024])]
        what = f"copy of {len(chunk)} bytes from {j}"
    else:
        chunk = bytes(rng.randrange(256) for _ in range(rng.choice([1, 4, 32])))
        what = f"{len(chunk)} random bytes"
    return data[:i] + chunk + data[i:], f"insert {what} at {i}"


def interesting_value(rng, data):
    b = bytearray(data)
    if len(b) < 4:
        return flip_bits(rng, data)
    i = _pos(rng, len(b) - 3)
    if rng.random() < 0.5:
        v = rng.choice(INTERESTING_16)
        b[i : i + 2] = struct.pack(rng.choice([">H", "<H"]), v)
    else:
        v = rng.choice(INTERESTING_32)
        b[i : i + 4] = struct.pack(rng.choice([">I", "<I"]), v)
    return bytes(b), f"value {v:#x} at {i}"


GENERIC = [flip_bits, overwrite_run, truncate, insert_bytes, interesting_value]


# ----------------------------------------------------------------------------- PNG


def png_chunks(data):
    """Chunks of a PNG as [tag, body, crc] lists, or None when it does not parse."""
    if not data.startswith(PNG_SIG):
        return None
    out, i = [], 8
    while i + 12 <= len(data):
        (n,) = struct.unpack(">I", data[i : i + 4])
        if i + 12 + n > len(data):
            return None
        out.append([data[i + 4 : i + 8], data[i + 8 : i + 8 + n], data[i + 8 + n : i + 12 + n]])
        i += 12 + n
    return out or None


def png_join(chunks, fix_crc):
    parts = [PNG_SIG]
    for tag, body, crc in chunks:
        if fix_crc:
            crc = struct.pack(">I", zlib.crc32(tag + body))
        parts.append(struct.pack(">I", len(body)) + tag + body + crc)
    return b"".join(parts)


def png_mutate(rng, data):
    chunks = png_chunks(data)
    if chunks is None:
        return None
    fix = rng.random() < 0.75
    op = rng.choice(["swap", "dup", "drop", "body", "tag", "ihdr", "idat", "idat", "split"])
    k = rng.randrange(len(chunks))
    tag = chunks[k][0].decode("latin-1")
    if op == "swap" and len(chunks) > 1:
        j = rng.randrange(len(chunks))
        chunks[k], chunks[j] = chunks[j], chunks[k]
        what = f"swap chunks {k} and {j}"
    elif op == "dup":
        chunks.insert(rng.randrange(len(chunks) + 1), list(chunks[k]))
        what = f"duplicate chunk {k} ({tag})"
    elif op == "drop":
        del chunks[k]
        what = f"drop chunk {k} ({tag})"
    elif op == "body":
        body, how = rng.choice(GENERIC)(rng, chunks[k][1])
        chunks[k][1] = body
        what = f"chunk {k} ({tag}) body: {how}"
    elif op == "tag":
        new = bytes(rng.choice(b"IDATPLTEtRNSIHDRIENDbKGDgAMAsRGBzTXtacTLfcTL") for _ in range(4))
        chunks[k][0] = new
        what = f"retag chunk {k} ({tag}) as {new!r}"
    elif op == "ihdr" and chunks[0][0] == b"IHDR" and len(chunks[0][1]) == 13:
        body = bytearray(chunks[0][1])
        field = rng.choice(["width", "height", "depth", "colour", "compression", "filter", "interlace"])
        if field in ("width", "height"):
            v = rng.choice(
                [0, 1, 2, 3, 7, 255, 2047, 2048, 4097, 65535, 100000, 0x7FFFFFFF, 0xFFFFFFFF, rng.randrange(1, 5000)]
            )
            off = 0 if field == "width" else 4
            body[off : off + 4] = struct.pack(">I", v)
        else:
            off = {"depth": 8, "colour": 9, "compression": 10, "filter": 11, "interlace": 12}[field]
            v = rng.choice([0, 1, 2, 3, 4, 6, 8, 16, 7, 255])
            body[off] = v
        chunks[0][1] = bytes(body)
        fix = rng.random() < 0.9
        what = f"IHDR {field} = {v}"
    elif op in ("idat", "split"):
        idat = [c for c in chunks if c[0] == b"IDAT"]
        if not idat:
            return None
        try:
            raw = zlib.decompress(b"".join(c[1] for c in idat))
        except zlib.error:
            return None
        if op == "idat":
            raw, how = rng.choice([flip_bits, overwrite_run, truncate, insert_bytes])(rng, raw)
            what = f"inflated IDAT: {how}"
        else:
            what = "IDAT re-split"
        z = zlib.compress(raw, rng.choice([0, 1, 9]))
        pieces, i = [], 0
        while i < len(z) or not pieces:
            n = rng.choice([1, 7, 100, 1 << 16])
            pieces.append([b"IDAT", z[i : i + n], b""])
            i += n
        first = chunks.index(idat[0])
        chunks = [c for c in chunks if c[0] != b"IDAT"]
        chunks[first:first] = pieces
        fix = True
        what += f" into {len(pieces)} chunks"
    else:
        return None
    return png_join(chunks, fix), f"png {what}" + ("" if fix else " (CRC not fixed)")


# ----------------------------------------------------------------------------- GIF


def gif_fields(data):
    """Offsets of interesting GIF fields: [(name, offset, size)], None when not a GIF."""
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        return None
    fields = [("screen width", 6, 2), ("screen height", 8, 2), ("packed", 10, 1)]
    i = 13
    if data[10] & 0x80:
        i += 3 << ((data[10] & 7) + 1)
    while i < len(data):
        fields.append(("block introducer", i, 1))
        b = data[i]
        if b == 0x3B:
            break
        if b == 0x21:
            fields.append(("extension label", i + 1, 1))
            i += 2
        elif b == 0x2C:
            fields += [
                ("image left", i + 1, 2),
                ("image top", i + 3, 2),
                ("image width", i + 5, 2),
                ("image height", i + 7, 2),
                ("image packed", i + 9, 1),
            ]
            packed = data[i + 9] if i + 9 < len(data) else 0
            i += 10
            if packed & 0x80:
                i += 3 << ((packed & 7) + 1)
            fields.append(("LZW minimum code size", i, 1))
            i += 1
        else:
            break
        while i < len(data) and data[i]:  # data sub-blocks
            fields.append(("sub-block length", i, 1))
            i += data[i] + 1
        fields.append(("block terminator", i, 1))
        i += 1
    return [f for f in fields if f[1] + f[2] <= len(data)]


def gif_mutate(rng, data):
    fields = gif_fields(data)
    if not fields:
        return None
    name, off, size = rng.choice(fields)
    b = bytearray(data)
    if size == 2:
        v = rng.choice([0, 1, 2, 255, 256, 4096, 0x7FFF, 0xFFFF, rng.randrange(65536)])
        b[off : off + 2] = struct.pack("<H", v)
    elif name == "block introducer":
        v = rng.choice([0x00, 0x21, 0x2C, 0x3B, 0xFF, rng.randrange(256)])
        b[off] = v
    elif name == "LZW minimum code size":
        v = rng.choice([0, 1, 2, 8, 11, 12, 13, 15, 255])
        b[off] = v
    else:
        v = rng.choice([0, 1, 0x80, 0xFF, rng.randrange(256)])
        b[off] = v
    return bytes(b), f"gif {name} at {off} = {v}"


# ----------------------------------------------------------------------------- JPEG

_STANDALONE = set(range(0xD0, 0xD9)) | {0x01}


def jpeg_segments(data):
    """(marker, offset, total length) of each segment up to the scan data, None when not a JPEG."""
    if not data.startswith(b"\xff\xd8"):
        return None
    segs, i = [(0xD8, 0, 2)], 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        m = data[i + 1]
        if m == 0xFF:
            i += 1
            continue
        if m in _STANDALONE:
            segs.append((m, i, 2))
            i += 2
            continue
        (n,) = struct.unpack(">H", data[i + 2 : i + 4])
        segs.append((m, i, n + 2))
        if m == 0xDA:  # start of scan: entropy-coded data follows
            break
        i += n + 2
    return segs


def jpeg_mutate(rng, data):
    segs = jpeg_segments(data)
    if not segs or len(segs) < 2:
        return None
    m, off, n = rng.choice(segs[1:])
    op = rng.choice(["marker", "length", "drop", "dup", "body", "scan"])
    if op == "marker":
        new = rng.choice(
            [0xC0, 0xC1, 0xC2, 0xC4, 0xDB, 0xDD, 0xDA, 0xD9, 0xE0, 0xE1, 0xFE, 0x00, 0xFF, rng.randrange(256)]
        )
        out = data[: off + 1] + bytes([new]) + data[off + 2 :]
        what = f"marker {m:#x} at {off} -> {new:#x}"
    elif op == "length" and n > 2:
        v = rng.choice([0, 1, 2, 3, n - 3, n - 1, n + 1, 0x7FFF, 0xFFFF])
        v = max(0, min(0xFFFF, v))
        out = data[: off + 2] + struct.pack(">H", v) + data[off + 4 :]
        what = f"segment {m:#x} at {off} length {n - 2} -> {v}"
    elif op == "drop":
        out = data[:off] + data[off + n :]
        what = f"drop segment {m:#x} at {off}"
    elif op == "dup":
        out = data[:off] + data[off : off + n] + data[off:]
        what = f"duplicate segment {m:#x} at {off}"
    elif op == "body" and n > 4:
        body, how = rng.choice([flip_bits, overwrite_run, interesting_value])(rng, data[off + 4 : off + n])
        body = body[: n - 4].ljust(n - 4, b"\0")
        out = data[: off + 4] + body + data[off + n :]
        what = f"segment {m:#x} at {off} body: {how}"
    elif op == "scan":  # markers inside the entropy-coded data
        start = segs[-1][1] + segs[-1][2]
        if start >= len(data) - 2:
            return None
        i = rng.randrange(start, len(data) - 1)
        new = rng.choice([0xD0, 0xD3, 0xD7, 0xD9, 0xDA, 0xC4, 0xFF, 0x00])
        out = data[:i] + bytes([0xFF, new]) + data[i + 2 :]
        what = f"marker {new:#x} in scan data at {i}"
    else:
        return None
    return out, f"jpeg {what}"


# ----------------------------------------------------------------------------- cases


def case_seed(seed, i):
    return seed * 1_000_003 + i


def make_case(files, seed, i):
    """(data, extension, description) of case i: deterministic in (files, seed, i)."""
    rng = random.Random(case_seed(seed, i))
    path = rng.choices([p for p, _ in files], weights=[w for _, w in files])[0]
    data = _read(path)
    ext = path.suffix.lower()
    specific = {".png": png_mutate, ".gif": gif_mutate, ".jpg": jpeg_mutate, ".jpeg": jpeg_mutate}[ext]
    steps = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        result = specific(rng, data) if rng.random() < 0.6 else None
        if result is None:
            result = rng.choice(GENERIC)(rng, data)
        data, what = result
        steps.append(what)
    how = rng.choice(["bytes"] * 8 + ["file object"] * 2)
    return data, ext, f"{path.parent.name}/{path.name}: " + "; ".join(steps), how


def check_quantized(q):
    """None when q is a valid result, else what is wrong with it."""
    import io as _io

    import numpy as np
    from PIL import Image

    from fastquant import Animation, Quantized

    if isinstance(q, Animation):
        return check_animation(q)
    if not isinstance(q, Quantized):
        return f"returned {type(q).__name__}, not Quantized"
    p, ix = q.palette, q.indices
    if not (
        isinstance(p, np.ndarray)
        and p.dtype == np.uint8
        and p.ndim == 2
        and p.shape[1] in (3, 4)
        and 1 <= len(p) <= N_COLORS
    ):
        return f"bad palette {getattr(p, 'dtype', None)} {getattr(p, 'shape', None)}"
    if not (isinstance(ix, np.ndarray) and ix.ndim == 2 and ix.dtype == np.uint8):
        return f"bad indices {getattr(ix, 'dtype', None)} {getattr(ix, 'shape', None)}"
    h, w = ix.shape
    if not (1 <= h <= RESIZE and 1 <= w <= RESIZE) or (q.stats.width, q.stats.height) != (w, h):
        return f"bad size {w}x{h}, stats {q.stats.width}x{q.stats.height}"
    if int(ix.max()) >= len(p):
        return f"index {int(ix.max())} >= palette size {len(p)}"
    if q.original.shape[:2] != (h, w) or q.original.shape[2] != p.shape[1]:
        return f"original {q.original.shape} does not match {ix.shape} x {p.shape}"
    if not (np.isfinite(q.stats.mse) and q.stats.mse >= 0 and q.stats.psnr >= 0):
        return f"bad stats mse={q.stats.mse} psnr={q.stats.psnr}"
    data = q.encode(".png")
    with Image.open(_io.BytesIO(data)) as im:
        back = np.asarray(im.convert("RGBA" if p.shape[1] == 4 else "RGB"))
    if not np.array_equal(back, q.image):
        return "encoded PNG does not decode to the result"
    return None


def check_animation(a):
    """None when a (an animated GIF/APNG/WebP's result) is valid, else what is wrong with it:
    every frame in range of its palette and of the stated size, and its APNG decodes to the
    same number of frames with the same pixels.
    """
    import io as _io

    import numpy as np
    from PIL import Image, ImageSequence

    with a:
        frames, palettes = a.frames, a.palettes
        if not frames or len(frames) != a.n_frames or len(palettes) != len(frames):
            return f"animation of {a.n_frames} frames holds {len(frames)} frames, {len(palettes)} palettes"
        for i, (ix, p) in enumerate(zip(frames, palettes)):
            if not (p.dtype == np.uint8 and p.ndim == 2 and p.shape[1] in (3, 4) and 1 <= len(p) <= N_COLORS):
                return f"frame {i}: bad palette {p.dtype} {p.shape}"
            if ix.shape != (a.height, a.width) or not 1 <= ix.shape[0] <= RESIZE or not 1 <= ix.shape[1] <= RESIZE:
                return f"frame {i}: bad size {ix.shape}, animation {a.width}x{a.height}"
            if int(ix.max()) >= len(p):
                return f"frame {i}: index {int(ix.max())} >= palette size {len(p)}"
        if not (np.isfinite(a.stats.mse) and a.stats.mse >= 0 and a.stats.psnr >= 0):
            return f"bad stats mse={a.stats.mse} psnr={a.stats.psnr}"
        expected = [np.asarray(img) for img in a.images()]
        data = a.encode(".png")
    with Image.open(_io.BytesIO(data)) as im:
        back = [np.asarray(f.convert("RGBA")) for f in ImageSequence.Iterator(im)]
    if len(back) != len(expected):
        return f"APNG of {len(expected)} frames decodes to {len(back)}"
    for i, (b, e) in enumerate(zip(back, expected)):
        # Invisible pixels may decode to any colour: compare what is seen.
        seen = e[:, :, 3] > 0 if e.shape[2] == 4 else np.ones(e.shape[:2], bool)
        if e.shape[2] == 4 and not np.array_equal(b[:, :, 3], e[:, :, 3]):
            return f"APNG frame {i}: alpha does not decode to the result"
        if not np.array_equal(b[:, :, :3][seen], e[:, :, :3][seen]):
            return f"APNG frame {i} does not decode to the result"
    return None


def run_case(data, how):
    """('ok'|'error'|'fail', detail) for one input."""
    import io as _io

    import fastquant

    source = _io.BytesIO(data) if how == "file object" else data
    try:
        q = fastquant.compress(source, N_COLORS, resize=RESIZE, max_pixels=MAX_PIXELS)
    except fastquant.FastquantError as e:
        msg = str(e)
        if not msg or "\n" in msg or "Traceback" in msg:
            return "fail", f"{type(e).__name__} with a bad message: {msg!r}"
        return "error", f"{type(e).__name__}: {msg}"
    except BaseException as e:  # noqa: B902 - anything else is the bug we look for
        if isinstance(e, KeyboardInterrupt):
            raise
        return "fail", "".join(traceback.format_exception(type(e), e, e.__traceback__)).strip()
    bad = check_quantized(q)
    return ("fail", bad) if bad else ("ok", repr(q))


# ----------------------------------------------------------------------------- worker


def worker(args):
    """Run cases [first, stop) in order; one JSON line per case on stdout."""
    import numpy as np

    import fastquant

    files = seed_files(args.images)
    fastquant.compress(np.arange(48, dtype=np.uint8).reshape(4, 4, 3), N_COLORS)  # compile / load
    inject = dict(_parse_inject(args.inject))
    out = sys.stdout
    print(json.dumps({"ready": True}), file=out, flush=True)
    for i in range(args.first, args.stop):
        try:
            data, ext, what, how = make_case(files, args.seed, i)
        except Exception:  # noqa: BLE001 - a bug of this script, reported like the others
            detail = "making the case failed:\n" + traceback.format_exc()
            print(json.dumps({"i": i, "status": "fail", "detail": detail}), file=out, flush=True)
            continue
        action = inject.get(i)
        if action == "hang":
            time.sleep(1e6)
        elif action == "crash":
            os._exit(99)
        if action == "raise":
            status, detail = run_case(None, "bytes")  # compress(None): an InputError
            status, detail = "fail", "injected failure: " + detail
        else:
            status, detail = run_case(data, how)
        print(json.dumps({"i": i, "status": status, "detail": detail}), file=out, flush=True)
    return 0


def _parse_inject(spec):
    for item in filter(None, (spec or "").split(",")):
        action, _, i = item.partition(":")
        yield int(i), action


class Worker:
    """A worker subprocess and its line-buffered stdout."""

    def __init__(self, args, first):
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            "--worker",
            "--seed",
            str(args.seed),
            "--first",
            str(first),
            "--stop",
            str(args.cases),
            "--images",
            str(args.images),
        ]
        if args.inject:
            cmd += ["--inject", args.inject]
        env = dict(os.environ, PYTHONFAULTHANDLER="1")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=env)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.proc.stdout, selectors.EVENT_READ)
        self.buf = b""

    def line(self, timeout):
        """Next line as a dict; None on timeout; {'eof': returncode} when the worker ended."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sel.select(left):
                return None
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                return {"eof": self.proc.wait()}
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.sel.close()
        self.proc.stdout.close()


def run_in_process(args, log):
    """All cases through worker subprocesses; returns {i: (status, detail)}."""
    results = {}
    i = 0
    while i < args.cases:
        w = Worker(args, i)
        try:
            msg = w.line(args.warmup)
            if msg is None or "ready" not in msg:
                raise SystemExit(f"fuzz: the worker did not start: {msg}")
            while i < args.cases:
                msg = w.line(args.timeout)
                if msg is None:
                    results[i] = ("fail", f"hang: no result after {args.timeout:g} s")
                    log(f"case {i}: hang, restarting the worker")
                    i += 1
                    break
                if "eof" in msg:
                    results[i] = ("fail", f"worker died with exit status {msg['eof']}")
                    log(f"case {i}: the worker died ({msg['eof']}), restarting it")
                    i += 1
                    break
                assert msg["i"] == i, (msg, i)
                results[i] = (msg["status"], msg["detail"])
                i += 1
                if args.progress and i % args.progress == 0:
                    log(f"{i} cases")
        finally:
            w.kill()
    return results


# ----------------------------------------------------------------------------- CLI sample


def run_cli(args, files, sample, results, log):
    """Sampled cases through ``python -m fastquant`` in batches; returns {i: failure text}."""
    failures = {}
    for b in range(0, len(sample), args.cli_batch):
        batch = sample[b : b + args.cli_batch]
        folder = Path(tempfile.mkdtemp(prefix="fastquant-fuzz-"))
        try:
            names = {}
            for i in batch:
                data, ext, _, _ = make_case(files, args.seed, i)
                names[i] = f"case{i:06d}{ext}"
                (folder / names[i]).write_bytes(data)
            cmd = [
                sys.executable,
                "-m",
                "fastquant",
                *names.values(),
                "--json",
                "-k",
                str(N_COLORS),
                "--max-side",
                str(RESIZE),
                "--max-pixels",
                str(MAX_PIXELS),
            ]
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
            try:
                r = subprocess.run(
                    cmd,
                    cwd=folder,
                    capture_output=True,
                    text=True,
                    timeout=args.timeout * len(batch) + args.warmup,
                    env=env,
                )
            except subprocess.TimeoutExpired:
                for i in batch:
                    failures[i] = f"CLI batch {batch} hung"
                continue
            problems = _check_cli(r, folder, names, results)
            for i, text in problems.items():
                failures[i] = text
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return failures


def _check_cli(r, folder, names, results):
    problems = {}
    batch = list(names)
    if r.returncode not in (0, 3):
        problems[batch[0]] = f"CLI exit code {r.returncode}"
    if "Traceback" in r.stderr:
        problems[batch[0]] = f"CLI printed a traceback:\n{r.stderr}"
    errors = [line for line in r.stderr.splitlines() if line.startswith("fastquant: error: ")]
    others = [
        line
        for line in r.stderr.splitlines()
        if not line.startswith("fastquant: error: ")
        and not line.startswith("fastquant: compiling")
        and not re.match(r"fastquant: warning: .* larger than the input", line)
        and not re.match(r"fastquant: .*\b\d+ failed\b", line)
    ]  # the closing summary
    if others:
        problems[batch[0]] = f"unexpected stderr lines: {others}"
    recs = {}
    for line in r.stdout.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            problems[batch[0]] = f"stdout line is not JSON: {line!r}"
            continue
        if "input" in rec:  # else the closing {"summary": ...}
            recs[rec["input"]] = rec
    leftovers = sorted(p.name for p in folder.glob(".fastquant-*.tmp"))
    if leftovers:
        problems[batch[0]] = f"temporary files left: {leftovers}"
    for i, name in names.items():
        rec = recs.get(name)
        out = folder / f"{Path(name).stem}-fq{N_COLORS}.png"
        expected = results.get(i, ("?", ""))[0]
        mine = [line for line in errors if f" {name}: " in line or line.endswith(f" {name}")]
        if rec is None:
            problems[i] = f"no JSON record for {name}"
        elif rec["status"] == "ok":
            if expected != "ok":
                problems[i] = f"CLI compressed {name}, compress() said {results[i]}"
            elif not out.is_file() or mine:
                problems[i] = f"status ok but output {out.is_file()}, errors {mine}"
            else:
                try:
                    from PIL import Image

                    with Image.open(out) as im:
                        im.load()
                except Exception as e:  # noqa: BLE001
                    problems[i] = f"output does not decode: {e}"
        else:
            if rec.get("exit_code") != 3 or expected != "error":
                problems[i] = f"CLI error {rec.get('exit_code')}: {rec.get('error')}; compress() said {results.get(i)}"
            elif out.exists():
                problems[i] = f"failed but {out.name} exists"
            elif len(mine) != 1:
                problems[i] = f"expected one error line naming {name}, got {mine}"
    return problems


# ----------------------------------------------------------------------------- main


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--cases", type=int, default=1000, help="number of cases (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    p.add_argument("--images", type=Path, default=IMAGES, help=f"test images (default {IMAGES})")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per case before it is a hang")
    p.add_argument("--warmup", type=float, default=300.0, help="seconds for a worker to start")
    p.add_argument("--cli-every", type=int, default=50, help="run every N-th case through the CLI too (0: never)")
    p.add_argument("--cli-batch", type=int, default=10, help="files per CLI process")
    p.add_argument("--progress", type=int, default=0, help="print a line every N cases")
    p.add_argument("--replay", type=int, metavar="I", help="run case I alone, in this process")
    p.add_argument("--save", type=Path, help="with --replay: write the case's bytes to this file")
    p.add_argument("--inject", help=argparse.SUPPRESS)  # harness self-test: hang:I,crash:I,raise:I
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--stop", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # the package under test, also when run as a script
    if args.worker:
        return worker(args)
    files = seed_files(args.images)
    if args.replay is not None:
        data, ext, what, how = make_case(files, args.seed, args.replay)
        print(
            f"case {args.replay} (seed {args.seed}, case seed {case_seed(args.seed, args.replay)}): "
            f"{what}; {len(data)} bytes as {how}"
        )
        if args.save:
            args.save.write_bytes(data)
            print(f"saved to {args.save}")
        status, detail = run_case(data, how)
        print(f"{status}: {detail}")
        return 0 if status != "fail" else 1

    def log(text):
        print(f"fuzz: {text}", flush=True)

    t0 = time.monotonic()
    results = run_in_process(args, log)
    t1 = time.monotonic()
    sample = list(range(args.cli_every - 1, args.cases, args.cli_every)) if args.cli_every > 0 else []
    cli_failures = run_cli(args, files, sample, results, log) if sample else {}
    t2 = time.monotonic()

    counts = {}
    for status, detail in results.values():
        key = status if status != "error" else "error: " + detail.split(":", 1)[0]
        counts[key] = counts.get(key, 0) + 1
    failed = sorted({i for i, (s, _) in results.items() if s == "fail"} | set(cli_failures))
    for i in failed:
        _, _, what, how = make_case(files, args.seed, i)
        print(f"FAIL case {i} (seed {args.seed}, case seed {case_seed(args.seed, i)}): {what} [{how}]")
        if results[i][0] == "fail":
            print("  compress(): " + results[i][1].replace("\n", "\n  "))
        if i in cli_failures:
            print("  CLI: " + cli_failures[i].replace("\n", "\n  "))
        print(f"  replay: python {os.path.relpath(__file__)} --seed {args.seed} --replay {i}")
    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    print(
        f"fuzz: {args.cases} cases (seed {args.seed}) in {t1 - t0:.1f} s: {summary}; "
        f"{len(sample)} through the CLI in {t2 - t1:.1f} s; {len(failed)} failures"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
