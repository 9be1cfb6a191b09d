"""Search over HTTP against real Meilisearch: visibility, sync through the outbox, degraded mode."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.app import create_app
from emall.composition import build_worker
from emall.db.pool import Pool
from emall.search.client import create_search_client
from emall.settings import Settings
from tests.helpers import make_settings, org_id, token_for
from tests.test_listings import listed_offer

COMPUTERS = "A02010100"


async def drain(pool: Pool, settings: Settings) -> int:
    """Run the outbox worker until nothing is left to do; returns the rows it handled."""
    assert settings.search.url is not None
    search = create_search_client(settings.search.url, settings.search.master_key)
    try:
        worker = build_worker(pool, search, settings)
        handled = 0
        while claimed := await worker.run_once():
            handled += claimed
        return handled
    finally:
        await search.aclose()


async def expected_count(pool: Pool, region: str, category: str) -> int:
    """Listed offers of a category that an agency in ``region`` may buy and get delivered."""
    return int(
        await pool.fetchval(
            """
            select count(*) from offers o join products p on p.id = o.product_id
            where o.status = 'listed' and $2 = any(category_chain(p.category_code))
              and may_sell(o.supplier_id, $1)
              and exists (select 1 from offer_delivery d where d.offer_id = o.id
                          and d.region_code = any(region_chain($1)))
            """,
            region,
            category,
        )
    )


async def find(
    client: AsyncTestClient[Litestar], pool: Pool, user: str, **params: Any
) -> dict[str, Any]:
    response = await client.get(
        "/api/v1/search", params=params, headers=await token_for(pool, user)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_search_shows_what_the_buyers_region_may_buy(
    client: AsyncTestClient[Litestar], pool: Pool, settings: Settings
) -> None:
    assert await drain(pool, settings) > 0  # the demo catalogue's listings reach the index
    for user, region in (("zg_buyer", "510300"), ("nj_buyer", "511000"), ("cd_buyer", "510100")):
        found = await find(client, pool, user, category=COMPUTERS, page_size=1)
        assert found["total_estimate"] == await expected_count(pool, region, COMPUTERS), user
        assert found["degraded"] is False
    assert (await find(client, pool, "cd_buyer", q="计算机"))["hits"] == []
    facets = (await find(client, pool, "zg_buyer", q="计算机"))["facets"]
    assert set(facets) == {"brand", "category_codes", "policy_tags"}
    assert facets["category_codes"][COMPUTERS] > 0


async def test_chinese_pinyin_and_synonyms(
    client: AsyncTestClient[Litestar], pool: Pool, settings: Settings
) -> None:
    await drain(pool, settings)
    desktop = await find(client, pool, "nj_buyer", q="电脑")  # a synonym of 计算机
    assert any(h["category_code"] == "A02010105" for h in desktop["hits"])
    for q in ("打印机", "dayinji", "dyj"):
        hits = (await find(client, pool, "nj_buyer", q=q))["hits"]
        assert hits and "打印机" in hits[0]["title"], q
    assert "<em>" in (await find(client, pool, "nj_buyer", q="打印机"))["hits"][0]["highlight"]


async def test_sync_after_approve_price_change_delist_and_ban(
    client: AsyncTestClient[Litestar], pool: Pool, settings: Settings
) -> None:
    await drain(pool, settings)
    offer = await listed_offer(client, pool, "同步测试型号X1", price=123_400)
    await drain(pool, settings)
    hits = (await find(client, pool, "zg_buyer", q="同步测试型号X1"))["hits"]
    assert [h["offer_id"] for h in hits] == [offer["id"]] and hits[0]["price_fen"] == 123_400
    supplier = await token_for(pool, "nj_supplier_admin")
    changed = await client.patch(
        f"/api/v1/offers/{offer['id']}",
        json={"price_fen": 120_000},
        headers={**supplier, "If-Match": offer["etag"]},
    )
    assert changed.status_code == 200
    await drain(pool, settings)
    assert (await find(client, pool, "zg_buyer", q="同步测试型号X1"))["hits"][0][
        "price_fen"
    ] == 120_000
    ban = await client.post(
        "/api/v1/bans",
        json={
            "supplier_id": await org_id(pool, "内江川南数码科技有限公司"),
            "region_code": "510300",
            "reason": "同步测试",
        },
        headers=await token_for(pool, "zg_operator"),
    )
    assert ban.status_code == 201
    await drain(pool, settings)
    assert (await find(client, pool, "zg_buyer", q="同步测试型号X1"))["hits"] == []
    assert len((await find(client, pool, "nj_buyer", q="同步测试型号X1"))["hits"]) == 1
    await client.post(
        f"/api/v1/offers/{offer['id']}/delist", json={"reason": "停售"}, headers=supplier
    )
    await drain(pool, settings)
    assert (await find(client, pool, "nj_buyer", q="同步测试型号X1"))["hits"] == []


async def test_two_workers_share_the_queue_without_double_work(
    pool: Pool, settings: Settings
) -> None:
    assert settings.search.url is not None
    seen: list[int] = []
    searches = [
        create_search_client(settings.search.url, settings.search.master_key) for _ in range(2)
    ]
    try:
        workers = [build_worker(pool, s, settings) for s in searches]
        for worker in workers:
            for topic, handler in list(worker.handlers.items()):

                async def recording(conn: Any, rows: list[Any], handler: Any = handler) -> None:
                    seen.extend(r.id for r in rows)
                    await handler(conn, rows)

                worker.handlers[topic] = recording
            worker.batch_size = 20

        async def drain_with(worker: Any) -> None:
            while await worker.run_once():
                await asyncio.sleep(0)

        await asyncio.gather(*(drain_with(w) for w in workers))
    finally:
        for s in searches:
            await s.aclose()
    assert len(seen) == len(set(seen)), "a row was handled twice"
    pending = await pool.fetchval(
        "select count(*) from outbox where processed_at is null and parked_at is null"
    )
    assert pending == 0
    assert set(seen) == {r["id"] for r in await pool.fetch("select id from outbox")}


async def test_degraded_mode_answers_from_postgresql_with_the_same_filters(
    client: AsyncTestClient[Litestar],
    pool: Pool,
    settings: Settings,
    database_url: str,
    tmp_path: Path,
) -> None:
    await drain(pool, settings)
    live = await find(client, pool, "zg_buyer", category=COMPUTERS, sort="price_asc", page_size=5)
    down = make_settings(database_url, "http://127.0.0.1:9", "k" * 32, tmp_path)
    async with AsyncTestClient(app=create_app(down)) as degraded_client:
        response = await degraded_client.get(
            "/api/v1/search",
            params={"category": COMPUTERS, "sort": "price_asc", "page_size": 5},
            headers=await token_for(pool, "zg_buyer"),
        )
        suggest = await degraded_client.get(
            "/api/v1/search/suggest",
            params={"q": "联想"},
            headers=await token_for(pool, "zg_buyer"),
        )
    body = response.json()
    assert body["degraded"] is True
    assert body["total_estimate"] == live["total_estimate"]
    assert [h["offer_id"] for h in body["hits"]] == [h["offer_id"] for h in live["hits"]]
    assert (
        body["facets"]["category_codes"][COMPUTERS] == live["facets"]["category_codes"][COMPUTERS]
    )
    assert suggest.json()["degraded"] is True and suggest.json()["suggestions"]


async def test_bad_parameters_are_400(client: AsyncTestClient[Litestar], pool: Pool) -> None:
    headers = await token_for(pool, "nj_buyer")
    for params, field in (
        ({"q": "长" * 201}, "q"),
        ({"page_size": "1000"}, "page_size"),
        ({"category": "A0201"}, "category"),
        ({"price_min": "-1"}, "price_min"),
        ({"sort": "random"}, "sort"),
        ({"delivery_region": "51100'"}, "delivery_region"),
    ):
        response = await client.get("/api/v1/search", params=params, headers=headers)
        assert response.status_code == 400, params
        assert field in response.json()["errors"][0]["field"]
    injected = await client.get(
        "/api/v1/search", params={"brand": 'x" OR brand != "y'}, headers=headers
    )
    assert injected.status_code == 200 and injected.json()["hits"] == []
    assert (await client.get("/api/v1/search")).status_code == 401


async def test_meilisearch_down_then_back_loses_no_update(
    client: AsyncTestClient[Litestar],
    pool: Pool,
    settings: Settings,
    database_url: str,
    tmp_path: Path,
) -> None:
    from emall.search.index import index_uid, verify

    await drain(pool, settings)
    offer = await listed_offer(client, pool, "断线测试型号", price=99_000)
    # a worker whose Meilisearch is unreachable: the mirror is refreshed, indexing waits
    down = make_settings(database_url, "http://127.0.0.1:9", "k" * 32, tmp_path)
    down = Settings(
        **{
            **{f: getattr(down, f) for f in down.__struct_fields__},
            "search": type(down.search)(
                **{
                    **{f: getattr(down.search, f) for f in down.search.__struct_fields__},
                    "index_prefix": settings.search.index_prefix,
                }
            ),
        }
    )
    await drain(pool, down)
    waiting = await pool.fetchrow(
        "select attempts, parked_at from outbox where topic = 'search.index' and processed_at is null order by id limit 1"
    )
    assert waiting is not None and waiting["attempts"] >= 1 and waiting["parked_at"] is None
    mirrored = await pool.fetchval(
        "select count(*) from offer_search where offer_id = $1", offer["id"]
    )
    assert mirrored == 1  # degraded search already sees it
    # Meilisearch is back: the queue drains once the backoff passes, and nothing is missing
    await pool.execute("update outbox set available_at = now() where processed_at is null")
    await drain(pool, settings)
    assert [
        h["offer_id"] for h in (await find(client, pool, "nj_buyer", q="断线测试型号"))["hits"]
    ] == [offer["id"]]
    assert settings.search.url is not None
    search = create_search_client(settings.search.url, settings.search.master_key)
    try:
        async with pool.acquire() as conn:
            report = await verify(conn, search, index_uid(settings.search.index_prefix), sample=50)
    finally:
        await search.aclose()
    assert report.clean, report


def test_verify_cli_reports_drift_and_repairs(settings: Settings, database_url: str) -> None:
    import os
    import subprocess
    import sys

    from tests.helpers import run_sync

    async def prepare() -> None:
        from emall.db.pool import create_pool

        db_pool = await create_pool(database_url, min_size=1, max_size=2)
        try:
            await drain(db_pool, settings)
        finally:
            await db_pool.close()

    run_sync(prepare)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MEILI_URL": settings.search.url or "",
        "MEILI_MASTER_KEY": settings.search.master_key or "",
        "EMALL_SEARCH_INDEX_PREFIX": settings.search.index_prefix,
        "EMALL_STATE_DIR": str(settings.state_dir),
    }

    def emall(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", "from api.cli import main; main()", "search", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    clean = emall("verify")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "no drift" in clean.stdout

    async def drop_one() -> None:
        from emall.search.index import index_uid

        assert settings.search.url is not None
        search = create_search_client(settings.search.url, settings.search.master_key)
        try:
            task = await search.index(index_uid(settings.search.index_prefix)).delete_document("1")
            await search.wait_for_task(task.task_uid, timeout_in_ms=10_000)
        finally:
            await search.aclose()

    run_sync(drop_one)
    drift = emall("verify")
    assert drift.returncode == 1 and "1 missing" in drift.stdout
    repaired = emall("verify", "--repair")
    assert repaired.returncode == 0 and "no drift" in repaired.stdout


async def test_meilisearch_stopped_degraded_then_restarted_catches_up(
    pool: Pool, database_url: str, tmp_path: Path
) -> None:
    """The drill with a real Meilisearch process: stop it, change the catalogue, search degraded,
    start it again on the same data, and the outbox brings the index back equal to the database."""
    import os
    import socket

    from emall.embedded.meili import resolve_meili_binary, start_meilisearch
    from emall.search.index import index_uid, reindex, verify
    from tests.conftest import STATE

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    binary = resolve_meili_binary(STATE, os.environ.get("MEILI_BIN"))
    db_path = tmp_path / "meili-drill"
    meili = start_meilisearch(tmp_path / "state", binary=binary, db_path=db_path, port=port)
    settings = make_settings(database_url, meili.url, meili.master_key, tmp_path)
    search = create_search_client(meili.url, meili.master_key)
    try:
        async with pool.acquire() as conn:
            await reindex(conn, search, settings.search.index_prefix)
        await drain(pool, settings)
        async with AsyncTestClient(app=create_app(settings)) as api:
            offer = await listed_offer(api, pool, "停机演练型号", price=88_000)
            meili.stop()  # Meilisearch is gone
            await drain(pool, settings)  # the mirror follows; indexing waits
            found = await find(api, pool, "nj_buyer", q="停机演练型号")
            assert found["degraded"] is True and [h["offer_id"] for h in found["hits"]] == [
                offer["id"]
            ]
            meili = start_meilisearch(
                tmp_path / "state",
                binary=binary,
                db_path=db_path,
                port=port,
                master_key=meili.master_key,
            )
            await pool.execute("update outbox set available_at = now() where processed_at is null")
            await drain(pool, settings)
            back = await find(api, pool, "nj_buyer", q="停机演练型号")
            assert back["degraded"] is False and [h["offer_id"] for h in back["hits"]] == [
                offer["id"]
            ]
        async with pool.acquire() as conn:
            report = await verify(conn, search, index_uid(settings.search.index_prefix), sample=100)
        assert report.clean, report
    finally:
        await search.aclose()
        meili.stop()


async def test_the_serving_process_worker_makes_an_approval_searchable(
    pool: Pool, settings: Settings
) -> None:
    """With the worker inside the app (as in ``emall serve``), an approval reaches search on its
    own, woken by NOTIFY. The lag is printed; benchmarks measure it properly."""
    import time

    await drain(pool, settings)  # the demo's backlog first: measure the steady state
    async with AsyncTestClient(app=create_app(settings, run_worker=True)) as api:
        offer = await listed_offer(api, pool, "ZDTB-7781", price=77_000)
        started = time.perf_counter()
        hits: list[Any] = []
        while not hits and time.perf_counter() - started < 30:
            hits = (await find(api, pool, "zg_buyer", q="ZDTB-7781"))["hits"]
            if not hits:
                await asyncio.sleep(0.05)
        print(f"\napproval searchable after {time.perf_counter() - started:.3f} s")
    assert [h["offer_id"] for h in hits] == [offer["id"]]
