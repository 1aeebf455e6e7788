"""Tunables: the thresholds and sizes that trade speed, memory or sampling, in one place.

Every module reads them when it runs, as ``config.NAME``, so that changing one
(``monkeypatch.setattr(config, "NAME", value)`` in a test) reaches every
reader.  Two kinds of constant are not here: those a Numba kernel reads as a
global (compiled in, so they stay in their module: the pruning slack of
:mod:`fastquant.nearest`, the RGBA grid of :mod:`fastquant.remap`, Wu's bins
of :mod:`fastquant.boxes`), and format or range limits (palette size, PNG
layout, option bounds).

Unless its comment says "results", a value changes only speed or memory,
never an output byte.  None depends on the thread count.
"""

# ----------------------------------------------------------------------------- sampling

#: Images with more than twice this many pixels get their palette fitted on an
#: evenly spread sample of about this many pixels, and are mapped strip by
#: strip (:mod:`fastquant.large`).  Results.
SAMPLE_PIXELS = 1 << 21
#: A sample with at most this many colours means a graphic, not a photo:
#: every pixel is counted instead.  Results.
FEW_COLORS = 4096
#: Most distinct colours counted exactly on the strip path (a graphic's); an
#: image with more is fitted on its sample.  Results.
EXACT_COLORS = 1 << 16
#: The k-means fits at most this many distinct colours (near ones are merged
#: into cells first).  Results.
FIT_COLORS = 1 << 17
#: Colours merged at a time by :func:`fastquant.palette.merge` (sources are added to the
#: running histogram in batches of about this many): bounds its temporaries.
MERGE_COLORS = 1 << 22
#: Bytes of prepared images (pixels, colour index of every pixel, histogram) a process
#: keeps between the two stages of a ``--shared`` run (:func:`fastquant.palette.count`
#: with ``keep``), so that mapping a file does not read and count it again; files past
#: it are read twice.  Only time depends on it.
KEEP_BYTES = 1 << 28
#: Pixels per strip of a large image (whole rows; at least one row).  Only the
#: order of the summed errors in ``stats`` depends on it.
STRIP_PIXELS = 1 << 20

# ----------------------------------------------------------------------------- k-means

#: Default over-relaxation of Lloyd's update (:func:`fastquant.kmeans`): with
#: compress()'s loose tolerance it ends at about the error plain Lloyd reaches
#: with a tighter one, in fewer updates.  Results.
OVERRELAX = 0.8
#: Swaps are tried where the cut gain beats this fraction of the merge cost
#: (the Lloyd iterations that follow usually make up the rest); a round that
#: does not end better than the previous solution is discarded.  Results.
SWAP_FACTOR = 0.5

#: compress() fits the palettes of RGB images in sRGB with the luma direction
#: lengthened by this factor (:func:`fastquant.colorspace.stretch_luma`): at
#: 16 colours and fewer, and at 256 and more; log-linear in between.  Few
#: colours spread over chroma leave flat bands in the luma, which the eye
#: (and SSIM) notices more than the small rise in RGB error that spending a
#: few more entries on luma levels costs.  Mapping stays nearest in sRGB.
#: (1.0, 1.0) fits plain sRGB.  Results.
LUMA_STRETCH = (1.4, 1.1)

#: ``compress(weights="contrast")``: the importance map's window is (2r+1)
#: pixels square, and a pixel of luma variance v weighs
#: (1 + 2 v / C2) ** -IMPORTANCE_POWER (:mod:`fastquant.importance`).  Results.
IMPORTANCE_RADIUS = 2
IMPORTANCE_POWER = 0.25

# ----------------------------------------------------------------------------- nearest-centre search

#: Items (points, colours, pixels / 16) per chunk of the parallel drivers and
#: of partial sums; fixed, so that the float summation order does not depend
#: on the thread count.  Results (k-means' sums are added chunk by chunk).
CHUNK = 4096
#: Length of each centre's list of nearest centres; a point whose search
#: radius reaches past the end of its list falls back to a full scan.
NEIGHBORS = 32
#: Above this many centres the k x k distances for the lists cost more than
#: they save: searches scan every centre, k-means keeps Hamerly's bounds and
#: drops over-relaxation and swaps (which need the lists' distances).  Results.
NEIGHBOR_LIST_MAX_K = 8192

# ----------------------------------------------------------------------------- threads

