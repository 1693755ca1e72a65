"""Cross-reference checks: a name one manifest uses must exist in another, with matching labels and ports."""
from __future__ import annotations

from tests.manifests.manifest_copy import matching


def has_selector(doc):
    return bool(doc.get("spec", {}).get("selector"))


def test_service_selector_matching_no_pods_fails(tree_copy):
    rel, svc = tree_copy.edit("Service", lambda d: d["spec"]["selector"].update(app="catalog-svc"), where=has_selector,
                              folder="kubernetes/")
    problems = tree_copy.check("refs")
    assert matching(problems, rel, f"Service/{svc['metadata']['name']}", "matches no pod template"), problems


def test_target_port_missing_from_the_container_fails(tree_copy):
    rel, svc = tree_copy.edit("Service", lambda d: d["spec"]["ports"][0].update(targetPort="htp"), where=has_selector,
                              folder="kubernetes/")
    assert matching(tree_copy.check("refs"), rel, f"Service/{svc['metadata']['name']}", "targetPort 'htp'")


def test_probe_port_missing_from_the_container_fails(tree_copy):
    def break_probe(deployment):
        deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = 5999

    rel, deployment = tree_copy.edit(
        "Deployment", break_probe, folder="kubernetes/",
        where=lambda d: "httpGet" in d["spec"]["template"]["spec"]["containers"][0].get("readinessProbe", {}))
    assert matching(tree_copy.check("refs"), rel, deployment["metadata"]["name"], "readinessProbe.httpGet.port 5999")


def test_missing_serviceaccount_configmap_and_secret_fail(tree_copy):
    def rename_refs(deployment):
        pod = deployment["spec"]["template"]["spec"]
        pod["serviceAccountName"] = "nobody"
        container = pod["containers"][0]
        container.setdefault("envFrom", []).append({"configMapRef": {"name": "no-such-config"}})
        container.setdefault("env", []).append(
            {"name": "X", "valueFrom": {"secretKeyRef": {"name": "no-such-secret", "key": "password"}}})

    rel, deployment = tree_copy.edit("Deployment", rename_refs, folder="kubernetes/")
    problems = matching(tree_copy.check("refs"), rel, f"Deployment/{deployment['metadata']['name']}")
    assert matching(problems, "serviceAccountName 'nobody'"), problems
    assert matching(problems, "ConfigMap 'no-such-config' has no manifest"), problems
    assert matching(problems, "Secret 'no-such-secret' has no manifest"), problems


def test_secret_key_that_the_secret_lacks_fails(tree_copy):
    def wrong_key(deployment):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    ref["key"] = "passwd"

    def uses_secret_key(d):
        return "secretKeyRef" in str(d)

    rel, deployment = tree_copy.edit("Deployment", wrong_key, where=uses_secret_key, folder="kubernetes/")
    assert matching(tree_copy.check("refs"), rel, deployment["metadata"]["name"], "has no key 'passwd'")


def test_virtualservice_subset_missing_from_destinationrule_fails(tree_copy):
    def drop_v2(dr):
        dr["spec"]["subsets"] = [s for s in dr["spec"]["subsets"] if s["name"] != "v2"]

    tree_copy.edit("DestinationRule", drop_v2, where=lambda d: any(s["name"] == "v2" for s in d["spec"].get("subsets", [])),
                   folder="istio/")
    problems = tree_copy.check("refs")
    assert matching(problems, "VirtualService/payment-service", "subset 'v2'", "is in no DestinationRule"), problems


def test_destinationrule_subset_labels_matching_no_deployment_fail(tree_copy):
    def relabel(dr):
        for subset in dr["spec"]["subsets"]:
            if subset["name"] == "v2":
                subset["labels"]["version"] = "v9"

    rel, dr = tree_copy.edit("DestinationRule", relabel, folder="istio/",
                             where=lambda d: any(s["name"] == "v2" for s in d["spec"].get("subsets", [])))
    assert matching(tree_copy.check("refs"), rel, f"DestinationRule/{dr['metadata']['name']}", "subset 'v2'", "no pod template")


