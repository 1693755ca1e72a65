"""Fixtures of the manifest-check tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.manifests.manifest_copy import ManifestCopy, copy_tree


@pytest.fixture
def tree_copy(tmp_path: Path) -> ManifestCopy:
    """A copy of the real manifests (and what the checks read besides them) to break in one place."""
    return copy_tree(tmp_path / "repo")
