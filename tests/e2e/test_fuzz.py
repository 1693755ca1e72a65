"""Seeded fuzz of every business port with faults off: odd ids, bodies, methods and headers. Whatever arrives, the
answer is never a 5xx, every error is JSON naming the problem, and the carts nobody addressed stay as they were.

The seed is fixed, so a failure is the same failure on the next run; FUZZ_SEED=<n> explores another sequence."""
import json
import os
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.support import add

SEED = int(os.environ.get("FUZZ_SEED", "9009"))
REQUESTS = 3000
METHODS = ["GET"] * 6 + ["POST"] * 4 + ["PUT", "DELETE", "HEAD", "HEAD", "PATCH", "OPTIONS", "TRACE", "FOO"]
# Every id the fuzz may put in a path. None of them is a sentinel's: those carts must not change.
ODD_IDS = ["fz-a", "fz-b", "fz_c", "1", "2", "14", "999", "0", "-1", "", "a" * 64, "a" * 65, "%2e%2e", "..", ".",
           "%00", "%0A", "abc%0A", "%0D%0A", "a%20b", "%C3%BC", "%F0%9F%9B%92", "%ff", "%", "%2F", "ord_" + "0" * 20,
           "ord_" + "f" * 20, "ord_" + "0" * 19, "ORD_" + "0" * 20, "%3Cscript%3E", "null", "true", "1e30", "NaN",
           "%C2%B2", "%D9%A3"]
KEYS = ["fz-key-1", "fz-key-2", "k" * 128, "k" * 129, "has space", "", "a:b.c_d-e", "\u00fc", "x" * 300]
TEMPLATES = {
    "api-gateway": ["/", "/api", "/api/products", "/api/products/{id}", "/api/cart/{user}", "/api/cart/{user}/add",
                    "/api/cart/{user}/items/{id}", "/api/cart/{user}/checkout", "/api/orders/{id}",
                    "/api/users/{user}/orders", "/api/users/{user}/notifications", "/static/{id}", "/api/{id}",
                    "/{id}", "/api/cart/{user}/{id}"],
    "catalog": ["/products", "/products/{id}", "/{id}"],
    "cart": ["/cart/{user}", "/cart/{user}/add", "/cart/{user}/items/{id}", "/cart/{user}/checkout", "/orders/{id}",
             "/users/{user}/orders", "/users/{user}/notifications"],
    "payment-v1": ["/payments", "/payments/{id}/cancel", "/payments/{id}"],
    "notification": ["/notifications", "/notifications/{user}", "/notifications/{user}?limit={id}"],
}


def odd_value(rng: random.Random, depth: int = 0):
    choices = [lambda: rng.randint(-3, 120), lambda: rng.choice([0, 1, 99, 100, 10**30, -10**30]),
               lambda: rng.choice([1.5, -0.0, 1e308, 0.1]), lambda: rng.choice(["1", "2", "", "x" * 600, "\u00b2"]),
               lambda: rng.choice([True, False, None]), lambda: rng.choice(ODD_IDS + KEYS)]
    if depth < 3:
        choices += [lambda: [odd_value(rng, depth + 1) for _ in range(rng.randint(0, 3))],
                    lambda: {rng.choice(["product_id", "quantity", "x"]): odd_value(rng, depth + 1)}]
    return rng.choice(choices)()


def odd_body(rng: random.Random) -> tuple[bytes | None, str | None]:
    kind = rng.randrange(10)
    if kind == 0:
        return None, None
    if kind == 1:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 64))), "application/octet-stream"
    if kind == 2:
        return rng.choice([b"{", b"[]", b'"s"', b"null", b"{\"a\": NaN}", b"{\"quantity\": Infinity}", b"[" * 3000,
                           b"{\"quantity\": 1e400}", b"\xef\xbb\xbf{}", b"{}" * 2]), "application/json"
    fields = ["product_id", "quantity", "user_id", "type", "message", "order_id", "amount", "currency", "extra"]
    body = {name: odd_value(rng) for name in rng.sample(fields, rng.randint(0, 4))}
    if rng.random() < 0.5:
        body.setdefault("product_id", rng.choice(["1", "2", "3", "999", "x"]))
        body.setdefault("quantity", rng.randint(1, 5))
    content_type = rng.choice(["application/json", "application/json", "text/plain", "application/json; charset=latin-1"])
    return json.dumps(body).encode(), content_type


def odd_headers(rng: random.Random) -> dict[str, str]:
    headers = {}
    if rng.random() < 0.4:
        headers["Idempotency-Key"] = rng.choice(KEYS)
    if rng.random() < 0.2:
        headers["traceparent"] = rng.choice(["garbage", "00-" + "0" * 32 + "-" + "0" * 16 + "-01", ""])
    if rng.random() < 0.2:
        headers["x-request-id"] = rng.choice(["fz", "x" * 500, "\u00e9"])
    if rng.random() < 0.1:
        headers["Accept"] = "text/html"
    return headers


def plan(rng: random.Random, urls: dict[str, str]) -> list[dict]:
    calls = []
    for _ in range(REQUESTS):
        service = rng.choice(list(TEMPLATES))
        path = rng.choice(TEMPLATES[service]).format(user=rng.choice(ODD_IDS), id=rng.choice(ODD_IDS + KEYS[:3]))
        body, content_type = odd_body(rng)
        headers = odd_headers(rng)
        if content_type:
            headers["Content-Type"] = content_type
        calls.append({"method": rng.choice(METHODS), "url": urls[service] + path, "data": body,
                      "headers": {k: v.encode("utf-8").decode("latin-1") for k, v in headers.items()}})
    return calls


def test_seeded_fuzz_of_every_service_gives_no_5xx_json_errors_and_leaves_other_carts_alone(stack, http):
    sentinels = [f"keep-{n}" for n in range(3)]
    for n, user in enumerate(sentinels):
        http.delete(f"{stack.urls['api-gateway']}/api/cart/{user}", timeout=5)
        add(http, stack, user, str(n + 1), n + 1)
    before = {user: http.get(f"{stack.urls['api-gateway']}/api/cart/{user}", timeout=5).json() for user in sentinels}

    local = threading.local()

    def send(call: dict) -> tuple[dict, int, str, bytes]:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        response = session.request(call["method"], call["url"], data=call["data"], headers=call["headers"],
                                   timeout=30, allow_redirects=False)
        return call, response.status_code, response.headers.get("Content-Type", ""), response.content

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(send, plan(random.Random(SEED), stack.urls)))

    problems = []
    for call, status, content_type, payload in results:
        where = f"{call['method']} {call['url']} -> {status}"
        if status >= 500:
            problems.append(f"{where}: {payload[:160]!r}")
        elif status >= 400:
            if not content_type.startswith("application/json"):
                problems.append(f"{where}: error as {content_type!r}")
            elif call["method"] != "HEAD":
                body = json.loads(payload)
                if not isinstance(body.get("error"), str) or not body["error"]:
                    problems.append(f"{where}: error body without an error string: {payload[:160]!r}")
    assert not problems, f"{len(problems)} of {len(results)} answers broke the rules (seed {SEED}):\n" + \
        "\n".join(problems[:25])
    assert {status for _, status, _, _ in results} >= {200, 400, 404, 405}, "the fuzz no longer reaches the services"
    after = {user: http.get(f"{stack.urls['api-gateway']}/api/cart/{user}", timeout=5).json() for user in sentinels}
    assert after == before
