"""Users of an organisation, as its admin manages them (Create / Update / Read split).

``UserRead`` never carries the password hash; the service selects its columns explicitly.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from emall.identity.models import Username
from emall.principals import Role
from emall.structs import NOT_BLANK, Struct

DisplayName = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=100,
        pattern=NOT_BLANK,
        description="姓名或称呼 (the name shown to others), 1-100 characters",
        examples=["内江市教育局采购员"],
    ),
]
NewPassword = Annotated[
    str,
    msgspec.Meta(min_length=10, max_length=256, description="at least 10 characters"),
]


class UserCreate(Struct):
    """A new user of the organisation. The username is stored lower-cased."""

    username: Username
    display_name: DisplayName
    password: NewPassword
    roles: list[Role]


class UserUpdate(Struct):
    """A partial update: only the fields present in the body change."""

    display_name: DisplayName | msgspec.UnsetType = msgspec.UNSET
    roles: list[Role] | msgspec.UnsetType = msgspec.UNSET


class UserRead(Struct):
    id: int
    username: str
    display_name: str
    organisation_id: int
    roles: list[Role]
    is_active: bool
    created_at: datetime
    updated_at: datetime
    deactivated_at: datetime | None
    scope_partnership_id: int | None
