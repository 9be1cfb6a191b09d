"""Stage 2 of the search sync against real Meilisearch: the index lane submits documents and does
not wait for the task, yet a row is processed only once Meilisearch applied it, and a task that
fails sends its rows back to the queue, from where the mirror's current documents go again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from meilisearch_python_sdk import AsyncClient

from emall.audit import enqueue
from emall.composition import build_worker
from emall.db.pool import Pool
from emall.outbox.worker import OutboxWorker
from emall.search.client import create_search_client
from emall.search.index import (
    TaskFailed,
    ensure_index,
    index_uid,
    submit,
    task_statuses,
    tasks_finished,
)
from emall.search.sync import INDEX_TOPIC
from emall.settings import Settings


async def _drain(worker: OutboxWorker) -> None:
    while await worker.run_once():
        pass


async def _queue_indexing(pool: Pool, offer_id: int) -> None:
    async with pool.acquire() as conn:
        await enqueue(
            conn,
            topic=INDEX_TOPIC,
            aggregate_type="offers",
            aggregate_id=1,
            payload={"offer_ids": [offer_id]},
        )


async def _some_listed(pool: Pool, n: int) -> list[int]:
    rows = await pool.fetch("select offer_id from offer_search order by offer_id limit $1", n)
    return [r["offer_id"] for r in rows]


async def _indexed(search: AsyncClient, uid: str, ids: list[int]) -> dict[int, dict[str, Any]]:
    found = await search.index(uid).get_documents(ids=[str(i) for i in ids], limit=len(ids))
    return {int(d["id"]): d for d in found.results}


async def test_submit_then_ask_for_the_tasks(settings: Settings) -> None:
    assert settings.search.url is not None
    search = create_search_client(settings.search.url, settings.search.master_key)
    uid = index_uid(settings.search.index_prefix)
    try:
        await ensure_index(search, uid)
        tasks = await submit(search, uid, [{"id": 1, "title": "一"}, {"id": 2, "title": "二"}], [3])
        assert len(tasks) == 2  # the additions, then the deletion
        for _ in range(600):
            if tasks_finished(tasks, await task_statuses(search, tasks)):
                break
            await asyncio.sleep(0.05)
        assert tasks_finished(tasks, await task_statuses(search, tasks))
        # an invalid document id: Meilisearch accepts the request and fails the task
        bad = await submit(search, uid, [{"id": "not a valid id!", "title": "坏"}], [])
        await search.wait_for_task(bad[0], timeout_in_ms=30_000)
        statuses = await task_statuses(search, bad)
        with pytest.raises(TaskFailed, match="failed"):
            tasks_finished(bad, statuses)
        unknown = [bad[0] + 10_000]
        statuses = await task_statuses(search, unknown)
        with pytest.raises(TaskFailed, match="no task"):
            tasks_finished(unknown, statuses)
    finally:
        await search.aclose()


async def test_a_failed_index_task_sends_its_rows_back(pool: Pool, settings: Settings) -> None:
    assert settings.search.url is not None
    search = create_search_client(settings.search.url, settings.search.master_key)
    uid = index_uid(settings.search.index_prefix)
    try:
        worker = build_worker(pool, search, settings)
        await _drain(worker)  # the demo catalogue's backlog: indexed, nothing pending
        pending = await pool.fetchval("select count(*) from outbox where processed_at is null")
        assert pending == 0
        # a failed row's backoff outlasts the next drain however slow the machine is
        worker.base_backoff_seconds = 60.0
        first, second = await _some_listed(pool, 2)
        # the mirror's document of one offer is unacceptable to Meilisearch (its id)
        good = await pool.fetchval("select doc from offer_search where offer_id = $1", first)
        await pool.execute(
            "update offer_search set doc = jsonb_set(doc, '{id}', '\"bad id!\"') "
            "where offer_id = $1",
            first,
        )
        await _queue_indexing(pool, first)
        assert await worker.run_once() == 1  # submitted, not waited for
        row = await pool.fetchrow(
            "select processed_at, attempts from outbox where topic = $1 order by id desc limit 1",
            INDEX_TOPIC,
        )
        assert row["processed_at"] is None and row["attempts"] == 0
        assert await worker.run_once() == 1  # nothing new: it settles the handoff, as failed
        row = await pool.fetchrow(
            "select processed_at, attempts, last_error from outbox where topic = $1 "
            "order by id desc limit 1",
            INDEX_TOPIC,
        )
        assert row["processed_at"] is None and row["attempts"] == 1
        assert "TaskFailed" in row["last_error"]

        # the mirror heals (as a newer change would refresh it), and a price change of another
        # offer is indexed meanwhile: the failed row goes again and takes the current document
        await pool.execute("update offer_search set doc = $2 where offer_id = $1", first, good)
        await pool.execute(
            "update offer_search set doc = jsonb_set(doc, '{price_fen}', '12345') "
            "where offer_id = $1",
            second,
        )
        await _queue_indexing(pool, second)
        await _drain(worker)
        assert await pool.fetchval(
            "select count(*) from outbox where topic = $1 and processed_at is null", INDEX_TOPIC
        )  # the failed row waits out its backoff
        await pool.execute("update outbox set available_at = now() where processed_at is null")
        await _drain(worker)
        assert await pool.fetchval("select count(*) from outbox where processed_at is null") == 0
        indexed = await _indexed(search, uid, [first, second])
        assert indexed[first] == good
        assert indexed[second]["price_fen"] == 12345
    finally:
        await search.aclose()
