"""Import jobs: a supplier uploads a file of offers; the job checks and saves it.

``create_job`` checks the file as a whole (format, UTF-8, size, header, row limit) and records
a ``queued`` job; ``run_job`` then checks every row, saves the valid ones in one transaction
and records the counts, the first 1,000 row errors and what it did with every row
(``list_rows``: the product matched or created, the offer and both ids, or the row's errors). Rows are checked in a worker thread
while the batches already checked are saved (``emall.imports.pipeline``). The job's
``processed_rows`` is written every 1,000 rows checked, on another connection of the pool and
outside the transaction, so that a status poll sees progress: a job needs a pool of at least two
connections. An unexpected error fails the job (``failure``) and saves nothing.

A job is its supplier's: it is visible to the supplier's users and to the operators and
auditors who oversee the supplier's region; to anyone else it does not exist.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable

import asyncpg
import msgspec

from emall.audit import record_event
from emall.db.pool import Connection, Pool
from emall.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from emall.imports.models import (
    DEFAULT_ROWS_PAGE,
    MAX_FILENAME_LENGTH,
    MAX_ROWS_PAGE,
    MAX_STORED_ERRORS,
    ImportJobRead,
    ImportRowResult,
    RowError,
    RowOutcome,
)
from emall.imports.outcomes import unapplied_fields
from emall.imports.parse import count_rows, parse_rows
from emall.imports.pipeline import check_and_save
from emall.imports.save import FileSaver
from emall.imports.validate import FileChecker, load_reference
from emall.pagination import Page, decode_cursor, page_args, page_of
from emall.policy import Resource, authorize
from emall.principals import OrganisationKind, Principal, Role

log = logging.getLogger("emall.imports")

Progress = Callable[[int, int], None]

_COLUMNS = """j.id, j.supplier_id, j.status, j.format, j.filename, j.sha256, j.total_rows,
              j.processed_rows, j.created_rows, j.updated_rows, j.unchanged_rows, j.error_rows,
              j.created_products, j.matched_products, j.errors, j.failure, j.created_at, j.started_at, j.finished_at"""


def _read(row: asyncpg.Record) -> ImportJobRead:
    values = dict(row)
    values.pop("chain", None)
    values["errors"] = msgspec.convert(values["errors"], list[RowError])
    return ImportJobRead(**values)


def _own_supplier(principal: Principal) -> Resource:
    return Resource(
        "organisation", principal.organisation_id, organisation_id=principal.organisation_id
    )


def _clean_filename(filename: str | None) -> str:
    name = (filename or "").strip()
    if len(name) > MAX_FILENAME_LENGTH:
        raise ValidationFailed.single(
            "filename",
            f"文件名不能超过 {MAX_FILENAME_LENGTH} 个字符 "
            f"(filename must be at most {MAX_FILENAME_LENGTH} characters)",
        )
    return name


async def create_job(
    conn: Connection,
    principal: Principal,
    *,
    fmt: str,
    filename: str | None,
    content: bytes,
) -> ImportJobRead:
    """Check the file as a whole and record a queued job for the principal's supplier.

    ``ValidationFailed`` naming ``format``, ``filename`` or ``file`` (not UTF-8, over 50 MB or
    200,000 rows, an unknown or missing CSV column, no data rows). Run it with ``run_job``.
    """
    authorize(principal, "import.manage", _own_supplier(principal))
    if principal.organisation_kind != OrganisationKind.SUPPLIER:
        raise PermissionDenied("只有供应商可以导入报价 (only suppliers import offers)")
    name = _clean_filename(filename)
    # Decoding and counting a large file takes a moment: keep the event loop free meanwhile.
    total = await asyncio.to_thread(count_rows, fmt, content)
    row = await conn.fetchrow(
        f"""
        insert into import_jobs as j (supplier_id, created_by, format, filename, sha256, total_rows)
        values ($1, $2, $3, $4, $5, $6)
        returning {_COLUMNS}
        """,
        principal.organisation_id,
        principal.user_id,
        fmt,
        name,
        hashlib.sha256(content).hexdigest(),
        total,
    )
    assert row is not None
    return _read(row)


async def get_job(conn: Connection | Pool, principal: Principal, job_id: int) -> ImportJobRead:
    """A job with its counts and errors; NotFound for another supplier's job."""
    row = await conn.fetchrow(
        f"""
        select {_COLUMNS}, region_chain(o.region_code) as chain
        from import_jobs j join organisations o on o.id = j.supplier_id
        where j.id = $1
        """,
        job_id,
    )
    if row is None:
        raise NotFound("导入任务", job_id)
    authorize(
        principal,
        "import.read",
        Resource(
            "import_job",
            job_id,
            organisation_id=row["supplier_id"],
            region_chain=tuple(row["chain"]),
        ),
    )
    return _read(row)


