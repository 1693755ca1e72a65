"""The local mesh under Linkerd's intents (Envoy enforcing kubernetes/ and linkerd/, not linkerd2-proxy): one
stack for the tests of this folder, stopped once they are done (package scope), before the Istio tests of
../ start theirs. It is this folder's `mesh`, so ../conftest.py's inventory, mesh_faults and scenario fixtures act
on it."""
from __future__ import annotations

import pytest

from tests.mesh.conftest import running_mesh


@pytest.fixture(scope="package")
def mesh(tmp_path_factory):
    """The whole shop behind sidecars under linkerd/, every fault off; tests switch faults per instance."""
    with running_mesh(tmp_path_factory, "linkerd", mesh="linkerd") as stack:
        yield stack


@pytest.fixture(scope="package")
def linkerd(mesh):
    return mesh


@pytest.fixture
def faults(mesh_faults):
    return mesh_faults
