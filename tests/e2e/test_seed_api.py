"""The seed's curl commands, exactly as its README writes them (only the ports differ: the stack's are free ones)."""
import requests


def test_seed_catalog_products(stack):
    response = requests.get(f"{stack.urls['catalog']}/products", timeout=5)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == len(body["products"]) >= 12
    assert [p["id"] for p in body["products"]][:3] == ["1", "2", "3"]
    assert all(isinstance(p["price"], str) and p["price"].count(".") == 1 for p in body["products"])


def test_seed_cart_add_then_gateway_reads_it(stack, user):
    added = requests.post(f"{stack.urls['cart']}/cart/{user}/add", headers={"Content-Type": "application/json"},
                          data='{"product_id": "1", "quantity": 2}', timeout=5)
    assert added.status_code == 200, added.text
    through_gateway = requests.get(f"{stack.urls['api-gateway']}/api/cart/{user}", timeout=5).json()
    assert through_gateway["items"] == [{"product_id": "1", "name": "Trail Running Shoes", "unit_price": "89.99",
                                         "quantity": 2, "line_total": "179.98"}]
    assert through_gateway["total"] == "179.98"


def test_seed_gateway_products_equal_catalog(stack):
    via_gateway = requests.get(f"{stack.urls['api-gateway']}/api/products", timeout=5)
    assert via_gateway.status_code == 200
    assert via_gateway.json() == requests.get(f"{stack.urls['catalog']}/products", timeout=5).json()


def test_seed_health_on_every_service(stack):
    for name, url in stack.urls.items():
        response = requests.get(url + "/health", timeout=5)
        assert response.status_code == 200, name
        assert response.json()["status"] == "ok"
        ready = requests.get(url + "/ready", timeout=5)
        assert ready.status_code == 200 and ready.json()["status"] == "ready", name
