"""Query, path and header parameters shared by the routes, with the bounds the server enforces
(the OpenAPI document states each one; ``emall.structs`` explains the text patterns)."""

from __future__ import annotations

from typing import Annotated

from litestar.params import PathParameter, QueryParameter

from emall.pagination import DEFAULT_LIMIT, MAX_LIMIT
from emall.structs import CATEGORY_CODE, END, MAX_ID, NO_NUL, REGION_CODE

# what encode_cursor writes: base64url without padding
CURSOR = rf"^[A-Za-z0-9_-]+{END}"

PageCursor = Annotated[
    str | None,
    QueryParameter(
        description="the next_cursor of the previous page, unchanged (any other value is "
        "refused with 422)",
        max_length=512,
        pattern=CURSOR,
    ),
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
# a region or category code to filter by (one that names none is refused with 422)
RegionFilter = Annotated[
    str | None, QueryParameter(pattern=REGION_CODE, description="a 6-digit region code")
]
CategoryFilter = Annotated[
    str | None, QueryParameter(pattern=CATEGORY_CODE, description="a category code")
]
RegionCodeQuery = Annotated[
    str, QueryParameter(pattern=REGION_CODE, description="a 6-digit region code")
]
# a price bound in fen. Litestar carries a parameter's bounds into the document only when they
# are truthy, so ge=0 would be enforced but not stated: the minimum is stated explicitly.
PriceFilter = Annotated[
    int | None,
    QueryParameter(ge=0, le=9_000_000_000_000_000, schema_extra={"minimum": 0}),
]
# free text to search for
TextFilter = Annotated[str | None, QueryParameter(pattern=NO_NUL)]

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_ID",
    "CategoryFilter",
    "IdFilter",
    "PageCursor",
    "PageLimit",
    "PathId",
    "PriceFilter",
    "RegionCodeQuery",
    "RegionFilter",
    "TextFilter",
]