#: Points (nearest-centre search, k-means' sums) from which the prange drivers run.
PARALLEL_MIN_POINTS = 1 << 16
#: Centres from which the neighbour lists are built by the prange driver.
PARALLEL_MIN_CENTERS = 512
#: Points from which the assignment, and the cuts of k-means' swap rounds, run
#: their serial range kernels on Python threads (:mod:`fastquant.threads`):
#: from there the work costs well more than handing it to a thread does.
THREAD_MIN_POINTS = 1 << 14
#: Colours from which the OKLab conversions run on all threads.
PARALLEL_MIN_COLORS = 1 << 16
#: Pixels from which ordered dithering runs on all threads.
PARALLEL_MIN_PIXELS = 1 << 16

# ----------------------------------------------------------------------------- mapping

#: Slots of the colour cache of :func:`fastquant.remap.remap_rgba` (a power of
#: two): it serves colours met again nearby.
RGBA_CACHE_SLOTS = 1 << 12
#: Floyd-Steinberg: the error a pixel receives is clamped to this many levels
#: per channel, so that an area whose colour the palette cannot reach (a
#: saturated red next to the nearest entry) does not pile up error that then
#: smears into the next area.  Results.
FS_MAX_ERROR = 32
#: Strength of the rate-distortion-aware mapping (``rd_lambda``) a byte budget
#: (``max_bytes``) uses unless told otherwise: the squared error one new
#: symbol of the index stream is worth.  Results.
BUDGET_RD_LAMBDA = 5.0
#: The luma stretch (``compress(luma_stretch=)``) a byte budget fits and maps RGB palettes
#: with unless told otherwise: fewer colours fit a budget, and mapping with luma errors
#: weighing more keeps SSIM at pngquant 3's (which maps with green weighing most) for a
#: little PSNR.  Results.
BUDGET_LUMA_STRETCH = 1.6
#: oxipng's level for ``compress(optimize=True)`` / ``--optimize`` (:mod:`fastquant.optimize`):
#: 4 took ~6% off a 200-colour Kodak photo already written by the own encoder, in about 1.3 s;
#: 2 took ~5% in 0.3 s.  Results.
OPTIMIZE_LEVEL = 4
#: Trials a byte budget's search makes at most to find the largest palette predicted to fit, for
#: one mapping (it takes 3-6 on photos).  Search time.
BUDGET_SEARCH_STEPS = 12
#: How much a photo's indexed PNG grows, as a fraction of its size, when its palette doubles: a
#: byte budget's first guess of the palette that fits (the search then follows the sizes
#: measured).  Search time.
BUDGET_SIZE_SLOPE = 0.15
#: A byte budget's search for the largest palette predicted to fit stops when the one that does
#: not is within this fraction of it (2%: 4 colours at 200): the sizes of neighbouring palettes
#: differ by noise more than by their size.  Search time and results.
BUDGET_K_TOLERANCE = 0.02
#: Real encodes a byte budget makes at most to confirm the best candidate predicted to fit
#: (each one makes the predictions near it exact); then the best that fits is kept.  Search time.
BUDGET_CONFIRMS = 4
#: How far a byte budget's estimate may be off for a file layout (:func:`fastquant.png.estimate`)
#: none of whose files was encoded yet: the real encoder's ratio to the estimate differs by
#: 1-2% between the layouts.  Search time and results.
BUDGET_LAYOUT_DOUBT = 0.02
#: Times a byte budget searches every mapping's largest palette again once real sizes have
#: rescaled the estimates (a round that moves nothing ends the search; a second round cost
#: a fifth more search time for no better pictures).  Results and search time.
BUDGET_ROUNDS = 1
#: Other (luma stretch, rd_lambda) pairs a byte budget searches when neither is given (RGB
#: images mapped whole, no dithering or quality target); the picture of the best
#: :func:`fastquant.budget.picture_score` is kept.  A lower stretch with a stronger RD mapping
#: wins where PSNR is short (kodim04 at 0.85x pngquant's bytes), the default where SSIM is.
#: Each pair is one more search.  Results and search time.
BUDGET_ALTERNATIVES = ((1.45, 10.0),)
#: Weight of SSIM in decibels beside PSNR in :func:`fastquant.budget.picture_score`
#: (chosen on the 12 Kodak photos between 1.1 and 1.8, where the choice of every photo is the
#: same).  Results.
BUDGET_SSIM_WEIGHT = 1.5
#: Factors of the best candidate's ``rd_lambda`` a byte budget searches too, when the mapping is
#: left to it: a stronger RD mapping saves bytes for a little error, and the bytes buy more
#: colours (a second step, x4, won as often as it lost, for a quarter more search time).
#: Results and search time.
BUDGET_RD_STEPS = (2.0,)

# ----------------------------------------------------------------------------- metrics and resizing

