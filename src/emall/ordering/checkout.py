"""Checkout: the cart becomes one order per supplier, in one transaction.

* Each line snapshots the offer's price and terms; each order records the delivery region, the
  budget line charged and the city-rule version it was checked against.
* An order above the e-mall ceiling is refused: a formal procurement procedure is required.
* Warnings the buyer must acknowledge first: a price above its category's median, and order
  splitting (拆单) — this agency's orders in the same level-3 category within the rule's window
  would together exceed the ceiling; an acknowledged splitting warning is flagged to the
  region's operator.
* Stock is taken with one conditional update per offer (never oversold); an order above the
  approval threshold waits for an approver, any other reserves its budget at once. Any refusal
  undoes the whole checkout.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from emall.audit import enqueue, record_event
from emall.budgets import service as budgets
from emall.db.pool import Connection
from emall.errors import Conflict, ValidationFailed
from emall.identity.models import Principal
from emall.listings.offers import BUYER_VISIBLE_SQL
from emall.ordering.errors import CeilingExceeded, WarningsToAcknowledge
from emall.ordering.models import CheckoutRequest, CheckoutResult, CheckoutWarning
from emall.ordering.orders import load_orders
from emall.policy import Resource, authorize
from emall.regions.service import require_region
from emall.rules.service import rule_in_force

_CART = f"""
select c.offer_id, c.quantity, o.supplier_id, o.product_id, o.price_fen, o.min_order_qty,
       o.policy_tags, p.title, p.unit, p.category_code,
       coalesce((select k.code from categories k
                 where k.code = any(category_chain(p.category_code)) and k.level = 3),
                p.category_code) as category3_code,
       (select d.delivery_days from offer_delivery d
        where d.offer_id = o.id and d.region_code = any(region_chain($3)) order by d.delivery_days limit 1)
           as delivery_days,
       {BUYER_VISIBLE_SQL.format(r="$2")} as visible
from cart_items c
join offers o on o.id = c.offer_id
join products p on p.id = o.product_id
where c.user_id = $1
order by c.offer_id
"""

_MEDIAN = """
select round(percentile_cont(0.5) within group (order by o.price_fen))::bigint
from offers o join products p on p.id = o.product_id
where o.status = 'listed' and p.category_code = $1
"""

_EARLIER = """
select o.id, sum(l.line_total_fen)::bigint as amount
from orders o join order_lines l on l.order_id = o.id
where o.agency_id = $1 and l.category3_code = $2
  and o.status not in ('cancelled', 'rejected')
  and o.created_at >= now() - make_interval(days => $3)
