"""Admission, ban and sale-right data."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec

from emall.structs import Id, ReasonText, RegionCode, Struct
from emall.structs import Reason as Reason  # one Reason for every refusal: one schema

AdmissionStatus = Literal["pending", "approved", "rejected", "revoked", "withdrawn", "expired"]


class AdmissionApply(Struct):
    region_code: RegionCode
    note: Annotated[str, msgspec.Meta(max_length=1000)] = ""


class AdmissionApprove(Struct):
    valid_from: date | None = None  # default: today
    valid_until: date | None = None  # default: open-ended


class AdmissionRead(Struct):
    id: int
    supplier_id: int
    supplier_name: str
    region_code: str
    region_name: str
    status: AdmissionStatus
    in_force: bool
    note: str
    applied_at: datetime
    applied_by: int | None
    decided_at: datetime | None
    decided_by: int | None
    decision_reason: str | None
    valid_from: date | None
    valid_until: date | None
    revoked_at: datetime | None
    revoked_by: int | None
    revoke_reason: str | None


class BanCreate(Struct):
    supplier_id: Id
    region_code: RegionCode
    reason: ReasonText
    starts_at: datetime | None = None  # default: now
    ends_at: datetime | None = None  # default: until lifted


class BanRead(Struct):
    id: int
    supplier_id: int
    supplier_name: str
    region_code: str
    region_name: str
    reason: str
    starts_at: datetime
    ends_at: datetime | None
    active: bool
    created_by: int | None
    created_at: datetime
    lifted_at: datetime | None
    lifted_by: int | None
    lift_reason: str | None


class SaleRight(Struct):
    """The answer to "may supplier S sell to an agency in region R on this day?", with why."""

    supplier_id: int
    region_code: str
    on: date
    allowed: bool
    basis: Literal["admission", "recognition"] | None
    reason: str
    admission_id: int | None = None
    admitted_in: str | None = None
    admitted_by: int | None = None
    admitted_at: datetime | None = None
    partnership_id: int | None = None
    partnership_name: str | None = None
    ban_id: int | None = None
