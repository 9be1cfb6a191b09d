"""The outbox worker: retries with backoff, parks poison rows, wakes on NOTIFY, and settles
handoffs (rows whose work another server finishes later) without holding up the lane."""

from __future__ import annotations

import asyncio
from typing import Any

from emall.audit import enqueue
from emall.db.pool import Connection, Pool
from emall.outbox.worker import (
    Handoff,
    OutboxRow,
    OutboxWorker,
    TopicPolicy,
    outbox_lag_seconds,
)


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


class _Remote:
    """A stand-in for a server that finishes handed-off work later (Meilisearch's tasks)."""

    def __init__(self) -> None:
        self.batches: list[list[Any]] = []
        self.finished = 0  # batches finished so far, in order
        self.failing = False

    async def handler(self, conn: Connection, rows: list[OutboxRow]) -> Handoff:
        self.batches.append([r.payload["i"] for r in rows])
        number = len(self.batches)

        async def done() -> bool:
            if self.failing:
                raise RuntimeError("task failed")
            return self.finished >= number

        return Handoff(done, within_seconds=60)


async def _pending(pool: Pool, topic: str) -> list[Any]:
    return list(
        await pool.fetch(
            "select id, attempts, last_error, available_at > now() as leased from outbox "
            "where topic = $1 and processed_at is null order by id",
            topic,
        )
    )


async def test_a_handed_off_batch_stays_pending_until_it_is_done(pool: Pool) -> None:
    await pool.execute("update outbox set processed_at = now()")
    remote = _Remote()
    worker = OutboxWorker(pool, {"test.handoff": remote.handler}, settle_seconds=0.01)
    await _add(pool, "test.handoff", 2)
    assert await worker._claim(None) == 2  # handed off: the worker does not wait
    pending = await _pending(pool, "test.handoff")
    assert len(pending) == 2 and all(r["leased"] for r in pending)
    assert await worker._claim(None) == 0  # leased rows are not claimed again
    assert await worker._settle(list(worker.lanes), wait=False) == 0  # not done yet
    assert await outbox_lag_seconds(pool) > 0
    remote.finished = 1
    assert await worker.run_once() == 2  # nothing to claim: settles the handoff
    assert await _pending(pool, "test.handoff") == []
    assert await worker.run_once() == 0
    assert remote.batches == [[0, 1]]  # each row handed to the handler once


async def test_a_failed_handoff_is_retried_with_backoff(pool: Pool) -> None:
    await pool.execute("update outbox set processed_at = now()")
    remote = _Remote()
    remote.failing = True
    worker = OutboxWorker(
        pool,
        {"test.handoff": remote.handler},
        policies={"test.handoff": TopicPolicy(max_attempts=None)},
    )
    await _add(pool, "test.handoff")
    assert await worker.run_once() == 1
    assert await worker.run_once() == 1  # settled: as failed
    [row] = await _pending(pool, "test.handoff")
    assert row["attempts"] == 1 and "task failed" in row["last_error"] and row["leased"]
    remote.failing = False
    remote.finished = 2
    await pool.execute("update outbox set available_at = now() where topic = 'test.handoff'")
    while await worker.run_once():
        pass
    assert remote.batches == [[0], [0]]  # handed off again after the failure
    assert await _pending(pool, "test.handoff") == []


async def test_a_handoff_not_done_in_time_counts_as_failed(pool: Pool) -> None:
    await pool.execute("update outbox set processed_at = now()")

    async def never(conn: Connection, rows: list[OutboxRow]) -> Handoff:
        async def done() -> bool:
            return False

        return Handoff(done, within_seconds=0.05)

    worker = OutboxWorker(
        pool,
        {"test.slow": never},
        policies={"test.slow": TopicPolicy(max_attempts=None)},
        settle_seconds=0.01,
    )
    await _add(pool, "test.slow")
    assert await worker.run_once() == 1
    assert await worker.run_once() == 1  # waits out the deadline, then fails the rows
    [row] = await _pending(pool, "test.slow")
    assert row["attempts"] == 1 and "TimeoutError" in row["last_error"]


async def test_the_lane_goes_on_while_a_handoff_runs_and_stopping_releases_it(
    pool: Pool,
) -> None:
    await pool.execute("update outbox set processed_at = now()")
    remote = _Remote()
    handled = asyncio.Event()

    async def handler(conn: Connection, rows: list[OutboxRow]) -> Handoff:
        handoff = await remote.handler(conn, rows)
        handled.set()
        return handoff

    worker = OutboxWorker(pool, {"test.handoff": handler}, poll_seconds=3600)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        for i in range(3):  # each batch is claimed while the ones before are still running
            handled.clear()
            await _add(pool, "test.handoff")
            await asyncio.wait_for(handled.wait(), timeout=30)
            assert len(remote.batches) == i + 1
        remote.finished = 2  # the first two are done, the third not yet

        async def settled() -> bool:
            return len(await _pending(pool, "test.handoff")) == 1

        for _ in range(600):
            if await settled():
                break
            await asyncio.sleep(0.05)
        assert await settled()
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
    # stopped: the third row is back in the queue at once, for the next worker
    [row] = await _pending(pool, "test.handoff")
    assert not row["leased"] and row["attempts"] == 0