#: Images with more pixels than this get their SSIM (``compress(ssim=True)``)
#: from evenly spaced bands of rows covering about this many pixels.  Results.
SSIM_MAX_PIXELS = 1 << 22
#: Output rows per band of the SSIM filter.  Results (the bands sampled, the
#: order of the float sums).
SSIM_BAND_ROWS = 64
#: Pixels per step of :func:`fastquant.metrics.over_sq_error`: bounded memory.
#: Results (the order of the float sums).
PSNR_OVER_CHUNK = 1 << 18
#: Preview panels (``--preview``, ``Quantized.preview()``) of more pixels than this are
#: scaled down to it: a large photo's preview then costs a second or two.
PREVIEW_PIXELS = 1 << 20
#: Output rows resampled at a time by :func:`fastquant.resize.resize`, to bound
#: the float64 temporaries.
RESIZE_BLOCK_ROWS = 512

# ----------------------------------------------------------------------------- reading and writing

#: Default refusal threshold in pixels (what Pillow's own default refuses, 2 x
#: its MAX_IMAGE_PIXELS).  Copied at import into the ``max_pixels`` defaults of
#: compress(), read_image() and open_image() (as ``fastquant.io.DEFAULT_MAX_PIXELS``).
DEFAULT_MAX_PIXELS = 178_956_970

#: Default most frames of an animation (``max_frames``; ``--max-frames``): ten minutes
#: at 20 frames a second.  Every frame also counts in ``max_pixels``.
DEFAULT_MAX_FRAMES = 12_000

#: Bytes read from one source at most, besides 8 a pixel: see
#: :func:`fastquant.io.read_limit`.
READ_SLACK = 64 << 20
#: Pipes and file objects are read this many bytes at a time.
READ_CHUNK = 1 << 20
#: Size aimed at for one strip of :meth:`fastquant.io.Decoded.strips`, counted
#: as 4 bytes a pixel.
STRIP_BYTES = 4 << 20
#: Uncompressed bytes per independently compressed piece of a PNG's zlib
#: stream (:func:`fastquant.png.deflate`).  Results (the compressed bytes).
DEFLATE_PIECE = 1 << 16
#: The same for the near-optimal deflate of indexed PNGs (:mod:`fastquant.deflate`):
#: larger, since its pieces cost more to start (codes learnt afresh).  Results.
STRONG_DEFLATE_PIECE = 1 << 17
#: Up to this ``speed`` (``--speed``), indexed PNGs are deflated by fastquant's
#: own near-optimal encoder (:mod:`fastquant.deflate`): about 9% fewer bytes
#: than zlib at level 9 for about 10x its write time (layout search included), which
#: would more than double a default run's time; faster speeds write with zlib.  Results.
STRONG_WRITE_SPEED = 3
#: zlib level at which :func:`fastquant.png.png_indexed` compares the plain layout of
#: 8-bit index data with the reordered, filtered one (:mod:`fastquant.reindex`) before
#: the real encoder deflates the smaller.  Results (which layout is written).
LAYOUT_LEVEL = 6
#: ... and takes the reordered layout when its zlib size is below this multiple of the
#: plain one's: the real encoder gains more from the layout than zlib does (on photos
#: at k=32-256 its size ratio was up to 9 points below zlib's, on drawings and text
#: about the same).  Results.
LAYOUT_MARGIN = 1.03
#: A byte budget (``max_bytes``) is searched and written with the own encoder
#: below this speed (bytes are what the user asked for); from it up, with zlib.
#: Results.
FAST_WRITE_SPEED = 10

# ----------------------------------------------------------------------------- batch workers

#: Estimated peak bytes of a job per pixel of its image (the larger of the
#: input and the resized image), besides :data:`JOB_BASE_BYTES`: the decoded
#: image as Pillow holds it (4), a byte of index, and the encoded output.
JOB_BYTES_PER_PIXEL = 6
#: Further bytes per pixel of an image small enough to be held as an array
#: with a colour index per pixel (up to ``2 * SAMPLE_PIXELS`` pixels).
JOB_SMALL_BYTES_PER_PIXEL = 22
#: Further bytes per pixel with dithering (it holds a copy of the pixels).
JOB_DITHER_BYTES_PER_PIXEL = 4
#: Estimated bytes of a job besides its pixels (a worker's modules and kernels).
JOB_BASE_BYTES = 200 << 20
#: Seconds between SIGTERM and SIGKILL when a worker is stopped.
KILL_GRACE = 0.5
#: Longest wait, in seconds, between the pool's looks at signals and deadlines.
POLL_TICK = 0.1
