"""An optional last, lossless pass over written PNG files: ``compress(optimize=True)``, ``--optimize``.

The pass is oxipng's (pyoxipng, MIT; the ``optimize`` extra: ``pip install '.[optimize]'``),
at ``config.OPTIMIZE_LEVEL``: it tries more palette orders, row filters and a
stronger deflate than fastquant's own encoder, for a few percent fewer bytes
and about a second more per photo.  The pixels do not change; the file may
(oxipng may, for example, reorder the palette).  It is opt-in, as oxipng is,
and imported only when asked for: the core never needs it.
"""

from . import config
from .errors import OptionError

#: What to install for the pass.
EXTRA = "pip install '.[optimize]' in fastquant's checkout (pyoxipng)"


def check():
    """Raise :class:`fastquant.OptionError` (one line) when pyoxipng cannot be imported."""
    try:
        import oxipng  # noqa: F401
    except ImportError:
        raise OptionError(f"optimize needs the optional pyoxipng package: {EXTRA}") from None


def lossless(data):
    """``data``, a PNG file, passed through oxipng; the smaller of the two.

    Parameters
    ----------
    data : bytes

    Returns
    -------
    bytes
        A PNG of the same pixels, never larger than ``data``.
    """
    check()
    import oxipng

    out = oxipng.optimize_from_memory(bytes(data), level=config.OPTIMIZE_LEVEL)
    return out if len(out) < len(data) else bytes(data)
