"""The order lifecycle, and what each step does to budget and stock.

    pending_approval ─approve→ submitted            (budget reserved at approval)
    pending_approval ─reject→  rejected             (stock returned)
    submitted ─confirm→ confirmed | partially_confirmed   (unconfirmed budget and stock returned)
    submitted ─supplier_reject→ rejected            (budget released, stock returned)
    confirmed | partially_confirmed ─ship→ shipped ─deliver→ delivered
    delivered ─accept→ accepted                     (accepted amount fixed; payment due date set)
    accepted ─settle→ settled                       (accepted amount spent, the rest released)
    pending_approval | submitted | confirmed | partially_confirmed ─cancel→ cancelled
                                                    (before shipment: budget and stock returned)

An illegal transition is a ``Conflict`` with the current state. Every transition writes an audit
event and an ``order.changed`` outbox row (webhooks, statistics) in its transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, date, datetime, timedelta

from emall.audit import enqueue, record_event
from emall.budgets import service as budgets
from emall.clock import today
from emall.db.pool import Connection
from emall.errors import Conflict, NotFound, ValidationFailed
from emall.ordering.events import ORDER_CHANGED
from emall.ordering.flags import schedule_payment_check
from emall.ordering.models import OrderRead, OrderStatus
from emall.ordering.orders import load_orders, order_resource
from emall.policy import authorize
from emall.principals import Principal

Step = Callable[[Connection, OrderRead], Awaitable[dict[str, object]]]


async def _move(
    conn: Connection,
    principal: Principal,
    order_id: int,
    *,
    action: str,
    allowed_from: tuple[OrderStatus, ...],
    to: OrderStatus | Callable[[OrderRead], OrderStatus],
    reason: str | None = None,
    step: Step | None = None,
) -> OrderRead:
    async with conn.transaction():
        locked = await conn.fetchval("select id from orders where id = $1 for update", order_id)
        if locked is None:
            raise NotFound("订单", order_id)
        before, row = (await load_orders(conn, [order_id]))[0]
        authorize(principal, action, order_resource(principal, row))
        if before.status not in allowed_from:
            target = to if isinstance(to, str) else "/".join(allowed_from)
            raise Conflict(
                f"订单当前状态为 {before.status}，不能执行此操作 (order is {before.status}; cannot move to {target})",
                current_state=before.status,
            )
        changes = await step(conn, before) if step is not None else {}
        status = to if isinstance(to, str) else to(before)
        sets = ", ".join(f"{column} = ${n}" for n, column in enumerate(changes, start=4))
        await conn.execute(
            f"update orders set status = $2, status_reason = coalesce($3, status_reason), "
            f"version = version + 1, updated_at = now(){', ' + sets if sets else ''} where id = $1",
            order_id,
            status,
            reason,
            *changes.values(),
        )
        after = (await load_orders(conn, [order_id]))[0][0]
        await record_event(
            conn,
            actor=principal,
            action=f"order.{status}",
            entity_type="order",
            entity_id=order_id,
            region_code=after.region_code,
            before=before,
            after=after,
        )
        await enqueue(
            conn,
            topic=ORDER_CHANGED,
            aggregate_type="order",
            aggregate_id=order_id,
            payload={"from": before.status, "to": status},
        )
    return after


async def _return_stock(conn: Connection, quantities: Mapping[int, int]) -> None:
    for offer_id, quantity in sorted(quantities.items()):
        if quantity > 0:
            await conn.execute(
                "update offers set stock = stock + $2, sales_count = greatest(sales_count - $2, 0) "
                "where id = $1",
                offer_id,
                quantity,
            )


async def _release(conn: Connection, principal: Principal, order: OrderRead, amount: int) -> int:
    if amount > 0:
        await budgets.release(
            conn, order.budget_line_id, amount, order_id=order.id, actor_user_id=principal.user_id
        )
    return order.reserved_fen - amount


def _open_quantities(order: OrderRead) -> dict[int, int]:
    """What each line still holds of stock: its confirmed quantity once confirmed, else all."""
    held: dict[int, int] = {}
    for line in order.lines:
        kept = line.quantity if line.confirmed_quantity is None else line.confirmed_quantity
        held[line.offer_id] = held.get(line.offer_id, 0) + kept
    return held


async def approve(conn: Connection, principal: Principal, order_id: int) -> OrderRead:
    """The agency's approver lets an order above the threshold go to the supplier."""

    async def step(c: Connection, order: OrderRead) -> dict[str, object]:
        await budgets.reserve(
            c,
            order.budget_line_id,
            order.total_fen,
            order_id=order.id,
            actor_user_id=principal.user_id,
        )
        return {
            "reserved_fen": order.total_fen,
            "approved_by": principal.user_id,
            "approved_at": _now(),
        }

    return await _move(
        conn,
        principal,
        order_id,
        action="order.approve",
        allowed_from=("pending_approval",),
        to="submitted",
        step=step,
    )


