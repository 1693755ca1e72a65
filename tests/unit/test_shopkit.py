"""shopkit's pieces on their own: config, propagation, fault settings shared by workers, validation."""
import os
import threading

import pytest

from shopkit import propagation
from shopkit.config import ConfigError, Settings
from shopkit.errors import BadRequest
from shopkit.faults import COMMON_FIELDS, PAYMENT_FIELDS, Faults, FaultStore, defaults_from_env


def test_settings_reject_bad_environment(monkeypatch):
    monkeypatch.setenv("PORT", "70000")
    with pytest.raises(ConfigError, match="PORT='70000' must be between 1 and 65535"):
        Settings.from_env("catalog", 5001)
    monkeypatch.setenv("PORT", "5001")
    monkeypatch.setenv("CATALOG_URL", "catalog:5001")
    with pytest.raises(ConfigError, match="must start with http"):
        Settings.from_env("cart", 5002, {"catalog": ("CATALOG_URL", "http://x")})


def test_settings_instance_prefers_pod_name(monkeypatch):
    monkeypatch.setenv("POD_NAME", "cart-service-6d4b-abcde")
    assert Settings.from_env("cart", 5002).instance == "cart-service-6d4b-abcde"


@pytest.mark.parametrize("headers,trace_id", [
    ({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}, "0af7651916cd43dd8448eb211c80319c"),
    ({"x-b3-traceid": "80F198EE56343BA864FE8B2A57D3EFF7"}, "80f198ee56343ba864fe8b2a57d3eff7"),
    ({"b3": "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"}, "80f198ee56343ba864fe8b2a57d3eff7"),
    ({"b3": "0"}, ""),
    ({"traceparent": "garbage"}, ""),
    ({}, ""),
])
def test_trace_id_from_any_format(headers, trace_id):
    assert propagation.trace_id_of(headers) == trace_id


def test_only_listed_headers_are_forwarded():
    inbound = {"X-Request-Id": "r", "L5d-Ctx-Deadline": "d", "Authorization": "secret", "Cookie": "c", "B3": "1"}
    assert propagation.headers_to_forward(inbound) == {"x-request-id": "r", "l5d-ctx-deadline": "d", "b3": "1"}


def test_new_traceparent_is_valid_w3c():
    value = propagation.new_traceparent()
    assert propagation.trace_id_of({"traceparent": value}) == value.split("-")[1]


def test_fault_defaults_from_env_override_the_seed(monkeypatch):
    monkeypatch.setenv("FAULT_DECLINE_RATE", "0.5")
    monkeypatch.setenv("FAULTS_ENABLED", "false")
    values = defaults_from_env(COMMON_FIELDS | PAYMENT_FIELDS, {"decline_rate": 0.1, "timeout_rate": 0.05})
    assert values["decline_rate"] == 0.5 and values["timeout_rate"] == 0.05 and values["enabled"] is False
    monkeypatch.setenv("FAULT_ERROR_RATE", "lots")
    with pytest.raises(ConfigError, match="FAULT_ERROR_RATE"):
        defaults_from_env(COMMON_FIELDS, {})


def test_one_update_reaches_every_store_on_the_folder(tmp_path):
    """Two FaultStores on one folder stand for two gunicorn workers of one instance."""
    defaults = {"enabled": True, "error_rate": 0.05, "delay_ms": 0, "sick": False}
    worker_a, worker_b = FaultStore(COMMON_FIELDS, defaults, str(tmp_path)), FaultStore(COMMON_FIELDS, defaults, str(tmp_path))
    assert worker_b.current()["sick"] is False
    worker_a.update({"sick": True})
    assert worker_b.current()["sick"] is True and worker_b.current()["error_rate"] == 0.05
    worker_b.reset()
    assert worker_a.current() == defaults


def test_concurrent_updates_keep_every_field(tmp_path):
    store = FaultStore(COMMON_FIELDS, {"enabled": True, "error_rate": 0.0, "delay_ms": 0, "sick": False}, str(tmp_path))
    threads = [threading.Thread(target=store.update, args=({"delay_ms": 10},)),
               threading.Thread(target=store.update, args=({"error_rate": 0.5},)),
               threading.Thread(target=store.update, args=({"sick": True},))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert FaultStore(COMMON_FIELDS, {}, str(tmp_path)).current() == {
        "enabled": True, "error_rate": 0.5, "delay_ms": 10, "sick": True}


@pytest.mark.parametrize("changes,message", [
    ({"error_rate": "0.5"}, "must be a number"), ({"error_rate": True}, "must be a number"),
    ({"delay_ms": 1.5}, "whole number"), ({"sick": 1}, "true or false"), ({"bogus": 1}, "unknown fault"),
])
def test_bad_fault_updates_are_refused(tmp_path, changes, message):
    store = FaultStore(COMMON_FIELDS, {"enabled": True, "error_rate": 0.0, "delay_ms": 0, "sick": False}, str(tmp_path))
    with pytest.raises(BadRequest, match=message):
        store.update(changes)
    assert not os.path.exists(store.path)


def test_roll_honours_rate_zero_one_and_the_master_switch(tmp_path):
    store = FaultStore(COMMON_FIELDS, {"enabled": True, "error_rate": 1.0, "delay_ms": 0, "sick": False}, str(tmp_path))
    faults = Faults(store, "catalog", "v1")
    assert all(faults.roll("error_rate", "error") for _ in range(100))
    store.update({"error_rate": 0.0})
    assert not any(faults.roll("error_rate", "error") for _ in range(100))
    store.update({"error_rate": 1.0, "enabled": False})
    assert not any(faults.roll("error_rate", "error") for _ in range(100))
    assert faults.before_business_request() is None
