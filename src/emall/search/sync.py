"""Keeping search in step with PostgreSQL, through the outbox.

Two stages, so that PostgreSQL's mirror is current even while Meilisearch is down:

1. ``offer.changed``, ``visibility.changed`` and ``supplier.changed`` rows name offers (directly,
   through their supplier, or through a partnership's member regions). The handler refreshes
   their rows in ``offer_search`` — in the transaction that claims the outbox rows — and queues
   one ``search.index`` row naming them. ``order.created`` and the ``order.changed`` steps that
   end an order early (rejected, cancelled) or return part of it (partially confirmed) name the
   offers of the order's lines: their ``recent_orders`` and ``sales_count`` changed.
2. ``search.index`` submits those offers' documents (read from the mirror) to Meilisearch and
   hands the rows off (``emall.outbox.worker.Handoff``) rather than wait for the indexing task:
   the index lane goes straight on with the next batch, so changes never queue behind a task in
   flight, while Meilisearch applies tasks in the order they were submitted. A row is marked
   processed only once its tasks have succeeded; a task that failed, was canceled or was lost
   (or is not done within ``TASK_TIMEOUT_MS``) sends its rows back to the queue, and submitting
   them again sends the mirror's current documents, never older ones than any sent since. While
   Meilisearch is unreachable, submitting fails and is retried with capped backoff and never
   parked, so nothing is lost; when it comes back the queue drains.

Submissions are serialised across workers (a transaction-scoped advisory lock around reading the
mirror and submitting), so that one worker's older read never reaches Meilisearch after
another's newer one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from meilisearch_python_sdk import AsyncClient

from emall.audit import enqueue
from emall.db.pool import Connection
from emall.ordering.events import ORDER_CHANGED, ORDER_CREATED
from emall.outbox.worker import Handler, Handoff, OutboxRow, TopicPolicy
from emall.search import index
from emall.search.documents import offers_of_supplier, refresh_mirror

log = logging.getLogger("emall.search")

CHANGE_TOPICS = ("offer.changed", "visibility.changed", "supplier.changed")
ORDER_TOPICS = (ORDER_CREATED, ORDER_CHANGED)
# the order steps after which an offer's document differs (recent_orders, sales_count)
_RECOUNTING_STEPS = frozenset({"rejected", "cancelled", "partially_confirmed"})
INDEX_TOPIC = "search.index"
# pg_advisory_xact_lock key of the index push: "emallix" in ASCII
PUSH_LOCK_KEY = 0x656D616C6C6978
# Indexing needs Meilisearch: its own lane, so the mirror (stage 1) keeps up while it is down.
POLICIES = {
    INDEX_TOPIC: TopicPolicy(max_attempts=None, max_backoff_seconds=5.0, lane="search-index")
}


async def _affected_offers(conn: Connection, rows: Iterable[OutboxRow]) -> list[int]:
    offer_ids: set[int] = set()
    orders: list[int] = []
    for row in rows:
        if row.aggregate_type == "order":
            step = (row.payload or {}).get("to")
            if row.topic == ORDER_CREATED or step is None or step in _RECOUNTING_STEPS:
                orders.append(int(row.aggregate_id))
        elif row.aggregate_type == "offer":
            offer_ids.add(int(row.aggregate_id))
        elif row.aggregate_type in ("supplier", "organisation"):
            offer_ids.update(await offers_of_supplier(conn, int(row.aggregate_id)))
        elif row.aggregate_type == "partnership":
            regions = list((row.payload or {}).get("regions", []))
            found = await conn.fetch(
                """
                select o.id from offers o
                where o.status = 'listed' and o.supplier_id in (
                    select a.supplier_id from admissions a
                    where a.region_code = any($1::text[])
                       or a.region_code = any(select unnest(region_chain(r)) from unnest($1::text[]) r))
                """,
                regions,
            )
            offer_ids.update(r["id"] for r in found)
    if orders:
        found = await conn.fetch(
            "select distinct offer_id from order_lines where order_id = any($1::bigint[])", orders
        )
        offer_ids.update(r["offer_id"] for r in found)
    return sorted(offer_ids)


async def mirror_changes(conn: Connection, rows: list[OutboxRow]) -> None:
    """Stage 1: refresh the mirror for the offers these changes touch, and queue indexing."""
    offer_ids = await _affected_offers(conn, rows)
    if not offer_ids:
        return
    await refresh_mirror(conn, offer_ids)
    await enqueue(
        conn,
        topic=INDEX_TOPIC,
        aggregate_type="offers",
        aggregate_id=len(offer_ids),
        payload={"offer_ids": offer_ids},
    )


def index_handler(client: AsyncClient, uid: str) -> Handler:
    async def push_to_index(conn: Connection, rows: list[OutboxRow]) -> Handoff | None:
        """Stage 2: the mirror's current documents of these offers go to Meilisearch; the rows
        are done once Meilisearch has applied them."""
        await conn.execute("select pg_advisory_xact_lock($1)", PUSH_LOCK_KEY)
        offer_ids = sorted(
            {int(i) for row in rows for i in (row.payload or {}).get("offer_ids", [])}
        )
        found = await conn.fetch(
            "select offer_id, doc from offer_search where offer_id = any($1::bigint[])", offer_ids
        )
        documents: list[dict[str, Any]] = [r["doc"] for r in found]
        present = {r["offer_id"] for r in found}
        tasks = await index.submit(
            client, uid, documents, [i for i in offer_ids if i not in present]
        )
        if not tasks:
            return None

        async def applied() -> bool:
            try:
                statuses = await index.task_statuses(client, tasks)
            except Exception as exc:  # unreachable or unwell: cannot tell yet, ask again later
                log.info("cannot ask Meilisearch about tasks %s: %r", tasks, exc)
                return False
            return index.tasks_finished(tasks, statuses)

        return Handoff(applied, within_seconds=index.TASK_TIMEOUT_MS / 1000)

    return push_to_index


def search_handlers(client: AsyncClient, uid: str) -> dict[str, Handler]:
    handlers: dict[str, Handler] = dict.fromkeys((*CHANGE_TOPICS, *ORDER_TOPICS), mirror_changes)
    handlers[INDEX_TOPIC] = index_handler(client, uid)
    return handlers
