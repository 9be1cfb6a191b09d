"""Cursor pagination shared by every list.

A cursor is opaque to clients: base64url of a small JSON array holding the sort key of the
last item returned. Lists order by a unique key (usually ``id``), so a page never repeats or
skips a row when rows are added meanwhile.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Generic, TypeVar

import msgspec

from emall.errors import ValidationFailed
from emall.structs import Struct

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class Page(Struct, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(list(values))).decode().rstrip("=")


def decode_cursor(cursor: str | None, *types: type[Any]) -> tuple[Any, ...] | None:
    """The values of a cursor, checked against ``types``; a bad cursor names the field."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = msgspec.json.decode(raw, type=list[Any])
        if len(values) != len(types):
            raise ValueError("arity")
        return tuple(msgspec.convert(v, t) for v, t in zip(values, types, strict=True))
    except (ValueError, binascii.Error, msgspec.DecodeError, msgspec.ValidationError):
        raise ValidationFailed.single(
            "cursor", "无效的分页游标 (invalid cursor: pass next_cursor back unchanged)"
        ) from None


def page_args(cursor: str | None, limit: int, *types: type[Any]) -> tuple[Any, ...] | None:
    """Check a list request's page size and decode its cursor (before any query runs)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed.single(
            "limit", f"每页条数须在 1-{MAX_LIMIT} 之间 (limit must be 1-{MAX_LIMIT})"
        )
    return decode_cursor(cursor, *types)


def page_of(rows: list[T], limit: int, key: Any) -> Page[T]:
    """A page from ``limit + 1`` fetched rows; ``key(row)`` gives the cursor values of a row."""
    if len(rows) > limit:
        rows = rows[:limit]
        values = key(rows[-1])
        return Page(items=rows, next_cursor=encode_cursor(*values))
    return Page(items=rows, next_cursor=None)
