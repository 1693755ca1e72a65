"""The canary check: the share of payments v2 answered, judged against a binomial band."""
from __future__ import annotations

import concurrent.futures
import math
import secrets
from collections import Counter
from typing import Any

from .client import Shop, http, new_user, payment_version
from .results import FAIL, PASS, SKIP, Check, fmt_counter
from .settings import CANARY_SIGMAS, CANARY_V2_SHARE, CHECKOUT_TIMEOUT_S, CONCURRENCY
from .shop_checks import first_product


def canary_tolerance(calls: int, share: float = CANARY_V2_SHARE, sigmas: float = CANARY_SIGMAS) -> float:
    """Half-width of the accepted band of the v2 share: `sigmas` standard deviations of a binomial proportion."""
    return sigmas * math.sqrt(share * (1 - share) / calls) if calls else 1.0


def judge_canary(v1: int, v2: int) -> tuple[str, str, dict[str, Any]]:
    calls = v1 + v2
    tolerance = canary_tolerance(calls)
    low, high = max(0.0, CANARY_V2_SHARE - tolerance), min(1.0, CANARY_V2_SHARE + tolerance)
    share = v2 / calls if calls else 0.0
    figures = {"v1": v1, "v2": v2, "calls": calls, "v2_share": round(share, 4), "expected_v2_share": CANARY_V2_SHARE,
               "tolerance": round(tolerance, 4), "sigmas": CANARY_SIGMAS, "accepted": [round(low, 4), round(high, 4)]}
    text = (f"v1 {v1}, v2 {v2} of {calls} payment calls: v2 {share:.1%}, expected {CANARY_V2_SHARE:.0%} "
            f"+/- {tolerance:.1%} ({CANARY_SIGMAS:g} sd of a binomial over {calls})")
    if calls == 0:
        return FAIL, "no payment call reported its version (X-Payment-Version header or payment.version)", figures
    if low == 0.0:
        # The band reaches 0%: a cluster without any canary would pass too, so this count proves nothing.
        return SKIP, (f"too few payment calls with a version ({calls}); rerun with -n {canary_samples_needed()} "
                      f"or more ({text})"), figures
    return (PASS if low <= share <= high else FAIL), text, figures


def canary_samples_needed(share: float = CANARY_V2_SHARE, sigmas: float = CANARY_SIGMAS) -> int:
    """Calls from which the band's lower bound is above 0% (172 for 5% and 3 sd), rounded up to a hundred with
    room for the checkouts that reach no payment answer (up to ~20% with the seed's faults and no retries)."""
    calls = math.floor(sigmas ** 2 * (1 - share) / share) + 1
    return math.ceil(calls * 1.3 / 100) * 100


def sample_payment_versions(shop: Shop, samples: int, product: str) -> tuple[Counter[str], int]:
    """`samples` checkouts by fresh users, one payment call each; declines name their version too."""
    def one(_: int) -> str | None:
        user = new_user("canary")
        if not shop.add_to_cart(user, product, 1).ok:
            return None
        reply = http("POST", shop.url(f"/api/cart/{user}/checkout"), None,
                     {"Idempotency-Key": f"qt-{secrets.token_hex(8)}"}, CHECKOUT_TIMEOUT_S)
        return payment_version(reply)

    versions: Counter[str] = Counter()
    unknown = 0
    with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
        for version in pool.map(one, range(samples)):
            if version:
                versions[version] += 1
            else:
                unknown += 1
    return versions, unknown


def check_canary(shop: Shop, samples: int, mesh: str | None, local_versions: list[str]) -> Check:
    name = "canary split 95/5"
    if mesh is None:
        seen = Counter(local_versions)
        return Check(name, SKIP, "no mesh routes locally: the cart calls the one payment version at PAYMENT_URL"
                                 + (f" (this run's checkouts: {fmt_counter(seen)})" if seen else ""),
                     {"versions_seen": dict(seen)})
    product = first_product(shop)
    if product is None:
        return Check(name, FAIL, "no product to buy (catalog failed)")
    versions, unknown = sample_payment_versions(shop, samples, product)
    status, text, figures = judge_canary(versions.get("v1", 0), versions.get("v2", 0))
    figures["without_version"] = unknown
    if unknown:
        text += f"; {unknown} checkouts that reached no payment answer (timeouts, catalog errors) not counted"
    return Check(name, status, text, figures)

