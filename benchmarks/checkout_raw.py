"""The raw baseline of order placement: the statements emall's checkout issues, with no emall code.

Plain asyncpg, the SQL texts copied from the library and the least Python that feeds each
statement the values the library would (totals, the order's status, warnings, the order as JSON
for the audit event). ``bench_checkout`` checks before measuring that these are the same
statements, in the same order, as the library issues for the same checkout.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import asyncpg
import msgspec

if TYPE_CHECKING:  # a type only: the raw baseline runs no emall code
    from emall.ordering.models import WarningCode

ACKNOWLEDGE: list[WarningCode] = ["price_above_median", "splitting"]
_SHANGHAI = ZoneInfo("Asia/Shanghai")
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


@dataclass(frozen=True)
class RawBuyer:
    user_id: int
    agency_id: int
    region_code: str
    budget_line_id: int
    offers: tuple[int, ...] = ()  # the cart's offers (the minimal transaction is told them)


async def init_connection(conn: asyncpg.Connection[Any]) -> None:
    """json/jsonb through msgspec, as any asyncpg application would register them."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name,
            schema="pg_catalog",
            encoder=lambda value: _encoder.encode(value).decode(),
            decoder=_decoder.decode,
            format="text",
        )


PRINCIPAL = """
select u.id as user_id, u.username, u.roles, u.is_active, u.scope_partnership_id,
       o.id as organisation_id, o.kind, o.name as organisation_name, o.region_code,

coalesce(
    (select array_agg(m.region_code order by m.region_code)
     from partnership_members m
     where m.partnership_id = u.scope_partnership_id
       and m.joined_on <= (now() at time zone 'Asia/Shanghai')::date
       and (m.left_on is null or m.left_on > (now() at time zone 'Asia/Shanghai')::date)),
    array[o.region_code]
) as scope_regions

from users u
join organisations o on o.id = u.organisation_id
 where u.id = $1"""

IDEMPOTENCY_LOCK = "select pg_advisory_xact_lock(hashtextextended('emall.idempotency:' || $1::bigint || ':' || $2, 0))"
IDEMPOTENCY_READ = (
    "select operation, request_hash, status_code, response from idempotency_keys "
    "where user_id = $1 and key = $2"
)
IDEMPOTENCY_WRITE = """
        insert into idempotency_keys (user_id, key, operation, request_hash, status_code, response)
        values ($1, $2, $3, $4, $5, $6)
        """

