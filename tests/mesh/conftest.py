"""The local mesh on real Envoy, shared by the tests of this folder (one start per test process)."""
from __future__ import annotations

import os

import pytest
import requests

from devstack.mesh import probe
from devstack.mesh.runtime import MeshStack, free_port_offset
from tests.support import FaultSwitch


def offset_for_this_worker() -> int:
    """pytest-xdist workers look in ranges of their own, so two stacks never race for one offset. Every port stays
    below 32768, where Linux's ephemeral ports (the local ports of outgoing connections) begin."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    first = 13000 + 4500 * (int(worker) if worker.isdigit() else 0)
    return free_port_offset(first, step=500, last=first + 4000)


def running_mesh(tmp_path_factory, name: str, faults_enabled: bool = False) -> MeshStack:
    """A stack of its own, on this worker's ports (use it with `with`)."""
    return MeshStack(tmp_path_factory.mktemp(name), port_offset=offset_for_this_worker(), faults_enabled=faults_enabled)


@pytest.fixture(scope="session")
def mesh(tmp_path_factory):
    """The whole shop behind sidecars, every fault off; tests switch faults on per instance and reset them. A test
    module whose effects would leak (ejections) overrides it with a stack of its own."""
    with running_mesh(tmp_path_factory, "mesh") as stack:
        yield stack


@pytest.fixture
def inventory(mesh) -> probe.Inventory:
    return probe.Inventory.load(mesh.layout.inventory_path)


@pytest.fixture
def mesh_faults(mesh):
    switch = FaultSwitch(mesh)
    yield switch
    switch.reset()


@pytest.fixture
def scenario(mesh):
    """Applies scenario files to the running mesh; back to istio/ as it is afterwards."""
    applied = []

    def apply(path: str, verb: str = "apply") -> list[str]:
        applied.append(path)
        return mesh.apply(verb, path)

    yield apply
    if applied:
        mesh.apply("reset", "")


@pytest.fixture
def http():
    with requests.Session() as session:
        yield session
