"""One file's job in a batch: compress it, then write its output (and preview) together."""

import os
import sys

from . import write
from .errors import BudgetError, FastquantError, JobTimeoutError, OptionError, OutputExistsError, SkippedLargerError

#: The name of stdin as an input and of stdout as an output (``python -m fastquant - > out.png``).
STDIO = "-"


def _db(x):
    """A PSNR for JSON: rounded, None when there is none or it is infinite (lossless)."""
    return round(x, 3) if x is not None and x != float("inf") else None


def written_figures(data, original, ssim=False):
    """MSE, PSNR (and SSIM) of an encoded file against the image it was made from.

    Parameters
    ----------
    data : bytes
        The file, as written.
    original : (H, W, 3|4) uint8 ndarray
        The input it was made from (``Quantized.original``); with alpha, composited over white
        (:func:`fastquant.write.over_white`) when the file has none, as it was written.
    ssim : bool

    Returns
    -------
    dict
        mse, psnr, ssim (None unless asked), alpha_max_error, psnr_black, psnr_white (None
        when the file has no alpha; with alpha, psnr is the lower of the last two, as
        :class:`fastquant.Stats` has it).
    """
    from . import config, io, metrics

    out = io.read_image(bytes(data), max_pixels=None)[0]
    ref = write.over_white(original) if original.shape[2] == 4 and out.shape[2] == 3 else original
    mse = metrics.mse(ref, out)
    fig = {"mse": mse, "psnr": metrics.psnr_from_mse(mse), "ssim": None}
    fig["alpha_max_error"] = fig["psnr_black"] = fig["psnr_white"] = None
    if ref.shape[2] == 4:
        fig["alpha_max_error"], fig["psnr_black"], fig["psnr_white"] = metrics.alpha_figures(ref, out)
        fig["psnr"] = min(fig["psnr_black"], fig["psnr_white"])
    if ssim:
        fig["ssim"] = metrics.ssim(ref, out, max_pixels=config.SSIM_MAX_PIXELS)
    return fig


