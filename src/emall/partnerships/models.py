"""Partnership data: Create / Update / Read, and members over time.

Dates are business dates (Asia/Shanghai). A partnership is in force from ``effective_from`` to
``effective_to`` inclusive. A region is a member from ``joined_on`` until the day before
``left_on`` (the day it left).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import msgspec

from emall.structs import END, NOT_BLANK, RegionCode, Struct

PartnershipCode = Annotated[
    str, msgspec.Meta(pattern=rf"^[a-z0-9][a-z0-9-]{{1,62}}{END}", examples=["neijiang-zigong"])
]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=NOT_BLANK)]


class MemberCreate(Struct):
    region_code: RegionCode
    joined_on: date
    recognises_admissions: bool = True


class MemberRead(Struct):
    id: int
    region_code: str
    region_name: str
    joined_on: date
    left_on: date | None
    recognises_admissions: bool


class PartnershipCreate(Struct):
    code: PartnershipCode
    name: Name
    effective_from: date
    effective_to: date | None = None
    description: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    members: list[MemberCreate] = []


class PartnershipUpdate(Struct):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    description: Annotated[str, msgspec.Meta(max_length=2000)] | msgspec.UnsetType = msgspec.UNSET
    effective_to: date | msgspec.UnsetType | None = msgspec.UNSET


class PartnershipRead(Struct):
    id: int
    code: str
    name: str
    description: str
    effective_from: date
    effective_to: date | None
    members: list[MemberRead]
    created_at: datetime
    updated_at: datetime


class MemberLeave(Struct):
    left_on: date


class RecognitionUpdate(Struct):
    """A member region opts out of (or back into) recognising admissions granted elsewhere."""

    recognises_admissions: bool


class PartnerLink(Struct):
    """A region that may buy from suppliers admitted in ``region_code``, and why."""

    region_code: str
    partnership_id: int
    partnership_code: str
    partnership_name: str
