"""The real manifests pass every check, through the command line that ./test.sh runs."""
from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from tests.manifests.manifest_copy import REPO_ROOT, crds_folder

LINE = re.compile(r"^\S+(:\d+)?( \S+/\S+)?: .+$")


@pytest.mark.crds
def test_real_manifests_pass_every_check_including_checkov():
    crds = crds_folder()
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "tools.manifestcheck", "--crds", str(crds)], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, f"manifest check failed:\n{result.stdout}{result.stderr}"
    assert result.stdout == ""
    assert "manifestcheck: OK" in result.stderr
    assert elapsed < 60, f"the manifest check took {elapsed:.0f}s; keep it under a minute"


def test_problem_lines_name_file_document_and_object(tree_copy):
    rel, _ = tree_copy.edit("Service", lambda d: d["spec"]["selector"].update(app="nobody"),
                            where=lambda d: bool(d.get("spec", {}).get("selector")), folder="kubernetes/")
    result = tree_copy.cli("--only", "refs")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines and all(LINE.match(line) for line in lines), lines
    assert any(line.startswith(f"{rel}:") and " Service/" in line for line in lines), lines
    assert "problem(s)" in result.stderr


def test_unknown_check_name_is_a_usage_error(tree_copy):
    result = tree_copy.cli("--only", "everything")
    assert result.returncode == 2
    assert "unknown check" in result.stderr
