"""Evaluation (评价): after acceptance the buyer rates the supplier, once per order; supplier
scores aggregate the ratings (search can sort by them later)."""

from __future__ import annotations

import asyncpg

from emall.audit import enqueue, record_event
from emall.db.pool import Connection, Pool
from emall.errors import Conflict, NotFound
from emall.ordering.models import EvaluationCreate, EvaluationRead, SupplierScore
from emall.ordering.orders import load_orders, order_resource
from emall.policy import authorize
from emall.principals import OrganisationKind, Principal


async def evaluate(
    conn: Connection, principal: Principal, order_id: int, data: EvaluationCreate
) -> EvaluationRead:
    async with conn.transaction():
        found = await load_orders(conn, [order_id])
        if not found:
            raise NotFound("订单", order_id)
        order, row = found[0]
        authorize(principal, "order.buyer_act", order_resource(principal, row))
        if order.status not in ("accepted", "settled"):
            raise Conflict("验收后才能评价 (rate after acceptance)", current_state=order.status)
        try:
            async with conn.transaction():
                created = await conn.fetchrow(
                    """
                    insert into order_evaluations (order_id, supplier_id, quality, delivery, service, comment, created_by)
                    values ($1, $2, $3, $4, $5, $6, $7)
                    returning order_id, supplier_id, quality, delivery, service, comment, created_by, created_at
                    """,
                    order_id,
                    order.supplier_id,
                    data.quality,
                    data.delivery,
                    data.service,
                    data.comment,
                    principal.user_id,
                )
        except asyncpg.UniqueViolationError:
            raise Conflict(
                "该订单已评价 (this order is already rated)", current_state="rated"
            ) from None
        assert created is not None
        evaluation = EvaluationRead(**dict(created))
        await record_event(
            conn,
            actor=principal,
            action="order.rated",
            entity_type="order",
            entity_id=order_id,
            region_code=order.region_code,
            after=evaluation,
        )
        await enqueue(
            conn,
            topic="supplier.changed",
            aggregate_type="supplier",
            aggregate_id=order.supplier_id,
            payload={"fields": ["score"]},
        )
    return evaluation


async def supplier_score(
    conn: Connection | Pool, principal: Principal, supplier_id: int
) -> SupplierScore:
    authorize(principal, "organisation.read")
    kind = await conn.fetchval("select kind from organisations where id = $1", supplier_id)
    if kind != OrganisationKind.SUPPLIER:
        raise NotFound("供应商", supplier_id)
    row = await conn.fetchrow(
        """
        select count(*) as ratings,
               round(avg(quality), 2)::float8 as quality, round(avg(delivery), 2)::float8 as delivery,
               round(avg(service), 2)::float8 as service,
               round(avg((quality + delivery + service) / 3.0), 2)::float8 as overall
        from order_evaluations where supplier_id = $1
        """,
        supplier_id,
    )
    assert row is not None
    return SupplierScore(supplier_id=supplier_id, **dict(row))
