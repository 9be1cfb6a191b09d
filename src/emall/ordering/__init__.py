"""Ordering: the cart, checkout into one order per supplier, and the orders themselves."""
