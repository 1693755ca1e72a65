"""The storefront in a real headless Chromium against the real stack: what a shopper sees is what the services did."""
from __future__ import annotations

import re

import pytest
import requests

from tests.storefront.conftest import PageWatch
from tests.support import FaultSwitch

ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ORDER_ID_PATTERN = re.compile(r"^ord_[a-f0-9]{20}$")


@pytest.fixture
def faults(stack):
    switch = FaultSwitch(stack)
    yield switch
    switch.reset()


def api(stack, path: str) -> dict:
    response = requests.get(stack.urls["api-gateway"] + path, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def server_cart(stack, user: str) -> dict[str, int]:
    return {item["product_id"]: item["quantity"] for item in api(stack, f"/api/cart/{user}")["items"]}


def ui_cart(page) -> dict[str, int]:
    rows = page.locator("#cart-body li.cart-item")
    return {rows.nth(i).get_attribute("data-product-id"): int(rows.nth(i).locator("input").input_value())
            for i in range(rows.count())}


def wait_cart_count(page, count: int) -> None:
    page.wait_for_function("n => document.getElementById('cart-count').textContent === String(n)", arg=count)

def open_with_one_item(page, stack, index: int) -> tuple[str, str]:
    """Opens the storefront as a new shopper and adds the catalog's product number `index`: (shopper, product id)."""
    page.goto("/")
    page.locator("#product-list li.product").first.wait_for()
    user = page.locator("#user-id").inner_text()
    product = api(stack, "/api/products")["products"][index]["id"]
    page.locator(f"#add-{product}").click()
    wait_cart_count(page, 1)
    return user, product



def assert_console_clean(watch) -> None:
    assert watch.page_errors == [], f"uncaught errors in the page: {watch.page_errors}"
    assert watch.unexpected_console_errors() == [], "console errors the page caused"


def test_shopper_buys_then_sees_an_injected_decline_with_the_cart_unchanged(stack, shop_page, faults, artifacts):
    page, watch = shop_page
    page.goto("/")
    catalog = api(stack, "/api/products")["products"]
    page.wait_for_function("n => document.querySelectorAll('#product-list li.product').length === n",
                           arg=len(catalog))
    user = page.locator("#user-id").inner_text()
    assert ID_PATTERN.match(user), user
    assert page.evaluate("sessionStorage.getItem('meshlab.userId')") == user
    assert page.locator("a[href='/api']").count() >= 1, "the page links the API documentation"

    # Two products, then one quantity typed in and one raised with the keyboard on the "+" button.
    first, second = catalog[0]["id"], catalog[1]["id"]
    page.locator(f"#add-{first}").click()
    wait_cart_count(page, 1)
    page.locator(f"#add-{second}").click()
    wait_cart_count(page, 2)
    page.locator(f"#qty-{first}").fill("3")
    page.locator(f"#qty-{first}").press("Enter")
    wait_cart_count(page, 4)
    page.locator(f"#inc-{second}").focus()
    page.keyboard.press("Enter")
    wait_cart_count(page, 5)
    assert ui_cart(page) == server_cart(stack, user) == {first: 3, second: 2}
    page.screenshot(path=artifacts / "01-cart.png", full_page=True)

    # Check out with faults off: the order, its payment version badge and the per-browser count appear.
    page.locator("#checkout").click()
    page.locator("#last-order [data-testid=version-badge]").wait_for()
    orders = api(stack, f"/api/users/{user}/orders")["orders"]
    assert len(orders) == 1
    order = orders[0]
    assert ORDER_ID_PATTERN.match(order["order_id"])
    assert page.locator("[data-testid=order-id]").inner_text() == order["order_id"]
    version = order["payment"]["version"]
    assert page.locator("#last-order [data-testid=version-badge]").inner_text() == f"payment {version}"
    assert page.locator(f"#count-{version}").inner_text() == "1"
    assert "is paid" in page.locator("#checkout-notice").inner_text()
    wait_cart_count(page, 0)
    assert server_cart(stack, user) == {}
    page.locator("#order-list").get_by_text(order["order_id"]).wait_for()
    page.locator("#notification-list").get_by_text(f"Order {order['order_id']} is paid", exact=False).wait_for()
    page.screenshot(path=artifacts / "02-order.png", full_page=True)

    # Payment forced to decline (every payment instance): an honest message, a retry, and the cart as it was.
    for payment in ("payment-v1", "payment-v2"):
        faults.set(payment, enabled=True, decline_rate=1.0, timeout_rate=0.0, error_rate=0.0)
    third = catalog[2]["id"]
    page.locator(f"#add-{third}").click()
    wait_cart_count(page, 1)
    page.locator("#checkout").click()
    page.locator("#retry-checkout").wait_for()
    notice = page.locator("#checkout-notice").inner_text()
    assert "Payment declined (injected fault)" in notice
    assert "cart is unchanged" in notice
    assert ui_cart(page) == server_cart(stack, user) == {third: 1}
    assert len(api(stack, f"/api/users/{user}/orders")["orders"]) == 1, "a declined payment made no order"
    page.screenshot(path=artifacts / "03-declined.png", full_page=True)

    # "Retry checkout" repeats the same attempt: same Idempotency-Key, declined again while the fault holds ...
    page.locator("#retry-checkout").click()
    page.wait_for_function("() => document.querySelectorAll('#recent-versions li').length === 3")
    page.locator("#retry-checkout").wait_for()
    # ... and once the fault is gone the same key buys the cart.
    faults.reset()
    page.locator("#retry-checkout").click()
    page.wait_for_function("() => document.getElementById('checkout-notice').innerText.includes('is paid')")
    first_key, declined_key, retried_key, last_key = watch.checkout_keys
    assert declined_key == retried_key == last_key != first_key
    newest = api(stack, f"/api/users/{user}/orders")["orders"][0]
    assert newest["idempotency_key"] == declined_key
    assert {line["product_id"]: line["quantity"] for line in newest["items"]} == {third: 1}
    assert sum(1 for _m, url, status in watch.responses if url.endswith("/checkout") and status == 402) == 2

    assert_console_clean(watch)


def test_catalog_errors_are_retried_and_said_honestly(stack, shop_page, faults, artifacts):
    page, watch = shop_page
    faults.set("catalog", enabled=True, error_rate=1.0)
    page.goto("/")
    page.get_by_text("Catalog error (injected fault), retrying", exact=False).wait_for()
    faults.reset()  # the next automatic retry gets through
    page.get_by_text("Catalog loaded (after", exact=False).wait_for()
    assert page.locator("#product-list li.product").count() == len(api(stack, "/api/products")["products"])
    page.screenshot(path=artifacts / "04-catalog-retried.png", full_page=True)
    failed = [status for method, url, status in watch.responses if url.endswith("/api/products")]
    assert failed[-1] == 200 and 500 in failed
    assert_console_clean(watch)


def test_phone_layout_has_no_sideways_scrolling(browser, stack, artifacts):
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True,
                                  base_url=stack.urls["api-gateway"])
    try:
        page = context.new_page()
        page.goto("/")
        page.locator("#product-list li.product").first.wait_for()
        page.locator("#checkout").scroll_into_view_if_needed()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        page.screenshot(path=artifacts / "05-phone.png", full_page=True)
    finally:
        context.close()


