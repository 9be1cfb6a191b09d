"""Checkout: the cart becomes one order per supplier, in one transaction.

Read the cart, priced; check it against the rules; place the orders:

* One statement claims the cart (it empties it as it reads it, so one cart becomes at most one
  checkout whatever the concurrency) and reads everything the rules need: the delivery region,
  the budget line, the city rule in force, each line's offer terms, visibility, delivery time
  and category median, and the agency's earlier orders per level-3 category. A refused
  checkout rolls the claim back with everything else.
* ``emall.ordering.rules`` decides, without I/O: buyable lines, the e-mall ceiling, the
  warnings to acknowledge (a price above the category median, order splitting), and each
  order's status (waiting for an approver above the approval threshold).
* ``emall.ordering.place`` writes the orders, their lines, stock, budget reservations, flags,
  audit events and outbox rows: two statements whatever the cart holds.
"""

from __future__ import annotations

import asyncpg

from emall.clock import today
from emall.db.pool import Connection
from emall.errors import Conflict, ValidationFailed
from emall.listings.offers import BUYER_VISIBLE_SQL
from emall.ordering.models import CheckoutRequest, CheckoutResult
from emall.ordering.place import Placement, place
from emall.ordering.rules import CartLine, Earlier, Rule, plan
from emall.policy import Resource, authorize
from emall.principals import Principal
from emall.regions.service import require_region

# $1 user, $2 the buyer's region, $3 the delivery region, $4 the budget line, $5 today, $6 the
# agency. One row per cart item (one row of nulls for an empty cart). The statement claims the
# cart: it empties it as it reads it, so a concurrent checkout of the same cart waits for this
# one and then finds it empty; a refused checkout rolls the claim back with everything else.
_READ = f"""
with claimed as (
    delete from cart_items where user_id = $1 returning offer_id, quantity
), chains as materialized (
    select region_chain($2) as buyer, region_chain($3) as delivery
), rule as (
    -- the version in force on $5 for the region or its nearest ancestor (as rule_in_force)
    select r.id, r.version, r.ceiling_fen, r.approval_threshold_fen, r.splitting_window_days
    from chains h
    cross join unnest(h.buyer) with ordinality as c(code, depth)
    join city_rules r on r.region_code = c.code
    where r.effective_from <= $5
    order by c.depth, r.effective_from desc
    limit 1
), items as (
    select c.offer_id, c.quantity, o.supplier_id, o.product_id, o.price_fen, o.min_order_qty,
           o.policy_tags, p.title, p.unit, p.category_code,
           coalesce((select k.code from categories k
                     where k.code = any(category_chain(p.category_code)) and k.level = 3),
                    p.category_code) as category3_code,
           (select d.delivery_days from offer_delivery d, chains h
            where d.offer_id = o.id and d.region_code = any(h.delivery)
            order by d.delivery_days limit 1) as delivery_days,
           {BUYER_VISIBLE_SQL.format(r="$2")} as visible,
           (select round(percentile_cont(0.5) within group (order by m.price_fen))::bigint
            from offers m
            where m.status = 'listed' and m.category_code = o.category_code) as median_fen
    from claimed c
    join offers o on o.id = c.offer_id
    join products p on p.id = o.product_id
), earlier as (
    -- the agency's live orders per level-3 category of the cart, within the rule's window
    select k.category3_code, array_agg(e.id order by e.id) as order_ids,
           sum(e.amount)::bigint as amount_fen
    from (select distinct category3_code from items) k
    cross join rule r
    join lateral (
        select o.id, sum(l.line_total_fen) as amount
        from orders o join order_lines l on l.order_id = o.id
        where o.agency_id = $6 and l.category3_code = k.category3_code
          and o.status not in ('cancelled', 'rejected')
          and o.created_at >= now() - make_interval(days => r.splitting_window_days)
        group by o.id
    ) e on true
    group by k.category3_code
)
select h.delivery as delivery_chain,
       (select agency_id from budget_lines where id = $4) as line_agency_id,
       r.id as rule_id, r.version as rule_version, r.ceiling_fen, r.approval_threshold_fen,
       r.splitting_window_days,
       i.*, e.order_ids as earlier_order_ids, e.amount_fen as earlier_fen
from chains h
left join rule r on true
left join items i on true
left join earlier e on e.category3_code = i.category3_code
order by i.offer_id
"""


