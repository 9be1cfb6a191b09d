"""The cart, checkout, and orders."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter, JSONBody

from api.deps import AUTH, DB
from api.problems import problem_responses
from api.routes.identity import SECURITY
from emall.db.pool import Connection
from emall.identity.models import Principal
from emall.ordering import cart, checkout, idempotency, orders
from emall.ordering.models import Cart, CartItemWrite, CheckoutRequest, CheckoutResult, OrderRead

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        max_length=200,
        description="makes a retry safe: the same key and body give the same result",
    ),
]


class CartController(Controller):
    path = "/cart"
    tags = ["ordering"]
    dependencies = {**AUTH, **DB}
    security = SECURITY

    @get(operation_id="getCart", summary="The buyer's cart", responses=problem_responses(401, 403))
    async def get_cart(
        self, principal: NamedDependency[Principal], conn: NamedDependency[Connection]
    ) -> Cart:
        """The offers in the cart with quantities and current prices (fen)."""
        return await cart.get_cart(conn, principal)

    @put(
        "/items",
        operation_id="putCartItem",
        summary="Put an offer in the cart",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def put_item(
        self,
        data: JSONBody[CartItemWrite],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> Cart:
        """An offer the buyer may buy, with a quantity of at least its minimum order."""
        return await cart.put_item(conn, principal, data)

    @delete(
        "/items/{offer_id:int}",
        operation_id="removeCartItem",
        summary="Take an offer out of the cart",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404),
    )
    async def remove_item(
        self,
        offer_id: FromPath[int],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> Cart:
        """Remove one offer from the cart."""
        return await cart.remove_item(conn, principal, offer_id)


class CheckoutController(Controller):
    path = "/checkout"
    tags = ["ordering"]
    dependencies = {**AUTH, **DB}
    security = SECURITY

    @post(
        operation_id="checkout",
        summary="Check out the cart",
        responses=problem_responses(400, 401, 403, 409, 422),
    )
    async def checkout(
        self,
        data: JSONBody[CheckoutRequest],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Any]:
        """One order per supplier, each checked against the city's rules. 409 lists warnings to
        acknowledge (price above median, order splitting); 422 refuses an order above the
        e-mall ceiling. With Idempotency-Key, a retry returns the first result."""
        digest = idempotency.request_hash("checkout", data)
        if idempotency_key is not None:
            stored = await idempotency.replay(conn, principal, idempotency_key, "checkout", digest)
            if stored is not None:
                return Response(stored[1], status_code=stored[0])
        result: CheckoutResult = await checkout.checkout(conn, principal, data)
        if idempotency_key is not None:
            await idempotency.remember(
                conn, principal, idempotency_key, "checkout", digest, 201, result
            )
        return Response(result, status_code=201)


class OrderController(Controller):
    path = "/orders"
    tags = ["ordering"]
    dependencies = {**AUTH, **DB}
    security = SECURITY

    @get(
        "/{order_id:int}",
        operation_id="getOrder",
        summary="One order",
        responses=problem_responses(400, 401, 404),
    )
    async def get_order(
        self,
        order_id: FromPath[int],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> OrderRead:
        """The order with its lines, warnings, budget line and city-rule version."""
        return await orders.get_order(conn, principal, order_id)
