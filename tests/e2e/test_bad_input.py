"""Bad input: a 4xx with a JSON body naming the problem, on the service and through the gateway alike; nothing changes."""
import json

import pytest
import redis
import requests

from tests.support import admin_url

BAD_ADDS = [
    ("{not json", 400, "not valid JSON"),
    ("[1, 2]", 400, "must be a JSON object"),
    ('"text"', 400, "must be a JSON object"),
    ("", 400, "empty"),
    ('{"quantity": 1}', 400, "'product_id' is required"),
    ('{"product_id": "1"}', 400, "'quantity' is required"),
    ('{"product_id": 1, "quantity": 1}', 400, "'product_id' must be a non-empty string"),
    ('{"product_id": "1", "quantity": "2"}', 400, "'quantity' must be a whole number"),
    ('{"product_id": "1", "quantity": 1.5}', 400, "'quantity' must be a whole number"),
    ('{"product_id": "1", "quantity": true}', 400, "'quantity' must be a whole number"),
    ('{"product_id": "1", "quantity": 0}', 400, "between 1 and 99"),
    ('{"product_id": "1", "quantity": -3}', 400, "between 1 and 99"),
    ('{"product_id": "1", "quantity": 1000000000000}', 400, "between 1 and 99"),
    ('{"product_id": "1", "quantity": 1, "price": "0.01"}', 400, "unknown field"),
    ('{"product_id": "../etc", "quantity": 1}', 400, "product_id must be"),
    ('{"product_id": "404", "quantity": 1}', 404, "does not exist"),
]


@pytest.mark.parametrize("entry", ["cart", "api-gateway"])
@pytest.mark.parametrize("body,status,message", BAD_ADDS)
def test_bad_add_is_rejected_and_changes_nothing(stack, user, entry, body, status, message):
    prefix = "/api" if entry == "api-gateway" else ""
    response = requests.post(f"{stack.urls[entry]}{prefix}/cart/{user}/add", data=body,
                             headers={"Content-Type": "application/json"}, timeout=5)
    assert response.status_code == status
    assert message in response.json()["error"]
    assert requests.get(f"{stack.urls['cart']}/cart/{user}", timeout=5).json()["items"] == []


@pytest.mark.parametrize("entry", ["cart", "api-gateway"])
def test_oversized_body_is_413(stack, user, entry):
    prefix = "/api" if entry == "api-gateway" else ""
    response = requests.post(f"{stack.urls[entry]}{prefix}/cart/{user}/add", data="x" * 20_000,
                             headers={"Content-Type": "application/json"}, timeout=5)
    assert response.status_code == 413 and "larger than" in response.json()["error"]


@pytest.mark.parametrize("path", [
    "/api/cart/bad%20user", "/api/cart/" + "a" * 65, "/api/cart/%3Cscript%3E", "/api/products/1;DROP",
    "/api/orders/not-an-order", "/api/users/ü/orders",
])
def test_odd_ids_are_400(stack, path):
    response = requests.get(stack.urls["api-gateway"] + path, timeout=5)
    assert response.status_code == 400 and "must be" in response.json()["error"]


def test_set_quantity_bad_input(stack, user):
    gw = stack.urls["api-gateway"]
    requests.post(f"{gw}/api/cart/{user}/add", json={"product_id": "1", "quantity": 1}, timeout=5)
    for body, message in [({"quantity": 0}, "between 1 and 99"), ({"qty": 1}, "unknown field"),
                          ({"quantity": 100}, "between 1 and 99")]:
        response = requests.put(f"{gw}/api/cart/{user}/items/1", json=body, timeout=5)
        assert response.status_code == 400 and message in response.json()["error"]
    missing = requests.put(f"{gw}/api/cart/{user}/items/2", json={"quantity": 1}, timeout=5)
    assert missing.status_code == 404
    assert requests.get(f"{gw}/api/cart/{user}", timeout=5).json()["items"][0]["quantity"] == 1


def test_unknown_routes_and_methods_are_json(stack):
    gw = stack.urls["api-gateway"]
    assert requests.get(gw + "/api/nothing-here", timeout=5).json()["error"].startswith("no such endpoint")
    wrong_method = requests.delete(gw + "/api/products", timeout=5)
    assert wrong_method.status_code == 405 and "not allowed" in wrong_method.json()["error"]


