"""Optional: the larger shared corpus (../shared/images, or $FASTQUANT_IMAGES), where it exists.

tests/data carries a small file of every kind the suite needs.  The shared corpus
has large ones as well (multi-megapixel grey, 16-bit and palette images, a
progressive JPEG of 3 MP, more photos): this runs the suite's own checks on them,
in one test that skips once when the corpus is absent.
"""

from .test_io import _check_grey_16bit_palette_cmyk, _check_read
from .test_reliability import ODD, _check_valid_file_compresses

#: Large grey, 16-bit and palette images of the corpus (tests/data has small ones of each kind).
LARGE_GREY_16BIT_PALETTE = [
    ("gray8bit_flower_foveon.png", "L"),
    ("gray16bit_artificial.png", "I;16"),
    ("weld_16bit.png", "RGB"),  # 16-bit RGB, which Pillow reads as 8-bit
    ("Exoplanet_Phase_Curve_Diagram_indexed_gimp.png", "P"),
]


def test_shared_corpus(capsys, shared_images, tmp_path):
    folders = {"odd": "*", "alpha": "*", "pngsuite": "[bfgpst]*.png", "kodak": "*.png", "skimage": "*"}
    paths = [
        p
        for folder, pattern in folders.items()
        for p in sorted((shared_images / folder).glob(pattern))
        if p.suffix != ".md"
    ]
    assert len(paths) > 100  # the corpus, not an empty folder
    for path in paths:  # every valid file reads as Pillow says
        _check_read(path)
    for name, mode in LARGE_GREY_16BIT_PALETTE:  # and becomes RGB
        _check_grey_16bit_palette_cmyk(shared_images / "odd" / name, mode)
    # the unusual files that tests/data leaves out compress through the command line
    extra = [p for p in sorted((shared_images / "odd").glob("*")) if p.suffix != ".md" and p.name not in ODD]
    assert len(extra) >= len(LARGE_GREY_16BIT_PALETTE)
    for i, src in enumerate(extra):
        (tmp_path / str(i)).mkdir()
        _check_valid_file_compresses(capsys, src, tmp_path / str(i))
