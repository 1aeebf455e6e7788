"""A typed, discoverable API: hints on every public name, a py.typed marker, mypy clean, clear
timing names, and a progress callback for compress_many.
"""

import concurrent.futures as cf
import configparser
import inspect
import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

import fastquant
from fastquant import batch, cli

from .conftest import ROOT


def _public_callables():
    """(name, function) of every public function and method exported by fastquant."""
    for name in fastquant.__all__:
        obj = getattr(fastquant, name)
        if inspect.isfunction(obj):
            yield name, obj
        elif inspect.isclass(obj) and not issubclass(obj, (Exception, Warning)):
            for attr, member in vars(obj).items():
                if attr.startswith("_") and attr != "__init__":
                    continue
                if isinstance(member, (classmethod, staticmethod)):
                    member = member.__func__
                if isinstance(member, property):
                    member = member.fget
                if inspect.isfunction(member) and member.__module__.startswith("fastquant"):
                    yield f"{name}.{attr}", member


def test_every_public_function_is_fully_annotated():
    names = dict(_public_callables())
    assert {"compress", "compress_many", "palette", "kmeans", "Quantized.save", "Stats.as_dict"} <= set(names)
    missing = []
    for name, fn in names.items():
        sig = inspect.signature(fn)
        for p in sig.parameters.values():
            if p.name not in ("self", "cls") and p.annotation is inspect.Parameter.empty:
                missing.append(f"{name}({p.name})")
        if sig.return_annotation is inspect.Signature.empty:
            missing.append(f"{name} -> ?")
    assert missing == []


def test_py_typed_marker_is_shipped():
    assert (ROOT / "fastquant" / "py.typed").is_file()
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert "py.typed" in cfg["options.package_data"]["fastquant"]
    assert any(line.startswith("mypy==") for line in cfg["options.extras_require"]["test"].split("\n"))


USER_CODE = """
import fastquant
from fastquant import compress, compress_many

q = compress("photo.png", 64, dither="fs")
reveal_type(q.stats.total_seconds)
reveal_type(q.stats.stage_seconds)
for r in compress_many(["a.png"], progress=lambda r: print(r.source)):
    reveal_type(r)
compress("photo.png", dither="floyd")
"""


def test_mypy_checks_user_code_against_the_hints_and_finds_the_package_clean(tmp_path):
    pytest.importorskip("mypy")
    (tmp_path / "use.py").write_text(USER_CODE)
    args = ["--cache-dir", str(tmp_path / "cache"), "--config-file", str(ROOT / "pyproject.toml")]
    r = subprocess.run(
        [sys.executable, "-m", "mypy", *args, str(tmp_path / "use.py")],  # fastquant's modules: followed
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [line.split(": ", 1)[1] for line in r.stdout.splitlines() if "use.py:" in line]
    others = [line for line in r.stdout.splitlines() if line.startswith("fastquant")]
    assert others == [], r.stdout  # the package itself (all it imports): no error
    assert lines == [
        'note: Revealed type is "float"',
        'note: Revealed type is "dict[str, float]"',
        'note: Revealed type is "fastquant.batch.Result"',
        'error: Argument "dither" to "compress" has incompatible type "Literal[\'floyd\']"; expected '
        "\"Literal['fs', 'ordered', 'none'] | None\"  [arg-type]",
    ], r.stdout


# ----------------------------------------------------------------------------- timing names


def test_stage_and_total_seconds_and_the_deprecated_alias():
    image = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    s = fastquant.compress(image, 8).stats
    assert {"read", "histogram", "palette", "remap"} <= set(s.stage_seconds)
    assert all(v >= 0 for v in s.stage_seconds.values())
    assert s.total_seconds == pytest.approx(sum(s.stage_seconds.values())) and s.total_seconds > 0
    with pytest.warns(DeprecationWarning, match="stage_seconds"):
        assert s.seconds is s.stage_seconds
    d = s.as_dict()
    assert d["stage_seconds"] == s.stage_seconds and d["total_seconds"] == s.total_seconds
    assert "seconds" not in d
    json.dumps(d)


def test_cli_json_names_total_and_stage_seconds(capsys, tmp_path, kodak):
    out = tmp_path / "x.png"
    assert cli.main([str(kodak[0]), "-k", "16", "-o", str(out), "--json"]) == 0
    rec = json.loads(capsys.readouterr().out.splitlines()[0])
    assert "seconds" not in rec and "stages" not in rec
    assert set(rec["stage_seconds"]) >= {"read", "palette", "remap", "write"}
    assert rec["total_seconds"] >= sum(rec["stage_seconds"].values()) - 1e-3  # wall time covers the stages


# ----------------------------------------------------------------------------- progress callback


def _sources(tmp_path, n=3):
    from PIL import Image

    rng = np.random.default_rng(1)
    paths = []
    for i in range(n):
        p = tmp_path / f"s{i}.png"
        Image.fromarray(rng.integers(0, 256, (24, 30, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    (tmp_path / "bad.png").write_bytes(b"not a png")
    return paths + [str(tmp_path / "bad.png")]


def test_compress_many_progress_is_called_with_each_result_as_it_is_yielded(tmp_path):
    seen, yielded = [], []
    with cf.ThreadPoolExecutor(1) as ex:
        for r in batch.compress_many(_sources(tmp_path), str(tmp_path / "out"), executor=ex, progress=seen.append):
            assert seen[-1] is r  # reported before the caller sees it: a bar is up to date
            yielded.append(r)
    assert seen == yielded and len(seen) == 4
    assert sorted(r.status for r in seen) == ["error", "ok", "ok", "ok"]


def test_compress_many_progress_drives_a_bar_like_tqdm(tmp_path):
    class Bar:
        n = 0

        def update(self, k=1):
            self.n += k

    bar = Bar()
    with cf.ThreadPoolExecutor(2) as ex:
        results = list(
            batch.compress_many(_sources(tmp_path), str(tmp_path / "o"), executor=ex, progress=lambda r: bar.update())
        )
    assert bar.n == len(results) == 4


def test_compress_many_without_progress_is_unchanged(tmp_path):
    with warnings.catch_warnings(), cf.ThreadPoolExecutor(1) as ex:
        warnings.simplefilter("error", DeprecationWarning)
        results = list(batch.compress_many(_sources(tmp_path, 1), str(tmp_path / "o"), executor=ex))
    assert [r.status for r in results] == ["ok", "error"] or [r.status for r in results] == ["error", "ok"]
