"""Request and trace headers that travel from every inbound request to every outbound call.

Meshes start a span at each proxy, but only the application can join the inbound span to the outbound one: if a
service drops these headers, Jaeger shows disconnected fragments instead of one trace.
"""
from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping

# Istio/Envoy (B3, W3C, OpenTracing), and x-user which the fault-injection scenarios match on.
FORWARDED_HEADERS = (
    "x-request-id",
    "traceparent",
    "tracestate",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "b3",
    "x-ot-span-context",
    "x-user",
)
# Linkerd's context headers: l5d-ctx-deadline, l5d-ctx-trace, ...
FORWARDED_PREFIXES = ("l5d-ctx-",)

_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")


def headers_to_forward(inbound: Mapping[str, str]) -> dict[str, str]:
    """The subset of inbound headers every outbound call must carry."""
    out = {}
    for name, value in inbound.items():
        lower = name.lower()
        if lower in FORWARDED_HEADERS or lower.startswith(FORWARDED_PREFIXES):
            out[lower] = value
    return out


def trace_id_of(headers: Mapping[str, str]) -> str:
    """The trace id for logs, whichever propagation format the request used; empty when there is none."""
    match = _TRACEPARENT.fullmatch(headers.get("traceparent", "").strip().lower())
    if match:
        return match.group(1)
    b3_trace = headers.get("x-b3-traceid", "").strip()
    if b3_trace:
        return b3_trace.lower()
    single = headers.get("b3", "").strip()
    if single and single not in ("0", "1", "d"):
        return single.split("-", 1)[0].lower()
    return ""


def new_request_id() -> str:
    return str(uuid.uuid4())


def new_traceparent() -> str:
    """A sampled W3C traceparent, for requests that reach the edge without one (no mesh, or curl)."""
    return f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01"
