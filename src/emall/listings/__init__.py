"""Listings: products (SPU), suppliers' offers, the listing review workflow and price controls."""
