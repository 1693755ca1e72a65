"""The access matrix read from the Istio policies, from the Linkerd policies and from the README must agree."""
from __future__ import annotations

from tests.manifests.manifest_copy import matching

from tools.manifestcheck.access_matrix import BEGIN, END, Row, parse_matrix_table


def test_readme_row_missing_from_both_meshes_fails(tree_copy):
    readme = tree_copy.root / "README.md"
    text = readme.read_text()
    readme.write_text(text.replace(END, "| loadgen | cart-service | 5002 |\n" + END))
    problems = tree_copy.check("matrix")
    for mesh in ("istio/", "linkerd/"):
        assert matching(problems, mesh, "loadgen -> cart-service:5002 is in README.md but not allowed"), problems


def test_readme_missing_a_row_the_meshes_allow_fails(tree_copy):
    readme = tree_copy.root / "README.md"
    text = readme.read_text()
    line = next(l for l in text.split(BEGIN)[1].splitlines() if l.startswith("| payment-service | notification-service"))
    readme.write_text(text.replace(line + "\n", ""))
    problems = tree_copy.check("matrix")
    assert matching(problems, "istio/", "payment-service -> notification-service:5004 is allowed by the istio/ policies but not in README.md"), problems
    assert matching(problems, "linkerd/", "payment-service -> notification-service:5004 is allowed by the linkerd/ policies"), problems


def test_istio_policy_allowing_an_extra_caller_differs_from_linkerd_and_readme(tree_copy):
    def let_gateway_pay(policy):
        for rule in policy["spec"]["rules"]:
            for source in rule.get("from", []):
                principals = source.get("source", {}).get("principals")
                if principals is not None:
                    principals.append("cluster.local/ns/e-commerce/sa/api-gateway")

    tree_copy.edit("AuthorizationPolicy", let_gateway_pay, folder="istio/",
                   where=lambda d: d["spec"].get("selector", {}).get("matchLabels", {}).get("app") == "payment-service")
    problems = tree_copy.check("matrix")
    assert matching(problems, "istio/", "api-gateway -> payment-service:5003 is allowed by the istio/ policies but not in README.md"), problems
    assert matching(problems, "linkerd/", "api-gateway -> payment-service:5003 is in istio/ but not allowed by the linkerd/ policies"), problems


def test_linkerd_policy_dropping_a_caller_differs(tree_copy):
    def drop_payment(auth):
        refs = auth["spec"].get("identityRefs", [])
        auth["spec"]["identityRefs"] = [r for r in refs if r.get("name") != "payment-service"]

    tree_copy.edit("MeshTLSAuthentication", drop_payment, folder="linkerd/",
                   where=lambda d: any(r.get("name") == "payment-service" for r in d["spec"].get("identityRefs", [])))
    problems = tree_copy.check("matrix")
    assert matching(problems, "linkerd/", "payment-service -> notification-service:5004 is in README.md but not allowed"), problems


def remove_first(tree_copy, kind, where, folder):
    rel, index, _ = tree_copy.find(kind, where, folder=folder)
    docs = tree_copy.docs(rel)
    del docs[index]
    tree_copy.write_docs(rel, docs)


def selects_notification(policy):
    return policy["spec"].get("selector", {}).get("matchLabels", {}).get("app") == "notification-service"


def test_workload_without_allow_policy_is_closed_by_allow_nothing(tree_copy):
    remove_first(tree_copy, "AuthorizationPolicy", selects_notification, "istio/")
    problems = tree_copy.check("matrix")
    assert matching(problems, "istio/", "cart-service -> notification-service:5004 is in README.md but not allowed"), problems
    assert not matching(problems, "* -> notification-service"), problems


def test_without_allow_nothing_a_workload_without_allow_policy_is_open_to_anyone(tree_copy):
    remove_first(tree_copy, "AuthorizationPolicy", selects_notification, "istio/")
    remove_first(tree_copy, "AuthorizationPolicy", lambda d: not d.get("spec"), "istio/")
    problems = tree_copy.check("matrix")
    assert matching(problems, "istio/", "* -> notification-service:5004 is allowed by the istio/ policies but not in README.md"), problems


def test_readme_table_is_parsed_with_header_and_separator_skipped():
    rows, problem = parse_matrix_table("\n| from | to | port |\n|---|---|---|\n| ingress | api-gateway | 5000 |\n")
    assert problem is None and rows == {Row("ingress", "api-gateway", 5000)}
    rows, problem = parse_matrix_table("| a | b | http |\n")
    assert rows is None and "port must be a number" in problem.message


def test_linkerd_any_network_grant_on_an_internal_service_fails(tree_copy):
    def open_to_anyone(policy):
        policy["spec"]["requiredAuthenticationRefs"] = [
            {"group": "policy.linkerd.io", "kind": "NetworkAuthentication", "name": "ingress"}]

    rel, _ = tree_copy.edit("AuthorizationPolicy", open_to_anyone, folder="linkerd/",
                            where=lambda d: d["metadata"]["name"] == "payment-service-callers")
    problems = tree_copy.check("matrix")
    assert matching(problems, rel, "AuthorizationPolicy/payment-service-callers", "grants payment-service:5003",
                    "0.0.0.0/0", "only api-gateway's public paths may be open"), problems
    # Not an `ingress` row: anyone, which neither the README nor Istio allows.
    assert matching(problems, "linkerd/", "* -> payment-service:5003 is allowed by the linkerd/ policies but not in README.md"), problems
    assert not matching(problems, "ingress -> payment-service"), problems


def test_linkerd_ingress_row_is_api_gateways_public_route_only(tree_copy):
    problems = tree_copy.check("matrix")
    assert not matching(problems, "NetworkAuthentication"), problems
    assert not matching(problems, "ingress -> api-gateway"), problems

    def drop_ingress_policy(docs):
        return [d for d in docs if d["metadata"]["name"] != "api-gateway-ingress"]

    rel = "linkerd/authorization.yaml"
    tree_copy.write_docs(rel, drop_ingress_policy(tree_copy.docs(rel)))
    assert matching(tree_copy.check("matrix"), "ingress -> api-gateway:5000 is in README.md but not allowed by the linkerd/ policies")


def test_linkerd_any_network_grant_on_api_gateways_admin_paths_fails(tree_copy):
    def widen(route):  # "/" takes in /admin/faults and /metrics, not only the storefront and the API
        route["spec"]["rules"][0]["matches"].append({"path": {"type": "PathPrefix", "value": "/"}})

    tree_copy.edit("HTTPRoute", widen, folder="linkerd/", where=lambda d: d["metadata"]["name"] == "api-gateway-api")
    problems = tree_copy.check("matrix")
    assert matching(problems, "AuthorizationPolicy/api-gateway-ingress", "grants api-gateway:5000", "0.0.0.0/0"), problems
    assert matching(problems, "* -> api-gateway:5000 is allowed by the linkerd/ policies but not in README.md"), problems
