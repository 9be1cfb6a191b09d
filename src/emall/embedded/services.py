"""The real components emall runs on: embedded when unset, external when configured.

``start_services(settings)`` returns settings whose database and search URLs are concrete.
When DATABASE_URL, MEILI_URL and MEILI_MASTER_KEY are all set nothing is started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg
import msgspec

from emall.embedded.meili import (
    MeiliProcess,
    attach_running_meilisearch,
    resolve_meili_binary,
    start_meilisearch,
)
from emall.embedded.postgres import DEFAULT_DATABASE, start_embedded_postgres
from emall.settings import Settings

log = logging.getLogger("emall.embedded")


@dataclass
class RunningServices:
    settings: Settings
    meili: MeiliProcess | None = None
    _stops: list[Callable[[], None]] = field(default_factory=list)

    def stop(self) -> None:
        while self._stops:
            stop = self._stops.pop()
            try:
                stop()
            except Exception:  # one failing stop must not keep the others running
                log.exception("stopping a component failed")

    def __enter__(self) -> RunningServices:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def ensure_database(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("select 1 from pg_database where datname = $1", name)
        if not exists:
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):  # another starter won
                await conn.execute(f'create database "{name}"')
    finally:
        await conn.close()


def start_services(settings: Settings, *, search: bool = True) -> RunningServices:
    """Start what is not configured (PostgreSQL, and Meilisearch when ``search``)."""
    running = RunningServices(settings=settings)
    try:
        database = settings.database
        if settings.embedded_postgres:
            pg = start_embedded_postgres(settings.state_dir / "pg")
            running._stops.append(pg.stop)
            asyncio.run(ensure_database(pg.dsn("postgres"), DEFAULT_DATABASE))
            database = msgspec.structs.replace(database, url=pg.dsn(DEFAULT_DATABASE))
            log.info("embedded PostgreSQL at %s", pg.pgdata)

        search_settings = settings.search
        if search and settings.embedded_meilisearch:
            meili = attach_running_meilisearch(settings.state_dir)
            if meili is None:
                binary = resolve_meili_binary(settings.state_dir, settings.search.meili_bin)
                meili = start_meilisearch(
                    settings.state_dir,
                    binary=binary,
                    max_indexing_memory=settings.search.max_indexing_memory,
                )
                running._stops.append(meili.stop)
            running.meili = meili
            search_settings = msgspec.structs.replace(
                search_settings, url=meili.url, master_key=meili.master_key
            )
            log.info("Meilisearch at %s", meili.url)

        running.settings = msgspec.structs.replace(
            settings, database=database, search=search_settings
        )
        return running
    except BaseException:
        running.stop()
        raise
