"""The generator on its own: every configuration it makes passes `envoy --mode validate` (the real binary), it
translates the way istiod does, and it refuses or warns, naming file, resource and field, outside its subset."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from devstack.mesh import control, topology
from devstack.mesh.istio import MeshConfigError
from devstack.mesh.runtime import find_envoy

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "istio" / "scenarios").glob("*.yaml"))
PAYMENT = "payment-service.e-commerce.svc.cluster.local"


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    folder = tmp_path_factory.mktemp("generated")
    layout = control.Layout(folder / "mesh", folder / "logs")
    layout.logs_dir.mkdir(parents=True)  # the access logs the configurations name
    layout.ca.ensure_root()
    tree, top = topology.load(ROOT)
    for account in control.accounts(top):
        layout.ca.issue(*account)
    return layout, tree, top


def generate(layout, operations=()):
    lay, tree, top = layout
    return control.generate(ROOT, top, lay, list(operations), tree=tree)


def scenario_file(tmp_path: Path, docs: list[dict]) -> str:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return str(path)


def payment_vs() -> dict:
    docs = list(yaml.safe_load_all((ROOT / "istio" / "virtual-services.yaml").read_text()))
    return json.loads(json.dumps(next(d for d in docs if d and d["metadata"]["name"] == "payment-service")))


def routes_of(generated, proxy: str, route_config: str) -> list[dict]:
    return generated.proxies[proxy].routes[route_config]["virtual_hosts"][0]["routes"]


@pytest.mark.parametrize("operations", [[]] + [[("apply", s)] for s in SCENARIOS],
                         ids=["istio/"] + [Path(s).stem for s in SCENARIOS])
def test_every_generated_configuration_passes_envoy_validate(layout, operations):
    generated = generate(layout, operations)
    assert len(generated.proxies) == 12  # the ingress and 11 instances (payment v1 x2, catalog x2, both Redis, loadgen, ...)
    assert control.validate(generated.proxies, find_envoy()) == {}


def test_a_route_without_retries_gets_istiods_default_policy(layout, tmp_path):
    vs = payment_vs()
    del vs["spec"]["http"][1]["retries"]  # the POST route, as the seed had it
    generated = generate(layout, [("apply", scenario_file(tmp_path, [vs]))])
    writes = next(r for r in routes_of(generated, "cart-service-1", f"{PAYMENT}:5003") if r["name"] == "writes")
    policy = writes["route"]["retry_policy"]
    assert policy["num_retries"] == 2
    assert policy["retry_on"] == "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
    assert policy["retriable_status_codes"] == [503]
    assert policy["retry_host_predicate"][0]["name"] == "envoy.retry_host_predicates.previous_hosts"


def test_shipped_routes_translate_like_istiod(layout):
    generated = generate(layout)
    routes = {r["name"]: r for r in routes_of(generated, "cart-service-1", f"{PAYMENT}:5003")}
    assert "retry_policy" not in routes["writes"]["route"]  # attempts: 0 -> no policy at all
    reads = routes["reads"]
    assert [r["match"]["headers"][0]["string_match"] for r in routes_of(generated, "cart-service-1", f"{PAYMENT}:5003")
            if r["name"] == "reads"] == [{"exact": "GET"}, {"exact": "HEAD"}]  # one route per match entry
    assert reads["route"]["retry_policy"]["retry_on"] == "5xx,reset,connect-failure,refused-stream"
    assert "retriable_status_codes" not in reads["route"]["retry_policy"]  # a retryOn replaces the default's 503
    assert reads["route"]["retry_policy"]["per_try_timeout"] == "1.000s" and reads["route"]["timeout"] == "3.000s"
    assert reads["route"]["weighted_clusters"]["clusters"] == [
        {"name": f"outbound|5003|v1|{PAYMENT}", "weight": 95}, {"name": f"outbound|5003|v2|{PAYMENT}", "weight": 5}]
    clusters = {c["name"]: c for c in generated.proxies["cart-service-1"].clusters}
    v1 = clusters[f"outbound|5003|v1|{PAYMENT}"]
    assert len(v1["load_assignment"]["endpoints"][0]["lb_endpoints"]) == 2  # payment v1 runs twice locally
    assert v1["outlier_detection"] == {"enforcing_success_rate": 0, "consecutive_5xx": 5, "enforcing_consecutive_5xx": 100,
                                       "interval": "10.000s", "base_ejection_time": "30.000s", "max_ejection_percent": 100}
    assert v1["common_lb_config"] == {"healthy_panic_threshold": {"value": 0.0}}
    assert v1["lb_policy"] == "LEAST_REQUEST" and v1["connect_timeout"] == "1.000s"
    assert v1["circuit_breakers"]["thresholds"][0]["max_connections"] == 100


def test_zero_weight_destinations_are_dropped(layout):
    generated = generate(layout, [("apply", "istio/scenarios/canary-100-v2.yaml")])
    reads = next(r for r in routes_of(generated, "cart-service-1", f"{PAYMENT}:5003") if r["name"] == "reads")
    assert reads["route"]["weighted_clusters"]["clusters"] == [{"name": f"outbound|5003|v2|{PAYMENT}", "weight": 100}]


def test_authorization_translates_deny_before_allow_and_allow_nothing(layout, tmp_path):
    deny = {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": "no-deletes", "namespace": "e-commerce"},
            "spec": {"selector": {"matchLabels": {"app": "cart-service"}}, "action": "DENY",
                     "rules": [{"to": [{"operation": {"methods": ["DELETE"]}}]}]}}
    generated = generate(layout, [("apply", scenario_file(tmp_path, [deny]))])
    inbound = next(l for l in generated.proxies["cart-service-1"].listeners if l["name"] == "inbound|5002")
    filters = inbound["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
    assert [f["name"] for f in filters] == ["istio.authorization.deny", "istio.authorization.allow",
                                            "envoy.filters.http.router"]
    allow = filters[1]["typed_config"]["rules"]["policies"]
    # allow-nothing (no rules) never matches; cart's own policy names the gateway's SPIFFE id and its local port
    assert allow["ns[e-commerce]-policy[allow-nothing]-rule[0]"]["principals"] == [{"not_id": {"any": True}}]
    cart = allow["ns[e-commerce]-policy[cart-service]-rule[0]"]
    assert cart["principals"][0]["and_ids"]["ids"][0]["or_ids"]["ids"] == [
        {"authenticated": {"principal_name": {"exact": "spiffe://cluster.local/ns/e-commerce/sa/api-gateway"}}}]
    port = generated.proxies["cart-service-1"].listeners[0]["address"]["socket_address"]["port_value"]
    assert {"or_rules": {"rules": [{"destination_port": port}]}} in cart["permissions"][0]["and_rules"]["rules"]


def test_a_subset_no_destination_rule_defines_is_refused(layout, tmp_path):
    vs = payment_vs()
    vs["spec"]["http"][0]["route"][1]["destination"]["subset"] = "v3"
    with pytest.raises(MeshConfigError) as refused:
        generate(layout, [("apply", scenario_file(tmp_path, [vs]))])
    message = str(refused.value)
    assert "scenario.yaml VirtualService/payment-service spec.http[0].route[1].destination.subset" in message
    assert "'v3'" in message and "defined by no DestinationRule" in message and "v1, v2" in message


def test_the_local_mesh_refuses_to_start_with_an_undefined_subset(tmp_path):
    from devstack.mesh.runtime import MeshStack, free_port_offset
    from devstack.stack import StackError

    vs = payment_vs()
    vs["spec"]["http"][1]["route"][0]["destination"]["subset"] = "canary"
    stack = MeshStack(tmp_path / "data", port_offset=free_port_offset(), scenario=scenario_file(tmp_path, [vs]))
    with pytest.raises(StackError, match=r"spec.http\[1\].route\[0\].destination.subset: subset 'canary'"):
        stack.start()
    assert not stack.processes  # nothing was started


def test_fields_outside_the_subset_are_named_in_warnings(layout, tmp_path):
    vs = payment_vs()
    vs["spec"]["http"][0]["mirror"] = {"host": "payment-service", "subset": "v2"}
    vs["spec"]["http"][0]["match"][0]["queryParams"] = {"debug": {"exact": "1"}}
    generated = generate(layout, [("apply", scenario_file(tmp_path, [vs]))])
    warnings = [str(w) for w in generated.intent.warnings]
    assert any("scenario.yaml VirtualService/payment-service spec.http[0].mirror: ignored" in w for w in warnings), warnings
    assert any("VirtualService/payment-service spec.http[0].match[0].queryParams: ignored" in w for w in warnings), warnings
    assert any(w.startswith("istio/telemetry.yaml Telemetry/mesh-default") for w in warnings), warnings


def test_every_topology_port_is_distinct_and_payment_v1_runs_twice():
    _, top = topology.load(ROOT, 23000)
    ports = [p for proxy in top.proxies for p in topology.local_ports(proxy)]
    assert len(ports) == len(set(ports))
    assert [i.name for i in top.endpoints("payment-service", 5003, {"version": "v1"})] == [
        "payment-service-v1-1", "payment-service-v1-2"]
    assert top.ingress.inbound_port == 28000 and top.instance("catalog-service-1").inbound_port == 28001


def test_the_port_plan_keeps_issue_9s_admin_ports_and_stays_below_the_ephemeral_range():
    """docs/local-mesh.md "Ports": each app's admin port is its sidecar's inbound + 100, the numbers ./run-local.sh
    gives the admin ports without the mesh (business port + 100); no app's business port lies where an admin port
    could (51xx); both Redis listen where they do without the mesh; with the largest documented offset every port
    stays below 32768."""
    from devstack.stack import ADMIN_PORT_OFFSET, COMPONENTS, LEDGER_DEFAULT_PORT, REDIS_DEFAULT_PORT

    _, top = topology.load(ROOT, 0)
    apps = [i for i in top.instances if i.admin_container_port]
    assert {i.app for i in apps} == {"api-gateway", "cart-service", "catalog-service", "notification-service",
                                     "payment-service"}
    admin_ports = set()
    for instance in apps:
        assert instance.app_admin_port == instance.inbound_port + ADMIN_PORT_OFFSET
        assert instance.env["ADMIN_PORT"] == str(instance.app_admin_port) and instance.env["PORT"] == str(instance.app_port)
        admin_ports.add(instance.app_admin_port)
    without_mesh = {c.default_port + ADMIN_PORT_OFFSET for c in COMPONENTS}
    assert without_mesh - admin_ports == {5100}  # api-gateway's: its sidecar is on 5010 (the ingress has 5000)
    assert all(not 5100 <= i.app_port < 5200 for i in top.instances if i.app_port)
    assert {i.app: i.inbound_port for i in top.instances if i.protocol == "tcp"} == {
        "redis": REDIS_DEFAULT_PORT, "payment-ledger": LEDGER_DEFAULT_PORT}
    assert top.instance("loadgen-1").env["METRICS_PORT"] == str(top.instance("loadgen-1").app_admin_port)
    _, far = topology.load(ROOT, 25000)
    assert max(p for proxy in far.proxies for p in topology.local_ports(proxy)) < 32768


def test_route_timeouts_are_istios_as_written(layout):
    """The checkout budget of issue 9 (docs/architecture.md "Timeouts"): whatever istio/ says now is what each
    proxy does, read from the files (gateway -> cart checkout 22 s, loadgen -> gateway checkout 27 s, the
    ingress 30 s, cart -> payment 3 s)."""
    generated = generate(layout)
    docs = [d for f in ("virtual-services.yaml", "gateway.yaml") for d in yaml.safe_load_all((ROOT / "istio" / f).read_text())
            if d and d["kind"] == "VirtualService"]

    def written(vs: str, route: str) -> str:
        spec = next(d for d in docs if d["metadata"]["name"] == vs)["spec"]
        return next(r for r in spec["http"] if r["name"] == route)["timeout"]

    def envoy(proxy: str, config: str, route: str) -> str:
        return next(r for r in generated.proxies[proxy].routes[config]["virtual_hosts"][0]["routes"]
                    if r["name"] == route)["route"]["timeout"]

    def seconds(text: str) -> float:
        return float(text.rstrip("s"))

    cases = [("api-gateway-1", "cart-service.e-commerce.svc.cluster.local:5002", "cart-service", "checkout"),
             ("loadgen-1", "api-gateway.e-commerce.svc.cluster.local:5000", "api-gateway", "checkout"),
             ("istio-ingressgateway", "http.80", "api-gateway-ingress", "public"),
             ("cart-service-1", f"{PAYMENT}:5003", "payment-service", "writes")]
    for proxy, config, vs, route in cases:
        assert seconds(envoy(proxy, config, route)) == seconds(written(vs, route)), (proxy, route)
    assert [seconds(written(vs, route)) for _, _, vs, route in cases] == [22, 27, 30, 3]  # as docs/architecture.md


def test_envoys_drain_outlasts_every_route_timeout(layout):
    """A listener replaced while running keeps its requests for --drain-time-s: longer than any route may take."""
    from devstack.mesh.runtime import ENVOY_DRAIN_S

    generated = generate(layout)
    longest = max(float(r["route"]["timeout"].rstrip("s")) for files in generated.proxies.values()
                  for config in files.routes.values() for r in config["virtual_hosts"][0]["routes"])
    assert longest == 30 and ENVOY_DRAIN_S > longest


def test_fields_issue_10_adds_to_the_manifests_are_taken_without_warnings(layout, tmp_path):
    """Ownership labels and annotations on the objects, and a DestinationRule's connectionPool.http.idleTimeout
    (the idle timeout of the client's upstream connections, as istiod's applyConnectionPool sets it)."""
    docs = list(yaml.safe_load_all((ROOT / "istio" / "destination-rules.yaml").read_text()))
    rule = json.loads(json.dumps(next(d for d in docs if d and d["metadata"]["name"] == "catalog-service")))
    rule["metadata"]["labels"] = {"app.kubernetes.io/part-of": "e-commerce", "app.kubernetes.io/managed-by": "lab"}
    rule["metadata"]["annotations"] = {"linkerd.io/inject": "enabled"}
    rule["spec"]["trafficPolicy"]["connectionPool"]["http"]["idleTimeout"] = "60s"
    generated = generate(layout, [("apply", scenario_file(tmp_path, [rule]))])
    assert not [w for w in generated.intent.warnings if "DestinationRule/catalog-service" in str(w)]
    cluster = next(c for c in generated.proxies["api-gateway-1"].clusters
                   if c["name"] == "outbound|5001||catalog-service.e-commerce.svc.cluster.local")
    options = cluster["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert options["common_http_protocol_options"]["idle_timeout"] == "60.000s"


def test_the_destination_rules_pool_applies_to_the_servers_inbound_cluster_too(layout):
    """istiod's buildInboundCluster: the service's DestinationRule connection pool (its top-level policy) is set on
    the sidecar's cluster to its own app as well; there the idle timeout (60 s) must stay below gunicorn's 75 s
    keep-alive, or the app closes a connection Envoy is about to reuse. No DestinationRule: unlimited, the mesh's
    10 s connect timeout."""
    generated = generate(layout)

    def inbound(proxy: str) -> dict:
        return next(c for c in generated.proxies[proxy].clusters if c["name"].startswith("inbound|"))

    catalog = inbound("catalog-service-1")
    assert catalog["connect_timeout"] == "1.000s"
    assert catalog["circuit_breakers"]["thresholds"][0]["max_connections"] == 100
    options = catalog["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert options["common_http_protocol_options"]["idle_timeout"] == "60.000s"
    assert inbound("payment-service-v2-1")["circuit_breakers"]["thresholds"][0]["max_pending_requests"] == 100
    redis = inbound("redis-1")
    assert redis["connect_timeout"] == "10.000s" and "typed_extension_protocol_options" not in redis
    assert redis["circuit_breakers"]["thresholds"][0]["max_connections"] == 4294967295
    shrunk = generate(layout, [("apply", "istio/scenarios/circuit-breaker.yaml")])
    catalog = next(c for c in shrunk.proxies["catalog-service-2"].clusters if c["name"].startswith("inbound|"))
    assert catalog["circuit_breakers"]["thresholds"][0]["max_connections"] == 1
