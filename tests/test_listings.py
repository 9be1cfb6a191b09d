"""The listing workflow over HTTP: every transition and refusal, ETags, visibility, audit."""

from __future__ import annotations

import itertools
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from emall.db.pool import Pool
from tests.helpers import org_id, token_for

PC = "A02010104"  # 服务器, a leaf the demo catalogue leaves empty (and without a template)
COMPUTERS = "A02010100"  # 计算机, not a leaf
NJ, ZG = "511000", "510300"
URL = "https://www.ccgp.gov.cn/price/1"


def offer_body(product_id: int, sku: str, price: int = 500_000, **extra: Any) -> dict[str, Any]:
    return {
        "product_id": product_id,
        "supplier_sku": sku,
        "price_fen": price,
        "reference_price_fen": max(600_000, price),
        "reference_source_url": URL,
        "reference_date": "2026-10-01",
        "stock": 10,
        "delivery": [
            {"region_code": NJ, "delivery_days": 2},
            {"region_code": ZG, "delivery_days": 4},
        ],
        "policy_tags": ["sme", "energy_saving"],
        **extra,
    }


async def make_product(
    client: AsyncTestClient[Litestar], headers: dict[str, str], model: str = "开天M90z G1t"
) -> int:
    response = await client.post(
        "/api/v1/products",
        json={
            "category_code": PC,
            "brand": "测试品牌",
            "model": model,
            "title": f"测试品牌 {model} 服务器",
            "unit": "台",
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def listed_offer(
    client: AsyncTestClient[Litestar], pool: Pool, model: str = "开天M90z G1t", price: int = 500_000
) -> dict[str, Any]:
    supplier = await token_for(pool, "nj_supplier_admin")
    product = await make_product(client, supplier, model)
    offer = (
        await client.post(
            "/api/v1/offers", json=offer_body(product, f"SKU-{model}", price), headers=supplier
        )
    ).json()
    assert (
        await client.post(f"/api/v1/offers/{offer['id']}/submit", headers=supplier)
    ).status_code == 200
    approved = await client.post(
        f"/api/v1/offers/{offer['id']}/approve", headers=await token_for(pool, "nj_operator")
    )
    assert approved.status_code == 200, approved.text
    return {**approved.json(), "etag": approved.headers["etag"]}


async def test_products_leaf_only_and_duplicates_proposed(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    supplier = await token_for(pool, "nj_supplier_admin")
    product = await make_product(client, supplier)
    duplicate = await client.post(
        "/api/v1/products",
        json={
            "category_code": PC,
            "brand": " 测试品牌",
            "model": "开天 M90Z  G1T",
            "title": "重复商品",
        },
        headers=supplier,
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["existing_id"] == product
    not_leaf = await client.post(
        "/api/v1/products",
        json={"category_code": COMPUTERS, "brand": "联想", "model": "X", "title": "计算机"},
        headers=supplier,
    )
    assert not_leaf.status_code == 422 and not_leaf.json()["errors"][0]["field"] == "category_code"
    buyer = await client.post(
        "/api/v1/products",
        json={"category_code": PC, "brand": "联想", "model": "Y", "title": "采购人建商品"},
        headers=await token_for(pool, "nj_buyer"),
    )
    assert buyer.status_code == 403
    # any level of the category finds it
    found = await client.get(
        "/api/v1/products",
        params={"category_code": "A02000000", "brand": "测试品牌"},
        headers=supplier,
    )
    assert [p["id"] for p in found.json()["items"]] == [product]


async def test_offer_input_is_checked_field_by_field(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    supplier = await token_for(pool, "nj_supplier_admin")
    product = await make_product(client, supplier)
    above = await client.post(
        "/api/v1/offers",
        json=offer_body(product, "A", price=700_000, reference_price_fen=600_000),
        headers=supplier,
    )
    assert above.status_code == 422 and above.json()["errors"][0]["field"] == "price_fen"
    unknown = offer_body(product, "B", delivery=[{"region_code": "999999", "delivery_days": 2}])
    response = await client.post("/api/v1/offers", json=unknown, headers=supplier)
    assert (
        response.status_code == 422
        and response.json()["errors"][0]["field"] == "delivery[0].region_code"
    )
    negative = await client.post(
        "/api/v1/offers", json=offer_body(product, "C", stock=-1), headers=supplier
    )
    assert negative.status_code == 400 and negative.json()["errors"][0]["field"] == "stock"
    huge = await client.post(
        "/api/v1/offers", json=offer_body(product, "D", price=2**63), headers=supplier
    )
    assert huge.status_code == 400
    created = await client.post("/api/v1/offers", json=offer_body(product, "E"), headers=supplier)
    assert created.status_code == 201 and created.json()["status"] == "draft"
    again = await client.post("/api/v1/offers", json=offer_body(product, "F"), headers=supplier)
    assert again.status_code == 409 and again.json()["existing_id"] == created.json()["id"]


async def test_the_whole_workflow_and_every_refusal(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    supplier = await token_for(pool, "nj_supplier_staff")
    operator = await token_for(pool, "nj_operator")
    product = await make_product(client, await token_for(pool, "nj_supplier_admin"))
    offer = (
        await client.post("/api/v1/offers", json=offer_body(product, "W-1"), headers=supplier)
    ).json()
    url = f"/api/v1/offers/{offer['id']}"

    async def act(action: str, headers: dict[str, str], reason: str | None = None) -> Any:
        return await client.post(
            f"{url}/{action}", json={"reason": reason} if reason else None, headers=headers
        )

    # draft: only submit is legal
    for action, who in (("approve", operator), ("reject", operator), ("delist", supplier)):
        response = await act(action, who, "原因说明")
        assert response.status_code == 409 and response.json()["current_state"] == "draft", action
    submitted = await act("submit", supplier)
    assert (
        submitted.json()["status"] == "submitted" and submitted.json()["review_region_code"] == NJ
    )
    assert (await act("submit", supplier)).json()["current_state"] == "submitted"
    # review: the admitting region's operator only
    assert (await act("approve", await token_for(pool, "zg_operator"))).status_code == 404
    assert (await act("approve", await token_for(pool, "nj_auditor"))).status_code == 403
    assert (await act("approve", supplier)).status_code == 403
    no_reason = await client.post(f"{url}/reject", json={}, headers=operator)
    assert no_reason.status_code == 400 and no_reason.json()["errors"][0]["field"] == "reason"
    rejected = await act("reject", operator, "参考价来源无效")
    assert (
        rejected.json()["status"] == "rejected"
        and rejected.json()["status_reason"] == "参考价来源无效"
    )
    assert (await act("approve", operator)).json()["current_state"] == "rejected"
    assert (await act("submit", supplier)).json()["status"] == "submitted"
    listed = await act("approve", operator)
    assert listed.status_code == 200 and listed.json()["status"] == "listed"
    assert (await act("approve", operator)).json()["current_state"] == "listed"
    delisted = await act("delist", operator, "价格异常")
    assert (
        delisted.json()["status"] == "delisted" and delisted.json()["status_reason"] == "价格异常"
    )
    assert (await act("delist", supplier, "再次下架")).json()["current_state"] == "delisted"
    relisting = await act("submit", supplier)
    assert relisting.json()["status"] == "submitted"  # relisting goes through review again
    assert (await act("approve", operator)).json()["status"] == "listed"
    by_supplier = await act("delist", supplier, "停产")
    assert by_supplier.json()["status"] == "delisted"
    outbox = await pool.fetch(
        "select payload->>'status' as status from outbox where topic = 'offer.changed' and aggregate_id = $1 order by id",
        str(offer["id"]),
    )
    assert [r["status"] for r in outbox] == ["listed", "delisted", "listed", "delisted"]


async def test_only_admitted_unbanned_suppliers_submit(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    supplier = await token_for(pool, "nj_supplier_admin")
    product = await make_product(client, supplier)
    offer = (
        await client.post("/api/v1/offers", json=offer_body(product, "B-1"), headers=supplier)
    ).json()
    supplier_id = await org_id(pool, "内江川南数码科技有限公司")
    await pool.execute(
        "insert into bans (supplier_id, region_code, reason) values ($1, $2, '暂停')",
        supplier_id,
        NJ,
    )
    banned = await client.post(f"/api/v1/offers/{offer['id']}/submit", headers=supplier)
    assert banned.status_code == 403
    await pool.execute("update bans set lifted_at = now() where supplier_id = $1", supplier_id)
    await pool.execute(
        "update admissions set status = 'revoked', revoke_reason = 'x' where supplier_id = $1",
        supplier_id,
    )
    not_admitted = await client.post(f"/api/v1/offers/{offer['id']}/submit", headers=supplier)
    assert not_admitted.status_code == 403
    assert "not admitted" in not_admitted.json()["detail"]


async def test_visibility_follows_partnership_and_delivery(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    offer = await listed_offer(client, pool)
    url = f"/api/v1/offers/{offer['id']}"
    assert (await client.get(url, headers=await token_for(pool, "nj_buyer"))).status_code == 200
    assert (
        await client.get(url, headers=await token_for(pool, "zg_buyer"))
    ).status_code == 200  # recognised
    assert (
        await client.get(url, headers=await token_for(pool, "cd_buyer"))
    ).status_code == 404  # no partnership
    listed_for_zg = await client.get(
        "/api/v1/offers", params={"category_code": PC}, headers=await token_for(pool, "zg_buyer")
    )
    assert offer["id"] in [o["id"] for o in listed_for_zg.json()["items"]]
    assert all(o["status"] == "listed" for o in listed_for_zg.json()["items"])
    # stop delivering to Zigong: Zigong's buyers no longer see it
    supplier = await token_for(pool, "nj_supplier_admin")
    changed = await client.patch(
        url,
        json={"delivery": [{"region_code": NJ, "delivery_days": 1}]},
        headers={**supplier, "If-Match": offer["etag"]},
    )
    assert changed.status_code == 200, changed.text
    assert (await client.get(url, headers=await token_for(pool, "zg_buyer"))).status_code == 404
    # a draft is the supplier's own business
    product = await make_product(client, supplier, "启天M437")
    draft = (
        await client.post("/api/v1/offers", json=offer_body(product, "D-1"), headers=supplier)
    ).json()
    assert (
        await client.get(f"/api/v1/offers/{draft['id']}", headers=await token_for(pool, "nj_buyer"))
    ).status_code == 404
    assert (
        await client.get(
            f"/api/v1/offers/{draft['id']}", headers=await token_for(pool, "nj_auditor")
        )
    ).status_code == 200
    other_supplier = await client.get(
        f"/api/v1/offers/{draft['id']}", headers=await token_for(pool, "zg_supplier_admin")
    )
    assert other_supplier.status_code == 404


async def test_etag_and_if_match(client: AsyncTestClient[Litestar], pool: Pool) -> None:
    offer = await listed_offer(client, pool)
    url = f"/api/v1/offers/{offer['id']}"
    supplier = await token_for(pool, "nj_supplier_admin")
    missing = await client.patch(url, json={"stock": 5}, headers=supplier)
    assert missing.status_code == 428
    first = await client.patch(
        url, json={"stock": 5}, headers={**supplier, "If-Match": offer["etag"]}
    )
    assert first.status_code == 200 and first.json()["stock"] == 5
    assert first.headers["etag"] != offer["etag"]
    stale = await client.patch(
        url, json={"stock": 7}, headers={**supplier, "If-Match": offer["etag"]}
    )
    assert stale.status_code == 412
    assert stale.json()["current_etag"] == first.headers["etag"]
    assert (await client.get(url, headers=supplier)).json()["stock"] == 5
    fresh = await client.get(url, headers=supplier)
    ok = await client.patch(
        url, json={"stock": 7}, headers={**supplier, "If-Match": fresh.headers["etag"]}
    )
    assert ok.status_code == 200 and ok.json()["stock"] == 7
    operator = await client.patch(
        url,
        json={"stock": 1},
        headers={**await token_for(pool, "nj_operator"), "If-Match": ok.headers["etag"]},
    )
    assert operator.status_code == 403


async def test_price_rise_rule_and_history(client: AsyncTestClient[Litestar], pool: Pool) -> None:
    offer = await listed_offer(client, pool, price=400_000)
    url = f"/api/v1/offers/{offer['id']}"
    supplier = await token_for(pool, "nj_supplier_admin")
    etag = offer["etag"]
    for price in (380_000, 418_000):  # 418,000 is exactly 10% above the lowest (380,000): allowed
        response = await client.patch(
            url, json={"price_fen": price}, headers={**supplier, "If-Match": etag}
        )
        assert response.json()["status"] == "listed", price
        etag = response.headers["etag"]
    rise = await client.patch(
        url, json={"price_fen": 418_001}, headers={**supplier, "If-Match": etag}
    )
    assert rise.json()["status"] == "submitted"
    assert "price rise" in rise.json()["status_reason"]
    history = await client.get(f"{url}/price-history", headers=supplier)
    assert [p["price_fen"] for p in history.json()] == [400_000, 380_000, 418_000, 418_001]
    assert (
        await client.get(f"{url}/price-history", headers=await token_for(pool, "nj_buyer"))
    ).status_code == 404


async def test_region_rule_changes_the_allowed_rise(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    zg = await client.put(
        f"/api/v1/prices/rules/{NJ}",
        json={"max_rise_bp": 2000},
        headers=await token_for(pool, "zg_operator"),
    )
    assert zg.status_code == 403
    rule = await client.put(
        f"/api/v1/prices/rules/{NJ}",
        json={"max_rise_bp": 2000, "rise_window_days": 30, "flag_factor_bp": 15000},
        headers=await token_for(pool, "nj_operator"),
    )
    assert rule.status_code == 200 and rule.json()["defined_in"] == NJ
    county = await client.get(
        "/api/v1/prices/rules/511002", headers=await token_for(pool, "nj_buyer")
    )
    assert county.json()["max_rise_bp"] == 2000 and county.json()["defined_in"] == NJ
    default = await client.get(
        f"/api/v1/prices/rules/{ZG}", headers=await token_for(pool, "nj_buyer")
    )
    assert default.json()["max_rise_bp"] == 1000 and default.json()["defined_in"] is None
    offer = await listed_offer(client, pool, price=100_000)
    supplier = await token_for(pool, "nj_supplier_admin")
    rise = await client.patch(
        f"/api/v1/offers/{offer['id']}",
        json={"price_fen": 115_000},
        headers={**supplier, "If-Match": offer["etag"]},
    )
    assert rise.json()["status"] == "listed"


async def test_audit_trail_reads_back_every_change(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    offer = await listed_offer(client, pool)
    url = f"/api/v1/offers/{offer['id']}"
    supplier = await token_for(pool, "nj_supplier_admin")
    changed = await client.patch(
        url,
        json={"stock": 3, "warranty_months": 36},
        headers={**supplier, "If-Match": offer["etag"]},
    )
    delisted = await client.post(f"{url}/delist", json={"reason": "停产"}, headers=supplier)
    trail = (await client.get(f"{url}/audit", headers=await token_for(pool, "nj_auditor"))).json()
    assert [e["action"] for e in trail] == [
        "offer.created",
        "offer.submitted",
        "offer.listed",
        "offer.updated",
        "offer.delisted",
    ]
    supplier_org = await org_id(pool, "内江川南数码科技有限公司")
    assert [e["actor_organisation_id"] == supplier_org for e in trail] == [
        True,
        True,
        False,
        True,
        True,
    ]
    # each event's before is the previous event's after: the trail is the exact sequence
    for previous, event in itertools.pairwise(trail):
        assert event["before"] == previous["after"]
    assert trail[3]["before"]["stock"] == 10 and trail[3]["after"]["stock"] == 3
    assert trail[-1]["after"] == delisted.json() and trail[3]["after"] == changed.json()
    assert (
        await client.get(f"{url}/audit", headers=await token_for(pool, "zg_supplier_admin"))
    ).status_code == 404


async def submitted_offers(
    client: AsyncTestClient[Litestar], pool: Pool, count: int, prefix: str
) -> list[int]:
    """``count`` offers of the Neijiang supplier, each submitted for review."""
    supplier = await token_for(pool, "nj_supplier_admin")
    ids: list[int] = []
    for i in range(count):
        product = await make_product(client, supplier, f"{prefix} {i}")
        created = await client.post(
            "/api/v1/offers", json=offer_body(product, f"{prefix}-{i}"), headers=supplier
        )
        assert created.status_code == 201, created.text
        offer_id = int(created.json()["id"])
        submitted = await client.post(f"/api/v1/offers/{offer_id}/submit", headers=supplier)
        assert submitted.status_code == 200, submitted.text
        ids.append(offer_id)
    return ids


async def test_an_operator_reviews_many_offers_in_one_call(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    """One call approves or rejects many submitted offers, each decided on its own: an offer in
    another state is refused as wrong_state, one the operator may not see as not_found (the
    same answer as for no offer at all); the reviewed ones get the single review's audit events
    and outbox rows; a retry with the Idempotency-Key answers the first result."""
    operator = await token_for(pool, "nj_operator")
    first, second, third = await submitted_offers(client, pool, 3, "批审")
    supplier = await token_for(pool, "nj_supplier_admin")
    draft = (
        await client.post(
            "/api/v1/offers",
            json=offer_body(await make_product(client, supplier, "批审 草稿"), "批审-草稿"),
            headers=supplier,
        )
    ).json()["id"]
    missing = 999_999_999
    last_event = await pool.fetchval("select coalesce(max(id), 0) from audit_events")
    last_outbox = await pool.fetchval("select coalesce(max(id), 0) from outbox")

    # another region's operator sees none of them: each is not_found, like no offer at all
    foreign = await client.post(
        "/api/v1/offers/review",
        json={"offer_ids": [first, missing], "decision": "approve"},
        headers=await token_for(pool, "zg_operator"),
    )
    assert foreign.status_code == 200, foreign.text
    hidden, absent = foreign.json()["results"]
    assert (hidden["refusal"], absent["refusal"]) == ("not_found", "not_found")
    assert hidden["message"].replace(str(first), "ID") == absent["message"].replace(
        str(missing), "ID"
    )

    body = {"offer_ids": [first, second, draft, missing, first], "decision": "approve"}
    key = {**operator, "Idempotency-Key": "review-batch-1"}
    answer = await client.post("/api/v1/offers/review", json=body, headers=key)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["decision"], result["reviewed"], result["refused"]) == ("approve", 2, 2)
    assert [
        (r["offer_id"], r["result"], r["status"], r["refusal"], r["current_state"])
        for r in result["results"]
    ] == [
        (first, "reviewed", "listed", None, None),
        (second, "reviewed", "listed", None, None),
        (draft, "refused", None, "wrong_state", "draft"),
        (missing, "refused", None, "not_found", None),
    ]
    for offer_id in (first, second):
        offer = (await client.get(f"/api/v1/offers/{offer_id}", headers=operator)).json()
        assert (offer["status"], offer["version"]) == ("listed", result["results"][0]["version"])
        assert offer["listed_at"] is not None and offer["reviewed_at"] is not None
    events = await pool.fetch(
        "select action, entity_id, before->>'status' as before, after->>'status' as after "
        "from audit_events where id > $1 and entity_type = 'offer' order by id",
        last_event,
    )
    assert [tuple(e) for e in events] == [
        ("offer.listed", str(first), "submitted", "listed"),
        ("offer.listed", str(second), "submitted", "listed"),
    ]
    outbox = await pool.fetch(
        "select aggregate_id, payload->>'status' as status from outbox "
        "where id > $1 and topic = 'offer.changed' order by id",
        last_outbox,
    )
    assert [tuple(r) for r in outbox] == [(str(first), "listed"), (str(second), "listed")]

    # the same key and body: the first answer, nothing written again
    replay = await client.post("/api/v1/offers/review", json=body, headers=key)
    assert replay.status_code == 200
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == result
    again = await client.post("/api/v1/offers/review", json=body, headers=operator)
    assert [r["refusal"] for r in again.json()["results"]][:2] == ["wrong_state"] * 2
    assert again.json()["results"][0]["current_state"] == "listed"
    assert await pool.fetchval(
        "select count(*) from audit_events where id > $1 and entity_type = 'offer'", last_event
    ) == len(events)

    # rejecting needs a reason, and stores it
    no_reason = await client.post(
        "/api/v1/offers/review", json={"offer_ids": [third], "decision": "reject"}, headers=operator
    )
    assert no_reason.status_code == 422, no_reason.text
    assert [e["field"] for e in no_reason.json()["errors"]] == ["reason"]
    rejected = await client.post(
        "/api/v1/offers/review",
        json={"offer_ids": [third], "decision": "reject", "reason": "参考价来源无效"},
        headers=operator,
    )
    assert rejected.json()["results"][0]["status"] == "rejected"
    offer = (await client.get(f"/api/v1/offers/{third}", headers=operator)).json()
    assert (offer["status"], offer["status_reason"]) == ("rejected", "参考价来源无效")

    # who may call, and how many ids
    for username in ("nj_supplier_admin", "nj_auditor"):
        refused = await client.post(
            "/api/v1/offers/review",
            json={"offer_ids": [third], "decision": "approve"},
            headers=await token_for(pool, username),
        )
        assert refused.status_code == 403, (username, refused.text)
    too_many = await client.post(
        "/api/v1/offers/review",
        json={"offer_ids": list(range(1, 1_002)), "decision": "approve"},
        headers=operator,
    )
    assert too_many.status_code == 400
    assert [e["field"] for e in too_many.json()["errors"]] == ["offer_ids"]
