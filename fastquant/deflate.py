"""A deflate encoder that spends time for bytes: near-optimal parsing and block splitting, in Numba.

zlib's level 9 parses lazily: at each position it takes the longest match (or
a literal) unless the next position has a longer one.  On the index stream of
a palette image, whose long runs and repeated rows offer many matches of many
lengths, a choice made by a cost model does markedly better (as zopfli and
libdeflate's strongest levels do).  :func:`deflate_raw` encodes one piece:

1. every match worth knowing at every position is found once through hash
   chains (up to ``chain`` candidates, lengths increasing, distances nearest
   first), looking back into the 32 KiB before the piece;
2. the cheapest parse is found by dynamic programming over the positions,
   a literal or any match length costing its bits in the current Huffman
   codes (at first: literals by a code of the piece's bytes, matches by the
   fixed codes); the parse's own symbol counts give the next codes, ``passes`` times;
3. the symbols are cut into blocks where a new set of codes pays for its
   header: chunks of symbols, split recursively at the boundary where two
   blocks cost fewest bits, while that is fewer than one block's (as zopfli);
   each block is parsed again with the codes of its own symbols;
4. each block is written with its dynamic Huffman codes (RFC 1951).

A piece that is not the last ends on an empty stored block (as zlib's sync
flush does), byte-aligned, so that pieces encoded on several threads join into
one stream; their bytes do not depend on the thread count.
"""

import numpy as np

from .jit import njit

