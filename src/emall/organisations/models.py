"""Organisations: agencies (采购单位), suppliers (供应商) and operators (交易中心).

The public profile (name, kind, region, USCC, SME size) is visible to every signed-in user;
contacts and qualification documents are private to the organisation and to the operators and
auditors overseeing its regions.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec

from emall.principals import OrganisationKind
from emall.structs import END, NOT_BLANK, SPACE, RegionCode, Struct

SmeSize = Literal["large", "medium", "small", "micro"]
# Names must hold more than blanks (the database checks the trimmed length too).
OrgName = Annotated[str, msgspec.Meta(min_length=2, max_length=200, pattern=NOT_BLANK)]
Phone = Annotated[str, msgspec.Meta(pattern=rf"^[0-9+\-() ]{{5,30}}{END}")]
Email = Annotated[
    str,
    msgspec.Meta(
        pattern=rf"^[^@{SPACE}\x00]+@[^@{SPACE}\x00]+\.[^@{SPACE}\x00]+{END}", max_length=200
    ),
]
Text200 = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=NOT_BLANK)]


class FirstAdmin(Struct):
    """The organisation's first admin user, created with it."""

    username: Annotated[
        str, msgspec.Meta(min_length=3, max_length=64, pattern=rf"^[A-Za-z0-9][A-Za-z0-9_.-]*{END}")
    ]
    display_name: Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=NOT_BLANK)]
    password: Annotated[str, msgspec.Meta(min_length=10, max_length=256)]


class OrganisationCreate(Struct):
    kind: OrganisationKind
    name: OrgName
    region_code: RegionCode
    uscc: str | None = None  # required for suppliers; checked against GB 32100-2015
    sme_size: SmeSize | None = None
    contact_phone: Phone | None = None
    address: Annotated[str, msgspec.Meta(max_length=300)] | None = None
    admin: FirstAdmin | None = None


class OrganisationUpdate(Struct):
    name: OrgName | msgspec.UnsetType = msgspec.UNSET
    sme_size: SmeSize | msgspec.UnsetType | None = msgspec.UNSET
    contact_phone: Phone | msgspec.UnsetType | None = msgspec.UNSET
    address: Annotated[str, msgspec.Meta(max_length=300)] | msgspec.UnsetType | None = msgspec.UNSET


class OrganisationRead(Struct):
    id: int
    kind: OrganisationKind
    name: str
    region_code: str
    region_name: str
    uscc: str | None
    sme_size: SmeSize | None
    contact_phone: str | None
    address: str | None
    created_at: datetime
    updated_at: datetime


class ContactCreate(Struct):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=NOT_BLANK)]
    title: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    phone: Phone | None = None
    email: Email | None = None


class ContactRead(Struct):
    id: int
    organisation_id: int
    name: str
    title: str | None
    phone: str | None
    email: str | None
    created_at: datetime


class QualificationCreate(Struct):
    kind: Text200  # e.g. 营业执照, ISO 9001 质量管理体系认证
    number: Text200
    issuer: Text200
    valid_from: date
    valid_until: date | None = None
    document_url: (
        Annotated[str, msgspec.Meta(pattern=rf"^https?://[^\x00]*{END}", max_length=1000)] | None
    ) = None


class QualificationRead(Struct):
    id: int
    organisation_id: int
    kind: str
    number: str
    issuer: str
    valid_from: date
    valid_until: date | None
    expired: bool
    document_url: str | None
    created_at: datetime
