"""A batch run with one palette for every file: ``--shared``, ``--map``, ``--save-palette``.

:class:`PaletteRun` runs in two stages on the executor of the run
(:func:`fastquant.batch.start`): every source's colours are counted
(:func:`fastquant.job.count_job`, in parallel on the workers), the counts
are merged in the order of the sources and the palette fitted once
(:func:`fastquant.palette.merge`, :func:`fastquant.palette.fit`), then every
file is mapped onto it (``compress(palette=...)``).  With a palette given
(``--map``) the first stage is skipped.  The bytes do not depend on the
number of workers: the merge takes the counts in the sources' order, not
in the order they finished.

The command-line values that name palettes are read here too:
:func:`load_map` and :func:`fixed_colors`.
"""

import os

from . import batch, write
from .errors import FastquantError, OptionError, OutputError, OutputExistsError
from .palette import Palette, fit, forget_kept, merge

#: Keywords of :func:`fastquant.palette.fit` taken from a run's options.
FIT_OPTIONS = ("n_colors", "fixed_colors", "colorspace", "seed", "max_iter", "tol", "init", "swap_rounds")


def load_map(path, option="--map"):
    """The palette named by a command-line value: a palette file (see :meth:`Palette.load`).

    Raises
    ------
    OptionError
        Unreadable, not a palette, or more than 65536 colours: one line naming ``option``.
    """
    try:
        return Palette.load(path)
    except FastquantError as e:
        raise OptionError(f"{option}: {e}") from None


def fixed_colors(text, n_colors):
    """``--fixed-colors``: comma-separated hex colours (``#`` optional), or a palette file as for ``--map``.

    Raises
    ------
    OptionError
        Not colours, or more than ``n_colors`` of them.
    """
    if os.path.exists(text):
        colors = load_map(text, "--fixed-colors").colors
    else:
        try:
            colors = Palette.from_colors(text).colors
        except OptionError as e:
            raise OptionError(f"--fixed-colors: {str(e).removeprefix('colors: ')}") from None
    n = len({tuple(c) for c in colors.tolist()})
    if n > n_colors:
        raise OptionError(f"--fixed-colors: {n} colours are more than -k {n_colors}")
    return colors


class PaletteRun:
    """The jobs of a run that share one palette; iterate for each file's
    :class:`~fastquant.batch.Result` (failures to read in the first stage
    included), as :func:`fastquant.batch.start`'s objects are iterated.

    Parameters
    ----------
    pairs : list of (str, str)
        (source, output) of the run.
    kwargs : dict
        The keywords of every job (as for :func:`fastquant.batch.start`);
        those of :data:`FIT_OPTIONS` also fit the palette.
    executor : None, fastquant.workers.Pool or concurrent.futures.Executor
    palette : Palette, optional
        Map onto this one; None: fit it on all the sources.
    save_palette : str, optional
        Write the palette there (see :meth:`Palette.save`) before mapping;
        a failure to write it is a failed :class:`~fastquant.batch.Result`
        of its own (the files are mapped all the same).

    Attributes
    ----------
    palette : Palette or None
        Once fitted (or given): ``palette.psnr`` is the PSNR over all the
        pixels of the sources counted.
    fitted : dict or None
        Once fitted: n_colors, psnr (None for lossless), mse, pixels and files
        (the sources it was fitted on), for the command line to print.
    """

    def __init__(self, pairs, kwargs, executor=None, *, palette=None, save_palette=None):
        self.pairs, self.kwargs, self.executor = list(pairs), dict(kwargs), executor
        self.palette, self.save_palette = palette, save_palette
        self.runner = self.fitted = None
        self.counting = False
        self.stopped = False

    def __iter__(self):
        try:
            yield from self._stages()
        finally:  # images counted in this process and not mapped (failed, stopped)
            forget_kept()

    def _stages(self):
        pairs = self.pairs
        if self.palette is None:
            counted = {}
            self.counting = True
            self.runner = batch.start(pairs, dict(self.kwargs, count_only=True), self.executor)
            for r in self.runner:
                if r.status == "ok":
                    counted[(r.source, r.output)] = r.record["counted"]
                else:
                    yield r
            self.counting = False
            pairs = [pair for pair in pairs if pair in counted]
            if self.stopped or not pairs:
                return
            # In the sources' order, whatever order the workers finished in.
            options = {k: self.kwargs[k] for k in FIT_OPTIONS if self.kwargs.get(k) is not None}
            self.palette = p = fit(merge([counted[pair] for pair in pairs]), **options)
            psnr = None if p.psnr == float("inf") else round(p.psnr, 3)
            self.fitted = dict(n_colors=len(p), psnr=psnr, mse=round(p.mse, 4), pixels=p.n_pixels, files=len(pairs))
        if self.save_palette:
            yield from self._save()
        mapping = {k: v for k, v in self.kwargs.items() if k not in ("fixed_colors", "quality", "max_bytes")}
        self.runner = batch.start(pairs, dict(mapping, palette=self.palette.colors), self.executor)
        yield from self.runner

    def _save(self):
        path = self.save_palette
        try:
            if os.path.lexists(path) and not self.kwargs.get("force"):
                raise OutputExistsError(f"{path}: exists, kept (use --force to overwrite)")
            self.palette.save(path)
        except FastquantError as e:
            yield batch.failed(path, e, path)
        except OSError as e:
            yield batch.failed(path, OutputError(f"{path}: cannot write the palette: {e.strerror or e}"), path)

    def stop(self, kill_now=None):
        """Start nothing more; iterate for the results of the running jobs (see :func:`fastquant.batch.start`)."""
        self.stopped = True
        if self.runner is None:
            return iter(())
        results = self.runner.stop(kill_now)
        if self.counting:  # counts are no file's result: only failures are reported
            return (r for r in results if r.status != "ok")
        return results

    def kill(self):
        """Stop everything at once."""
        self.stopped = True
        if self.runner is not None:
            self.runner.kill()


def check_save_path(path, force=False):
    """Refuse a ``--save-palette`` path that cannot be written, before any work (one line; exit 2, 4 or 5)."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".png", ".gpl", ".txt", ".hex"):
        raise OptionError(f"--save-palette {path}: expected a .png, .gpl or .txt file")
    write.check_output(path)
    if os.path.lexists(path) and not force:
        raise OutputExistsError(f"{path}: exists, kept (use --force to overwrite)")
