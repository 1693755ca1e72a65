"""Bad input: a 4xx with a JSON body naming the problem, on the service and through the gateway alike; nothing changes."""
import pytest
import requests

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


def test_gateway_exposes_no_admin_surface(stack):
    for path in ("/api/admin/faults", "/admin/../api/admin/faults"):
        assert requests.put(stack.urls["api-gateway"] + path, json={"sick": True}, timeout=5).status_code in (404, 405)
    assert requests.get(stack.urls["catalog"] + "/admin/faults", timeout=5).json()["sick"] is False


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
    url = stack.urls["catalog"] + "/admin/faults"
    for body, message in [({"error_rate": 1.5}, "between 0 and 1"), ({"sick": "yes"}, "true or false"),
                          ({"nonsense": 1}, "unknown fault setting"), ({"delay_ms": -1}, "between"),
                          ({"decline_rate": 0.5}, "unknown fault setting")]:
        response = requests.put(url, json=body, timeout=5)
        assert response.status_code == 400 and message in response.json()["error"], body
    assert requests.get(url, timeout=5).json()["error_rate"] == 0.05  # unchanged


def raw_post(port: int, path: str, body: bytes, chunked: bool) -> tuple[int, dict]:
    """A hand-written HTTP/1.1 request, to send what requests would not (a chunked body with no length)."""
    import json
    import socket

    head = f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nConnection: close\r\n"
    if chunked:
        pieces = [body[i:i + 4000] for i in range(0, len(body), 4000)]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
        head += "Transfer-Encoding: chunked\r\n\r\n"
    else:
        payload = body
        head += f"Content-Length: {len(body)}\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode() + payload)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    return status, json.loads(answer.split(b"\r\n\r\n", 1)[1])


@pytest.mark.parametrize("entry", ["cart", "api-gateway"])
def test_oversized_chunked_body_is_413_not_truncated(stack, user, entry):
    prefix = "/api" if entry == "api-gateway" else ""
    body = b'{"product_id": "1", "quantity": 1, "padding": "' + b"a" * 60_000 + b'"}'
    status, answer = raw_post(stack.ports[entry], f"{prefix}/cart/{user}/add", body, chunked=True)
    assert status == 413 and "larger than" in answer["error"]
    small = b'{"product_id": "1", "quantity": 1}'
    status, answer = raw_post(stack.ports[entry], f"{prefix}/cart/{user}/add", small, chunked=True)
    assert status == 200 and answer["items"][0]["quantity"] == 1


@pytest.mark.parametrize("url_key,path", [("cart", "/cart/u1/add"), ("api-gateway", "/api/cart/u1/add"),
                                          ("payment-v1", "/payments"), ("catalog", "/admin/faults")])
def test_deeply_nested_json_is_400(stack, url_key, path):
    method = requests.put if path == "/admin/faults" else requests.post
    response = method(stack.urls[url_key] + path, data="[" * 5000, headers={"Idempotency-Key": "k"}, timeout=5)
    assert response.status_code == 400 and "nested too deeply" in response.json()["error"]


def test_made_up_methods_do_not_create_metric_series(stack):
    for method in ("FOO1", "BAR2"):
        assert requests.request(method, stack.urls["api-gateway"] + "/api/products", timeout=5).status_code == 405
    text = requests.get(stack.urls["api-gateway"] + "/metrics", timeout=5).text
    assert 'method="FOO1"' not in text and 'method="other"' in text
