"""Route semantics: canary weights add up to 100, and nothing that can carry a POST is retried."""
from __future__ import annotations

from tests.manifests.manifest_copy import matching

from tools.manifestcheck.routes import istio_route_methods


def test_wrong_istio_weight_sum_fails(tree_copy):
    def shift(vs):
        vs["spec"]["http"][-1]["route"][1]["weight"] = 10  # 95 + 10

    rel, vs = tree_copy.edit("VirtualService", shift, folder="istio/",
                             where=lambda d: len(d["spec"]["http"][-1]["route"]) == 2)
    problems = tree_copy.check("routes")
    assert matching(problems, rel, f"VirtualService/{vs['metadata']['name']}", "add up to 105, not 100"), problems


def test_wrong_httproute_weight_sum_and_missing_weight_fail(tree_copy):
    def shift(route):
        backends = route["spec"]["rules"][0]["backendRefs"]
        backends[1]["weight"] = 4
        route["spec"]["rules"].append({"backendRefs": [{"name": backends[0]["name"], "port": backends[0]["port"]},
                                                       {"name": backends[1]["name"], "port": backends[1]["port"], "weight": 5}]})

    rel, route = tree_copy.edit("HTTPRoute", shift, folder="linkerd/",
                                where=lambda d: len(d["spec"].get("rules", [{}])[0].get("backendRefs", [])) == 2)
    problems = matching(tree_copy.check("routes"), rel, f"HTTPRoute/{route['metadata']['name']}")
    assert matching(problems, "rules[0]", "add up to 99, not 100"), problems
    assert matching(problems, "not every one has a weight"), problems


def test_istio_catch_all_route_with_retries_fails(tree_copy):
    def retry_writes(vs):
        vs["spec"]["http"][-1]["retries"] = {"attempts": 3, "perTryTimeout": "1s"}

    rel, vs = tree_copy.edit("VirtualService", retry_writes, folder="istio/",
                             where=lambda d: d["spec"]["http"][-1].get("retries", {}).get("attempts") == 0)
    problems = tree_copy.check("routes")
    assert matching(problems, rel, f"VirtualService/{vs['metadata']['name']}", "can carry POST", "retries.attempts is 3"), problems


def test_istio_route_without_retries_block_counts_as_retrying(tree_copy):
    rel, vs = tree_copy.edit("VirtualService", lambda d: d["spec"]["http"][-1].pop("retries"), folder="istio/",
                             where=lambda d: "retries" in d["spec"]["http"][-1])
    assert matching(tree_copy.check("routes"), rel, vs["metadata"]["name"], "Istio then retries twice by default")


def test_method_matchers_are_read_like_envoy_does():
    assert istio_route_methods({"match": [{"method": {"exact": "GET"}}, {"method": {"exact": "HEAD"}}]}) == {"GET", "HEAD"}
    assert istio_route_methods({"match": [{"method": {"regex": "GET|HEAD"}}]}) == {"GET", "HEAD"}
    assert "POST" in istio_route_methods({"match": [{"method": {"regex": "GET|HEAD|POST"}}]})
    assert "POST" in istio_route_methods({"match": [{"uri": {"prefix": "/"}}]})  # no method = every method
    assert "POST" in istio_route_methods({})
    assert "PUT" in istio_route_methods({"match": [{"method": {"prefix": "P"}}]})


def test_linkerd_retry_annotations_on_a_route_matching_post_fail(tree_copy):
    def retry_everything(route):
        route["metadata"].setdefault("annotations", {})["retry.linkerd.io/http"] = "5xx"

    rel, route = tree_copy.edit(
        "HTTPRoute", retry_everything, folder="linkerd/",
        where=lambda d: d["apiVersion"].startswith("gateway.networking.k8s.io/")
        and not any(k.startswith("retry.linkerd.io/") for k in (d["metadata"].get("annotations") or {})))
    problems = tree_copy.check("routes")
    assert matching(problems, rel, f"HTTPRoute/{route['metadata']['name']}", "retry.linkerd.io/http", "match only GET/HEAD"), problems


def test_linkerd_retry_annotations_on_a_service_fail(tree_copy):
    rel, svc = tree_copy.edit("Service", lambda d: d["metadata"].setdefault("annotations", {}).update(
        {"retry.linkerd.io/http": "5xx"}), folder="kubernetes/")
    assert matching(tree_copy.check("routes"), rel, f"Service/{svc['metadata']['name']}", "inherits them")


def test_linkerd_payment_route_with_a_single_backend_leaks_the_canary_split(tree_copy):
    def one_backend(route):
        route["spec"]["rules"][0]["backendRefs"] = [{"name": "payment-service-v1", "port": 5003}]

    rel, _ = tree_copy.edit("HTTPRoute", one_backend, folder="linkerd/",
                            where=lambda d: d["metadata"]["name"] == "payment-service-default")
    problems = tree_copy.check("routes")
    assert matching(problems, rel, "HTTPRoute/payment-service-default", "rules[0] sends to payment-service-v1:5003 100%",
                    "HTTPRoute/payment-service-reads rules[0]", "payment-service-v1:5003 95%, payment-service-v2:5003 5%",
                    "the canary split leaks"), problems
    assert not matching(problems, " HTTPRoute/payment-service-reads: "), problems  # the split is the reference


