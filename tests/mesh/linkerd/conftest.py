"""The local mesh under Linkerd's intents (Envoy enforcing kubernetes/ and linkerd/, not linkerd2-proxy): one
stack for the tests of this folder, which all run on one xdist worker (../conftest.py groups them)."""
from __future__ import annotations

import pytest

from devstack.mesh import probe
from devstack.mesh.runtime import MeshStack
from tests.mesh.conftest import offset_for_this_worker
from tests.support import FaultSwitch


@pytest.fixture(scope="session")
def linkerd(tmp_path_factory):
    """The whole shop behind sidecars under linkerd/, every fault off; tests switch faults per instance."""
    with MeshStack(tmp_path_factory.mktemp("linkerd"), port_offset=offset_for_this_worker(), faults_enabled=False,
                   mesh="linkerd") as stack:
        yield stack


@pytest.fixture(scope="session")
def inventory(linkerd) -> probe.Inventory:
    return probe.Inventory.load(linkerd.layout.inventory_path)


@pytest.fixture
def faults(linkerd):
    switch = FaultSwitch(linkerd)
    yield switch
    switch.reset()


@pytest.fixture
def scenario(linkerd):
    """Applies files of linkerd/scenarios/ to the running mesh; back to linkerd/ as it is afterwards."""
    applied = []

    def apply(path: str, verb: str = "apply"):
        applied.append(path)
        return linkerd.apply(verb, path)

    yield apply
    if applied:
        linkerd.apply("reset", "")