async def list_jobs(
    conn: Connection | Pool,
    principal: Principal,
    *,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[ImportJobRead]:
    """The jobs of the principal's own organisation, newest first (empty for non-suppliers)."""
    authorize(principal, "import.read")
    after = page_args(cursor, limit, int)
    rows = await conn.fetch(
        f"""
        select {_COLUMNS} from import_jobs j
        where j.supplier_id = $1 and ($2::bigint is null or j.id < $2)
        order by j.id desc
        limit $3
        """,
        principal.organisation_id,
        after[0] if after else None,
        limit + 1,
    )
    return page_of([_read(r) for r in rows], limit, lambda j: (j.id,))


async def _fetch(conn: Connection | Pool, job_id: int) -> ImportJobRead:
    row = await conn.fetchrow(f"select {_COLUMNS} from import_jobs j where j.id = $1", job_id)
    if row is None:
        raise NotFound("导入任务", job_id)
    return _read(row)


async def _actor(conn: Connection | Pool, user_id: int, supplier_id: int) -> Principal:
    """Who the job acts for (its creator), as audit events name them."""
    row = await conn.fetchrow(
        """
        select u.id as user_id, u.username, u.roles, o.id as organisation_id, o.kind,
               o.name as organisation_name, o.region_code
        from users u, organisations o
        where u.id = $1 and o.id = $2
        """,
        user_id,
        supplier_id,
    )
    if row is None:
        raise NotFound("用户", user_id)
    return Principal(
        user_id=row["user_id"],
        username=row["username"],
        organisation_id=row["organisation_id"],
        organisation_kind=OrganisationKind(row["kind"]),
        organisation_name=row["organisation_name"],
        region_code=row["region_code"],
        roles=frozenset(Role(r) for r in row["roles"]),
    )


async def run_job(
    pool: Pool,
    job_id: int,
    content: bytes,
    *,
    progress: Progress | None = None,
) -> ImportJobRead:
    """Check every row of a queued job's file, save the valid ones, and record the outcome.

    Returns the finished job (``succeeded`` — possibly with row errors — or ``failed``).
    ``progress(processed_rows, total_rows)`` is called as rows are checked.
    """
    started = await pool.fetchrow(
        """
        update import_jobs set status = 'running', started_at = now(), processed_rows = 0
        where id = $1 and status = 'queued'
        returning supplier_id, created_by, format, sha256, total_rows
        """,
        job_id,
    )
    if started is None:
        current = await pool.fetchval("select status from import_jobs where id = $1", job_id)
        if current is None:
            raise NotFound("导入任务", job_id)
        raise Conflict(
            f"导入任务不在排队状态 (the job is {current}, not queued)", current_state=current
        )
    actor: Principal | None = None
    try:
        actor = await _actor(pool, started["created_by"], started["supplier_id"])
        if hashlib.sha256(content).hexdigest() != started["sha256"]:
            raise ValueError(
                "文件内容与创建任务时不一致 (the content differs from the uploaded file)"
            )
        await _run(pool, job_id, actor, started, content, progress)
    except asyncio.CancelledError:
        await asyncio.shield(_fail(pool, job_id, actor, "导入被中断 (the import was interrupted)"))
        raise
    except Exception as exc:
        log.exception("import job %s failed", job_id)
        await _fail(pool, job_id, actor, f"{type(exc).__name__}: {exc}")
    return await _fetch(pool, job_id)


async def _run(
    pool: Pool,
    job_id: int,
    actor: Principal,
    started: asyncpg.Record,
    content: bytes,
    progress: Progress | None,
) -> None:
    total: int = started["total_rows"]
    if pool.get_max_size() < 2:
        raise ValueError("导入需要至少两个数据库连接 (an import needs a pool of two connections)")

    async def report(processed: int) -> None:
        # outside the job's transaction: committed at once, so that a status poll sees it
        await pool.execute(
            "update import_jobs set processed_rows = $2 where id = $1", job_id, processed
        )
        if progress is not None:
            progress(processed, max(total, processed))

    async with pool.acquire() as conn:
        checker = FileChecker(await load_reference(conn))
        async with conn.transaction():
            saver = FileSaver(conn, actor, job_id=job_id)
            rows = parse_rows(started["format"], content)
            processed, errors = await check_and_save(checker, saver, rows, report)
            result = saver.result
            all_errors = sorted(errors + result.errors, key=lambda e: e.row)
            error_rows = len({e.row for e in all_errors})
            storable = [_storable(e) for e in all_errors]
            await conn.execute(
                """
                update import_jobs set status = 'succeeded', processed_rows = $2,
                    created_rows = $3, updated_rows = $4, unchanged_rows = $5, error_rows = $6,
                    errors = $7, created_products = $8, matched_products = $9,
                    finished_at = now()
                where id = $1
                """,
                job_id,
                processed,
                result.created,
                result.updated,
                result.unchanged,
                error_rows,
                msgspec.to_builtins(storable[:MAX_STORED_ERRORS]),
                result.created_products,
                result.matched_products,
            )
            if storable:
                await conn.execute(_RECORD_REFUSED, job_id, msgspec.to_builtins(storable))
            await record_event(
                conn,
                actor=actor,
                action="import.finished",
                entity_type="import_job",
                entity_id=job_id,
                region_code=actor.region_code,
                after={
                    "status": "succeeded",
                    "total_rows": total,
                    "created_rows": result.created,
                    "updated_rows": result.updated,
                    "unchanged_rows": result.unchanged,
                    "error_rows": error_rows,
                    "resubmitted_offers": result.resubmitted,
                    "created_products": result.created_products,
                    "matched_products": result.matched_products,
                },
            )


# Every refused row with all of its errors ($2: the errors, in row order), one statement.
_RECORD_REFUSED = """
insert into import_job_rows (job_id, row_no, errors)
select $1, (e.doc ->> 'row')::integer, jsonb_agg(e.doc order by e.n)
from jsonb_array_elements($2::jsonb) with ordinality as e(doc, n)
group by (e.doc ->> 'row')::integer
"""


def _storable(error: RowError) -> RowError:
    """The error as jsonb can hold it: a field or reason that echoes the file (an unknown key,
    say) may hold a NUL character, shown as ``\\u0000``."""
    if "\x00" not in error.field and "\x00" not in error.reason:
        return error
    return RowError(
        row=error.row,
        field=error.field.replace("\x00", "\\u0000"),
        reason=error.reason.replace("\x00", "\\u0000"),
    )


async def _fail(pool: Pool, job_id: int, actor: Principal | None, failure: str) -> None:
    failure = failure.replace("\x00", "\\u0000")  # jsonb and text cannot hold a NUL
    text = f"导入失败，未保存任何数据 (the import failed; nothing was saved): {failure}"[:2000]
    try:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """
                update import_jobs set status = 'failed', failure = $2, finished_at = now()
                where id = $1
                """,
                job_id,
                text,
            )
            await record_event(
                conn,
                actor=actor,
                action="import.finished",
                entity_type="import_job",
                entity_id=job_id,
                region_code=actor.region_code if actor else None,
                after={"status": "failed", "failure": text},
            )
    except Exception:  # the database itself is gone: the log is all that is left
        log.exception("could not record the failure of import job %s", job_id)


