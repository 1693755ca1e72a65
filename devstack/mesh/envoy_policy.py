"""The pieces of Envoy configuration that come from the intent alone: route tables (matches, weighted clusters,
timeouts, retries, faults), outlier detection, and RBAC filters from authorization policies. Assembled per proxy
by envoy.py. Each follows the istiod function named beside it."""
from __future__ import annotations

from .intent import AuthzPolicy, InboundPort, Operation, Peer, RequestMatch, Retry, Route, StringMatch
from .topology import Instance, fqdn

T = "type.googleapis.com/"


def typed(kind: str, **fields) -> dict:
    return {"@type": T + kind, **fields}


def duration(seconds: float) -> str:
    return f"{seconds:.3f}s"


def address(port: int, host: str = "127.0.0.1") -> dict:
    return {"socket_address": {"address": host, "port_value": port}}


def cluster_name(direction: str, service: str, port: int, subset: str | None = None) -> str:
    """model.BuildSubsetKey: outbound|5003|v1|payment-service.e-commerce.svc.cluster.local"""
    return f"{direction}|{port}|{subset or ''}|{fqdn(service)}"


def inbound_cluster_name(port: int) -> str:
    return f"inbound|{port}||"


def route_config_name(service: str, port: int) -> str:
    return f"{fqdn(service)}:{port}"


# -- routes ----------------------------------------------------------------------------------------------------
def route_config(name: str, vhost: str, routes: list[Route]) -> dict:
    envoy_routes = []
    for route in routes:
        for match in route.matches or [None]:
            envoy_routes.append(envoy_route(route, match))
    return {"name": name, "validate_clusters": False,
            "virtual_hosts": [{"name": vhost, "domains": ["*"], "routes": envoy_routes}]}

def envoy_route(route: Route, match: RequestMatch | None) -> dict:
    action: dict = {"timeout": duration(route.timeout_s or 0)}
    backends = route.backends
    if len(backends) == 1:
        action["cluster"] = cluster_name("outbound", backends[0].service, backends[0].port, backends[0].subset)
    else:  # route.go: zero-weight destinations are left out when there are several
        action["weighted_clusters"] = {"clusters": [
            {"name": cluster_name("outbound", b.service, b.port, b.subset), "weight": b.weight}
            for b in backends if b.weight > 0]}
    if route.retry is not None:
        action["retry_policy"] = retry_policy(route.retry)
    name = f"{route.name}.{match.name}" if match is not None and match.name else route.name  # route.go
    out = {"name": name, "match": route_match(match), "route": action}
    if route.fault is not None:
        out["typed_per_filter_config"] = {"envoy.filters.http.fault": fault_config(route.fault)}
    return out


# -- authorization ---------------------------------------------------------------------------------------------
def rbac_filters(instance: Instance, port: InboundPort, http: bool) -> list[dict]:
    """builder.go: the DENY filter first, then the ALLOW one; none when no policy selects the workload."""
    out = []
    for action, policies in (("DENY", port.deny), ("ALLOW", port.allow)):
        if policies is None or (action == "DENY" and not policies):
            continue
        rules = {"action": action, "policies": {}}
        for policy in policies:
            rules["policies"].update(rbac_policies(instance, policy, http))
        name = f"istio.authorization.{action.lower()}"
        if http:
            out.append({"name": name, "typed_config": typed("envoy.extensions.filters.http.rbac.v3.RBAC",
                                                            rules=rules)})
        else:
            out.append({"name": name, "typed_config": typed("envoy.extensions.filters.network.rbac.v3.RBAC",
                                                            rules=rules, stat_prefix="tcp.")})
    return out

def rbac_policies(instance: Instance, policy: AuthzPolicy, http: bool) -> dict:
    if not policy.rules:
        return {f"{policy.name}-rule[0]": MATCH_NEVER}
    out = {}
    for i, rule in enumerate(policy.rules):
        permissions = [permission(instance, op) for op in rule.operations] or [{"any": True}]
        principals = [principal(peer) for peer in rule.peers] or [{"any": True}]
        out[f"{policy.name}-rule[{i}]"] = {"permissions": permissions, "principals": principals}
    return out

def permission(instance: Instance, op: Operation) -> dict:
    def port(number: int) -> dict:
        # Policies name container ports; locally the sidecar listens on its own port.
        local = instance.inbound_port if number == instance.container_port else number
        return {"destination_port": local}

    rules = []
    if op.methods:
        rules.append(or_rules([{"header": {"name": ":method", "string_match": {"exact": m}}} for m in op.methods]))
    if op.not_methods:
        rules.append({"not_rule": or_rules([{"header": {"name": ":method", "string_match": {"exact": m}}}
                                            for m in op.not_methods])})
    if op.paths:
        rules.append(or_rules([{"url_path": {"path": string_matcher(p)}} for p in op.paths]))
    if op.not_paths:
        rules.append({"not_rule": or_rules([{"url_path": {"path": string_matcher(p)}} for p in op.not_paths])})
    if op.ports:
        rules.append(or_rules([port(p) for p in op.ports]))
    if op.not_ports:
        rules.append({"not_rule": or_rules([port(p) for p in op.not_ports])})
    return {"and_rules": {"rules": rules or [{"any": True}]}}


