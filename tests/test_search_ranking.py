"""Search ranking a buyer can trust, over HTTP against real Meilisearch and in degraded mode:
goods of the category a query names before services that merely mention it, then the
documented tie-breakers (supplier score, recent orders, price, offer id), never the order in
which offers were added; and every hit shows the minimum order quantity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.app import create_app
from emall.db.pool import Pool
from emall.search.client import create_search_client
from emall.search.index import index_uid
from emall.search.terms import category_terms
from emall.settings import Settings
from tests.helpers import make_settings, token_for
from tests.test_checkout import budget_line, put
from tests.test_listings import offer_body
from tests.test_order_lifecycle import act
from tests.test_order_rules import ACK, accepted_order
from tests.test_search_api import drain

PROJECTORS = "A02020200"  # 投影仪: goods the demo catalogue leaves empty
SCREENS = "A02020300"  # 投影幕: goods the demo catalogue leaves empty
REPAIRS = "C23120200"  # 办公设备维修和保养服务: services


async def offer_of(
    client: AsyncTestClient[Litestar],
    pool: Pool,
    user: str,
    category: str,
    model: str,
    title: str,
    price: int,
    **terms: Any,
) -> int:
    """A listed offer of a new product, made by ``user`` and approved by Neijiang's operator."""
    supplier = await token_for(pool, user)
    service = category.startswith("C")
    product = await client.post(
        "/api/v1/products",
        json={
            "category_code": category,
            "brand": "排序测试",
            "model": model,
            "title": title,
            "unit": "次" if service else "台",
            "specs": (
                {"service_scope": "上门维修", "response_hours": 4, "on_site": True}
                if service
                else {}
            ),
        },
        headers=supplier,
    )
    assert product.status_code == 201, product.text
    body = offer_body(product.json()["id"], f"SKU-{model}", price, stock=100, **terms)
    offer = await client.post("/api/v1/offers", json=body, headers=supplier)
    assert offer.status_code == 201, offer.text
    offer_id = int(offer.json()["id"])
    submitted = await client.post(f"/api/v1/offers/{offer_id}/submit", headers=supplier)
    assert submitted.status_code == 200, submitted.text
    approved = await client.post(
        f"/api/v1/offers/{offer_id}/approve", headers=await token_for(pool, "nj_operator")
    )
    assert approved.status_code == 200, approved.text
    return offer_id


