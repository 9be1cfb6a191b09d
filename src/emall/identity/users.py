"""User management: an organisation's admin creates, changes, deactivates and reactivates users.

Each function takes the connection of the caller's transaction and the acting principal, and
authorises before it reveals or changes anything: the user row is loaded first, so that a user
of another organisation is ``NotFound`` (policy decides), never ``PermissionDenied``.

Two guard rails keep an organisation manageable: an admin may not deactivate themselves, and no
change may leave the organisation without an active admin. Deactivating a user takes effect at
once for their tokens and API keys, since the principal resolver checks ``is_active`` on every
request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import asyncpg

from emall.audit import record_event
from emall.db.pool import Connection
from emall.errors import Conflict, NotFound, ValidationFailed
from emall.identity import principal_cache
from emall.identity.passwords import hash_password
from emall.identity.user_models import UserCreate, UserRead, UserUpdate
from emall.pagination import DEFAULT_LIMIT, Page, page_args, page_of
from emall.policy import Resource, authorize
from emall.principals import OrganisationKind, Principal, Role

R = Role

# The roles a user may hold, by the kind of their organisation.
ROLES_BY_KIND: dict[OrganisationKind, frozenset[Role]] = {
    OrganisationKind.AGENCY: frozenset({R.AGENCY_BUYER, R.AGENCY_APPROVER, R.AGENCY_ADMIN}),
    OrganisationKind.SUPPLIER: frozenset({R.SUPPLIER_ADMIN, R.SUPPLIER_STAFF}),
    OrganisationKind.OPERATOR: frozenset({R.OPERATOR, R.AUDITOR}),
    OrganisationKind.PLATFORM: frozenset({R.PLATFORM_ADMIN, R.AUDITOR}),
}

# The role that administers an organisation of each kind; one active holder must remain.
ADMIN_ROLE_BY_KIND: dict[OrganisationKind, Role] = {
    OrganisationKind.AGENCY: R.AGENCY_ADMIN,
    OrganisationKind.SUPPLIER: R.SUPPLIER_ADMIN,
    OrganisationKind.OPERATOR: R.OPERATOR,
    OrganisationKind.PLATFORM: R.PLATFORM_ADMIN,
}

# As the users table's check: ASCII, lower case, 3-64 characters. Checked again here because a
# msgspec pattern's ``$`` also matches before a trailing newline.
_USERNAME = re.compile(r"[a-z0-9][a-z0-9_.-]{2,63}")

_USER = "用户"
_ORGANISATION = "单位"

_COLUMNS = """u.id, u.username, u.display_name, u.organisation_id, u.roles, u.is_active,
              u.created_at, u.updated_at, u.deactivated_at, u.scope_partnership_id"""
_RETURNING = """id, username, display_name, organisation_id, roles, is_active,
                created_at, updated_at, deactivated_at, scope_partnership_id"""


@dataclass(frozen=True)
class _Organisation:
    id: int
    kind: OrganisationKind
    region_code: str


def _user(row: asyncpg.Record) -> UserRead:
    return UserRead(
        id=row["id"],
        username=row["username"],
        display_name=row["display_name"],
        organisation_id=row["organisation_id"],
        roles=[Role(r) for r in row["roles"]],
        is_active=row["is_active"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        deactivated_at=row["deactivated_at"],
        scope_partnership_id=row["scope_partnership_id"],
    )


def _organisation_of(row: asyncpg.Record) -> _Organisation:
    return _Organisation(
        id=row["organisation_id"],
        kind=OrganisationKind(row["kind"]),
        region_code=row["region_code"],
    )


def _organisation_resource(organisation_id: int) -> Resource:
    return Resource(kind="organisation", key=organisation_id, organisation_id=organisation_id)


def _user_resource(user: UserRead) -> Resource:
    return Resource(kind="user", key=user.id, organisation_id=user.organisation_id)


async def _load_organisation(conn: Connection, organisation_id: int) -> _Organisation:
    row = await conn.fetchrow(
        "select id as organisation_id, kind, region_code from organisations where id = $1",
        organisation_id,
    )
    if row is None:
        raise NotFound(_ORGANISATION, organisation_id)
    return _organisation_of(row)


async def _load_user(
    conn: Connection, user_id: int, *, for_update: bool = False
) -> tuple[UserRead, _Organisation]:
    row = await conn.fetchrow(
        f"""
        select {_COLUMNS}, o.kind, o.region_code
        from users u
        join organisations o on o.id = u.organisation_id
        where u.id = $1
        {"for update of u" if for_update else ""}
        """,
        user_id,
    )
    if row is None:
        raise NotFound(_USER, user_id)
    return _user(row), _organisation_of(row)


def _checked_roles(roles: list[Role], kind: OrganisationKind) -> list[Role]:
    """The roles, de-duplicated and sorted, if all of them suit the organisation's kind."""
    unique = sorted(set(roles))
    if not unique:
        raise ValidationFailed.single("roles", "至少需要一个角色 (at least one role)")
    allowed = ROLES_BY_KIND[kind]
    refused = [str(r) for r in unique if r not in allowed]
    if refused:
        raise ValidationFailed.single(
            "roles",
            f"该类单位的用户不能担任这些角色 (roles not allowed in a {kind} organisation): "
            f"{', '.join(refused)}; 可选 (allowed): {', '.join(sorted(allowed))}",
        )
    return unique


