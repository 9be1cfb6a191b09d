"""Small helpers for building readable SQL safely."""

from __future__ import annotations


def like_term(q: str | None) -> str | None:
    """A search term for ``LIKE '%' || $n || '%'`` with LIKE's wildcards taken literally, or
    None for an empty term (so that ``$n is null`` turns the filter off)."""
    if q is None or not q.strip():
        return None
    return q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
