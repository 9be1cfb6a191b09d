"""The worker every emall process runs: the outbox topics of every feature, assembled."""

from __future__ import annotations

import asyncio
import logging
import signal

from meilisearch_python_sdk import AsyncClient

from emall.db.pool import Pool, create_pool
from emall.ordering.flags import PAYMENT_DUE_TOPIC, payment_due_handler
from emall.outbox.worker import OutboxWorker
from emall.search.client import create_search_client
from emall.search.index import index_uid
from emall.search.sync import POLICIES, search_handlers
from emall.settings import Settings

log = logging.getLogger("emall.outbox")


def build_worker(pool: Pool, search: AsyncClient, settings: Settings) -> OutboxWorker:
    """The outbox worker with the handlers of search sync (more features register here)."""
    handlers = search_handlers(search, index_uid(settings.search.index_prefix))
    handlers[PAYMENT_DUE_TOPIC] = payment_due_handler
    return OutboxWorker(pool, handlers, policies=POLICIES)


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
