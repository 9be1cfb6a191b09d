"""The outbox worker: retries with backoff, parks poison rows, wakes on NOTIFY."""

from __future__ import annotations

import asyncio
from typing import Any

from emall.audit import enqueue
from emall.db.pool import Connection, Pool
from emall.outbox.worker import OutboxRow, OutboxWorker, TopicPolicy, outbox_lag_seconds


async def _add(pool: Pool, topic: str, n: int = 1) -> None:
    async with pool.acquire() as conn, conn.transaction():
        for i in range(n):
            await enqueue(
                conn, topic=topic, aggregate_type="test", aggregate_id=i, payload={"i": i}
            )


async def test_a_failing_row_is_retried_with_backoff_then_parked(pool: Pool) -> None:
    await pool.execute("update outbox set processed_at = now()")  # only this test's rows matter
    await _add(pool, "test.poison")

    async def always_fails(conn: Connection, rows: list[OutboxRow]) -> None:
        raise ValueError("bad row")

    worker = OutboxWorker(
        pool, {"test.poison": always_fails}, policies={"test.poison": TopicPolicy(max_attempts=3)}
    )
    delays = []
    for attempt in range(1, 4):
        assert await worker.run_once() == 1
        row = await pool.fetchrow(
            "select attempts, last_error, parked_at, extract(epoch from available_at - now()) as wait "
            "from outbox where topic = 'test.poison'"
        )
        assert row["attempts"] == attempt and "bad row" in row["last_error"]
        delays.append(row["wait"])
        if attempt < 3:
            assert row["parked_at"] is None
            await pool.execute("update outbox set available_at = now() where topic = 'test.poison'")
    assert delays[0] < delays[1]  # backoff grows
    assert row["parked_at"] is not None  # parked with its error after the last attempt
    assert await worker.run_once() == 0  # a parked row is never claimed again


async def test_a_row_of_a_never_parking_topic_keeps_waiting(pool: Pool) -> None:
    await _add(pool, "test.waits")

    async def down(conn: Connection, rows: list[OutboxRow]) -> None:
        raise ConnectionError("index down")

    worker = OutboxWorker(
        pool,
        {"test.waits": down},
        policies={"test.waits": TopicPolicy(max_attempts=None, max_backoff_seconds=2)},
    )
    for _ in range(12):
        await worker.run_once()
        await pool.execute("update outbox set available_at = now() where topic = 'test.waits'")
    row = await pool.fetchrow("select attempts, parked_at from outbox where topic = 'test.waits'")
    assert row["attempts"] == 12 and row["parked_at"] is None
    assert await outbox_lag_seconds(pool) > 0


async def test_the_worker_wakes_on_notify_and_stops_cleanly(pool: Pool) -> None:
    await pool.execute("update outbox set processed_at = now()")
    handled = asyncio.Event()
    seen: list[Any] = []

    async def handler(conn: Connection, rows: list[OutboxRow]) -> None:
        seen.extend(r.payload for r in rows)
        handled.set()

    # a long poll: only the NOTIFY can wake the worker in time
    worker = OutboxWorker(pool, {"test.wake": handler}, poll_seconds=3600)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.sleep(0.2)  # the worker is now waiting
    await _add(pool, "test.wake")
    await asyncio.wait_for(handled.wait(), timeout=30)
    stop.set()
    await asyncio.wait_for(task, timeout=30)
    assert seen == [{"i": 0}]
    assert await outbox_lag_seconds(pool) == 0
