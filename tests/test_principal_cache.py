"""The cache of principals: a checked credential is not read again from PostgreSQL, and every
change to a principal reaches the cache, from this process at once and from any other through
PostgreSQL's NOTIFY."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient

from emall.db.pool import Pool
from emall.identity.principal_cache import PrincipalCache
from emall.principals import OrganisationKind, Principal, Role
from tests.helpers import login, token_for

WAIT_S = 10.0  # the longest a test waits for a notification; they arrive in milliseconds


async def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"not within {WAIT_S} s: {what}"
        await asyncio.sleep(0.01)


def _cache(app: Litestar) -> PrincipalCache:
    cache = app.state.principals
    assert isinstance(cache, PrincipalCache)
    return cache


async def _listening(app: Litestar) -> PrincipalCache:
    cache = _cache(app)
    await _until(lambda: cache.listening, "the cache listens")
    return cache


def _principal(user_id: int) -> Principal:
    return Principal(
        user_id=user_id,
        username=f"u{user_id}",
        organisation_id=1,
        organisation_kind=OrganisationKind.AGENCY,
        organisation_name="内江市教育局",
        region_code="511000",
        roles=frozenset({Role.AGENCY_BUYER}),
    )


def _listening_cache(ttl_seconds: float = 60.0) -> PrincipalCache:
    cache = PrincipalCache(ttl_seconds=ttl_seconds)
    cache.listening = True  # as while its LISTEN connection is up
    return cache


async def test_entries_expire_with_the_credential_and_the_ttl() -> None:
    cache = _listening_cache(ttl_seconds=60)
    cache.put("short", _principal(1), expires_in=0.05, generation=cache.generation)
    cache.put("long", _principal(1), expires_in=None, generation=cache.generation)
    cache.put("expired", _principal(1), expires_in=-1, generation=cache.generation)
    assert cache.get("short") is not None and cache.get("long") is not None
    assert cache.get("expired") is None
    await asyncio.sleep(0.1)
    assert cache.get("short") is None
    assert cache.get("long") is not None
    brief = _listening_cache(ttl_seconds=0.05)
    brief.put("t", _principal(1), expires_in=3600, generation=brief.generation)
    await asyncio.sleep(0.1)
    assert brief.get("t") is None


def test_a_lookup_that_raced_an_invalidation_is_not_kept() -> None:
    cache = _listening_cache()
    generation = cache.generation  # read before the database, as resolve_principal does
    cache.invalidate(7)  # a change committed meanwhile
    cache.put("token", _principal(7), expires_in=None, generation=generation)
    assert cache.get("token") is None
    cache.put("token", _principal(7), expires_in=None, generation=cache.generation)
    assert cache.get("token") is not None


def test_invalidation_drops_only_that_users_entries_or_all() -> None:
    cache = _listening_cache()
    for credential, user_id in [("a", 1), ("b", 1), ("c", 2)]:
        cache.put(credential, _principal(user_id), expires_in=None, generation=cache.generation)
    cache.invalidate(1)
    assert (cache.get("a"), cache.get("b")) == (None, None)
    assert cache.get("c") is not None
    cache.invalidate()
    assert len(cache) == 0


def test_a_cache_that_does_not_listen_keeps_nothing() -> None:
    cache = PrincipalCache()
    assert not cache.enabled
    cache.put("token", _principal(1), expires_in=None, generation=cache.generation)
    assert cache.get("token") is None
    off = _listening_cache(ttl_seconds=0)
    off.put("token", _principal(1), expires_in=None, generation=off.generation)
    assert off.get("token") is None


def test_the_cache_is_bounded() -> None:
    cache = PrincipalCache(max_entries=3)
    cache.listening = True
    for n in range(5):
        cache.put(f"t{n}", _principal(n), expires_in=None, generation=cache.generation)
    assert len(cache) == 3
    assert cache.get("t0") is None and cache.get("t4") is not None


async def test_a_checked_credential_is_served_from_the_cache(
    app: Litestar, client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    cache = await _listening(app)
    headers = await token_for(pool, "nj_buyer")
    me = await client.get("/api/v1/me", headers=headers)
    assert me.status_code == 200
    cached = cache.get(headers["Authorization"].split()[1])
    assert cached is not None and cached.username == "nj_buyer"
    # A change that is no part of a principal keeps the entry.
    await pool.execute("update users set display_name = '改名' where username = 'nj_buyer'")
    await asyncio.sleep(0.2)
    assert cache.get(headers["Authorization"].split()[1]) is not None


async def test_role_changes_through_the_api_apply_to_the_next_request(
    app: Litestar, client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    await _listening(app)
    admin = await login(client, "nj_agency_admin")
    buyer = await token_for(pool, "nj_buyer")
    assert (await client.get("/api/v1/me", headers=buyer)).json()["roles"] == ["agency_buyer"]
    user_id = await pool.fetchval("select id from users where username = 'nj_buyer'")
    changed = await client.patch(
        f"/api/v1/users/{user_id}",
        json={"roles": ["agency_buyer", "agency_approver"]},
        headers=admin,
    )
    assert changed.status_code == 200, changed.text
    me = await client.get("/api/v1/me", headers=buyer)
    assert sorted(me.json()["roles"]) == ["agency_approver", "agency_buyer"]


async def test_deactivation_through_the_api_stops_tokens_and_keys_at_once(
    app: Litestar, client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    await _listening(app)
    admin = await login(client, "zg_agency_admin")
    organisation_id = await pool.fetchval(
        "select organisation_id from users where username = 'zg_agency_admin'"
    )
    created = await client.post(
        f"/api/v1/organisations/{organisation_id}/users",
        json={
            "username": "zg_second_admin",
            "display_name": "第二管理员",
            "password": "Secret-pass-2026",
            "roles": ["agency_admin"],
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    second = await login(client, "zg_second_admin", "Secret-pass-2026")
    key = (await client.post("/api/v1/api-keys", json={"name": "k"}, headers=second)).json()["key"]
    assert (await client.get("/api/v1/me", headers=second)).status_code == 200
    assert (await client.get("/api/v1/me", headers={"X-API-Key": key})).status_code == 200
    deactivated = await client.post(
        f"/api/v1/users/{created.json()['id']}/deactivate", headers=admin
    )
    assert deactivated.status_code == 200, deactivated.text
    assert (await client.get("/api/v1/me", headers=second)).status_code == 401
    assert (await client.get("/api/v1/me", headers={"X-API-Key": key})).status_code == 401


async def test_changes_made_elsewhere_reach_the_cache_through_notify(
    app: Litestar, client: AsyncTestClient[Litestar], pool: Pool, database_url: str
) -> None:
    """Another process (another API server, psql) changes principals: the triggers notify,
    and this process's cache drops the entries."""
    cache = await _listening(app)
    buyer = await token_for(pool, "nj_buyer")
    buyer_token = buyer["Authorization"].split()[1]
    admin = await login(client, "nj_agency_admin")
    key = (await client.post("/api/v1/api-keys", json={"name": "k"}, headers=admin)).json()["key"]
    for headers in (buyer, {"X-API-Key": key}):
        assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
    assert cache.get(buyer_token) is not None and cache.get(key) is not None
    other = await asyncpg.connect(database_url)
    try:
        await other.execute(
            "update users set roles = '{agency_approver}' where username = 'nj_buyer'"
        )
        await _until(lambda: cache.get(buyer_token) is None, "a role change notifies")
        me = await client.get("/api/v1/me", headers=buyer)
        assert me.json()["roles"] == ["agency_approver"]
        await other.execute("update api_keys set revoked_at = now()")
        await _until(lambda: cache.get(key) is None, "a revoked key notifies")
        assert (await client.get("/api/v1/me", headers={"X-API-Key": key})).status_code == 401
        assert (await client.get("/api/v1/me", headers=buyer)).status_code == 200
        await other.execute(
            "update organisations set name = name || '（新）' where kind = 'agency'"
        )
        await _until(lambda: cache.get(buyer_token) is None, "an organisation's rename notifies")
        me = await client.get("/api/v1/me", headers=buyer)
        assert me.json()["organisation_name"].endswith("（新）")
        await other.execute(
            "update users set is_active = false, deactivated_at = now() where username = 'nj_buyer'"
        )
        await _until(lambda: cache.get(buyer_token) is None, "a deactivation notifies")
        assert (await client.get("/api/v1/me", headers=buyer)).status_code == 401
    finally:
        await other.close()


async def test_without_its_listener_the_cache_is_not_used(
    app: Litestar, client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    """When the LISTEN connection is lost (PostgreSQL restarting, an administrator's
    pg_terminate_backend), the cache empties and every request reads the database, until it
    listens again."""
    cache = await _listening(app)
    buyer = await token_for(pool, "nj_buyer")
    token = buyer["Authorization"].split()[1]
    assert (await client.get("/api/v1/me", headers=buyer)).status_code == 200
    assert cache.get(token) is not None
    terminated = await pool.fetchval(
        """
        select count(pg_terminate_backend(pid)) from pg_stat_activity
        where datname = current_database() and query ilike 'listen%emall_principal%'
        """
    )
    assert terminated == 1
    await _until(lambda: not cache.listening, "the lost listener is noticed")
    assert len(cache) == 0
    assert (await client.get("/api/v1/me", headers=buyer)).status_code == 200
    assert cache.get(token) is None  # not kept while nobody listens
    await _until(lambda: cache.listening, "the cache listens again")
    assert (await client.get("/api/v1/me", headers=buyer)).status_code == 200
    assert cache.get(token) is not None