def test_payment_timeout_is_explained_and_the_retry_buys_once_with_the_same_key(stack, shop_page, faults, artifacts):
    page, watch = shop_page
    user, product = open_with_one_item(page, stack, 3)
    # Payment hangs a little longer than cart waits for it (PAYMENT_TIMEOUT_S, 4 s): cart answers 504, nothing charged.
    for payment in ("payment-v1", "payment-v2"):
        faults.set(payment, enabled=True, timeout_rate=1.0, timeout_seconds=4.5, decline_rate=0.0, error_rate=0.0)
    page.locator("#checkout").click()
    page.locator("#retry-checkout").wait_for(timeout=20_000)
    notice = page.locator("#checkout-notice").inner_text()
    assert "payment took too long to answer (HTTP 504)" in notice
    assert "same Idempotency-Key" in notice
    assert ui_cart(page) == server_cart(stack, user) == {product: 1}
    page.screenshot(path=artifacts / "06-payment-timeout.png", full_page=True)

    faults.reset()
    page.locator("#retry-checkout").focus()
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('checkout-notice').innerText.includes('is paid')")
    # Keyboard focus comes back to the checkout controls instead of falling to the top of the page.
    page.wait_for_function("() => document.activeElement && document.activeElement.id === 'checkout'")
    assert len(set(watch.checkout_keys)) == 1 and len(watch.checkout_keys) == 2
    orders = api(stack, f"/api/users/{user}/orders")["orders"]
    assert [o["idempotency_key"] for o in orders] == watch.checkout_keys[:1]
    assert_console_clean(watch)


