"""Budget lines (预算指标): the agency admin's lines, oversight, and the movements orders use."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from emall.budgets.movements import Kind, movement_ctes
from emall.budgets.service import ledger_balances, release, reserve, spend
from emall.db.pool import Pool, create_pool
from emall.errors import Conflict, NotFound, ValidationFailed
from tests.helpers import org_id, token_for

URL = "/api/v1/budget-lines"
NJ_AGENCY = "内江市教育局"
ZG_AGENCY = "自贡市卫生健康委员会"


@pytest.fixture(autouse=True)
async def no_demo_budgets(pool: Pool) -> None:
    """These tests count lines from nothing: the demo's budget lines are removed first."""
    await pool.execute("delete from budget_ledger")
    await pool.execute("delete from budget_lines")
    await pool.execute("delete from audit_events where entity_type = 'budget_line'")


def _body(name: str = "办公设备购置", amount_fen: int = 1_000_000, **extra: Any) -> dict[str, Any]:
    return {
        "fiscal_year": 2026,
        "funding_source": "general_public_budget",
        "name": name,
        "amount_fen": amount_fen,
        **extra,
    }


async def _create(
    client: AsyncTestClient[Litestar],
    pool: Pool,
    amount_fen: int = 1_000_000,
    name: str = "办公设备购置",
) -> dict[str, Any]:
    headers = await token_for(pool, "nj_agency_admin")
    response = await client.post(URL, json=_body(name, amount_fen), headers=headers)
    assert response.status_code == 201, response.text
    line: dict[str, Any] = response.json()
    return line


async def _user(pool: Pool, username: str) -> int:
    return int(await pool.fetchval("select id from users where username = $1", username))


async def _line(pool: Pool, line_id: int) -> asyncpg.Record:
    row = await pool.fetchrow(
        "select amount_fen, reserved_fen, spent_fen, version from budget_lines where id = $1",
        line_id,
    )
    assert row is not None
    return row


async def _audit_actions(pool: Pool, line_id: int) -> list[str]:
    rows = await pool.fetch(
        "select action from audit_events where entity_type = 'budget_line' and entity_id = $1 "
        "order by id",
        str(line_id),
    )
    return [r["action"] for r in rows]


async def _move(pool: Pool, op: Any, line_id: int, amount: int, order_id: int = 1) -> Any:
    """One movement in its own transaction, as the ordering service will call it."""
    actor = await _user(pool, "nj_buyer")
    async with pool.acquire() as conn, conn.transaction():
        return await op(conn, line_id, amount, order_id=order_id, actor_user_id=actor)


# -- the agency admin's lines -------------------------------------------------------------------


async def test_create_get_and_list(client: AsyncTestClient[Litestar], pool: Pool) -> None:
    line = await _create(client, pool)
    assert line["agency_id"] == await org_id(pool, NJ_AGENCY)
    assert (line["amount_fen"], line["reserved_fen"], line["spent_fen"]) == (1_000_000, 0, 0)
    assert line["available_fen"] == 1_000_000 and line["version"] == 1
    buyer = await token_for(pool, "nj_buyer")
    got = await client.get(f"{URL}/{line['id']}", headers=buyer)
    assert got.status_code == 200 and got.json() == line

    ledger = (await client.get(f"{URL}/{line['id']}/ledger", headers=buyer)).json()
    assert [(e["kind"], e["amount_fen"]) for e in ledger["items"]] == [("allocate", 1_000_000)]
    assert ledger["items"][0]["created_by"] == await _user(pool, "nj_agency_admin")
    assert await _audit_actions(pool, line["id"]) == ["budget_line.created"]

    admin = await token_for(pool, "nj_agency_admin")
    other = await client.post(
        URL, json=_body("专项经费", 0, fiscal_year=2025, funding_source="own_funds"), headers=admin
    )
    assert other.status_code == 201, other.text
    assert other.json()["amount_fen"] == 0  # no allocate row for nothing
    assert (await client.get(f"{URL}/{other.json()['id']}/ledger", headers=buyer)).json()[
        "items"
    ] == []

    listed = (await client.get(URL, headers=buyer)).json()
    assert [i["id"] for i in listed["items"]] == [line["id"], other.json()["id"]]
    by_year = (await client.get(URL, params={"fiscal_year": 2025}, headers=buyer)).json()
    assert [i["id"] for i in by_year["items"]] == [other.json()["id"]]
    bad_year = await client.get(URL, params={"fiscal_year": 99_999_999_999}, headers=buyer)
    assert bad_year.status_code == 400
    assert [e["field"] for e in bad_year.json()["errors"]] == ["query.fiscal_year"]
    first = (await client.get(URL, params={"limit": 1}, headers=buyer)).json()
    assert len(first["items"]) == 1 and first["next_cursor"]
    second = (
        await client.get(URL, params={"limit": 1, "cursor": first["next_cursor"]}, headers=buyer)
    ).json()
    assert [i["id"] for i in second["items"]] == [other.json()["id"]]
    assert second["next_cursor"] is None