def raw_request(port: int, request_line: str, headers: str = "", body: bytes = b"",
                with_length: bool = True) -> tuple[int, dict, bytes]:
    """Sends exactly what it is given (no client library normalises the path), returns (status, headers, body)."""
    import socket

    head = f"{request_line}\r\nHost: t\r\nConnection: close\r\n{headers}"
    if body and with_length:
        head += f"Content-Length: {len(body)}\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode("latin-1") + b"\r\n" + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split(" ", 2)[1]), {k.lower(): v for k, v in fields.items()}, payload


@pytest.mark.parametrize("path", ["/admin/faults", "/api/admin/faults", "/admin/../api/admin/faults",
                                  "/api/../admin/faults", "/%61dmin/faults"])
def test_gateway_exposes_no_admin_surface(stack, path):
    body = b'{"sick": true}'
    status, headers, payload = raw_request(stack.ports["api-gateway"], f"PUT {path} HTTP/1.1",
                                           "Content-Type: application/json\r\n", body)
    assert status in (404, 405) and "error" in json.loads(payload), (path, status, payload)
    assert requests.get(admin_url(stack, "api-gateway") + "/admin/faults", timeout=5).json()["sick"] is False


@pytest.mark.parametrize("raw", ['{"delay_ms": NaN}', '{"delay_ms": Infinity}', '{"delay_ms": -Infinity}',
                                 '{"delay_ms": 1e400}', '{"error_rate": NaN}', '{"timeout_seconds": 1e999}'])
def test_admin_faults_refuses_numbers_json_does_not_have(stack, raw):
    url = admin_url(stack, "payment-v1") + "/admin/faults"
    response = requests.put(url, data=raw, headers={"Content-Type": "application/json"}, timeout=5)
    assert response.status_code == 400, response.text
    assert "not valid JSON" in response.json()["error"] or "finite" in response.json()["error"]
    assert requests.get(url, timeout=5).json()["delay_ms"] == 0


@pytest.mark.parametrize("limit", ["\u00b2", "\u0663", "\uff11", "1\n", " 1", "+1", "1.0", "1e1"])
def test_notification_limit_must_be_ascii_digits(stack, limit):
    response = requests.get(f"{stack.urls['notification']}/notifications/ann", params={"limit": limit}, timeout=5)
    assert response.status_code == 400 and "limit" in response.json()["error"], (limit, response.text)


GATEWAY_GETS = ["/api", "/api/products", "/api/products/1", "/api/products/999", "/api/cart/head-user",
                "/api/orders/ord_00000000000000000000", "/api/users/head-user/orders",
                "/api/users/head-user/notifications", "/"]


@pytest.mark.parametrize("path", GATEWAY_GETS)
def test_head_answers_like_get_without_a_body(stack, path):
    url = stack.urls["api-gateway"] + path
    get, head = requests.get(url, timeout=5), requests.head(url, timeout=5)
    assert head.status_code == get.status_code < 500, (path, head.status_code, get.status_code)
    assert head.content == b""
    assert head.headers["Content-Type"] == get.headers["Content-Type"]


@pytest.mark.parametrize("entry,path", [("api-gateway", "/api/cart/abc%0A"), ("cart", "/cart/abc%0A"),
                                        ("api-gateway", "/api/products/1%0A"), ("catalog", "/products/1%0A"),
                                        ("api-gateway", "/api/orders/ord_00000000000000000000%0A"),
                                        ("notification", "/notifications/abc%0A")])
def test_an_id_with_a_trailing_newline_is_400(stack, entry, path):
    response = requests.get(stack.urls[entry] + path, timeout=5)
    assert response.status_code == 400 and "must be" in response.json()["error"], (path, response.text)


def test_a_cart_id_with_a_trailing_newline_stores_nothing(stack):
    response = requests.post(f"{stack.urls['cart']}/cart/nl%0A/add", json={"product_id": "1", "quantity": 1},
                             timeout=5)
    assert response.status_code == 400
    assert not list(redis.Redis.from_url(stack.redis_url).scan_iter("shop:cart:nl\n:*"))


@pytest.mark.parametrize("entry", ["api-gateway", "catalog", "cart", "payment-v1", "notification"])
def test_what_gunicorn_refuses_before_the_app_is_json_too(stack, entry):
    port = stack.ports[entry]
    cases = [
        (f"GET /{'a' * 5000} HTTP/1.1", "", 414),  # past limit_request_line
        ("GET /health HTTP/1.1", f"X-Big: {'b' * 9000}\r\n", 431),  # past limit_request_field_size
        ("G@T /health HTTP/1.1", "", 400),  # not a method
        ("GET /health HTTP/9.9", "", 400),
    ]
    for line, headers, expected in cases:
        status, fields, payload = raw_request(port, line, headers)
        assert status == expected, (line[:40], status, payload[:200])
        assert fields["content-type"].startswith("application/json"), (line[:40], fields)
        assert json.loads(payload)["error"], payload


