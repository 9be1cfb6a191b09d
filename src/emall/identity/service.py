"""Identity services: log in, resolve a credential to a principal, manage API keys."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import asyncpg

from emall.audit import record_event
from emall.clock import BUSINESS_DATE_SQL
from emall.db.pool import Connection, Pool
from emall.errors import NotAuthenticated, NotFound, ValidationFailed
from emall.identity import passwords, principal_cache, throttle, tokens
from emall.identity.models import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    TokenRequest,
    TokenResponse,
)
from emall.policy import Resource, authorize
from emall.principals import ADMIN_ROLES, OrganisationKind, Principal, Role
from emall.settings import AuthSettings

_BAD_LOGIN = "用户名或密码错误 (wrong username or password)"

_SCOPE_SQL = f"""
coalesce(
    (select array_agg(m.region_code order by m.region_code)
     from partnership_members m
     where m.partnership_id = u.scope_partnership_id
       and m.joined_on <= {BUSINESS_DATE_SQL}
       and (m.left_on is null or m.left_on > {BUSINESS_DATE_SQL})),
    array[o.region_code]
) as scope_regions
"""

_PRINCIPAL_SQL = f"""
select u.id as user_id, u.username, u.roles, u.is_active, u.scope_partnership_id,
       o.id as organisation_id, o.kind, o.name as organisation_name, o.region_code,
       {_SCOPE_SQL}
