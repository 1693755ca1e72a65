"""Shared by the stand-in `kubectl`, `istioctl` and `linkerd` of the quick-test tests (no cluster can run here).

They read what the "cluster" looks like from the JSON file named by QUICKTEST_FAKE_CONFIG and append every call they
receive, one JSON object per line, to QUICKTEST_FAKE_LOG, so a test can assert what quick-test.sh did.

Config keys:
  context                  current context name ("" = none)
  namespaces               {name: namespace object (metadata.labels / annotations)}
  services                 {"ns/name": {"port": 5000, "forward_to": "127.0.0.1:PORT", "load_balancer": [...]}}
  pods                     [{"name", "app", "version"?, "ready": true, "containers": [...]}]
  hosts                    {"payment-service:5003": "127.0.0.1:PORT"}: where `kubectl exec ... curl` really goes
  plaintext_hosts          the same for a pod started with injection disabled
  relay_forward_to         "127.0.0.1:PORT": where a port-forward to the meshed relay pod leads
  deployment_images        {"ns/name": "image"}: what `get deployment NAME -o jsonpath=...image` prints
  istio_mtls_mode          what `istioctl x describe pod` reports
  linkerd_edges            what `linkerd viz edges -o json` prints
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Any


def config() -> dict[str, Any]:
    with open(os.environ["QUICKTEST_FAKE_CONFIG"], encoding="utf-8") as handle:
        return json.load(handle)


def record(tool: str, args: list[str], **extra: Any) -> None:
    entry = {"tool": tool, "args": args, "pid": os.getpid(), "time": time.time(), **extra}
    with open(os.environ["QUICKTEST_FAKE_LOG"], "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")


def calls() -> list[dict[str, Any]]:
    path = os.environ["QUICKTEST_FAKE_LOG"]
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def fail(message: str, code: int = 1) -> None:
    print(message, file=sys.stderr)
    sys.exit(code)
