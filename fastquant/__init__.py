"""fastquant: image compression by weighted k-means colour quantization.

>>> from fastquant import compress
>>> q = compress("photo.png", 64)        # doctest: +SKIP
>>> q.save("photo-fq64.png")             # indexed PNG  # doctest: +SKIP

Importing compiles nothing: the Numba kernels compile on first use and are
cached on disk (``cache=True``); :func:`precompile` compiles them all at once.
The names below are imported on first use (``import fastquant`` alone loads
neither Numba nor any kernel module), so a run loads only the modules it needs.
"""

import sys
import types
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:  # what the lazy names below are, for type checkers and IDEs
    from .animation import Animation, AnimationStats
    from .api import compress
    from .batch import compress_many
    from .jit import CompileWarning
    from .lloyd import KMeansResult, kmeans
    from .palette import Palette, palette
    from .pillow import quantize
    from .result import Quantized, Stats
    from .warmup import precompile

__version__ = "0.1.0"

#: The public names imported on first use, and the module of each.
_LAZY = {
    "compress": "api",
    "compress_many": "batch",
    "palette": "palette",
    "Palette": "palette",
    "quantize": "pillow",
    "Quantized": "result",
    "Stats": "result",
    "Animation": "animation",
    "AnimationStats": "animation",
    "kmeans": "lloyd",
    "KMeansResult": "lloyd",
    "CompileWarning": "jit",
    "precompile": "warmup",
}

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


def __getattr__(name: str) -> Any:
    """A public name of :data:`_LAZY` (imported now, then kept), or a submodule (``fastquant.io``)."""
    import importlib

    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        globals()[name] = value
        return value
    if not name.startswith("__"):
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """``fastquant.palette`` stays the function: importing the submodule of the same name (as
    some runs do before the function is asked for) binds it on the package, unless kept out here.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if not (name == "palette" and isinstance(value, types.ModuleType)):
            super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
