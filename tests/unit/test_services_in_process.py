"""Each service's own rules, through its real Flask app in this process (Flask's test client, no network to the
neighbours). Payment's ledger is a real redis-server; cart's rules are tested in tests/integration and tests/e2e."""
import uuid

import pytest
import redis

from shopkit.app import service_of
from shopkit.faults import COMMON_FIELDS


def admin(client):
    """The test client of the admin app beside this business app (the admin port's routes)."""
    return service_of(client.application).admin_app.test_client()


@pytest.fixture
def isolated_runtime(tmp_path, monkeypatch):
    """A fresh runtime folder per app, so fault settings of one test never leak into the next."""
    monkeypatch.setenv("SHOPKIT_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("NOTIFICATION_URL", "http://127.0.0.1:9")  # nothing listens: notices fail, answers must not
    monkeypatch.setenv("UPSTREAM_CONNECT_TIMEOUT_S", "0.2")


@pytest.fixture
def catalog(isolated_runtime, monkeypatch):
    monkeypatch.setenv("FAULTS_ENABLED", "false")
    from catalog_service.app import create_app
    return create_app().test_client()


@pytest.fixture
def notification(isolated_runtime):
    from notification_service.app import create_app
    return create_app().test_client()


@pytest.fixture
def payment(isolated_runtime, monkeypatch, redis_server):
    ledger_url = redis_server.url.replace("/0", "/4")
    redis.Redis.from_url(ledger_url).flushdb()
    monkeypatch.setenv("PAYMENT_LEDGER_URL", ledger_url)
    monkeypatch.setenv("FAULTS_ENABLED", "false")
    monkeypatch.setenv("SERVICE_VERSION", "v2")
    from payment_service.app import create_app
    return create_app().test_client()


def test_catalog_has_a_dozen_products_with_exact_prices(catalog):
    body = catalog.get("/products").get_json()
    assert body["count"] >= 12 and body["currency"] == "USD"
    ids = [p["id"] for p in body["products"]]
    assert ids == [str(i) for i in range(1, len(ids) + 1)]
    for product in body["products"]:
        whole, cents = product["price"].split(".")
        assert whole.isdigit() and len(cents) == 2
        assert catalog.get(f"/products/{product['id']}").get_json() == product


def test_catalog_unknown_and_odd_ids(catalog):
    assert catalog.get("/products/99").status_code == 404
    assert catalog.get("/products/a.b").status_code == 400


def test_catalog_seed_fault_rate_comes_from_the_service(catalog):
    assert admin(catalog).get("/admin/faults").get_json()["error_rate"] == 0.05
    assert catalog.get("/admin/faults").status_code == 404


def test_notification_lists_newest_first_and_limits(notification):
    for n in range(3):
        created = notification.post("/notifications", json={"user_id": "ann", "type": "order_placed",
                                                            "message": f"order {n}", "order_id": f"o{n}"})
        assert created.status_code == 201 and created.get_json()["id"].startswith("ntf_")
    listed = notification.get("/notifications/ann?limit=2").get_json()
    assert [n["message"] for n in listed["notifications"]] == ["order 2", "order 1"]
    assert notification.get("/notifications/nobody").get_json()["notifications"] == []


@pytest.mark.parametrize("body,message", [
    ({"user_id": "ann", "type": "spam", "message": "x"}, "must be one of"),
    ({"user_id": "ann", "type": "order_placed"}, "'message' is required"),
    ({"user_id": "a b", "type": "order_placed", "message": "x"}, "user_id must be"),
    ({"user_id": "ann", "type": "order_placed", "message": "x", "extra": 1}, "unknown field"),
])
def test_notification_bad_input(notification, body, message):
    response = notification.post("/notifications", json=body)
    assert response.status_code == 400 and message in response.get_json()["error"]


@pytest.mark.parametrize("limit", ["0", "51", "x", "-1", "\u00b2", "\u0663"])
def test_notification_bad_limit(notification, limit):
    assert notification.get(f"/notifications/ann?limit={limit}").status_code == 400


def test_notification_keeps_the_last_50(notification):
    for n in range(55):
        notification.post("/notifications", json={"user_id": "bea", "type": "order_placed", "message": str(n)})
    listed = notification.get("/notifications/bea").get_json()["notifications"]
    assert len(listed) == 50 and listed[0]["message"] == "54" and listed[-1]["message"] == "5"


PAY = {"order_id": "ord_1", "user_id": "u1", "amount": "42.00", "currency": "USD"}


def test_payment_replays_an_approved_key_and_refuses_a_different_payment(payment):
    first = payment.post("/payments", json=PAY, headers={"Idempotency-Key": "k1"})
    again = payment.post("/payments", json=PAY, headers={"Idempotency-Key": "k1"})
    assert first.status_code == 201 and again.status_code == 200
    assert again.get_json() == first.get_json() and again.headers["Idempotent-Replayed"] == "true"
    other = payment.post("/payments", json={**PAY, "amount": "43.00"}, headers={"Idempotency-Key": "k1"})
    assert other.status_code == 409 and "different payment" in other.get_json()["error"]


def test_payment_decline_is_402_even_when_notification_is_down(payment):
    admin(payment).put("/admin/faults", json={"enabled": True, "decline_rate": 1.0, "timeout_rate": 0.0})
    declined = payment.post("/payments", json=PAY, headers={"Idempotency-Key": "k2"})
    assert declined.status_code == 402
    body = declined.get_json()
    assert body["status"] == "declined" and body["version"] == "v2" and body["injected"] is True
    # a decline is not remembered: once the card works, the same key charges
    admin(payment).put("/admin/faults", json={"decline_rate": 0.0})
    assert payment.post("/payments", json=PAY, headers={"Idempotency-Key": "k2"}).status_code == 201


def test_payment_injected_timeout_answers_504_without_charging(payment):
    admin(payment).put("/admin/faults", json={"enabled": True, "decline_rate": 0.0, "timeout_rate": 1.0,
                                        "timeout_seconds": 0.05})
    hung = payment.post("/payments", json=PAY, headers={"Idempotency-Key": "k3"})
    assert hung.status_code == 504 and hung.get_json()["fault"] == "timeout"
    admin(payment).put("/admin/faults", json={"timeout_rate": 0.0})
    assert payment.post("/payments", json=PAY, headers={"Idempotency-Key": "k3"}).status_code == 201


def test_payment_admin_knows_its_extra_settings(payment):
    settings = admin(payment).get("/admin/faults").get_json()
    assert set(settings) == set(COMMON_FIELDS) | {"decline_rate", "timeout_rate", "timeout_seconds"}


def test_payment_cancel_returns_an_approval_or_forbids_one(payment):
    key = f"c-{uuid.uuid4().hex}"
    charged = payment.post("/payments", json=PAY, headers={"Idempotency-Key": key})
    cancel = payment.post(f"/payments/{key}/cancel")
    assert cancel.status_code == 200 and cancel.get_json() == charged.get_json()
    other = f"c-{uuid.uuid4().hex}"
    cancelled = payment.post(f"/payments/{other}/cancel")
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    late = payment.post("/payments", json=PAY, headers={"Idempotency-Key": other})
    assert late.status_code == 409 and late.get_json()["charged"] is False
    assert payment.post("/payments/has%20space/cancel").status_code == 400


def test_payment_without_its_ledger_charges_nothing_and_is_not_ready(isolated_runtime, monkeypatch):
    from devstack.stack import free_ports

    monkeypatch.setenv("PAYMENT_LEDGER_URL", f"redis://127.0.0.1:{free_ports(1)[0]}/0")
    monkeypatch.setenv("FAULTS_ENABLED", "false")
    from payment_service.app import create_app

    client = create_app().test_client()
    answer = client.post("/payments", json=PAY, headers={"Idempotency-Key": "no-ledger"})
    assert answer.status_code == 503 and answer.get_json()["charged"] is False
    assert admin(client).get("/ready").status_code == 503 and admin(client).get("/health").status_code == 200
