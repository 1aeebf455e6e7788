"""The palette order and row filters of 8-bit indexed PNGs (fastquant.reindex) and their use by the encoder."""

import io

import numpy as np
import pytest
from PIL import Image

from fastquant import png, reindex

from . import naive


def _cases():
    rng = np.random.default_rng(3)
    for t in range(25):
        k = int(rng.integers(3, 14))
        h, w = int(rng.integers(1, 9)), int(rng.integers(2, 10))
        idx = rng.integers(0, k, (h, w)).astype(np.uint8)
        if t % 3 == 0:  # diagonal bands: a clear best order
            idx = (np.add.outer(np.arange(h), np.arange(w)) % k).astype(np.uint8)
        yield k, idx


@pytest.mark.parametrize("k, idx", list(_cases()))
def test_order_matches_naive(k, idx):
    """The insertion kernel places the same entry at the same position as a from-scratch cost search."""
    c = reindex.cooccurrence(idx, k)
    got = reindex.order(idx, k)
    assert np.array_equal(got, naive.arrangement_order(c))
    assert sorted(got.tolist()) == list(range(k))


def test_cooccurrence_counts_neighbours():
    idx = np.array([[0, 1, 1], [2, 1, 0]], np.uint8)
    c = reindex.cooccurrence(idx, 3)
    # horizontal pairs: 0-1, (1-1), 2-1, 1-0; vertical: 0-2, (1-1), 1-0
    assert c.tolist() == [[0, 3, 1], [3, 0, 1], [1, 1, 0]]


@pytest.mark.parametrize("k, idx", list(_cases())[:10])
def test_filters_match_naive(k, idx):
    assert np.array_equal(reindex.filtered(idx), naive.png_filters(idx))


def test_filter_rows_pick_least_entropy():
    """A vertical gradient is cheapest with Up on every row after the first (zeros), a horizontal
    ramp with Sub (ones); the first row has no row above (Up = None there)."""
    ramp = np.tile(np.arange(40, dtype=np.uint8), (6, 1))
    raw = reindex.filter_rows(ramp)
    assert (raw[1:, 0] == 2).all() and (raw[1:, 1:] == 0).all()
    assert raw[0, 0] in (1, 4) and (raw[0, 2:] == 1).all()


def test_png_writes_the_smaller_layout_and_same_pixels():
    """Colours in shuffled entries along a smooth gradient: the reordered, filtered layout is
    written (smaller), and decodes to exactly the pixels given, with the palette permuted."""
    rng = np.random.default_rng(5)
    h, w, k = 120, 200, 180
    smooth = (np.add.outer(np.arange(h) * 0.6, np.arange(w) * 0.5) + rng.normal(0, 2, (h, w))) % k
    shuffle = rng.permutation(k)
    indices = shuffle[smooth.astype(np.int64)].astype(np.uint8)
    palette = rng.integers(0, 256, (k, 3)).astype(np.uint8)
    data = png.png_indexed(indices, palette)
    plain = png.png_indexed(indices, palette, level=9)
    assert len(data) < len(plain) * 0.9
    with Image.open(io.BytesIO(data)) as im:
        got_pal = np.array(im.getpalette()[: 3 * k]).reshape(k, 3)
        got = np.asarray(im.convert("RGB"))
        assert not np.array_equal(np.asarray(im), indices)  # the entries moved ...
    assert np.array_equal(got, palette[indices])  # ... the pixels did not
    assert sorted(map(tuple, got_pal)) == sorted(map(tuple, palette))


def test_zlib_levels_keep_the_plain_layout():
    """Estimates (zlib levels) write entries in their given order, unfiltered."""
    rng = np.random.default_rng(6)
    indices = rng.integers(0, 50, (30, 40)).astype(np.uint8)
    palette = rng.integers(0, 256, (50, 3)).astype(np.uint8)
    with Image.open(io.BytesIO(png.png_indexed(indices, palette, level=6))) as im:
        assert np.array_equal(np.asarray(im), indices)
