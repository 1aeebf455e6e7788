"""Exception hierarchy; each class carries the CLI exit code for its failure kind."""


class FastquantError(Exception):
    """Base class of every error fastquant raises on purpose."""

    exit_code: int = 1


class OptionError(FastquantError, ValueError):
    """An option or argument is out of range or of the wrong type (exit code 2)."""

    exit_code = 2


class InputError(FastquantError):
    """The input cannot be read or decoded as an image (exit code 3)."""

    exit_code = 3


class OutputError(FastquantError):
    """The output cannot be written (exit code 4)."""

    exit_code = 4


class OutputExistsError(OutputError):
    """The output exists, or would replace the input, and ``--force`` was not given (exit code 5)."""

    exit_code = 5


class JobTimeoutError(FastquantError):
    """A file took longer than the batch's per-file time limit (``--timeout``);
    nothing was written for it (exit code 6).
    """

    exit_code = 6


class ResourceError(FastquantError):
    """Not enough memory for the file: a MemoryError, or the worker process that held
    it died (killed by a signal, as the kernel's out-of-memory killer does); nothing
    was written for it (exit code 7).
    """

    exit_code = 7


class SkippedLargerError(FastquantError):
    """The result would not be smaller than the input (``--skip-if-larger``); nothing
    was written (exit code 98, as pngquant's).
    """

    exit_code = 98


class QualityError(FastquantError):
    """Even the largest allowed palette does not reach the minimum quality asked
    for (``quality=(min, max)``); nothing was written (exit code 99, as pngquant's).
    """

    exit_code = 99


class BudgetError(FastquantError):
    """Even the smallest palette (2 colours) gives a file larger than the byte budget
    (``max_bytes``, ``--max-bytes``); nothing was written (exit code 97).
    """

    exit_code = 97
