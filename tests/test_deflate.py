"""The near-optimal deflate encoder (fastquant.deflate) and the indexed PNGs written with it."""

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from fastquant import deflate, png

from . import naive


def _samples():
    rng = np.random.default_rng(7)
    runs = np.repeat(rng.integers(0, 6, 3000), rng.integers(1, 40, 3000)).astype(np.uint8)
    rows = np.tile(rng.integers(0, 50, 700).astype(np.uint8), 60)  # repeated rows: long distances
    return {
        "empty": np.zeros(0, np.uint8),
        "one": np.array([7], np.uint8),
        "zeros": np.zeros(200_000, np.uint8),
        "random": rng.integers(0, 256, 20_000).astype(np.uint8),
        "few symbols": rng.integers(0, 4, 90_000).astype(np.uint8),
        "runs": runs,
        "rows": rows,
        "text": np.frombuffer(b"the quick brown fox jumps over the lazy dog; " * 500, np.uint8),
    }


@pytest.mark.parametrize("name", list(_samples()))
def test_round_trip(name):
    data = _samples()[name]
    out = deflate.deflate_raw(data, 0, len(data), True)
    assert zlib.decompress(out, -15) == data.tobytes()


@pytest.mark.parametrize(
    "kw", [dict(chain=1, nice=3, passes=1, block_passes=0), dict(chain=200, passes=4, block_passes=2, chunk=64)]
)
def test_round_trip_settings(kw):
    data = _samples()["runs"]
    assert zlib.decompress(deflate.deflate_raw(data, 0, len(data), True, **kw), -15) == data.tobytes()


@pytest.mark.parametrize("size", [1000, 65536, 100_003])
def test_pieces_join_into_one_stream(size):
    """Pieces encoded apart, each with the 32 KiB before it as dictionary, join into one stream."""
    data = np.concatenate([_samples()["rows"], _samples()["runs"], _samples()["random"]])
    parts = [
        deflate.deflate_raw(data, s, min(s + size, len(data)), s + size >= len(data)) for s in range(0, len(data), size)
    ]
    assert zlib.decompress(b"".join(parts), -15) == data.tobytes()


def test_strong_stream_does_not_depend_on_threads():
    data = np.concatenate([_samples()["rows"]] * 8)  # several pieces
    one = b"".join(png._strong_parts(data, threads=1))
    assert one == b"".join(png._strong_parts(data, threads=3))
    assert zlib.decompress(one) == data.tobytes()


def test_smaller_than_zlib_on_an_index_stream(kodak):
    """What it is for: fewer bytes than zlib's best on a photo's palette indices."""
    import fastquant

    q = fastquant.compress(str(kodak[1]), 64, resize=256)
    raw = np.ascontiguousarray(q.indices).reshape(-1)
    assert len(deflate.deflate_raw(raw, 0, len(raw), True)) < len(zlib.compress(raw.tobytes(), 9)) - 6


def test_filtered_rows_far_below_zlib(kodak):
    """Filtered rows (small residuals, cheap literals) are where the first parse's costs matter:
    with fixed literal costs the parse bought short matches that do not pay, 3-4% under zlib 9;
    with the piece's own literal costs, 10-13%."""
    import fastquant
    from fastquant import reindex

    q = fastquant.compress(str(kodak[1]), 64, resize=256)
    indices = np.ascontiguousarray(q.indices)
    order = reindex.order(indices, 64)
    position = np.empty(64, np.uint8)
    position[order] = np.arange(64)
    raw = reindex.filter_rows(position[indices]).reshape(-1)
    out = deflate.deflate_raw(raw, 0, len(raw), True)
    assert zlib.decompress(out, -15) == raw.tobytes()
    assert len(out) < 0.93 * len(zlib.compress(raw.tobytes(), 9))


@pytest.mark.parametrize("seed", range(6))
def test_huffman_lengths_optimal_and_limited(seed):
    rng = np.random.default_rng(seed)
    freq = rng.integers(0, 1000, 286) * (rng.random(286) < 0.7)
    lens = np.zeros(286, np.int64)
    deflate._huffman_lengths(freq, lens)
    assert ((lens > 0) == (freq > 0)).all()
    assert (lens * freq).sum() == naive.huffman_cost(freq)  # no length needed limiting here
    assert np.sum(2.0 ** -lens[lens > 0]) == 1.0
    fib = np.array([1, 1] + [0] * 28, np.int64)  # Fibonacci counts: an unlimited code would be 29 deep
    for i in range(2, 30):
        fib[i] = fib[i - 1] + fib[i - 2]
    lens = np.zeros(30, np.int64)
    deflate._huffman_lengths(fib, lens)
    assert lens.max() == 15 and np.sum(2.0**-lens) == 1.0
    assert (lens * fib).sum() >= naive.huffman_cost(fib)
    assert all(lens[i] >= lens[i + 1] for i in range(29))  # more frequent, never longer


