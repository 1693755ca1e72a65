"""bench/mesh.py and bench/run.py refuse bad arguments with argparse's one line and exit 2, before any stack starts
(before, --rates abc was a traceback, and --rates 0 or --seconds -1 started a whole benchmark)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("script, args, message", [
    ("mesh.py", ["--rates", "abc"], "argument --rates: needs a whole number of at least 1, got 'abc'"),
    ("mesh.py", ["--rates", "100,0"], "argument --rates: needs a whole number of at least 1, got '0'"),
    ("mesh.py", ["--rates", ","], "argument --rates: needs at least one rate, got ','"),
    ("mesh.py", ["--seconds", "-1"], "argument --seconds: needs a whole number of at least 1, got '-1'"),
    ("mesh.py", ["--port-offset", "60000"],
     "--port-offset 60000 puts ports outside 1024-65535 (allowed: -3976 to 56435)"),
    ("run.py", ["--seconds", "0"], "argument --seconds: needs a whole number of at least 1, got '0'"),
    ("run.py", ["--connections", "x"], "argument --connections: needs a whole number of at least 1, got 'x'"),
])
def test_bad_arguments_stop_with_one_line_before_anything_starts(script, args, message):
    result = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 2 and result.stdout == "", result
    assert result.stderr.strip().splitlines()[-1] == f"{script}: error: {message}"
