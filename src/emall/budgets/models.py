"""Budget line and ledger data. Money is integer fen (分) everywhere."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from emall.structs import Struct

FundingSource = Literal[
    "general_public_budget",  # 一般公共预算
    "government_fund",  # 政府性基金
    "state_capital",  # 国有资本经营预算
    "fiscal_special",  # 财政专户
    "own_funds",  # 单位自有资金
    "other",  # 其他
]
LedgerKind = Literal["allocate", "adjust", "reserve", "release", "spend"]

MAX_FEN = 10**15  # ten trillion yuan: far above any budget, far below bigint's limit
FiscalYear = Annotated[int, msgspec.Meta(ge=2000, le=2100, examples=[2026])]
Fen = Annotated[int, msgspec.Meta(ge=0, le=MAX_FEN, description="amount in fen (分)")]
DeltaFen = Annotated[
    int,
    msgspec.Meta(
        ge=-MAX_FEN,
        le=MAX_FEN,
        description="change in fen (分), non-zero; negative is a cut",
        examples=[500000, -200000],
    ),
]


class BudgetLineCreate(Struct):
    fiscal_year: FiscalYear
    funding_source: FundingSource
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    amount_fen: Fen


class BudgetAdjust(Struct):
    delta_fen: DeltaFen
    note: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]


class BudgetLineRead(Struct):
    id: int
    agency_id: int
    fiscal_year: int
    funding_source: FundingSource
    name: str
    amount_fen: int
    reserved_fen: int
    spent_fen: int
    available_fen: int  # amount - reserved - spent
    version: int
    created_at: datetime
    updated_at: datetime


class LedgerEntry(Struct):
    id: int
    kind: LedgerKind
    amount_fen: int  # positive, except an adjust that cuts
    order_id: int | None
    note: str
    created_by: int | None
    created_at: datetime
