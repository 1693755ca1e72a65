"""Linkerd's authorization on real Envoy: Servers, per-route AuthorizationPolicies with MeshTLS and Network
authentications, the namespace's default-inbound-policy deny, Linkerd's form of identities, and linkerd2-proxy's
answers: 403 with l5d-proxy-error for HTTP it denies, a refused connection on an opaque port."""
from __future__ import annotations

import json

import pytest
import requests

from devstack.mesh import probe
# The same behaviour under either mesh's files: these run here against the Linkerd stack too.
from tests.mesh.test_security import test_callers_outside_the_matrix_are_refused  # noqa: F401
from tests.mesh.test_security import test_the_allowed_caller_reaches_payment  # noqa: F401

BAD_PAYMENT = json.dumps({"order_id": "o"}).encode()  # refused by payment with 400: nothing is ever charged
DENIED = "unauthorized request on route"


def linkerd_id(account: str) -> str:
    return f"{account}.e-commerce.serviceaccount.identity.linkerd.cluster.local"


def test_an_identity_no_policy_allows_gets_linkerds_403(inventory):
    answer = probe.call_as(inventory, "e-commerce/default", "payment-service-v1-1", "POST", "/payments", BAD_PAYMENT)
    assert answer.status == 403 and answer.body == b"" and answer.headers["l5d-proxy-error"] == DENIED


def test_an_admin_route_without_a_policy_is_refused_to_everyone(inventory):
    """catalog-service-admin (/admin, no AuthorizationPolicy) outranks catalog-service-api ("/")."""
    assert probe.call_as(inventory, "e-commerce/api-gateway", "catalog-service-1", "GET", "/admin/faults").status == 403
    assert probe.call_as(inventory, "e-commerce/api-gateway", "catalog-service-1", "GET", "/products").status == 200


def test_plaintext_http_is_known_http_so_it_gets_403_not_a_reset(inventory):
    """features/server-policy: HTTP that policy denies gets 403; the API route needs a mesh identity."""
    answer = probe.call_as(inventory, None, "payment-service-v1-1", "POST", "/payments", BAD_PAYMENT)
    assert answer.status == 403 and answer.headers["l5d-proxy-error"] == DENIED


def test_probe_routes_are_open_to_any_network(inventory):
    """payment-service-probes: GET /health and /ready, NetworkAuthentication any-network (no identity)."""
    assert probe.call_as(inventory, None, "payment-service-v1-1", "GET", "/health").status == 200
    assert probe.call_as(inventory, None, "payment-service-v1-1", "POST", "/health").status == 403  # GET only


def test_a_request_no_route_matches_is_not_found(inventory):
    answer = probe.call_as(inventory, "e-commerce/api-gateway", "api-gateway-1", "GET", "/internal/x")
    assert answer.status == 404 and answer.headers["l5d-proxy-error"] == "no route found for request"


@pytest.mark.parametrize("workload, client, others", [
    ("redis-1", "e-commerce/cart-service", ["e-commerce/payment-service", None]),
    ("payment-ledger-1", "e-commerce/payment-service", ["e-commerce/cart-service", None]),
])
def test_an_opaque_port_refuses_the_connection_of_anyone_else(inventory, workload, client, others):
    """Redis' Servers are opaque (policy/tcp.rs checks the connection): their own client's PING is answered;
    another identity's, or a plaintext one (None), is closed before Redis sees a byte."""
    assert probe.tcp_exchange(inventory, client, workload).startswith(b"+PONG")
    for other in others:
        assert probe.tcp_exchange(inventory, other, workload) == b"", other


def test_the_server_certificate_names_linkerds_identity(inventory):
    answer = probe.call_as(inventory, "e-commerce/cart-service", "payment-service-v2-1", "GET", "/health")
    assert answer.status == 200 and answer.peer_ids == (linkerd_id("payment-service"),)


def test_the_app_sees_who_called_it(inventory, linkerd):
    marker = "l5d-who-called-me"
    probe.call_as(inventory, "e-commerce/cart-service", "payment-service-v2-1", "GET", "/health",
                  headers={"x-request-id": marker})
    logged = probe.wait_for_log(linkerd.logs_dir / "payment-service-v2-1.access.log",
                                lambda e: e["request_id"] == marker)
    assert logged and logged[0]["peer_identity"] == linkerd_id("cart-service")


def test_meshed_callers_go_through_in_the_whole_shop(linkerd):
    """Every hop of a checkout is a policy decision: gateway -> cart -> catalog, payment, Redis, the ledger."""
    user = "l5d-policy-shopper"
    assert requests.post(f"{linkerd.gateway_url}/api/cart/{user}/add", json={"product_id": "1", "quantity": 1},
                         timeout=10).status_code == 200
    checkout = requests.post(f"{linkerd.gateway_url}/api/cart/{user}/checkout",
                             headers={"Idempotency-Key": f"{user}-k"}, timeout=30)
    assert checkout.status_code == 201, checkout.text


def test_a_star_among_identities_lets_every_meshed_client_in(inventory, scenario, tmp_path):
    """MeshTLSAuthentication identities ["*", <cart's>]: `*` is every meshed identity (IdentityMatch::Suffix([])),
    so a caller with another identity passes payment's policy (its app answers 400 to the bad body); a plaintext
    caller is still refused."""
    callers = tmp_path / "callers.yaml"
    callers.write_text(f"""apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {{name: payment-service-callers, namespace: e-commerce}}
spec:
  identities: ["*", "{linkerd_id('cart-service')}"]
""")
    scenario(str(callers))
    answer = probe.call_as(inventory, "e-commerce/default", "payment-service-v1-1", "POST", "/payments", BAD_PAYMENT)
    assert answer.status == 400, answer
    assert probe.call_as(inventory, None, "payment-service-v1-1", "POST", "/payments", BAD_PAYMENT).status == 403
