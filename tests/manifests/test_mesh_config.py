"""Mesh settings the CRDs accept as free strings: Istio gateway selector and tracing provider, Linkerd annotations
(keys and value formats), Servers that would speak HTTP/2 to our HTTP/1 apps."""
from __future__ import annotations

from tests.manifests.manifest_copy import matching

from tools.manifestcheck.mesh_config import LINKERD_ANNOTATIONS, is_duration


def named(name):
    return lambda d: d["metadata"]["name"] == name


def test_istio_gateway_selector_other_than_the_demo_ingress_fails(tree_copy):
    rel, _ = tree_copy.edit("Gateway", lambda d: d["spec"].update(selector={"app": "istio-ingressgateway-v2"}), folder="istio/")
    assert matching(tree_copy.check("mesh"), rel, "Gateway/shop-gateway", "is not {'istio': 'ingressgateway'}")


def test_istio_tracing_provider_other_than_jaeger_fails(tree_copy):
    rel, _ = tree_copy.edit("Telemetry", lambda d: d["spec"]["tracing"][0]["providers"][0].update(name="zipkin"), folder="istio/")
    assert matching(tree_copy.check("mesh"), rel, "Telemetry/mesh-default", "tracing[0] provider 'zipkin'")


def test_unknown_linkerd_annotation_keys_fail(tree_copy):
    def misspell(route):
        annotations = route["metadata"]["annotations"]
        annotations["retry.linkerd.io/limits"] = annotations.pop("retry.linkerd.io/limit")
        annotations["timeout.linkerd.io/requests"] = "3s"

    rel, _ = tree_copy.edit("HTTPRoute", misspell, folder="linkerd/", where=named("catalog-service-reads"))
    tree_copy.edit("Service", lambda d: d["metadata"].setdefault("annotations", {}).update(
        {"balancer.linkerd.io/failure-accrual-consecutive-max-failure": "3"}), folder="kubernetes/", where=named("cart-service"))
    problems = tree_copy.check("mesh")
    for key in ("retry.linkerd.io/limits", "timeout.linkerd.io/requests"):
        assert matching(problems, rel, "HTTPRoute/catalog-service-reads", f"annotation {key} is not one Linkerd 2.20 reads"), problems
    assert matching(problems, "Service/cart-service", "failure-accrual-consecutive-max-failure is not one"), problems


def test_linkerd_annotation_values_in_the_wrong_format_fail(tree_copy):
    tree_copy.edit("HTTPRoute", lambda d: d["metadata"]["annotations"].update({
        "retry.linkerd.io/http": "5xx,reset", "retry.linkerd.io/limit": "two", "retry.linkerd.io/timeout": "1.5s",
        "timeout.linkerd.io/request": "3"}), folder="linkerd/", where=named("cart-service-reads"))
    tree_copy.edit("Service", lambda d: d["metadata"].setdefault("annotations", {}).update({
        "balancer.linkerd.io/failure-accrual": "consecutive",
        "balancer.linkerd.io/failure-accrual-consecutive-jitter-ratio": "150",
        "balancer.linkerd.io/failure-accrual-consecutive-min-penalty": "2m",
        "balancer.linkerd.io/failure-accrual-consecutive-max-penalty": "30s"}),
        folder="kubernetes/", where=named("catalog-service"))
    problems = tree_copy.check("mesh")
    route = matching(problems, "HTTPRoute/cart-service-reads")
    assert matching(route, "retry.linkerd.io/http: '5xx,reset' is not comma-separated 5xx, gateway-error"), route
    assert matching(route, "retry.linkerd.io/limit: 'two' is not an integer"), route
    assert matching(route, "retry.linkerd.io/timeout: '1.5s' is not a duration"), route
    assert matching(route, "timeout.linkerd.io/request: '3' is not a duration"), route
    service = matching(problems, "Service/catalog-service")
    assert matching(service, "jitter-ratio: '150' is not a number from 0 to 100"), service
    assert matching(service, "min-penalty 120s must be at most max-penalty 30s"), service


def test_linkerd_annotation_on_a_kind_that_does_not_read_it_fails(tree_copy):
    tree_copy.edit("HTTPRoute", lambda d: d["metadata"]["annotations"].update({"balancer.linkerd.io/failure-accrual": "consecutive"}),
                   folder="linkerd/", where=named("cart-service-reads"))
    tree_copy.edit("Deployment", lambda d: d["spec"]["template"]["metadata"]["annotations"].update({"retry.linkerd.io/http": "5xx"}),
                   folder="kubernetes/", where=named("cart-service"))
    tree_copy.edit("HTTPRoute", lambda d: d["metadata"].setdefault("annotations", {}).update({"timeout.linkerd.io/request": "3s"}),
                   folder="linkerd/", where=named("cart-service-api"))
    problems = tree_copy.check("mesh")
    assert matching(problems, "HTTPRoute/cart-service-reads", "failure-accrual is read only on Service"), problems
    assert matching(problems, "HTTPRoute/cart-service-api", "attached to a Server, so it is ignored"), problems
    assert matching(problems, "Deployment/cart-service", "pod template annotation retry.linkerd.io/http is read only on"), problems