def test_bad_idempotency_key_and_payment_input(stack, user):
    bad_key = requests.post(f"{stack.urls['api-gateway']}/api/cart/{user}/checkout",
                            headers={"Idempotency-Key": "has spaces"}, timeout=5)
    assert bad_key.status_code == 400 and "Idempotency-Key" in bad_key.json()["error"]
    payment = stack.urls["payment-v1"] + "/payments"
    no_key = requests.post(payment, json={"order_id": "o1", "user_id": "u", "amount": "1.00", "currency": "USD"},
                           timeout=5)
    assert no_key.status_code == 400 and no_key.json()["version"] == "v1"
    for amount in ("-1", "0", "1.234", "abc", "1e9", 5):
        response = requests.post(payment, headers={"Idempotency-Key": "k"}, timeout=5,
                                 json={"order_id": "o1", "user_id": "u", "amount": amount, "currency": "USD"})
        assert response.status_code == 400 and "amount" in response.json()["error"], amount


def test_admin_faults_rejects_bad_settings(stack):
    url = admin_url(stack, "catalog") + "/admin/faults"
    for body, message in [({"error_rate": 1.5}, "between 0 and 1"), ({"sick": "yes"}, "true or false"),
                          ({"nonsense": 1}, "unknown fault setting"), ({"delay_ms": -1}, "between"),
                          ({"decline_rate": 0.5}, "unknown fault setting")]:
        response = requests.put(url, json=body, timeout=5)
        assert response.status_code == 400 and message in response.json()["error"], body
    assert requests.get(url, timeout=5).json()["error_rate"] == 0.05  # unchanged


def chunked_post(port: int, path: str, body: bytes) -> tuple[int, dict]:
    """A POST with a chunked body and no length, which requests would not send."""
    pieces = [body[i:i + 4000] for i in range(0, len(body), 4000)]
    payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    status, _, answer = raw_request(port, f"POST {path} HTTP/1.1", "Content-Type: application/json\r\n"
                                    "Transfer-Encoding: chunked\r\n", payload, with_length=False)
    return status, json.loads(answer)


@pytest.mark.parametrize("entry", ["cart", "api-gateway"])
def test_oversized_chunked_body_is_413_not_truncated(stack, user, entry):
    prefix = "/api" if entry == "api-gateway" else ""
    body = b'{"product_id": "1", "quantity": 1, "padding": "' + b"a" * 60_000 + b'"}'
    status, answer = chunked_post(stack.ports[entry], f"{prefix}/cart/{user}/add", body)
    assert status == 413 and "larger than" in answer["error"]
    small = b'{"product_id": "1", "quantity": 1}'
    status, answer = chunked_post(stack.ports[entry], f"{prefix}/cart/{user}/add", small)
    assert status == 200 and answer["items"][0]["quantity"] == 1


@pytest.mark.parametrize("url_key,path", [("cart", "/cart/u1/add"), ("api-gateway", "/api/cart/u1/add"),
                                          ("payment-v1", "/payments"), ("catalog", "/admin/faults")])
def test_deeply_nested_json_is_400(stack, url_key, path):
    method = requests.put if path == "/admin/faults" else requests.post
    base = admin_url(stack, url_key) if path.startswith("/admin/") else stack.urls[url_key]
    response = method(base + path, data="[" * 5000, headers={"Idempotency-Key": "k"}, timeout=5)
    assert response.status_code == 400 and "nested too deeply" in response.json()["error"]


def test_made_up_methods_do_not_create_metric_series(stack):
    for method in ("FOO1", "BAR2"):
        assert requests.request(method, stack.urls["api-gateway"] + "/api/products", timeout=5).status_code == 405
    text = requests.get(stack.urls["api-gateway"] + "/metrics", timeout=5).text
    assert 'method="FOO1"' not in text and 'method="other"' in text


@pytest.mark.parametrize("line,expected", [("GET /health HTTP/9.9", 505), (f"GET /{'a' * 70000} HTTP/1.1", 414),
                                           ("BREW /health HTTP/1.1", 405), ("GET /admin/nothing HTTP/1.1", 404)])
def test_what_the_admin_port_refuses_is_json_too(stack, line, expected):
    port = int(admin_url(stack, "cart").rsplit(":", 1)[1])
    status, fields, payload = raw_request(port, line)
    assert status == expected, (line[:40], status, payload[:200])
    assert fields["content-type"].startswith("application/json") and json.loads(payload)["error"]