async def reject_by_approver(
    conn: Connection, principal: Principal, order_id: int, reason: str
) -> OrderRead:
    async def step(c: Connection, order: OrderRead) -> dict[str, object]:
        await _return_stock(c, _open_quantities(order))
        return {"approved_by": principal.user_id, "approved_at": _now()}

    return await _move(
        conn,
        principal,
        order_id,
        action="order.approve",
        allowed_from=("pending_approval",),
        to="rejected",
        reason=reason,
        step=step,
    )


async def confirm(
    conn: Connection,
    principal: Principal,
    order_id: int,
    quantities: Mapping[int, int] | None = None,
) -> OrderRead:
    """The supplier confirms all lines, or some quantities per line (by line id)."""

    async def step(c: Connection, order: OrderRead) -> dict[str, object]:
        chosen = dict(quantities or {})
        unknown = sorted(set(chosen) - {line.id for line in order.lines})
        if unknown:
            raise ValidationFailed.single(
                "quantities", f"订单中没有这些明细 (no such lines): {unknown}"
            )
        returned: dict[int, int] = {}
        released = 0
        for line in order.lines:
            confirmed = chosen.get(line.id, line.quantity)
            if not 0 <= confirmed <= line.quantity:
                raise ValidationFailed.single(
                    f"quantities.{line.id}", f"应在 0 到 {line.quantity} 之间 (0..{line.quantity})"
                )
            await c.execute(
                "update order_lines set confirmed_quantity = $2 where id = $1", line.id, confirmed
            )
            returned[line.offer_id] = returned.get(line.offer_id, 0) + line.quantity - confirmed
            released += (line.quantity - confirmed) * line.unit_price_fen
        if released == order.total_fen:
            raise ValidationFailed.single(
                "quantities", "至少确认一项，全部不供请拒绝订单 (confirm something, or reject)"
            )
        await _return_stock(c, returned)
        return {
            "reserved_fen": await _release(c, principal, order, released),
            "confirmed_at": _now(),
        }

    def outcome(order: OrderRead) -> OrderStatus:
        partial = any(
            (quantities or {}).get(line.id, line.quantity) < line.quantity for line in order.lines
        )
        return "partially_confirmed" if partial else "confirmed"

    return await _move(
        conn,
        principal,
        order_id,
        action="order.supplier_act",
        allowed_from=("submitted",),
        to=outcome,
        step=step,
    )


async def supplier_reject(
    conn: Connection, principal: Principal, order_id: int, reason: str
) -> OrderRead:
    async def step(c: Connection, order: OrderRead) -> dict[str, object]:
        await _return_stock(c, _open_quantities(order))
        return {"reserved_fen": await _release(c, principal, order, order.reserved_fen)}

    return await _move(
        conn,
        principal,
        order_id,
        action="order.supplier_act",
        allowed_from=("submitted",),
        to="rejected",
        reason=reason,
        step=step,
    )