async def test_duplicate_line_is_a_conflict(client: AsyncTestClient[Litestar], pool: Pool) -> None:
    line = await _create(client, pool)
    admin = await token_for(pool, "nj_agency_admin")
    again = await client.post(URL, json=_body("  办公设备购置 "), headers=admin)
    assert again.status_code == 409
    assert again.json()["existing_id"] == line["id"]
    # another source or year is another line
    other = await client.post(URL, json=_body(funding_source="government_fund"), headers=admin)
    assert other.status_code == 201


async def test_adjust_up_and_down(client: AsyncTestClient[Litestar], pool: Pool) -> None:
    line = await _create(client, pool)
    admin = await token_for(pool, "nj_agency_admin")
    up = await client.post(
        f"{URL}/{line['id']}/adjust", json={"delta_fen": 250_000, "note": "追加预算"}, headers=admin
    )
    assert up.status_code == 200, up.text
    assert up.json()["amount_fen"] == 1_250_000 and up.json()["version"] == 2
    down = await client.post(
        f"{URL}/{line['id']}/adjust",
        json={"delta_fen": -1_250_000, "note": "全额调减"},
        headers=admin,
    )
    assert down.status_code == 200, down.text
    assert down.json()["amount_fen"] == 0 and down.json()["available_fen"] == 0
    ledger = (await client.get(f"{URL}/{line['id']}/ledger", headers=admin)).json()["items"]
    assert [(e["kind"], e["amount_fen"], e["note"]) for e in ledger[1:]] == [
        ("adjust", 250_000, "追加预算"),
        ("adjust", -1_250_000, "全额调减"),
    ]
    assert await _audit_actions(pool, line["id"]) == [
        "budget_line.created",
        "budget_line.adjusted",
        "budget_line.adjusted",
    ]
    event = await pool.fetchrow(
        "select actor_user_id, before, after from audit_events where entity_type = 'budget_line' "
        "and entity_id = $1 order by id desc limit 1",
        str(line["id"]),
    )
    assert event is not None
    assert event["actor_user_id"] == await _user(pool, "nj_agency_admin")
    assert (event["before"]["amount_fen"], event["after"]["amount_fen"]) == (1_250_000, 0)
    assert await ledger_balances(pool, line["id"]) == (0, 0, 0)


