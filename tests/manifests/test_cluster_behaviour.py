"""What only shows on a real cluster, checked offline: idle timeouts against the apps' keep-alive, istio-proxy's drain
against the apps' shutdown, where Linkerd reads failure accrual, annotations the 2.20 proxy ignores, the policy name
`linkerd check --proxy` looks for, Flagger's timeout, and the lab's ownership labels. Each test breaks a copy of the
real manifests in one place and expects that one problem."""
from __future__ import annotations

import json

from tests.manifests.manifest_copy import matching


def named(name):
    return lambda d: d["metadata"]["name"] == name


def test_the_real_tree_passes_these_checks(tree_copy):
    assert tree_copy.check("connections", "ownership", "mesh") == []


def test_a_destination_rule_without_idle_timeout_or_with_one_above_the_keepalive_fails(tree_copy):
    rel, _ = tree_copy.edit("DestinationRule", lambda d: d["spec"]["trafficPolicy"]["connectionPool"]["http"].pop("idleTimeout"),
                            folder="istio/", where=named("cart-service"))
    tree_copy.edit("DestinationRule", lambda d: d["spec"]["trafficPolicy"]["connectionPool"]["http"].update(idleTimeout="90s"),
                   folder="istio/", where=named("payment-service"))
    problems = tree_copy.check("connections")
    assert matching(problems, rel, "DestinationRule/cart-service", "idleTimeout is not set", "the apps close theirs after 75s")
    assert matching(problems, "DestinationRule/payment-service", "idleTimeout '90s' must be", "below the apps' keep-alive (75s")
    assert len(problems) == 2, problems


def test_a_scenario_destination_rule_is_held_to_the_same_idle_timeout(tree_copy):
    rel = "istio/scenarios/circuit-breaker.yaml"
    docs = tree_copy.docs(rel)
    del docs[0]["spec"]["trafficPolicy"]["connectionPool"]["http"]["idleTimeout"]
    tree_copy.write_docs(rel, docs)
    assert matching(tree_copy.check("connections"), rel, "DestinationRule/catalog-service", "idleTimeout is not set")


def test_the_apps_keepalive_is_read_from_gunicorn_conf(tree_copy):
    conf = tree_copy.root / "services/shopkit/shopkit/gunicorn_conf.py"
    conf.write_text(conf.read_text().replace("keepalive = 75", "keepalive = 30"))
    problems = tree_copy.check("connections")
    assert matching(problems, "DestinationRule/catalog-service", "idleTimeout '60s'", "(30s, services/shopkit")


def test_without_the_drain_patch_istio_proxy_would_cut_requests_in_flight(tree_copy):
    kust = tree_copy.docs("istio/kustomization.yaml")
    kust[0]["patches"] = [p for p in kust[0]["patches"] if "proxy-drain" not in p["path"]]
    tree_copy.write_docs("istio/kustomization.yaml", kust)
    problems = tree_copy.check("connections")
    assert matching(problems, "Deployment/cart-service", "istio-proxy drains 5s (no patch under istio/", "25s")
    assert not matching(problems, "Deployment/redis") and not matching(problems, "Deployment/loadgen")


def test_a_drain_shorter_than_the_apps_shutdown_fails(tree_copy):
    rel = "istio/patches/proxy-drain.yaml"
    docs = tree_copy.docs(rel)
    docs[0]["spec"]["template"]["metadata"]["annotations"]["proxy.istio.io/config"] = json.dumps(
        {"terminationDrainDuration": "10s"})
    tree_copy.write_docs(rel, docs)
    assert matching(tree_copy.check("connections"), "Deployment/payment-service-v2", "drains 10s", "at least 25s")


def test_failure_accrual_on_a_backend_only_service_fails(tree_copy):
    rel = "linkerd/patches/failure-accrual.yaml"
    docs = tree_copy.docs(rel)
    backend = json.loads(json.dumps(docs[-1]))
    backend["metadata"]["name"] = "payment-service-v2"
    tree_copy.write_docs(rel, docs + [backend])
    problems = tree_copy.check("mesh")
    assert matching(problems, rel, "Service/payment-service-v2", "only a backendRef", "reads failure accrual from the parent")
    assert not matching(problems, "Service/payment-service:")


def test_proxy_wait_before_exit_is_refused_because_native_sidecars_ignore_it(tree_copy):
    rel = "linkerd/patches/namespace.yaml"
    docs = tree_copy.docs(rel)
    docs[0]["metadata"]["annotations"]["config.alpha.linkerd.io/proxy-wait-before-exit-seconds"] = "20"
    tree_copy.write_docs(rel, docs)
    assert matching(tree_copy.check("mesh"), rel, "Namespace/e-commerce", "proxy-wait-before-exit-seconds is ignored")


def test_the_scrape_policy_must_be_named_prometheus_scrape(tree_copy):
    tree_copy.edit("AuthorizationPolicy", lambda d: d["metadata"].update(name="proxy-scrapes"), folder="linkerd/",
                   where=named("prometheus-scrape"))
    assert matching(tree_copy.check("mesh"), "namespace e-commerce denies by default but has no AuthorizationPolicy "
                                             "named prometheus-scrape")


def test_a_flagger_canary_needs_the_timeout_of_the_routes_it_replaces(tree_copy):
    rel = "linkerd/scenarios/flagger/canary.yaml"
    docs = tree_copy.docs(rel)
    del docs[0]["spec"]["service"]["timeout"]
    tree_copy.write_docs(rel, docs)
    assert matching(tree_copy.check("mesh"), rel, "Canary/payment-service", "spec.service.timeout is not set", "3s")
    docs[0]["spec"]["service"]["timeout"] = "5s"
    tree_copy.write_docs(rel, docs)
    assert matching(tree_copy.check("mesh"), rel, "spec.service.timeout '5s' differs", "(3s)")


def test_objects_must_carry_the_lab_labels(tree_copy):
    kust = tree_copy.docs("monitoring/kustomization.yaml")
    del kust[0]["labels"]
    tree_copy.write_docs("monitoring/kustomization.yaml", kust)
    rel = "istio/scenarios/canary-50-50.yaml"
    docs = tree_copy.docs(rel)
    del docs[0]["metadata"]["labels"]
    tree_copy.write_docs(rel, docs)
    problems = tree_copy.check("ownership")
    assert matching(problems, "monitoring/kustomization.yaml", "no `labels:` transformer")
    assert matching(problems, rel, "VirtualService/payment-service", "applied on its own",
                    "app.kubernetes.io/part-of=service-mesh-lab")
    assert len(problems) == 2, problems


def test_a_labels_transformer_that_touches_selectors_is_not_enough(tree_copy):
    kust = tree_copy.docs("kubernetes/kustomization.yaml")
    kust[0]["labels"][0]["includeSelectors"] = True
    tree_copy.write_docs("kubernetes/kustomization.yaml", kust)
    assert matching(tree_copy.check("ownership"), "kubernetes/kustomization.yaml", "includeSelectors: false")
