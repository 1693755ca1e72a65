"""payment's ledger against a real redis-server: the states of a key move only forward, each step atomic."""
import threading

import pytest
import redis

from payment_service.ledger import PREFIX, Ledger

CHARGE = {"payment_id": "pay_1", "status": "approved", "amount": "5.00"}


@pytest.fixture
def ledger(redis_server):
    client = redis.Redis.from_url(redis_server.url.replace("/0", "/5"), decode_responses=True)
    client.flushdb()
    yield Ledger(client, retention_s=3600)
    client.close()


def test_one_attempt_holds_a_key_and_its_approval_is_what_repeats_see(ledger):
    assert ledger.begin("k", "t1", "fp").state == "started"
    assert ledger.begin("k", "t2", "fp").state == "processing"
    assert ledger.approve("k", "t2", CHARGE) == "processing", "only the holder approves"
    assert ledger.approve("k", "t1", CHARGE) == "approved"
    seen = ledger.begin("k", "t3", "fp")
    assert (seen.state, seen.fingerprint, seen.charge) == ("approved", "fp", CHARGE)


def test_a_released_key_may_be_charged_again(ledger):
    assert ledger.begin("k", "t1", "fp").state == "started"
    ledger.release("k", "t2")  # not the holder: nothing happens
    assert ledger.begin("k", "t3", "fp").state == "processing"
    ledger.release("k", "t1")
    assert ledger.begin("k", "t3", "fp").state == "started"


def test_cancel_answers_an_approval_and_otherwise_stops_every_later_charge(ledger):
    ledger.begin("paid", "t", "fp")
    ledger.approve("paid", "t", CHARGE)
    assert ledger.cancel("paid").charge == CHARGE
    assert ledger.begin("running", "t", "fp").state == "started"
    assert ledger.cancel("running").state == "cancelled"
    assert ledger.approve("running", "t", CHARGE) == "cancelled", "an attempt still running cannot approve"
    assert ledger.cancel("never-seen").state == "cancelled"
    assert ledger.begin("never-seen", "t", "fp").state == "cancelled"


def test_entries_expire(ledger, redis_server):
    client = redis.Redis.from_url(redis_server.url.replace("/0", "/5"))
    ledger.begin("k", "t", "fp")
    assert 0 < client.ttl(PREFIX + "k") <= 300
    ledger.approve("k", "t", CHARGE)
    assert 300 < client.ttl(PREFIX + "k") <= 3600


def test_concurrent_attempts_one_wins(ledger):
    outcomes = []
    threads = [threading.Thread(target=lambda n=n: outcomes.append(ledger.begin("race", f"t{n}", "fp").state))
               for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["processing"] * 19 + ["started"]
