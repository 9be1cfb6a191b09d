"""Query and path parameters shared by the routes: page cursor and size, ids, with their bounds."""

from __future__ import annotations

from typing import Annotated

from litestar.params import PathParameter, QueryParameter

from emall.pagination import DEFAULT_LIMIT, MAX_LIMIT
from emall.structs import MAX_ID

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
# ids past PostgreSQL's bigint are refused as invalid input, a 400 naming the parameter
PathId = Annotated[int, PathParameter(ge=1, le=MAX_ID)]
IdFilter = Annotated[int | None, QueryParameter(ge=1, le=MAX_ID)]

__all__ = ["DEFAULT_LIMIT", "MAX_ID", "IdFilter", "PageCursor", "PageLimit", "PathId"]
