"""``emall catalogue``: the shared catalogue from the command line.

    emall catalogue import FILE --supplier ID_OR_USCC [--format csv|jsonl] [--as USERNAME]

Imports a file of offers for a supplier, as one of its users (by default its first supplier
admin), with a progress bar; prints the counts and the first row errors. Exits 0 when the job
succeeded (even with row errors), 1 when it failed or was refused.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from emall.db.pool import Pool
    from emall.imports.models import ImportJobRead

SHOWN_ERRORS = 20
_BY_EXTENSION = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@click.group(name="catalogue")
def catalogue_group() -> None:
    """The shared catalogue: bulk import of offers."""


@catalogue_group.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option(
    "--supplier",
    required=True,
    help="The supplier: its id, or its unified social credit code (USCC, 18 characters).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl"]),
    default=None,
    help="File format (default: by extension, .csv or .jsonl/.ndjson).",
)
@click.option(
    "--as",
    "as_user",
    default=None,
    metavar="USERNAME",
    help="Act as this user of the supplier (default: its first supplier admin).",
)
def import_command(file: Path, supplier: str, fmt: str | None, as_user: str | None) -> None:
    """Import FILE (CSV or JSON Lines of offer rows) for a supplier and report the outcome."""
    from api.cli_support import configure_logging, load_settings_or_exit
    from emall.embedded.services import start_services

    chosen = fmt or _BY_EXTENSION.get(file.suffix.lower())
    if chosen is None:
        raise click.UsageError("cannot tell the format from the extension; pass --format")
    content = file.read_bytes()
    settings = load_settings_or_exit()
    configure_logging(settings)
    with start_services(settings, search=False) as services:
        dsn = services.settings.database.url
        assert dsn is not None
        job = asyncio.run(
            _import(
                dsn,
                settings.auth.jwt_secret,
                supplier=supplier,
                as_user=as_user,
                fmt=chosen,
                filename=file.name,
                content=content,
            )
        )
    _report(job)
    sys.exit(0 if job.status == "succeeded" else 1)


async def _supplier_id(pool: Pool, supplier: str) -> int:
    key = supplier.strip()
    if len(key) == 18:
        found = await pool.fetchval(
            "select id from organisations where kind = 'supplier' and uscc = $1", key.upper()
        )
    elif key.isdigit():
        found = await pool.fetchval(
            "select id from organisations where kind = 'supplier' and id = $1", int(key)
        )
    else:
        raise click.ClickException(
            f"--supplier must be a supplier id or an 18-character USCC, got {supplier!r}"
        )
    if found is None:
        raise click.ClickException(f"no supplier {supplier!r}")
    return int(found)


async def _user_id(pool: Pool, supplier_id: int, username: str | None) -> int:
    if username is None:
        found = await pool.fetchval(
            """
            select id from users
            where organisation_id = $1 and 'supplier_admin' = any(roles) and is_active
            order by id limit 1
            """,
            supplier_id,
        )
        if found is None:
            raise click.ClickException(f"supplier {supplier_id} has no active supplier admin")
        return int(found)
    found = await pool.fetchval(
        "select id from users where username = $1 and organisation_id = $2",
        username.lower(),
        supplier_id,
    )
    if found is None:
        raise click.ClickException(f"{username!r} is not a user of supplier {supplier_id}")
    return int(found)


async def _import(
    dsn: str,
    secret: str,
    *,
    supplier: str,
    as_user: str | None,
    fmt: str,
    filename: str,
    content: bytes,
) -> ImportJobRead:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from emall.db.pool import create_pool
    from emall.errors import EmallError
    from emall.identity.service import principal_from_token
    from emall.identity.tokens import issue_token
    from emall.imports.jobs import create_job, run_job

    pool = await create_pool(dsn, min_size=1, max_size=2, application_name="emall-import")
    try:
        supplier_id = await _supplier_id(pool, supplier)
        user_id = await _user_id(pool, supplier_id, as_user)
        token, _ = issue_token(user_id, secret=secret, ttl_seconds=300)
        try:
            principal = await principal_from_token(pool, token, secret)
            async with pool.acquire() as conn, conn.transaction():
                job = await create_job(conn, principal, fmt=fmt, filename=filename, content=content)
        except EmallError as exc:
            raise click.ClickException(exc.message) from None
        click.echo(f"import job {job.id}: {job.total_rows} rows in {filename}")
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        ) as bar:
            task = bar.add_task("checking rows", total=job.total_rows)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            finished = await run_job(pool, job.id, content, progress=progress)
            bar.update(task, description="saved" if finished.status == "succeeded" else "failed")
        return finished
    finally:
        await pool.close()


def _report(job: ImportJobRead) -> None:
    click.echo(f"import job {job.id}: {job.status}")
    click.echo(
        f"created: {job.created_rows}  updated: {job.updated_rows}  "
        f"unchanged: {job.unchanged_rows}  error rows: {job.error_rows}"
    )
    click.echo(f"products created: {job.created_products}  matched: {job.matched_products}")
    for error in job.errors[:SHOWN_ERRORS]:
        click.echo(f"  row {error.row}  {error.field}: {error.reason}")
    if len(job.errors) > SHOWN_ERRORS or job.error_rows > len(job.errors):
        click.echo(f"  … and more (see GET /api/v1/imports/{job.id})")
    if job.status == "succeeded":
        click.echo(f"each row's outcome and offer id: GET /api/v1/imports/{job.id}/rows")
    if job.failure:
        click.echo(f"failure: {job.failure}", err=True)