async def test_cut_below_reserved_and_spent_is_refused(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    line = await _create(client, pool, 100_000)
    await _move(pool, reserve, line["id"], 60_000)
    await _move(pool, spend, line["id"], 20_000)  # reserved 40,000, spent 20,000
    before = await _line(pool, line["id"])
    events = await _audit_actions(pool, line["id"])
    admin = await token_for(pool, "nj_agency_admin")
    refused = await client.post(
        f"{URL}/{line['id']}/adjust", json={"delta_fen": -40_001, "note": "调减"}, headers=admin
    )
    assert refused.status_code == 409, refused.text
    assert "available 40000 fen" in refused.json()["detail"]
    assert await _line(pool, line["id"]) == before  # nothing changed, not even the version
    assert await _audit_actions(pool, line["id"]) == events
    kinds = await pool.fetch(
        "select kind from budget_ledger where budget_line_id = $1 order by id", line["id"]
    )
    assert [k["kind"] for k in kinds] == ["allocate", "reserve", "spend"]
    exact = await client.post(
        f"{URL}/{line['id']}/adjust", json={"delta_fen": -40_000, "note": "调减"}, headers=admin
    )
    assert exact.status_code == 200, exact.text
    assert exact.json()["available_fen"] == 0


async def test_invalid_input_names_the_field(client: AsyncTestClient[Litestar], pool: Pool) -> None:
    admin = await token_for(pool, "nj_agency_admin")
    negative = await client.post(URL, json=_body(amount_fen=-1), headers=admin)
    assert negative.status_code == 400
    assert [e["field"] for e in negative.json()["errors"]] == ["amount_fen"]
    source = await client.post(URL, json=_body(funding_source="bank_loan"), headers=admin)
    assert source.status_code == 400
    assert [e["field"] for e in source.json()["errors"]] == ["funding_source"]
    blank = await client.post(URL, json=_body(name="   "), headers=admin)
    assert blank.status_code == 422  # well-formed, but only blanks: a rule refuses it
    assert [e["field"] for e in blank.json()["errors"]] == ["name"]
    line = await _create(client, pool)
    zero = await client.post(
        f"{URL}/{line['id']}/adjust", json={"delta_fen": 0, "note": "无"}, headers=admin
    )
    assert zero.status_code == 422
    assert [e["field"] for e in zero.json()["errors"]] == ["delta_fen"]
    assert (await _line(pool, line["id"]))["version"] == 1


async def test_only_the_agency_admin_manages(client: AsyncTestClient[Litestar], pool: Pool) -> None:
    for username in ("nj_buyer", "nj_approver", "nj_operator", "admin"):
        response = await client.post(URL, json=_body(), headers=await token_for(pool, username))
        assert response.status_code == 403, (username, response.text)
    line = await _create(client, pool)
    buyer_adjust = await client.post(
        f"{URL}/{line['id']}/adjust",
        json={"delta_fen": 1, "note": "x"},
        headers=await token_for(pool, "nj_buyer"),
    )
    assert buyer_adjust.status_code == 403
    zg_admin = await token_for(pool, "zg_agency_admin")
    assert (await client.get(f"{URL}/{line['id']}", headers=zg_admin)).status_code == 404
    adjust = await client.post(
        f"{URL}/{line['id']}/adjust", json={"delta_fen": 1, "note": "x"}, headers=zg_admin
    )
    assert adjust.status_code == 404
    assert (await client.get(f"{URL}/{line['id']}/ledger", headers=zg_admin)).status_code == 404
    assert (await client.get(URL, headers=zg_admin)).json()["items"] == []
    assert (await client.get(f"{URL}/999999", headers=zg_admin)).status_code == 404


async def test_oversight_reads_lines_in_its_region(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    line = await _create(client, pool)
    for username in ("nj_operator", "nj_auditor", "nz_auditor"):
        headers = await token_for(pool, username)
        assert (await client.get(f"{URL}/{line['id']}", headers=headers)).status_code == 200
        listed = (await client.get(URL, headers=headers)).json()["items"]
        assert line["id"] in [i["id"] for i in listed], username
    zg_operator = await token_for(pool, "zg_operator")
    assert (await client.get(f"{URL}/{line['id']}", headers=zg_operator)).status_code == 404
    listed = (await client.get(URL, headers=zg_operator)).json()["items"]
    assert line["id"] not in [i["id"] for i in listed]


# -- movements for orders -----------------------------------------------------------------------


async def test_concurrent_reservations_never_overspend(
    client: AsyncTestClient[Litestar], pool: Pool, database_url: str
) -> None:
    line = await _create(client, pool, 1_000_000)
    actor = await _user(pool, "nj_buyer")
    wide = await create_pool(database_url, min_size=1, max_size=25)

    async def attempt(order_id: int) -> str:
        async with wide.acquire() as conn, conn.transaction():
            try:
                await reserve(conn, line["id"], 30_000, order_id=order_id, actor_user_id=actor)
            except Conflict as exc:
                return "refused" if exc.message.startswith("预算不足") else exc.message
            await asyncio.sleep(0.01)  # hold the row lock: the others must wait and re-check
            return "reserved"

    try:
        outcomes = await asyncio.gather(*(attempt(n) for n in range(1, 51)))
    finally:
        await wide.close()
    # anything other than Conflict (a CheckViolationError above all) would have propagated
    assert outcomes.count("reserved") == 33 and outcomes.count("refused") == 17
    row = await _line(pool, line["id"])
    assert (row["amount_fen"], row["reserved_fen"], row["spent_fen"]) == (1_000_000, 990_000, 0)
    assert row["version"] == 1 + 33
    reserves = await pool.fetch(
        "select order_id from budget_ledger where budget_line_id = $1 and kind = 'reserve'",
        line["id"],
    )
    assert len(reserves) == 33 and len({r["order_id"] for r in reserves}) == 33
    assert await ledger_balances(pool, line["id"]) == (1_000_000, 990_000, 0)
    with pytest.raises(Conflict, match="available 10000 fen"):
        await _move(pool, reserve, line["id"], 30_000)


async def test_ledger_always_balances(client: AsyncTestClient[Litestar], pool: Pool) -> None:
    line = await _create(client, pool, 500_000)
    line_id = line["id"]
    admin = await token_for(pool, "nj_agency_admin")
    await _move(pool, reserve, line_id, 200_000, order_id=1)
    await _move(pool, reserve, line_id, 150_000, order_id=2)
    await _move(pool, release, line_id, 50_000, order_id=2)
    await _move(pool, spend, line_id, 180_000, order_id=1)
    adjust = await client.post(
        f"{URL}/{line_id}/adjust", json={"delta_fen": -100_000, "note": "年中调减"}, headers=admin
    )
    assert adjust.status_code == 200, adjust.text
    # refused movements change nothing and write nothing
    with pytest.raises(Conflict, match="insufficient budget"):
        await _move(pool, reserve, line_id, 100_001, order_id=3)
    with pytest.raises(Conflict, match="reserved 120000 fen"):
        await _move(pool, release, line_id, 120_001, order_id=2)
    with pytest.raises(Conflict):
        await _move(pool, spend, line_id, 120_001, order_id=2)
    await _move(pool, spend, line_id, 120_000, order_id=2)

    row = await _line(pool, line_id)
    assert (row["amount_fen"], row["reserved_fen"], row["spent_fen"]) == (400_000, 0, 300_000)
    assert await ledger_balances(pool, line_id) == (400_000, 0, 300_000)
    buyer = await token_for(pool, "nj_buyer")
    got = (await client.get(f"{URL}/{line_id}", headers=buyer)).json()
    assert got["available_fen"] == 100_000 and got["version"] == 1 + 6
    entries = (await client.get(f"{URL}/{line_id}/ledger", headers=buyer)).json()["items"]
    assert [(e["kind"], e["amount_fen"], e["order_id"]) for e in entries] == [
        ("allocate", 500_000, None),
        ("reserve", 200_000, 1),
        ("reserve", 150_000, 2),
        ("release", 50_000, 2),
        ("spend", 180_000, 1),
        ("adjust", -100_000, None),
        ("spend", 120_000, 2),
    ]
    # every change wrote exactly one audit event, with the acting user
    assert await _audit_actions(pool, line_id) == [
        "budget_line.created",
        "budget_line.reserved",
        "budget_line.reserved",
        "budget_line.released",
        "budget_line.spent",
        "budget_line.adjusted",
        "budget_line.spent",
    ]
    spent = await pool.fetchrow(
        "select actor_user_id, actor_organisation_id, region_code, after from audit_events "
        "where entity_type = 'budget_line' and entity_id = $1 order by id desc limit 1",
        str(line_id),
    )
    assert spent is not None
    assert spent["actor_user_id"] == await _user(pool, "nj_buyer")
    assert spent["actor_organisation_id"] == await org_id(pool, NJ_AGENCY)
    assert spent["region_code"] == "511000"
    assert spent["after"]["order_id"] == 2 and spent["after"]["spent_fen_after"] == 300_000
    page = (await client.get(f"{URL}/{line_id}/ledger", params={"limit": 4}, headers=buyer)).json()
    rest = (
        await client.get(
            f"{URL}/{line_id}/ledger", params={"cursor": page["next_cursor"]}, headers=buyer
        )
    ).json()
    assert [e["id"] for e in page["items"] + rest["items"]] == [e["id"] for e in entries]


async def test_movement_rolls_back_with_the_callers_transaction(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    line = await _create(client, pool, 100_000)
    actor = await _user(pool, "nj_buyer")

    class OrderFailed(Exception):
        pass

    async def place_order() -> None:
        async with pool.acquire() as conn, conn.transaction():
            await reserve(conn, line["id"], 70_000, order_id=9, actor_user_id=actor)
            raise OrderFailed

    with pytest.raises(OrderFailed):
        await place_order()
    assert (await _line(pool, line["id"]))["reserved_fen"] == 0
    assert await ledger_balances(pool, line["id"]) == (100_000, 0, 0)
    assert await _audit_actions(pool, line["id"]) == ["budget_line.created"]


async def test_movement_input_is_checked(client: AsyncTestClient[Litestar], pool: Pool) -> None:
    line = await _create(client, pool, 100_000)
    for op in (reserve, release, spend):
        with pytest.raises(ValidationFailed):
            await _move(pool, op, line["id"], 0)
        with pytest.raises(ValidationFailed):
            await _move(pool, op, line["id"], -5)
        with pytest.raises(NotFound):
            await _move(pool, op, 999_999, 10)
    assert await ledger_balances(pool, line["id"]) == (100_000, 0, 0)


async def test_one_statement_moves_money_for_many_orders(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    """``movement_ctes`` in a caller's own statement (as checkout, awards and agreements use it):
    one conditional update for every entry, a ledger row each, each entry with the line's
    figures after it; refused as a whole when the line's condition does not hold."""
    line = await _create(client, pool, 1_000)
    await _move(pool, reserve, line["id"], 500, order_id=1)
    actor = await _user(pool, "nj_buyer")

    def statement(kind: Kind) -> str:
        ctes = movement_ctes(
            kind, line="$1", entries="entries", amount="$2", count="$3", actor="$4"
        )
        return f"""
        with entries as (
            select * from unnest($5::bigint[], $6::bigint[]) with ordinality as e(order_id, amount_fen, n)
        ), {ctes}
        select order_id, reserved_fen_after, spent_fen_after, version_after
        from movements order by version_after
        """

    async def move(kind: Kind, orders: list[int], amounts: list[int]) -> list[tuple[int, ...]]:
        rows = await pool.fetch(
            statement(kind), line["id"], sum(amounts), len(amounts), actor, orders, amounts
        )
        return [tuple(r) for r in rows]

    # line: 1,000; reserved 500 (version 2). Spend 100 for order 7, then 150 for order 8:
    assert await move("spend", [7, 8], [100, 150]) == [(7, 400, 100, 3), (8, 250, 250, 4)]
    assert await move("release", [9, 10], [50, 200]) == [(9, 200, 250, 5), (10, 0, 250, 6)]
    assert await move("reserve", [11, 12], [500, 250]) == [(11, 500, 250, 7), (12, 750, 250, 8)]
    assert await move("reserve", [13, 14], [1, 0]) == []  # 750 + 250 + 1 > 1,000: neither moves
    assert await ledger_balances(pool, line["id"]) == (1_000, 750, 250)
    kinds = await pool.fetch(
        "select kind, amount_fen, order_id from budget_ledger where budget_line_id = $1 "
        "and order_id >= 7 order by id",
        line["id"],
    )
    assert [tuple(k) for k in kinds] == [
        ("spend", 100, 7),
        ("spend", 150, 8),
        ("release", 50, 9),
        ("release", 200, 10),
        ("reserve", 500, 11),
        ("reserve", 250, 12),
    ]
