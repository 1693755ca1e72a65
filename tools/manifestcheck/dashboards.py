"""Every Grafana panel query and Prometheus rule in monitoring/ names a metric that something exports."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml

from . import known_metrics
from .model import Document, Problem, Tree, as_dict, as_list

MONITORING = "monitoring/"
PROMQL_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or", "unless",
    "inf", "nan", "start", "end", "atan2",
}
IDENT = re.compile(r"(?<![\w.:$])([a-zA-Z_:][a-zA-Z0-9_:]*)")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
GRAFANA_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[\w+(?::\w+)?\]\]")
GO_TEMPLATE = re.compile(r"\{\{.*?\}\}", re.S)  # Flagger's {{ namespace }}, {{ interval }}
LABEL_VALUES = re.compile(r"^\s*label_values\s*\((?:(?P<expr>.*),)?\s*[\w.]+\s*\)\s*$", re.S)


@dataclass
class Query:
    where: str  # "dashboard 'Shop overview' panel 'Errors'"
    expr: str


def check(tree: Tree) -> list[Problem]:
    ours, source = known_metrics.service_metrics(tree.root)
    known = known_metrics.series_names(ours) | known_metrics.mesh_and_prometheus_series()
    recorded = set()
    owners: list[tuple[Any, list[Query]]] = []
    for doc in tree.docs:
        if doc.kind == "MetricTemplate" and doc.group == "flagger.app" and isinstance(doc.spec.get("query"), str):
            owners.append((doc, [Query("Flagger MetricTemplate query", doc.spec["query"])]))
            continue
        if not doc.path.startswith(MONITORING):
            continue
        queries = list(document_queries(doc))
        recorded |= {q.expr for q in queries if q.where == "record"}
        owners.append((doc, [q for q in queries if q.where != "record"]))
    for rel in tree.other_files:
        if rel.startswith(MONITORING) and rel.endswith(".json"):
            try:
                dashboard = json.loads((tree.root / rel).read_text(encoding="utf-8"))
            except ValueError:
                continue  # the parse step reports it
            owners.append((rel, list(dashboard_queries(dashboard, Path(rel).name))))
    problems = []
    for owner, queries in owners:
        for query in queries:
            if query.where == "invalid":
                problems.append(owner.problem(query.expr))
                continue
            for name in sorted(metric_names(query.expr) - known - recorded):
                message = (f"{query.where}: query names metric {name!r}, which neither our services ({source}) "
                           f"nor the Istio/Linkerd proxies export (tools/manifestcheck/known_metrics.py)")
                problems.append(owner.problem(message) if isinstance(owner, Document) else Problem(owner, message=message))
    return problems


def document_queries(doc: Document) -> Iterator[Query]:
    """Dashboards in ConfigMap data, Prometheus rule files in ConfigMaps, PrometheusRule-shaped objects."""
    if doc.kind == "ConfigMap":
        for key, value in as_dict(doc.obj.get("data")).items():
            if not isinstance(value, str):
                continue
            if key.endswith(".json"):
                try:
                    parsed = json.loads(value)
                except ValueError as exc:
                    yield Query("invalid", f"data {key} does not parse as JSON: {exc}")
                    continue
                yield from dashboard_queries(parsed, key)
            elif key.endswith((".yaml", ".yml", ".rules")):
                try:
                    parsed = yaml.safe_load(value)
                except yaml.YAMLError:
                    continue
                yield from rule_queries(parsed, key)
    elif "groups" in doc.spec:
        yield from rule_queries(doc.spec, doc.name)


def rule_queries(parsed: Any, name: str) -> Iterator[Query]:
    for group in as_list(as_dict(parsed).get("groups")):
        for rule in as_list(as_dict(group).get("rules")):
            rule = as_dict(rule)
            if isinstance(rule.get("record"), str):
                yield Query("record", rule["record"])
            if isinstance(rule.get("expr"), (str, int, float)):
                label = rule.get("record") or rule.get("alert") or "?"
                yield Query(f"{name} rule {label!r}", str(rule["expr"]))


def dashboard_queries(dashboard: Any, name: str) -> Iterator[Query]:
    dashboard = as_dict(dashboard)
    if "dashboard" in dashboard and "panels" not in dashboard:
        dashboard = as_dict(dashboard["dashboard"])
    title = dashboard.get("title") or name
    for panel in walk_panels(as_list(dashboard.get("panels")) + [p for row in as_list(dashboard.get("rows")) for p in as_list(as_dict(row).get("panels"))]):
        for target in as_list(panel.get("targets")):
            expr = as_dict(target).get("expr")
            if isinstance(expr, str) and expr.strip():
                yield Query(f"dashboard {title!r} panel {panel.get('title', '?')!r}", expr)
    for variable in as_list(as_dict(dashboard.get("templating")).get("list")):
        variable = as_dict(variable)
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if variable.get("type") == "query" and isinstance(query, str):
            match = LABEL_VALUES.match(query)
            if match:
                query = match.group("expr") or ""
            yield Query(f"dashboard {title!r} variable {variable.get('name', '?')!r}", query)


def walk_panels(panels: list) -> Iterator[dict]:
    for panel in panels:
        if isinstance(panel, dict):
            yield panel
            yield from walk_panels(as_list(panel.get("panels")))  # collapsed rows hold their panels


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (function names, labels, keywords and durations removed)."""
    text = GRAFANA_VARIABLE.sub(" ", GO_TEMPLATE.sub("x", expr))
    text = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', " ", text)  # strings
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = GROUPING.sub(" ", text)
    names = set()
    for match in IDENT.finditer(text):
        name = match.group(1)
        rest = text[match.end():].lstrip()
        if name.lower() in PROMQL_KEYWORDS or rest.startswith("("):
            continue  # a keyword or a function call
        names.add(name)
    return names
