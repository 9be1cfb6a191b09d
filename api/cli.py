"""The ``emall`` command: Litestar's CLI with emall's commands added through a CLI plugin.

    emall serve            run the API (and the outbox worker) on embedded defaults
    emall db migrate       apply pending migrations
    emall db status        list migrations and their state
    emall seed demo        load the Neijiang–Zigong demo data
    emall worker           run the outbox worker alone
    emall catalogue import FILE --supplier ID|USCC   bulk-import a supplier's offers
    emall search reindex   rebuild the offers index and swap it in
    emall search verify    compare the database with the index (--repair to fix drift)

When DATABASE_URL / MEILI_URL are unset, the embedded PostgreSQL and a Meilisearch child process
are started under EMALL_STATE_DIR (./.emall) and stopped again on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import TYPE_CHECKING

import click
from litestar.plugins import CLIPluginProtocol

from api.cli_catalogue import catalogue_group
from api.cli_search import search_group
from api.cli_support import configure_logging, load_settings_or_exit, run_migrations

if TYPE_CHECKING:
    from litestar import Litestar


class _Stop(Exception):
    """SIGINT or SIGTERM: leave the `with` blocks so that every component is stopped."""


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop(signum)


async def _seed(dsn: str) -> str:
    from emall.db.pool import create_pool
    from emall.demo.seed import seed_demo

    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        report = await seed_demo(pool)
    finally:
        await pool.close()
    return (
        f"demo seed: {report.organisations_created} organisations, {report.users_created} users "
        f"created, {report.offers_listed} offers listed"
    )


@click.command(name="serve")
@click.option("--host", default=None, help="Address to listen on (EMALL_HOST, default 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (EMALL_PORT, default 8000).")
@click.option("--demo", is_flag=True, help="Load the demo data (idempotent) before serving.")
@click.option("--no-migrate", is_flag=True, help="Do not apply pending migrations at start.")
def serve_command(host: str | None, port: int | None, demo: bool, no_migrate: bool) -> None:
    """Run the API on 127.0.0.1:8000, starting embedded PostgreSQL and Meilisearch if unset."""
    from api import server
    from api.app import create_app
    from emall.embedded.services import start_services

    settings = load_settings_or_exit()
    configure_logging(settings)
    with start_services(settings) as services:
        dsn = services.settings.database.url
        assert dsn is not None
        if not no_migrate:
            run_migrations(dsn)
        if demo:
            click.echo(asyncio.run(_seed(dsn)))
        app = create_app(services.settings, run_worker=settings.server.run_worker)
        bind_host = host or settings.server.host
        bind_port = port or settings.server.port
        click.echo(f"emall: API on http://{bind_host}:{bind_port}  (docs: /schema)")
        # uvicorn shuts down gracefully on a signal and then re-raises it to the previous
        # handler; ours turns it into an exception, so the embedded servers are stopped too.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _raise_stop)
        with contextlib.suppress(_Stop):
            server.run(app, host=bind_host, port=bind_port, log_level=settings.log_level.lower())


@click.group(name="db")
def db_group() -> None:
    """Database migrations."""


@db_group.command(name="migrate")
def db_migrate_command() -> None:
    """Apply pending migrations (safe to run from several processes at once)."""
    from emall.embedded.services import start_services

    settings = load_settings_or_exit()
    configure_logging(settings)
    with start_services(settings, search=False) as services:
        assert services.settings.database.url is not None
        run_migrations(services.settings.database.url)


@db_group.command(name="status")
def db_status_command() -> None:
    """List every migration with its state: applied, pending, changed or missing_file."""
    import asyncpg

    from emall.db.migrations import status
    from emall.embedded.services import start_services

    settings = load_settings_or_exit()

    async def run(dsn: str) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            for item in await status(conn):
                when = item.applied_at.isoformat() if item.applied_at else "-"
                click.echo(f"{item.version:04d}  {item.name:<32} {item.state:<12} {when}")
        finally:
            await conn.close()

    with start_services(settings, search=False) as services:
        assert services.settings.database.url is not None
        asyncio.run(run(services.settings.database.url))


@click.group(name="seed")
def seed_group() -> None:
    """Seed data."""


@seed_group.command(name="demo")
def seed_demo_command() -> None:
    """Load the Neijiang (511000) – Zigong (510300) demo: organisations and a user per role."""
    from emall.embedded.services import start_services

    settings = load_settings_or_exit()
    configure_logging(settings)
    with start_services(settings, search=False) as services:
        dsn = services.settings.database.url
        assert dsn is not None
        run_migrations(dsn)
        click.echo(asyncio.run(_seed(dsn)))


@click.command(name="worker")
def worker_command() -> None:
    """Run the outbox worker alone (it also runs inside `emall serve`)."""
    from emall.composition import run_worker_until_stopped
    from emall.embedded.services import start_services

    settings = load_settings_or_exit()
    configure_logging(settings)
    with start_services(settings) as services:
        asyncio.run(run_worker_until_stopped(services.settings))


class EmallCLIPlugin(CLIPluginProtocol):
    def on_cli_init(self, cli: click.Group) -> None:
        for command in (
            serve_command,
            db_group,
            seed_group,
            worker_command,
            catalogue_group,
            search_group,
        ):
            cli.add_command(command)


def cli_app() -> Litestar:
    """The app the CLI loads to find its commands (this module's plugin); it starts nothing by
    being created. The app itself knows no CLI: the arrow runs from here to it only."""
    from api.app import create_app

    return create_app(load_settings_or_exit(), plugins=[EmallCLIPlugin()])


def main() -> None:
    os.environ.setdefault("LITESTAR_APP", "api.cli:cli_app")
    os.environ.setdefault("LITESTAR_QUIET_CONSOLE", "1")
    from litestar.cli.main import litestar_group

    litestar_group(prog_name="emall")
