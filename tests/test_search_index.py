"""The offers index on real Meilisearch 1.21, filled from the demo catalogue."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from meilisearch_python_sdk import AsyncClient
from meilisearch_python_sdk.models.settings import ProximityPrecision

from emall.db.pool import Pool
from emall.search.client import create_search_client
from emall.search.index import (
    RANKING_RULES,
    buyer_filter,
    ensure_index,
    index_uid,
    push,
    reindex,
    settings_match,
    verify,
)
from emall.settings import Settings


@pytest.fixture
async def search(meili: tuple[str, str]) -> AsyncIterator[AsyncClient]:
    client = create_search_client(*meili)
    try:
        yield client
    finally:
        await client.aclose()


async def _hits(client: AsyncClient, uid: str, query: str, **kwargs: Any) -> list[dict[str, Any]]:
    result = await client.index(uid).search(query, limit=1000, **kwargs)
    return list(result.hits)


async def test_ensure_index_applies_settings_once(search: AsyncClient, settings: Settings) -> None:
    uid = index_uid(settings.search.index_prefix)
    assert not await settings_match(search, uid)
    await ensure_index(search, uid)
    assert await settings_match(search, uid)
    tasks = await search.get_tasks(index_ids=[uid])
    await ensure_index(search, uid)
    again = await search.get_tasks(index_ids=[uid])
    assert [t.uid for t in again.results] == [t.uid for t in tasks.results]
    applied = await search.index(uid).get_settings()
    assert applied.synonyms is not None and "计算机" in applied.synonyms["电脑"]
    assert applied.typo_tolerance is not None
    assert applied.typo_tolerance.disable_on_attributes == ["category_codes"]
    assert applied.proximity_precision == ProximityPrecision.BY_ATTRIBUTE
    assert applied.ranking_rules == RANKING_RULES and RANKING_RULES[-1] == "id:asc"
    assert applied.searchable_attributes is not None
    assert applied.searchable_attributes[:2] == ["category_terms", "title"]


async def test_reindex_then_search(pool: Pool, search: AsyncClient, settings: Settings) -> None:
    sent: list[int] = []
    async with pool.acquire() as conn:
        started = time.perf_counter()
        uid = await reindex(conn, search, settings.search.index_prefix, progress=sent.append)
        elapsed = time.perf_counter() - started
    assert uid == index_uid(settings.search.index_prefix)
    assert sent[-1] == 524
    print(f"reindex: {sent[-1]} documents in {elapsed:.2f} s")
    assert (await search.index(uid).get_stats()).number_of_documents == 524
    leftovers = [i.uid for i in await search.get_indexes() or [] if i.uid.startswith(uid + "_")]
    assert leftovers == []

    # Chinese segmentation: 计算机 finds 台式计算机 through category_names
    computers = await _hits(search, uid, "计算机")
    assert {"A02010105", "A02010108"} <= {h["category_code"] for h in computers}
    # synonyms, one way and the other
    pc = {h["id"] for h in await _hits(search, uid, "电脑")}
    assert {h["id"] for h in computers if h["category_code"] == "A02010105"} <= pc
    laptops = await _hits(search, uid, "笔记本")
    assert laptops and all(h["category_code"] == "A02010108" for h in laptops)
    assert {h["id"] for h in await _hits(search, uid, "空调机")} == {
        h["id"] for h in await _hits(search, uid, "空调")
    }
    # pinyin, full and initials
    for query in ("dayinji", "dyj"):
        printers = await _hits(search, uid, query)
        assert printers and all("打印机" in h["title"] for h in printers[:20])
        assert "A02021003" in {h["category_code"] for h in printers}
    # typos: a Latin model number of 8 characters tolerates one; a 4-character word and a
    # category code tolerate none
    exact = {h["id"] for h in await _hits(search, uid, "P2500DNW")}
    assert exact and {h["id"] for h in await _hits(search, uid, "P2500DMW")} == exact
    assert await _hits(search, uid, "CP2205DN")
    assert await _hits(search, uid, "36GW") == []
    assert len(await _hits(search, uid, "A02010105")) > 0
    assert await _hits(search, uid, "A02010106") == []

    async with pool.acquire() as conn:
        chengdu = list(await conn.fetchval("select region_chain('510100')"))
        zigong = list(await conn.fetchval("select region_chain('510300')"))
        expected = {
            r["id"]
            for r in await conn.fetch(
                """
                select o.id from offers o
                where o.status = 'listed' and may_sell(o.supplier_id, '510300')
                  and exists (select 1 from offer_delivery d
                              where d.offer_id = o.id and d.region_code = any($1::text[]))
                """,
                zigong,
            )
        }
        neijiang_suppliers = {
            r["id"]
            for r in await conn.fetch(
                "select id from organisations where kind = 'supplier' and region_code = '511000'"
            )
        }
    assert await _hits(search, uid, "", filter=buyer_filter(chengdu)) == []
    visible = await _hits(search, uid, "", filter=buyer_filter(zigong))
    assert {h["id"] for h in visible} == expected
    assert any(h["supplier_id"] in neijiang_suppliers for h in visible)
    assert all("510300" in h["delivery_regions"] for h in visible)

    facets = await search.index(uid).search(
        "", filter=buyer_filter(zigong), facets=["brand", "category_codes", "policy_tags"]
    )
    distribution = facets.facet_distribution or {}
    assert set(distribution) == {"brand", "category_codes", "policy_tags"}
    assert distribution["category_codes"]["A02000000"] > 0

    sorted_hits = await search.index(uid).search("打印机", sort=["price_fen:asc"], limit=50)
    prices = [h["price_fen"] for h in sorted_hits.hits]
    assert prices == sorted(prices)


async def test_verify_detects_and_repairs_drift(
    pool: Pool, search: AsyncClient, settings: Settings
) -> None:
    async with pool.acquire() as conn:
        uid = await reindex(conn, search, settings.search.index_prefix)
        clean = await verify(conn, search, uid, sample=1000)
        assert clean.clean and clean.db_count == clean.index_count == 524

        ids = [
            r["id"]
            for r in await conn.fetch(
                "select id from offers where status = 'listed' order by id limit 3"
            )
        ]
        deleted, stale, delisted = ids
        task = await search.index(uid).delete_documents([str(deleted)])
        await search.wait_for_task(task.task_uid, raise_for_status=True)
        await conn.execute("update offers set price_fen = price_fen - 1 where id = $1", stale)
        await conn.execute("update offers set status = 'delisted' where id = $1", delisted)

        drift = await verify(conn, search, uid, sample=1000)
        assert drift.missing == [deleted]
        assert drift.extra == [delisted]
        assert drift.stale == [stale]
        assert (drift.db_count, drift.index_count) == (523, 523)

        repaired = await verify(conn, search, uid, sample=1000, repair=True)
        assert repaired.clean and repaired.db_count == repaired.index_count == 523
        doc = await search.index(uid).get_document(str(stale))
        price = await conn.fetchval("select price_fen from offers where id = $1", stale)
        assert doc["price_fen"] == price


async def test_reindex_never_shows_an_empty_index(
    pool: Pool, search: AsyncClient, settings: Settings
) -> None:
    prefix = settings.search.index_prefix
    async with pool.acquire() as conn:
        uid = await reindex(conn, search, prefix)
    done = asyncio.Event()
    counts: list[int] = []

    async def search_loop() -> None:
        while not done.is_set():
            result = await search.index(uid).search("打印机", limit=1)
            counts.append(result.estimated_total_hits or 0)
            await asyncio.sleep(0)

    async def rebuild() -> None:
        try:
            async with pool.acquire() as conn:
                await reindex(conn, search, prefix)
        finally:
            done.set()

    await asyncio.gather(search_loop(), rebuild())
    assert len(counts) > 5
    assert min(counts) > 0


async def test_push_adds_and_deletes(pool: Pool, search: AsyncClient, settings: Settings) -> None:
    uid = index_uid(settings.search.index_prefix)
    await ensure_index(search, uid)
    docs = [{"id": i, "title": f"测试商品 {i}"} for i in range(1, 12_001)]
    await push(search, uid, docs, [])
    assert (await search.index(uid).get_stats()).number_of_documents == 12_000
    await push(search, uid, docs[:1], [2, 3])
    assert (await search.index(uid).get_stats()).number_of_documents == 11_998