def test_proxy_error_page_and_network_error_from_stand_in_routes_become_messages(stack, shop_page):
    """No proxy or network fault runs here, so Playwright's request routing stands in for them: an HTML 502 page
    (what an ingress answers when the gateway is gone) for the catalog, a dropped connection for the cart."""
    page, watch = shop_page
    page.route("**/api/products", lambda route: route.fulfill(
        status=502, body="<html><body>502 Bad Gateway</body></html>", content_type="text/html"))
    page.route("**/api/cart/*", lambda route: route.abort("connectionreset"))
    page.goto("/")
    page.locator("#retry-catalog").wait_for()
    assert "Catalog: unexpected answer from the server (HTTP 502)" in page.locator("#catalog-notice").inner_text()
    page.locator("#retry-cart").wait_for()
    assert "Cart: cannot reach the shop (network error)" in page.locator("#cart-notice").inner_text()
    assert page.locator("h1").inner_text() == "Mesh Lab Shop"  # the page is still there, not blank

    page.unroute("**/api/products")
    page.unroute("**/api/cart/*")
    page.locator("#retry-catalog").click()
    page.locator("#product-list li.product").first.wait_for()
    page.locator("#retry-cart").click()
    page.wait_for_function("() => document.getElementById('cart-notice').innerText === ''")

    assert watch.page_errors == []
    # Chromium logs each failed load itself; nothing else may appear.
    assert all(text.startswith("Failed to load resource") for text, _url in watch.console_errors), \
        watch.console_errors


def cart_requests(watch, method: str) -> list[int]:
    return [status for m, url, status in watch.responses if m == method and "/api/cart/" in url]


def test_a_fractional_quantity_is_refused_before_sending_and_a_refused_change_shows_the_servers_cart(
        stack, shop_page):
    page, watch = shop_page
    user, product = open_with_one_item(page, stack, 0)

    # 2.5 (and 100) never leave the page: a note next to the field, and the field shows what the cart holds.
    for typed in ("2.5", "100"):
        page.locator(f"#qty-{product}").fill(typed)
        page.locator(f"#qty-{product}").press("Enter")
        note = page.locator(f"#cart-body li[data-product-id='{product}'] .field-note")
        note.wait_for()
        assert note.inner_text() == f"{typed} is not a whole number from 1 to 99, so the quantity stays 1. " \
            f"Remove takes {api(stack, '/api/products')['products'][0]['name']} out."
        assert page.locator(f"#qty-{product}").get_attribute("aria-describedby") == f"qty-note-{product}"
        assert ui_cart(page) == server_cart(stack, user) == {product: 1}
    assert cart_requests(watch, "PUT") == [], "an invalid quantity was sent"

    # A change the server refuses for good (the line was removed behind the page's back: 404) shows the server's cart.
    requests.delete(f"{stack.urls['api-gateway']}/api/cart/{user}/items/{product}", timeout=10).raise_for_status()
    page.locator(f"#inc-{product}").click()
    wait_cart_count(page, 0)
    assert ui_cart(page) == server_cart(stack, user) == {}
    assert cart_requests(watch, "PUT") == [404]
    assert "That change was not made" in page.locator("#cart-notice").inner_text()
    assert page.locator(".field-note").count() == 0
    assert_console_clean(watch)


