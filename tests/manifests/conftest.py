"""Fixtures of the manifest-check tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.manifests.manifest_copy import REPO_ROOT, ManifestCopy, copy_tree
from tools.manifestcheck import crd_pins


def pytest_collection_modifyitems(config, items):
    """Tests marked `crds` skip, each on its own line, when no pinned CRDs can be had (offline, empty cache, no
    $CRDS_DIR); a folder that is there but wrong makes them fail instead (crds_folder)."""
    needing = [item for item in items if item.get_closest_marker("crds")]
    if not needing:
        return
    try:
        crd_pins.verified_folder(REPO_ROOT, None)
    except crd_pins.CrdsUnavailable as exc:
        for item in needing:
            item.add_marker(pytest.mark.skip(reason=f"needs the pinned CRDs: {exc}"))
    except crd_pins.CrdsInvalid:
        pass


@pytest.fixture
def tree_copy(tmp_path: Path) -> ManifestCopy:
    """A copy of the real manifests (and what the checks read besides them) to break in one place."""
    return copy_tree(tmp_path / "repo")