async def checkout(conn: Connection, principal: Principal, data: CheckoutRequest) -> CheckoutResult:
    """Place the cart's orders in the caller's transaction (and idempotency), or in one of its
    own when the caller has none: a refusal must give the claimed cart back."""
    if not conn.is_in_transaction():
        async with conn.transaction():
            return await checkout(conn, principal, data)
    authorize(
        principal,
        "order.create",
        Resource("cart", principal.user_id, organisation_id=principal.organisation_id),
    )
    delivery_region = data.delivery_region_code or principal.region_code
    rows = await conn.fetch(
        _READ,
        principal.user_id,
        principal.region_code,
        delivery_region,
        data.budget_line_id,
        today(),
        principal.organisation_id,
    )
    rule = await _rule(conn, principal, data, rows[0], delivery_region)
    lines, earlier = _cart(rows)
    orders, warnings = plan(lines, earlier, rule, data.acknowledge)
    placement = Placement(
        source="cart",
        delivery_region_code=delivery_region,
        budget_line_id=data.budget_line_id,
        rule=rule,
    )
    placed = await place(conn, principal, placement, orders)
    return CheckoutResult(checkout_id=str(placed[0].checkout_id), orders=placed, warnings=warnings)


async def _rule(
    conn: Connection,
    principal: Principal,
    data: CheckoutRequest,
    head: asyncpg.Record,
    delivery_region: str,
) -> Rule:
    """The checkout's frame: a known delivery region, the agency's own budget line, a rule."""
    if head["delivery_chain"] is None:
        await require_region(conn, delivery_region, "delivery_region_code")  # raises
    if head["line_agency_id"] != principal.organisation_id:
        raise ValidationFailed.single(
            "budget_line_id",
            f"不是本单位的预算指标 (not your agency's budget line): {data.budget_line_id}",
        )
    if head["rule_id"] is None:
        raise Conflict(
            "本地区尚未设定电子卖场规则，暂不能下单 (no e-mall rule is in force for this region)"
        )
    return Rule(
        id=head["rule_id"],
        version=head["rule_version"],
        ceiling_fen=head["ceiling_fen"],
        approval_threshold_fen=head["approval_threshold_fen"],
        splitting_window_days=head["splitting_window_days"],
    )


def _cart(rows: list[asyncpg.Record]) -> tuple[list[CartLine], dict[str, Earlier]]:
    """The read's rows as the rules take them: the cart's lines, the earlier orders."""
    lines: list[CartLine] = []
    earlier: dict[str, Earlier] = {}
    for row in rows:
        if row["offer_id"] is None:
            continue  # the one row of an empty cart
        lines.append(_line(row))
        if row["earlier_order_ids"]:
            earlier[row["category3_code"]] = Earlier(
                order_ids=list(row["earlier_order_ids"]), amount_fen=row["earlier_fen"]
            )
    return lines, earlier


def _line(row: asyncpg.Record) -> CartLine:
    return CartLine(
        offer_id=row["offer_id"],
        supplier_id=row["supplier_id"],
        product_id=row["product_id"],
        title=row["title"],
        unit=row["unit"],
        category_code=row["category_code"],
        category3_code=row["category3_code"],
        unit_price_fen=row["price_fen"],
        quantity=row["quantity"],
        min_order_qty=row["min_order_qty"],
        delivery_days=row["delivery_days"],
        policy_tags=list(row["policy_tags"]),
        visible=row["visible"],
        median_fen=row["median_fen"],
    )
