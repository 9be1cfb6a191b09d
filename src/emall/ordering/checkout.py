"""Checkout: the cart becomes one order per supplier, in one transaction.

* Each line snapshots the offer's price and terms; each order records the delivery region, the
  budget line charged and the city-rule version it was checked against.
* An order above the e-mall ceiling is refused: a formal procurement procedure is required.
* Warnings the buyer must acknowledge first: a price above its category's median, and order
  splitting (拆单) — this agency's orders in the same level-3 category within the rule's window
  would together exceed the ceiling; an acknowledged splitting warning is flagged to the
  region's operator.
* Stock is taken with one conditional update per offer (never oversold); an order above the
  approval threshold waits for an approver, any other reserves its budget at once (one
  conditional update of the line, a ledger row and an audit event per order, as
  ``emall.budgets.service.reserve`` does). Any refusal undoes the whole checkout.

A checkout is three statements, whatever the cart holds: one claims the cart (it empties it
as it reads it, so one cart becomes at most one checkout whatever the concurrency) and reads
everything the checks need (the delivery region, the budget line, the rule in force, the cart
with each offer's visibility, delivery time and category median, and the agency's earlier
orders per category); one writes the whole checkout with data-modifying CTEs (stock, orders,
lines, budget, flags) and returns the orders; one records the audit events and outbox rows
(``emall.audit.record``).
The database's conditional updates and checks still decide stock and budget: the statement
locks the offers in id order before the budget line, as concurrent checkouts must never wait
on each other in a cycle.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

import asyncpg
import msgspec

from emall.audit import AuditEvent, OutboxMessage, record
from emall.budgets import service as budgets
from emall.clock import today
from emall.db.pool import Connection
from emall.errors import Conflict, ValidationFailed
from emall.listings.offers import BUYER_VISIBLE_SQL
from emall.ordering.errors import CeilingExceeded, WarningsToAcknowledge
from emall.ordering.events import ORDER_CREATED
from emall.ordering.models import (
    CheckoutRequest,
    CheckoutResult,
    CheckoutWarning,
    OrderLineRead,
    OrderRead,
)
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

# $1 checkout id, $2 agency, $3 user, $4 the buyer's region, $5 the delivery region, $6 the
# budget line, $7 the rule, $8 offer ids in id order, $9 the orders (JSON), $10 the lines (JSON),
# $11 the budget to reserve (the submitted orders' total), $12 how many orders reserve it.
_WRITE = """
with wanted as (
    select * from jsonb_to_recordset($10::jsonb) as l(
        supplier_id bigint, offer_id bigint, product_id bigint, title text, unit text,
        category_code text, category3_code text, unit_price_fen bigint, quantity integer,
        delivery_days integer, policy_tags text[])
), new_orders as (
    select * from jsonb_to_recordset($9::jsonb) as s(
        supplier_id bigint, status text, total_fen bigint, warnings jsonb, splitting jsonb)
), locked as materialized (
    select id from offers where id = any($8::bigint[]) order by id for update
), stock as (
    update offers o
    set stock = o.stock - w.quantity, sales_count = o.sales_count + w.quantity,
        updated_at = now()
    from wanted w
    where o.id = w.offer_id and o.id in (select id from locked)
      and o.status = 'listed' and o.stock >= w.quantity
    returning o.id
), placed as (
    insert into orders (checkout_id, agency_id, buyer_user_id, supplier_id, region_code,
                        delivery_region_code, budget_line_id, city_rule_id, status, total_fen,
                        reserved_fen, warnings)
    select $1, $2, $3, n.supplier_id, $4, $5, $6, $7, n.status, n.total_fen,
           case when n.status = 'submitted' then n.total_fen else 0 end, n.warnings
    from new_orders n
    order by n.supplier_id
    returning *
), lined as (
    insert into order_lines (order_id, offer_id, product_id, title, unit, category_code,
                             category3_code, unit_price_fen, quantity, line_total_fen,
                             delivery_days, policy_tags)
    select p.id, w.offer_id, w.product_id, w.title, w.unit, w.category_code, w.category3_code,
           w.unit_price_fen, w.quantity, w.unit_price_fen * w.quantity, w.delivery_days,
           w.policy_tags
    from placed p join wanted w on w.supplier_id = p.supplier_id
    order by p.id, w.offer_id
    returning id, order_id, offer_id, product_id, title, unit, category_code, unit_price_fen,
              quantity, line_total_fen, delivery_days, confirmed_quantity, accepted_quantity
), reserved as (
    -- one conditional update decides, so concurrent reservations can never together exceed
    -- the amount; it reads the stock first, so the offers are locked before the line
    update budget_lines
    set reserved_fen = reserved_fen + $11, version = version + $12, updated_at = now()
    where id = $6 and $12 > 0 and reserved_fen + spent_fen + $11 <= amount_fen
      and (select count(*) from stock) = cardinality($8::bigint[])
    returning id, agency_id, amount_fen, reserved_fen, spent_fen, version
), reservations as (
    -- each submitted order's reservation, with the line's figures after it (in supplier order)
    select p.id as order_id, p.total_fen, r.id as line_id, r.agency_id, r.amount_fen, r.spent_fen,
           (r.reserved_fen - $11 + sum(p.total_fen) over w)::bigint as reserved_after,
           r.version - $12 + row_number() over w as version_after
    from reserved r cross join placed p
    where p.status = 'submitted'
    window w as (order by p.supplier_id)
), ledger as (
    insert into budget_ledger (budget_line_id, kind, amount_fen, order_id, created_by)
    select line_id, 'reserve', total_fen, order_id, $3
    from reservations order by reserved_after
), flagged as (
    insert into order_flags (order_id, kind, region_code, detail)
    select p.id, 'splitting', $4, n.splitting
    from placed p join new_orders n on n.supplier_id = p.supplier_id
    where n.splitting is not null
)
select p.id, p.checkout_id::text as checkout_id, p.supplier_id,
       (select s.name from organisations s where s.id = p.supplier_id) as supplier_name,
       p.status, p.total_fen, p.reserved_fen, p.warnings, p.version, p.created_at, p.updated_at,
       (select jsonb_agg(to_jsonb(l) - 'order_id' order by l.id)
        from lined l where l.order_id = p.id) as lines,
       (select array_agg(id) from stock) as stocked,
       exists (select 1 from reserved) as reserved,
       m.amount_fen as line_amount_fen, m.spent_fen as line_spent_fen,
       m.reserved_after as line_reserved_after, m.version_after as line_version_after
