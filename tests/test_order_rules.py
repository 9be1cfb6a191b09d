"""City rules applied to orders across effective dates and versions: the e-mall ceiling, the
approval threshold, the anti-splitting window and the payment term with its overdue flag. Each
order records the version it was checked against; a version dated tomorrow changes nothing today."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from emall.audit import start_of_business_day
from emall.clock import today
from emall.composition import build_worker
from emall.db.pool import Pool
from emall.ordering.flags import PAYMENT_DUE_TOPIC, flag_overdue, payment_due_handler
from emall.outbox.worker import OutboxWorker
from emall.search.client import create_search_client
from emall.settings import Settings
from tests.helpers import token_for
from tests.test_checkout import budget_line, put
from tests.test_listings import listed_offer
from tests.test_order_lifecycle import act, place

NJ = "511000"


async def add_version(
    client: AsyncTestClient[Litestar], pool: Pool, days_from_today: int, **figures: int
) -> dict[str, Any]:
    body = {
        "effective_from": (today() + timedelta(days=days_from_today)).isoformat(),
        "ceiling_fen": 40_000_000,
        "approval_threshold_fen": 5_000_000,
        **figures,
    }
    response = await client.post(
        f"/api/v1/city-rules/{NJ}/versions", json=body, headers=await token_for(pool, "nj_operator")
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def checkout(
    client: AsyncTestClient[Litestar], pool: Pool, line: int, acknowledge: list[str]
) -> Any:
    return await client.post(
        "/api/v1/checkout",
        json={"budget_line_id": line, "acknowledge": acknowledge},
        headers=await token_for(pool, "nj_buyer"),
    )


ACK = ["price_above_median", "splitting"]


async def test_ceiling_of_the_version_in_force_today(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    today_version = await add_version(client, pool, 0, ceiling_fen=20_000_000)
    tomorrow_version = await add_version(client, pool, 1, ceiling_fen=100_000_000)
    assert today_version["version"] == 2 and tomorrow_version["version"] == 3
    offer = await listed_offer(client, pool, "限额版本型号", price=100_000)
    await pool.execute("update offers set stock = 1000 where id = $1", offer["id"])
    buyer = await token_for(pool, "nj_buyer")
    line = await budget_line(pool, 100_000_000)

    await put(client, buyer, offer["id"], 250)  # 25,000,000: under v1's 40M, above today's 20M
    refused = await checkout(client, pool, line, ACK)
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert "formal procurement procedure" in problem["detail"] and "version 2" in problem["detail"]
    assert await pool.fetchval("select count(*) from orders") == 0

    await put(client, buyer, offer["id"], 150)  # 15,000,000: under today's ceiling
    placed = await checkout(client, pool, line, ACK)
    assert placed.status_code == 201, placed.text
    order = placed.json()["orders"][0]
    assert order["city_rule_version"] == 2 and order["city_rule_id"] == today_version["id"]
    assert order["status"] == "pending_approval"  # above v2's threshold of 5,000,000

    versions = await client.get(f"/api/v1/city-rules/{NJ}/versions", headers=buyer)
    listed = [(v["version"], v["ceiling_fen"]) for v in versions.json()]
    assert sorted(listed) == [(1, 40_000_000), (2, 20_000_000), (3, 100_000_000)]


async def test_approval_threshold_by_version(client: AsyncTestClient[Litestar], pool: Pool) -> None:
    before, _, _ = await place(client, pool, "阈值一", 40)  # 4,000,000 under v1's 5,000,000
    assert before["status"] == "submitted" and before["city_rule_version"] == 1
    await add_version(client, pool, 0, approval_threshold_fen=3_000_000)
    await add_version(client, pool, 1, approval_threshold_fen=10_000_000)  # from tomorrow
    after, _, _ = await place(client, pool, "阈值二", 40)  # the same amount, today's version
    assert after["status"] == "pending_approval" and after["city_rule_version"] == 2
    queue = await client.get(
        "/api/v1/orders/approval-queue", headers=await token_for(pool, "nj_approver")
    )
    assert [o["id"] for o in queue.json()["items"]] == [after["id"]]
    kept = await client.get(
        f"/api/v1/orders/{before['id']}", headers=await token_for(pool, "nj_buyer")
    )
    assert kept.json()["city_rule_version"] == 1  # an order keeps the version it was checked by


async def test_splitting_window_by_version_and_the_flag(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    offer = await listed_offer(client, pool, "拆单窗口型号", price=100_000)
    await pool.execute("update offers set stock = 1000 where id = $1", offer["id"])
    buyer = await token_for(pool, "nj_buyer")
    line = await budget_line(pool, 200_000_000)
    await put(client, buyer, offer["id"], 300)
    first = await checkout(client, pool, line, ["price_above_median"])
    assert first.status_code == 201, first.text
    earlier = first.json()["orders"][0]["id"]
    # ten days pass: the earlier order now lies inside v1's 30-day window, outside 7 days
    await pool.execute(
        "update orders set created_at = now() - interval '10 days' where id = $1", earlier
    )

    await put(client, buyer, offer["id"], 200)
    warned = await checkout(client, pool, line, ["price_above_median"])
    assert warned.status_code == 409
    splitting = [w for w in warned.json()["warnings"] if w["code"] == "splitting"]
    assert splitting and splitting[0]["detail"]["earlier_orders"] == [earlier]

    await add_version(client, pool, 0, splitting_window_days=7)
    await add_version(client, pool, 1, splitting_window_days=60)  # not yet in force
    placed = await checkout(client, pool, line, ["price_above_median"])
    assert placed.status_code == 201, placed.text
    order = placed.json()["orders"][0]
    assert order["city_rule_version"] == 2
    assert not [w for w in order["warnings"] if w["code"] == "splitting"]
    assert await pool.fetchval("select count(*) from order_flags where kind = 'splitting'") == 0


async def test_an_acknowledged_splitting_order_is_flagged_to_its_operator(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    offer = await listed_offer(client, pool, "拆单预警型号", price=100_000)
    await pool.execute("update offers set stock = 1000 where id = $1", offer["id"])
    buyer = await token_for(pool, "nj_buyer")
    line = await budget_line(pool, 200_000_000)
    await put(client, buyer, offer["id"], 300)
    earlier = (await checkout(client, pool, line, ACK)).json()["orders"][0]["id"]
    await put(client, buyer, offer["id"], 200)
    flagged = await checkout(client, pool, line, ACK)
    assert flagged.status_code == 201, flagged.text
    order = flagged.json()["orders"][0]
    assert order["city_rule_version"] == 1
    operator = await token_for(pool, "nj_operator")
    flags = (await client.get("/api/v1/order-flags?kind=splitting", headers=operator)).json()
    assert [(f["order_id"], f["kind"]) for f in flags["items"]] == [(order["id"], "splitting")]
    assert flags["items"][0]["detail"]["warnings"][0]["earlier_orders"] == [earlier]
    for outsider in ("zg_operator", "zg_auditor"):
        foreign = await client.get("/api/v1/order-flags", headers=await token_for(pool, outsider))
        assert foreign.json()["items"] == [], outsider

    flag_id = flags["items"][0]["id"]
    path = f"/api/v1/order-flags/{flag_id}/resolve"
    body = {"resolution": "已约谈采购单位，说明为两批次教学设备，非拆分"}
    denied = await client.post(path, json=body, headers=await token_for(pool, "nj_auditor"))
    assert denied.status_code == 403
    hidden = await client.post(path, json=body, headers=await token_for(pool, "zg_operator"))
    assert hidden.status_code == 404
    resolved = await client.post(path, json=body, headers=operator)
    assert resolved.status_code == 200 and resolved.json()["resolution"] == body["resolution"]
    again = await client.post(path, json=body, headers=operator)
    assert again.status_code == 409 and again.json()["current_state"] == "resolved"
    still_open = (await client.get("/api/v1/order-flags", headers=operator)).json()["items"]
    assert still_open == []
    every = await client.get("/api/v1/order-flags?open_only=false", headers=operator)
    assert [f["id"] for f in every.json()["items"]] == [flag_id]
    assert (
        await pool.fetchval(
            "select count(*) from audit_events where action = 'order_flag.resolved' and entity_id = $1",
            str(order["id"]),
        )
        == 1
    )


async def accepted_order(
    client: AsyncTestClient[Litestar], pool: Pool, model: str
) -> dict[str, Any]:
    order, _, _ = await place(client, pool, model, 10)  # 1,000,000: no approval needed
    for user, action, body in (
        ("nj_supplier_admin", "confirm", {}),
        ("nj_supplier_admin", "ship", None),
        ("nj_supplier_admin", "deliver", None),
        ("nj_buyer", "accept", {}),
    ):
        response = await act(client, pool, user, order["id"], action, body)
        assert response.status_code == 200, (action, response.text)
    return dict(response.json())


async def test_payment_term_by_version_and_overdue_flags(
    client: AsyncTestClient[Litestar], pool: Pool, settings: Settings
) -> None:
    under_v1 = await accepted_order(client, pool, "账期一")
    await add_version(client, pool, 0, payment_term_days=7)
    under_v2 = await accepted_order(client, pool, "账期二")
    paid = await accepted_order(client, pool, "账期三")
    settled = await act(
        client,
        pool,
        "nj_buyer",
        paid["id"],
        "settle",
        {"amount_fen": paid["accepted_fen"], "paid_on": today().isoformat(), "reference": "P-1"},
    )
    assert settled.status_code == 200, settled.text
    assert under_v1["city_rule_version"] == 1 and under_v2["city_rule_version"] == 2
    assert under_v1["payment_due_date"] == (today() + timedelta(days=30)).isoformat()
    assert under_v2["payment_due_date"] == (today() + timedelta(days=7)).isoformat()

    async with pool.acquire() as conn:
        assert await flag_overdue(conn, on=today() + timedelta(days=7)) == []  # due, not late
        assert await flag_overdue(conn, on=today() + timedelta(days=8)) == [under_v2["id"]]
        assert await flag_overdue(conn, on=today() + timedelta(days=8)) == []  # once only
        assert await flag_overdue(conn, on=today() + timedelta(days=100)) == [under_v1["id"]]
    events = await pool.fetchval(
        "select count(*) from audit_events where action = 'order.flagged_overdue'"
    )
    assert events == 2
    operator = await token_for(pool, "nj_operator")
    queue = (await client.get("/api/v1/order-flags?kind=overdue", headers=operator)).json()
    assert sorted(f["order_id"] for f in queue["items"]) == sorted([under_v1["id"], under_v2["id"]])
    assert {f["detail"]["days_overdue"] for f in queue["items"]} == {1, 70}


async def test_the_payment_check_is_queued_for_the_day_after_the_due_date(
    client: AsyncTestClient[Litestar], pool: Pool, settings: Settings
) -> None:
    order = await accepted_order(client, pool, "到期检查型号")
    due = today() + timedelta(days=30)
    row = await pool.fetchrow(
        "select available_at from outbox where topic = $1 and aggregate_id = $2",
        PAYMENT_DUE_TOPIC,
        str(order["id"]),
    )
    assert row is not None and row["available_at"] == start_of_business_day(due + timedelta(days=1))
    assert settings.search.url is not None
    search = create_search_client(settings.search.url, settings.search.master_key)
    try:
        assert PAYMENT_DUE_TOPIC in build_worker(pool, search, settings).handlers
    finally:
        await search.aclose()
    worker = OutboxWorker(pool, {PAYMENT_DUE_TOPIC: payment_due_handler})
    assert await worker.run_once() == 0  # not before its day
    # the due date passes unpaid: the queued check comes round and flags the order
    await pool.execute(
        "update orders set payment_due_date = current_date - 3 where id = $1", order["id"]
    )
    await pool.execute("update outbox set available_at = now() where topic = $1", PAYMENT_DUE_TOPIC)
    assert await worker.run_once() == 1
    buyer = await token_for(pool, "nj_buyer")
    overdue = (await client.get("/api/v1/orders?overdue=true", headers=buyer)).json()
    assert [o["id"] for o in overdue["items"]] == [order["id"]]
    assert overdue["items"][0]["overdue"] is True
    flag = await pool.fetchrow(
        "select kind, region_code from order_flags where order_id = $1", order["id"]
    )
    assert flag is not None and tuple(flag) == ("overdue", NJ)
    assert (
        await pool.fetchval(
            "select count(*) from outbox where topic = 'order.flagged' and aggregate_id = $1",
            str(order["id"]),
        )
        == 1
    )
