"""fastquant: image compression by weighted k-means colour quantization.

>>> from fastquant import compress
>>> q = compress("photo.png", 64)        # doctest: +SKIP
>>> q.save("photo-fq64.png")             # indexed PNG  # doctest: +SKIP

Importing compiles nothing: the Numba kernels compile on first use and are
cached on disk (``cache=True``); :func:`precompile` compiles them all at once.
"""

from .animation import Animation, AnimationStats
from .api import compress
from .batch import compress_many
from .errors import (
    BudgetError,
    FastquantError,
    InputError,
    JobTimeoutError,
    OptionError,
    OutputError,
    OutputExistsError,
    QualityError,
    ResourceError,
    SkippedLargerError,
)
from .jit import CompileWarning
from .lloyd import KMeansResult, kmeans
from .palette import Palette, palette
from .pillow import quantize
from .result import Quantized, Stats
from .warmup import precompile

__version__ = "0.1.0"

__all__ = [
    "compress",
    "compress_many",
    "palette",
    "Palette",
    "quantize",
    "Quantized",
    "Animation",
    "AnimationStats",
    "Stats",
    "kmeans",
    "KMeansResult",
    "BudgetError",
    "FastquantError",
    "InputError",
    "JobTimeoutError",
    "OptionError",
    "OutputError",
    "OutputExistsError",
    "QualityError",
    "ResourceError",
    "SkippedLargerError",
    "CompileWarning",
    "precompile",
    "__version__",
]
