"""mTLS and authorization on the sidecars' inbound listeners, called the way a meshed pod's sidecar calls them:
TLS with one identity's certificate from the local CA (or plaintext, as an unmeshed pod)."""
from __future__ import annotations

import json

import pytest

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


def test_redis_accepts_only_cart(inventory):
    """A TCP port: only the port and the caller can be matched. Cart's identity gets Redis' answer; another
    identity's connection is closed by the network RBAC filter before Redis sees a byte."""
    import socket
    import ssl

    def ping(account: str) -> bytes:
        identity = inventory.identity(account)
        context = ssl.create_default_context(cafile=inventory.root_certificate)
        context.check_hostname = False
        context.load_cert_chain(identity["certificate"], identity["key"])
        host, port = inventory.workload("redis-1")["sidecar_inbound"].split(":")
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            with context.wrap_socket(raw) as tls:
                tls.sendall(b"PING\r\n")
                try:
                    return tls.recv(64)
                except (ConnectionError, ssl.SSLError):
                    return b""

    assert ping("e-commerce/cart-service").startswith(b"+PONG")
    assert ping("e-commerce/catalog-service") == b""


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