group by o.id order by o.id
"""


async def checkout(conn: Connection, principal: Principal, data: CheckoutRequest) -> CheckoutResult:
    """Place the cart's orders; the caller gives the transaction (and idempotency)."""
    authorize(
        principal,
        "order.create",
        Resource("cart", principal.user_id, organisation_id=principal.organisation_id),
    )
    delivery_region = data.delivery_region_code or principal.region_code
    await require_region(conn, delivery_region, "delivery_region_code")
    line = await conn.fetchrow(
        "select agency_id from budget_lines where id = $1", data.budget_line_id
    )
    if line is None or line["agency_id"] != principal.organisation_id:
        raise ValidationFailed.single(
            "budget_line_id",
            f"不是本单位的预算指标 (not your agency's budget line): {data.budget_line_id}",
        )
    rule = await rule_in_force(conn, principal.region_code)
    if rule is None:
        raise Conflict(
            "本地区尚未设定电子卖场规则，暂不能下单 (no e-mall rule is in force for this region)"
        )
    items = await conn.fetch(_CART, principal.user_id, principal.region_code, delivery_region)
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

    by_supplier: dict[int, list[Any]] = defaultdict(list)
    for item in items:
        by_supplier[item["supplier_id"]].append(item)
    totals = {
        s: sum(i["price_fen"] * i["quantity"] for i in lines) for s, lines in by_supplier.items()
    }
    for total in totals.values():
        if total > rule.ceiling_fen:
            raise CeilingExceeded(total, rule.ceiling_fen, rule.version)

    warnings = await _warnings(conn, principal, items, rule.ceiling_fen, rule.splitting_window_days)
    unacknowledged = sorted({w.code for w in warnings} - set(data.acknowledge))
    if unacknowledged:
        raise WarningsToAcknowledge(warnings, unacknowledged)

    checkout_id = uuid.uuid4()
    order_ids: list[int] = []
    for offer_id, quantity in sorted(
        (i["offer_id"], i["quantity"]) for i in items
    ):  # in id order: no deadlocks
        left = await conn.fetchval(
            "update offers set stock = stock - $2, sales_count = sales_count + $2, updated_at = now() "
            "where id = $1 and status = 'listed' and stock >= $2 returning stock",
            offer_id,
            quantity,
        )
        if left is None:
            raise Conflict(f"库存不足 (insufficient stock): offer {offer_id}")
    for supplier_id, lines in sorted(by_supplier.items()):
        total = totals[supplier_id]
        status = "pending_approval" if total > rule.approval_threshold_fen else "submitted"
        order_warnings = [w for w in warnings if w.detail.get("supplier_id") in (None, supplier_id)]
        order_id: int = await conn.fetchval(
            """
            insert into orders (checkout_id, agency_id, buyer_user_id, supplier_id, region_code,
                                delivery_region_code, budget_line_id, city_rule_id, status, total_fen, warnings)
            values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) returning id
            """,
            checkout_id,
            principal.organisation_id,
            principal.user_id,
            supplier_id,
            principal.region_code,
            delivery_region,
            data.budget_line_id,
            rule.id,
            status,
            total,
            [{"code": w.code, "message": w.message, "detail": w.detail} for w in order_warnings],
        )
        await conn.executemany(
            """
            insert into order_lines (order_id, offer_id, product_id, title, unit, category_code, category3_code,
                                     unit_price_fen, quantity, line_total_fen, delivery_days, policy_tags)
            values ($1, $2, $3, $4, $5, $6, $7, $8::bigint, $9::integer, $8::bigint * $9::integer, $10, $11)
            """,
            [
                (
                    order_id,
                    i["offer_id"],
                    i["product_id"],
                    i["title"],
                    i["unit"],
                    i["category_code"],
                    i["category3_code"],
                    i["price_fen"],
                    i["quantity"],
                    i["delivery_days"],
                    list(i["policy_tags"]),
                )
                for i in lines
            ],
        )
        if status == "submitted":
            await budgets.reserve(
                conn, data.budget_line_id, total, order_id=order_id, actor_user_id=principal.user_id
            )
            await conn.execute("update orders set reserved_fen = total_fen where id = $1", order_id)
        if any(w.code == "splitting" for w in order_warnings):
            await conn.execute(
                "insert into order_flags (order_id, kind, region_code, detail) values ($1, 'splitting', $2, $3)",
                order_id,
                principal.region_code,
                {"warnings": [w.detail for w in order_warnings if w.code == "splitting"]},
            )
        order_ids.append(order_id)
    await conn.execute(
        "delete from cart_items where user_id = $1 and offer_id = any($2::bigint[])",
        principal.user_id,
        [i["offer_id"] for i in items],
    )
    orders = [order for order, _ in await load_orders(conn, order_ids)]
    for order in orders:
        await record_event(
            conn,
            actor=principal,
            action="order.created",
            entity_type="order",
            entity_id=order.id,
            region_code=order.region_code,
            after=order,
        )
        await enqueue(
            conn,
            topic="order.created",
            aggregate_type="order",
            aggregate_id=order.id,
            payload={"status": order.status, "total_fen": order.total_fen},
        )
    return CheckoutResult(checkout_id=str(checkout_id), orders=orders, warnings=warnings)


async def _warnings(
    conn: Connection, principal: Principal, items: list[Any], ceiling_fen: int, window_days: int
) -> list[CheckoutWarning]:
    warnings: list[CheckoutWarning] = []
    for item in items:
        median = await conn.fetchval(_MEDIAN, item["category_code"])
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
    for item in items:
        by_category[item["category3_code"]] += item["price_fen"] * item["quantity"]
    for category3, amount in sorted(by_category.items()):
        earlier = await conn.fetch(_EARLIER, principal.organisation_id, category3, window_days)
        together = amount + sum(r["amount"] for r in earlier)
        if earlier and together > ceiling_fen:
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
                        "earlier_orders": [r["id"] for r in earlier],
                    },
                )
            )
    return warnings
