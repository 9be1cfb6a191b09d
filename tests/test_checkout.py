"""Cart and checkout: one order per supplier, city rules, warnings, idempotency, and no overselling
or overdrawing under 200 concurrent checkouts (through the library and over HTTP)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.app import create_app
from emall.budgets.service import ledger_balances
from emall.clock import today
from emall.db.pool import Pool
from emall.errors import Conflict
from emall.ordering.checkout import checkout
from emall.ordering.errors import WarningsToAcknowledge
from emall.ordering.models import CheckoutRequest
from emall.settings import Settings
from tests.drills_support import served
from tests.helpers import org_id, principal_of, token_for
from tests.test_listings import listed_offer

NJ_AGENCY = "内江市教育局"


async def budget_line(pool: Pool, amount_fen: int, name: str = "测试预算") -> int:
    """A budget line as the budget service makes one: the line and its allocate ledger row."""
    line = await pool.fetchval(
        "insert into budget_lines (agency_id, fiscal_year, funding_source, name, amount_fen) "
        "values ($1, $2, 'general_public_budget', $3, $4) returning id",
        await org_id(pool, NJ_AGENCY),
        today().year,
        name,
        amount_fen,
    )
    await pool.execute(
        "insert into budget_ledger (budget_line_id, kind, amount_fen) values ($1, 'allocate', $2)",
        line,
        amount_fen,
    )
    return int(line)


async def put(
    client: AsyncTestClient[Litestar], headers: dict[str, str], offer_id: int, quantity: int
) -> Any:
    response = await client.put(
        "/api/v1/cart/items", json={"offer_id": offer_id, "quantity": quantity}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


async def other_supplier_offer(pool: Pool, exclude_supplier: int) -> dict[str, Any]:
    row = await pool.fetchrow(
        """
        select o.id, o.supplier_id, o.price_fen from offers o
        where o.status = 'listed' and o.supplier_id <> $1 and o.stock >= 5 and o.min_order_qty = 1
          and may_sell(o.supplier_id, '511000')
          and exists (select 1 from offer_delivery d where d.offer_id = o.id and d.region_code = '511000')
          and o.price_fen < 1000000
        order by o.id limit 1
        """,
        exclude_supplier,
    )
    assert row is not None
    return dict(row)


async def test_checkout_makes_one_order_per_supplier(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    mine = await listed_offer(client, pool, "结算型号A", price=200_000)
    other = await other_supplier_offer(pool, mine["supplier_id"])
    buyer = await token_for(pool, "nj_buyer")
    await put(client, buyer, mine["id"], 2)
    cart = await put(client, buyer, other["id"], 1)
    assert cart["total_fen"] == 2 * 200_000 + other["price_fen"]
    line = await budget_line(pool, 10_000_000)
    response = await client.post(
        "/api/v1/checkout",
        json={"budget_line_id": line, "acknowledge": ["price_above_median", "splitting"]},
        headers=buyer,
    )
    assert response.status_code == 201, response.text
    result = response.json()
    assert sorted(o["supplier_id"] for o in result["orders"]) == sorted(
        [mine["supplier_id"], other["supplier_id"]]
    )
    for order in result["orders"]:
        assert order["status"] == "submitted" and order["city_rule_version"] == 1
        assert (
            order["reserved_fen"]
            == order["total_fen"]
            == sum(line["line_total_fen"] for line in order["lines"])
        )
        assert order["delivery_region_code"] == "511000"
    stock = await pool.fetchval("select stock from offers where id = $1", mine["id"])
    assert stock == 10 - 2
    assert (await client.get("/api/v1/cart", headers=buyer)).json()["items"] == []
    amount, reserved, spent = await ledger_balances(pool, line)
    assert (amount, reserved, spent) == (10_000_000, 2 * 200_000 + other["price_fen"], 0)
    got = await client.get(f"/api/v1/orders/{result['orders'][0]['id']}", headers=buyer)
    assert got.status_code == 200
    assert (
        await client.get(
            f"/api/v1/orders/{result['orders'][0]['id']}", headers=await token_for(pool, "zg_buyer")
        )
    ).status_code == 404
    actions = await pool.fetch("select action from audit_events where entity_type = 'order'")
    assert [a["action"] for a in actions] == ["order.created", "order.created"]
    # each order's reservation is recorded as the budget service records a movement: the
    # line's figures after it, in the order the one statement reserved them
    moved = await pool.fetch(
        "select actor_user_id, actor_organisation_id, region_code, after from audit_events "
        "where action = 'budget_line.reserved' and entity_id = $1 order by id",
        str(line),
    )
    by_supplier = sorted(result["orders"], key=lambda o: o["supplier_id"])
    running = 0
    for n, (event, order) in enumerate(zip(moved, by_supplier, strict=True), start=1):
        running += order["total_fen"]
        assert event["after"] == {
            "kind": "reserve",
            "amount_fen": order["total_fen"],
            "order_id": order["id"],
            "amount_fen_after": 10_000_000,
            "reserved_fen_after": running,
            "spent_fen_after": 0,
            "version": 1 + n,
        }
        assert event["region_code"] == "511000"
        assert event["actor_organisation_id"] == await org_id(pool, NJ_AGENCY)
    assert running == reserved
    queued = await pool.fetch(
        "select aggregate_id, payload from outbox where topic = 'order.created' order by id"
    )
    assert [(int(q["aggregate_id"]), q["payload"]["total_fen"]) for q in queued] == [
        (o["id"], o["total_fen"]) for o in sorted(result["orders"], key=lambda o: o["id"])
    ]


async def test_ceiling_refuses_and_threshold_waits_for_approval(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    offer = await listed_offer(client, pool, "限额型号", price=100_000)
    await pool.execute("update offers set stock = 1000 where id = $1", offer["id"])
    buyer = await token_for(pool, "nj_buyer")
    line = await budget_line(pool, 100_000_000)
    await put(client, buyer, offer["id"], 401)  # 40,100,000 fen > the 40,000,000 ceiling
    refused = await client.post(
        "/api/v1/checkout",
        json={"budget_line_id": line, "acknowledge": ["price_above_median", "splitting"]},
        headers=buyer,
    )
    assert refused.status_code == 422
    assert "formal procurement procedure" in refused.json()["detail"]
    assert await pool.fetchval("select stock from offers where id = $1", offer["id"]) == 1000
    assert await pool.fetchval("select count(*) from orders") == 0
    await put(client, buyer, offer["id"], 60)  # 6,000,000 fen: above the 5,000,000 threshold
    waiting = await client.post(
        "/api/v1/checkout",
        json={"budget_line_id": line, "acknowledge": ["price_above_median", "splitting"]},
        headers=buyer,
    )
    assert waiting.status_code == 201, waiting.text
    order = waiting.json()["orders"][0]
    assert order["status"] == "pending_approval" and order["reserved_fen"] == 0
    assert (await ledger_balances(pool, line))[1] == 0  # reserved at approval, not before


async def test_warnings_must_be_acknowledged_and_splitting_is_flagged(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    offer = await listed_offer(client, pool, "拆单型号", price=100_000)
    await pool.execute("update offers set stock = 1000 where id = $1", offer["id"])
    buyer = await token_for(pool, "nj_buyer")
    line = await budget_line(pool, 200_000_000)
    await put(client, buyer, offer["id"], 300)  # 30,000,000
    first = await client.post(
        "/api/v1/checkout",
        json={"budget_line_id": line, "acknowledge": ["price_above_median"]},
        headers=buyer,
    )
    assert first.status_code == 201, first.text
    await put(
        client, buyer, offer["id"], 200
    )  # 20,000,000 more in the same category within 30 days
    warned = await client.post(
        "/api/v1/checkout",
        json={"budget_line_id": line, "acknowledge": ["price_above_median"]},
        headers=buyer,
    )
    assert warned.status_code == 409
    splitting = [w for w in warned.json()["warnings"] if w["code"] == "splitting"]
    assert splitting and splitting[0]["detail"]["earlier_orders"] == [
        first.json()["orders"][0]["id"]
    ]
    assert splitting[0]["detail"]["together_fen"] == 50_000_000
    assert await pool.fetchval("select count(*) from orders") == 1  # nothing placed
    placed = await client.post(
        "/api/v1/checkout",
        json={"budget_line_id": line, "acknowledge": ["price_above_median", "splitting"]},
        headers=buyer,
    )
    assert placed.status_code == 201
    flag = await pool.fetchrow(
        "select kind, region_code from order_flags where order_id = $1",
        placed.json()["orders"][0]["id"],
    )
    assert flag is not None and (flag["kind"], flag["region_code"]) == ("splitting", "511000")


async def test_idempotency_key(client: AsyncTestClient[Litestar], pool: Pool) -> None:
    offer = await listed_offer(client, pool, "幂等型号", price=50_000)
    buyer = {**await token_for(pool, "nj_buyer"), "Idempotency-Key": "checkout-2026-0001"}
    line = await budget_line(pool, 10_000_000)
    await put(client, buyer, offer["id"], 1)
    body = {"budget_line_id": line, "acknowledge": ["price_above_median", "splitting"]}
    first = await client.post("/api/v1/checkout", json=body, headers=buyer)
    again = await client.post("/api/v1/checkout", json=body, headers=buyer)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert await pool.fetchval("select count(*) from orders") == 1
    other = await client.post(
        "/api/v1/checkout", json={**body, "acknowledge": ["splitting"]}, headers=buyer
    )
    assert other.status_code == 422
    assert other.json()["type"] == "urn:emall:problem:idempotency_key_reused"


async def _buyers(pool: Pool, n: int, offer_id: int) -> list[str]:
    agency = await org_id(pool, NJ_AGENCY)
    names = [f"rush_buyer_{i}" for i in range(n)]
    await pool.executemany(
        "insert into users (organisation_id, username, display_name, password_hash, roles) values ($1, $2, '抢购采购员', 'x', '{agency_buyer}')",
        [(agency, name) for name in names],
    )
    await pool.executemany(
        "insert into cart_items (user_id, offer_id, quantity) select id, $2, 1 from users where username = $1",
        [(name, offer_id) for name in names],
    )
    return names


async def test_200_concurrent_checkouts_through_the_library(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    offer = await listed_offer(client, pool, "抢购型号L", price=100_000)  # stock 10
    line = await budget_line(pool, 7 * 100_000)  # affords only 7
    names = await _buyers(pool, 200, offer["id"])
    principals = [await principal_of(pool, name) for name in names]
    outcomes: list[str] = []

    async def one(principal: Any) -> None:
        try:
            async with pool.acquire() as conn, conn.transaction():
                await checkout(
                    conn,
                    principal,
                    CheckoutRequest(
                        budget_line_id=line, acknowledge=["price_above_median", "splitting"]
                    ),
                )
            outcomes.append("ok")
        except Conflict:
            outcomes.append("refused")

    await asyncio.gather(*(one(p) for p in principals))
    assert outcomes.count("ok") == 7 and outcomes.count("refused") == 193
    assert await pool.fetchval("select stock from offers where id = $1", offer["id"]) == 3
    assert await ledger_balances(pool, line) == (700_000, 700_000, 0)
    row = await pool.fetchrow(
        "select amount_fen, reserved_fen, spent_fen from budget_lines where id = $1", line
    )
    assert tuple(row) == (700_000, 700_000, 0)
    assert await pool.fetchval("select count(*) from orders") == 7


async def test_200_concurrent_checkouts_over_http(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    offer = await listed_offer(client, pool, "抢购型号H", price=100_000)  # stock 10
    line = await budget_line(pool, 20 * 100_000)  # affords 20: stock decides
    names = await _buyers(pool, 200, offer["id"])
    headers = [await token_for(pool, name) for name in names]
    body = {"budget_line_id": line, "acknowledge": ["price_above_median", "splitting"]}
    responses = await asyncio.gather(
        *(client.post("/api/v1/checkout", json=body, headers=h) for h in headers)
    )
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 10 and statuses.count(409) == 190, sorted(set(statuses))
    assert await pool.fetchval("select stock from offers where id = $1", offer["id"]) == 0
    assert await ledger_balances(pool, line) == (2_000_000, 1_000_000, 0)
    assert await pool.fetchval("select sum(quantity) from order_lines") == 10


async def test_one_cart_becomes_at_most_one_checkout_under_concurrency(
    client: AsyncTestClient[Litestar], pool: Pool, settings: Settings
) -> None:
    """Twenty concurrent checkouts of the same one-item cart, without an Idempotency-Key, sent
    to the app behind uvicorn, place one order: the cart is claimed by the statement that reads
    it. Repeated, as the race placed 2 to 9 orders in 29 trials of 30 before."""
    offer = await listed_offer(client, pool, "同车并发型号", price=100_000)
    await pool.execute("update offers set stock = 10000 where id = $1", offer["id"])
    line = await budget_line(pool, 50 * 100_000)  # room for 50 orders
    trials = 8
    names = await _buyers(pool, trials, offer["id"])
    body = {"budget_line_id": line, "acknowledge": ["price_above_median", "splitting"]}
    async with served(create_app(settings)) as base, httpx.AsyncClient(base_url=base) as http:
        for name in names:
            headers = await token_for(pool, name)
            responses = await asyncio.gather(
                *(http.post("/api/v1/checkout", json=body, headers=headers) for _ in range(20))
            )
            statuses = sorted(r.status_code for r in responses)
            assert statuses == [201] + [422] * 19, statuses
            refused = next(r for r in responses if r.status_code == 422).json()
            assert [e["field"] for e in refused["errors"]] == ["cart"], refused
    assert await pool.fetchval("select count(*) from orders") == trials
    assert (
        await pool.fetchval("select stock from offers where id = $1", offer["id"]) == 10000 - trials
    )
    assert await ledger_balances(pool, line) == (5_000_000, trials * 100_000, 0)


async def test_a_refused_checkout_keeps_the_cart(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    """Claiming the cart is undone with the checkout: a refusal (warnings not acknowledged,
    insufficient budget) leaves the cart as it was, also through the library outside a
    transaction of the caller's."""
    offer = await listed_offer(client, pool, "保留购物车型号", price=100_000)
    buyer = await token_for(pool, "nj_buyer")
    await put(client, buyer, offer["id"], 2)
    small = await budget_line(pool, 100_000)
    refused = await client.post(
        "/api/v1/checkout",
        json={"budget_line_id": small, "acknowledge": ["price_above_median", "splitting"]},
        headers=buyer,
    )
    assert refused.status_code == 409, refused.text
    items = (await client.get("/api/v1/cart", headers=buyer)).json()["items"]
    assert [(i["offer_id"], i["quantity"]) for i in items] == [(offer["id"], 2)]
    principal = await principal_of(pool, "nj_buyer")
    async with pool.acquire() as conn:
        with pytest.raises((WarningsToAcknowledge, Conflict)):
            await checkout(conn, principal, CheckoutRequest(budget_line_id=small, acknowledge=[]))
    items = (await client.get("/api/v1/cart", headers=buyer)).json()["items"]
    assert [(i["offer_id"], i["quantity"]) for i in items] == [(offer["id"], 2)]