def remove_written(path, root=None):
    """Remove an output a job wrote and then had to take back (through no symbolic link below ``root``)."""
    try:
        fd = write.open_folder(path, root)
    except (OSError, FastquantError):
        return
    try:
        os.unlink(os.path.basename(path), dir_fd=fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def run_job(
    source,
    output,
    n_colors=256,
    force=False,
    preview=None,
    preview_diff=False,
    skip_if_larger=False,
    root=None,
    on_write=None,
    timeout=None,
    stdout_format=".png",
    **options,
):
    """Compress one file and write it (and its preview); the unit of work of a batch.

    Both files are encoded in memory first, then written; the output and its
    preview are written together or not at all: when the preview cannot be
    written, the output this job has just created is removed again (one that
    ``force`` replaced cannot be brought back: the error says so).

    Parameters
    ----------
    source, output : str
        ``"-"`` (:data:`STDIO`): read the image from stdin, write it to stdout
        (in ``stdout_format``).
    n_colors : int
    force : bool
        Replace an existing output (never the input itself).  Without it the
        output is created exclusively: of two runs racing for one name, the
        second gets :class:`OutputExistsError`.
    preview : str, optional
        Also write original | result side by side there (``preview_diff``:
        with an amplified difference panel and a caption).
    skip_if_larger : bool
        Write nothing, raising :class:`SkippedLargerError`, when the result
        is not smaller than the input file.
    root : str, optional
        The out-dir ``output`` lies in: folders below it are made as needed
        and never followed through symbolic links.
    on_write : callable, optional
        Called with (path, created) after each file is written (a worker
        tells its parent, which removes the files of a job it had to stop).
    timeout : float, optional
        Seconds after which the job writes nothing and raises
        :class:`JobTimeoutError` (``--timeout``; the worker pool also kills
        a worker whose job runs on past it).
    stdout_format : str
        The extension whose format goes to stdout (``output="-"``).
    **options
        Passed to :func:`fastquant.compress`.

    Returns
    -------
    dict
        input, output, input_bytes, output_bytes, ratio, n_colors, width,
        height, psnr (None for lossless), mse, ssim, quality, max_bytes (the budget, or None;
        n_colors is then the palette size kept), iterations,
        alpha_max_error, psnr_black, psnr_white (None without alpha; the
        PSNRs also None when equal, like psnr), psnr_quantized,
        total_seconds (the job's wall time: compressing, encoding and
        writing; not the preview's), stage_seconds (``Stats.stage_seconds``
        and "write"), and preview and preview_seconds when a preview was
        written.  The figures
        are of the file as written (decoded again when its format changes
        the pixels: JPEG, alpha flattened over white, a GIF's 1-bit
        transparency; see :func:`written_figures`); psnr_quantized is
        ``Stats.psnr``, of the palette image before encoding.  With alpha,
        psnr is the lower of psnr_black and psnr_white.
        For an animation also frames and mean_frame_psnr (psnr is then over
        every pixel of every frame, of the frames as mapped).

    Raises
    ------
    FastquantError
        Its ``exit_code`` says what kind of failure.
    """
    import time

    from .api import compress
    from .write import encode, encode_array, write_atomic

    to_stdout = output == STDIO
    for target in filter(None, (None if to_stdout else output, preview)):
        write.check_output(
            target, None if source == STDIO else source, folder_made=root is not None and target == output
        )
        if os.path.lexists(target) and not force:
            raise OutputExistsError(f"{target}: exists, kept (use --force to overwrite)")
    max_bytes = options.get("max_bytes")
    if max_bytes is not None and not to_stdout and os.path.splitext(output)[1].lower() != ".png":
        raise OptionError(f"{output}: --max-bytes budgets PNG outputs; this one is {os.path.splitext(output)[1]!r}")
    t = time.perf_counter()
    q = compress(sys.stdin.buffer if source == STDIO else source, n_colors, **options)
    tw = time.perf_counter()
    fmt = "stdout" + stdout_format if to_stdout else output  # the name whose extension picks the format
    if _animated(q):  # frames mapped and encoded one at a time, then written whole
        with q:
            if preview:
                raise OptionError(f"{source}: --preview is for still images, not animations ({q.n_frames} frames)")
            data = q.encode(fmt)
    else:
        data = encode(fmt, q.indices, q.palette, q.icc_profile, level=q.png_level, optimize=q.png_optimize)
    if q.stats.max_bytes is not None and len(data) > q.stats.max_bytes:  # the search encodes the same bytes
        raise BudgetError(f"{source}: {len(data)} bytes, more than the budget of {q.stats.max_bytes}; nothing written")
    if skip_if_larger and q.stats.input_bytes is not None and len(data) >= q.stats.input_bytes:
        raise SkippedLargerError(
            f"{source}: skipped: the result, {len(data)} bytes, is not smaller than "
            f"the input, {q.stats.input_bytes} bytes; nothing written"
        )
    tp = time.perf_counter()  # the preview's time is its own, not the file's
    side = encode_array(preview, q.preview(preview_diff, nbytes=len(data)), fast=True) if preview else None
    preview_seconds = time.perf_counter() - tp
    if timeout and time.perf_counter() - t > timeout:  # finished late: as if the pool had stopped it
        raise JobTimeoutError(f"{source}: took longer than {timeout:g} s (--timeout); nothing written")
    if to_stdout:  # the preview first: what went to stdout cannot be taken back
        if preview:
            tp = time.perf_counter()
            write_atomic(preview, side, replace=force)
            preview_seconds += time.perf_counter() - tp
            if on_write is not None:
                on_write(preview, True)
        nbytes = write.write_stream(data, sys.stdout.buffer, "<stdout>")
    else:
        replaced = force and os.path.lexists(output)
        nbytes = write_atomic(output, data, replace=force, root=root)
        if on_write is not None:
            on_write(output, not replaced)
    if preview and not to_stdout:
        tp = time.perf_counter()
        try:
            write_atomic(preview, side, replace=force)
        except FastquantError as e:
            remove_written(output, root)
            raise type(e)(
                f"{e}; {output} removed again"
                + (" (the file it replaced is gone)" if replaced else ": nothing written")
            ) from e
        if on_write is not None:
            on_write(preview, True)
        preview_seconds += time.perf_counter() - tp
    q.stats.stage_seconds["write"] = time.perf_counter() - tw - preview_seconds
    s = q.stats
    fig = {k: getattr(s, k) for k in ("mse", "psnr", "ssim", "alpha_max_error", "psnr_black", "psnr_white")}
    # What the file holds, not what was quantized (an animation's figures are of its frames as mapped).
    if not _animated(q) and not write.keeps_pixels(fmt, q.palette.shape[1]):
        tm = time.perf_counter()
        fig = written_figures(data, q.original, ssim=s.ssim is not None)
        s.stage_seconds["metrics"] = s.stage_seconds.get("metrics", 0.0) + time.perf_counter() - tm
    rec = {
        "input": "<stdin>" if source == STDIO else os.fspath(source),
        "output": "<stdout>" if to_stdout else os.fspath(output),
        "status": "ok",
        "input_bytes": s.input_bytes,
        "output_bytes": nbytes,
        "ratio": round(nbytes / s.input_bytes, 4) if s.input_bytes else None,
        "n_colors": s.n_colors,
        "width": s.width,
        "height": s.height,
        "psnr": _db(fig["psnr"]),
        "mse": round(fig["mse"], 4),
        "ssim": round(fig["ssim"], 5) if fig["ssim"] is not None else None,
        "quality": s.quality,
        "max_bytes": s.max_bytes,
        "iterations": s.iterations,
        "alpha_max_error": fig["alpha_max_error"],
        "psnr_black": _db(fig["psnr_black"]),
        "psnr_white": _db(fig["psnr_white"]),
        "psnr_quantized": _db(s.psnr),
        "total_seconds": round(time.perf_counter() - t - preview_seconds, 4),
        "stage_seconds": {k: round(v, 4) for k, v in s.stage_seconds.items()},
    }
    if _animated(q):
        rec["frames"] = s.frames
        rec["mean_frame_psnr"] = _db(s.mean_frame_psnr)
    if preview:
        rec["preview"] = os.fspath(preview)
        rec["preview_seconds"] = round(preview_seconds, 4)
    return rec


def count_job(source, *, resize=None, max_pixels=None, allow_truncated=False, **ignored):
    """Count the colours of one source, as :func:`fastquant.compress` would before fitting.

    The first stage of a run with one palette for every file
    (:mod:`fastquant.shared`); the other keywords of a job are ignored.

    The image stays in this process for the job that maps it (see
    :func:`fastquant.palette.count`'s ``keep``): a worker pool gives that job to
    the worker that kept it when it can (:class:`fastquant.workers.Pool`).

    Returns
    -------
    dict
        ``{"counted": fastquant.palette.Counted, "kept": bool}`` (picklable: it comes back from a
        worker); ``kept``: whether this process keeps the image.
    """
    from . import io
    from .palette import count, kept_sources

    limit = io.DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    counted = count(source, resize=resize, max_pixels=limit, allow_truncated=allow_truncated, keep=True)
    kept = isinstance(source, (str, os.PathLike)) and os.path.abspath(source) in kept_sources()
    return {"counted": counted, "kept": kept}


def _animated(q):
    """Whether :func:`~fastquant.compress` gave an Animation (then its module is imported: a
    still image's run does without it).
    """
    animation = sys.modules.get("fastquant.animation")
    return animation is not None and isinstance(q, animation.Animation)
