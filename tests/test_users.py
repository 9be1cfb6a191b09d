"""User management by an organisation's admin: create, change, deactivate, reactivate."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from emall.db.pool import Pool
from emall.errors import Conflict
from emall.identity import users
from emall.identity.service import resolve_principal
from tests.helpers import JWT_SECRET, login

Client = AsyncTestClient[Litestar]
PASSWORD = "correct-horse-battery"


async def _org_of(client: Client, headers: dict[str, str]) -> int:
    me = await client.get("/api/v1/me", headers=headers)
    assert me.status_code == 200, me.text
    org_id: int = me.json()["organisation_id"]
    return org_id


async def _user_id(pool: Pool, username: str) -> int:
    user_id: int = await pool.fetchval("select id from users where username = $1", username)
    return user_id


async def _create(
    client: Client,
    headers: dict[str, str],
    org_id: int,
    username: str,
    roles: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/organisations/{org_id}/users",
        json={
            "username": username,
            "display_name": "内江市教育局新采购员",
            "password": PASSWORD,
            "roles": roles or ["agency_buyer"],
            **extra,
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_admin_creates_a_user_who_can_then_log_in(client: Client) -> None:
    admin = await login(client, "nj_agency_admin")
    org_id = await _org_of(client, admin)
    created = await _create(
        client, admin, org_id, "NJ_New.Buyer", roles=["agency_buyer", "agency_approver"]
    )
    assert created["username"] == "nj_new.buyer"
    assert created["organisation_id"] == org_id
    assert created["roles"] == ["agency_approver", "agency_buyer"]
    assert created["is_active"] is True
    assert created["deactivated_at"] is None
    assert set(created) == {
        "id",
        "username",
        "display_name",
        "organisation_id",
        "roles",
        "is_active",
        "created_at",
        "updated_at",
        "deactivated_at",
        "scope_partnership_id",
    }

    headers = await login(client, "nj_new.buyer", PASSWORD)
    me = (await client.get("/api/v1/me", headers=headers)).json()
    assert me["user_id"] == created["id"]
    assert set(me["roles"]) == {"agency_buyer", "agency_approver"}

    fetched = await client.get(f"/api/v1/users/{created['id']}", headers=admin)
    assert fetched.status_code == 200
    assert fetched.json() == created
    # a user of the organisation may read its users too
    buyer = await login(client, "nj_buyer")
    assert (await client.get(f"/api/v1/users/{created['id']}", headers=buyer)).status_code == 200


async def test_roles_must_suit_the_organisation_kind(client: Client) -> None:
    admin = await login(client, "nj_agency_admin")
    org_id = await _org_of(client, admin)
    url = f"/api/v1/organisations/{org_id}/users"
    body = {"username": "nj_x", "display_name": "某人", "password": PASSWORD}
    for roles in (["supplier_admin"], ["platform_admin"], ["agency_buyer", "operator"], []):
        response = await client.post(url, json={**body, "roles": roles}, headers=admin)
        assert response.status_code == 422, (roles, response.text)
        assert [e["field"] for e in response.json()["errors"]] == ["roles"]
    user_id = await _user_id_via_list(client, admin, org_id, "nj_buyer")
    patched = await client.patch(
        f"/api/v1/users/{user_id}", json={"roles": ["supplier_staff"]}, headers=admin
    )
    assert patched.status_code == 422
    assert patched.json()["errors"][0]["field"] == "roles"


async def test_malformed_bodies_name_the_field(client: Client) -> None:
    admin = await login(client, "nj_agency_admin")
    org_id = await _org_of(client, admin)
    url = f"/api/v1/organisations/{org_id}/users"
    good = {"username": "nj_ok", "display_name": "某人", "password": PASSWORD, "roles": []}
    cases = {
        "password": {"password": "short"},
        "username": {"username": "张三"},
        "display_name": {"display_name": "   "},
    }
    for field, change in cases.items():
        response = await client.post(url, json={**good, **change}, headers=admin)
        assert response.status_code == 400, response.text
        assert field in {e["field"] for e in response.json()["errors"]}, response.text
    trailing_newline = await client.post(
        url, json={**good, "username": "abc\n", "roles": ["agency_buyer"]}, headers=admin
    )
    assert trailing_newline.status_code == 400
    unknown = await client.post(
        url, json={**good, "roles": ["agency_buyer"], "is_admin": True}, headers=admin
    )
    assert unknown.status_code == 400


async def test_duplicate_username_is_a_conflict(client: Client) -> None:
    admin = await login(client, "nj_agency_admin")
    org_id = await _org_of(client, admin)
    for username in ("nj_buyer", "NJ_BUYER", "zg_buyer"):
        response = await client.post(
            f"/api/v1/organisations/{org_id}/users",
            json={
                "username": username,
                "display_name": "重复",
                "password": PASSWORD,
                "roles": ["agency_buyer"],
            },
            headers=admin,
        )
        assert response.status_code == 409, response.text
        detail = response.json()["detail"]
        assert detail.startswith("用户名已被使用"), detail
        assert "username already taken" in detail


async def test_partial_update_changes_only_the_given_fields(client: Client) -> None:
    admin = await login(client, "nj_agency_admin")
    org_id = await _org_of(client, admin)
    created = await _create(client, admin, org_id, "nj_partial")
    url = f"/api/v1/users/{created['id']}"

    renamed = await client.patch(url, json={"display_name": "王小明"}, headers=admin)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["display_name"] == "王小明"
    assert renamed.json()["roles"] == ["agency_buyer"]
    assert datetime.fromisoformat(renamed.json()["updated_at"]) > datetime.fromisoformat(
        created["updated_at"]
    )

    reroled = await client.patch(url, json={"roles": ["agency_approver"]}, headers=admin)
    assert reroled.status_code == 200
    assert reroled.json()["display_name"] == "王小明"
    assert reroled.json()["roles"] == ["agency_approver"]

    unchanged = await client.patch(url, json={}, headers=admin)
    assert unchanged.status_code == 200
    assert unchanged.json() == reroled.json()

    null = await client.patch(url, json={"display_name": None}, headers=admin)
    assert null.status_code == 400


async def test_deactivation_stops_tokens_api_keys_and_login_at_once(
    client: Client, pool: Pool
) -> None:
    admin = await login(client, "nj_agency_admin")
    org_id = await _org_of(client, admin)
    created = await _create(client, admin, org_id, "nj_second_admin", roles=["agency_admin"])
    token = await login(client, "nj_second_admin", PASSWORD)
    key = (await client.post("/api/v1/api-keys", json={"name": "k"}, headers=token)).json()["key"]
    assert (await client.get("/api/v1/me", headers=token)).status_code == 200
    assert (await client.get("/api/v1/me", headers={"X-API-Key": key})).status_code == 200

    deactivated = await client.post(f"/api/v1/users/{created['id']}/deactivate", headers=admin)
    assert deactivated.status_code == 200, deactivated.text
    assert deactivated.json()["is_active"] is False
    assert deactivated.json()["deactivated_at"] is not None

    assert (await client.get("/api/v1/me", headers=token)).status_code == 401
    assert (await client.get("/api/v1/me", headers={"X-API-Key": key})).status_code == 401
    refused = await client.post(
        "/api/v1/auth/token", json={"username": "nj_second_admin", "password": PASSWORD}
    )
    assert refused.status_code == 401

    # repeating it changes nothing
    again = await client.post(f"/api/v1/users/{created['id']}/deactivate", headers=admin)
    assert again.status_code == 200
    assert again.json() == deactivated.json()

    reactivated = await client.post(f"/api/v1/users/{created['id']}/reactivate", headers=admin)
    assert reactivated.status_code == 200, reactivated.text
    assert reactivated.json()["is_active"] is True
    assert reactivated.json()["deactivated_at"] is None
    assert (await client.get("/api/v1/me", headers=token)).status_code == 200
    await login(client, "nj_second_admin", PASSWORD)
    events = await pool.fetchval(
        "select count(*) from audit_events where entity_type = 'user' and entity_id = $1",
        str(created["id"]),
    )
    assert events == 3  # created, deactivated, reactivated: the repeat wrote nothing


async def test_an_admin_cannot_deactivate_themselves(client: Client, pool: Pool) -> None:
    admin = await login(client, "nj_agency_admin")
    org_id = await _org_of(client, admin)
    await _create(client, admin, org_id, "nj_other_admin", roles=["agency_admin"])
    me = await _user_id(pool, "nj_agency_admin")
    response = await client.post(f"/api/v1/users/{me}/deactivate", headers=admin)
    assert response.status_code == 409
    assert "自己" in response.json()["detail"]
    assert (await client.get("/api/v1/me", headers=admin)).status_code == 200


async def test_the_last_active_admin_cannot_be_removed(client: Client, pool: Pool) -> None:
    platform = await login(client, "admin")
    nj_admin_id = await _user_id(pool, "nj_agency_admin")
    # deactivating the only agency admin (by the platform admin) is refused
    refused = await client.post(f"/api/v1/users/{nj_admin_id}/deactivate", headers=platform)
    assert refused.status_code == 409, refused.text
    assert "管理员" in refused.json()["detail"]
    # so is taking the admin role away from them, even by themselves
    admin = await login(client, "nj_agency_admin")
    demoted = await client.patch(
        f"/api/v1/users/{nj_admin_id}", json={"roles": ["agency_buyer"]}, headers=admin
    )
    assert demoted.status_code == 409
    # once a second admin exists, either change is allowed
    org_id = await _org_of(client, admin)
    second = await _create(client, admin, org_id, "nj_backup_admin", roles=["agency_admin"])
    allowed = await client.post(f"/api/v1/users/{nj_admin_id}/deactivate", headers=platform)
    assert allowed.status_code == 200, allowed.text
    # and now the second admin is the last one
    last = await client.patch(
        f"/api/v1/users/{second['id']}", json={"roles": ["agency_buyer"]}, headers=platform
    )
    assert last.status_code == 409
    # an inactive admin does not count: reactivation restores a second admin
    assert (
        await client.post(f"/api/v1/users/{nj_admin_id}/reactivate", headers=platform)
    ).status_code == 200
    ok = await client.patch(
        f"/api/v1/users/{second['id']}", json={"roles": ["agency_buyer"]}, headers=platform
    )
    assert ok.status_code == 200


async def test_non_admins_may_not_manage_users(client: Client, pool: Pool) -> None:
    buyer = await login(client, "nj_buyer")
    org_id = await _org_of(client, buyer)
    response = await client.post(
        f"/api/v1/organisations/{org_id}/users",
        json={
            "username": "nj_sneaky",
            "display_name": "某人",
            "password": PASSWORD,
            "roles": ["agency_admin"],
        },
        headers=buyer,
    )
    assert response.status_code == 403, response.text
    approver = await _user_id(pool, "nj_approver")
    for method, path, body in (
        ("PATCH", f"/api/v1/users/{approver}", {"display_name": "x"}),
        ("POST", f"/api/v1/users/{approver}/deactivate", None),
        ("POST", f"/api/v1/users/{approver}/reactivate", None),
    ):
        r = await client.request(method, path, json=body, headers=buyer)
        assert r.status_code == 403, (path, r.text)
    # reading is allowed within the organisation
    listed = await client.get(f"/api/v1/organisations/{org_id}/users", headers=buyer)
    assert listed.status_code == 200
    # and an auditor of an operator may not manage its users either
    auditor = await login(client, "nj_auditor")
    centre = await _org_of(client, auditor)
    r = await client.post(
        f"/api/v1/organisations/{centre}/users",
        json={"username": "nj_x", "display_name": "x", "password": PASSWORD, "roles": ["auditor"]},
        headers=auditor,
    )
    assert r.status_code == 403


async def test_another_organisation_sees_nothing(client: Client, pool: Pool) -> None:
    nj_admin = await login(client, "nj_agency_admin")
    nj_org = await _org_of(client, nj_admin)
    nj_buyer = await _user_id(pool, "nj_buyer")
    zg_admin = await login(client, "zg_agency_admin")
    missing_user = 9_999_999
    missing_org = 9_999_999

    pairs = [
        (
            ("GET", f"/api/v1/organisations/{nj_org}/users", None),
            ("GET", f"/api/v1/organisations/{missing_org}/users", None),
        ),
        (
            (
                "POST",
                f"/api/v1/organisations/{nj_org}/users",
                {"username": "zg_x", "display_name": "x", "password": PASSWORD, "roles": []},
            ),
            (
                "POST",
                f"/api/v1/organisations/{missing_org}/users",
                {"username": "zg_x", "display_name": "x", "password": PASSWORD, "roles": []},
            ),
        ),
        (
            ("GET", f"/api/v1/users/{nj_buyer}", None),
            ("GET", f"/api/v1/users/{missing_user}", None),
        ),
        (
            ("PATCH", f"/api/v1/users/{nj_buyer}", {"display_name": "x"}),
            ("PATCH", f"/api/v1/users/{missing_user}", {"display_name": "x"}),
        ),
        (
            ("POST", f"/api/v1/users/{nj_buyer}/deactivate", None),
            ("POST", f"/api/v1/users/{missing_user}/deactivate", None),
        ),
        (
            ("POST", f"/api/v1/users/{nj_buyer}/reactivate", None),
            ("POST", f"/api/v1/users/{missing_user}/reactivate", None),
        ),
    ]
    for existing, missing in pairs:
        seen = await client.request(existing[0], existing[1], json=existing[2], headers=zg_admin)
        unseen = await client.request(missing[0], missing[1], json=missing[2], headers=zg_admin)
        assert seen.status_code == unseen.status_code == 404, (existing, seen.text)
        # the same shape of answer: only the id in the message differs
        assert seen.json()["title"] == unseen.json()["title"]
        assert seen.json()["detail"].replace(str(nj_buyer), "N").replace(
            str(nj_org), "N"
        ) == unseen.json()["detail"].replace(str(missing_user), "N")
    assert await pool.fetchval("select is_active from users where id = $1", nj_buyer)


async def test_platform_admin_creates_users_in_any_organisation(client: Client, pool: Pool) -> None:
    platform = await login(client, "admin")
    supplier_org = await pool.fetchval(
        "select id from organisations where name = '内江川南数码科技有限公司'"
    )
    created = await client.post(
        f"/api/v1/organisations/{supplier_org}/users",
        json={
            "username": "nj_supplier_staff2",
            "display_name": "川南数码业务员二",
            "password": PASSWORD,
            "roles": ["supplier_staff"],
        },
        headers=platform,
    )
    assert created.status_code == 201, created.text
    assert created.json()["organisation_id"] == supplier_org
    # the supplier's own admin now sees and manages that user
    supplier_admin = await login(client, "nj_supplier_admin")
    listed = await client.get(f"/api/v1/organisations/{supplier_org}/users", headers=supplier_admin)
    assert "nj_supplier_staff2" in [u["username"] for u in listed.json()["items"]]
    # an unknown organisation is 404 even for the platform admin
    missing = await client.post(
        "/api/v1/organisations/9999999/users",
        json={"username": "ghost", "display_name": "x", "password": PASSWORD, "roles": ["auditor"]},
        headers=platform,
    )
    assert missing.status_code == 404


async def test_every_change_is_audited_without_the_password_hash(
    client: Client, pool: Pool
) -> None:
    admin = await login(client, "nj_agency_admin")
    org_id = await _org_of(client, admin)
    created = await _create(client, admin, org_id, "nj_audited")
    user_id = created["id"]
    await client.patch(f"/api/v1/users/{user_id}", json={"display_name": "李四"}, headers=admin)
    await client.post(f"/api/v1/users/{user_id}/deactivate", headers=admin)
    await client.post(f"/api/v1/users/{user_id}/reactivate", headers=admin)

    events = await pool.fetch(
        """
        select action, actor_user_id, before, after, region_code, request_id
        from audit_events where entity_type = 'user' and entity_id = $1 order by id
        """,
        str(user_id),
    )
    assert [e["action"] for e in events] == [
        "user.created",
        "user.updated",
        "user.deactivated",
        "user.reactivated",
    ]
    admin_id = await _user_id(pool, "nj_agency_admin")
    assert {e["actor_user_id"] for e in events} == {admin_id}
    assert all(e["request_id"] for e in events)
    assert all(e["region_code"] == "511000" for e in events)
    created_event, updated, deactivated, reactivated = events
    assert created_event["before"] is None
    assert created_event["after"]["username"] == "nj_audited"
    assert updated["before"]["display_name"] == "内江市教育局新采购员"
    assert updated["after"]["display_name"] == "李四"
    assert deactivated["before"]["is_active"] is True
    assert deactivated["after"]["is_active"] is False
    assert reactivated["before"]["is_active"] is False
    assert reactivated["after"]["is_active"] is True

    password_hash = await pool.fetchval("select password_hash from users where id = $1", user_id)
    assert password_hash.startswith("$argon2")
    for event in events:
        text = str(event["before"]) + str(event["after"])
        assert "password" not in text
        assert password_hash not in text
        assert PASSWORD not in text


async def test_pagination_walks_every_user_exactly_once(client: Client, pool: Pool) -> None:
    admin = await login(client, "nj_agency_admin")
    org_id = await _org_of(client, admin)
    for i in range(4):
        await _create(client, admin, org_id, f"nj_page_{i}")
    expected = [
        r["id"]
        for r in await pool.fetch(
            "select id from users where organisation_id = $1 order by id", org_id
        )
    ]
    assert len(expected) >= 7

    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor is not None:
            params["cursor"] = cursor
        response = await client.get(
            f"/api/v1/organisations/{org_id}/users", params=params, headers=admin
        )
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 2
        seen.extend(u["id"] for u in page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    assert pages == (len(expected) + 1) // 2


async def test_bad_cursor_and_limit_are_400(client: Client) -> None:
    admin = await login(client, "nj_agency_admin")
    org_id = await _org_of(client, admin)
    url = f"/api/v1/organisations/{org_id}/users"
    garbage = await client.get(url, params={"cursor": "not-a-cursor!"}, headers=admin)
    assert garbage.status_code == 400, garbage.text
    assert [e["field"] for e in garbage.json()["errors"]] == ["query.cursor"]
    for limit in (0, 201, "x"):
        response = await client.get(url, params={"limit": limit}, headers=admin)
        assert response.status_code == 400, (limit, response.text)
        assert "limit" in response.json()["errors"][0]["field"]


async def test_user_routes_need_credentials(client: Client) -> None:
    assert (await client.get("/api/v1/organisations/1/users")).status_code == 401
    assert (await client.get("/api/v1/users/1")).status_code == 401
    assert (await client.post("/api/v1/users/1/deactivate")).status_code == 401


async def _user_id_via_list(client: Client, headers: dict[str, str], org_id: int, name: str) -> int:
    listed = await client.get(f"/api/v1/organisations/{org_id}/users", headers=headers)
    assert listed.status_code == 200, listed.text
    user_id: int = next(u["id"] for u in listed.json()["items"] if u["username"] == name)
    return user_id


async def test_concurrent_deactivations_keep_one_admin(client: Client, pool: Pool) -> None:
    """Two admins deactivated at once in two transactions: the second waits, then is refused."""
    admin = await login(client, "nj_agency_admin")
    org_id = await _org_of(client, admin)
    second = await _create(client, admin, org_id, "nj_race_admin", roles=["agency_admin"])
    first = await _user_id(pool, "nj_agency_admin")
    token = (await login(client, "admin"))["Authorization"].removeprefix("Bearer ")
    platform = await resolve_principal(pool, token, JWT_SECRET)

    async with pool.acquire() as conn_a, pool.acquire() as conn_b:
        tx_a, tx_b = conn_a.transaction(), conn_b.transaction()
        await tx_a.start()
        await tx_b.start()
        await users.deactivate_user(conn_a, platform, first)
        racing = asyncio.create_task(users.deactivate_user(conn_b, platform, second["id"]))
        await asyncio.sleep(0.3)
        assert not racing.done()  # waits for the first transaction's lock
        await tx_a.commit()
        with pytest.raises(Conflict):
            await racing
        await tx_b.rollback()

    active_admins = await pool.fetchval(
        """
        select count(*) from users
        where organisation_id = $1 and is_active and 'agency_admin' = any(roles)
        """,
        org_id,
    )
    assert active_admins == 1
