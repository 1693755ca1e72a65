"""mTLS and authorization on the sidecars' inbound listeners, called the way a meshed pod's sidecar calls them:
TLS with one identity's certificate from the local CA (or plaintext, as an unmeshed pod)."""
from __future__ import annotations

import json
import re

import pytest
import requests

from devstack.mesh import probe

BAD_PAYMENT = json.dumps({"order_id": "o"}).encode()  # refused by payment with 400: nothing is ever charged


def test_an_identity_no_policy_allows_is_refused_with_istios_403(inventory):
    answer = probe.call_as(inventory, "e-commerce/default", "payment-service-v1-1", "POST", "/payments", BAD_PAYMENT)
    assert answer.status == 403 and answer.body == b"RBAC: access denied"


def test_the_allowed_caller_reaches_payment(inventory):
    answer = probe.call_as(inventory, "e-commerce/cart-service", "payment-service-v1-1", "POST", "/payments",
                           BAD_PAYMENT)
    assert answer.status == 400 and b"Idempotency-Key" in answer.body


@pytest.mark.parametrize("caller", ["e-commerce/api-gateway", "e-commerce/catalog-service", "e-commerce/loadgen"])
def test_callers_outside_the_matrix_are_refused(inventory, caller):
    """README "Who may call whom": payment is reachable from cart only."""
    assert probe.call_as(inventory, caller, "payment-service-v2-1", "POST", "/payments", BAD_PAYMENT).status == 403


def test_admin_paths_are_refused_even_to_allowed_callers(inventory):
    answer = probe.call_as(inventory, "e-commerce/api-gateway", "catalog-service-1", "GET", "/admin/faults")
    assert answer.status == 403
    assert probe.call_as(inventory, "e-commerce/api-gateway", "catalog-service-1", "GET", "/products").status == 200


def test_the_admin_port_is_reached_directly_and_through_no_proxy(mesh, inventory):
    """issue 9's admin port, here as in a pod: each app answers /admin/faults on its admin port, reached directly
    (like `kubectl port-forward`), and 404 on its business port; no listener of any proxy is bound to an admin
    port and no cluster of any proxy sends to one, so no route of the mesh can lead there."""
    apps = [w for w in inventory.workloads() if w["service"] != "loadgen" and w["app_admin"]]
    assert {w["service"] for w in apps} == {"api-gateway", "cart-service", "catalog-service", "notification-service",
                                            "payment-service"}
    admin_ports = set()
    for entry in apps:
        assert "error_rate" in requests.get(entry["app_admin"] + "/admin/faults", timeout=5).json()
        assert requests.get(f"http://{entry['app']}/admin/faults", timeout=5).status_code == 404
        admin_ports.add(int(entry["app_admin"].rsplit(":", 1)[1]))
    for folder in mesh.layout.proxies_dir.iterdir():
        delivered = "".join((folder / name).read_text() for name in ("lds.json", "cds.json"))
        used = {int(port) for port in re.findall(r'"port_value": (\d+)', delivered)}
        assert not used & admin_ports, (folder.name, used & admin_ports)


def test_plaintext_to_a_strict_inbound_gets_no_http_answer(inventory):
    answer = probe.call_as(inventory, None, "payment-service-v1-1", "GET", "/health")
    assert answer.status is None and answer.error, answer


def test_the_server_certificate_names_the_workloads_spiffe_id(inventory):
    answer = probe.call_as(inventory, "e-commerce/cart-service", "payment-service-v2-1", "GET", "/health")
    assert answer.status == 200
    assert answer.peer_ids == ("spiffe://cluster.local/ns/e-commerce/sa/payment-service",)


def test_the_app_sees_who_called_it(inventory, mesh):
    """The inbound sidecar appends the caller's identity to x-forwarded-client-cert, as Istio's does."""
    marker = "who-called-me"
    probe.call_as(inventory, "e-commerce/cart-service", "payment-service-v2-1", "GET", "/health",
                  headers={"x-request-id": marker})
    logged = probe.wait_for_log(mesh.logs_dir / "payment-service-v2-1.access.log", lambda e: e["request_id"] == marker)
    assert logged and logged[0]["direction"] == "inbound"
    assert logged[0]["peer_identity"] == "spiffe://cluster.local/ns/e-commerce/sa/cart-service"


def redis_ping(inventory, account: str, workload: str) -> bytes:
    """PING over mTLS with `account`'s certificate, straight to a Redis sidecar's inbound listener: what that
    account's sidecar would send if its app called this Redis."""
    import socket
    import ssl

    identity = inventory.identity(account)
    context = ssl.create_default_context(cafile=inventory.root_certificate)
    context.check_hostname = False
    context.load_cert_chain(identity["certificate"], identity["key"])
    host, port = inventory.workload(workload)["sidecar_inbound"].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        with context.wrap_socket(raw) as tls:
            tls.sendall(b"PING\r\n")
            try:
                return tls.recv(64)
            except (ConnectionError, ssl.SSLError):
                return b""


@pytest.mark.parametrize("workload, client, others", [
    ("redis-1", "e-commerce/cart-service", ["e-commerce/payment-service", "e-commerce/catalog-service"]),
    ("payment-ledger-1", "e-commerce/payment-service", ["e-commerce/cart-service", "e-commerce/api-gateway"]),
])
def test_each_redis_accepts_only_its_own_client(inventory, workload, client, others):
    """README "Who may call whom": cart's Redis is cart's, payment-ledger is payment's. A TCP port: only the port
    and the caller can be matched. The client's identity gets Redis' answer; another identity's connection is
    closed by the network RBAC filter before Redis sees a byte (payment cannot reach cart's Redis, cart cannot
    reach the ledger)."""
    assert redis_ping(inventory, client, workload).startswith(b"+PONG")
    for other in others:
        assert redis_ping(inventory, other, workload) == b"", other


def test_each_app_has_an_outbound_listener_only_for_its_own_redis(inventory):
    """No iptables here: an app reaches only what its sidecar listens for, and the settings name one Redis each."""
    def neighbours(service: str) -> set[str]:
        return {o["service"] for w in inventory.workloads(service) for o in w["outbound"]}

    assert "redis" in neighbours("cart-service") and "payment-ledger" not in neighbours("cart-service")
    assert "payment-ledger" in neighbours("payment-service") and "redis" not in neighbours("payment-service")
    ledger = inventory.workload("payment-ledger-1")
    assert ledger["mtls"] == "STRICT" and ledger["sidecar_inbound"].endswith(str(6380 + inventory.data["port_offset"]))


def test_identities_are_short_lived_and_issued_by_the_local_ca(inventory):
    from cryptography import x509

    for account, identity in inventory.data["identities"].items():
        cert = x509.load_pem_x509_certificate(open(identity["certificate"], "rb").read())
        lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [identity["spiffe_id"]]
        assert lifetime.total_seconds() <= 25 * 3600, account
    assert "istio-system/istio-ingressgateway-service-account" in inventory.data["identities"]
    assert "e-commerce/default" in inventory.data["identities"]
