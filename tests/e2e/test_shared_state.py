"""State that must hold across gunicorn workers, instances and restarts: payment's ledger, notification's inbox."""
import json
import os
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.support import metric_value, spread_over_workers

PAY = {"order_id": "ord_bbbbbbbbbbbbbbbbbbbb", "user_id": "u1", "amount": "7.50", "currency": "USD"}


def test_payment_with_gunicorns_default_workers_charges_a_key_once(lone_service, redis_server):
    """WEB_CONCURRENCY unset (gunicorn_conf's default of 2 workers): 80 concurrent POSTs of one key, one charge."""
    key = f"burst-{uuid.uuid4().hex}"
    with lone_service("payment-v1", unset=("WEB_CONCURRENCY",),
                      PAYMENT_LEDGER_URL=redis_server.url.replace("/0", "/3")) as payment:
        answers = []

        def pay(request_id):
            answers.append(requests.post(payment.url + "/payments", json=PAY, timeout=15,
                                         headers={"Idempotency-Key": key, "x-request-id": request_id}))

        # 80 at once first, then more bursts of the same key until both workers have answered some of them (the
        # kernel may hand every connection to one busy worker, and then nothing about two workers is proven).
        with ThreadPoolExecutor(max_workers=40) as pool:
            list(pool.map(pay, [f"burst-first-{n}" for n in range(80)]))
        _, pids = spread_over_workers(pay, payment.log, "burst-")
        assert len(pids) == 2, f"both workers must have answered to prove anything; pids {pids}"
        assert sorted({a.status_code for a in answers}) == [200, 201], [a.text for a in answers if a.status_code >= 300]
        assert [a.status_code for a in answers].count(201) == 1
        assert len({a.json()["payment_id"] for a in answers}) == 1
        text = requests.get(payment.url + "/metrics", timeout=5).text
        assert metric_value(text, "payments_total", result="approved") == 1

def test_a_repeat_that_lands_on_the_other_payment_version_is_answered_from_the_shared_ledger(stack):
    """The mesh sends a retry to v1 or v2 at random: the approval of v1 is what v2 answers too."""
    key = f"canary-{uuid.uuid4().hex}"
    first = requests.post(stack.urls["payment-v1"] + "/payments", json=PAY, headers={"Idempotency-Key": key}, timeout=5)
    other = requests.post(stack.urls["payment-v2"] + "/payments", json=PAY, headers={"Idempotency-Key": key}, timeout=5)
    assert first.status_code == 201 and other.status_code == 200, other.text
    assert other.json() == first.json() and other.json()["version"] == "v1"
    assert other.headers["Idempotent-Replayed"] == "true"


def test_notification_inbox_is_one_for_all_workers_and_survives_a_worker_restart(lone_service):
    user = f"inbox-{uuid.uuid4().hex[:8]}"
    with lone_service("notification", unset=("WEB_CONCURRENCY",)) as notification:
        for n in range(12):
            created = requests.post(notification.url + "/notifications", timeout=5, headers={"Connection": "close"},
                                    json={"user_id": user, "type": "order_placed", "message": f"order {n}"})
            assert created.status_code == 201
        counts = []

        def read(request_id):
            answer = requests.get(f"{notification.url}/notifications/{user}", timeout=5,
                                  headers={"x-request-id": request_id, "Connection": "close"})
            counts.append(answer.json()["count"])

        sent, pids = spread_over_workers(read, notification.log, "inbox-read-")
        assert len(pids) >= 2, "both workers must have answered to prove anything"
        assert counts == [12] * sent
        os.kill(int(sorted(pids)[0]), signal.SIGTERM)  # gunicorn starts a new worker in its place
        time.sleep(1.5)
        counts.clear()
        sent, _ = spread_over_workers(read, notification.log, "inbox-after-restart-")
        assert counts == [12] * sent
        newest = requests.get(f"{notification.url}/notifications/{user}?limit=1", timeout=5).json()
        assert [n["message"] for n in newest["notifications"]] == ["order 11"]