def test_new_shopper_waits_for_a_slow_checkout_and_drops_the_previous_shoppers_retry(stack, shop_page, faults):
    page, watch = shop_page
    first_user, product = open_with_one_item(page, stack, 1)
    # A slow decline (2.5 s, under cart's 4 s payment timeout) from whichever payment instance answers.
    for payment in ("payment-v1", "payment-v2"):
        faults.set(payment, enabled=True, delay_ms=2500, decline_rate=1.0)
    page.locator("#checkout").click()
    page.get_by_text("Checking out…").wait_for()
    assert page.locator("#new-shopper").is_disabled(), "New shopper must wait while a checkout runs"
    page.locator("#retry-checkout").wait_for()
    assert page.locator("#new-shopper").is_enabled()

    # After the decline: a new shopper gets no retry button of the previous one, and a fresh key of their own.
    page.locator("#new-shopper").click()
    page.wait_for_function("u => document.getElementById('user-id').textContent !== u", arg=first_user)
    second_user = page.locator("#user-id").inner_text()
    assert page.locator("#retry-checkout").count() == 0
    assert page.locator("#checkout-notice").inner_text() == ""
    assert page.locator("#last-order").is_hidden()
    wait_cart_count(page, 0)
    assert page.evaluate("sessionStorage.getItem('meshlab.userId')") == second_user

    faults.reset()
    page.locator(f"#add-{product}").click()
    wait_cart_count(page, 1)
    page.locator("#checkout").click()
    page.wait_for_function("() => document.getElementById('checkout-notice').innerText.includes('is paid')")
    assert len(watch.checkout_keys) == 2 and watch.checkout_keys[0] != watch.checkout_keys[1]
    assert [o["idempotency_key"] for o in api(stack, f"/api/users/{second_user}/orders")["orders"]] == \
        watch.checkout_keys[1:]
    assert api(stack, f"/api/users/{first_user}/orders")["orders"] == []
    assert server_cart(stack, first_user) == {product: 1}, "the declined shopper's cart is untouched"
    assert_console_clean(watch)


def test_a_checkout_refused_for_another_one_in_flight_retries_with_that_key(stack, shop_page, faults):
    """Another client of the same shopper checks out while payment is slow: the storefront's own checkout is refused
    naming that attempt's key, and "Retry checkout" repeats that attempt, which gives the one order."""
    from concurrent.futures import ThreadPoolExecutor

    page, watch = shop_page
    user, product = open_with_one_item(page, stack, 4)
    for payment in ("payment-v1", "payment-v2"):
        faults.set(payment, enabled=True, delay_ms=2500)
    with ThreadPoolExecutor(max_workers=1) as pool:
        other = pool.submit(requests.post, f"{stack.urls['api-gateway']}/api/cart/{user}/checkout",
                            headers={"Idempotency-Key": "other-client"}, timeout=30)
        page.wait_for_timeout(700)  # the other attempt has priced the cart and waits for payment
        page.locator("#checkout").click()
        page.locator("#retry-checkout").wait_for()
        assert "not finished yet" in page.locator("#checkout-notice").inner_text()
        assert other.result().status_code == 201
    faults.reset()
    page.locator("#retry-checkout").click()
    page.wait_for_function("() => document.getElementById('checkout-notice').innerText.includes('already placed')")
    assert watch.checkout_keys[-1] == "other-client" and len(watch.checkout_keys) == 2
    assert [o["idempotency_key"] for o in api(stack, f"/api/users/{user}/orders")["orders"]] == ["other-client"]
    assert server_cart(stack, user) == {}
    assert_console_clean(watch)


