"""Identity: tokens, throttling, deactivation, API keys, and their audit events."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.app import create_app
from emall.db.pool import Pool
from tests.helpers import login, make_settings


async def test_wrong_password_and_unknown_user_look_the_same(
    client: AsyncTestClient[Litestar],
) -> None:
    wrong = await client.post("/api/v1/auth/token", json={"username": "nj_buyer", "password": "no"})
    unknown = await client.post("/api/v1/auth/token", json={"username": "nobody", "password": "no"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]


async def test_username_is_case_insensitive(client: AsyncTestClient[Litestar]) -> None:
    headers = await login(client, "NJ_Buyer")
    me = await client.get("/api/v1/me", headers=headers)
    assert me.json()["username"] == "nj_buyer"


async def test_repeated_failures_are_throttled_even_with_the_right_password(
    database_url: str, meili: tuple[str, str], tmp_path: Path
) -> None:
    settings = make_settings(
        database_url, meili[0], meili[1], tmp_path, EMALL_LOGIN_MAX_FAILURES="3"
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        for _ in range(3):
            bad = await client.post(
                "/api/v1/auth/token", json={"username": "zg_buyer", "password": "x"}
            )
            assert bad.status_code == 401
        throttled = await client.post(
            "/api/v1/auth/token", json={"username": "zg_buyer", "password": "emall-demo-2020"}
        )
        assert throttled.status_code == 429
        assert int(throttled.headers["retry-after"]) > 0
        assert throttled.headers["content-type"].startswith("application/problem+json")
        # another username is not affected
        await login(client, "nj_buyer")


async def test_success_resets_the_failure_count(
    database_url: str, meili: tuple[str, str], tmp_path: Path
) -> None:
    settings = make_settings(
        database_url, meili[0], meili[1], tmp_path, EMALL_LOGIN_MAX_FAILURES="2"
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        for _ in range(3):
            bad = await client.post(
                "/api/v1/auth/token", json={"username": "zg_buyer", "password": "x"}
            )
            assert bad.status_code == 401
            await login(client, "zg_buyer")


async def test_expired_token_is_refused(
    database_url: str, meili: tuple[str, str], tmp_path: Path
) -> None:
    import jwt

    from tests.helpers import JWT_SECRET

    settings = make_settings(database_url, meili[0], meili[1], tmp_path)
    async with AsyncTestClient(app=create_app(settings)) as client:
        token = jwt.encode(
            {"sub": "1", "iss": "emall", "iat": 1, "exp": 2}, JWT_SECRET, algorithm="HS256"
        )
        response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert "expired" in response.json()["detail"]


async def test_token_signed_with_another_secret_is_refused(
    client: AsyncTestClient[Litestar],
) -> None:
    import jwt

    token = jwt.encode(
        {"sub": "1", "iss": "emall", "iat": 1, "exp": 4_000_000_000}, "y" * 40, algorithm="HS256"
    )
    response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


async def test_deactivated_user_token_stops_working_at_once(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    """Through the API: the very next request is refused, the cached principal included.
    (A change made outside this process arrives by NOTIFY: tests/test_principal_cache.py.)"""
    headers = await login(client, "nj_buyer")
    admin = await login(client, "nj_agency_admin")
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
    user_id = await pool.fetchval("select id from users where username = 'nj_buyer'")
    deactivated = await client.post(f"/api/v1/users/{user_id}/deactivate", headers=admin)
    assert deactivated.status_code == 200, deactivated.text
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 401


async def test_api_key_lifecycle(client: AsyncTestClient[Litestar], pool: Pool) -> None:
    admin = await login(client, "nj_agency_admin")
    created = await client.post(
        "/api/v1/api-keys", json={"name": "内江市财政一体化系统"}, headers=admin
    )
    assert created.status_code == 201, created.text
    body = created.json()
    key = body["key"]
    assert key.startswith(f"emk_{body['api_key']['prefix']}_")
    assert body["api_key"]["roles"] == ["agency_admin"]

    # the key works in X-API-Key and as a bearer credential, and is marked as a key
    for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"}):
        me = await client.get("/api/v1/me", headers=headers)
        assert me.status_code == 200, me.text
        assert me.json()["auth_method"] == "api_key"
        assert me.json()["organisation_name"] == "内江市教育局"

    # listing never shows the secret again; only a hash is stored
    listed = await client.get("/api/v1/api-keys", headers=admin)
    assert key not in listed.text
    assert [k["id"] for k in listed.json()] == [body["api_key"]["id"]]
    stored = await pool.fetchval(
        "select secret_sha256 from api_keys where id = $1", body["api_key"]["id"]
    )
    assert key.split("_", 2)[2].encode() not in stored

    # a forged secret with the right prefix is refused
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    assert (await client.get("/api/v1/me", headers={"X-API-Key": forged})).status_code == 401

    revoked = await client.delete(f"/api/v1/api-keys/{body['api_key']['id']}", headers=admin)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert (await client.get("/api/v1/me", headers={"X-API-Key": key})).status_code == 401

    actions = await pool.fetch(
        "select action, actor_user_id from audit_events where entity_type = 'api_key' order by id"
    )
    assert [a["action"] for a in actions] == ["api_key.created", "api_key.revoked"]


async def test_only_admins_create_keys_and_keys_hold_no_extra_roles(
    client: AsyncTestClient[Litestar],
) -> None:
    buyer = await login(client, "nj_buyer")
    refused = await client.post("/api/v1/api-keys", json={"name": "x"}, headers=buyer)
    assert refused.status_code == 403
    admin = await login(client, "nj_agency_admin")
    too_much = await client.post(
        "/api/v1/api-keys", json={"name": "x", "roles": ["platform_admin"]}, headers=admin
    )
    assert too_much.status_code == 422
    assert too_much.json()["errors"][0]["field"] == "roles"


async def test_another_organisations_key_is_not_found(client: AsyncTestClient[Litestar]) -> None:
    nj_admin = await login(client, "nj_agency_admin")
    created = await client.post("/api/v1/api-keys", json={"name": "nj"}, headers=nj_admin)
    key_id = created.json()["api_key"]["id"]
    zg_admin = await login(client, "zg_agency_admin")
    response = await client.delete(f"/api/v1/api-keys/{key_id}", headers=zg_admin)
    assert response.status_code == 404
    listed = await client.get("/api/v1/api-keys", headers=zg_admin)
    assert listed.json() == []


async def test_deactivated_user_api_key_stops_working(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    admin = await login(client, "zg_agency_admin")
    key = (await client.post("/api/v1/api-keys", json={"name": "k"}, headers=admin)).json()["key"]
    assert (await client.get("/api/v1/me", headers={"X-API-Key": key})).status_code == 200
    # Deactivated outside the API (psql, another process): the NOTIFY reaches the cache.
    await pool.execute(
        "update users set is_active = false, deactivated_at = now() where username = 'zg_agency_admin'"
    )
    deadline = time.monotonic() + 10
    while (await client.get("/api/v1/me", headers={"X-API-Key": key})).status_code != 401:
        assert time.monotonic() < deadline, "the deactivated user's key still works"
        await asyncio.sleep(0.01)
