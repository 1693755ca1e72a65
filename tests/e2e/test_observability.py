"""Version stamps, Prometheus metrics by route template (summed over gunicorn workers), JSON logs with ids."""
import json
import time

import requests

from tests.support import add, metric_value, spread_over_workers


def test_every_response_names_service_version_instance(stack):
    expected = {"api-gateway": ("api-gateway", "v1"), "catalog": ("catalog", "v1"), "cart": ("cart", "v1"),
                "payment-v1": ("payment", "v1"), "payment-v2": ("payment", "v2"),
                "notification": ("notification", "v1")}
    instances = set()
    for name, (service, version) in expected.items():
        for path in ("/health", "/no-such-path"):
            response = requests.get(stack.urls[name] + path, timeout=5)
            assert response.headers["X-Service-Name"] == service
            assert response.headers["X-Service-Version"] == version
            instances.add(response.headers["X-Service-Instance"])
    assert len(instances) == len(expected)


def test_payment_versions_differ_in_the_body(stack):
    bodies = {}
    for name in ("payment-v1", "payment-v2"):
        response = requests.post(stack.urls[name] + "/payments", headers={"Idempotency-Key": f"vis-{name}"},
                                 json={"order_id": "o1", "user_id": "u1", "amount": "10.00", "currency": "USD"},
                                 timeout=5)
        assert response.status_code == 201
        bodies[name] = response.json()
    assert bodies["payment-v1"]["version"] == "v1" and isinstance(bodies["payment-v1"]["receipt"], str)
    assert "fraud_check" not in bodies["payment-v1"]
    assert bodies["payment-v2"]["version"] == "v2" and bodies["payment-v2"]["receipt"]["format"] == "itemised-v2"
    assert 0 <= bodies["payment-v2"]["fraud_check"]["score"] <= 1


def log_lines(stack, service: str, **match) -> list[dict]:
    lines = []
    for raw in (stack.logs_dir / f"{service}.log").read_text().splitlines():
        if raw.startswith("{"):
            line = json.loads(raw)
            if all(line.get(k) == v for k, v in match.items()):
                lines.append(line)
    return lines


def test_request_counter_sums_all_workers(stack):
    catalog = stack.urls["catalog"]

    def served():
        return metric_value(requests.get(catalog + "/metrics", timeout=5).text, "http_requests_total",
                            route="/products", method="GET", status="200", service="catalog")

    before = served()
    sent, pids = spread_over_workers(
        lambda rid: requests.get(catalog + "/products", headers={"x-request-id": rid}, timeout=10),
        stack.logs_dir / "catalog.log", "sum-workers-")
    assert len(pids) >= 2, "the test proves nothing unless more than one worker answered"
    assert served() - before == sent


def test_one_trace_reaches_every_hop_of_a_checkout(stack, http, user):
    """gateway -> cart -> catalog, payment -> notification: the same request id and trace id in five logs."""
    add(http, stack, user, "11", 1)
    trace = "5e1f1a2b3c4d5e6f708192a3b4c5d6e7"
    response = requests.post(f"{stack.urls['api-gateway']}/api/cart/{user}/checkout", timeout=20, headers={
        "x-request-id": f"trace-{user}", "traceparent": f"00-{trace}-1111111111111111-01"})
    assert response.status_code == 201
    for service in ("api-gateway", "cart", "catalog", "payment-v1", "notification"):
        # Notifications go out after the answer, from a background queue: their log line may come a moment later.
        deadline = time.monotonic() + 10
        while not (lines := log_lines(stack, service, request_id=f"trace-{user}")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert lines and all(line["trace_id"] == trace for line in lines), service


def test_routes_are_templates_and_business_counters_move(http, stack, user):
    """Counters of a stack the whole run shares: what this test adds must move them by exactly that much."""
    def cart_metrics():
        return requests.get(stack.urls["cart"] + "/metrics", timeout=5).text

    def catalog_calls(text):
        return metric_value(text, "upstream_requests_total", upstream="catalog", outcome="ok")

    before = cart_metrics()
    add(http, stack, user, "1", 3)
    add(http, stack, user, "2", 1)
    text = cart_metrics()
    assert 'route="/cart/<user_id>/add"' in text
    assert user not in text  # raw ids would explode cardinality
    assert metric_value(text, "cart_items_added_total") - metric_value(before, "cart_items_added_total") == 4
    assert catalog_calls(text) - catalog_calls(before) == 2  # one product look-up per add
    added = metric_value(text, "http_requests_total", route="/cart/<user_id>/add", status="200")
    assert added - metric_value(before, "http_requests_total", route="/cart/<user_id>/add", status="200") == 2
    assert "http_request_duration_seconds_bucket" in text


def test_json_log_line_per_request_with_ids(stack):
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    response = requests.get(stack.urls["api-gateway"] + "/api/products/3",
                            headers={"x-request-id": "log-check-1", "traceparent": traceparent}, timeout=5)
    assert response.status_code == 200
    for service in ("api-gateway", "catalog"):
        lines = [json.loads(line) for line in (stack.logs_dir / f"{service}.log").read_text().splitlines()
                 if line.startswith("{") and "log-check-1" in line]
        assert lines, service
        line = lines[-1]
        assert line["msg"] == "request" and line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
        assert line["status"] == 200 and line["route"] in ("/api/products/<product_id>", "/products/<product_id>")
