"""City rules as the API takes and shows them. Money in integer fen; dates are business dates."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import msgspec

from emall.structs import Struct

MAX_FEN = 9_000_000_000_000_000


class CityRuleCreate(Struct):
    effective_from: Annotated[
        date, msgspec.Meta(description="first business day in force; today or later")
    ]
    ceiling_fen: Annotated[
        int,
        msgspec.Meta(
            gt=0, le=MAX_FEN, description="限额标准: the largest order the e-mall may take (fen)"
        ),
    ]
    approval_threshold_fen: Annotated[
        int,
        msgspec.Meta(
            ge=0,
            le=MAX_FEN,
            description="orders above this wait for an agency approver (fen); at most the ceiling",
        ),
    ]
    splitting_window_days: Annotated[
        int, msgspec.Meta(ge=1, le=366, description="anti-splitting window (days)")
    ] = 30
    payment_term_days: Annotated[
        int, msgspec.Meta(ge=1, le=365, description="payment due this many days after acceptance")
    ] = 30
    note: Annotated[str, msgspec.Meta(max_length=1000)] = ""


class CityRuleRead(Struct):
    id: int
    region_code: str  # the region that defines the rule (a county may use its city's)
    version: int
    effective_from: date
    effective_until: date | None  # the day before the next version takes over; None: open-ended
    ceiling_fen: int
    approval_threshold_fen: int
    splitting_window_days: int
    payment_term_days: int
    note: str
    created_by: int | None
    created_at: datetime
