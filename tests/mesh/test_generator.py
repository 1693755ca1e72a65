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
    assert len(generated.proxies) == 11  # the ingress and 10 instances (payment v1 x2, catalog x2, redis, loadgen, ...)
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
    ports = [p for proxy in top.proxies for p in (proxy.inbound_port, proxy.app_port, proxy.admin_port,
                                                  *(o.listen_port for o in proxy.outbound)) if p]
    assert len(ports) == len(set(ports))
    assert [i.name for i in top.endpoints("payment-service", 5003, {"version": "v1"})] == [
        "payment-service-v1-1", "payment-service-v1-2"]
    assert top.ingress.inbound_port == 28000 and top.instance("catalog-service-1").inbound_port == 28001