from users u
join organisations o on o.id = u.organisation_id
"""


def _principal(
    row: asyncpg.Record, *, roles: list[str] | None = None, api_key_id: int | None = None
) -> Principal:
    return Principal(
        user_id=row["user_id"],
        username=row["username"],
        organisation_id=row["organisation_id"],
        organisation_kind=OrganisationKind(row["kind"]),
        organisation_name=row["organisation_name"],
        region_code=row["region_code"],
        roles=frozenset(Role(r) for r in (row["roles"] if roles is None else roles)),
        auth_method="token" if api_key_id is None else "api_key",
        api_key_id=api_key_id,
        scope_partnership_id=row["scope_partnership_id"],
        scope_regions=frozenset(row["scope_regions"]),
    )


async def log_in(
    pool: Pool, request: TokenRequest, settings: AuthSettings, client_address: str | None = None
) -> TokenResponse:
    """Check a username and password and issue a bearer token; throttled per username and
    client address, and slowed per username (``emall.identity.throttle``)."""
    username = request.username.lower()
    await throttle.admit(pool, username, client_address, settings)
    row = await pool.fetchrow(
        "select id, password_hash, is_active from users where username = $1", username
    )
    ok = await passwords.verify_password(row["password_hash"] if row else None, request.password)
    if row is None or not ok or not row["is_active"]:
        raise NotAuthenticated(_BAD_LOGIN)
    await throttle.clear(pool, username, client_address)
    token, expires_at = tokens.issue_token(
        row["id"], secret=settings.jwt_secret, ttl_seconds=settings.token_ttl_seconds
    )
    return TokenResponse(
        access_token=token,
        token_type="bearer",
        expires_in=settings.token_ttl_seconds,
        expires_at=expires_at,
    )


async def principal_from_token(conn: Connection | Pool, token: str, secret: str) -> Principal:
    return (await _from_token(conn, token, secret))[0]


async def _from_token(
    conn: Connection | Pool, token: str, secret: str
) -> tuple[Principal, float | None]:
    """The principal and the seconds until the token expires."""
    user_id, expires = tokens.read_token_claims(token, secret=secret)
    row = await conn.fetchrow(_PRINCIPAL_SQL + " where u.id = $1", user_id)
    if row is None or not row["is_active"]:
        raise NotAuthenticated("账号已停用或不存在 (account inactive or unknown)")
    return _principal(row), expires - time.time()


async def principal_from_api_key(conn: Connection | Pool, key: str) -> Principal:
    return (await _from_api_key(conn, key))[0]


async def _from_api_key(conn: Connection | Pool, key: str) -> tuple[Principal, float | None]:
    """The principal and the seconds until the key expires (None: it does not)."""
    parts = tokens.split_api_key(key)
    if parts is None:
        raise NotAuthenticated("无效的 API 密钥 (invalid API key)")
    prefix, digest = parts
    row = await conn.fetchrow(
        f"""
        select u.id as user_id, u.username, u.roles as user_roles, u.is_active,
               u.scope_partnership_id,
               o.id as organisation_id, o.kind, o.name as organisation_name, o.region_code,
               {_SCOPE_SQL},
               k.id as key_id, k.roles, k.secret_sha256,
               extract(epoch from k.expires_at - now())::float8 as expires_in
        from api_keys k
        join users u on u.id = k.user_id
        join organisations o on o.id = k.organisation_id
        where k.prefix = $1 and k.revoked_at is null
          and (k.expires_at is null or k.expires_at > now())
        """,
        prefix,
    )
    if (
        row is None
        or not tokens.secrets_equal(row["secret_sha256"], digest)
        or not row["is_active"]
    ):
        raise NotAuthenticated(
            "无效、已吊销或已过期的 API 密钥 (invalid, revoked or expired API key)"
        )
    # A key never holds more than its user holds now.
    roles = [r for r in row["roles"] if r in set(row["user_roles"])]
    await conn.execute(
        """
        update api_keys set last_used_at = now()
        where id = $1 and (last_used_at is null or last_used_at < now() - interval '1 minute')
        """,
        row["key_id"],
    )
    return _principal(row, roles=roles, api_key_id=row["key_id"]), row["expires_in"]


async def resolve_principal(
    conn: Connection | Pool,
    credential: str,
    secret: str,
    cache: principal_cache.PrincipalCache | None = None,
) -> Principal:
    """A bearer credential (JWT or API key) to the principal it stands for; from ``cache``
    when it holds the credential (see ``emall.identity.principal_cache``)."""
    if cache is not None and cache.enabled:
        cached = cache.get(credential)
        if cached is not None:
            return cached
    generation = cache.generation if cache is not None else 0
    if tokens.looks_like_api_key(credential):
        principal, expires_in = await _from_api_key(conn, credential)
    else:
        principal, expires_in = await _from_token(conn, credential, secret)
    if cache is not None:
        cache.put(credential, principal, expires_in=expires_in, generation=generation)
    return principal


_KEY_COLUMNS = """id, prefix, name, user_id, organisation_id, roles, created_at, expires_at,
                  revoked_at, last_used_at"""


def _key(row: asyncpg.Record) -> ApiKeyRead:
    return ApiKeyRead(
        id=row["id"],
        prefix=row["prefix"],
        name=row["name"],
        user_id=row["user_id"],
        organisation_id=row["organisation_id"],
        roles=[Role(r) for r in row["roles"]],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
    )


async def create_api_key(
    conn: Connection, principal: Principal, data: ApiKeyCreate, *, request_id: str | None = None
) -> ApiKeyCreated:
    authorize(principal, "api_key.create")
    roles = sorted(principal.roles) if data.roles is None else sorted(set(data.roles))
    extra = [r for r in roles if r not in principal.roles]
    if extra:
        raise ValidationFailed.single(
            "roles",
            f"API 密钥的角色不能超出创建者的角色 (a key cannot hold roles you lack): {extra}",
        )
    if not roles:
        raise ValidationFailed.single("roles", "至少需要一个角色 (at least one role)")
    if data.expires_at is not None:
        if data.expires_at.tzinfo is None:
            raise ValidationFailed.single("expires_at", "需要带时区的时间 (a time with a timezone)")
        if data.expires_at <= datetime.now(UTC) + timedelta(minutes=1):
            raise ValidationFailed.single("expires_at", "必须是将来的时间 (must be in the future)")
    key, prefix, digest = tokens.new_api_key()
    row = await conn.fetchrow(
        f"""
        insert into api_keys (prefix, secret_sha256, name, user_id, organisation_id, roles, expires_at)
        values ($1, $2, $3, $4, $5, $6, $7)
        returning {_KEY_COLUMNS}
        """,
        prefix,
        digest,
        data.name,
        principal.user_id,
        principal.organisation_id,
        [str(r) for r in roles],
        data.expires_at,
    )
    assert row is not None
    created = _key(row)
    await record_event(
        conn,
        actor=principal,
        action="api_key.created",
        entity_type="api_key",
        entity_id=created.id,
        region_code=principal.region_code,
        after=created,
        request_id=request_id,
    )
    return ApiKeyCreated(key=key, api_key=created)


async def list_api_keys(conn: Connection, principal: Principal) -> list[ApiKeyRead]:
    """An admin sees the organisation's keys; anyone else sees their own."""
    authorize(principal, "api_key.list")
    if principal.has_role(*ADMIN_ROLES):
        rows = await conn.fetch(
            f"select {_KEY_COLUMNS} from api_keys where organisation_id = $1 order by id",
            principal.organisation_id,
        )
    else:
        rows = await conn.fetch(
            f"select {_KEY_COLUMNS} from api_keys where user_id = $1 order by id",
            principal.user_id,
        )
    return [_key(r) for r in rows]


async def revoke_api_key(
    conn: Connection, principal: Principal, key_id: int, *, request_id: str | None = None
) -> ApiKeyRead:
    row = await conn.fetchrow(
        f"select {_KEY_COLUMNS} from api_keys where id = $1 for update", key_id
    )
    if row is None:
        raise NotFound("API 密钥", key_id)
    before = _key(row)
    authorize(
        principal,
        "api_key.revoke",
        Resource(
            "api_key", key_id, organisation_id=before.organisation_id, owner_user_id=before.user_id
        ),
    )
    if before.revoked_at is not None:
        return before
    updated = await conn.fetchrow(
        f"update api_keys set revoked_at = now() where id = $1 returning {_KEY_COLUMNS}", key_id
    )
    principal_cache.invalidate(before.user_id)
    assert updated is not None
    after = _key(updated)
    await record_event(
        conn,
        actor=principal,
        action="api_key.revoked",
        entity_type="api_key",
        entity_id=key_id,
        region_code=principal.region_code,
        before=before,
        after=after,
        request_id=request_id,
    )
    return after