def test_linkerd_routes_with_different_weights_leak_and_the_parent_service_as_backend_too(tree_copy):
    def reweigh(route):
        route["spec"]["rules"][0]["backendRefs"][0]["weight"] = 90
        route["spec"]["rules"][0]["backendRefs"][1]["weight"] = 10

    tree_copy.edit("HTTPRoute", reweigh, folder="linkerd/", where=lambda d: d["metadata"]["name"] == "payment-service-reads")
    problems = tree_copy.check("routes")
    assert matching(problems, "payment-service-v1:5003 90%, payment-service-v2:5003 10%", "the canary split leaks"), problems

    def to_parent(route):  # payment-service selects both versions: an unweighted round robin
        route["spec"]["rules"][0]["backendRefs"] = [{"name": "payment-service", "port": 5003}]

    rel, _ = tree_copy.edit("HTTPRoute", to_parent, folder="linkerd/",
                            where=lambda d: d["metadata"]["name"] == "payment-service-default")
    assert matching(tree_copy.check("routes"), rel, "sends to payment-service:5003 100%", "the canary split leaks")


def test_linkerd_scenario_changing_one_route_of_the_split_leaks(tree_copy):
    rel = "linkerd/scenarios/canary-50-50.yaml"
    docs = tree_copy.docs(rel)
    tree_copy.write_docs(rel, [d for d in docs if d["metadata"]["name"] != "payment-service-default"])
    problems = tree_copy.check("routes")
    # Applied on top of the steady state, the scenario leaves the default route at 95/5 while reads go 50/50.
    assert matching(problems, "HTTPRoute/payment-service-", "50%", "95%", "the canary split leaks"), problems


def test_linkerd_fault_route_to_other_pods_is_not_part_of_the_split(tree_copy):
    problems = tree_copy.check("routes")
    assert not matching(problems, "payment-service-fault-demo"), problems
    assert not matching(problems, "canary split leaks"), problems


def test_istio_route_with_a_single_destination_leaks_the_canary_split(tree_copy):
    def one_destination(vs):
        vs["spec"]["http"][-1]["route"] = [{"destination": {"host": "payment-service", "subset": "v1", "port": {"number": 5003}}}]

    rel, _ = tree_copy.edit("VirtualService", one_destination, folder="istio/",
                            where=lambda d: d["metadata"]["name"] == "payment-service")
    problems = tree_copy.check("routes")
    assert matching(problems, rel, "VirtualService/payment-service", "http[1] (writes) sends to payment-service/v1:5003 100%",
                    "http[0] (reads) splits", "payment-service/v2:5003 5%", "the canary split leaks"), problems


def test_serviceprofile_fails_because_it_overrides_httproutes(tree_copy):
    profile = {"apiVersion": "linkerd.io/v1alpha2", "kind": "ServiceProfile",
               "metadata": {"name": "payment-service.e-commerce.svc.cluster.local", "namespace": "e-commerce"},
               "spec": {"routes": [{"name": "POST /payments", "condition": {"method": "POST", "pathRegex": "/payments"}}]}}
    rel = "linkerd/routes.yaml"
    tree_copy.write_docs(rel, tree_copy.docs(rel) + [profile])
    assert matching(tree_copy.check("routes"), rel, "ServiceProfile/payment-service.e-commerce.svc.cluster.local",
                    "ServiceProfiles override HTTPRoutes")


def test_istio_route_without_timeout_fails(tree_copy):
    rel, vs = tree_copy.edit("VirtualService", lambda d: d["spec"]["http"][0].pop("timeout"), folder="istio/",
                             where=lambda d: d["metadata"]["name"] == "cart-service")
    assert matching(tree_copy.check("routes"), rel, "VirtualService/cart-service", "http[0] (checkout) has no `timeout`")


def test_linkerd_outbound_route_without_request_timeout_fails(tree_copy):
    rel, _ = tree_copy.edit("HTTPRoute", lambda d: d["metadata"]["annotations"].pop("timeout.linkerd.io/request"),
                            folder="linkerd/", where=lambda d: d["metadata"]["name"] == "cart-service-default")
    problems = tree_copy.check("routes")
    assert matching(problems, rel, "HTTPRoute/cart-service-default", "has no timeout.linkerd.io/request"), problems
    # Inbound authorization routes (parent: a Server) carry no timeout and are not asked to.
    assert not matching(problems, "HTTPRoute/cart-service-api"), problems


def test_second_istio_virtualservice_for_the_payment_host_leaks_the_split(tree_copy):
    extra = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
             "metadata": {"name": "payment-admin", "namespace": "e-commerce"},
             "spec": {"hosts": ["payment-service"], "http": [{
                 "name": "admin", "match": [{"uri": {"prefix": "/admin"}}], "timeout": "3s", "retries": {"attempts": 0},
                 "route": [{"destination": {"host": "payment-service", "port": {"number": 5003}}}]}]}}
    rel = "istio/virtual-services.yaml"
    tree_copy.write_docs(rel, tree_copy.docs(rel) + [extra])
    assert matching(tree_copy.check("routes"), rel, "VirtualService/payment-admin", "http[0] (admin) sends to payment-service:5003 100%",
                    "VirtualService/payment-service http[0] (reads)", "the canary split leaks")


def test_istio_redirect_route_without_destinations_is_not_part_of_the_split(tree_copy):
    def add_redirect(vs):
        vs["spec"]["http"].insert(0, {"name": "legacy", "match": [{"uri": {"prefix": "/old"}, "method": {"exact": "GET"}}],
                                      "redirect": {"uri": "/payments"}, "timeout": "3s"})

    tree_copy.edit("VirtualService", add_redirect, folder="istio/", where=lambda d: d["metadata"]["name"] == "payment-service")
    problems = tree_copy.check("routes")
    assert not matching(problems, "canary split leaks"), problems
