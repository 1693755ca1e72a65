"""Reading Linkerd's resources: durations as the policy controller parses them, identities, and Gateway API
HTTPRoute matches ranked the way linkerd2-proxy picks a route.

Sources (linkerd/linkerd2 at version-2.20, linkerd/linkerd2-proxy at release/v2.359.0, the proxy 2.20 ships):
- policy-controller/k8s/index/src/outbound/index.rs parse_duration: a whole number and a unit (ms, s, m, h, d);
  fractions are refused, "0" needs no unit.
- controller/identity/domain.go: a ServiceAccount's identity is <account>.<namespace>.serviceaccount.identity.
  <control namespace>.<trust domain>, i.e. ...identity.linkerd.cluster.local.
- linkerd/http/route/src/lib.rs and http/match.rs: of every match of every route that fits a request, the best
  wins: the longest path match (an exact path or a prefix counts its characters, a regex the whole path), then
  more header matches, more query matches, a method match; ties go to the route listed first (the controller
  lists routes by creation time, then name). A prefix matches whole segments (/api matches /api/x, not /apix).
"""
from __future__ import annotations

import re

from tools.manifestcheck.model import as_dict, as_list

from ..intent import RequestMatch, StringMatch
from ..manifests import MeshConfigError, Reader

CONTROL_NAMESPACE = "linkerd"
TRUST_DOMAIN = "cluster.local"
IDENTITY_SUFFIX = f"serviceaccount.identity.{CONTROL_NAMESPACE}.{TRUST_DOMAIN}"
# linkerd2's clusterNetworks default (charts/linkerd-control-plane/values.yaml) plus this machine's loopback,
# where every local workload has its address.
CLUSTER_NETWORKS = ("10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16", "fd00::/8", "127.0.0.0/8")
ALL_NETWORKS = ("0.0.0.0/0", "::/0")
DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)?$")
WHOLE = re.compile(r"^\+?[0-9]+$")
UNIT_S = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def identity(namespace: str, account: str) -> str:
    return f"{account}.{namespace}.{IDENTITY_SUFFIX}"


def namespace_identities(namespace: str) -> str:
    """MeshTLSAuthentication identityRefs kind Namespace: every account of it (ClusterInfo.namespace_identity)."""
    return f"*.{namespace}.{IDENTITY_SUFFIX}"


def identity_match(text: str) -> StringMatch:
    """IdentityMatch::from_str: `*` any identity, `*.rest` any name ending in .rest, else exact."""
    if text == "*":
        return StringMatch("present")
    if text.startswith("*."):
        return StringMatch("suffix", text[1:])
    return StringMatch("exact", text)


def seconds(value, where: str) -> float:
    text = str(value).strip()
    found = DURATION.match(text)
    if not found or (found.group(2) is None and found.group(1) != "0"):
        raise MeshConfigError(f"{where}: {value!r} is not a duration Linkerd accepts: a whole number and a unit "
                              "(ms, s, m, h, d), e.g. 3s or 500ms")
    return int(found.group(1)) * UNIT_S.get(found.group(2) or "s", 1.0)


def whole(value, where: str, low: int = 0, high: int = 2**32 - 1, trim: bool = True) -> int:
    """An unsigned integer as the controller's Rust parse (u16, u32) reads it, after a trim where the controller
    trims; anything else is refused with the field, never a stack trace."""
    text = str(value).strip() if trim else str(value)
    if not WHOLE.fullmatch(text) or not low <= int(text) <= high:
        raise MeshConfigError(f"{where}: {value!r} is not a whole number from {low} to {high}")
    return int(text)


def ratio(value, where: str) -> float:
    try:
        return float(str(value).strip())
    except ValueError:
        raise MeshConfigError(f"{where}: {value!r} is not a number") from None


# -- Gateway API HTTPRoute matches ----------------------------------------------------------------------------------
REGEX_RANK = 1 << 20  # a regex counts the whole request path: longer than any literal path written here


def path_match(reader: Reader, raw, where: str) -> tuple[StringMatch, int]:
    """The path condition and the number of characters it counts when it matches (the route's rank)."""
    raw = reader.only(raw, where, {"type", "value"})
    kind, value = str(raw.get("type", "PathPrefix")), str(raw.get("value", "/"))
    if kind == "Exact":
        return StringMatch("exact", value), len(value)
    if kind == "PathPrefix":
        trimmed = value.rstrip("/")
        return (StringMatch("prefix", "/"), 1) if not trimmed else (StringMatch("path_prefix", trimmed), len(trimmed))
    if kind == "RegularExpression":
        return StringMatch("regex", value), REGEX_RANK
    raise MeshConfigError(f"{reader.where(where)}: path type {kind!r} is not Exact, PathPrefix or RegularExpression")


def value_match(reader: Reader, raw: dict, where: str) -> tuple[str, StringMatch]:
    raw = reader.only(raw, where, {"type", "name", "value"})
    kind = str(raw.get("type", "Exact"))
    if kind not in ("Exact", "RegularExpression"):
        raise MeshConfigError(f"{reader.where(where)}: match type {kind!r} is not Exact or RegularExpression")
    return str(raw.get("name", "")), StringMatch("exact" if kind == "Exact" else "regex", str(raw.get("value", "")))


def request_matches(reader: Reader, rule: dict, where: str) -> list[tuple[tuple, RequestMatch]]:
    """(rank, match) of each entry of a rule's `matches`; a rule without matches takes every request, ranked as
    a PathPrefix of / (RequestMatch::default in the proxy)."""
    out = []
    entries = as_list(rule.get("matches")) or [{}]
    for m, raw in enumerate(entries):
        at = f"{where}.matches[{m}]"
        raw = reader.only(raw, at, {"path", "method", "headers", "queryParams"})
        path, length = path_match(reader, raw["path"], f"{at}.path") if "path" in raw else (None, 1)
        headers = tuple(sorted((name.lower(), match) for name, match in (
            value_match(reader, as_dict(h), f"{at}.headers[{i}]") for i, h in enumerate(as_list(raw.get("headers"))))))
        query = tuple(value_match(reader, as_dict(q), f"{at}.queryParams[{i}]")
                      for i, q in enumerate(as_list(raw.get("queryParams"))))
        method = StringMatch("exact", str(raw["method"]).upper()) if raw.get("method") else None
        rank = (length, len(headers), len(query), method is not None)
        out.append((rank, RequestMatch(path=path, method=method, headers=headers, query=query,
                                       name=f"match{m}" if len(entries) > 1 else "")))
    return out


def ranked(entries: list[tuple[tuple, int, object]]) -> list:
    """Best first: higher rank, then the earlier route (a stable sort keeps the written order of equals)."""
    return [item for _, _, item in sorted(entries, key=lambda e: (tuple(-x for x in e[0]), e[1]))]
