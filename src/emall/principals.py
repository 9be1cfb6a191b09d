"""The acting principal (who is acting, for which organisation, in which roles): what every
library service and the authorisation policy take. Kept apart from ``emall.identity`` (which
logs people in and keeps their credentials) so that the policy and every domain can name it
without depending on identity's services."""

from __future__ import annotations

import enum
from typing import Literal

from emall.structs import FrozenStruct


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
