"""Order lists (scoped to agency, supplier and overseen regions, filtered, cursor-paged), the
approver's queue, and Idempotency-Key on lifecycle calls."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from emall.clock import business_date
from emall.db.pool import Pool
from tests.helpers import org_id, token_for
from tests.test_order_lifecycle import act, place


async def ids(
    client: AsyncTestClient[Litestar], pool: Pool, user: str, query: str = ""
) -> list[int]:
    response = await client.get(f"/api/v1/orders{query}", headers=await token_for(pool, user))
    assert response.status_code == 200, response.text
    return [o["id"] for o in response.json()["items"]]


async def test_each_side_sees_its_orders_newest_first(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    small, _, _ = await place(client, pool, "列表一", 10)
    large, _, _ = await place(client, pool, "列表二", 60)  # waits for approval
    mine = [large["id"], small["id"]]
    for user in ("nj_buyer", "nj_agency_admin", "nj_supplier_staff", "nj_operator", "nj_auditor"):
        assert await ids(client, pool, user) == mine, user
    for user in ("zg_agency_admin", "zg_supplier_admin", "zg_operator", "zg_auditor"):
        assert await ids(client, pool, user) == [], user
    assert await ids(client, pool, "admin") == mine

    assert await ids(client, pool, "nj_operator", "?status=pending_approval") == [large["id"]]
    both = "?status=pending_approval&status=submitted"
    assert await ids(client, pool, "nj_operator", both) == mine
    supplier = await org_id(pool, "内江川南数码科技有限公司")
    assert await ids(client, pool, "nj_auditor", f"?supplier_id={supplier}") == mine
    assert await ids(client, pool, "nj_auditor", f"?supplier_id={supplier + 1000}") == []
    assert await ids(client, pool, "nj_operator", "?region_code=511000") == mine
    assert await ids(client, pool, "nj_operator", "?region_code=510300") == []
    assert await ids(client, pool, "nj_buyer", "?overdue=true") == []
    day = business_date(datetime.fromisoformat(small["created_at"])).isoformat()  # Asia/Shanghai
    assert await ids(client, pool, "nj_buyer", f"?created_from={day}&created_to={day}") == mine
    after = (
        business_date(datetime.fromisoformat(small["created_at"])) + timedelta(days=1)
    ).isoformat()
    assert await ids(client, pool, "nj_buyer", f"?created_from={after}") == []
    assert await ids(client, pool, "nj_buyer", f"?created_to={day}") == mine

    summary = (
        await client.get("/api/v1/orders", headers=await token_for(pool, "nj_buyer"))
    ).json()["items"][0]
    assert summary["agency_name"] == "内江市教育局" and summary["total_fen"] == 6_000_000
    assert summary["status"] == "pending_approval" and summary["overdue"] is False

    bad = await client.get("/api/v1/orders?status=lost", headers=await token_for(pool, "nj_buyer"))
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"


async def test_cursor_pages_never_repeat_or_skip(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    placed = [(await place(client, pool, f"分页{i}", 1))[0]["id"] for i in range(5)]
    buyer = await token_for(pool, "nj_buyer")
    seen: list[int] = []
    url = "/api/v1/orders?limit=2"
    while True:
        page = (await client.get(url, headers=buyer)).json()
        assert len(page["items"]) <= 2
        seen += [o["id"] for o in page["items"]]
        if page["next_cursor"] is None:
            break
        url = f"/api/v1/orders?limit=2&cursor={page['next_cursor']}"
    assert seen == sorted(placed, reverse=True)
    huge = await client.get("/api/v1/orders?limit=100000", headers=buyer)
    assert huge.status_code == 400 and "limit" in huge.text


async def test_the_approval_queue(client: AsyncTestClient[Litestar], pool: Pool) -> None:
    first, _, _ = await place(client, pool, "审批一", 60)
    await place(client, pool, "审批不需要", 10)
    second, _, _ = await place(client, pool, "审批二", 70)
    approver = await token_for(pool, "nj_approver")
    queue = (await client.get("/api/v1/orders/approval-queue", headers=approver)).json()
    assert [o["id"] for o in queue["items"]] == [first["id"], second["id"]]  # oldest first
    approved = await act(client, pool, "nj_approver", first["id"], "approve")
    assert approved.status_code == 200
    queue = (await client.get("/api/v1/orders/approval-queue", headers=approver)).json()
    assert [o["id"] for o in queue["items"]] == [second["id"]]
    admin = await client.get(
        "/api/v1/orders/approval-queue", headers=await token_for(pool, "nj_agency_admin")
    )
    assert [o["id"] for o in admin.json()["items"]] == [second["id"]]
    for user in ("nj_buyer", "nj_supplier_admin", "nj_operator"):
        refused = await client.get(
            "/api/v1/orders/approval-queue", headers=await token_for(pool, user)
        )
        assert refused.status_code == 403, user
    foreign = await client.get(
        "/api/v1/orders/approval-queue", headers=await token_for(pool, "zg_agency_admin")
    )
    assert foreign.json()["items"] == []


async def keyed(
    client: AsyncTestClient[Litestar],
    pool: Pool,
    user: str,
    order_id: int,
    action: str,
    key: str,
    body: Any = None,
) -> Any:
    headers = {**await token_for(pool, user), "Idempotency-Key": key}
    return await client.post(f"/api/v1/orders/{order_id}/{action}", json=body, headers=headers)


async def test_lifecycle_calls_are_safe_to_retry(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    order, _, offer = await place(client, pool, "幂等流程", 10)
    line = order["lines"][0]["id"]
    body = {"quantities": {str(line): 8}}
    first = await keyed(client, pool, "nj_supplier_admin", order["id"], "confirm", "c-1", body)
    again = await keyed(client, pool, "nj_supplier_admin", order["id"], "confirm", "c-1", body)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert first.json()["status"] == "partially_confirmed"
    assert await pool.fetchval("select stock from offers where id = $1", offer) == 92
    events = await pool.fetchval(
        "select count(*) from audit_events where action = 'order.partially_confirmed' and entity_id = $1",
        str(order["id"]),
    )
    assert events == 1

    other_body = {"quantities": {str(line): 5}}
    mismatch = await keyed(
        client, pool, "nj_supplier_admin", order["id"], "confirm", "c-1", other_body
    )
    assert mismatch.status_code == 422 and "Idempotency-Key" in mismatch.json()["detail"]
    other_call = await keyed(client, pool, "nj_supplier_admin", order["id"], "ship", "c-1")
    assert other_call.status_code == 422  # one key, one call

    # without a key, a repeated step is an illegal transition; with a fresh key too
    shipped = await keyed(client, pool, "nj_supplier_admin", order["id"], "ship", "s-1")
    assert shipped.status_code == 200
    twice = await keyed(client, pool, "nj_supplier_admin", order["id"], "ship", "s-2")
    assert twice.status_code == 409 and twice.json()["current_state"] == "shipped"
    replay = await keyed(client, pool, "nj_supplier_admin", order["id"], "ship", "s-1")
    assert replay.status_code == 200 and replay.json() == shipped.json()
    # a failed call stores no key: the same key works once the call can succeed
    early = await keyed(client, pool, "nj_buyer", order["id"], "accept", "a-1", {})
    assert early.status_code == 409
    assert (await act(client, pool, "nj_supplier_admin", order["id"], "deliver")).status_code == 200
    accepted = await keyed(client, pool, "nj_buyer", order["id"], "accept", "a-1", {})
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    rating = {"quality": 5, "delivery": 4, "service": 5, "comment": "送货及时"}
    rated = await keyed(client, pool, "nj_buyer", order["id"], "evaluation", "r-1", rating)
    rerated = await keyed(client, pool, "nj_buyer", order["id"], "evaluation", "r-1", rating)
    assert rated.status_code == rerated.status_code == 201 and rated.json() == rerated.json()
    assert (
        await pool.fetchval(
            "select count(*) from order_evaluations where order_id = $1", order["id"]
        )
        == 1
    )
