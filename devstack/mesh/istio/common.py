"""Reading Istio resources: the overlay's objects, durations, string matches, Istio's `*` patterns (the set of
objects and the Reader are shared with the Linkerd front end, in ../manifests.py)."""
from __future__ import annotations

import re

from tools.manifestcheck.model import Document, as_dict

from ..intent import StringMatch
from ..manifests import MeshConfigError, Reader, apply_operations, file_documents, key, overlay

__all__ = ["MeshConfigError", "Reader", "apply_operations", "file_documents", "key", "overlay_documents", "seconds",
           "string_match", "wildcard"]


def overlay_documents(tree) -> dict[tuple, Document]:
    """The steady state: every Istio object under istio/ outside scenarios/."""
    return overlay(tree.docs, "istio")


# -- small readers ---------------------------------------------------------------------------------------------------
DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)")


def seconds(value, where: str) -> float:
    """A protobuf / Go duration string as Istio accepts it: 3s, 1.5s, 500ms, 1m30s."""
    text = str(value).strip()
    parts = DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise MeshConfigError(f"{where}: {value!r} is not a duration like 3s or 500ms")
    unit = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    return sum(float(n) * unit[u] for n, u in parts)


def string_match(raw, where: str) -> StringMatch:
    raw = as_dict(raw)
    kinds = [k for k in ("exact", "prefix", "regex") if k in raw]
    if len(kinds) != 1:
        raise MeshConfigError(f"{where}: a string match needs exactly one of exact, prefix, regex (got {sorted(raw)})")
    return StringMatch(kinds[0], str(raw[kinds[0]]))


def wildcard(value: str) -> StringMatch:
    """Istio's `*` patterns in policies (matcher/string.go): `*` any, `*x` suffix, `x*` prefix, else exact."""
    if value == "*":
        return StringMatch("present")
    if value.startswith("*"):
        return StringMatch("suffix", value[1:])
    if value.endswith("*"):
        return StringMatch("prefix", value[:-1])
    return StringMatch("exact", value)
