"""The Linkerd front end and the Envoy it generates, without starting anything: every configuration passes
`envoy --mode validate` (the real binary); HTTPRoutes, annotations, failure accrual and policies translate with
Linkerd's semantics (linkerd2 version-2.20, linkerd2-proxy v2.359.0, the sources named in devstack/mesh/linkerd/);
fields outside the subset are named in warnings, configurations Linkerd would answer with errors are refused."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cryptography import x509

from devstack.mesh import control
from devstack.mesh.intent import StringMatch
from devstack.mesh.manifests import MeshConfigError
from devstack.mesh.runtime import find_envoy

ROOT = Path(__file__).resolve().parents[3]
SCENARIOS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "linkerd" / "scenarios").glob("*.yaml"))
PAYMENT = "payment-service.e-commerce.svc.cluster.local"
SPLIT = f"outbound|5003|payment-service-v1=95,payment-service-v2=5|{PAYMENT}"
PAYMENT_ROUTES = f"{PAYMENT}:5003"


def prepared(tmp_path_factory, mesh: str):
    folder = tmp_path_factory.mktemp(f"generated-{mesh}")
    layout = control.Layout(folder / "mesh", folder / "logs", mesh)
    layout.logs_dir.mkdir(parents=True)  # the access logs the configurations name
    layout.ca.ensure_root()
    tree, top = control.load_topology(ROOT, mesh)
    for account in control.accounts(top):
        layout.ca.issue(*account)
    return layout, tree, top


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    return prepared(tmp_path_factory, "linkerd")


def generate(layout, operations=()):
    lay, tree, top = layout
    return control.generate(ROOT, top, lay, list(operations), tree=tree)


def routes_of(generated, proxy: str, route_config: str) -> list[dict]:
    return generated.proxies[proxy].routes[route_config]["virtual_hosts"][0]["routes"]


def cluster_of(generated, proxy: str, name: str) -> dict:
    return next(c for c in generated.proxies[proxy].clusters if c["name"] == name)


def scenario_file(tmp_path: Path, docs: list[dict]) -> str:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return str(path)


def overlay_doc(file: str, kind: str, name: str) -> dict:
    return next(d for d in yaml.safe_load_all((ROOT / file).read_text()) if d and d["kind"] == kind
                and d["metadata"]["name"] == name)


@pytest.mark.parametrize("operations", [[]] + [[("apply", s)] for s in SCENARIOS],
                         ids=["linkerd/"] + [Path(s).stem for s in SCENARIOS])
def test_every_generated_configuration_passes_envoy_validate(layout, operations):
    generated = generate(layout, operations)
    assert control.validate(generated.proxies, find_envoy()) == {}
    assert generated.intent.mesh == "linkerd"


def test_payment_routes_are_linkerds_reads_and_default_in_its_precedence(layout):
    """routes.yaml: payment-service-reads (GET, HEAD) carries retry.linkerd.io 5xx / limit 2 / timeout 1s, the
    default route none; both 3 s and the 95/5 split. The method match outranks the "/" prefix (linkerd/http/route:
    same path length, a method match wins)."""
    routes = routes_of(generate(layout), "cart-service-1", PAYMENT_ROUTES)
    assert [r["name"] for r in routes] == ["payment-service-reads.match0", "payment-service-reads.match1",
                                           "payment-service-default"]
    reads, default = routes[0], routes[2]
    assert reads["match"]["headers"] == [{"name": ":method", "string_match": {"exact": "GET"}}]
    retry = reads["route"]["retry_policy"]
    assert retry["num_retries"] == 2 and retry["per_try_timeout"] == "1.000s"
    assert retry["retriable_status_codes"] == list(range(500, 600))
    assert retry["retry_on"] == "retriable-status-codes,reset"  # a try cut at 1 s is retried, as the proxy does
    assert "retry_host_predicate" not in retry  # a retry goes back through the balancer, like linkerd2-proxy's
    assert reads["request_body_buffer_limit"] == 64 * 1024  # convert_retry: max_request_bytes
    assert "retry_policy" not in default["route"] and "request_body_buffer_limit" not in default
    assert {r["route"]["timeout"] for r in routes} == {"3.000s"}
    assert {r["route"]["cluster"] for r in routes} == {SPLIT}


def test_the_split_is_one_pool_a_locality_per_backend_under_the_parents_accrual(layout):
    """RandomAvailable over two balancers: one cluster, a locality per backend weighted 95/5, availability all or
    nothing per backend (overprovisioning), and payment-service's failure accrual (patches/failure-accrual.yaml:
    5 failures, 10 s to 1 min, jitter 0.5) on every endpoint; no panic mode, every endpoint may trip."""
    cluster = cluster_of(generate(layout), "cart-service-1", SPLIT)
    localities = cluster["load_assignment"]["endpoints"]
    assert [(lo["locality"]["zone"], lo["load_balancing_weight"], len(lo["lb_endpoints"])) for lo in localities] == [
        ("payment-service-v1", 95, 2), ("payment-service-v2", 5, 1)]
    assert cluster["load_assignment"]["policy"]["overprovisioning_factor"] >= 100 * 100
    assert cluster["common_lb_config"] == {"locality_weighted_lb_config": {}, "healthy_panic_threshold": {"value": 0.0}}
    assert cluster["outlier_detection"] == {
        "enforcing_success_rate": 0, "consecutive_5xx": 5, "enforcing_consecutive_5xx": 100, "interval": "1.000s",
        "base_ejection_time": "10.000s", "max_ejection_time": "60.000s", "max_ejection_time_jitter": "5.000s",
        "max_ejection_percent": 100}


def test_the_difference_istio_keeps_a_pool_per_subset(layout, tmp_path_factory):
    """The same intent under istio/: weighted_clusters over two clusters, each ejecting on its own, so a v2 pool
    with its only endpoint out answers its 5% with 503; under linkerd/ the split is the one pool above."""
    lay, tree, top = prepared(tmp_path_factory, "istio")
    istio = control.generate(ROOT, top, lay, [], tree=tree)
    writes = routes_of(istio, "cart-service-1", PAYMENT_ROUTES)[-1]
    assert [(c["name"], c["weight"]) for c in writes["route"]["weighted_clusters"]["clusters"]] == [
        (f"outbound|5003|v1|{PAYMENT}", 95), (f"outbound|5003|v2|{PAYMENT}", 5)]
    v2 = cluster_of(istio, "cart-service-1", f"outbound|5003|v2|{PAYMENT}")
    assert len(v2["load_assignment"]["endpoints"][0]["lb_endpoints"]) == 1 and "outlier_detection" in v2
    linkerd_clusters = [c["name"] for c in generate(layout).proxies["cart-service-1"].clusters if "5003" in c["name"]]
    assert linkerd_clusters == [SPLIT]


def test_identities_are_linkerds_dns_names_issued_by_an_issuer_under_the_trust_anchor(layout):
    lay, _, _ = layout
    identity = lay.ca.identity("e-commerce", "payment-service")
    chain = x509.load_pem_x509_certificates(identity.cert.read_bytes())
    leaf, issuer = chain
    anchor = x509.load_pem_x509_certificate(lay.ca.cert_path.read_bytes())
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [
        "payment-service.e-commerce.serviceaccount.identity.linkerd.cluster.local"]
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == []
    assert leaf.issuer == issuer.subject and issuer.issuer == anchor.subject
    assert issuer.subject.rfc4514_string() == "CN=identity.linkerd.cluster.local"
    assert "CN=root.linkerd.cluster.local" in anchor.subject.rfc4514_string()
    assert (leaf.not_valid_after_utc - leaf.not_valid_before_utc).total_seconds() <= 25 * 3600


def test_the_ingress_is_an_unmeshed_l4_load_balancer(layout):
    """Linkerd ships no ingress: in front of api-gateway stands an unmeshed load balancer, plaintext to its proxy
    (so authorization.yaml's NetworkAuthentication `ingress` is what admits the public)."""
    files = generate(layout).proxies["ingress"]
    (listener,) = files.listeners
    assert listener["filter_chains"][0]["filters"][0]["name"] == "envoy.filters.network.tcp_proxy"
    (cluster,) = files.clusters
    assert cluster["name"] == "outbound|5000||api-gateway.e-commerce.svc.cluster.local"
    assert "transport_socket_matches" not in cluster


def test_payments_inbound_routes_follow_linkerds_precedence_with_their_own_policies(layout):
    """Server payment-service-http with four routes: GET /metrics and the probes (exact paths, any network),
    /admin (longer prefix, no policy: refused), the API "/" for cart's identity only."""
    generated = generate(layout)
    listener = generated.proxies["payment-service-v1-1"].listeners[0]
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
    assert [r["name"] for r in routes] == ["payment-service-metrics", "payment-service-probes.match0",
                                           "payment-service-probes.match1", "payment-service-admin",
                                           "payment-service-api"]
    assert routes[3]["match"]["path_separated_prefix"] == "/admin"

    def rules(route):
        return route["typed_per_filter_config"]["linkerd.authorization.allow"]["rbac"]["rules"]
    assert rules(routes[3]) == {"action": "ALLOW", "policies": {}}  # no AuthorizationPolicy: nobody
    (api,) = rules(routes[4])["policies"].values()
    assert api["principals"][0]["and_ids"]["ids"] == [{"authenticated": {}}, {"or_ids": {"ids": [
        {"authenticated": {"principal_name": {
            "exact": "cart-service.e-commerce.serviceaccount.identity.linkerd.cluster.local"}}}]}}]
    replies = {m["filter"]["status_code_filter"]["comparison"]["value"]["default_value"]: m["headers_to_add"][0]["header"]
               for m in hcm["local_reply_config"]["mappers"]}
    assert replies == {403: {"key": "l5d-proxy-error", "value": "unauthorized request on route"},
                       404: {"key": "l5d-proxy-error", "value": "no route found for request"}}
    assert [c.get("filter_chain_match", {}).get("transport_protocol") for c in listener["filter_chains"]] == [
        "tls", "raw_buffer"]  # the proxy takes meshed and plaintext callers alike; policy decides


def test_an_opaque_server_checks_the_connection(layout):
    """Redis' Server is opaque: its policy is a network RBAC filter on the connection (refused, not 403)."""
    listener = generate(layout).proxies["redis-1"].listeners[0]
    names = [f["name"] for f in listener["filter_chains"][0]["filters"]]
    assert names == ["linkerd.authorization.allow", "envoy.filters.network.tcp_proxy"]


def test_the_namespace_default_policy_applies_where_no_server_is(layout, tmp_path):
    """Without payment's Server (deleted), its port falls back to the namespace's default-inbound-policy: deny."""
    path = scenario_file(tmp_path, [overlay_doc("linkerd/authorization.yaml", "Server", "payment-service-http")])
    generated = generate(layout, [("delete", path)])
    port = generated.intent.inbound["payment-service-v1-1"][0]
    assert [(r.name, r.allow) for r in port.routes] == [("default", [])]


def test_service_annotations_are_the_routes_defaults(layout, tmp_path):
    """A Service's retry.linkerd.io/* and timeout.linkerd.io/* apply to its routes that set none (the reads
    route keeps its own); a route without HTTPRoutes gets a default route with the Service's settings."""
    service = overlay_doc("kubernetes/notification-service.yaml", "Service", "notification-service")
    service["metadata"]["annotations"] = {"timeout.linkerd.io/request": "7s", "retry.linkerd.io/http": "503"}
    generated = generate(layout, [("apply", scenario_file(tmp_path, [service]))])
    routes = {r.name: r for r in generated.intent.traffic[("notification-service", 5004)].routes}
    assert routes["notification-service-reads"].retry.retriable_status_codes == tuple(range(500, 600))
    assert routes["notification-service-default"].timeout_s == 3.0  # its own annotation
    assert routes["notification-service-default"].retry.retriable_status_codes == (503,)


def test_fields_outside_the_subset_are_named(layout, tmp_path):
    route = overlay_doc("linkerd/routes.yaml", "HTTPRoute", "catalog-service-default")
    route["metadata"]["annotations"]["timeout.linkerd.io/response"] = "1s"
    route["spec"]["hostnames"] = ["catalog.example"]
    route["spec"]["rules"][0]["filters"] = [{"type": "RequestHeaderModifier"}]
    profile = {"apiVersion": "linkerd.io/v1alpha2", "kind": "ServiceProfile",
               "metadata": {"name": "catalog-service.e-commerce.svc.cluster.local", "namespace": "e-commerce"},
               "spec": {"routes": []}}
    warnings = [str(w) for w in generate(layout, [("apply", scenario_file(tmp_path, [route, profile]))]).intent.warnings]
    where = f"{tmp_path / 'scenario.yaml'} HTTPRoute/catalog-service-default"
    assert any(w.startswith(f"{where} metadata.annotations.timeout.linkerd.io/response: ignored") for w in warnings)
    assert any(w.startswith(f"{where} spec.hostnames: ignored") for w in warnings)
    assert any(w.startswith(f"{where} spec.rules[0].filters: ignored") for w in warnings)
    assert any("ServiceProfile/" in w and "overrides a Service's HTTPRoutes" in w for w in warnings)


def test_a_backend_linkerd_would_fail_is_refused_with_its_reason(layout, tmp_path):
    route = overlay_doc("linkerd/routes.yaml", "HTTPRoute", "payment-service-default")
    route["spec"]["rules"][0]["backendRefs"][1]["name"] = "payment-service-v3"
    with pytest.raises(MeshConfigError, match=r"HTTPRoute/payment-service-default spec.rules\[0\].backendRefs\[1\]: "
                                              r"Service 'payment-service-v3' is defined neither"):
        generate(layout, [("apply", scenario_file(tmp_path, [route]))])


def test_a_duration_linkerd_refuses_is_refused(layout, tmp_path):
    route = overlay_doc("linkerd/routes.yaml", "HTTPRoute", "catalog-service-default")
    route["metadata"]["annotations"]["timeout.linkerd.io/request"] = "1.5s"  # parse_duration: no fractions
    with pytest.raises(MeshConfigError, match="not a duration Linkerd accepts"):
        generate(layout, [("apply", scenario_file(tmp_path, [route]))])


def payment_callers(generated) -> list:
    """The peers payment-service-api lets in on payment v1 (its AuthorizationPolicy payment-service-callers)."""
    route = next(r for r in generated.intent.inbound["payment-service-v1-1"][0].routes if r.name == "payment-service-api")
    return [peer for policy in route.allow if policy.name == "payment-service-callers"
            for rule in policy.rules for peer in rule.peers]


def test_a_star_among_identities_takes_every_meshed_client(layout, tmp_path):
    """IdentityMatch `*` is Suffix([]): every meshed client, whatever else the list names (not only the others)."""
    callers = overlay_doc("linkerd/authorization.yaml", "MeshTLSAuthentication", "payment-service-callers")
    callers["spec"] = {"identities": ["*", "cart-service.e-commerce.serviceaccount.identity.linkerd.cluster.local"]}
    [peer] = payment_callers(generate(layout, [("apply", scenario_file(tmp_path, [callers]))]))
    assert peer.authenticated and peer.principals == ()


def test_a_service_account_ref_named_star_is_one_exact_identity(layout, tmp_path):
    """meshtls_authentication.rs: an identityRef ServiceAccount is service_account_identity(ns, name), an Exact
    match, even for `*` (it matches no client); only `identities: ["*"]` means every meshed client."""
    callers = overlay_doc("linkerd/authorization.yaml", "MeshTLSAuthentication", "payment-service-callers")
    callers["spec"] = {"identityRefs": [{"kind": "ServiceAccount", "name": "*"}]}
    [peer] = payment_callers(generate(layout, [("apply", scenario_file(tmp_path, [callers]))]))
    assert peer.principals == (StringMatch("exact", "*.e-commerce.serviceaccount.identity.linkerd.cluster.local"),)


def test_a_meshtls_authentication_linkerd_refuses_leaves_its_policy_out(layout, tmp_path):
    """No identities at all ("No identities configured"): Linkerd ignores the resource and so the policy that
    names it; nobody gets in through that policy (not: every meshed client)."""
    callers = overlay_doc("linkerd/authorization.yaml", "MeshTLSAuthentication", "payment-service-callers")
    callers["spec"] = {"identities": []}
    generated = generate(layout, [("apply", scenario_file(tmp_path, [callers]))])
    assert payment_callers(generated) == []
    assert any("MeshTLSAuthentication/payment-service-callers spec: no identities configured" in str(w)
               for w in generated.intent.warnings)


NOT_NUMBERS = [  # (file, kind, name, where the bad value goes, the field the refusal names)
    ("linkerd/patches/failure-accrual.yaml", "Service", "catalog-service",
     ("metadata", "annotations", "balancer.linkerd.io/failure-accrual-consecutive-max-failures"), "five",
     "failure-accrual-consecutive-max-failures"),
    ("linkerd/patches/failure-accrual.yaml", "Service", "catalog-service",
     ("metadata", "annotations", "balancer.linkerd.io/failure-accrual-consecutive-jitter-ratio"), "half",
     "failure-accrual-consecutive-jitter-ratio"),
    ("linkerd/routes.yaml", "HTTPRoute", "catalog-service-reads", ("metadata", "annotations", "retry.linkerd.io/limit"),
     "-1", "retry.linkerd.io/limit"),  # parse::<u16>
    ("linkerd/patches/failure-accrual.yaml", "Service", "catalog-service",
     ("metadata", "annotations", "config.linkerd.io/opaque-ports"), "redis", "config.linkerd.io/opaque-ports"),
    ("linkerd/authorization.yaml", "Server", "payment-service-http", ("spec", "accessPolicy"), "allow-all",
     "spec.accessPolicy"),
]


@pytest.mark.parametrize("file,kind,name,path,value,field", NOT_NUMBERS, ids=[n[-1] for n in NOT_NUMBERS])
def test_a_value_linkerd_cannot_parse_is_refused_with_its_field(layout, tmp_path, file, kind, name, path, value, field):
    """Refused with the file, resource and field (MeshConfigError, which ./run-local.sh prints as one line), not
    a ValueError or KeyError out of int(), float() or a table."""
    doc = overlay_doc(file, kind, name)
    if kind == "Service" and "spec" not in doc:  # a patch: the base object with the patch's annotations
        doc = {**overlay_doc(f"kubernetes/{name}.yaml", kind, name), "metadata": doc["metadata"]}
    node = doc
    for step in path[:-1]:
        node = node.setdefault(step, {})
    node[path[-1]] = value
    with pytest.raises(MeshConfigError, match=rf"{kind}/{name} .*{field}: {value!r} is not"):
        generate(layout, [("apply", scenario_file(tmp_path, [doc]))])


def test_the_circuit_breaker_scenario_replaces_catalogs_accrual(layout):
    generated = generate(layout, [("apply", "linkerd/scenarios/circuit-breaker.yaml")])
    detection = cluster_of(generated, "api-gateway-1", "outbound|5001||catalog-service.e-commerce.svc.cluster.local")
    assert detection["outlier_detection"]["consecutive_5xx"] == 3
    assert detection["outlier_detection"]["base_ejection_time"] == detection["outlier_detection"]["max_ejection_time"] \
        == "30.000s"
    assert "max_ejection_time_jitter" not in detection["outlier_detection"]


def test_the_fault_injection_scenario_deploys_its_workload_and_routes_one_user_to_it(layout):
    plain = generate(layout)
    assert not plain.intent.runs("payment-fault-1")
    generated = generate(layout, [("apply", "linkerd/scenarios/fault-injection.yaml")])
    assert generated.intent.runs("payment-fault-1")
    first = routes_of(generated, "cart-service-1", PAYMENT_ROUTES)[0]
    assert first["name"] == "payment-service-fault-demo"  # method + header: the most specific match
    assert first["route"]["cluster"] == f"outbound|5003|payment-fault=1|{PAYMENT}"
    assert first["match"]["headers"] == [{"name": "x-user", "string_match": {"exact": "fault-demo"}},
                                         {"name": ":method", "string_match": {"exact": "POST"}}]


def test_a_ports_app_protocol_wins_over_the_opaque_ports_list(layout, tmp_path):
    """outbound/index.rs: an appProtocol on the Service port decides, the opaque-ports list only where there is
    none (AppProtocol: `http` is HTTP/1, `linkerd.io/opaque` or any unknown value opaque)."""
    catalog = overlay_doc("kubernetes/catalog-service.yaml", "Service", "catalog-service")  # appProtocol: http
    catalog["metadata"]["annotations"] = {"config.linkerd.io/opaque-ports": "5001"}
    notification = overlay_doc("kubernetes/notification-service.yaml", "Service", "notification-service")
    notification["spec"]["ports"][0]["appProtocol"] = "linkerd.io/opaque"
    generated = generate(layout, [("apply", scenario_file(tmp_path, [catalog, notification]))])
    assert generated.intent.traffic[("catalog-service", 5001)].protocol == "http"
    assert generated.intent.traffic[("notification-service", 5004)].protocol == "tcp"
    assert control.validate(generated.proxies, find_envoy()) == {}


def test_any_timeout_annotation_of_a_route_keeps_the_services_timeouts_away(layout, tmp_path):
    """reference/timeouts: "If any timeout configuration annotations are present on a route resource, they
    override all timeout configuration annotations on the parent Service" (convert_outbound_route: only a rule
    whose timeouts are all unset takes the Service's). A route with timeout.linkerd.io/response alone (not
    reproduced here) therefore has no request timeout, not the Service's 7 s."""
    service = overlay_doc("kubernetes/notification-service.yaml", "Service", "notification-service")
    service["metadata"]["annotations"] = {"timeout.linkerd.io/request": "7s"}
    route = overlay_doc("linkerd/routes.yaml", "HTTPRoute", "notification-service-default")
    route["metadata"]["annotations"] = {"timeout.linkerd.io/response": "1s"}
    generated = generate(layout, [("apply", scenario_file(tmp_path, [service, route]))])
    routes = {r.name: r for r in generated.intent.traffic[("notification-service", 5004)].routes}
    assert routes["notification-service-default"].timeout_s is None
    assert routes["notification-service-reads"].timeout_s == 3.0  # its own annotation


def test_an_istio_file_applied_to_the_linkerd_mesh_is_named_not_silently_ignored(layout):
    """istio/scenarios/canary-50-50.yaml under --mesh linkerd: nothing of it is read, and the warning says so
    (before, the apply reported no change and no warning)."""
    warnings = [str(w) for w in generate(layout, [("apply", "istio/scenarios/canary-50-50.yaml")]).intent.warnings]
    assert any(w.startswith("istio/scenarios/canary-50-50.yaml VirtualService/payment-service: an Istio resource")
               for w in warnings), warnings


@pytest.mark.parametrize("conditions, codes", [
    ("5XX", tuple(range(500, 600))), ("gateway-error,429", (429, 502, 503, 504)), ("500-502", (500, 501, 502)),
    ("5xx, 429", None), ("500-", None), ("5xx,", None)])
def test_retry_conditions_parse_as_the_controller_parses_them(layout, tmp_path, conditions, codes):
    """parse_http_retry: split on "," with no trimming, each part 5xx / gateway-error (any case), a code or a
    range a-b; anything else fails the whole route in Linkerd ("invalid retry condition"), refused here."""
    route = overlay_doc("linkerd/routes.yaml", "HTTPRoute", "catalog-service-reads")
    route["metadata"]["annotations"]["retry.linkerd.io/http"] = conditions
    path = scenario_file(tmp_path, [route])
    if codes is None:
        with pytest.raises(MeshConfigError, match="invalid retry condition"):
            generate(layout, [("apply", path)])
        return
    routes = generate(layout, [("apply", path)]).intent.traffic[("catalog-service", 5001)].routes
    assert next(r for r in routes if r.name == "catalog-service-reads").retry.retriable_status_codes == codes


def test_a_backend_whose_workload_the_local_mesh_does_not_run_is_refused(layout, tmp_path):
    """fault-injection.yaml renamed (Service, Deployment and route to payment-extra) and applied from outside
    linkerd/scenarios/: its Deployment has no planned instance, so the route is refused with its file and name
    (before: a TopologyError stack trace out of the Envoy builder)."""
    text = (ROOT / "linkerd/scenarios/fault-injection.yaml").read_text().replace("payment-fault", "payment-extra")
    path = tmp_path / "extra.yaml"
    path.write_text(text)
    with pytest.raises(MeshConfigError, match=r"HTTPRoute/payment-service-fault-demo spec.rules: backend Service "
                                              r"'payment-extra' has no workload on the local mesh"):
        generate(layout, [("apply", str(path))])