async def _pages(
    client: AsyncTestClient[Litestar], pool: Pool, q: str, pages: int
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for page in range(1, pages + 1):
        response = await client.get(
            "/api/v1/search",
            params={"q": q, "page": page, "page_size": 100},
            headers=await token_for(pool, "nj_buyer"),
        )
        assert response.status_code == 200, response.text
        found.extend(response.json()["hits"])
        if len(found) >= response.json()["total_estimate"]:
            break
    return found


async def hits(
    client: AsyncTestClient[Litestar], pool: Pool, q: str, pages: int = 1
) -> list[dict[str, Any]]:
    """The hits of up to ``pages`` pages of 100."""
    return await _pages(client, pool, q, pages)


async def degraded_hits(
    pool: Pool, database_url: str, tmp_path: Path, q: str, pages: int = 1
) -> list[dict[str, Any]]:
    """The same search answered by PostgreSQL's mirror (Meilisearch unreachable)."""
    down = make_settings(database_url, "http://127.0.0.1:9", "k" * 32, tmp_path)
    async with AsyncTestClient(app=create_app(down)) as degraded:
        found = await _pages(degraded, pool, q, pages)
        check = await degraded.get(
            "/api/v1/search", params={"q": q}, headers=await token_for(pool, "nj_buyer")
        )
    assert check.status_code == 200 and check.json()["degraded"] is True
    return found


def test_category_terms_name_what_goods_are() -> None:
    desktop = category_terms("A02010105", ["台式计算机", "计算机", "信息化设备", "设备"])
    assert desktop[0] == "台式计算机"  # the leaf first, then its synonyms, then the ancestors
    assert {"电脑", "台式机", "台式电脑", "计算机"} <= set(desktop)
    assert desktop.index("台式机") < desktop.index("信息化设备")
    assert "电脑" not in category_terms("A08060300", ["计算机软件", "软件"])  # software is no PC
    assert "茶叶" not in category_terms("A05010000", ["茶几"])  # one character names only itself
    assert category_terms("C23120100", ["计算机设备维修和保养服务", "维修和保养服务"]) == []


async def test_goods_of_the_named_category_rank_before_services_that_mention_it(
    client: AsyncTestClient[Litestar],
    pool: Pool,
    settings: Settings,
    database_url: str,
    tmp_path: Path,
) -> None:
    await drain(pool, settings)
    # services whose titles mention the word first, goods of the category (titles without it) last
    services = [
        await offer_of(
            client,
            pool,
            "nj_supplier_admin",
            REPAIRS,
            f"维修{n}",
            f"投影仪上门维修 单次 {n}",
            30_000,
        )
        for n in range(3)
    ]
    goods = [
        await offer_of(
            client,
            pool,
            "nj_supplier_admin",
            PROJECTORS,
            f"E58{n}",
            f"明基 E58{n} 商务办公",
            300_000,
        )
        for n in range(3)
    ]
    await drain(pool, settings)
    for found in (
        await hits(client, pool, "投影仪"),
        await degraded_hits(pool, database_url, tmp_path, "投影仪"),
    ):
        ids = [h["offer_id"] for h in found]
        assert set(ids) == {*goods, *services}
        assert set(ids[:3]) == set(goods), found
        # equal goods, equal services: the offer id decides, never the insertion order's reverse
        assert ids == [*goods, *services]


async def test_equally_relevant_hits_follow_the_tie_breakers(
    client: AsyncTestClient[Litestar],
    pool: Pool,
    settings: Settings,
    database_url: str,
    tmp_path: Path,
) -> None:
    """Added worst first: a supplier rated 1 with the lowest price, then the other supplier's
    offers, the most ordered last; found best first."""
    await drain(pool, settings)
    title = "会议室电动幕布 120寸"  # the same title: only the category names the query word
    rated = await offer_of(client, pool, "nj_supplier_admin", SCREENS, "M1", title, 50_000)
    dear = await offer_of(client, pool, "nj_s2_admin", SCREENS, "M2", title, 90_000)
    cheaper = await offer_of(client, pool, "nj_s2_admin", SCREENS, "M3", title, 70_000)
    ordered = await offer_of(client, pool, "nj_s2_admin", SCREENS, "M4", title, 90_000)
    await drain(pool, settings)
    # before any order or rating the price decides, then the offer id
    assert [h["offer_id"] for h in await hits(client, pool, "投影幕")] == [
        rated,
        cheaper,
        dear,
        ordered,
    ]

    # a rating of 1 lowers supplier 1's score below the unrated supplier's (300 → 267)
    accepted = await accepted_order(client, pool, "排序评价型号")
    rating = {"quality": 1, "delivery": 1, "service": 1}
    evaluated = await act(client, pool, "nj_buyer", accepted["id"], "evaluation", rating)
    assert evaluated.status_code == 201, evaluated.text
    # an order placed for ``ordered`` (its document is refreshed through order.created)
    buyer = await token_for(pool, "nj_buyer")
    await put(client, buyer, ordered, 1)
    placed = await client.post(
        "/api/v1/checkout",
        json={
            "budget_line_id": await budget_line(pool, 20_000_000, "排序预算"),
            "acknowledge": ACK,
        },
        headers=buyer,
    )
    assert placed.status_code == 201, placed.text
    await drain(pool, settings)
    expected = [ordered, cheaper, dear, rated]
    assert [h["offer_id"] for h in await hits(client, pool, "投影幕")] == expected
    down = await degraded_hits(pool, database_url, tmp_path, "投影幕")
    assert [h["offer_id"] for h in down] == expected

    # the order cancelled: it no longer counts (order.changed), and the offer id breaks the tie
    order_id = placed.json()["orders"][0]["id"]
    cancelled = await act(client, pool, "nj_buyer", order_id, "cancel", {"reason": "不再需要"})
    assert cancelled.status_code == 200, cancelled.text
    await drain(pool, settings)
    assert [h["offer_id"] for h in await hits(client, pool, "投影幕")] == [
        cheaper,
        dear,
        ordered,
        rated,
    ]


async def test_hits_show_the_minimum_order_quantity(
    client: AsyncTestClient[Litestar],
    pool: Pool,
    settings: Settings,
    database_url: str,
    tmp_path: Path,
) -> None:
    await drain(pool, settings)
    offer_id = await offer_of(
        client,
        pool,
        "nj_supplier_admin",
        SCREENS,
        "MOQ5",
        "起订量测试幕布",
        40_000,
        min_order_qty=5,
    )
    await drain(pool, settings)
    live = await hits(client, pool, "起订量测试幕布")
    down = await degraded_hits(pool, database_url, tmp_path, "起订量测试幕布")
    for found in (live, down):
        assert [(h["offer_id"], h["min_order_qty"]) for h in found] == [(offer_id, 5)]
    # what the hit says is what the cart takes: the first attempt succeeds
    buyer = await token_for(pool, "nj_buyer")
    refused = await client.put(
        "/api/v1/cart/items", json={"offer_id": offer_id, "quantity": 4}, headers=buyer
    )
    assert refused.status_code == 422, refused.text
    await put(client, buyer, offer_id, live[0]["min_order_qty"])
    # a document indexed before the minimum was (migration 0013 queues every listed offer for
    # the worker to rebuild) still answers, its minimum unknown rather than a wrong number
    assert settings.search.url is not None
    meili = create_search_client(settings.search.url, settings.search.master_key)
    try:
        index = meili.index(index_uid(settings.search.index_prefix))
        old = dict(await index.get_document(str(offer_id)))
        old.pop("min_order_qty")
        task = await index.add_documents([old])
        await meili.wait_for_task(task.task_uid, timeout_in_ms=30_000)
    finally:
        await meili.aclose()
    before = await hits(client, pool, "起订量测试幕布")
    assert [(h["offer_id"], h["min_order_qty"]) for h in before] == [(offer_id, None)]


# the generic queries over the demo catalogue, and the categories each names
NAMED = {
    "电脑": ("A020101",),  # 计算机 and below, through the synonym
    "台式计算机": ("A02010105",),
    "打印机": ("A0202100",),
    "空调": ("A02061804", "A020523"),
    "复印纸": ("A05040101",),
}


async def test_generic_queries_find_the_named_goods_before_services(
    client: AsyncTestClient[Litestar],
    pool: Pool,
    settings: Settings,
    database_url: str,
    tmp_path: Path,
) -> None:
    await drain(pool, settings)
    for q, prefixes in NAMED.items():
        for found in (
            await hits(client, pool, q, pages=10),
            await degraded_hits(pool, database_url, tmp_path, q, pages=10),
        ):
            kinds = ["named" if h["category_code"].startswith(prefixes) else "" for h in found]
            services = [n for n, h in enumerate(found) if h["category_code"].startswith("C")]
            assert kinds[0] == "named", (q, found[0])
            named = [n for n, kind in enumerate(kinds) if kind]
            assert not services or max(named) < min(services), (q, found)


async def test_goods_before_a_service_of_the_same_relevance(
    client: AsyncTestClient[Litestar],
    pool: Pool,
    settings: Settings,
    database_url: str,
    tmp_path: Path,
) -> None:
    """The same title on a service and on goods: the first tie-breaker puts the goods first,
    though the service was added first and is cheaper."""
    await drain(pool, settings)
    title = "同名排序测试 会议室"
    service = await offer_of(client, pool, "nj_supplier_admin", REPAIRS, "S1", title, 10_000)
    goods = await offer_of(client, pool, "nj_supplier_admin", SCREENS, "G1", title, 90_000)
    await drain(pool, settings)
    assert [h["offer_id"] for h in await hits(client, pool, "同名排序测试")] == [goods, service]
    down = await degraded_hits(pool, database_url, tmp_path, "同名排序测试")
    assert [h["offer_id"] for h in down] == [goods, service]