def test_linkerd_duration_and_key_list_follow_the_policy_controller():
    assert all(is_duration(v) for v in ("0", "500ms", "3s", "1m", "2h", "1d"))
    assert not any(is_duration(v) for v in ("3", "1.5s", "-1s", "3 s", "1us", ""))
    assert set(LINKERD_ANNOTATIONS) == {
        "retry.linkerd.io/http", "retry.linkerd.io/grpc", "retry.linkerd.io/limit", "retry.linkerd.io/timeout",
        "timeout.linkerd.io/request", "timeout.linkerd.io/response", "timeout.linkerd.io/idle",
        "balancer.linkerd.io/failure-accrual", "balancer.linkerd.io/failure-accrual-consecutive-max-failures",
        "balancer.linkerd.io/failure-accrual-consecutive-min-penalty",
        "balancer.linkerd.io/failure-accrual-consecutive-max-penalty",
        "balancer.linkerd.io/failure-accrual-consecutive-jitter-ratio"}


def test_linkerd_server_with_http2_in_front_of_an_http1_app_fails(tree_copy):
    rel, _ = tree_copy.edit("Server", lambda d: d["spec"].update(proxyProtocol="HTTP/2"), folder="linkerd/",
                            where=named("cart-service-http"))
    assert matching(tree_copy.check("mesh"), rel, "Server/cart-service-http", "proxyProtocol HTTP/2 in front of our HTTP/1 apps")


def test_failure_accrual_in_a_kustomize_patch_is_checked_too(tree_copy):
    rel = "linkerd/patches/failure-accrual.yaml"
    docs = tree_copy.docs(rel)
    docs[0]["metadata"]["annotations"]["balancer.linkerd.io/failure-accrual"] = "consecutive-failures"
    tree_copy.write_docs(rel, docs)
    assert matching(tree_copy.check("mesh"), rel, "balancer.linkerd.io/failure-accrual: 'consecutive-failures' is not consecutive")


def admin_server_with_routes(tree_copy, probe_route: bool):
    """A Linkerd Server for catalog's admin port (where the kubelet probes) with an /admin route and maybe a probe
    route open to any network."""
    rel = "linkerd/authorization.yaml"
    docs = tree_copy.docs(rel)
    meta = {"namespace": "e-commerce"}
    docs.append({"apiVersion": "policy.linkerd.io/v1beta3", "kind": "Server",
                 "metadata": {"name": "catalog-service-admin-port", **meta},
                 "spec": {"podSelector": {"matchLabels": {"app": "catalog-service"}}, "port": "admin",
                          "proxyProtocol": "HTTP/1"}})
    parent = [{"group": "policy.linkerd.io", "kind": "Server", "name": "catalog-service-admin-port"}]
    docs.append({"apiVersion": "policy.linkerd.io/v1beta3", "kind": "HTTPRoute",
                 "metadata": {"name": "catalog-service-admin-only", **meta},
                 "spec": {"parentRefs": parent, "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}]}]}})
    if probe_route:
        docs.append({"apiVersion": "policy.linkerd.io/v1beta3", "kind": "HTTPRoute",
                     "metadata": {"name": "catalog-service-admin-probes", **meta},
                     "spec": {"parentRefs": parent, "rules": [{"matches": [
                         {"path": {"type": "Exact", "value": "/health"}, "method": "GET"},
                         {"path": {"type": "Exact", "value": "/ready"}, "method": "GET"}]}]}})
        docs.append({"apiVersion": "policy.linkerd.io/v1alpha1", "kind": "AuthorizationPolicy",
                     "metadata": {"name": "catalog-service-admin-probes", **meta},
                     "spec": {"targetRef": {"group": "policy.linkerd.io", "kind": "HTTPRoute",
                                            "name": "catalog-service-admin-probes"},
                              "requiredAuthenticationRefs": [{"group": "policy.linkerd.io",
                                                              "kind": "NetworkAuthentication", "name": "any-network"}]}})
    tree_copy.write_docs(rel, docs)
    return rel


def test_a_linkerd_server_with_routes_on_the_probed_port_denies_the_kubelet(tree_copy):
    rel = admin_server_with_routes(tree_copy, probe_route=False)
    problems = tree_copy.check("mesh")
    for path in ("/health", "/ready"):
        assert matching(problems, rel, "Server/catalog-service-admin-port",
                        f"Deployment/catalog-service is probed at {path} on port 8090"), problems


def test_a_probe_route_open_to_any_network_keeps_the_probes_authorized(tree_copy):
    admin_server_with_routes(tree_copy, probe_route=True)
    assert not matching(tree_copy.check("mesh"), "is probed at")