async def _ensure_another_active_admin(
    conn: Connection, organisation: _Organisation, user_id: int
) -> None:
    """Refuse a change that would leave the organisation without an active admin.

    The organisation row is locked first, so that two concurrent changes (two admins
    deactivating each other) are decided one after the other and cannot both pass.
    """
    await conn.execute(
        "select 1 from organisations where id = $1 for no key update", organisation.id
    )
    admin_role = ADMIN_ROLE_BY_KIND[organisation.kind]
    others = await conn.fetchval(
        """
        select count(*) from users
        where organisation_id = $1 and is_active and $2 = any(roles) and id <> $3
        """,
        organisation.id,
        str(admin_role),
        user_id,
    )
    if not others:
        raise Conflict(
            f"单位至少需要保留一名在用的管理员（{admin_role}） "
            f"(the organisation must keep at least one active {admin_role})"
        )


def _removes_active_admin(
    before: UserRead, organisation: _Organisation, roles_after: list[Role], active_after: bool
) -> bool:
    admin_role = ADMIN_ROLE_BY_KIND[organisation.kind]
    was_admin = before.is_active and admin_role in before.roles
    return was_admin and not (active_after and admin_role in roles_after)


async def list_users(
    conn: Connection,
    principal: Principal,
    organisation_id: int,
    *,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Page[UserRead]:
    """The organisation's users, active or not, ordered by id."""
    organisation = await _load_organisation(conn, organisation_id)
    authorize(principal, "user.read", _organisation_resource(organisation.id))
    after = page_args(cursor, limit, int)
    rows = await conn.fetch(
        f"""
        select {_COLUMNS} from users u
        where u.organisation_id = $1 and ($2::bigint is null or u.id > $2)
        order by u.id
        limit $3
        """,
        organisation.id,
        None if after is None else after[0],
        limit + 1,
    )
    return page_of([_user(r) for r in rows], limit, lambda u: (u.id,))


async def get_user(conn: Connection, principal: Principal, user_id: int) -> UserRead:
    user, _ = await _load_user(conn, user_id)
    authorize(principal, "user.read", _user_resource(user))
    return user


async def create_user(
    conn: Connection,
    principal: Principal,
    organisation_id: int,
    data: UserCreate,
    *,
    request_id: str | None = None,
) -> UserRead:
    """Create an active user in the organisation; the username is stored lower-cased."""
    organisation = await _load_organisation(conn, organisation_id)
    authorize(principal, "user.manage", _organisation_resource(organisation.id))
    username = data.username.lower()
    if not _USERNAME.fullmatch(username):
        raise ValidationFailed.single(
            "username",
            "用户名须为 3-64 位字母、数字或 _ . -，以字母或数字开头 "
            "(3-64 ASCII letters, digits, _ . -, starting with a letter or digit)",
        )
    roles = _checked_roles(data.roles, organisation.kind)
    taken = Conflict(f"用户名已被使用：{username} (username already taken: {username})")
    if await conn.fetchval("select 1 from users where username = $1", username):
        raise taken
    password_hash = await hash_password(data.password)
    row = await conn.fetchrow(
        f"""
        insert into users (organisation_id, username, display_name, password_hash, roles)
        values ($1, $2, $3, $4, $5)
        on conflict (username) do nothing
        returning {_RETURNING}
        """,
        organisation.id,
        username,
        data.display_name.strip(),
        password_hash,
        [str(r) for r in roles],
    )
    if row is None:  # created meanwhile by a concurrent request
        raise taken
    created = _user(row)
    await record_event(
        conn,
        actor=principal,
        action="user.created",
        entity_type="user",
        entity_id=created.id,
        region_code=organisation.region_code,
        after=created,
        request_id=request_id,
    )
    return created


async def update_user(
    conn: Connection,
    principal: Principal,
    user_id: int,
    data: UserUpdate,
    *,
    request_id: str | None = None,
) -> UserRead:
    """Change the display name and/or roles; fields left out of ``data`` keep their value."""
    before, organisation = await _load_user(conn, user_id, for_update=True)
    authorize(principal, "user.manage", _user_resource(before))
    display_name = before.display_name
    if isinstance(data.display_name, str):
        display_name = data.display_name.strip()
    roles = before.roles
    if isinstance(data.roles, list):
        roles = _checked_roles(data.roles, organisation.kind)
    if display_name == before.display_name and sorted(roles) == sorted(before.roles):
        return before  # nothing to change
    if _removes_active_admin(before, organisation, roles, before.is_active):
        await _ensure_another_active_admin(conn, organisation, before.id)
    row = await conn.fetchrow(
        f"""
        update users set display_name = $2, roles = $3, updated_at = now()
        where id = $1
        returning {_RETURNING}
        """,
        before.id,
        display_name,
        [str(r) for r in roles],
    )
    assert row is not None
    principal_cache.invalidate(before.id)
    after = _user(row)
    await record_event(
        conn,
        actor=principal,
        action="user.updated",
        entity_type="user",
        entity_id=after.id,
        region_code=organisation.region_code,
        before=before,
        after=after,
        request_id=request_id,
    )
    return after


async def deactivate_user(
    conn: Connection, principal: Principal, user_id: int, *, request_id: str | None = None
) -> UserRead:
    """Deactivate a user: their tokens and API keys stop working at once. Idempotent."""
    before, organisation = await _load_user(conn, user_id, for_update=True)
    authorize(principal, "user.manage", _user_resource(before))
    if before.id == principal.user_id:
        raise Conflict("不能停用自己的账号 (you cannot deactivate your own account)")
    if not before.is_active:
        return before
    if _removes_active_admin(before, organisation, before.roles, active_after=False):
        await _ensure_another_active_admin(conn, organisation, before.id)
    return await _set_active(
        conn, principal, before, organisation, active=False, request_id=request_id
    )


async def reactivate_user(
    conn: Connection, principal: Principal, user_id: int, *, request_id: str | None = None
) -> UserRead:
    """Reactivate a deactivated user; they log in again with their old password. Idempotent."""
    before, organisation = await _load_user(conn, user_id, for_update=True)
    authorize(principal, "user.manage", _user_resource(before))
    if before.is_active:
        return before
    return await _set_active(
        conn, principal, before, organisation, active=True, request_id=request_id
    )


async def _set_active(
    conn: Connection,
    principal: Principal,
    before: UserRead,
    organisation: _Organisation,
    *,
    active: bool,
    request_id: str | None,
) -> UserRead:
    row = await conn.fetchrow(
        f"""
        update users
        set is_active = $2,
            deactivated_at = case when $2 then null else now() end,
            updated_at = now()
        where id = $1
        returning {_RETURNING}
        """,
        before.id,
        active,
    )
    assert row is not None
    principal_cache.invalidate(before.id)
    after = _user(row)
    await record_event(
        conn,
        actor=principal,
        action="user.reactivated" if active else "user.deactivated",
        entity_type="user",
        entity_id=after.id,
        region_code=organisation.region_code,
        before=before,
        after=after,
        request_id=request_id,
    )
    return after
