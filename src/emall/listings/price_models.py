"""Price statistics, price rules and flags as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from emall.structs import Struct


class PriceStats(Struct):
    """Listed offers' prices in a category (fen): count, min, quartiles, median, max."""

    category_code: str
    count: int
    min: int | None
    lower_quartile: int | None
    median: int | None
    upper_quartile: int | None
    max: int | None


class PriceRuleWrite(Struct):
    max_rise_bp: Annotated[
        int,
        msgspec.Meta(
            ge=0, le=100_000, description="largest rise without review, basis points (1000 = 10%)"
        ),
    ] = 1000
    rise_window_days: Annotated[int, msgspec.Meta(ge=1, le=365)] = 30
    flag_factor_bp: Annotated[
        int,
        msgspec.Meta(
            ge=10_000,
            le=100_000,
            description="flag above this multiple of the upper quartile, basis points (15000 = 1.5×)",
        ),
    ] = 15000


class PriceRuleRead(Struct):
    region_code: str
    defined_in: str | None  # the region whose rule applies (itself or an ancestor); None: defaults
    max_rise_bp: int
    rise_window_days: int
    flag_factor_bp: int


class FlagRead(Struct):
    id: int
    offer_id: int
    kind: str
    region_code: str
    detail: dict[str, Any]
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: int | None
    resolution: str | None


class FlagResolve(Struct):
    resolution: Annotated[str, msgspec.Meta(min_length=2, max_length=1000)]
