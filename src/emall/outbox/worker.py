"""The outbox worker (``emall worker``, also run inside ``emall serve``).

It claims batches with ``FOR UPDATE SKIP LOCKED`` (so several workers never take the same
row), wakes on ``LISTEN emall_outbox`` (with a poll as a safety net), retries a failing batch
with exponential backoff, and parks a row with its error after ``max_attempts``.

Each lane of topics (``TopicPolicy.lane``) has its own loop, so a handler waiting on another
server (Meilisearch) never holds up the others. A handler may also hand its rows off instead of
waiting (it returns a ``Handoff``: documents submitted, Meilisearch applies them later): the
rows then stay pending, leased to the worker, while the lane goes on with the next batch, and
are marked processed once the handoff reports them finished (or retried if it fails). PostgreSQL going away costs the worker nothing
but time: a failed pass is logged and retried at the next poll, and the LISTEN connection is
opened again once the server is back (tests/test_drill_pg_restart.py).

Handlers are registered per topic by the features that write outbox rows
(``emall.composition`` assembles them, grouped into named consumers); a topic with no handler is left
pending for a worker that has one. ``consumer_lags`` reports each consumer's lag.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg
import msgspec

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


@dataclass(frozen=True)
class Handoff:
    """What a handler returns when it has handed its rows to another server that finishes them
    later (documents submitted to Meilisearch, whose task runs after the pass).

    The rows stay pending, leased to this worker (their ``available_at`` moves past
    ``within_seconds``, so no other pass claims them), and the lane goes on with its next batch.
    The worker then asks ``done``, oldest handoff of the lane first: True once the work is
    finished (the rows are marked processed), False while it is not yet or cannot be told (the
    server is unreachable). An exception is a failure of the rows, and so is not finishing
    within ``within_seconds``: they are retried with backoff like a failing handler's. If the
    worker stops first, the rows are released for the next worker, and if it dies, the lease
    runs out and they are handled again: a handoff must be safe to repeat.
    """

    done: Callable[[], Awaitable[bool]]
    within_seconds: float = 300.0


Handler = Callable[[Connection, list[OutboxRow]], Awaitable[Handoff | None]]

LEASE_MARGIN_SECONDS = 60.0  # a handed-off row's lease outlasts its handoff's deadline by this
MAX_HANDOFFS_PER_LANE = 500  # beyond this, a lane waits for its oldest handoffs first


@dataclass
class _InFlight:
    lane: str
    topic: str
    rows: list[OutboxRow]
    handoff: Handoff
    deadline: float  # loop time


@dataclass(frozen=True)
class TopicPolicy:
    """How a topic is retried: attempts before a row is parked (None: never park, for work
    that only waits on a component coming back, such as indexing), and the longest backoff.

    ``lane``: the topics of one lane are claimed and handled together, one batch at a time,
    and each lane has its own loop. A topic whose handler needs another server (indexing into
    Meilisearch) gets a lane of its own, so that a slow, hung or restarting server never holds
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
        settle_seconds: float = 0.05,
    ) -> None:
        self.pool = pool
        self.handlers = dict(handlers)
        self.batch_size = batch_size
        self.policies = dict(policies or {})
        self.base_backoff_seconds = base_backoff_seconds
        self.poll_seconds = poll_seconds
        self.settle_seconds = settle_seconds  # how often unfinished handoffs are asked again
        self.lanes: dict[str, list[str]] = {}
        for topic in self.handlers:
            lane = self.policies.get(topic, TopicPolicy()).lane
            self.lanes.setdefault(lane, []).append(topic)
        self._wakes = {lane: asyncio.Event() for lane in self.lanes}
        self._in_flight: dict[str, deque[_InFlight]] = {lane: deque() for lane in self.lanes}
        self._asked: dict[str, float] = dict.fromkeys(self.lanes, 0.0)  # loop time of last ask
        self._listening: PoolConnectionProxy[asyncpg.Record] | None = None
        self._listen_lock = asyncio.Lock()

    async def run_once(self, lane: str | None = None) -> int:
        """Claim one batch (of one lane's topics, or of all) and hand each topic's rows to its
        handler; return the rows claimed.

        When there was nothing to claim, wait instead for the handoffs in flight (of that lane,
        or of all) to settle, and return the rows they settled: so calling it until it returns
        0 leaves nothing pending that it could do, and every handoff finished or failed.
        """
        claimed = await self._claim(lane)
        if claimed:
            return claimed
        return await self._settle(self._lanes_of(lane), wait=True)

    def _lanes_of(self, lane: str | None) -> list[str]:
        return list(self.lanes) if lane is None else [lane]

    async def _claim(self, lane: str | None) -> int:
        topics = list(self.handlers) if lane is None else self.lanes[lane]
        if not topics:
            return 0
        handed: list[_InFlight] = []
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
                policy = self.policies.get(topic, TopicPolicy())
                try:
                    async with (
                        conn.transaction()
                    ):  # a savepoint: a failing handler undoes only itself
                        handoff = await self.handlers[topic](conn, batch)
                except Exception as exc:  # the batch is retried later, or parked
                    log.warning("outbox topic %s failed for %d rows: %r", topic, len(batch), exc)
                    await self._failed(conn, batch, exc, policy)
                    continue
                ids = [r.id for r in batch]
                if handoff is None:
                    await conn.execute(
                        "update outbox set processed_at = now() where id = any($1::bigint[])",
                        ids,
                    )
                    continue
                await conn.execute(  # leased: no pass claims them while the handoff runs
                    """
                    update outbox set available_at = now() + make_interval(secs => $2)
                    where id = any($1::bigint[])
                    """,
                    ids,
                    handoff.within_seconds + LEASE_MARGIN_SECONDS,
                )
                deadline = asyncio.get_running_loop().time() + handoff.within_seconds
                handed.append(_InFlight(policy.lane, topic, batch, handoff, deadline))
        for item in handed:  # committed: from now on the worker answers for them
            self._in_flight.setdefault(item.lane, deque()).append(item)
        return len(rows)

    async def _outcome(self, item: _InFlight) -> Exception | bool | None:
        """True: finished; False: not yet; an exception: failed."""
        try:
            finished = await item.handoff.done()
        except Exception as exc:
            return exc
        if finished:
            return True
        if asyncio.get_running_loop().time() > item.deadline:
            return TimeoutError(f"not finished within {item.handoff.within_seconds:g} s")
        return False

    async def _settle(self, lanes: list[str], *, wait: bool) -> int:
        """Ask the lanes' handoffs, oldest first, whether they finished, and record those that
        did (processed) or failed (retried); returns the rows settled. With ``wait``, asks
        again every ``settle_seconds`` until none is left in flight."""
        settled = 0
        for lane in lanes:
            queue = self._in_flight.get(lane)
            while queue:
                outcomes: list[tuple[_InFlight, Exception | None]] = []
                for item in list(queue):  # a lane's handoffs finish in order: stop at the first
                    outcome = await self._outcome(item)
                    if outcome is False:
                        break
                    outcomes.append((item, None if outcome is True else outcome))
                self._asked[lane] = asyncio.get_running_loop().time()
                if outcomes:
                    try:
                        await self._record(outcomes)
                    except Exception as exc:  # PostgreSQL is away: ask again after a poll
                        log.warning("outbox worker cannot record finished handoffs: %r", exc)
                        self._asked[lane] += self.poll_seconds
                        return settled
                    for _ in outcomes:
                        queue.popleft()
                    settled += sum(len(item.rows) for item, _ in outcomes)
                    continue
                if not wait:
                    break
                await asyncio.sleep(self.settle_seconds)
        return settled

    async def _record(self, outcomes: list[tuple[_InFlight, Exception | None]]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            finished = [r.id for item, error in outcomes if error is None for r in item.rows]
            if finished:
                await conn.execute(
                    """
                    update outbox set processed_at = now()
                    where id = any($1::bigint[]) and processed_at is null
                    """,
                    finished,
                )
            for item, error in outcomes:
                if error is not None:
                    log.warning(
                        "outbox topic %s failed for %d rows: %r", item.topic, len(item.rows), error
                    )
                    policy = self.policies.get(item.topic, TopicPolicy())
                    await self._failed(conn, item.rows, error, policy)

    async def _release(self) -> None:
        """On stopping: settle what has finished, and give the rest of the handed-off rows back
        to the queue at once (the next worker hands them off again) rather than at lease end."""
        with contextlib.suppress(TimeoutError):  # one look: a hung server must not hold us up
            await asyncio.wait_for(self._settle(list(self._in_flight), wait=False), 5.0)
        ids = [r.id for queue in self._in_flight.values() for item in queue for r in item.rows]
        for queue in self._in_flight.values():
            queue.clear()
        if not ids:
            return
        try:
            await self.pool.execute(
                """
                update outbox set available_at = now()
                where id = any($1::bigint[]) and processed_at is null
                """,
                ids,
            )
        except Exception as exc:  # their leases run out instead
            log.warning("outbox worker cannot release %d handed-off rows: %r", len(ids), exc)

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
            where id = any($1::bigint[]) and processed_at is null
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
            try:
                await self._release()
            finally:
                await self._unlisten()

    async def _run_lane(self, lane: str, stop: asyncio.Event) -> None:
        wake = self._wakes[lane]
        in_flight = self._in_flight[lane]
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            await self._listen()
            if len(in_flight) >= MAX_HANDOFFS_PER_LANE:  # far behind: let the server catch up
                await self._settle([lane], wait=True)
            # Cleared before the pass, not after it: a NOTIFY that arrives while the pass runs
            # (its row committed after the claim's snapshot) must wake the next one.
            wake.clear()
            try:
                claimed = await self._claim(lane)
            except CONNECTION_LOST as exc:
                log.warning("outbox worker: the database is unavailable: %r", exc)
                claimed = 0
            except Exception:
                log.exception("outbox worker pass failed (lane %s)", lane)
                claimed = 0
            if in_flight and loop.time() - self._asked[lane] >= self.settle_seconds:
                await self._settle([lane], wait=False)
            if claimed:
                continue
            waiters = {asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())}
            _, pending = await asyncio.wait(
                waiters,
                timeout=self.settle_seconds if in_flight else self.poll_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
            for task in pending:
                task.cancel()


class ConsumerLag(msgspec.Struct, frozen=True):
    """How far one consumer of the outbox is behind: ``lag_seconds`` is the age of its oldest
    row that is due and not yet done (0 when none is), ``pending`` those rows, ``scheduled``
    rows not due yet (a check queued for a later day), ``parked`` rows it gave up on."""

    consumer: str
    topics: list[str]
    lag_seconds: float
    pending: int
    scheduled: int
    parked: int


UNHANDLED = "unhandled"
"""The consumer named for rows whose topic no consumer handles: a defect, shown rather than
summed into another consumer's lag."""

_LAG_BY_TOPIC = """
select topic,
       coalesce(extract(epoch from now() - min(due_at) filter (
           where parked_at is null and due_at <= now())), 0)::float8 as lag_seconds,
       count(*) filter (where parked_at is null and due_at <= now()) as pending,
       count(*) filter (where parked_at is null and due_at > now()) as scheduled,
       count(*) filter (where parked_at is not null) as parked
from outbox
where processed_at is null
group by topic
"""


async def consumer_lags(
    conn: Connection | Pool, consumers: Mapping[str, tuple[str, ...]]
) -> list[ConsumerLag]:
    """Each consumer's lag (``consumers``: name to its topics), in the mapping's order, and an
    ``UNHANDLED`` entry when rows of a topic no consumer handles are waiting."""
    by_topic = {row["topic"]: row for row in await conn.fetch(_LAG_BY_TOPIC)}
    handled = {topic for topics in consumers.values() for topic in topics}
    groups = dict(consumers)
    strays = tuple(sorted(set(by_topic) - handled))
    if strays:
        groups[UNHANDLED] = strays
    lags = []
    for name, topics in groups.items():
        rows = [by_topic[topic] for topic in topics if topic in by_topic]
        lags.append(
            ConsumerLag(
                consumer=name,
                topics=list(topics),
                lag_seconds=max((row["lag_seconds"] for row in rows), default=0.0),
                pending=sum(row["pending"] for row in rows),
                scheduled=sum(row["scheduled"] for row in rows),
                parked=sum(row["parked"] for row in rows),
            )
        )
    return lags


async def outbox_lag_seconds(conn: Connection | Pool) -> float:
    """Age of the oldest row that is due and not done, whatever its topic (0 when none is)."""
    lag = await conn.fetchval(
        """
        select coalesce(extract(epoch from now() - min(due_at)), 0)
        from outbox where processed_at is null and parked_at is null and due_at <= now()
        """
    )
    return float(lag)
