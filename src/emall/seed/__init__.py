"""Seed data: the demo of the Neijiang (511000) and Zigong (510300) partnership."""
