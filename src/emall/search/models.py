"""Search requests and results as the API shows them."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from emall.listings.models import PolicyTag
from emall.structs import CATEGORY_CODE, NO_NUL, REGION_CODE, Struct

Sort = Literal["relevance", "price_asc", "price_desc", "newest", "sales"]
MAX_QUERY_LENGTH = 200


class SearchRequest(Struct):
    q: Annotated[str, msgspec.Meta(max_length=MAX_QUERY_LENGTH, pattern=NO_NUL)] = ""
    category: Annotated[str, msgspec.Meta(pattern=CATEGORY_CODE)] | None = None
    brand: Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=NO_NUL)] | None = None
    policy_tags: list[PolicyTag] = []
    price_min: Annotated[int, msgspec.Meta(ge=0, le=9_000_000_000_000_000)] | None = None
    price_max: Annotated[int, msgspec.Meta(ge=0, le=9_000_000_000_000_000)] | None = None
    delivery_region: Annotated[str, msgspec.Meta(pattern=REGION_CODE)] | None = None
    sort: Sort = "relevance"
    page: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1
    page_size: Annotated[int, msgspec.Meta(ge=1, le=100)] = 20


class SearchHit(Struct):
    offer_id: int
    product_id: int
    title: str
    brand: str
    model: str
    category_code: str
    supplier_id: int
    supplier_name: str
    price_fen: int
    policy_tags: list[str]
    delivery_regions: list[str]
    highlight: str  # the title with matches wrapped in <em>…</em>


class SearchResult(Struct):
    hits: list[SearchHit]
    facets: dict[str, dict[str, int]]
    total_estimate: int
    page: int
    page_size: int
    processing_ms: int
    degraded: bool


class Suggestions(Struct):
    q: str
    suggestions: list[str]
    degraded: bool
