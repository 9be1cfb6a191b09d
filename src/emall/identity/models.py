"""Identity data: the acting principal, credentials, and API keys (Create / Read split)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from emall.structs import FrozenStruct, Struct


class OrganisationKind(enum.StrEnum):
    AGENCY = "agency"  # 采购单位
    SUPPLIER = "supplier"  # 供应商
    OPERATOR = "operator"  # 交易中心
    PLATFORM = "platform"  # the e-mall platform itself


class Role(enum.StrEnum):
    AGENCY_BUYER = "agency_buyer"
    AGENCY_APPROVER = "agency_approver"
    AGENCY_ADMIN = "agency_admin"
    SUPPLIER_ADMIN = "supplier_admin"
    SUPPLIER_STAFF = "supplier_staff"
    OPERATOR = "operator"
    AUDITOR = "auditor"
    PLATFORM_ADMIN = "platform_admin"


ADMIN_ROLES = frozenset(
    {Role.AGENCY_ADMIN, Role.SUPPLIER_ADMIN, Role.OPERATOR, Role.PLATFORM_ADMIN}
)

AuthMethod = Literal["token", "api_key"]
Username = Annotated[
    str,
    msgspec.Meta(
        min_length=3,
        max_length=64,
        # (?![\s\S]) is "end of text" in Python and ECMA regexes alike; "$" would also let a
        # trailing newline through in Python.
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*(?![\s\S])",
        description="ASCII letters, digits, _ . - (case-insensitive)",
    ),
]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class Principal(FrozenStruct, frozen=True):
    """Who is acting. Every library service that acts for someone takes one explicitly."""

    user_id: int
    username: str
    organisation_id: int
    organisation_kind: OrganisationKind
    organisation_name: str
    region_code: str
    roles: frozenset[Role]
    auth_method: AuthMethod = "token"
    api_key_id: int | None = None
    scope_partnership_id: int | None = None
    # Regions an operator or auditor oversees (with their sub-regions): the organisation's
    # region, or the member regions of the auditor's partnership.
    scope_regions: frozenset[str] = frozenset()

    def has_role(self, *roles: Role) -> bool:
        return any(role in self.roles for role in roles)


class TokenRequest(Struct):
    username: Username
    password: Password


class TokenResponse(Struct):
    access_token: str
    token_type: Literal["bearer"]
    expires_in: int
    expires_at: datetime


class ApiKeyCreate(Struct):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    roles: list[Role] | None = None  # default: all of the creator's roles
    expires_at: datetime | None = None


class ApiKeyRead(Struct):
    id: int
    prefix: str
    name: str
    user_id: int
    organisation_id: int
    roles: list[Role]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(Struct):
    """Returned once, at creation: ``key`` is never shown again."""

    key: str
    api_key: ApiKeyRead
