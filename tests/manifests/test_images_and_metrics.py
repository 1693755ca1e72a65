"""Images match what build.sh builds; dashboards query only metrics that something exports."""
from __future__ import annotations

import json

from tests.manifests.manifest_copy import REPO_ROOT, matching

from tools.manifestcheck import known_metrics
from tools.manifestcheck.dashboards import metric_names


def is_dashboard(doc):
    return any(key.endswith(".json") for key in (doc.get("data") or {}))


def test_image_tag_that_build_sh_does_not_build_fails(tree_copy):
    def bump(deployment):
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        container["image"] = container["image"].rsplit(":", 1)[0] + ":v3"

    rel, deployment = tree_copy.edit("Deployment", bump, folder="kubernetes/",
                                     where=lambda d: d["metadata"]["name"] == "catalog-service")
    problems = tree_copy.check("images")
    assert matching(problems, rel, "Deployment/catalog-service", "catalog-service:v3", "is not one ./build.sh builds"), problems
    assert matching(problems, "build.sh: builds catalog-service:v1, but no manifest runs it"), problems


def test_missing_build_sh_is_reported_not_skipped(tree_copy):
    (tree_copy.root / "build.sh").unlink()
    problems = tree_copy.check("images")
    assert matching(problems, "build.sh: missing", "--list-images"), problems


def test_grafana_query_naming_an_unknown_metric_fails(tree_copy):
    def break_query(configmap):
        key = next(k for k in configmap["data"] if k.endswith(".json"))
        dashboard = json.loads(configmap["data"][key])
        panel = next(p for p in dashboard["panels"] if p.get("targets"))
        panel["targets"][0]["expr"] = "sum by (service) (rate(orders_placed_total[1m]))"
        configmap["data"][key] = json.dumps(dashboard)
        panel_title.append(panel.get("title"))

    panel_title: list = []
    rel, configmap = tree_copy.edit("ConfigMap", break_query, where=is_dashboard, folder="monitoring/")
    problems = tree_copy.check("metrics")
    assert matching(problems, rel, f"ConfigMap/{configmap['metadata']['name']}", f"panel {panel_title[0]!r}",
                    "'orders_placed_total'"), problems


def test_real_dashboards_have_queries_to_check(tree_copy):
    """Guards the check above from passing vacuously: the dashboards exist and hold queries."""
    rel, _, configmap = tree_copy.find("ConfigMap", is_dashboard, folder="monitoring/")
    exprs = [t["expr"] for key, value in configmap["data"].items() if key.endswith(".json")
             for p in json.loads(value)["panels"] for t in p.get("targets", [])]
    assert exprs and all(metric_names(e) for e in exprs)


def test_promql_metric_names_leave_out_functions_labels_and_grafana_variables():
    expr = ('histogram_quantile(0.95, sum by (le, version) (rate(http_request_duration_seconds_bucket'
            '{service="payment", route=~"$route"}[$__rate_interval]))) / ignoring(version) group_left '
            'sum(rate(payments_total[5m] offset 1h)) > 0.5e3 and on(pod) up == 1')
    assert metric_names(expr) == {"http_request_duration_seconds_bucket", "payments_total", "up"}
    assert metric_names('label_replace(rate(response_total[1m]), "x", "$1", "deployment", "(.*)")') == {"response_total"}


def test_code_and_architecture_doc_list_the_same_service_metrics():
    from_code, source = known_metrics.service_metrics(REPO_ROOT)
    from_doc = known_metrics.architecture_table((REPO_ROOT / "docs/architecture.md").read_text())
    assert from_doc, "docs/architecture.md has no metric table under '## Metrics'"
    shop = set(known_metrics.metric_names_tuple(REPO_ROOT / "services/shopkit/shopkit/metrics.py") or ())
    assert shop == from_doc, f"{source} and docs/architecture.md disagree: {sorted(shop ^ from_doc)}"
    assert from_doc <= from_code


def test_histograms_add_bucket_sum_count_but_counters_do_not():
    names = known_metrics.series_names(["http_request_duration_seconds", "checkouts_total"])
    assert "http_request_duration_seconds_bucket" in names and "checkouts_total" in names
    assert "checkouts_total_bucket" not in names