async def list_rows(
    conn: Connection | Pool,
    principal: Principal,
    job_id: int,
    *,
    outcome: RowOutcome | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_ROWS_PAGE,
) -> Page[ImportRowResult]:
    """What a finished job did with each row of its file, in row order: the product matched or
    created and the offer created, updated or unchanged, with their ids, the fields a matched
    product kept, or a refused row's errors. ``outcome`` keeps the saved or the refused rows.
    Visible to whoever may see the job; a job still queued or running has no rows yet, and a
    failed one none at all."""
    if not 1 <= limit <= MAX_ROWS_PAGE:
        raise ValidationFailed.single(
            "limit", f"每页条数须在 1-{MAX_ROWS_PAGE} 之间 (limit must be 1-{MAX_ROWS_PAGE})"
        )
    after = decode_cursor(cursor, int)
    await get_job(conn, principal, job_id)
    rows = await conn.fetch(
        """
        select row_no, product, product_id, offer, offer_id, offer_status, unapplied, errors
        from import_job_rows
        where job_id = $1 and ($2::bigint is null or row_no > $2)
          and ($3::text is null or (product is not null) = ($3 = 'saved'))
        order by row_no
        limit $4
        """,
        job_id,
        after[0] if after else None,
        outcome,
        limit + 1,
    )
    return page_of([_row_result(r) for r in rows], limit, lambda r: (r.row,))


def _row_result(row: asyncpg.Record) -> ImportRowResult:
    if row["product"] is None:
        return ImportRowResult(
            row=row["row_no"],
            outcome="refused",
            errors=msgspec.convert(row["errors"], list[RowError]),
        )
    return ImportRowResult(
        row=row["row_no"],
        outcome="saved",
        product=row["product"],
        product_id=row["product_id"],
        offer=row["offer"],
        offer_id=row["offer_id"],
        offer_status=row["offer_status"],
        unapplied=unapplied_fields(row["unapplied"]),
    )
