"""The outbox worker (``emall worker``, also run inside ``emall serve``).

It claims batches with ``FOR UPDATE SKIP LOCKED`` (so several workers never take the same
row), wakes on ``LISTEN emall_outbox`` (with a poll as a safety net), retries a failing batch
with exponential backoff, and parks a row with its error after ``max_attempts``.

Handlers are registered per topic by the features that write outbox rows (``emall.outbox.
handlers`` assembles them); a topic with no handler is left pending for a worker that has one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from emall.db.pool import Connection, Pool

log = logging.getLogger("emall.outbox")

CHANNEL = "emall_outbox"


@dataclass(frozen=True)
class OutboxRow:
    id: int
    topic: str
    aggregate_type: str
    aggregate_id: str
    payload: Any
    attempts: int
    created_at: datetime


Handler = Callable[[Connection, list[OutboxRow]], Awaitable[None]]


@dataclass(frozen=True)
class TopicPolicy:
    """How a topic is retried: attempts before a row is parked (None: never park, for work
    that only waits on a component coming back, such as indexing), and the longest backoff."""

    max_attempts: int | None = 8
    max_backoff_seconds: float = 300.0


class OutboxWorker:
    def __init__(
        self,
        pool: Pool,
        handlers: Mapping[str, Handler],
        *,
        batch_size: int = 200,
        policies: Mapping[str, TopicPolicy] | None = None,
        base_backoff_seconds: float = 0.5,
        poll_seconds: float = 1.0,
    ) -> None:
        self.pool = pool
        self.handlers = dict(handlers)
        self.batch_size = batch_size
        self.policies = dict(policies or {})
        self.base_backoff_seconds = base_backoff_seconds
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()

    async def run_once(self) -> int:
        """Claim one batch and hand each topic's rows to its handler; return rows claimed."""
        if not self.handlers:
            return 0
        async with self.pool.acquire() as conn, conn.transaction():
            records = await conn.fetch(
                """
                select id, topic, aggregate_type, aggregate_id, payload, attempts, created_at
                from outbox
                where processed_at is null and parked_at is null and available_at <= now()
                  and topic = any($1::text[])
                order by id
                limit $2
                for update skip locked
                """,
                list(self.handlers),
                self.batch_size,
            )
            rows = [OutboxRow(**dict(r)) for r in records]
            by_topic: dict[str, list[OutboxRow]] = {}
            for row in rows:
                by_topic.setdefault(row.topic, []).append(row)
            for topic, batch in by_topic.items():
                try:
                    async with (
                        conn.transaction()
                    ):  # a savepoint: a failing handler undoes only itself
                        await self.handlers[topic](conn, batch)
                except Exception as exc:  # the batch is retried later, or parked
                    log.warning("outbox topic %s failed for %d rows: %r", topic, len(batch), exc)
                    await self._failed(conn, batch, exc, self.policies.get(topic, TopicPolicy()))
                else:
                    await conn.execute(
                        "update outbox set processed_at = now() where id = any($1::bigint[])",
                        [r.id for r in batch],
                    )
            return len(rows)

    async def _failed(
        self, conn: Connection, batch: list[OutboxRow], exc: Exception, policy: TopicPolicy
    ) -> None:
        await conn.execute(
            """
            update outbox set
                attempts = attempts + 1,
                last_error = $2,
                available_at = now() + make_interval(
                    secs => least($3 * power(2, least(attempts, 30)), $5)),
                parked_at = case when attempts + 1 >= $4 then now() end
            where id = any($1::bigint[])
            """,
            [r.id for r in batch],
            repr(exc)[:2000],
            self.base_backoff_seconds,
            policy.max_attempts,
            policy.max_backoff_seconds,
        )

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set."""
        listener = await self.pool.acquire()
        try:
            await listener.add_listener(CHANNEL, self._notified)
            while not stop.is_set():
                try:
                    claimed = await self.run_once()
                except Exception:
                    log.exception("outbox worker pass failed")
                    claimed = 0
                if claimed:
                    continue
                self._wake.clear()
                waiters = {
                    asyncio.ensure_future(self._wake.wait()),
                    asyncio.ensure_future(stop.wait()),
                }
                _, pending = await asyncio.wait(
                    waiters, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED
                )
                for task in pending:
                    task.cancel()
        finally:
            try:
                await listener.remove_listener(CHANNEL, self._notified)
            finally:
                await self.pool.release(listener)


async def outbox_lag_seconds(conn: Connection | Pool) -> float:
    """Age of the oldest pending row (0 when none is pending)."""
    lag = await conn.fetchval(
        """
        select coalesce(extract(epoch from now() - min(created_at)), 0)
        from outbox where processed_at is null and parked_at is null
        """
    )
    return float(lag)
