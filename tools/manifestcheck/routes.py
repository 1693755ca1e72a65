"""Route semantics both meshes get wrong silently: canary weights and retries of requests that are not idempotent."""
from __future__ import annotations

import re

from .model import Document, Problem, Tree, as_dict, as_list

SAFE_METHODS = {"GET", "HEAD"}
# What a method matcher is tested against: anything beyond GET/HEAD that it lets through can carry a body.
ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE")
LINKERD_RETRY_PREFIX = "retry.linkerd.io/"


def check(tree: Tree) -> list[Problem]:
    problems: list[Problem] = []
    for vs in tree.of_kind("VirtualService", group="networking.istio.io"):
        problems.extend(istio_weights(vs))
        problems.extend(istio_retries(vs))
    for route in tree.of_kind("HTTPRoute", "GRPCRoute"):
        problems.extend(route_weights(route))
        problems.extend(linkerd_route_retries(route))
    for svc in tree.of_kind("Service"):
        retry = sorted(k for k in svc.metadata.get("annotations") or {} if k.startswith(LINKERD_RETRY_PREFIX))
        if retry:
            problems.append(svc.problem(
                f"carries {', '.join(retry)}: every route without its own retry annotations inherits them, POST "
                "included; put them on a GET-only HTTPRoute instead"))
    return problems


# -- weights ---------------------------------------------------------------------------------------------------------
def weight_problem(where: str, weights: list) -> str | None:
    """Several destinations must each write a weight and together make 100; one destination may omit it."""
    if len(weights) > 1 and any(w is None for w in weights):
        return f"{where}: {len(weights)} destinations but not every one has a weight ({weights})"
    written = [w for w in weights if w is not None]
    if written and (not all(isinstance(w, int) for w in written) or sum(written) != 100):
        return f"{where}: weights {written} add up to {sum(w for w in written if isinstance(w, int))}, not 100"
    return None


def istio_weights(vs: Document) -> list[Problem]:
    problems = []
    for kind in ("http", "tcp", "tls"):
        for i, route in enumerate(as_list(vs.spec.get(kind))):
            destinations = [as_dict(d) for d in as_list(as_dict(route).get("route"))]
            message = weight_problem(f"{kind}[{i}]{route_label(route)}", [d.get("weight") for d in destinations])
            if message:
                problems.append(vs.problem(message))
    return problems


def route_weights(route: Document) -> list[Problem]:
    problems = []
    for r, rule in enumerate(as_list(route.spec.get("rules"))):
        backends = [as_dict(b) for b in as_list(as_dict(rule).get("backendRefs"))]
        message = weight_problem(f"rules[{r}]{route_label(rule)}", [b.get("weight") for b in backends])
        if message:
            problems.append(route.problem(message))
    return problems


def route_label(route) -> str:
    name = as_dict(route).get("name")
    return f" ({name})" if name else ""


# -- retries ---------------------------------------------------------------------------------------------------------
def methods_let_through(matcher) -> set[str]:
    """The methods an Istio StringMatch (exact/prefix/regex, RE2 full match) accepts; all for anything else."""
    matcher = as_dict(matcher)
    if "exact" in matcher:
        return {m for m in ALL_METHODS if m == matcher["exact"]}
    if "prefix" in matcher:
        return {m for m in ALL_METHODS if m.startswith(str(matcher["prefix"]))}
    if "regex" in matcher:
        try:
            pattern = re.compile(str(matcher["regex"]))
        except re.error:
            return set(ALL_METHODS)
        return {m for m in ALL_METHODS if pattern.fullmatch(m)}
    return set(ALL_METHODS)


def istio_route_methods(route: dict) -> set[str]:
    """Methods an Istio HTTPRoute can receive: the union over its match entries (no match = everything)."""
    matches = [as_dict(m) for m in as_list(route.get("match"))]
    if not matches:
        return set(ALL_METHODS)
    out: set[str] = set()
    for match in matches:
        out |= methods_let_through(match["method"]) if "method" in match else set(ALL_METHODS)
    return out


def istio_retries(vs: Document) -> list[Problem]:
    problems = []
    for i, route in enumerate(as_list(vs.spec.get("http"))):
        route = as_dict(route)
        unsafe = sorted(istio_route_methods(route) - SAFE_METHODS, key=ALL_METHODS.index)
        attempts = as_dict(route.get("retries")).get("attempts")
        if unsafe and attempts != 0:
            problems.append(vs.problem(
                f"http[{i}]{route_label(route)} can carry {'/'.join(unsafe[:4])} but retries.attempts is "
                f"{'unset (Istio then retries twice by default)' if attempts is None else attempts}; "
                "set retries: {attempts: 0} or match only GET/HEAD"))
    return problems


def linkerd_route_retries(route: Document) -> list[Problem]:
    annotations = route.metadata.get("annotations") or {}
    retry = sorted(k for k in annotations if k.startswith(LINKERD_RETRY_PREFIX))
    if not retry:
        return []
    problems = []
    for r, rule in enumerate(as_list(route.spec.get("rules"))):
        matches = [as_dict(m) for m in as_list(as_dict(rule).get("matches"))]
        methods = {str(m.get("method", "*")) for m in matches} or {"*"}
        if not methods <= SAFE_METHODS:
            problems.append(route.problem(
                f"carries {', '.join(retry)} but rules[{r}] matches methods {sorted(methods)} ('*' = any, POST "
                "included); Linkerd retries every request of a route with these annotations, so match only GET/HEAD"))
    return problems
