"""The composition of the domains: which consumer handles each outbox topic, and the worker
every emall process runs with them.

Wiring between domains lives here and nowhere else: ``emall.outbox`` is the queue and knows no
domain; each domain exports its topics and handlers; this module assembles them. A later
domain (webhooks, statistics) registers its consumer in ``CONSUMERS`` and ``build_worker``.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from meilisearch_python_sdk import AsyncClient

from emall.db.pool import Pool, create_pool
from emall.ordering.events import ORDER_EVENT_TOPICS, acknowledge
from emall.ordering.flags import PAYMENT_DUE_TOPIC, payment_due_handler
from emall.outbox.worker import ConsumerLag, Handler, OutboxWorker, consumer_lags
from emall.search.client import create_search_client
from emall.search.index import index_uid
from emall.search.sync import CHANGE_TOPICS, INDEX_TOPIC, ORDER_TOPICS, POLICIES, search_handlers
from emall.settings import Settings

log = logging.getLogger("emall.outbox")


SEARCH_TOPICS = (*CHANGE_TOPICS, *ORDER_TOPICS, INDEX_TOPIC)
# Every topic any feature writes has exactly one consumer here (tests/test_outbox_drains.py
# checks the code's topics against it). Order events go to search where it uses them (an order
# placed or ended re-ranks its offers: recent orders), and are otherwise acknowledged until
# webhooks and statistics consume them.
CONSUMERS: dict[str, tuple[str, ...]] = {
    "search": SEARCH_TOPICS,
    "payment-checks": (PAYMENT_DUE_TOPIC,),
    "order-events": tuple(topic for topic in ORDER_EVENT_TOPICS if topic not in SEARCH_TOPICS),
}


def build_worker(pool: Pool, search: AsyncClient, settings: Settings) -> OutboxWorker:
    """The outbox worker with the handlers of every consumer in ``CONSUMERS``."""
    handlers: dict[str, Handler] = search_handlers(search, index_uid(settings.search.index_prefix))
    handlers[PAYMENT_DUE_TOPIC] = payment_due_handler
    for topic in CONSUMERS["order-events"]:
        handlers[topic] = acknowledge
    assert set(handlers) == {t for topics in CONSUMERS.values() for t in topics}, handlers
    return OutboxWorker(pool, handlers, policies=POLICIES)


async def lags(pool: Pool) -> list[ConsumerLag]:
    """How far each consumer of ``CONSUMERS`` is behind."""
    return await consumer_lags(pool, CONSUMERS)


async def run_worker_until_stopped(settings: Settings) -> None:
    """``emall worker``: run until SIGINT or SIGTERM."""
    assert settings.database.url is not None
    assert settings.search.url is not None
    pool = await create_pool(settings.database.url, min_size=1, max_size=4)
    search = create_search_client(settings.search.url, settings.search.master_key)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        worker = build_worker(pool, search, settings)
        log.info("outbox worker started with topics: %s", sorted(worker.handlers))
        await worker.run(stop)
    finally:
        await search.aclose()
        await pool.close()