def test_parse_is_cheapest(kodak):
    rng = np.random.default_rng(1)
    data = np.repeat(rng.integers(0, 5, 400), rng.integers(1, 6, 400)).astype(np.uint8)
    n = len(data)
    cand_len = np.empty((n, deflate._MAX_CANDIDATES), np.int16)
    cand_dist = np.empty((n, deflate._MAX_CANDIDATES), np.int32)
    n_cand = np.empty(n, np.int8)
    deflate._find_matches(data, 0, n, 16, 258, cand_len, cand_dist, n_cand)
    matches = [[(int(cand_len[i, t]), int(cand_dist[i, t])) for t in range(n_cand[i])] for i in range(n)]
    for i, ms in enumerate(matches):  # every match is real
        for length, dist in ms:
            assert dist <= i and (data[i : i + length] == data[i - dist : i - dist + length]).all()
    lit = rng.integers(4, 12, 256).astype(np.int32)
    lc = rng.integers(3, 15, 259).astype(np.int32)
    dc = rng.integers(1, 14, 32769).astype(np.int32)
    sym_len = np.empty(n, np.int64)
    sym_dist = np.empty(n, np.int64)
    count = deflate._parse(data, 0, 0, n, cand_len, cand_dist, n_cand, lit, lc, dc, sym_len, sym_dist)
    assert sym_len[:count].sum() == n
    got, pos = 0, 0
    for s in range(count):
        m, d = int(sym_len[s]), int(sym_dist[s])
        got += lit[data[pos]] if m == 1 else lc[m] + dc[d]
        pos += m
    assert got == naive.cheapest_parse_cost(data, matches, lit, lc, dc)


@pytest.mark.parametrize("name", ["few symbols", "runs", "rows", "text", "random"])
def test_block_bits_are_the_bits_written(name):
    """The block splitting's price of a block is exactly what the block takes when written:
    the counts of symbols before chunk boundaries, differenced, then header and codes."""
    data = _samples()[name][:20_000]
    n = len(data)
    cand_len = np.empty((n, deflate._MAX_CANDIDATES), np.int16)
    cand_dist = np.empty((n, deflate._MAX_CANDIDATES), np.int32)
    n_cand = np.empty(n, np.int8)
    deflate._find_matches(data, 0, n, 16, 64, cand_len, cand_dist, n_cand)
    lit = np.full(256, 8, np.int32)
    lc = np.full(259, 9, np.int32)
    dc = np.full(32769, 7, np.int32)
    sym_len = np.empty(n, np.int64)
    sym_dist = np.empty(n, np.int64)
    count = deflate._parse(data, 0, 0, n, cand_len, cand_dist, n_cand, lit, lc, dc, sym_len, sym_dist)
    tables = deflate._TABLES
    cuts = [0, count // 3, count]
    hl = np.zeros(3 * 286, np.int64)
    hd = np.zeros(3 * 30, np.int64)
    pos = [0]
    for c in range(2):  # cumulative counts before each chunk boundary
        ll = hl[(c + 1) * 286 : (c + 2) * 286]
        dd = hd[(c + 1) * 30 : (c + 2) * 30]
        ll += hl[c * 286 : (c + 1) * 286]
        dd += hd[c * 30 : (c + 1) * 30]
        pos.append(
            deflate._counts(data, pos[-1], sym_len, sym_dist, cuts[c], cuts[c + 1], ll, dd, tables[0], tables[2])
        )
    for a, b in [(0, 1), (1, 2), (0, 2)]:
        out = np.zeros(4 * n + 1024, np.uint8)
        st = np.zeros(3, np.int64)
        own_l = np.zeros(2 * 286, np.int64)  # the block's own counts (after a row of zeros), for its codes
        own_d = np.zeros(2 * 30, np.int64)
        deflate._counts(
            data, pos[a], sym_len, sym_dist, cuts[a], cuts[b], own_l[286:], own_d[30:], tables[0], tables[2]
        )
        plan = deflate._block_plan(own_l, own_d, 0, 1, tables)
        deflate._write_block(data, pos[a], sym_len, sym_dist, cuts[a], cuts[b], True, out, st, tables, plan)
        assert st[0] * 8 + st[2] == deflate._block_plan(hl, hd, a, b, tables)[-1]
        if a == 0:  # (a later block's matches reach back before it)
            out[st[0]] = st[1]  # the bits not yet flushed
            assert zlib.decompress(out[: st[0] + 1].tobytes(), -15) == data[: pos[b]].tobytes()


@pytest.mark.parametrize("k", [2, 4, 16, 200])
@pytest.mark.parametrize("alpha", [False, True])
def test_png_round_trip_through_pillow(kodak, k, alpha):
    """Indexed PNGs from the strong encoder decode (Pillow) to exactly the pixels given."""
    with Image.open(kodak[0]) as im:
        rgb = np.asarray(im.convert("RGB"))[:150, :301]
    rng = np.random.default_rng(k)
    palette = rng.integers(0, 256, (k, 4 if alpha else 3)).astype(np.uint8)
    indices = (rgb[:, :, 1].astype(np.int64) * k // 256).astype(np.uint8)
    data = png.png_indexed(indices, palette)
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        assert im.mode == "P"
        got = np.asarray(im.convert("RGBA" if alpha else "RGB"))
    assert np.array_equal(got, palette[indices])
    fast = png.png_indexed(indices, palette, level=9)
    with Image.open(io.BytesIO(fast)) as im:
        assert np.array_equal(np.asarray(im.convert("RGBA" if alpha else "RGB")), got)
