"""notification: accepts notifications from cart and payment and lists a user's recent ones."""
