"""Query parameters shared by every list: the cursor and the page size, with their bounds."""

from __future__ import annotations

from typing import Annotated

from litestar.params import QueryParameter

from emall.pagination import DEFAULT_LIMIT, MAX_LIMIT

PageCursor = Annotated[
    str | None,
    QueryParameter(description="the next_cursor of the previous page", max_length=512),
]
PageLimit = Annotated[
    int,
    QueryParameter(
        ge=1, le=MAX_LIMIT, description=f"page size, 1-{MAX_LIMIT} (default {DEFAULT_LIMIT})"
    ),
]

__all__ = ["DEFAULT_LIMIT", "PageCursor", "PageLimit"]
