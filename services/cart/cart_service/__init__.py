"""cart: carts in Redis and the checkout that turns one into an order (cart -> payment -> notification)."""
