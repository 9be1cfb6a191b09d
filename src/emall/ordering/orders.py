"""Reading orders."""

from __future__ import annotations

import asyncpg

from emall.db.pool import Connection, Pool
from emall.errors import NotFound
from emall.ordering.models import CheckoutWarning, OrderLineRead, OrderRead
from emall.policy import Resource, authorize
from emall.principals import Principal

_ORDER = """
select o.id, o.checkout_id::text as checkout_id, o.agency_id, o.buyer_user_id, o.supplier_id,
       s.name as supplier_name, o.region_code, o.delivery_region_code, o.budget_line_id,
       o.city_rule_id, r.version as city_rule_version, o.status, o.status_reason, o.total_fen,
       o.reserved_fen, o.accepted_fen, o.defects, o.payment_due_date, o.paid_fen, o.paid_on,
       o.payment_reference,
       o.warnings, o.version, o.created_at, o.updated_at, region_chain(o.region_code) as chain
from orders o
join organisations s on s.id = o.supplier_id
join city_rules r on r.id = o.city_rule_id
where o.id = any($1::bigint[])
order by o.id
"""
_LINES = """
select id, order_id, offer_id, product_id, title, unit, category_code, unit_price_fen, quantity,
       line_total_fen, delivery_days, confirmed_quantity, accepted_quantity
from order_lines where order_id = any($1::bigint[]) order by order_id, id
"""


async def load_orders(
    conn: Connection | Pool, order_ids: list[int]
) -> list[tuple[OrderRead, asyncpg.Record]]:
    rows = await conn.fetch(_ORDER, order_ids)
    lines: dict[int, list[OrderLineRead]] = {}
    for line in await conn.fetch(_LINES, order_ids):
        values = dict(line)
        lines.setdefault(values.pop("order_id"), []).append(OrderLineRead(**values))
    result = []
    for row in rows:
        values = dict(row)
        values.pop("chain")
        values["warnings"] = [CheckoutWarning(**w) for w in values["warnings"]]
        result.append((OrderRead(**values, lines=lines.get(row["id"], [])), row))
    return result


def order_resource(principal: Principal, row: asyncpg.Record) -> Resource:
    """The agency owns an order; its supplier sees it as its own too."""
    owner = (
        row["supplier_id"] if principal.organisation_id == row["supplier_id"] else row["agency_id"]
    )
    return Resource("order", row["id"], organisation_id=owner, region_chain=tuple(row["chain"]))


async def get_order(conn: Connection | Pool, principal: Principal, order_id: int) -> OrderRead:
    found = await load_orders(conn, [order_id])
    if not found:
        raise NotFound("订单", order_id)
    order, row = found[0]
    authorize(principal, "order.read", order_resource(principal, row))
    return order
