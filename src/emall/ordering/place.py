"""Orders are placed here, and only here: the one writer of orders, their lines, their stock,
their budget reservations and their flags (a cart's checkout now; an award or an agreement's
call-off later).

``place`` takes orders already priced and decided by the rules (``emall.ordering.rules``) and
writes them all in one statement with data-modifying CTEs: it takes the stock with one
conditional update per offer (never oversold), inserts the orders and their lines, reserves the
budget of the submitted orders with one conditional update of the line and a ledger row per
order, and flags acknowledged splitting to the region's operator. A second statement records
the audit events (each budget movement in ``emall.budgets``' shape, then each order) and the
outbox rows (``emall.audit.record``). The statement locks the offers in id order before the
budget line, as concurrent placements must never wait on each other in a cycle. A refusal (no
stock, no budget) raises, and the caller's transaction undoes everything.
"""

from __future__ import annotations

import uuid
from typing import Literal

import asyncpg
import msgspec

from emall.audit import AuditEvent, OutboxMessage, record
from emall.budgets.movements import movement_ctes, movement_event
from emall.db.pool import Connection
from emall.errors import Conflict
from emall.ordering.events import ORDER_CREATED
from emall.ordering.models import CheckoutWarning, OrderLineRead, OrderRead
from emall.ordering.rules import PlannedOrder, Rule
from emall.principals import Principal

Source = Literal["cart"]  # later: "award", "agreement"


class Placement(msgspec.Struct, frozen=True, kw_only=True):
    """Where the orders go and what they are charged to and checked against."""

    source: Source
    delivery_region_code: str
    budget_line_id: int
    rule: Rule
    checkout_id: uuid.UUID = msgspec.field(default_factory=uuid.uuid4)


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
), entries as (
    -- the submitted orders reserve their budget at once, in supplier order
    select id as order_id, total_fen as amount_fen, supplier_id as n
    from placed where status = 'submitted'
), {RESERVE}, flagged as (
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
""".replace(
    "{RESERVE}",
    # the offers are locked first: the line's update reads that every offer's stock was taken
    movement_ctes(
        "reserve",
        line="$6",
        entries="entries",
        amount="$11",
        count="$12",
        actor="$3",
        when="(select count(*) from stock) = cardinality($8::bigint[])",
    ),
)


async def place(
    conn: Connection, principal: Principal, placement: Placement, orders: list[PlannedOrder]
) -> list[OrderRead]:
    """Write ``orders`` for the principal's agency in the caller's transaction; the caller has
    authorised the principal and the rules have decided each order."""
    lines = sorted((line for order in orders for line in order.lines), key=lambda x: x.offer_id)
    submitted = [o.total_fen for o in orders if o.status == "submitted"]
    placed = await conn.fetch(
        _WRITE,
        placement.checkout_id,
        principal.organisation_id,
        principal.user_id,
        principal.region_code,
        placement.delivery_region_code,
        placement.budget_line_id,
        placement.rule.id,
        [line.offer_id for line in lines],
        [_order_json(order) for order in orders],
        [_line_json(line) for line in lines],
        sum(submitted),
        len(submitted),
    )
    stocked = set(placed[0]["stocked"] or ())
    for line in lines:  # in offer id order, as the stock was taken
        if line.offer_id not in stocked:
            raise Conflict(f"库存不足 (insufficient stock): offer {line.offer_id}")
    if submitted and not placed[0]["reserved"]:
        await _refuse_budget(conn, placement.budget_line_id, submitted)
    read = [_read(row, principal, placement) for row in placed]
    await record(
        conn,
        _events(principal, placement.budget_line_id, placed, read),
        _messages(read, placement.source),
    )
    return read


def _order_json(order: PlannedOrder) -> dict[str, object]:
    return {
        "supplier_id": order.supplier_id,
        "status": order.status,
        "total_fen": order.total_fen,
        "warnings": [
            {"code": w.code, "message": w.message, "detail": w.detail} for w in order.warnings
        ],
        "splitting": {"warnings": order.splitting} if order.splitting else None,
    }


def _line_json(line: object) -> dict[str, object]:
    fields = (
        "supplier_id",
        "offer_id",
        "product_id",
        "title",
        "unit",
        "category_code",
        "category3_code",
        "unit_price_fen",
        "quantity",
        "delivery_days",
        "policy_tags",
    )
    return {name: getattr(line, name) for name in fields}


def _read(row: asyncpg.Record, principal: Principal, placement: Placement) -> OrderRead:
    """The order as ``emall.ordering.orders`` reads one, from the row the statement returned."""
    return OrderRead(
        id=row["id"],
        checkout_id=row["checkout_id"],
        agency_id=principal.organisation_id,
        buyer_user_id=principal.user_id,
        supplier_id=row["supplier_id"],
        supplier_name=row["supplier_name"],
        region_code=principal.region_code,
        delivery_region_code=placement.delivery_region_code,
        budget_line_id=placement.budget_line_id,
        city_rule_id=placement.rule.id,
        city_rule_version=placement.rule.version,
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
        movement_event(
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


def _messages(orders: list[OrderRead], source: Source) -> list[OutboxMessage]:
    return [
        OutboxMessage(
            topic=ORDER_CREATED,
            aggregate_type="order",
            aggregate_id=str(order.id),
            payload={"status": order.status, "total_fen": order.total_fen, "source": source},
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
