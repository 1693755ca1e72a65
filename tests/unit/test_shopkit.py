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


@pytest.mark.parametrize("value", ["abc\n", "abc\r\n", "\nabc", "a" * 65, "", "a b", "\u00fc", "١"])
def test_ids_are_matched_whole(value):
    from shopkit.validation import check_id

    with pytest.raises(BadRequest):
        check_id(value, "user_id")


@pytest.mark.parametrize("check,value", [("check_order_id", "ord_" + "0" * 20 + "\n"),
                                         ("check_idempotency_key", "key\n"), ("check_idempotency_key", "k" * 129)])
def test_order_ids_and_keys_are_matched_whole(check, value):
    from shopkit import validation

    with pytest.raises(BadRequest):
        getattr(validation, check)(value)


@pytest.mark.parametrize("raw", [b'{"a": NaN}', b'{"a": Infinity}', b'{"a": -Infinity}', b'{"a": 1e400}',
                                 b'{"a": -1e400}', b'{"a": 1' + b"0" * 5000 + b"}"])
def test_json_bodies_refuse_numbers_json_has_not(raw):
    from flask import Flask, request

    from shopkit.validation import json_object

    with Flask(__name__).test_request_context(data=raw, content_type="application/json"):
        with pytest.raises(BadRequest, match="not valid JSON"):
            json_object(request)


@pytest.mark.parametrize("raw,expected", [(None, 50), ("1", 1), ("50", 50), ("007", 7)])
def test_query_int_reads_ascii_digits(raw, expected):
    from flask import Flask, request

    from shopkit.validation import query_int

    query = {"limit": raw} if raw is not None else {}
    with Flask(__name__).test_request_context(query_string=query):
        assert query_int(request, "limit", 1, 50, default=50) == expected


@pytest.mark.parametrize("raw", ["\u00b2", "\u0663", "0", "51", "-1", "1.0", " 1", "1\n", "", "9" * 30])
def test_query_int_refuses_anything_else(raw):
    from flask import Flask, request

    from shopkit.validation import query_int

    with Flask(__name__).test_request_context(query_string={"limit": raw}):
        with pytest.raises(BadRequest, match="'limit' must be a whole number from 1 to 50"):
            query_int(request, "limit", 1, 50, default=50)


@pytest.mark.parametrize("raw", ["1e30", "12.345", "-0.01", "NaN", "Infinity", "10000.01", "1,00", "", " 1.00", 5])
def test_prices_are_bounded_decimal_strings(raw):
    from shopkit.validation import parse_money

    with pytest.raises(BadRequest):
        parse_money(raw, "price", maximum="10000.00")


def test_non_finite_fault_values_are_refused_even_past_the_json_parser(tmp_path):
    store = FaultStore(COMMON_FIELDS, {"enabled": True, "error_rate": 0.0, "delay_ms": 0, "sick": False}, str(tmp_path))
    for value in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(BadRequest, match="finite"):
            store.update({"delay_ms": value})


def test_the_admin_listener_binds_every_interface_for_the_kubelet_istio_and_port_forwards():
    from devstack.stack import free_ports
    from shopkit.admin_server import open_listener

    listener = open_listener(free_ports(1)[0])
    try:
        assert listener.getsockname()[0] == "0.0.0.0" and listener.get_inheritable()
    finally:
        listener.close()
