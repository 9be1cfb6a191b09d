"""Bans (禁入): an operator suspends a supplier in its region, with a reason and an optional end.

A ban is active from ``starts_at`` until ``ends_at`` (it lifts by itself then) or until an
operator lifts it early. Activity is computed at the moment of asking, never stored.
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from emall.admission.models import BanCreate, BanRead, Reason
from emall.admission.scope import SCOPE_SQL
from emall.audit import enqueue, record_event
from emall.db.pool import Connection, Pool
from emall.errors import Conflict, NotFound, ValidationFailed
from emall.pagination import Page, page_args, page_of
from emall.policy import Resource, authorize, list_scope
from emall.principals import OrganisationKind, Principal
from emall.regions.service import require_region

ACTIVE_SQL = (
    "(t.lifted_at is null and t.starts_at <= now() and (t.ends_at is null or t.ends_at > now()))"
)

_COLUMNS = f"""
    t.id, t.supplier_id, o.name as supplier_name, t.region_code, r.name as region_name, t.reason,
    t.starts_at, t.ends_at, {ACTIVE_SQL} as active, t.created_by, t.created_at, t.lifted_at,
    t.lifted_by, t.lift_reason, region_chain(t.region_code) as chain
"""
_FROM = "from bans t join organisations o on o.id = t.supplier_id join regions r on r.code = t.region_code"


def _read(row: asyncpg.Record) -> BanRead:
    values = dict(row)
    values.pop("chain")
    return BanRead(**values)


def _resource(row: asyncpg.Record) -> Resource:
    return Resource(
        "ban", row["id"], organisation_id=row["supplier_id"], region_chain=tuple(row["chain"])
    )


async def _load(conn: Connection | Pool, ban_id: int, *, lock: bool = False) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"select {_COLUMNS} {_FROM} where t.id = $1" + (" for update of t" if lock else ""), ban_id
    )
    if row is None:
        raise NotFound("禁入记录", ban_id)
    return row


async def get_ban(conn: Connection | Pool, principal: Principal, ban_id: int) -> BanRead:
    row = await _load(conn, ban_id)
    authorize(principal, "ban.read", _resource(row))
    return _read(row)


async def list_bans(
    conn: Connection | Pool,
    principal: Principal,
    *,
    region_code: str | None = None,
    supplier_id: int | None = None,
    active: bool | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[BanRead]:
    authorize(principal, "ban.read")
    if region_code is not None:
        await require_region(conn, region_code, "region_code")
    after = page_args(cursor, limit, int)
    rows = await conn.fetch(
        f"""
        select {_COLUMNS} {_FROM}
        where {SCOPE_SQL}
          and ($4::text is null or $4 = any(region_chain(t.region_code)))
          and ($5::bigint is null or t.supplier_id = $5)
          and ($6::boolean is null or {ACTIVE_SQL} = $6)
          and ($7::bigint is null or t.id > $7)
        order by t.id
        limit $8
        """,
        *list_scope(principal),
        region_code,
        supplier_id,
        active,
        after[0] if after else None,
        limit + 1,
    )
    return page_of([_read(r) for r in rows], limit, lambda b: (b.id,))


async def _changed(
    conn: Connection,
    principal: Principal,
    action: str,
    before: BanRead | None,
    after: BanRead,
    request_id: str | None,
) -> None:
    await record_event(
        conn,
        actor=principal,
        action=action,
        entity_type="ban",
        entity_id=after.id,
        region_code=after.region_code,
        before=before,
        after=after,
        request_id=request_id,
    )
    await enqueue(
        conn,
        topic="visibility.changed",
        aggregate_type="supplier",
        aggregate_id=after.supplier_id,
        payload={"ban_id": after.id, "region_code": after.region_code, "active": after.active},
    )
    if after.ends_at is not None:
        # The ban lifts by itself at ends_at: ask the worker to refresh visibility then, too.
        await enqueue(
            conn,
            topic="visibility.changed",
            aggregate_type="supplier",
            aggregate_id=after.supplier_id,
            payload={"ban_id": after.id, "region_code": after.region_code, "ends": True},
            not_before=after.ends_at,
        )


async def ban(
    conn: Connection, principal: Principal, data: BanCreate, *, request_id: str | None = None
) -> BanRead:
    chain = await require_region(conn, data.region_code, "region_code")
    supplier_kind = await conn.fetchval(
        "select kind from organisations where id = $1", data.supplier_id
    )
    if supplier_kind != OrganisationKind.SUPPLIER:
        raise ValidationFailed.single(
            "supplier_id", f"不是供应商 (no supplier with id {data.supplier_id})"
        )
    authorize(principal, "ban.manage", Resource("ban", "new", region_chain=chain, public=True))
    if data.starts_at is not None and data.starts_at.tzinfo is None:
        raise ValidationFailed.single("starts_at", "需要带时区的时间 (a time with a timezone)")
    if data.ends_at is not None:
        if data.ends_at.tzinfo is None:
            raise ValidationFailed.single("ends_at", "需要带时区的时间 (a time with a timezone)")
        if data.ends_at <= (data.starts_at or datetime.now(UTC)):
            raise ValidationFailed.single("ends_at", "必须晚于开始时间 (must be after starts_at)")
    async with conn.transaction():
        ban_id: int = await conn.fetchval(
            """
            insert into bans (supplier_id, region_code, reason, starts_at, ends_at, created_by)
            values ($1, $2, $3, coalesce($4, now()), $5, $6) returning id
            """,
            data.supplier_id,
            data.region_code,
            data.reason,
            data.starts_at,
            data.ends_at,
            principal.user_id,
        )
        created = _read(await _load(conn, ban_id))
        await _changed(conn, principal, "ban.created", None, created, request_id)
    return created


async def lift(
    conn: Connection,
    principal: Principal,
    ban_id: int,
    data: Reason,
    *,
    request_id: str | None = None,
) -> BanRead:
    async with conn.transaction():
        row = await _load(conn, ban_id, lock=True)
        authorize(principal, "ban.manage", _resource(row))
        before = _read(row)
        if before.lifted_at is not None or (
            before.ends_at is not None and before.ends_at <= datetime.now(UTC)
        ):
            raise Conflict(
                "禁入已解除或已到期 (the ban is already lifted or over)", current_state="lifted"
            )
        await conn.execute(
            "update bans set lifted_at = now(), lifted_by = $2, lift_reason = $3 where id = $1",
            ban_id,
            principal.user_id,
            data.reason,
        )
        after = _read(await _load(conn, ban_id))
        await _changed(conn, principal, "ban.lifted", before, after, request_id)
    return after
