"""Orders flagged to the region's operator, and the overdue-payment rule.

Checkout flags order splitting (拆单). Payment is due ``payment_term_days`` after acceptance, by the
city-rule version the order was checked against; at acceptance an outbox row is queued for the
first business day after the due date, and its handler flags the order if it is still unpaid.
``flag_overdue`` is also a sweep any operator job can run for a given day.
"""

from __future__ import annotations

from datetime import date, timedelta

import asyncpg

from emall.audit import enqueue, record_event, start_of_business_day
from emall.clock import today
from emall.db.pool import Connection, Pool
from emall.errors import Conflict, NotFound
from emall.ordering.events import ORDER_FLAG_RESOLVED, ORDER_FLAGGED
from emall.ordering.models import OrderFlagRead, OrderFlagResolve
from emall.outbox.worker import OutboxRow
from emall.pagination import Page, page_args, page_of
from emall.policy import Resource, authorize, list_scope
from emall.principals import Principal

PAYMENT_DUE_TOPIC = "order.payment_due"

_COLUMNS = """
f.id, f.order_id, f.kind, f.region_code, o.agency_id, a.name as agency_name, o.supplier_id,
s.name as supplier_name, o.total_fen, f.detail, f.created_at, f.resolved_at, f.resolved_by,
f.resolution, region_chain(f.region_code) as chain
"""
_FROM = """
from order_flags f
join orders o on o.id = f.order_id
join organisations a on a.id = o.agency_id
join organisations s on s.id = o.supplier_id
"""


def _flag(row: asyncpg.Record) -> OrderFlagRead:
    values = dict(row)
    values.pop("chain")
    return OrderFlagRead(**values)


async def schedule_payment_check(conn: Connection, order_id: int, due: date) -> None:
    """Queue the overdue check for the first business day after ``due``."""
    await enqueue(
        conn,
        topic=PAYMENT_DUE_TOPIC,
        aggregate_type="order",
        aggregate_id=order_id,
        payload={"payment_due_date": due.isoformat()},
        not_before=start_of_business_day(due + timedelta(days=1)),
    )


async def flag_overdue(
    conn: Connection, *, on: date | None = None, order_ids: list[int] | None = None
) -> list[int]:
    """Flag accepted, unpaid orders whose due date lies before ``on`` (default today), once per
    order; returns the orders newly flagged. Each flag is audited and queued for webhooks."""
    day = on or today()
    async with conn.transaction():
        rows = await conn.fetch(
            """
            insert into order_flags (order_id, kind, region_code, detail)
            select o.id, 'overdue', o.region_code,
                   jsonb_build_object('payment_due_date', o.payment_due_date,
                                      'accepted_fen', o.accepted_fen,
                                      'days_overdue', $1::date - o.payment_due_date)
            from orders o
            where o.status = 'accepted' and o.payment_due_date < $1::date
              and ($2::bigint[] is null or o.id = any($2::bigint[]))
              and not exists (select 1 from order_flags p where p.order_id = o.id and p.kind = 'overdue')
            order by o.id
            on conflict (order_id, kind) where resolved_at is null do nothing
            returning id, order_id, region_code, detail
            """,
            day,
            order_ids,
        )
        for row in rows:
            await record_event(
                conn,
                actor=None,
                action="order.flagged_overdue",
                entity_type="order",
                entity_id=row["order_id"],
                region_code=row["region_code"],
                after={"flag_id": row["id"], **row["detail"]},
            )
            await enqueue(
                conn,
                topic=ORDER_FLAGGED,
                aggregate_type="order",
                aggregate_id=row["order_id"],
                payload={"flag_id": row["id"], "kind": "overdue"},
            )
    return [int(r["order_id"]) for r in rows]


async def payment_due_handler(conn: Connection, rows: list[OutboxRow]) -> None:
    """The outbox handler of ``order.payment_due``."""
    await flag_overdue(conn, order_ids=[int(r.aggregate_id) for r in rows])


async def list_order_flags(
    conn: Connection | Pool,
    principal: Principal,
    *,
    kind: str | None = None,
    open_only: bool = True,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[OrderFlagRead]:
    """The order-flag queue of the regions the principal oversees, oldest first."""
    authorize(principal, "order_flag.read")
    after = page_args(cursor, limit, int)
    everything, _, overseen = list_scope(principal)
    rows = await conn.fetch(
        f"""
        select {_COLUMNS} {_FROM}
        where ($1::boolean or region_chain(f.region_code) && $2::text[])
          and ($3::text is null or f.kind = $3)
          and (not $4::boolean or f.resolved_at is null)
          and ($5::bigint is null or f.id > $5)
        order by f.id limit $6
        """,
        everything,
        overseen,
        kind,
        open_only,
        after[0] if after else None,
        limit + 1,
    )
    return page_of([_flag(r) for r in rows], limit, lambda f: (f.id,))


async def resolve_order_flag(
    conn: Connection,
    principal: Principal,
    flag_id: int,
    data: OrderFlagResolve,
    *,
    request_id: str | None = None,
) -> OrderFlagRead:
    """The region's operator records what it did about the flag."""
    async with conn.transaction():
        row = await conn.fetchrow(
            f"select {_COLUMNS} {_FROM} where f.id = $1 for update of f", flag_id
        )
        if row is None:
            raise NotFound("订单预警", flag_id)
        authorize(
            principal,
            "order_flag.resolve",
            Resource("order_flag", flag_id, region_chain=tuple(row["chain"])),
        )
        before = _flag(row)
        if before.resolved_at is not None:
            raise Conflict("预警已处理 (the flag is already resolved)", current_state="resolved")
        await conn.execute(
            "update order_flags set resolved_at = now(), resolved_by = $2, resolution = $3 where id = $1",
            flag_id,
            principal.user_id,
            data.resolution,
        )
        updated = await conn.fetchrow(f"select {_COLUMNS} {_FROM} where f.id = $1", flag_id)
        assert updated is not None
        after = _flag(updated)
        await record_event(
            conn,
            actor=principal,
            action="order_flag.resolved",
            entity_type="order",
            entity_id=after.order_id,
            region_code=after.region_code,
            before=before,
            after=after,
            request_id=request_id,
        )
        await enqueue(
            conn,
            topic=ORDER_FLAG_RESOLVED,
            aggregate_type="order",
            aggregate_id=after.order_id,
            payload={"flag_id": flag_id, "kind": after.kind},
        )
    return after
