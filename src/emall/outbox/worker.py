"""The outbox worker (``emall worker``, also run inside ``emall serve``).

It claims batches with ``FOR UPDATE SKIP LOCKED`` (so several workers never take the same
row), wakes on ``LISTEN emall_outbox`` (with a poll as a safety net), retries a failing batch
with exponential backoff, and parks a row with its error after ``max_attempts``.

Each lane of topics (``TopicPolicy.lane``) has its own loop, so a handler waiting on another
server (Meilisearch) never holds up the others. PostgreSQL going away costs the worker nothing
but time: a failed pass is logged and retried at the next poll, and the LISTEN connection is
opened again once the server is back (tests/test_drill_pg_restart.py).

Handlers are registered per topic by the features that write outbox rows (``emall.outbox.
handlers`` assembles them); a topic with no handler is left pending for a worker that has one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from emall.db.pool import Connection, Pool

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

log = logging.getLogger("emall.outbox")

CHANNEL = "emall_outbox"

# What PostgreSQL going away looks like to asyncpg: no connection, a closed one, or a server
# that is shutting down or still starting.
CONNECTION_LOST = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)


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
    that only waits on a component coming back, such as indexing), and the longest backoff.

    ``lane``: the topics of one lane are claimed and handled together, one batch at a time,
    and each lane has its own loop. A topic whose handler waits on another server (indexing
    into Meilisearch) gets a lane of its own, so that a slow or restarting server never holds
    up the topics that need only PostgreSQL.
    """

    max_attempts: int | None = 8
    max_backoff_seconds: float = 300.0
    lane: str = "main"


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
        self.lanes: dict[str, list[str]] = {}
        for topic in self.handlers:
            lane = self.policies.get(topic, TopicPolicy()).lane
            self.lanes.setdefault(lane, []).append(topic)
        self._wakes = {lane: asyncio.Event() for lane in self.lanes}
        self._listening: PoolConnectionProxy[asyncpg.Record] | None = None
        self._listen_lock = asyncio.Lock()

    async def run_once(self, lane: str | None = None) -> int:
        """Claim one batch (of one lane's topics, or of all) and hand each topic's rows to its
        handler; return the rows claimed."""
        topics = list(self.handlers) if lane is None else self.lanes[lane]
        if not topics:
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
                topics,
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

    def _notified(self, _conn: object, _pid: int, _channel: str, topic: object) -> None:
        """A NOTIFY (its payload is the topic) wakes the lane of that topic."""
        if isinstance(topic, str) and topic in self.handlers:
            self._wakes[self.policies.get(topic, TopicPolicy()).lane].set()

    def _wake_all(self) -> None:
        for wake in self._wakes.values():
            wake.set()

    def _listener_lost(self, *_: object) -> None:
        self._listening = None

    async def _listen(self) -> None:
        """Hold one pooled connection that LISTENs on the outbox channel.

        PostgreSQL going away (a restart, a crash) closes it and asyncpg takes it back; the
        termination listener notices, and the next pass listens again on a fresh connection.
        Until then (and while the server is down) the poll keeps the worker going.
        """
        async with self._listen_lock:  # the lanes share one listener
            if self._listening is None:
                await self._start_listening()

    async def _start_listening(self) -> None:
        try:
            conn = await self.pool.acquire()
        except Exception as exc:
            log.warning("outbox worker cannot listen yet: %r", exc)
            return
        try:
            conn.add_termination_listener(self._listener_lost)
            await conn.add_listener(CHANNEL, self._notified)
        except Exception as exc:
            log.warning("outbox worker cannot listen yet: %r", exc)
            await self.pool.release(conn)
            return
        self._listening = conn
        self._wake_all()  # notifications may have been missed meanwhile: look once now

    async def _unlisten(self) -> None:
        conn, self._listening = self._listening, None
        if conn is None:
            return
        try:
            conn.remove_termination_listener(self._listener_lost)
            await conn.remove_listener(CHANNEL, self._notified)
        except Exception as exc:  # the connection is already gone: nothing to undo
            log.info("outbox listener already closed: %r", exc)
        finally:
            await self.pool.release(conn)

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, one loop per lane. Survives PostgreSQL going away and
        coming back."""
        try:
            if self.lanes:
                await asyncio.gather(*(self._run_lane(lane, stop) for lane in self.lanes))
            else:
                await stop.wait()
        finally:
            await self._unlisten()

    async def _run_lane(self, lane: str, stop: asyncio.Event) -> None:
        wake = self._wakes[lane]
        while not stop.is_set():
            await self._listen()
            try:
                claimed = await self.run_once(lane)
            except CONNECTION_LOST as exc:
                log.warning("outbox worker: the database is unavailable: %r", exc)
                claimed = 0
            except Exception:
                log.exception("outbox worker pass failed (lane %s)", lane)
                claimed = 0
            if claimed:
                continue
            wake.clear()
            waiters = {asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())}
            _, pending = await asyncio.wait(
                waiters, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()


async def outbox_lag_seconds(conn: Connection | Pool) -> float:
    """Age of the oldest pending row (0 when none is pending)."""
    lag = await conn.fetchval(
        """
        select coalesce(extract(epoch from now() - min(created_at)), 0)
        from outbox where processed_at is null and parked_at is null
        """
    )
    return float(lag)