def test_two_tabs_are_two_shoppers_sharing_the_browsers_version_count(browser, stack):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=stack.urls["api-gateway"])
    try:
        first, second = context.new_page(), context.new_page()
        watches = [PageWatch(first), PageWatch(second)]
        for page in (first, second):
            page.set_default_timeout(30_000)
            page.goto("/")
            page.locator("#product-list li.product").first.wait_for()
        first_user, second_user = (p.locator("#user-id").inner_text() for p in (first, second))
        assert first_user != second_user, "two tabs of one browser are two shoppers"
        first.reload()
        first.locator("#product-list li.product").first.wait_for()
        assert first.locator("#user-id").inner_text() == first_user, "a reload keeps the tab's shopper"

        product = api(stack, "/api/products")["products"][2]["id"]
        first.locator(f"#add-{product}").click()
        wait_cart_count(first, 1)
        assert server_cart(stack, second_user) == {}
        first.locator("#checkout").click()
        first.wait_for_function("() => document.getElementById('checkout-notice').innerText.includes('is paid')")
        version = api(stack, f"/api/users/{first_user}/orders")["orders"][0]["payment"]["version"]
        counts = {"v1": 0, "v2": 0, version: 1}
        # The other tab shows the browser's count at once, and a screen reader hears it in the header link's name.
        second.wait_for_function("v => document.getElementById('header-' + v).textContent === '1'", arg=version)
        name = re.compile(rf"^Checkouts in this browser served by payment v1 {counts['v1']}\W+v2 {counts['v2']}$")
        for page in (first, second):
            assert page.get_by_role("link", name=name).count() == 1
        for watch in watches:
            assert_console_clean(watch)
    finally:
        context.close()


def contrast(first: str, second: str) -> float:
    """WCAG contrast ratio of two CSS rgb()/rgba() colours (alpha ignored: the colours here are opaque)."""
    def luminance(css: str) -> float:
        channels = [int(v) / 255 for v in re.findall(r"[\d.]+", css)[:3]]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    low, high = sorted((luminance(first), luminance(second)))
    return (high + 0.05) / (low + 0.05)


FOCUS_STYLE = """id => {
  const node = document.getElementById(id);
  node.focus();
  const style = getComputedStyle(node);
  // What the outline is drawn on: the first ancestor with a background of its own.
  let parent = node.parentElement;
  while (parent && getComputedStyle(parent).backgroundColor === 'rgba(0, 0, 0, 0)') parent = parent.parentElement;
  const around = getComputedStyle(parent || document.documentElement);
  return {visible: node.matches(':focus-visible'), outline: style.outlineColor, width: style.outlineWidth,
          outlineStyle: style.outlineStyle, shadow: style.boxShadow, button: style.backgroundColor,
          around: around.backgroundColor, page: getComputedStyle(document.documentElement).backgroundColor};
}"""


def test_focus_ring_has_3_to_1_contrast_on_white_on_the_page_and_in_the_header(stack, shop_page):
    page, _watch = shop_page
    page.goto("/")
    page.locator("#product-list li.product").first.wait_for()
    product = api(stack, "/api/products")["products"][0]["id"]
    page.keyboard.press("Tab")  # keyboard use, so the focus that follows is :focus-visible
    for control in (f"add-{product}", "reload-catalog", "new-shopper"):
        focus = page.evaluate(FOCUS_STYLE, control)
        assert focus["visible"] and focus["outlineStyle"] == "solid" and float(focus["width"][:-2]) >= 2, focus
        assert contrast(focus["outline"], focus["around"]) >= 3, focus
        if control != "new-shopper":  # in a white panel on the light page
            assert contrast(focus["outline"], focus["page"]) >= 3, focus
    # On a blue button the white ring in the outline's offset separates the dark outline from the button.
    focus = page.evaluate(FOCUS_STYLE, f"add-{product}")
    ring = re.match(r"(rgba?\([^)]*\)) 0px 0px 0px 2px", focus["shadow"])
    assert ring and contrast(ring.group(1), focus["button"]) >= 3 and contrast(ring.group(1), focus["outline"]) >= 3, \
        focus
