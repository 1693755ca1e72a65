"""Route semantics both meshes get wrong silently: canary weights (per route and across the routes of one
Service), retries of requests that are not idempotent, missing timeouts, ServiceProfiles that override it all."""
from __future__ import annotations

import re
from dataclasses import dataclass

from .model import Document, Problem, Tree, as_dict, as_list, dig
from .references import CORE_GROUPS, istio_host, pods_selected, same_host

SAFE_METHODS = {"GET", "HEAD"}
# What a method matcher is tested against: anything beyond GET/HEAD that it lets through can carry a body.
ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE")
LINKERD_RETRY_PREFIX = "retry.linkerd.io/"
LINKERD_REQUEST_TIMEOUT = "timeout.linkerd.io/request"


def check(tree: Tree) -> list[Problem]:
    problems: list[Problem] = []
    for vs in tree.of_kind("VirtualService", group="networking.istio.io"):
        problems.extend(istio_weights(vs))
        problems.extend(istio_retries(vs))
        problems.extend(istio_timeouts(vs))
    for route in tree.of_kind("HTTPRoute", "GRPCRoute"):
        problems.extend(route_weights(route))
        problems.extend(linkerd_route_retries(route))
        problems.extend(linkerd_route_timeout(route))
    for units in istio_split_groups(tree) + linkerd_split_groups(tree):
        problems.extend(split_problems(units))
    for profile in tree.of_kind("ServiceProfile", group="linkerd.io"):
        problems.append(profile.problem(
            "ServiceProfiles override HTTPRoutes: while one exists for a Service, Linkerd ignores that Service's "
            "HTTPRoutes (the canary split), their retry/timeout annotations and failure accrual; delete it and "
            "configure the route with an HTTPRoute"))
    for svc in tree.of_kind("Service") + [p for p in tree.patches if p.kind == "Service"]:
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


# -- timeouts --------------------------------------------------------------------------------------------------------
def istio_timeouts(vs: Document) -> list[Problem]:
    """Istio sets no request timeout by default: a hung upstream holds the caller until its own timeout."""
    return [vs.problem(f"http[{i}]{route_label(route)} has no `timeout`; set one below the caller's read timeout "
                       "(docs/architecture.md), so the mesh answers first")
            for i, route in enumerate(as_list(vs.spec.get("http"))) if as_dict(route).get("timeout") is None]


def service_parents(route: Document) -> list[dict]:
    """The parentRefs of a route that name a Service (Linkerd's outbound routes; see references.CORE_GROUPS)."""
    return [p for p in as_list(route.spec.get("parentRefs"))
            if as_dict(p).get("kind") == "Service" and as_dict(p).get("group", route.group) in CORE_GROUPS]


def linkerd_route_timeout(route: Document) -> list[Problem]:
    """Outbound routes (a Service parent) without timeout.linkerd.io/request wait for ever (Linkerd has no default);
    routes attached to a Server are inbound authorization routes, where the annotation means nothing."""
    if not service_parents(route) or LINKERD_REQUEST_TIMEOUT in (route.metadata.get("annotations") or {}):
        return []
    return [route.problem(f"has no {LINKERD_REQUEST_TIMEOUT} annotation; Linkerd then sets no timeout, so give "
                          "every route of a Service one below the caller's read timeout")]


# -- the canary split across the routes of one Service ----------------------------------------------------------------
@dataclass
class SplitUnit:
    """One route (Istio http[i]) or rule (HTTPRoute rules[r]) with its weighted destinations."""

    doc: Document
    where: str
    split: tuple  # ((destination, share of the traffic), ...) sorted
    pods: frozenset  # (path, index) of the pod templates its destinations reach

    def describe(self) -> str:
        return ", ".join(f"{dest} {share * 100:g}%" for dest, share in self.split) or "no destination"


def shares(weighted: list[tuple[str, object]]) -> tuple:
    """Normalised traffic shares; an unset weight counts 1 (Gateway API's default; Istio's lone destination)."""
    weights = [(dest, w if isinstance(w, int) else 1) for dest, w in weighted]
    total = sum(w for _, w in weights)
    merged: dict[str, float] = {}
    for dest, w in weights:
        merged[dest] = merged.get(dest, 0.0) + (w / total if total else 0.0)
    return tuple(sorted((dest, round(share, 6)) for dest, share in merged.items()))


