"""catalog: the shop's products, read-only."""
