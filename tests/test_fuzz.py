"""The fuzz script (tests/fuzz.py): 5000 mutated real images through compress()
and a sample of them through the command line, with no failure; and checks
that the harness itself reports hangs, crashes and failures."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parent / "fuzz.py"
SEED = 20261126


def fuzz(images_dir, *args, timeout=900):
    # The timeout only stops a runaway run; it is not a performance assertion.
    return subprocess.run(
        [sys.executable, str(FUZZ), "--images", str(images_dir), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_fuzz_5000_cases(images_dir):
    # About 3 ms a case in the worker, plus 10 CLI processes of 10 files each:
    # well under a minute on the 2-core test machine.
    r = fuzz(images_dir, "--cases", 5000, "--seed", SEED, "--cli-every", 50, "--cli-batch", 10)
    report = r.stdout[-20000:] + r.stderr[-5000:]
    assert r.returncode == 0, report
    summary = r.stdout.strip().splitlines()[-1]
    assert re.match(rf"fuzz: 5000 cases \(seed {SEED}\) in .*; 100 through the CLI in .*; 0 failures$", summary), report
    counts = dict((k, int(v)) for v, k in re.findall(r"(\d+) (ok|error: InputError)", summary))
    assert counts.get("ok", 0) >= 500 and counts.get("error: InputError", 0) >= 500, summary  # both paths
    assert "Traceback" not in r.stderr


def test_fuzz_reports_hangs_crashes_and_failures(images_dir):
    r = fuzz(
        images_dir,
        "--cases",
        20,
        "--seed",
        1,
        "--cli-every",
        0,
        "--timeout",
        5,
        "--inject",
        "hang:3,crash:7,raise:11",
        timeout=300,
    )
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stdout
    assert re.search(r"FAIL case 3 \(seed 1, case seed \d+\).*\n  compress\(\): hang", out), out
    assert re.search(r"FAIL case 7 .*\n  compress\(\): worker died with exit status 99", out), out
    assert re.search(r"FAIL case 11 .*\n  compress\(\): injected failure: InputError", out), out
    assert "replay: python" in out and "--seed 1 --replay 3" in out
    assert out.strip().splitlines()[-1].endswith("; 3 failures")
    assert "fuzz: 20 cases" in out  # the cases after a hang or a crash still ran


def test_fuzz_replay_and_cli_sample(images_dir, tmp_path):
    saved = tmp_path / "case.bin"
    r = fuzz(images_dir, "--seed", 1, "--replay", 12, "--save", saved, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("case 12 (seed 1, case seed 1000015): ")
    assert saved.stat().st_size > 0
    again = fuzz(images_dir, "--seed", 1, "--replay", 12, "--save", tmp_path / "again.bin", timeout=300)
    assert (tmp_path / "again.bin").read_bytes() == saved.read_bytes()  # cases are reproducible
    assert again.stdout.splitlines()[-1] == r.stdout.splitlines()[-1]
    r = fuzz(images_dir, "--cases", 40, "--seed", 2, "--cli-every", 4, "--cli-batch", 5, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"; 10 through the CLI in [\d.]+ s; 0 failures$", r.stdout.strip()), r.stdout