def split_problems(units: list[SplitUnit]) -> list[Problem]:
    """Every unit that reaches the pods of another unit must split exactly like it; the unit with the most
    destinations (the canary split) is the reference, so the odd one out is reported, not the split."""
    problems = []
    for unit in units:
        overlapping = [(len(other.split), -j, other) for j, other in enumerate(units) if unit.pods & other.pods]
        if not overlapping:
            continue  # no destination (a redirect or a direct response): nothing to split
        _, _, reference = max(overlapping, key=lambda t: t[:2])
        if reference is not unit and reference.split != unit.split:
            same_doc = reference.doc is unit.doc
            ref_name = reference.where if same_doc else f"{reference.doc.kind}/{reference.doc.name} {reference.where} ({reference.doc.path})"
            problems.append(unit.doc.problem(
                f"{unit.where} sends to {unit.describe()} but {ref_name} splits the same pods {reference.describe()}: "
                "the canary split leaks; every route of this Service must carry the same weighted destinations"))
    return problems


def istio_split_units(tree: Tree, vs: Document) -> list[SplitUnit]:
    rules = tree.of_kind("DestinationRule", group="networking.istio.io")
    units = []
    for i, route in enumerate(as_list(vs.spec.get("http"))):
        weighted, pods = [], set()
        for dest in as_list(as_dict(route).get("route")):
            d = as_dict(as_dict(dest).get("destination"))
            host = d.get("host")
            if not isinstance(host, str):
                continue
            name, ns = istio_host(host, vs.namespace)
            subset, port = d.get("subset"), dig(d, "port", "number")
            label = name + (f"/{subset}" if subset else "") + (f":{port}" if port else "")
            weighted.append((label, as_dict(dest).get("weight")))
            for svc in tree.find("Service", name, ns):
                labels = dict(as_dict(svc.spec.get("selector")))
                if subset:
                    labels.update(next((as_dict(s.get("labels")) for r in rules if same_host(r, name, ns)
                                        for s in as_list(r.spec.get("subsets")) if s.get("name") == subset), {}))
                pods |= {(p.doc.path, p.doc.index) for p in pods_selected(tree, labels, ns)}
            if not tree.find("Service", name, ns):
                pods.add(("service", label))  # unknown host: references.py reports it; still comparable by name
        units.append(SplitUnit(vs, f"http[{i}]{route_label(route)}", shares(weighted), frozenset(pods)))
    return units


def states(docs: list[Document]) -> list[dict[tuple, Document]]:
    """The steady state (files outside scenarios/) and each scenario file applied on top of it: a scenario's object
    replaces the one of the same kind, namespace and name, as `kubectl apply -f` does."""
    base = {(d.namespace, d.kind, d.name): d for d in docs if not d.is_scenario}
    out = [base]
    for path in sorted({d.path for d in docs if d.is_scenario}):
        out.append({**base, **{(d.namespace, d.kind, d.name): d for d in docs if d.path == path}})
    return out


def istio_split_groups(tree: Tree) -> list[list[SplitUnit]]:
    """The http routes of all VirtualServices for one host (and gateway set), per state."""
    groups = []
    for state in states(tree.of_kind("VirtualService", group="networking.istio.io")):
        by_host: dict[tuple, list[SplitUnit]] = {}
        for vs in state.values():
            gateways = tuple(sorted(str(g) for g in as_list(vs.spec.get("gateways")))) or ("mesh",)
            units = istio_split_units(tree, vs)
            for host in as_list(vs.spec.get("hosts")):
                by_host.setdefault((istio_host(str(host), vs.namespace), gateways), []).extend(units)
        groups.extend(by_host.values())
    return groups


def linkerd_split_groups(tree: Tree) -> list[list[SplitUnit]]:
    """The rules of all routes attached to one parent Service and port, per state."""
    groups = []
    for state in states([r for r in tree.of_kind("HTTPRoute", "GRPCRoute") if service_parents(r)]):
        by_parent: dict[tuple, list[SplitUnit]] = {}
        for route in state.values():
            for parent in service_parents(route):
                key = (parent.get("namespace") or route.namespace, parent.get("name"), parent.get("port"))
                by_parent.setdefault(key, []).extend(linkerd_units(tree, route))
        groups.extend(by_parent.values())
    return groups


def linkerd_units(tree: Tree, route: Document) -> list[SplitUnit]:
    units = []
    for r, rule in enumerate(as_list(route.spec.get("rules"))):
        weighted, pods = [], set()
        for backend in as_list(as_dict(rule).get("backendRefs")):
            backend = as_dict(backend)
            name, ns = backend.get("name", ""), backend.get("namespace") or route.namespace
            weighted.append((f"{name}:{backend.get('port')}", backend.get("weight")))
            services = tree.find("Service", name, ns)
            for svc in services:
                pods |= {(p.doc.path, p.doc.index) for p in pods_selected(tree, as_dict(svc.spec.get("selector")), ns)}
            if not services:
                pods.add(("service", name))
        units.append(SplitUnit(route, f"rules[{r}]{route_label(rule)}", shares(weighted), frozenset(pods)))
    return units
