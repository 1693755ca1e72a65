"""The checkout's timeout budget (docs/architecture.md, "Timeouts"): each caller waits longer than its callee."""


def test_the_documented_budget_holds_for_the_defaults(monkeypatch, tmp_path):
    """gateway CHECKOUT_TIMEOUT_S > cart's worst case for one checkout (pricing, charge, cancel, connects, Redis)."""
    monkeypatch.setenv("SHOPKIT_RUNTIME_DIR", str(tmp_path))
    for name in ("CHECKOUT_TIMEOUT_S", "PAYMENT_TIMEOUT_S", "PAYMENT_CANCEL_TIMEOUT_S", "UPSTREAM_TIMEOUT_S",
                 "UPSTREAM_CONNECT_TIMEOUT_S"):
        monkeypatch.delenv(name, raising=False)
    from cart_service.app import create_app as create_cart
    from gateway_service.app import create_app as create_gateway

    worst = create_cart().extensions["checkout"].worst_case_s
    checkout_timeout = create_gateway().config["CHECKOUT_TIMEOUT_S"]
    assert 10 < worst < checkout_timeout, (worst, checkout_timeout)
