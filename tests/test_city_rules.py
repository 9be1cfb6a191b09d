"""City rules over HTTP: versions, the version in force, inheritance, refusals, concurrency."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from emall.clock import today
from emall.db.pool import Pool, init_connection
from emall.rules import service
from emall.rules.models import CityRuleCreate
from tests.helpers import principal_of, token_for

NJ, NJ_COUNTY, ZG, KUNMING = "511000", "511002", "510300", "530100"


@pytest.fixture(autouse=True)
async def no_demo_rules(pool: Pool) -> None:
    """These tests version rules from nothing: the demo's rules are removed first."""
    await pool.execute("delete from city_rules")
    await pool.execute("delete from audit_events where entity_type = 'city_rule'")


def body(day: date, **extra: Any) -> dict[str, Any]:
    return {
        "effective_from": day.isoformat(),
        "ceiling_fen": 200_000_000,
        "approval_threshold_fen": 5_000_000,
        **extra,
    }


async def add(
    client: AsyncTestClient[Litestar],
    headers: dict[str, str],
    day: date,
    region: str = NJ,
    **extra: Any,
) -> Any:
    return await client.post(
        f"/api/v1/city-rules/{region}/versions", json=body(day, **extra), headers=headers
    )


async def test_versions_in_force_by_date_and_inherited_by_counties(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    operator = await token_for(pool, "nj_operator")
    buyer = await token_for(pool, "nj_buyer")
    start = today()
    first = await add(client, operator, start, note="首版")
    assert first.status_code == 201, first.text
    v1 = first.json()
    assert (v1["version"], v1["region_code"], v1["effective_until"]) == (1, NJ, None)
    assert v1["splitting_window_days"] == 30 and v1["payment_term_days"] == 30
    second = await add(
        client,
        operator,
        start + timedelta(days=10),
        ceiling_fen=100_000_000,
        splitting_window_days=90,
        payment_term_days=15,
    )
    assert second.status_code == 201, second.text
    v2 = second.json()
    assert v2["version"] == 2

    async def in_force(region: str, on: date | None = None) -> Any:
        params = {"on": on.isoformat()} if on else None
        response = await client.get(f"/api/v1/city-rules/{region}", params=params, headers=buyer)
        assert response.status_code == 200, response.text
        return response.json()

    now = await in_force(NJ)
    assert now["id"] == v1["id"]
    assert now["effective_until"] == (start + timedelta(days=9)).isoformat()
    assert (await in_force(NJ, start + timedelta(days=9)))["version"] == 1
    later = await in_force(NJ, start + timedelta(days=10))
    assert (later["version"], later["ceiling_fen"], later["effective_until"]) == (
        2,
        100_000_000,
        None,
    )
    assert (await in_force(NJ, start + timedelta(days=400)))["version"] == 2
    county = await in_force(NJ_COUNTY)  # 市中区 uses 内江市's rules
    assert (county["id"], county["region_code"]) == (v1["id"], NJ)
    assert (await in_force(NJ_COUNTY, start + timedelta(days=10)))["id"] == v2["id"]
    # before the first version there is none in force
    early = await client.get(
        f"/api/v1/city-rules/{NJ}",
        params={"on": (start - timedelta(days=1)).isoformat()},
        headers=buyer,
    )
    assert early.status_code == 404

    listed = await client.get(f"/api/v1/city-rules/{NJ}/versions", headers=buyer)
    assert listed.status_code == 200
    versions = listed.json()
    assert [v["version"] for v in versions] == [1, 2]
    assert (
        versions[0]["effective_until"]
        == (date.fromisoformat(v2["effective_from"]) - timedelta(days=1)).isoformat()
    )
    assert versions[1]["effective_until"] is None
    assert versions[0]["note"] == "首版"
    # the county defines no versions of its own
    assert (
        await client.get(f"/api/v1/city-rules/{NJ_COUNTY}/versions", headers=buyer)
    ).json() == []

    # the old version stays readable by id once a newer one exists
    old = await client.get(f"/api/v1/city-rule-versions/{v1['id']}", headers=buyer)
    assert old.status_code == 200
    assert old.json() == versions[0]
    missing = await client.get("/api/v1/city-rule-versions/999999", headers=buyer)
    assert missing.status_code == 404

    events = await pool.fetch(
        "select action, entity_id, region_code, actor_user_id, after from audit_events "
        "where entity_type = 'city_rule' order by id"
    )
    assert [(e["action"], e["entity_id"], e["region_code"]) for e in events] == [
        ("city_rule.added", str(v1["id"]), NJ),
        ("city_rule.added", str(v2["id"]), NJ),
    ]
    nj_operator_id = await pool.fetchval("select id from users where username = 'nj_operator'")
    assert {e["actor_user_id"] for e in events} == {nj_operator_id}
    assert events[1]["after"]["ceiling_fen"] == 100_000_000
    assert v1["created_by"] == nj_operator_id


async def test_only_the_regions_operator_adds_versions(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    for username in ("zg_operator", "nj_buyer", "nj_auditor", "admin"):
        response = await add(client, await token_for(pool, username), today())
        assert response.status_code == 403, (username, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    own = await add(client, await token_for(pool, "zg_operator"), today(), region=ZG)
    assert own.status_code == 201, own.text
    assert await pool.fetchval("select count(*) from city_rules where region_code = $1", NJ) == 0
    assert (
        await pool.fetchval("select count(*) from audit_events where entity_type = 'city_rule'")
        == 1
    )


async def test_refused_versions(client: AsyncTestClient[Litestar], pool: Pool) -> None:
    operator = await token_for(pool, "nj_operator")
    retroactive = await add(client, operator, today() - timedelta(days=1))
    assert retroactive.status_code == 422
    assert [e["field"] for e in retroactive.json()["errors"]] == ["effective_from"]

    above = await add(
        client, operator, today(), ceiling_fen=1_000_000, approval_threshold_fen=1_000_001
    )
    assert above.status_code == 422
    assert [e["field"] for e in above.json()["errors"]] == ["approval_threshold_fen"]
    equal = await add(
        client, operator, today(), ceiling_fen=1_000_000, approval_threshold_fen=1_000_000
    )
    assert equal.status_code == 201, equal.text

    duplicate = await add(client, operator, today())
    assert duplicate.status_code == 409
    assert duplicate.headers["content-type"].startswith("application/problem+json")

    for bad in (
        {"ceiling_fen": 0},
        {"approval_threshold_fen": -1},
        {"splitting_window_days": 0},
        {"splitting_window_days": 367},
        {"payment_term_days": 366},
        {"unknown": 1},
    ):
        response = await add(client, operator, today() + timedelta(days=5), **bad)
        assert response.status_code == 400, (bad, response.text)
    unknown_region = await add(client, operator, today(), region="519999")
    assert unknown_region.status_code == 422
    assert [e["field"] for e in unknown_region.json()["errors"]] == ["region_code"]
    bad_path = await client.get("/api/v1/city-rules/51100", headers=operator)
    assert bad_path.status_code == 400
    bad_date = await client.get(f"/api/v1/city-rules/{NJ}", params={"on": "x"}, headers=operator)
    assert bad_date.status_code == 400
    # nothing refused left a version or an event behind
    assert await pool.fetchval("select count(*) from city_rules") == 1
    assert (
        await pool.fetchval("select count(*) from audit_events where entity_type = 'city_rule'")
        == 1
    )


async def test_no_rule_anywhere_is_404(client: AsyncTestClient[Litestar], pool: Pool) -> None:
    await add(client, await token_for(pool, "nj_operator"), today())  # Neijiang's does not leak
    headers = await token_for(pool, "nj_buyer")
    for region in (KUNMING, "530102"):
        response = await client.get(f"/api/v1/city-rules/{region}", headers=headers)
        assert response.status_code == 404, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    anonymous = await client.get(f"/api/v1/city-rules/{NJ}")
    assert anonymous.status_code == 401


async def test_concurrent_adds_get_distinct_gapless_versions(pool: Pool, database_url: str) -> None:
    principal = await principal_of(pool, "nj_operator")
    start = today()

    async def add_one(n: int) -> int:
        conn = await asyncpg.connect(database_url)  # its own connection and transaction
        try:
            await init_connection(conn)
            async with conn.transaction():
                data = CityRuleCreate(
                    effective_from=start + timedelta(days=n),
                    ceiling_fen=1_000_000 + n,
                    approval_threshold_fen=0,
                )
                added = await service.add_version(conn, principal, NJ, data, request_id=f"c{n}")
                await asyncio.sleep(0.01)  # hold the lock a little: the others must wait
                return added.version
        finally:
            await conn.close()

    versions = await asyncio.gather(*(add_one(n) for n in range(20)))
    assert sorted(versions) == list(range(1, 21))
    rows = await pool.fetch(
        "select version, effective_from from city_rules where region_code = $1 order by version",
        NJ,
    )
    assert [r["version"] for r in rows] == list(range(1, 21))
    assert sorted(r["effective_from"] for r in rows) == [
        start + timedelta(days=n) for n in range(20)
    ]
    assert (
        await pool.fetchval("select count(*) from audit_events where action = 'city_rule.added'")
        == 20
    )
    # whichever order they were added in, the dates decide: day n is in force on day n
    for n in (0, 7, 19):
        rule = await service.rule_in_force(pool, NJ_COUNTY, start + timedelta(days=n))
        assert rule is not None
        assert rule.ceiling_fen == 1_000_000 + n
        assert rule.effective_until == (None if n == 19 else start + timedelta(days=n))
