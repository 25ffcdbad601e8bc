"""Orders: carts, checkout, the order's statuses, payment methods and the order card."""
