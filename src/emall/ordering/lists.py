"""Order lists: everyone's scoped list with filters, and the approver's queue.

Visibility is the policy module's ``list_scope``: an agency sees its own orders, a supplier the
orders placed with it, an operator or auditor the orders of the regions it oversees. Lists are
newest first (the approval queue oldest first) with a cursor on the order id.
"""

from __future__ import annotations

from datetime import date, timedelta

from emall.audit import start_of_business_day
from emall.clock import BUSINESS_DATE_SQL
from emall.db.pool import Connection, Pool
from emall.ordering.models import OrderStatus, OrderSummary
from emall.pagination import Page, page_args, page_of
from emall.policy import authorize, list_scope
from emall.principals import Principal

_SUMMARY = f"""
select o.id, o.checkout_id::text as checkout_id, o.agency_id, a.name as agency_name,
       o.supplier_id, s.name as supplier_name, o.region_code, o.status, o.total_fen,
       o.reserved_fen, o.accepted_fen, o.payment_due_date,
       (o.status = 'accepted' and o.payment_due_date < {BUSINESS_DATE_SQL}) as overdue,
       r.version as city_rule_version, o.created_at, o.updated_at
from orders o
join organisations a on a.id = o.agency_id
join organisations s on s.id = o.supplier_id
join city_rules r on r.id = o.city_rule_id
"""

_LIST = (
    _SUMMARY
    + f"""
where ($1::boolean or o.agency_id = $2 or o.supplier_id = $2 or region_chain(o.region_code) && $3::text[])
  and ($4::text[] is null or o.status = any($4::text[]))
  and ($5::bigint is null or o.agency_id = $5)
  and ($6::bigint is null or o.supplier_id = $6)
  and ($7::text is null or $7 = any(region_chain(o.region_code)))
  and (not $8::boolean or (o.status = 'accepted' and o.payment_due_date < {BUSINESS_DATE_SQL}))
  and ($9::timestamptz is null or o.created_at >= $9)
  and ($10::timestamptz is null or o.created_at < $10)
  and ($11::bigint is null or o.id < $11)
order by o.id desc
limit $12
"""
)

_QUEUE = (
    _SUMMARY
    + """
where o.agency_id = $1 and o.status = 'pending_approval' and ($2::bigint is null or o.id > $2)
order by o.id
limit $3
"""
)


async def list_orders(
    conn: Connection | Pool,
    principal: Principal,
    *,
    status: list[OrderStatus] | None = None,
    agency_id: int | None = None,
    supplier_id: int | None = None,
    region_code: str | None = None,
    overdue_only: bool = False,
    created_from: date | None = None,
    created_to: date | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[OrderSummary]:
    """The orders the principal may see, newest first, filtered; ``created_to`` is inclusive
    (business dates, Asia/Shanghai); ``region_code`` takes a region and everything under it."""
    authorize(principal, "order.read")
    after = page_args(cursor, limit, int)
    everything, own, overseen = list_scope(principal)
    rows = await conn.fetch(
        _LIST,
        everything,
        own,
        overseen,
        list(status) if status else None,
        agency_id,
        supplier_id,
        region_code,
        overdue_only,
        start_of_business_day(created_from) if created_from else None,
        start_of_business_day(created_to + timedelta(days=1)) if created_to else None,
        after[0] if after else None,
        limit + 1,
    )
    return page_of([OrderSummary(**dict(r)) for r in rows], limit, lambda o: (o.id,))


async def approval_queue(
    conn: Connection | Pool, principal: Principal, *, cursor: str | None = None, limit: int = 50
) -> Page[OrderSummary]:
    """The agency's orders waiting for approval, oldest first."""
    authorize(principal, "order.approval_queue")
    after = page_args(cursor, limit, int)
    rows = await conn.fetch(
        _QUEUE, principal.organisation_id, after[0] if after else None, limit + 1
    )
    return page_of([OrderSummary(**dict(r)) for r in rows], limit, lambda o: (o.id,))