MATCH_NEVER = {"permissions": [{"not_rule": {"any": True}}], "principals": [{"not_id": {"any": True}}]}


def or_rules(rules: list[dict]) -> dict:
    return {"or_rules": {"rules": rules}}


def principal(peer: Peer) -> dict:
    def authenticated(match: StringMatch) -> dict:
        return {"authenticated": {"principal_name": string_matcher(match)}}

    def namespace(match: StringMatch) -> dict:  # generator.go srcNamespaceGenerator
        pattern = match.value.replace("*", ".*") if match.kind != "present" else ".*"
        return {"authenticated": {"principal_name": {"safe_regex": {"regex": f".*/ns/{pattern}/.*"}}}}

    ids = []
    if peer.principals:
        ids.append({"or_ids": {"ids": [authenticated(p) for p in peer.principals]}})
    if peer.not_principals:
        ids.append({"not_id": {"or_ids": {"ids": [authenticated(p) for p in peer.not_principals]}}})
    if peer.namespaces:
        ids.append({"or_ids": {"ids": [namespace(n) for n in peer.namespaces]}})
    if peer.not_namespaces:
        ids.append({"not_id": {"or_ids": {"ids": [namespace(n) for n in peer.not_namespaces]}}})
    return {"and_ids": {"ids": ids or [{"any": True}]}}


def string_matcher(match: StringMatch) -> dict:
    if match.kind == "present":
        return {"safe_regex": {"regex": ".+"}}
    if match.kind == "regex":
        return {"safe_regex": {"regex": match.value}}
    return {match.kind: match.value}


def route_match(match: RequestMatch | None) -> dict:
    """route.go TranslateRouteMatch: a path (prefix / by default), headers sorted by name, then :method."""
    out: dict = {"prefix": "/"}
    if match is None:
        return out
    if match.path is not None:
        out = {{"exact": "path", "prefix": "prefix", "regex": "safe_regex"}[match.path.kind]:
               {"regex": match.path.value} if match.path.kind == "regex" else match.path.value}
    out["case_sensitive"] = not match.ignore_case
    headers = [header_matcher(name, m) for name, m in match.headers]
    if match.method is not None:
        headers.append(header_matcher(":method", match.method))
    if headers:
        out["headers"] = headers
    return out


def header_matcher(name: str, match: StringMatch) -> dict:
    return {"name": name, "string_match": string_matcher(match)}


def retry_policy(retry: Retry) -> dict:
    out = {"retry_on": ",".join(retry.retry_on), "num_retries": retry.attempts}
    if retry.per_try_timeout_s:
        out["per_try_timeout"] = duration(retry.per_try_timeout_s)
    if retry.retriable_status_codes:
        out["retriable_status_codes"] = list(retry.retriable_status_codes)
    if retry.other_hosts:
        out["retry_host_predicate"] = [{"name": "envoy.retry_host_predicates.previous_hosts", "typed_config": typed(
            "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate")}]
        out["host_selection_retry_max_attempts"] = 5
    return out


def percent(value: float) -> dict:
    """route.go translatePercentToFractionalPercent: per million."""
    return {"numerator": int(round(value * 10000)), "denominator": "MILLION"}


def fault_config(fault) -> dict:
    out = {}
    if fault.delay_s is not None:
        out["delay"] = {"fixed_delay": duration(fault.delay_s), "percentage": percent(fault.delay_percent)}
    if fault.abort_status is not None:
        out["abort"] = {"http_status": fault.abort_status, "percentage": percent(fault.abort_percent)}
    return typed("envoy.extensions.filters.http.fault.v3.HTTPFault", **out)


def outlier_detection(ejection) -> dict:
    """cluster_traffic_policy.go applyOutlierDetection."""
    out: dict = {"enforcing_success_rate": 0}
    if ejection.consecutive_5xx is not None:
        out["consecutive_5xx"] = ejection.consecutive_5xx
        out["enforcing_consecutive_5xx"] = 100 if ejection.consecutive_5xx > 0 else 0
    if ejection.consecutive_gateway_errors is not None:
        out["consecutive_gateway_failure"] = ejection.consecutive_gateway_errors
        out["enforcing_consecutive_gateway_failure"] = 100 if ejection.consecutive_gateway_errors > 0 else 0
    if ejection.interval_s:
        out["interval"] = duration(ejection.interval_s)
    if ejection.base_ejection_s:
        out["base_ejection_time"] = duration(ejection.base_ejection_s)
    if ejection.max_ejection_percent:
        out["max_ejection_percent"] = ejection.max_ejection_percent
    return out
