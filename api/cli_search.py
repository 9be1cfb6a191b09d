"""``emall search reindex`` and ``emall search verify``."""

from __future__ import annotations

import asyncio
import sys

import click


@click.group(name="search")
def search_group() -> None:
    """Search index maintenance."""


@search_group.command(name="reindex")
def reindex_command() -> None:
    """Rebuild the offers index into a new index and swap it in (searches never see it empty)."""
    from rich.progress import Progress

    from api.cli_support import configure_logging, load_settings_or_exit, run_migrations
    from emall.db.pool import create_pool
    from emall.embedded.services import start_services
    from emall.search.client import create_search_client
    from emall.search.index import reindex

    settings = load_settings_or_exit()
    configure_logging(settings)

    async def run(progress: Progress) -> str:
        s = services.settings
        assert s.database.url is not None
        assert s.search.url is not None
        pool = await create_pool(s.database.url, min_size=1, max_size=2)
        client = create_search_client(s.search.url, s.search.master_key)
        try:
            total = await pool.fetchval("select count(*) from offers where status = 'listed'")
            task = progress.add_task("indexing listed offers", total=total)
            async with pool.acquire() as conn:
                return await reindex(
                    conn,
                    client,
                    s.search.index_prefix,
                    progress=lambda sent: progress.update(task, completed=sent),
                )
        finally:
            await client.aclose()
            await pool.close()

    with start_services(settings) as services:
        assert services.settings.database.url is not None
        run_migrations(services.settings.database.url)
        with Progress() as progress:
            uid = asyncio.run(run(progress))
    click.echo(f"reindexed and swapped into {uid}")


@search_group.command(name="verify")
@click.option("--repair", is_flag=True, help="Push missing and stale documents, delete extra ones.")
@click.option("--sample", default=200, show_default=True, help="Documents compared field by field.")
def verify_command(repair: bool, sample: int) -> None:
    """Compare the database with the index (all ids, a sample of documents) and report drift."""
    from api.cli_support import configure_logging, load_settings_or_exit, run_migrations
    from emall.db.pool import create_pool
    from emall.embedded.services import start_services
    from emall.search.client import create_search_client
    from emall.search.index import VerifyReport, index_uid, verify

    settings = load_settings_or_exit()
    configure_logging(settings)

    async def run() -> VerifyReport:
        s = services.settings
        assert s.database.url is not None
        assert s.search.url is not None
        pool = await create_pool(s.database.url, min_size=1, max_size=2)
        client = create_search_client(s.search.url, s.search.master_key)
        try:
            async with pool.acquire() as conn:
                return await verify(
                    conn, client, index_uid(s.search.index_prefix), sample=sample, repair=repair
                )
        finally:
            await client.aclose()
            await pool.close()

    with start_services(settings) as services:
        assert services.settings.database.url is not None
        run_migrations(services.settings.database.url)
        report = asyncio.run(run())
    click.echo(
        f"database {report.db_count}, index {report.index_count}: {len(report.missing)} missing, "
        f"{len(report.extra)} extra, {len(report.stale)} stale"
    )
    for label, ids in (
        ("missing", report.missing),
        ("extra", report.extra),
        ("stale", report.stale),
    ):
        if ids:
            click.echo(f"  {label}: {ids[:20]}{' …' if len(ids) > 20 else ''}")
    if not report.clean:
        sys.exit(1)
    click.echo("no drift")