READ = """
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
           (o.status = 'listed' and may_sell(o.supplier_id, $2)
    and exists (select 1 from offer_delivery d
                where d.offer_id = o.id and d.region_code = any(region_chain($2)))) as visible,
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
WRITE = """
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
), entries as (
    -- the submitted orders reserve their budget at once, in supplier order
    select id as order_id, total_fen as amount_fen, supplier_id as n
    from placed where status = 'submitted'
), moved as (
    -- one conditional update decides for every entry together
    update budget_lines
    set reserved_fen = reserved_fen + $11, version = version + $12, updated_at = now()
    where id = $6 and $12 > 0 and reserved_fen + spent_fen + $11 <= amount_fen
      and (select count(*) from stock) = cardinality($8::bigint[])
    returning *
), movements as (
    -- each entry's movement, with the line's figures after it (in entry order)
    select e.order_id, e.amount_fen, m.id as line_id, m.amount_fen as amount_fen_after,
           (m.reserved_fen - 1 * ($11 - sum(e.amount_fen) over w))::bigint
               as reserved_fen_after,
           (m.spent_fen - 0 * ($11 - sum(e.amount_fen) over w))::bigint
               as spent_fen_after,
           m.version - $12 + row_number() over w as version_after
    from moved m cross join entries e
    window w as (order by e.n)
), ledger as (
    insert into budget_ledger (budget_line_id, kind, amount_fen, order_id, created_by)
    select line_id, 'reserve', amount_fen, order_id, $3
    from movements order by version_after
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
       exists (select 1 from moved) as reserved,
       m.amount_fen_after as line_amount_fen, m.spent_fen_after as line_spent_fen,
       m.reserved_fen_after as line_reserved_after, m.version_after as line_version_after
from placed p
left join movements m on m.order_id = p.id
order by p.id
"""
RECORD = """
with events as (
    insert into audit_events (actor_user_id, actor_organisation_id, action, entity_type,
                              entity_id, region_code, before, after, request_id)
    select e.actor_user_id,
           coalesce(e.actor_organisation_id,
                    (select u.organisation_id from users u where u.id = e.actor_user_id)),
           e.action, e.entity_type, e.entity_id, e.region_code, e.before, e.after, e.request_id
    from jsonb_array_elements($1::jsonb) with ordinality as x(doc, n),
         jsonb_to_record(x.doc) as e(
             actor_user_id bigint, actor_organisation_id bigint, action text, entity_type text,
             entity_id text, region_code text, before jsonb, after jsonb, request_id text)
    order by x.n
    returning 1
), messages as (
    insert into outbox (topic, aggregate_type, aggregate_id, payload, available_at, due_at)
    select m.topic, m.aggregate_type, m.aggregate_id, coalesce(m.payload, '{}'::jsonb),
           coalesce(m.not_before, now()), coalesce(m.not_before, now())
    from jsonb_array_elements($2::jsonb) with ordinality as x(doc, n),
         jsonb_to_record(x.doc) as m(
             topic text, aggregate_type text, aggregate_id text, payload jsonb,
             not_before timestamptz)
    order by x.n
    returning 1
)
select (select count(*) from events) as events, (select count(*) from messages) as messages
"""


class RawRefused(Exception):
    """The raw checkout met a refusal: the benchmark's data is wrong (it never should)."""


async def place_order(conn: Any, buyer: RawBuyer) -> dict[str, Any]:
    """A checkout of the buyer's cart, statement for statement as the library does it (one
    read, one write, one record); call inside a transaction. Returns the result the API would
    answer with."""
    region = buyer.region_code
    rows = await conn.fetch(
        READ,
        buyer.user_id,
        region,
        region,
        buyer.budget_line_id,
        datetime.now(_SHANGHAI).date(),
        buyer.agency_id,
    )
    head = rows[0]
    if head["line_agency_id"] != buyer.agency_id or head["rule_id"] is None:
        raise RawRefused("budget line or rule")
    items = [r for r in rows if r["offer_id"] is not None]
    if not items or any(not i["visible"] or i["delivery_days"] is None for i in items):
        raise RawRefused("cart")
    supplier_id = items[0]["supplier_id"]
    total = sum(i["price_fen"] * i["quantity"] for i in items)
    if total > head["ceiling_fen"] or any(i["supplier_id"] != supplier_id for i in items):
        raise RawRefused("one supplier under the ceiling")
    if any(i["earlier_fen"] and i["earlier_fen"] + total > head["ceiling_fen"] for i in items):
        raise RawRefused("splitting: the benchmark keeps every agency under the ceiling")
    warnings = [
        {
            "code": "price_above_median",
            "message": f"单价高于同品目中位价 {i['median_fen']} 分 (price above the category median)",
            "detail": {
                "offer_id": i["offer_id"],
                "supplier_id": supplier_id,
                "unit_price_fen": i["price_fen"],
                "median_fen": i["median_fen"],
            },
        }
        for i in items
        if i["median_fen"] is not None and i["price_fen"] > i["median_fen"]
    ]
    status = "pending_approval" if total > head["approval_threshold_fen"] else "submitted"
    offers = [i["offer_id"] for i in items]
    placed = await conn.fetch(
        WRITE,
        uuid.uuid4(),
        buyer.agency_id,
        buyer.user_id,
        region,
        region,
        buyer.budget_line_id,
        head["rule_id"],
        offers,
        [
            {
                "supplier_id": supplier_id,
                "status": status,
                "total_fen": total,
                "warnings": warnings,
                "splitting": None,
            }
        ],
        [
            {
                "supplier_id": supplier_id,
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
        total if status == "submitted" else 0,
        1 if status == "submitted" else 0,
    )
    row = placed[0]
    if len(row["stocked"] or ()) != len(offers) or (status == "submitted" and not row["reserved"]):
        raise RawRefused("stock or budget")
    order = {
        "id": row["id"],
        "checkout_id": row["checkout_id"],
        "agency_id": buyer.agency_id,
        "buyer_user_id": buyer.user_id,
        "supplier_id": supplier_id,
        "supplier_name": row["supplier_name"],
        "region_code": region,
        "delivery_region_code": region,
        "budget_line_id": buyer.budget_line_id,
        "city_rule_id": head["rule_id"],
        "city_rule_version": head["rule_version"],
        "status": status,
        "status_reason": None,
        "total_fen": total,
        "reserved_fen": row["reserved_fen"],
        "accepted_fen": None,
        "defects": None,
        "payment_due_date": None,
        "paid_fen": None,
        "paid_on": None,
        "payment_reference": None,
        "warnings": row["warnings"],
        "lines": row["lines"],
        "version": row["version"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }
    actor = {
        "actor_user_id": buyer.user_id,
        "actor_organisation_id": buyer.agency_id,
        "region_code": region,
    }
    events = (
        [
            {
                "action": "budget_line.reserved",
                "entity_type": "budget_line",
                "entity_id": str(buyer.budget_line_id),
                **actor,
                "before": None,
                "after": {
                    "kind": "reserve",
                    "amount_fen": total,
                    "order_id": row["id"],
                    "amount_fen_after": row["line_amount_fen"],
                    "reserved_fen_after": row["line_reserved_after"],
                    "spent_fen_after": row["line_spent_fen"],
                    "version": row["line_version_after"],
                },
                "request_id": None,
            }
        ]
        if row["line_reserved_after"] is not None
        else []
    )
    events.append(
        {
            "action": "order.created",
            "entity_type": "order",
            "entity_id": str(row["id"]),
            **actor,
            "before": None,
            "after": order,
            "request_id": None,
        }
    )
    message = {
        "topic": "order.created",
        "aggregate_type": "order",
        "aggregate_id": str(row["id"]),
        "payload": {"status": status, "total_fen": total, "source": "cart"},
        "not_before": None,
    }
    await conn.execute(RECORD, events, [message])
    return {"checkout_id": row["checkout_id"], "orders": [order], "warnings": warnings}


async def api_request(pool: Any, buyer: RawBuyer, key: str, body: bytes) -> None:
    """What ``POST /api/v1/checkout`` with an Idempotency-Key issues: the principal, then one
    transaction with the key's lock and look-up, the checkout, and the stored response."""
    principal = await pool.fetchrow(PRINCIPAL, buyer.user_id)
    if principal is None or not principal["is_active"]:
        raise RawRefused("principal")
    digest = hashlib.sha256(b"checkout\0" + body).hexdigest()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(IDEMPOTENCY_LOCK, buyer.user_id, key)
        if await conn.fetchrow(IDEMPOTENCY_READ, buyer.user_id, key) is not None:
            raise RawRefused("idempotency key reused")
        result = await place_order(conn, buyer)
        await conn.execute(IDEMPOTENCY_WRITE, buyer.user_id, key, "checkout", digest, 201, result)


# The minimal order transaction: the least work that still places an order, as one statement
# told the offers beforehand (as pgbench would be): a conditional stock update of each offer,
# the order, its lines from the offers' products, and an outbox row. No cart, no rule, no
# budget, no warning, no audit event, no idempotency key. $1 offer ids, $2 checkout id,
# $3 agency, $4 user, $5 region, $6 budget line, $7 city rule.
MINIMAL = """
with stock as (
    update offers o set stock = o.stock - 1, sales_count = o.sales_count + 1
    from products p
    where o.id = any($1::bigint[]) and p.id = o.product_id and o.stock >= 1
    returning o.id, o.supplier_id, o.product_id, o.price_fen, p.title, p.unit, p.category_code
), placed as (
    insert into orders (checkout_id, agency_id, buyer_user_id, supplier_id, region_code,
                        delivery_region_code, budget_line_id, city_rule_id, status, total_fen)
    select $2, $3, $4, min(s.supplier_id), $5, $5, $6, $7, 'submitted', sum(s.price_fen)
    from stock s
    having count(*) = cardinality($1::bigint[])
    returning id
), lined as (
    insert into order_lines (order_id, offer_id, product_id, title, unit, category_code,
                             category3_code, unit_price_fen, quantity, line_total_fen,
                             delivery_days)
    select p.id, s.id, s.product_id, s.title, s.unit, s.category_code, s.category_code,
           s.price_fen, 1, s.price_fen, 1
    from placed p cross join stock s
)
insert into outbox (topic, aggregate_type, aggregate_id, payload)
select 'order.created', 'order', id::text, '{}'::jsonb from placed
returning aggregate_id
"""


async def minimal_order(conn: Any, buyer: RawBuyer, rule_id: int) -> None:
    """The minimal order transaction for the buyer's offers; call inside a transaction."""
    placed = await conn.fetchval(
        MINIMAL,
        list(buyer.offers),
        uuid.uuid4(),
        buyer.agency_id,
        buyer.user_id,
        buyer.region_code,
        buyer.budget_line_id,
        rule_id,
    )
    if placed is None:
        raise RawRefused("stock")