def test_istio_principal_naming_no_serviceaccount_fails(tree_copy):
    def misspell_principal(policy):
        for rule in policy["spec"]["rules"]:
            for source in rule.get("from", []):
                principals = source.get("source", {}).get("principals", [])
                principals[:] = [p.replace("/sa/cart-service", "/sa/cart-servce") for p in principals]

    rel, policy = tree_copy.edit("AuthorizationPolicy", misspell_principal, folder="istio/",
                                 where=lambda d: "/sa/cart-service" in str(d))
    problems = tree_copy.check("refs")
    assert matching(problems, rel, f"AuthorizationPolicy/{policy['metadata']['name']}",
                    "cluster.local/ns/e-commerce/sa/cart-servce", "names no ServiceAccount"), problems


def test_istio_principal_of_the_wrong_shape_fails(tree_copy):
    def bad_shape(policy):
        policy["spec"]["rules"][0]["from"][0]["source"]["principals"] = ["e-commerce/cart-service"]

    rel, _ = tree_copy.edit("AuthorizationPolicy", bad_shape, folder="istio/", where=lambda d: "principals" in str(d))
    assert matching(tree_copy.check("refs"), rel, "is not of the form cluster.local/ns/<ns>/sa/<serviceaccount>")


def test_documented_ingress_gateway_principal_is_accepted(tree_copy):
    problems = tree_copy.check("refs")
    assert not matching(problems, "istio-ingressgateway-service-account"), problems


def test_linkerd_identity_naming_no_serviceaccount_fails(tree_copy):
    def misspell(auth):
        auth["spec"]["identityRefs"] = [{"kind": "ServiceAccount", "name": "cart-servce"}]
        auth["spec"]["identities"] = ["payment-servce.e-commerce.serviceaccount.identity.linkerd.cluster.local"]

    rel, auth = tree_copy.edit("MeshTLSAuthentication", misspell, folder="linkerd/")
    problems = matching(tree_copy.check("refs"), rel, f"MeshTLSAuthentication/{auth['metadata']['name']}")
    assert matching(problems, "identityRefs ServiceAccount e-commerce/cart-servce has no manifest"), problems
    assert matching(problems, "payment-servce.e-commerce", "names no ServiceAccount"), problems


def test_httproute_backend_and_parent_with_wrong_port_or_name_fail(tree_copy):
    def break_refs(route):
        route["spec"]["parentRefs"][0]["port"] = 5999
        route["spec"]["rules"][0]["backendRefs"][0]["name"] = "payment-service-v3"

    rel, route = tree_copy.edit("HTTPRoute", break_refs, folder="linkerd/",
                                where=lambda d: d["apiVersion"].startswith("gateway.networking.k8s.io/")
                                and "payment-service-v1" in str(d))
    problems = matching(tree_copy.check("refs"), rel, f"HTTPRoute/{route['metadata']['name']}")
    assert matching(problems, "parentRef Service", "has no port 5999"), problems
    assert matching(problems, "backendRef Service 'payment-service-v3' has no manifest"), problems


def test_linkerd_server_port_missing_from_the_pods_fails(tree_copy):
    rel, server = tree_copy.edit("Server", lambda d: d["spec"].update(port="htttp"), folder="linkerd/")
    assert matching(tree_copy.check("refs"), rel, f"Server/{server['metadata']['name']}", "port 'htttp'")


def test_virtualservice_bound_to_a_missing_gateway_fails(tree_copy):
    rel, vs = tree_copy.edit("VirtualService", lambda d: d["spec"].update(gateways=["shop-gatway"]), folder="istio/",
                             where=lambda d: "gateways" in d["spec"])
    assert matching(tree_copy.check("refs"), rel, f"VirtualService/{vs['metadata']['name']}", "gateway 'shop-gatway'")


def test_istio_policy_selecting_no_pods_fails(tree_copy):
    rel, policy = tree_copy.edit("AuthorizationPolicy", lambda d: d["spec"]["selector"]["matchLabels"].update(app="cart"),
                                 folder="istio/", where=lambda d: "selector" in d.get("spec", {}))
    assert matching(tree_copy.check("refs"), rel, f"AuthorizationPolicy/{policy['metadata']['name']}", "matches no pod template")


