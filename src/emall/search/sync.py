"""Keeping search in step with PostgreSQL, through the outbox.

Two stages, so that PostgreSQL's mirror is current even while Meilisearch is down:

1. ``offer.changed``, ``visibility.changed`` and ``supplier.changed`` rows name offers (directly,
   through their supplier, or through a partnership's member regions). The handler refreshes
   their rows in ``offer_search`` — in the transaction that claims the outbox rows — and queues
   one ``search.index`` row naming them.
2. ``search.index`` pushes those offers' documents (read from the mirror) to Meilisearch. While
   Meilisearch is unreachable it fails and is retried with capped backoff and never parked, so
   nothing is lost; when it comes back the queue drains.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from meilisearch_python_sdk import AsyncClient

from emall.audit import enqueue
from emall.db.pool import Connection
from emall.outbox.worker import Handler, OutboxRow, TopicPolicy
from emall.search import index
from emall.search.documents import offers_of_supplier, refresh_mirror

CHANGE_TOPICS = ("offer.changed", "visibility.changed", "supplier.changed")
INDEX_TOPIC = "search.index"
# Indexing waits on Meilisearch: its own lane, so the mirror (stage 1) keeps up meanwhile.
POLICIES = {
    INDEX_TOPIC: TopicPolicy(max_attempts=None, max_backoff_seconds=5.0, lane="search-index")
}


async def _affected_offers(conn: Connection, rows: Iterable[OutboxRow]) -> list[int]:
    offer_ids: set[int] = set()
    for row in rows:
        if row.aggregate_type == "offer":
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
    async def push_to_index(conn: Connection, rows: list[OutboxRow]) -> None:
        """Stage 2: the mirror's current documents of these offers go to Meilisearch."""
        offer_ids = sorted(
            {int(i) for row in rows for i in (row.payload or {}).get("offer_ids", [])}
        )
        found = await conn.fetch(
            "select offer_id, doc from offer_search where offer_id = any($1::bigint[])", offer_ids
        )
        documents: list[dict[str, Any]] = [r["doc"] for r in found]
        present = {r["offer_id"] for r in found}
        await index.push(client, uid, documents, [i for i in offer_ids if i not in present])

    return push_to_index


def search_handlers(client: AsyncClient, uid: str) -> dict[str, Handler]:
    handlers: dict[str, Handler] = dict.fromkeys(CHANGE_TOPICS, mirror_changes)
    handlers[INDEX_TOPIC] = index_handler(client, uid)
    return handlers
