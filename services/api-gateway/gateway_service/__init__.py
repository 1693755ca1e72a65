"""api-gateway: the only public entry; the public API under /api/ and the storefront at /."""
