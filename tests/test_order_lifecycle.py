"""The order lifecycle over HTTP: every legal step with its budget and stock effects, and the
refusals of illegal steps and wrong actors."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from emall.budgets.service import ledger_balances
from emall.db.pool import Pool
from tests.helpers import token_for
from tests.test_checkout import budget_line, put
from tests.test_listings import listed_offer

ACK = ["price_above_median", "splitting"]


async def place(
    client: AsyncTestClient[Litestar], pool: Pool, model: str, quantity: int, price: int = 100_000
) -> tuple[dict[str, Any], int, int]:
    """(the order, its budget line, its offer) for ``quantity`` units at ``price``."""
    offer = await listed_offer(client, pool, model, price=price)
    await pool.execute("update offers set stock = 100 where id = $1", offer["id"])
    buyer = await token_for(pool, "nj_buyer")
    line = await budget_line(pool, 20_000_000, name=f"预算{model}")
    await put(client, buyer, offer["id"], quantity)
    response = await client.post(
        "/api/v1/checkout", json={"budget_line_id": line, "acknowledge": ACK}, headers=buyer
    )
    assert response.status_code == 201, response.text
    return response.json()["orders"][0], line, offer["id"]


async def act(
    client: AsyncTestClient[Litestar],
    pool: Pool,
    user: str,
    order_id: int,
    action: str,
    body: Any = None,
) -> Any:
    return await client.post(
        f"/api/v1/orders/{order_id}/{action}", json=body, headers=await token_for(pool, user)
    )


async def stock(pool: Pool, offer_id: int) -> int:
    return int(await pool.fetchval("select stock from offers where id = $1", offer_id))


async def test_full_lifecycle_with_budget_and_audit(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    order, line, offer = await place(
        client, pool, "全流程型号", 60
    )  # 6,000,000 fen: above the threshold
    assert order["status"] == "pending_approval"
    assert await ledger_balances(pool, line) == (20_000_000, 0, 0)
    assert await stock(pool, offer) == 40

    steps: list[tuple[str, str, Any, str, tuple[int, int, int]]] = [
        ("nj_approver", "approve", None, "submitted", (20_000_000, 6_000_000, 0)),
        ("nj_supplier_staff", "confirm", {}, "confirmed", (20_000_000, 6_000_000, 0)),
        ("nj_supplier_admin", "ship", None, "shipped", (20_000_000, 6_000_000, 0)),
        ("nj_supplier_admin", "deliver", None, "delivered", (20_000_000, 6_000_000, 0)),
        (
            "nj_buyer",
            "accept",
            {"accepted": {str(order["lines"][0]["id"]): 50}, "defects": "10台外包装破损，拒收"},
            "accepted",
            (20_000_000, 6_000_000, 0),
        ),
        (
            "nj_buyer",
            "settle",
            {
                "amount_fen": 5_000_000,
                "paid_on": "2026-11-30",
                "reference": "国库集中支付 2026-1130-001",
            },
            "settled",
            (20_000_000, 0, 5_000_000),
        ),
    ]
    for user, action, body, status, balances in steps:
        response = await act(client, pool, user, order["id"], action, body)
        assert response.status_code == 200, (action, response.text)
        assert response.json()["status"] == status, action
        assert await ledger_balances(pool, line) == balances, action
        figures = await pool.fetchrow(
            "select amount_fen, reserved_fen, spent_fen from budget_lines where id = $1", line
        )
        assert tuple(figures) == balances, action
        latest = await pool.fetchrow(
            "select action, actor_user_id from audit_events where entity_type = 'order' "
            "and entity_id = $1 order by id desc limit 1",
            str(order["id"]),
        )
        assert latest is not None and latest["action"] == f"order.{status}", action
        assert latest["actor_user_id"] == await pool.fetchval(
            "select id from users where username = $1", user
        )
    settled = response.json()
    assert settled["accepted_fen"] == 5_000_000 and settled["paid_fen"] == 5_000_000
    assert settled["payment_due_date"] is not None and settled["defects"].startswith("10台")
    trail = await pool.fetch(
        "select action from audit_events where entity_type = 'order' and entity_id = $1 order by id",
        str(order["id"]),
    )
    assert [t["action"] for t in trail] == [
        "order.created",
        "order.submitted",
        "order.confirmed",
        "order.shipped",
        "order.delivered",
        "order.accepted",
        "order.settled",
    ]
    outbox = await pool.fetchval(
        "select count(*) from outbox where topic = 'order.changed' and aggregate_id = $1",
        str(order["id"]),
    )
    assert outbox == 6
    rated = await act(
        client,
        pool,
        "nj_buyer",
        order["id"],
        "evaluation",
        {"quality": 4, "delivery": 5, "service": 4, "comment": "验收中发现包装破损，其余良好"},
    )
    assert rated.status_code == 201, rated.text
    assert await ledger_balances(pool, line) == (20_000_000, 0, 5_000_000)  # rating moves no money
    last = await pool.fetchval(
        "select action from audit_events where entity_type = 'order' and entity_id = $1 "
        "order by id desc limit 1",
        str(order["id"]),
    )
    assert last == "order.rated"


async def test_partial_confirmation_returns_budget_and_stock(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    order, line, offer = await place(
        client, pool, "部分确认型号", 10
    )  # 1,000,000: submitted at once
    assert order["status"] == "submitted" and await ledger_balances(pool, line) == (
        20_000_000,
        1_000_000,
        0,
    )
    partial = await act(
        client,
        pool,
        "nj_supplier_admin",
        order["id"],
        "confirm",
        {"quantities": {str(order["lines"][0]["id"]): 6}},
    )
    assert partial.json()["status"] == "partially_confirmed"
    assert await ledger_balances(pool, line) == (20_000_000, 600_000, 0)
    assert await stock(pool, offer) == 100 - 6
    too_many = await act(client, pool, "nj_supplier_admin", order["id"], "confirm", {})
    assert too_many.status_code == 409 and too_many.json()["current_state"] == "partially_confirmed"


async def test_decline_and_cancel_release_everything(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    declined, line, offer = await place(client, pool, "拒单型号", 5)
    response = await act(
        client, pool, "nj_supplier_admin", declined["id"], "decline", {"reason": "缺货"}
    )
    assert response.json()["status"] == "rejected" and response.json()["status_reason"] == "缺货"
    assert (
        await ledger_balances(pool, line) == (20_000_000, 0, 0) and await stock(pool, offer) == 100
    )
    cancelled, line2, offer2 = await place(client, pool, "撤单型号", 5)
    await act(client, pool, "nj_supplier_admin", cancelled["id"], "confirm", {})
    response = await act(
        client, pool, "nj_buyer", cancelled["id"], "cancel", {"reason": "需求变更"}
    )
    assert response.json()["status"] == "cancelled"
    assert (
        await ledger_balances(pool, line2) == (20_000_000, 0, 0)
        and await stock(pool, offer2) == 100
    )
    shipped, _, _ = await place(client, pool, "已发货型号", 5)
    await act(client, pool, "nj_supplier_admin", shipped["id"], "confirm", {})
    await act(client, pool, "nj_supplier_admin", shipped["id"], "ship")
    late = await act(client, pool, "nj_buyer", shipped["id"], "cancel", {"reason": "太晚了"})
    assert late.status_code == 409 and late.json()["current_state"] == "shipped"


async def test_illegal_steps_and_wrong_actors(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    order, _, _ = await place(client, pool, "非法流转型号", 5)  # submitted
    for user, action, body in (
        ("nj_supplier_admin", "ship", None),
        ("nj_supplier_admin", "deliver", None),
        ("nj_buyer", "accept", {}),
        ("nj_buyer", "settle", {"amount_fen": 1, "paid_on": "2026-11-30", "reference": "x"}),
        ("nj_approver", "approve", None),
    ):
        response = await act(client, pool, user, order["id"], action, body)
        assert response.status_code == 409, (action, response.text)
        assert response.json()["current_state"] == "submitted"
    assert (await act(client, pool, "nj_buyer", order["id"], "confirm", {})).status_code == 403
    assert (
        await act(client, pool, "zg_supplier_admin", order["id"], "confirm", {})
    ).status_code == 404
    assert (
        await act(client, pool, "zg_buyer", order["id"], "cancel", {"reason": "别人的单"})
    ).status_code == 404
    waiting, _, _ = await place(client, pool, "待审批型号", 60)
    assert (await act(client, pool, "nj_buyer", waiting["id"], "approve")).status_code == 403
    rejected = await act(
        client, pool, "nj_approver", waiting["id"], "reject", {"reason": "超出年度计划"}
    )
    assert rejected.json()["status"] == "rejected"


async def test_settlement_must_match_the_accepted_amount(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    order, line, _ = await place(client, pool, "结算金额型号", 3)
    for user, action, body in (
        ("nj_supplier_admin", "confirm", {}),
        ("nj_supplier_admin", "ship", None),
        ("nj_supplier_admin", "deliver", None),
        ("nj_buyer", "accept", {}),
    ):
        assert (await act(client, pool, user, order["id"], action, body)).status_code == 200
    wrong = await act(
        client,
        pool,
        "nj_buyer",
        order["id"],
        "settle",
        {"amount_fen": 1, "paid_on": "2026-11-30", "reference": "x"},
    )
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "amount_fen"
    right = await act(
        client,
        pool,
        "nj_buyer",
        order["id"],
        "settle",
        {"amount_fen": 300_000, "paid_on": "2026-11-30", "reference": "x"},
    )
    assert right.status_code == 200 and await ledger_balances(pool, line) == (
        20_000_000,
        0,
        300_000,
    )


async def test_rating_once_after_acceptance_and_the_supplier_score(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    order, _, _ = await place(client, pool, "评价型号", 2)
    rating = {"quality": 5, "delivery": 4, "service": 3, "comment": "送货及时，安装规范"}
    early = await act(client, pool, "nj_buyer", order["id"], "evaluation", rating)
    assert early.status_code == 409 and early.json()["current_state"] == "submitted"
    for user, action, body in (
        ("nj_supplier_admin", "confirm", {}),
        ("nj_supplier_admin", "ship", None),
        ("nj_supplier_admin", "deliver", None),
        ("nj_buyer", "accept", {}),
    ):
        assert (await act(client, pool, user, order["id"], action, body)).status_code == 200
    assert (
        await act(client, pool, "nj_supplier_admin", order["id"], "evaluation", rating)
    ).status_code == 403
    bad = await act(client, pool, "nj_buyer", order["id"], "evaluation", {**rating, "quality": 6})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "quality"
    rated = await act(client, pool, "nj_buyer", order["id"], "evaluation", rating)
    assert rated.status_code == 201, rated.text
    again = await act(client, pool, "nj_buyer", order["id"], "evaluation", rating)
    assert again.status_code == 409
    score = await client.get(
        f"/api/v1/suppliers/{order['supplier_id']}/score", headers=await token_for(pool, "zg_buyer")
    )
    assert score.json() == {
        "supplier_id": order["supplier_id"],
        "ratings": 1,
        "quality": 5.0,
        "delivery": 4.0,
        "service": 3.0,
        "overall": 4.0,
    }