from placed p
left join reservations m on m.order_id = p.id
order by p.id
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
    head = rows[0]
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
    items = [r for r in rows if r["offer_id"] is not None]
    if not items:
        raise ValidationFailed.single("cart", "购物车为空 (the cart is empty)")
    for item in items:
        if not item["visible"] or item["delivery_days"] is None:
            raise ValidationFailed.single(
                f"cart[{item['offer_id']}]",
                "该商品已不可购买或不配送到该地区 (no longer buyable here, or not delivered there)",
            )
        if item["quantity"] < item["min_order_qty"]:
            raise ValidationFailed.single(
                f"cart[{item['offer_id']}].quantity", f"低于最小起订量 {item['min_order_qty']}"
            )

    by_supplier: dict[int, list[asyncpg.Record]] = defaultdict(list)
    for item in items:
        by_supplier[item["supplier_id"]].append(item)
    totals = {
        s: sum(i["price_fen"] * i["quantity"] for i in lines) for s, lines in by_supplier.items()
    }
    for total in totals.values():
        if total > head["ceiling_fen"]:
            raise CeilingExceeded(total, head["ceiling_fen"], head["rule_version"])

    warnings = _warnings(items, head["ceiling_fen"], head["splitting_window_days"])
    unacknowledged = sorted({w.code for w in warnings} - set(data.acknowledge))
    if unacknowledged:
        raise WarningsToAcknowledge(warnings, unacknowledged)

    new_orders: list[dict[str, Any]] = []
    for supplier_id in sorted(by_supplier):
        total = totals[supplier_id]
        order_warnings = [w for w in warnings if w.detail.get("supplier_id") in (None, supplier_id)]
        splitting = [w.detail for w in order_warnings if w.code == "splitting"]
        new_orders.append(
            {
                "supplier_id": supplier_id,
                "status": "pending_approval"
                if total > head["approval_threshold_fen"]
                else "submitted",
                "total_fen": total,
                "warnings": [
                    {"code": w.code, "message": w.message, "detail": w.detail}
                    for w in order_warnings
                ],
                "splitting": {"warnings": splitting} if splitting else None,
            }
        )
    submitted = [o for o in new_orders if o["status"] == "submitted"]
    to_reserve = sum(o["total_fen"] for o in submitted)
    placed = await conn.fetch(
        _WRITE,
        uuid.uuid4(),
        principal.organisation_id,
        principal.user_id,
        principal.region_code,
        delivery_region,
        data.budget_line_id,
        head["rule_id"],
        sorted(i["offer_id"] for i in items),
        new_orders,
        [
            {
                "supplier_id": i["supplier_id"],
                "offer_id": i["offer_id"],
                "product_id": i["product_id"],
                "title": i["title"],
                "unit": i["unit"],
                "category_code": i["category_code"],
                "category3_code": i["category3_code"],
                "unit_price_fen": i["price_fen"],
                "quantity": i["quantity"],
                "delivery_days": i["delivery_days"],
                "policy_tags": list(i["policy_tags"]),
            }
            for i in items
        ],
        to_reserve,
        len(submitted),
    )
    stocked = set(placed[0]["stocked"] or ())
    for item in items:  # in offer id order, as the stock was taken
        if item["offer_id"] not in stocked:
            raise Conflict(f"库存不足 (insufficient stock): offer {item['offer_id']}")
    if submitted and not placed[0]["reserved"]:
        await _refuse_budget(conn, data.budget_line_id, [o["total_fen"] for o in submitted])

    orders = [
        OrderRead(
            id=row["id"],
            checkout_id=row["checkout_id"],
            agency_id=principal.organisation_id,
            buyer_user_id=principal.user_id,
            supplier_id=row["supplier_id"],
            supplier_name=row["supplier_name"],
            region_code=principal.region_code,
            delivery_region_code=delivery_region,
            budget_line_id=data.budget_line_id,
            city_rule_id=head["rule_id"],
            city_rule_version=head["rule_version"],
            status=row["status"],
            status_reason=None,
            total_fen=row["total_fen"],
            reserved_fen=row["reserved_fen"],
            accepted_fen=None,
            defects=None,
            payment_due_date=None,
            paid_fen=None,
            paid_on=None,
            payment_reference=None,
            warnings=[CheckoutWarning(**w) for w in row["warnings"]],
            lines=msgspec.convert(row["lines"], list[OrderLineRead]),
            version=row["version"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )
        for row in placed
    ]
    await record(conn, _events(principal, data.budget_line_id, placed, orders), _messages(orders))
    return CheckoutResult(checkout_id=str(orders[0].checkout_id), orders=orders, warnings=warnings)


def _events(
    principal: Principal, line_id: int, placed: list[asyncpg.Record], orders: list[OrderRead]
) -> list[AuditEvent]:
    """The budget movements (in the order the statement reserved them, as
    ``emall.budgets`` records a movement), then the orders created."""
    reserved = sorted(
        (row for row in placed if row["line_reserved_after"] is not None),
        key=lambda row: int(row["line_reserved_after"]),
    )
    movements = [
        budgets.movement_event(
            line_id,
            "reserve",
            row["total_fen"],
            order_id=row["id"],
            amount_fen_after=row["line_amount_fen"],
            reserved_fen_after=row["line_reserved_after"],
            spent_fen_after=row["line_spent_fen"],
            version=row["line_version_after"],
            actor_user_id=principal.user_id,
            actor_organisation_id=principal.organisation_id,
            region_code=principal.region_code,
        )
        for row in reserved
    ]
    created = [
        AuditEvent(
            action="order.created",
            entity_type="order",
            entity_id=str(order.id),
            actor_user_id=principal.user_id,
            actor_organisation_id=principal.organisation_id,
            region_code=principal.region_code,
            after=order,
        )
        for order in orders
    ]
    return movements + created


def _messages(orders: list[OrderRead]) -> list[OutboxMessage]:
    return [
        OutboxMessage(
            topic=ORDER_CREATED,
            aggregate_type="order",
            aggregate_id=str(order.id),
            payload={"status": order.status, "total_fen": order.total_fen},
        )
        for order in orders
    ]


async def _refuse_budget(conn: Connection, line_id: int, totals: list[int]) -> None:
    """The reservation was refused: name the order that did not fit, as reserving the orders
    one by one (in supplier order) would have."""
    available: int = await conn.fetchval(
        "select amount_fen - reserved_fen - spent_fen from budget_lines where id = $1", line_id
    )
    remaining = available
    for total in totals:
        if total > remaining:
            raise _insufficient(remaining, total)
        remaining -= total
    raise _insufficient(available, sum(totals))  # the line changed since: report it as it is


def _insufficient(available: int, requested: int) -> Conflict:
    return Conflict(
        f"预算不足 (insufficient budget): available {available} fen, requested {requested} fen"
    )


def _warnings(
    items: list[asyncpg.Record], ceiling_fen: int, window_days: int
) -> list[CheckoutWarning]:
    warnings: list[CheckoutWarning] = []
    for item in items:
        median = item["median_fen"]
        if median is not None and item["price_fen"] > median:
            warnings.append(
                CheckoutWarning(
                    code="price_above_median",
                    message=f"单价高于同品目中位价 {median} 分 (price above the category median)",
                    detail={
                        "offer_id": item["offer_id"],
                        "supplier_id": item["supplier_id"],
                        "unit_price_fen": item["price_fen"],
                        "median_fen": median,
                    },
                )
            )
    by_category: dict[str, int] = defaultdict(int)
    earlier: dict[str, tuple[list[int], int]] = {}
    for item in items:
        by_category[item["category3_code"]] += item["price_fen"] * item["quantity"]
        if item["earlier_order_ids"]:
            earlier[item["category3_code"]] = (
                list(item["earlier_order_ids"]),
                item["earlier_fen"],
            )
    for category3, amount in sorted(by_category.items()):
        order_ids, earlier_fen = earlier.get(category3, ([], 0))
        together = amount + earlier_fen
        if order_ids and together > ceiling_fen:
            warnings.append(
                CheckoutWarning(
                    code="splitting",
                    message=(
                        f"{window_days}天内同一品目 {category3} 的采购合计 {together} 分，超过电子卖场限额 "
                        f"{ceiling_fen} 分：化整为零规避正式采购程序是被禁止的，本单将报送交易中心 "
                        f"(orders in this category within {window_days} days would exceed the ceiling; "
                        "splitting a purchase to avoid a formal procedure is forbidden and is reported)"
                    ),
                    detail={
                        "category3_code": category3,
                        "amount_fen": amount,
                        "together_fen": together,
                        "ceiling_fen": ceiling_fen,
                        "earlier_orders": order_ids,
                    },
                )
            )
    return warnings
