"""Organisations: agencies, suppliers and operators."""