def test_flagger_canary_with_missing_target_or_metric_template_fails(tree_copy):
    def break_canary(canary):
        canary["spec"]["targetRef"]["name"] = "payment-service-v7"
        canary["spec"]["analysis"]["metrics"][0]["templateRef"]["name"] = "no-such-template"

    rel, index, _ = tree_copy.find("Canary", folder="linkerd/", scenarios=True)
    docs = tree_copy.docs(rel)
    break_canary(docs[index])
    tree_copy.write_docs(rel, docs)
    problems = matching(tree_copy.check("refs"), rel, "Canary/")
    assert matching(problems, "targetRef Deployment/payment-service-v7 has no manifest"), problems
    assert matching(problems, "MetricTemplate no-such-template has no manifest"), problems


def test_secret_created_only_by_the_scripts_counts_until_the_scripts_stop_creating_it(tree_copy):
    mounted = [name for name in ("grafana-admin",) if name in (tree_copy.root / "monitoring" / "grafana.yaml").read_text()]
    assert mounted, "monitoring/grafana.yaml no longer mounts the grafana-admin Secret: update this test"
    assert not matching(tree_copy.check("refs"), "Secret 'grafana-admin'")
    for script in list(tree_copy.root.glob("*.sh")) + list((tree_copy.root / "scripts").rglob("*.sh")):
        script.write_text(script.read_text().replace("grafana-admin", "grafana-login"))
    assert matching(tree_copy.check("refs"), "monitoring/grafana.yaml", "Deployment/grafana", "Secret 'grafana-admin' has no manifest")


def test_httproute_service_parent_without_group_core_fails(tree_copy):
    def drop_group(route):
        del route["spec"]["parentRefs"][0]["group"]  # Gateway API's default group is gateway.networking.k8s.io

    rel, route = tree_copy.edit("HTTPRoute", drop_group, folder="linkerd/",
                                where=lambda d: d["apiVersion"].startswith("gateway.networking.k8s.io/")
                                and d["metadata"]["name"] == "payment-service-default")
    problems = tree_copy.check("refs")
    assert matching(problems, rel, "HTTPRoute/payment-service-default", "parentRef Service/payment-service",
                    "group 'gateway.networking.k8s.io' (the default when `group` is left out)", "write group: core"), problems


def test_httproute_backend_with_a_non_core_group_fails_and_an_empty_group_passes(tree_copy):
    def regroup(route):
        route["spec"]["parentRefs"][0]["group"] = ""  # "" is the core group too
        route["spec"]["rules"][0]["backendRefs"][0]["group"] = "gateway.networking.k8s.io"

    rel, route = tree_copy.edit("HTTPRoute", regroup, folder="linkerd/",
                                where=lambda d: d["metadata"]["name"] == "payment-service-reads")
    problems = matching(tree_copy.check("refs"), rel, "HTTPRoute/payment-service-reads")
    assert matching(problems, "rules[0] backendRef Service/payment-service-v1 has group 'gateway.networking.k8s.io'"), problems
    assert not matching(problems, "parentRef"), problems


def test_mesh_virtualservice_host_that_is_no_service_fails(tree_copy):
    rel, vs = tree_copy.edit("VirtualService", lambda d: d["spec"].update(hosts=["payments"]), folder="istio/",
                             where=lambda d: d["metadata"]["name"] == "payment-service")
    problems = tree_copy.check("refs")
    assert matching(problems, rel, "VirtualService/payment-service", "hosts: 'payments' is not a Service"), problems
    # The edge VirtualService (bound to a Gateway, hosts "*") is not a mesh one and stays accepted.
    assert not matching(problems, "VirtualService/api-gateway-ingress"), problems


def test_mesh_virtualservice_host_as_fqdn_is_accepted(tree_copy):
    tree_copy.edit("VirtualService", lambda d: d["spec"].update(hosts=["payment-service.e-commerce.svc.cluster.local"]),
                   folder="istio/", where=lambda d: d["metadata"]["name"] == "payment-service")
    assert not matching(tree_copy.check("refs"), "hosts:")
