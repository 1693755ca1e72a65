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