_LEN_BASE = np.array(
    [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258],
    np.int64,
)
_LEN_EXTRA = np.array([0] * 8 + [1] * 4 + [2] * 4 + [3] * 4 + [4] * 4 + [5] * 4 + [0], np.int64)
_DIST_BASE = np.array(
    [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073]
    + [4097, 6145, 8193, 12289, 16385, 24577],
    np.int64,
)
_DIST_EXTRA = np.array([0, 0, 0, 0] + [i // 2 for i in range(2, 28)], np.int64)
#: Order in which the code-length code's lengths are sent.
_CL_ORDER = np.array([16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15], np.int64)


def _code_of(base, top):
    """For every value 0..top, the code whose range holds it (base: first value of each code)."""
    out = np.zeros(top + 1, np.int64)
    for code, b in enumerate(base):
        out[b:] = code
    return out


_LEN_CODE = _code_of(_LEN_BASE, 258)
_LEN_CODE[258] = 28  # 258 has a code of its own (227 + 31 would be code 27's range)
_DIST_CODE = _code_of(_DIST_BASE, 32768)

_WINDOW = 32768
_HASH_BITS = 16
_MAX_CANDIDATES = 8


# ----------------------------------------------------------------------------- Huffman codes


@njit(cache=True, nogil=True)
def _huffman_lengths(freq, lens):
    """Code lengths of a prefix code for ``freq``, written into ``lens``: at most 7 bits for the
    19 symbols of the code-length code, 15 for the others (RFC 1951).

    Huffman's tree by the two-queue method over the symbols sorted by count;
    lengths past the limit are brought back as in JPEG (ITU T.81 K.3); the
    most frequent symbols get the shortest lengths.  Unused symbols get 0; a
    single used symbol gets length 1.
    """
    max_bits = 7 if len(lens) == 19 else 15
    for s in range(len(lens)):  # (a loop: a slice assignment compiles more)
        lens[s] = 0
    # the used symbols by ascending count, ties by symbol (an insertion sort of count * 512 + symbol:
    # at most 286 symbols; np.argsort would compile Numba's sort and string code)
    key = np.empty(len(freq), np.int64)
    n = 0
    for s in range(len(freq)):
        if freq[s] > 0:
            k = np.int64(freq[s]) * 512 + s
            j = n
            while j > 0 and key[j - 1] > k:
                key[j] = key[j - 1]
                j -= 1
            key[j] = k
            n += 1
    if n == 0:
        return
    if n == 1:
        lens[key[0] & 511] = 1
        return
    order = np.empty(n, np.int64)
    weight = np.empty(2 * n, np.int64)
    parent = np.empty(2 * n, np.int64)
    for k in range(n):
        order[k] = key[k] & 511
        weight[k] = freq[order[k]]
        parent[k] = -1
    leaf, node, nxt = 0, n, n
    for _ in range(n - 1):
        if leaf < n and (node >= nxt or weight[leaf] <= weight[node]):
            a = leaf
            leaf += 1
        else:
            a = node
            node += 1
        if leaf < n and (node >= nxt or weight[leaf] <= weight[node]):
            b = leaf
            leaf += 1
        else:
            b = node
            node += 1
        weight[nxt] = weight[a] + weight[b]
        parent[a] = nxt
        parent[b] = nxt
        nxt += 1
    depth = np.zeros(2 * n, np.int64)
    for k in range(nxt - 2, -1, -1):
        depth[k] = depth[parent[k]] + 1
    longest = max_bits
    for k in range(n):
        if depth[k] > longest:
            longest = depth[k]
    count = np.zeros(longest + 1, np.int64)
    for k in range(n):
        count[depth[k]] += 1
    for i in range(longest, max_bits, -1):
        while count[i] > 0:
            j = i - 2
            while count[j] == 0:
                j -= 1
            count[i] -= 2
            count[i - 1] += 1
            count[j + 1] += 2
            count[j] -= 1
    k = n - 1  # the most frequent first, shortest lengths first
    for length in range(1, max_bits + 1):
        for _ in range(count[length]):
            lens[order[k]] = length
            k -= 1


# ----------------------------------------------------------------------------- matches and parse


@njit(cache=True, nogil=True)
def _find_matches(data, start, end, chain, nice, cand_len, cand_dist, n_cand):
    """Matches at every position of [start, end): lengths increasing, each the nearest reaching it.
    A match of ``nice`` bytes or more is taken as found: the positions it covers get no matches
    of their own (a long match is rarely worth cutting, and a run would cost 258 tries a byte).
    """
    head = np.empty(1 << _HASH_BITS, np.int64)
    prev = np.empty(_WINDOW, np.int64)
    for i in range(len(head)):
        head[i] = -1
    for i in range(_WINDOW):
        prev[i] = -1
    n_cand[:] = 0
    skip_to = start
    # every position with 3 bytes left joins the hash chains: the 32 KiB before the piece only joins
    for i in range(start - _WINDOW if start > _WINDOW else 0, end - 2):
        x = (np.int64(data[i]) << 16) | (np.int64(data[i + 1]) << 8) | np.int64(data[i + 2])
        h = ((x * 2654435761) & 0xFFFFFFFF) >> (32 - _HASH_BITS)
        if i >= skip_to:
            k = i - start
            top = end - i if end - i < 258 else 258
            c = head[h]
            best = 2
            steps = 0
            while c >= 0 and i - c <= _WINDOW and steps < chain:
                if data[c + best] == data[i + best]:
                    m = 0
                    while m < top and data[c + m] == data[i + m]:
                        m += 1
                    if m > best:
                        best = m
                        slot = n_cand[k] if n_cand[k] < _MAX_CANDIDATES else _MAX_CANDIDATES - 1
                        cand_len[k, slot] = m
                        cand_dist[k, slot] = i - c
                        n_cand[k] = slot + 1
                        if m == top:
                            break
                nc = prev[c & (_WINDOW - 1)]
                if nc >= c:
                    break
                c = nc
                steps += 1
            if best >= nice:
                skip_to = i + best
        prev[i & (_WINDOW - 1)] = head[h]
        head[h] = i


@njit(cache=True, nogil=True)
def _parse(data, start, lo, hi, cand_len, cand_dist, n_cand, lit_cost, len_cost, dist_cost, sym_len, sym_dist):
    """Cheapest parse of piece offsets [lo, hi) (data[start + lo:start + hi]) for the costs given,
    into ``sym_len``, ``sym_dist``; returns the number of symbols (a literal has length 1).
    """
    n = hi - lo
    cost = np.empty(n + 1, np.int32)  # bits: whole numbers
    for j in range(1, n + 1):
        cost[j] = 2147483647
    via_len = np.zeros(n + 1, np.int64)
    via_dist = np.zeros(n + 1, np.int64)
    cost[0] = 0
    for j in range(n):
        k = lo + j
        base = cost[j]
        c = base + lit_cost[data[start + k]]
        if c < cost[j + 1]:
            cost[j + 1] = c
            via_len[j + 1] = 1
        shortest = 3
        room = n - j
        for t in range(n_cand[k]):
            d = cand_dist[k, t]
            dc = base + dist_cost[d]
            for m in range(shortest, (cand_len[k, t] if cand_len[k, t] < room else room) + 1):
                c = dc + len_cost[m]
                if c < cost[j + m]:
                    cost[j + m] = c
                    via_len[j + m] = m
                    via_dist[j + m] = d
            shortest = cand_len[k, t] + 1
    count = 0
    j = n
    while j > 0:
        count += 1
        j -= via_len[j]
    j = n
    for s in range(count - 1, -1, -1):
        sym_len[s] = via_len[j]
        sym_dist[s] = via_dist[j]
        j -= via_len[j]
    return count


@njit(cache=True, nogil=True)
def _counts(data, pos, sym_len, sym_dist, lo, hi, ll, dd, len_code, dist_code):
    """Add the litlen and distance symbol counts of symbols lo..hi-1 (``pos``: the first's data position)."""
    for s in range(lo, hi):
        m = sym_len[s]
        if m == 1:
            ll[data[pos]] += 1
        else:
            ll[257 + len_code[m]] += 1
            dd[dist_code[sym_dist[s]]] += 1
        pos += m
    return pos


@njit(cache=True, nogil=True)
def _costs(ll, dd, lit_cost, len_cost, dist_cost, len_code, len_extra, dist_code, dist_extra):
    """Bits of every literal, length and distance under the Huffman codes of counts ``ll``, ``dd``
    (a symbol not seen costs as much as the longest code).
    """
    ll_lens = np.zeros(286, np.int64)
    d_lens = np.zeros(30, np.int64)
    _huffman_lengths(ll, ll_lens)
    _huffman_lengths(dd, d_lens)
    for s in range(256):
        lit_cost[s] = ll_lens[s] if ll_lens[s] else 16
    for m in range(3, 259):
        b = ll_lens[257 + len_code[m]]
        len_cost[m] = (b if b else 16) + len_extra[len_code[m]]
    for d in range(1, 32769):
        b = d_lens[dist_code[d]]
        dist_cost[d] = (b if b else 16) + dist_extra[dist_code[d]]


# ----------------------------------------------------------------------------- blocks


@njit(cache=True, nogil=True)
def _block_plan(hl, hd, a, b, tables):
    """The codes of a block holding chunks a..b-1 (``hl``, ``hd``: flat (chunks + 1) x 286 and x 30
    litlen and distance counts of the symbols before each chunk): litlen and distance code lengths,
    HLIT, HDIST, the code lengths as code-length symbols (and their extra bits, their number), the
    code-length code's lengths, HCLEN and the bits of the whole block (header included).

    The codes are made complete (at least two litlen and two distance codes); the code lengths
    are sent as code-length symbols 0-15 and 16 (repeat the previous 3-6 times), 17 (3-10
    zeros), 18 (11-138 zeros).
    """
    ll = np.empty(286, np.int64)
    ll2 = np.empty(286, np.int64)
    dd = np.empty(30, np.int64)
    dd2 = np.empty(30, np.int64)
    for s in range(286):
        ll[s] = ll2[s] = hl[b * 286 + s] - hl[a * 286 + s]
    for s in range(30):
        dd[s] = dd2[s] = hd[b * 30 + s] - hd[a * 30 + s]
    if ll2[256] == 0:
        ll2[256] = 1
    used = 0
    for s in range(len(ll2)):
        used += ll2[s] > 0
    if used < 2:
        ll2[0] += 1
    used = 0
    for s in range(len(dd2)):
        used += dd2[s] > 0
    if used < 2:  # one or two codes added
        dd2[0 if dd2[0] == 0 else 1] += 1
        if used == 0:
            dd2[1] += 1
    ll_lens = np.zeros(286, np.int64)
    d_lens = np.zeros(30, np.int64)
    _huffman_lengths(ll2, ll_lens)
    _huffman_lengths(dd2, d_lens)
    hlit = 286
    while hlit > 257 and ll_lens[hlit - 1] == 0:
        hlit -= 1
    hdist = 30
    while hdist > 1 and d_lens[hdist - 1] == 0:
        hdist -= 1
    total = hlit + hdist
    seq = np.empty(total, np.int64)
    for s in range(hlit):  # loops: an array slice assignment compiles Numba's string code (its error message)
        seq[s] = ll_lens[s]
    for s in range(hdist):
        seq[hlit + s] = d_lens[s]
    rle_sym = np.empty(total, np.int64)
    rle_extra = np.empty(total, np.int64)
    n = 0
    i = 0
    while i < total:
        v = seq[i]
        run = 1
        while i + run < total and seq[i + run] == v:
            run += 1
        i += run
        if v == 0:
            while run >= 11:
                r = run if run < 138 else 138
                rle_sym[n], rle_extra[n] = 18, r - 11
                n += 1
                run -= r
            if run >= 3:
                rle_sym[n], rle_extra[n] = 17, run - 3
                n += 1
                run = 0
        else:
            rle_sym[n], rle_extra[n] = v, 0
            n += 1
            run -= 1
            while run >= 3:
                r = run if run < 6 else 6
                rle_sym[n], rle_extra[n] = 16, r - 3
                n += 1
                run -= r
        for _ in range(run):
            rle_sym[n], rle_extra[n] = v, 0
            n += 1
    cl = np.zeros(19, np.int64)
    for t in range(n):
        cl[rle_sym[t]] += 1
    cl_lens = np.zeros(19, np.int64)
    _huffman_lengths(cl, cl_lens)
    len_extra, dist_extra, cl_order = tables[1], tables[3], tables[6]
    hclen = 19
    while hclen > 4 and cl_lens[cl_order[hclen - 1]] == 0:
        hclen -= 1
    bits = 3 + 14 + 3 * hclen + ll_lens[256]
    for t in range(n):
        s = rle_sym[t]
        bits += cl_lens[s] + (2 if s == 16 else 3 if s == 17 else 7 if s == 18 else 0)
    for s in range(286):
        if ll[s]:
            bits += ll[s] * (ll_lens[s] + (len_extra[s - 257] if s > 256 else 0))
    for s in range(30):
        if dd[s]:
            bits += dd[s] * (d_lens[s] + dist_extra[s])
    return ll_lens, d_lens, hlit, hdist, rle_sym, rle_extra, n, cl_lens, hclen, bits


@njit(cache=True, nogil=True)
def _put(out, st, value, n):
    """Append the n low bits of value to the stream (st: byte position, bit buffer, bits in it).

    Callers pass int64 variables, constants as ``np.int64(c)``: Numba compiles a kernel
    again for every literal argument it is called with.
    """
    st[1] |= value << st[2]
    st[2] += n
    while st[2] >= 8:
        out[st[0]] = st[1] & 255
        st[0] += 1
        st[1] >>= 8
        st[2] -= 8


@njit(cache=True, nogil=True)
def _write_block(data, pos, sym_len, sym_dist, lo, hi, last, out, st, tables, plan):
    """Write symbols lo..hi-1 (the first at data position ``pos``) as one dynamic block with the
    codes of ``plan`` (:func:`_block_plan` of their counts).
    """
    len_code, len_extra, dist_code, dist_extra, len_base, dist_base, cl_order = tables
    ll_lens, d_lens, hlit, hdist, rle_sym, rle_extra, n, cl_lens, hclen, _ = plan
    # the canonical codes of the three codes, bit-reversed for deflate's LSB-first stream: litlen
    # at 0, distance at 286, code-length at 316 (one loop: a kernel of its own compiles again in each caller)
    codes = np.zeros(286 + 30 + 19, np.int64)
    for part in range(3):
        lens = ll_lens if part == 0 else d_lens if part == 1 else cl_lens
        at = 0 if part == 0 else 286 if part == 1 else 316
        count = np.zeros(16, np.int64)
        for s in range(len(lens)):
            count[lens[s]] += 1
        count[0] = 0
        nxt = np.zeros(16, np.int64)
        code = 0
        for b in range(1, 16):
            code = (code + count[b - 1]) << 1
            nxt[b] = code
        for s in range(len(lens)):
            b = lens[s]
            if b:
                c = nxt[b]
                nxt[b] += 1
                r = 0
                for _ in range(b):
                    r = (r << 1) | (c & 1)
                    c >>= 1
                codes[at + s] = r
    # every piece of the block through one call of _put (each call site is code to optimize): the
    # header's 17 bits (BFINAL, BTYPE 2: dynamic codes, HLIT, HDIST, HCLEN), the code-length code's
    # lengths, the code lengths as its symbols, then each symbol with its extra bits (at most 48),
    # the end-of-block code last
    head = (1 if last else 0) | 4 | (hlit - 257) << 3 | (hdist - 1) << 8 | (hclen - 4) << 13
    first_sym = 1 + hclen + n
    for i in range(first_sym + hi - lo + 1):
        if i == 0:
            v, w = head, np.int64(17)
        elif i <= hclen:
            v, w = cl_lens[cl_order[i - 1]], np.int64(3)
        elif i < first_sym:
            t = rle_sym[i - 1 - hclen]
            v, w = codes[316 + t], cl_lens[t]
            if t >= 16:
                v |= rle_extra[i - 1 - hclen] << w
                w += 2 if t == 16 else 3 if t == 17 else 7
        elif i == first_sym + hi - lo:
            v, w = codes[256], ll_lens[256]
        else:
            s = lo + i - first_sym
            m = sym_len[s]
            if m == 1:
                v, w = codes[data[pos]], ll_lens[data[pos]]
            else:  # (no extra bits: the length or distance is its code's base)
                lc = len_code[m]
                d = sym_dist[s]
                dc = dist_code[d]
                v, w = codes[257 + lc], ll_lens[257 + lc]
                v |= (m - len_base[lc]) << w
                w += len_extra[lc]
                v |= codes[286 + dc] << w
                w += d_lens[dc]
                v |= (d - dist_base[dc]) << w
                w += dist_extra[dc]
            pos += m
        _put(out, st, v, w)


@njit(cache=True, nogil=True)
def _deflate_piece(data, start, end, last, chain, nice, passes, block_passes, chunk, out, tables):
    """Raw deflate of data[start:end] into ``out``; returns the bytes written."""
    len_code, len_extra, dist_code, dist_extra = tables[0], tables[1], tables[2], tables[3]
    n = end - start
    st = np.zeros(3, np.int64)
    zero = np.int64(0)  # not a literal 0: Numba would compile the kernels it is passed to once more for it
    if n > 0:
        cand_len = np.empty((n, _MAX_CANDIDATES), np.int16)
        cand_dist = np.empty((n, _MAX_CANDIDATES), np.int32)
        n_cand = np.empty(n, np.int8)
        _find_matches(data, start, end, chain, nice, cand_len, cand_dist, n_cand)
        lit_cost = np.empty(256, np.int32)
        len_cost = np.zeros(259, np.int32)
        dist_cost = np.zeros(32769, np.int32)
        sym_len = np.empty(n, np.int64)
        sym_dist = np.empty(n, np.int64)
        ll = np.zeros(286, np.int64)
        dd = np.zeros(30, np.int64)
        # first pass: literals cost their bits in a code of the piece's bytes (on filtered rows,
        # mostly small residuals, far below 8 bits: fixed costs would buy matches that do not
        # pay and the later passes stay near that parse), matches roughly the fixed codes
        for i in range(start, end):
            ll[data[i]] += 1
        ll[256] = 1
        _costs(ll, dd, lit_cost, len_cost, dist_cost, len_code, len_extra, dist_code, dist_extra)
        for m in range(3, 259):
            len_cost[m] = 7 + len_extra[len_code[m]]
        for d in range(1, 32769):
            dist_cost[d] = 5 + dist_extra[dist_code[d]]
        count = zero
        for p in range(passes):
            count = _parse(
                data, start, zero, n, cand_len, cand_dist, n_cand, lit_cost, len_cost, dist_cost, sym_len, sym_dist
            )
            if p + 1 < passes:
                ll[:] = 0
                dd[:] = 0
                _counts(data, start, sym_len, sym_dist, zero, count, ll, dd, len_code, dist_code)
                ll[256] = 1
                _costs(ll, dd, lit_cost, len_cost, dist_cost, len_code, len_extra, dist_code, dist_extra)
        # blocks: cut at chunk boundaries, recursively where two blocks cost less than one (as
        # zopfli splits); hl, hd: the symbol counts before each chunk
        chunk = chunk if chunk > 1 else 1
        n_ch = (count + chunk - 1) // chunk
        hl = np.zeros((n_ch + 1) * 286, np.int64)
        hd = np.zeros((n_ch + 1) * 30, np.int64)
        pos = start
        for c in range(n_ch):
            ll[:] = 0
            dd[:] = 0
            hi = count if count < (c + 1) * chunk else (c + 1) * chunk
            pos = _counts(data, pos, sym_len, sym_dist, c * chunk, hi, ll, dd, len_code, dist_code)
            for s in range(286):
                hl[c * 286 + 286 + s] = hl[c * 286 + s] + ll[s]
            for s in range(30):
                hd[c * 30 + 30 + s] = hd[c * 30 + s] + dd[s]
        ends = np.zeros(n_ch + 1, np.int64)  # 1: a block ends at chunk boundary c
        ends[n_ch] = 1
        todo = np.empty(2 * n_ch + 2, np.int64)  # a stack of spans (a, b) of chunks to split
        todo[0], todo[1] = 0, n_ch
        top = 2
        while top:
            top -= 2
            a, b = todo[top], todo[top + 1]
            best, at = zero, zero - 1
            for j in range(a, b):
                c = zero
                for h in range(1 if j == a else 2):
                    x = a if h == 0 else j
                    y = b if j == a or h == 1 else j
                    c += _block_plan(hl, hd, x, y, tables)[9]
                if j == a or c < best:
                    best, at = c, (j if j > a else at)
            if at >= 0:
                ends[at] = 1
                todo[top], todo[top + 1], todo[top + 2], todo[top + 3] = a, at, at, b
                top += 4
        cuts = np.empty(n_ch + 1, np.int64)  # symbol index where each block ends
        n_blocks = 0
        for c in range(1, n_ch + 1):
            if ends[c]:
                cuts[n_blocks] = count if count < c * chunk else c * chunk
                n_blocks += 1
        # each block parsed again with the codes of its own symbols, then written with its own codes
        blk_len = np.empty(n, np.int64)
        wl = np.zeros(2 * 286, np.int64)  # the counts of the block written, as a span of one chunk
        wd = np.zeros(2 * 30, np.int64)
        blk_dist = np.empty(n, np.int64)
        s_lo = zero
        lo = zero  # piece offset of the block's first byte
        for b in range(n_blocks):
            s_hi = cuts[b]
            hi = _counts(data, start + lo, sym_len, sym_dist, s_lo, s_hi, ll, dd, len_code, dist_code) - start
            final = last and b == n_blocks - 1
            c_lo, c_hi, own_len, own_dist = s_lo, s_hi, sym_len, sym_dist
            for _ in range(block_passes):  # (the piece's costs are not needed again: overwritten)
                ll[:] = 0
                dd[:] = 0
                _counts(data, start + lo, own_len, own_dist, c_lo, c_hi, ll, dd, len_code, dist_code)
                ll[256] = 1
                _costs(ll, dd, lit_cost, len_cost, dist_cost, len_code, len_extra, dist_code, dist_extra)
                c_lo = zero
                c_hi = _parse(
                    data, start, lo, hi, cand_len, cand_dist, n_cand, lit_cost, len_cost, dist_cost, blk_len, blk_dist
                )
                own_len, own_dist = blk_len, blk_dist
            ll[:] = 0
            dd[:] = 0
            _counts(data, start + lo, own_len, own_dist, c_lo, c_hi, ll, dd, len_code, dist_code)
            for s in range(286):  # (row 0: zeros)
                wl[286 + s] = ll[s]
            for s in range(30):
                wd[30 + s] = dd[s]
            plan = _block_plan(wl, wd, zero, zero + 1, tables)
            _write_block(data, start + lo, own_len, own_dist, c_lo, c_hi, final, out, st, tables, plan)
            s_lo, lo = s_hi, hi
    # the end, in one call of _put: after an empty last piece, an empty final fixed block (3 header
    # bits, end-of-block code 0); after a piece that is not the last, an empty stored block (3 header
    # bits, then byte-aligned LEN 0, NLEN 0xFFFF), as zlib's sync flush; zero bits up to the byte
    v, w = zero, zero if last else np.int64(3)
    if n <= 0 and last:
        v, w = np.int64(3), np.int64(10)
    w = (st[2] + w + 7) // 8 * 8 - st[2]
    if not last:
        v = np.int64(0xFFFF) << (w + 16)
        w += 32
    _put(out, st, v, w)
    return st[0]


_TABLES = (_LEN_CODE, _LEN_EXTRA, _DIST_CODE, _DIST_EXTRA, _LEN_BASE, _DIST_BASE, _CL_ORDER)


def deflate_raw(data, start, end, last, *, chain=32, nice=64, passes=2, block_passes=1, chunk=2048):
    """Raw deflate (RFC 1951) of ``data[start:end]``, matches reaching back into ``data[:start]``.

    Parameters
    ----------
    data : (N,) uint8 ndarray
    start, end : int
        The piece; the 32 KiB before ``start`` is its dictionary.
    last : bool
        The piece ends the stream (its last block is final); otherwise it ends
        on an empty stored block, byte-aligned.
    chain : int
        Hash-chain candidates looked at per position (more: slower, smaller).
    nice : int
        A match this long is taken: the positions it covers are not searched.
    passes : int
        Parses, each with the codes of the one before (the first: literals by the
        piece's byte counts, matches by the fixed codes).
    block_passes : int
        Parses of each block with the codes of its own symbols (0: the piece's parse is kept).
    chunk : int
        Symbols per chunk of the block splitting.

    Returns
    -------
    bytes
    """
    data = np.ascontiguousarray(data, np.uint8)
    out = np.empty(2 * (end - start) + 1024, np.uint8)
    n = _deflate_piece(
        data,
        int(start),
        int(end),
        bool(last),
        int(chain),
        int(nice),
        int(passes),
        int(block_passes),
        int(chunk),
        out,
        _TABLES,
    )
    return out[:n].tobytes()
