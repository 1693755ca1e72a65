"""PeerAuthentication and AuthorizationPolicy -> each workload's inbound mTLS mode and its DENY and ALLOW policies,
selected and ordered as istiod does (security/authz/builder, security/authz/model)."""
from __future__ import annotations

from tools.manifestcheck.model import Document, as_dict, as_list, matches

from ..intent import AuthzPolicy, AuthzRule, MeshIntent, Operation, Peer
from ..topology import Instance
from .common import Reader, wildcard

ROOT_NAMESPACE = "istio-system"
MTLS_MODES = {"STRICT", "PERMISSIVE", "DISABLE"}


def check_selector(doc: Document, intent: MeshIntent) -> None:
    Reader(doc, intent).only(doc.spec.get("selector"), "spec.selector", {"matchLabels"})


def selects(doc: Document, instance: Instance) -> bool | None:
    """True/False for a workload selector; None when the resource has none (namespace- or mesh-wide)."""
    labels = as_dict(as_dict(doc.spec.get("selector")).get("matchLabels"))
    if not labels:
        return None
    return (doc.namespace or "e-commerce") == instance.namespace and matches(labels, instance.labels)


def mtls_mode(instance: Instance, docs: list[Document], intent: MeshIntent) -> str:
    """Workload selector beats namespace beats mesh-wide (the root namespace); port-level beats the workload's."""
    mode, rank = "PERMISSIVE", -1  # Istio's default
    for doc in docs:
        reader = Reader(doc, intent)
        spec = reader.only(doc.spec, "spec", {"selector", "mtls", "portLevelMtls"})
        selected = selects(doc, instance)
        ns = doc.namespace or "e-commerce"
        level = 2 if selected else (1 if selected is None and ns == instance.namespace else
                                    0 if selected is None and ns == ROOT_NAMESPACE else -1)
        if level < 0 or level < rank:
            continue
        own = str(as_dict(spec.get("mtls")).get("mode", "UNSET")).upper()
        port_mode = as_dict(as_dict(spec.get("portLevelMtls")).get(instance.container_port) or
                            as_dict(spec.get("portLevelMtls")).get(str(instance.container_port))).get("mode")
        if port_mode and level == 2:
            own = str(port_mode).upper()
        if own in MTLS_MODES:
            mode, rank = own, level
        elif own != "UNSET":
            reader.warn("spec.mtls.mode", f"{own} is not STRICT, PERMISSIVE or DISABLE")
    return mode


# -- AuthorizationPolicy ---------------------------------------------------------------------------------------------
def policies_for(instance: Instance, docs: list[Document], intent: MeshIntent) -> tuple[list[AuthzPolicy], list[AuthzPolicy] | None]:
    deny: list[AuthzPolicy] = []
    allow: list[AuthzPolicy] | None = None
    for doc in docs:
        ns = doc.namespace or "e-commerce"
        selected = selects(doc, instance)
        if selected is False or (selected is None and ns not in (instance.namespace, ROOT_NAMESPACE)):
            continue
        policy = authz_policy(doc, instance, intent)
        if policy is None:
            continue
        if policy.action == "DENY":
            deny.append(policy)
        else:
            allow = (allow or []) + [policy]
    return deny, allow


def authz_policy(doc: Document, instance: Instance, intent: MeshIntent) -> AuthzPolicy | None:
    reader = Reader(doc, intent)
    spec = reader.only(doc.spec, "spec", {"selector", "action", "rules"})
    action = str(spec.get("action", "ALLOW")).upper()
    if action not in ("ALLOW", "DENY"):
        reader.warn("spec.action", f"{action} policies are not reproduced locally; this policy is skipped")
        return None
    rules = []
    for r, raw in enumerate(as_list(spec.get("rules"))):
        path = f"spec.rules[{r}]"
        raw = as_dict(raw)
        unsupported = sorted(set(raw) - {"from", "to"})
        peers, operations, ok = [], [], True
        for name in unsupported:
            reader.warn(f"{path}.{name}", "not reproduced locally: " + (
                "this ALLOW rule is dropped (a smaller allow, as istiod does with a rule it cannot translate)"
                if action == "ALLOW" else "the condition is left out (a wider deny)"))
            ok = action != "ALLOW"
        for f, entry in enumerate(as_list(raw.get("from"))):
            source = as_dict(as_dict(entry).get("source"))
            extra = sorted(set(source) - {"principals", "notPrincipals", "namespaces", "notNamespaces"})
            for name in extra:
                reader.warn(f"{path}.from[{f}].source.{name}", "not reproduced locally (no IPs or JWTs here)")
                ok = ok and action != "ALLOW"
            peers.append(Peer(
                principals=tuple(wildcard("spiffe://" + p if p != "*" else p) for p in as_list(source.get("principals"))),
                not_principals=tuple(wildcard("spiffe://" + p if p != "*" else p) for p in as_list(source.get("notPrincipals"))),
                namespaces=tuple(wildcard(n) for n in as_list(source.get("namespaces"))),
                not_namespaces=tuple(wildcard(n) for n in as_list(source.get("notNamespaces")))))
        for t, entry in enumerate(as_list(raw.get("to"))):
            operation = as_dict(as_dict(entry).get("operation"))
            extra = sorted(set(operation) - {"methods", "notMethods", "paths", "notPaths", "ports", "notPorts"})
            for name in extra:
                reader.warn(f"{path}.to[{t}].operation.{name}", "not reproduced locally")
                ok = ok and action != "ALLOW"
            operations.append(Operation(
                methods=tuple(str(m) for m in as_list(operation.get("methods"))),
                not_methods=tuple(str(m) for m in as_list(operation.get("notMethods"))),
                paths=tuple(wildcard(str(p)) for p in as_list(operation.get("paths"))),
                not_paths=tuple(wildcard(str(p)) for p in as_list(operation.get("notPaths"))),
                ports=tuple(int(p) for p in as_list(operation.get("ports"))),
                not_ports=tuple(int(p) for p in as_list(operation.get("notPorts")))))
        if not ok:
            continue
        if instance.protocol == "tcp" and any(o.http_only for o in operations):
            # builder: an HTTP-only field makes an ALLOW rule unusable on a TCP port (it never matches)
            if action == "ALLOW":
                continue
            operations = [Operation(ports=o.ports, not_ports=o.not_ports) for o in operations]
        rules.append(AuthzRule(tuple(peers), tuple(operations)))
    ns = doc.namespace or "e-commerce"
    return AuthzPolicy(f"ns[{ns}]-policy[{doc.name}]", action, rules, reader.origin)
