"""Identity data: credentials and API keys (Create / Read split). The acting principal itself
is ``emall.principals``: every domain and the policy take one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from emall.principals import Role
from emall.structs import Struct

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
