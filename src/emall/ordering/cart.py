"""The buyer's cart: offers and quantities, checked against what the buyer may buy."""

from __future__ import annotations

import asyncpg

from emall.db.pool import Connection, Pool
from emall.errors import NotFound, ValidationFailed
from emall.listings.offers import BUYER_VISIBLE_SQL
from emall.ordering.models import Cart, CartItemRead, CartItemWrite
from emall.policy import Resource, authorize
from emall.principals import Principal

_ITEMS = """
select c.offer_id, p.title, o.supplier_id, s.name as supplier_name, o.price_fen as unit_price_fen,
       c.quantity, o.price_fen * c.quantity as line_total_fen, o.stock, o.min_order_qty, c.added_at
from cart_items c
join offers o on o.id = c.offer_id
join products p on p.id = o.product_id
join organisations s on s.id = o.supplier_id
where c.user_id = $1
order by c.added_at, c.offer_id
"""


def _own(principal: Principal) -> Resource:
    return Resource("cart", principal.user_id, organisation_id=principal.organisation_id)


async def get_cart(conn: Connection | Pool, principal: Principal) -> Cart:
    authorize(principal, "order.create", _own(principal))
    items = [CartItemRead(**dict(r)) for r in await conn.fetch(_ITEMS, principal.user_id)]
    return Cart(items=items, total_fen=sum(i.line_total_fen for i in items))


async def put_item(conn: Connection, principal: Principal, data: CartItemWrite) -> Cart:
    """Put an offer in the cart with this quantity (replacing an earlier quantity)."""
    authorize(principal, "order.create", _own(principal))
    offer = await conn.fetchrow(
        f"select o.id, o.min_order_qty, {BUYER_VISIBLE_SQL.format(r='$2')} as visible "
        "from offers o where o.id = $1",
        data.offer_id,
        principal.region_code,
    )
    if offer is None or not offer["visible"]:
        raise NotFound("报价", data.offer_id)
    if data.quantity < offer["min_order_qty"]:
        raise ValidationFailed.single(
            "quantity",
            f"低于最小起订量 {offer['min_order_qty']} (below the minimum order quantity)",
        )
    await conn.execute(
        """
        insert into cart_items (user_id, offer_id, quantity) values ($1, $2, $3)
        on conflict (user_id, offer_id) do update set quantity = excluded.quantity, updated_at = now()
        """,
        principal.user_id,
        data.offer_id,
        data.quantity,
    )
    return await get_cart(conn, principal)


async def remove_item(conn: Connection, principal: Principal, offer_id: int) -> Cart:
    authorize(principal, "order.create", _own(principal))
    removed: asyncpg.Record | None = await conn.fetchrow(
        "delete from cart_items where user_id = $1 and offer_id = $2 returning offer_id",
        principal.user_id,
        offer_id,
    )
    if removed is None:
        raise NotFound("购物车商品", offer_id)
    return await get_cart(conn, principal)
