"""What a check ends with (PASS, FAIL or SKIP, a reason, the figures) and how results are printed."""
from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


@dataclass
class Check:
    name: str
    status: str
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)


def progress(message: str) -> None:
    """Progress goes to stderr so that stdout holds only the table (or the JSON)."""
    print(f"  .. {message}", file=sys.stderr, flush=True)


def retries(count: int) -> str:
    return f"{count} {'retry' if count == 1 else 'retries'}"


def fmt_counter(counter: Counter[str]) -> str:
    return ", ".join(f"{key}: {value}" for key, value in sorted(counter.items()))


def guarded(name: str, check: Callable[[], Any]) -> Any:
    """A check that breaks (an unexpected answer from kubectl or Prometheus) becomes a FAIL row, not a traceback."""
    try:
        return check()
    except Exception as err:  # noqa: BLE001 - any error of one check must not hide the others
        return Check(name, FAIL, f"the check itself failed: {type(err).__name__}: {err}")


def render_table(checks: list[Check], header: str, footer: str, colour: bool) -> str:
    colours = {PASS: "32", FAIL: "31", SKIP: "33"}
    width = max(len(c.name) for c in checks)
    lines = [header, "", f"{'CHECK':<{width}}  RESULT  REASON AND FIGURES"]
    for check in checks:
        status = f"\033[{colours[check.status]}m{check.status}\033[0m" if colour else check.status
        lines.append(f"{check.name:<{width}}  {status}    {check.reason}")
    lines += ["", footer]
    return "\n".join(lines)

