"""The local mesh on real Envoy, shared by the tests of this folder (one start per test process).

Every test that starts or uses a stack runs on one xdist worker, in collection order (group mesh, with
pytest.ini's --dist loadgroup): each stack starts once in the suite, not once per worker, linkerd/ (collected
first) stops its stack before these start theirs, and no more than two stacks run at a time. That matters
beyond CPU: each Envoy holds an inotify instance per watched file (LDS, CDS, each RDS), about 50 per stack, and
Linux allows 128 per user by default (fs.inotify.max_user_instances); past it Envoy aborts at start. The
generator tests start nothing and go anywhere."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

import pytest
import requests

from devstack.mesh import probe
from devstack.mesh.runtime import MeshStack, free_port_offset
from tests.support import FaultSwitch


def pytest_collection_modifyitems(items):
    for item in items:
        path = item.nodeid.split("::")[0]
        if not path.startswith("tests/mesh/") or path.endswith("test_generator.py"):
            continue
        item.add_marker(pytest.mark.xdist_group("mesh"))


def offset_for_this_worker() -> int:
    """pytest-xdist workers look in ranges of their own, so two stacks never race for one offset. Every port stays
    below 32768, where Linux's ephemeral ports (the local ports of outgoing connections) begin."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    first = 13000 + 4000 * ((int(worker) if worker.isdigit() else 0) % 3)  # 13000, 17000, 21000: offsets <= 24500
    return free_port_offset(first, step=500, last=first + 3500)


def running_mesh(tmp_path_factory, name: str, faults_enabled: bool = False, mesh: str = "istio") -> MeshStack:
    """A stack of its own, on this worker's ports (use it with `with`)."""
    return MeshStack(tmp_path_factory.mktemp(name), port_offset=offset_for_this_worker(), faults_enabled=faults_enabled,
                     mesh=mesh)


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
    """Applies scenario files to the running mesh; back to its mesh's folder as it is afterwards."""
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


@dataclass
class SlowCheckout:
    answer: requests.Response
    elapsed_s: float
    cart_items: list[tuple[str, int]]
    timed_out: list[dict]  # cart's outbound /payments entries that the route timeout cut (UT)


def checkout_while_payment_is_slow(stack: MeshStack, faults, user: str, delay_ms: int = 5000) -> SlowCheckout:
    """Every payment instance slowed to DELAY_MS, one item in USER's cart, one checkout through the ingress: what
    both meshes' route-timeout tests look at (the answer, how long it took, the cart after it, and cart's access
    log entries for the cut charge)."""
    for instance in stack.of_app("payment-service"):
        faults.set(instance.name, delay_ms=delay_ms)
    assert requests.post(f"{stack.gateway_url}/api/cart/{user}/add", json={"product_id": "2", "quantity": 1},
                         timeout=10).status_code == 200
    started = time.monotonic()
    answer = requests.post(f"{stack.gateway_url}/api/cart/{user}/checkout", headers={"Idempotency-Key": f"{user}-k"},
                           timeout=30)
    elapsed = time.monotonic() - started
    cart = requests.get(f"{stack.gateway_url}/api/cart/{user}", timeout=10).json()
    timed_out = probe.wait_for_log(stack.logs_dir / "cart-service-1.access.log", lambda e: (
        e["direction"] == "outbound" and e["path"] == "/payments" and e["response_flags"] == "UT"))
    return SlowCheckout(answer, elapsed, [(i["product_id"], i["quantity"]) for i in cart["items"]], timed_out)