async def ship(conn: Connection, principal: Principal, order_id: int) -> OrderRead:
    async def step(c: Connection, order: OrderRead) -> dict[str, object]:
        return {"shipped_at": _now()}

    return await _move(
        conn,
        principal,
        order_id,
        action="order.supplier_act",
        allowed_from=("confirmed", "partially_confirmed"),
        to="shipped",
        step=step,
    )


async def deliver(conn: Connection, principal: Principal, order_id: int) -> OrderRead:
    async def step(c: Connection, order: OrderRead) -> dict[str, object]:
        return {"delivered_at": _now()}

    return await _move(
        conn,
        principal,
        order_id,
        action="order.supplier_act",
        allowed_from=("shipped",),
        to="delivered",
        step=step,
    )


async def accept(
    conn: Connection,
    principal: Principal,
    order_id: int,
    accepted: Mapping[int, int] | None = None,
    defects: str | None = None,
) -> OrderRead:
    """The buyer accepts (验收) what was delivered, fully or per line, recording any defects."""

    async def step(c: Connection, order: OrderRead) -> dict[str, object]:
        chosen = dict(accepted or {})
        amount = 0
        for line in order.lines:
            delivered = (
                line.quantity if line.confirmed_quantity is None else line.confirmed_quantity
            )
            quantity = chosen.get(line.id, delivered)
            if not 0 <= quantity <= delivered:
                raise ValidationFailed.single(
                    f"accepted.{line.id}", f"应在 0 到 {delivered} 之间 (0..{delivered})"
                )
            await c.execute(
                "update order_lines set accepted_quantity = $2 where id = $1", line.id, quantity
            )
            amount += quantity * line.unit_price_fen
        term = await c.fetchval(
            "select payment_term_days from city_rules where id = $1", order.city_rule_id
        )
        due = today() + timedelta(days=int(term))
        await schedule_payment_check(c, order.id, due)
        return {
            "accepted_fen": amount,
            "defects": defects,
            "accepted_at": _now(),
            "payment_due_date": due,
        }

    return await _move(
        conn,
        principal,
        order_id,
        action="order.buyer_act",
        allowed_from=("delivered",),
        to="accepted",
        step=step,
    )


async def settle(
    conn: Connection,
    principal: Principal,
    order_id: int,
    *,
    amount_fen: int,
    paid_on: date,
    reference: str,
) -> OrderRead:
    """Payment is recorded: the accepted amount becomes spent, the rest of the reservation is freed."""

    async def step(c: Connection, order: OrderRead) -> dict[str, object]:
        accepted = int(await c.fetchval("select accepted_fen from orders where id = $1", order.id))
        if amount_fen != accepted:
            raise ValidationFailed.single(
                "amount_fen",
                f"付款金额应等于验收金额 {accepted} 分 (must equal the accepted amount)",
            )
        if accepted > 0:
            await budgets.spend(
                c,
                order.budget_line_id,
                accepted,
                order_id=order.id,
                actor_user_id=principal.user_id,
            )
        left = await _release(c, principal, order, order.reserved_fen - accepted)
        assert left == accepted
        return {
            "reserved_fen": 0,
            "paid_fen": amount_fen,
            "paid_on": paid_on,
            "payment_reference": reference,
            "settled_at": _now(),
        }

    return await _move(
        conn,
        principal,
        order_id,
        action="order.buyer_act",
        allowed_from=("accepted",),
        to="settled",
        step=step,
    )


async def cancel(conn: Connection, principal: Principal, order_id: int, reason: str) -> OrderRead:
    """The buyer (or the approver while it waits) cancels before shipment."""

    async def step(c: Connection, order: OrderRead) -> dict[str, object]:
        await _return_stock(c, _open_quantities(order))
        return {"reserved_fen": await _release(c, principal, order, order.reserved_fen)}

    return await _move(
        conn,
        principal,
        order_id,
        action="order.buyer_act",
        allowed_from=("pending_approval", "submitted", "confirmed", "partially_confirmed"),
        to="cancelled",
        reason=reason,
        step=step,
    )


def _now() -> datetime:
    return datetime.now(UTC)
