"""The fixed catalog. Prices are decimal strings: money is never a float."""
from __future__ import annotations

from decimal import Decimal

CURRENCY = "USD"

# id, name, category, price, description
_ROWS = [
    ("1", "Trail Running Shoes", "footwear", "89.99", "Lightweight shoes with a grippy outsole for muddy trails."),
    ("2", "Merino Wool Socks (3 pairs)", "footwear", "24.50", "Breathable, odour-resistant socks for every season."),
    ("3", "Waterproof Hiking Jacket", "apparel", "149.00", "Three-layer shell with taped seams and a packable hood."),
    ("4", "Insulated Water Bottle 750 ml", "gear", "29.95", "Keeps drinks cold for 24 hours or hot for 12."),
    ("5", "Ultralight Daypack 20 L", "gear", "64.00", "Roll-top pack with a padded laptop sleeve."),
    ("6", "Headlamp 400 lm", "gear", "39.90", "USB-C rechargeable, red night mode, IPX4."),
    ("7", "Camping Hammock", "gear", "54.25", "Parachute nylon with tree straps, holds 180 kg."),
    ("8", "Stainless Steel Camp Mug", "kitchen", "14.99", "Double-walled mug with a sliding lid."),
    ("9", "Portable Espresso Maker", "kitchen", "79.00", "Hand-pumped espresso anywhere, no batteries."),
    ("10", "Quick-Dry Travel Towel", "apparel", "19.95", "Microfibre towel that dries in an hour."),
    ("11", "Polarized Sunglasses", "apparel", "59.00", "Scratch-resistant lenses with UV400 protection."),
    ("12", "Compact Trekking Poles (pair)", "gear", "99.50", "Carbon poles that fold to 38 cm."),
    ("13", "Solar Power Bank 20000 mAh", "electronics", "45.99", "Two USB ports and a solar panel for trickle charging."),
    ("14", "Merino Beanie", "apparel", "22.00", "Warm, soft and itch-free."),
]

PRODUCTS: dict[str, dict[str, str]] = {
    pid: {
        "id": pid,
        "name": name,
        "description": description,
        "category": category,
        "price": str(Decimal(price).quantize(Decimal("0.01"))),
        "currency": CURRENCY,
        "image": f"/static/img/product-{pid}.svg",
    }
    for pid, name, category, price, description in _ROWS
}
