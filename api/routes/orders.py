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
from emall.ordering import cart, checkout, evaluations, idempotency, lifecycle, orders
from emall.ordering.models import (
    AcceptRequest,
    Cart,
    CartItemWrite,
    CheckoutRequest,
    CheckoutResult,
    ConfirmRequest,
    EvaluationCreate,
    EvaluationRead,
    OrderRead,
    Reason,
    SettleRequest,
    SupplierScore,
)

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


class SupplierScoreController(Controller):
    path = "/suppliers/{supplier_id:int}/score"
    tags = ["ordering"]
    dependencies = {**AUTH, **DB}
    security = SECURITY

    @get(
        operation_id="getSupplierScore",
        summary="A supplier's rating",
        responses=problem_responses(400, 401, 404),
    )
    async def score(
        self,
        supplier_id: FromPath[int],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> SupplierScore:
        """The averages of the ratings agencies gave the supplier after acceptance."""
        return await evaluations.supplier_score(conn, principal, supplier_id)


class OrderLifecycleController(Controller):
    path = "/orders/{order_id:int}"
    tags = ["ordering"]
    dependencies = {**AUTH, **DB}
    security = SECURITY

    @post(
        "/approve",
        operation_id="approveOrder",
        summary="Approve (agency approver)",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409),
    )
    async def approve(
        self,
        order_id: FromPath[int],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> OrderRead:
        """An order above the approval threshold goes to the supplier; its budget is reserved now."""
        return await lifecycle.approve(conn, principal, order_id)

    @post(
        "/reject",
        operation_id="rejectOrder",
        summary="Reject (agency approver)",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409),
    )
    async def reject(
        self,
        order_id: FromPath[int],
        data: JSONBody[Reason],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> OrderRead:
        """The approver refuses a waiting order, with a reason; its stock is returned."""
        return await lifecycle.reject_by_approver(conn, principal, order_id, data.reason)

    @post(
        "/confirm",
        operation_id="confirmOrder",
        summary="Confirm, fully or per line (supplier)",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409),
    )
    async def confirm(
        self,
        order_id: FromPath[int],
        data: JSONBody[ConfirmRequest],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> OrderRead:
        """Quantities per line id; what is not confirmed goes back to stock and budget."""
        return await lifecycle.confirm(conn, principal, order_id, data.quantities)

    @post(
        "/decline",
        operation_id="declineOrder",
        summary="Decline (supplier)",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409),
    )
    async def decline(
        self,
        order_id: FromPath[int],
        data: JSONBody[Reason],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> OrderRead:
        """The supplier rejects the order, with a reason; budget and stock are released."""
        return await lifecycle.supplier_reject(conn, principal, order_id, data.reason)

    @post(
        "/ship",
        operation_id="shipOrder",
        summary="Ship (supplier)",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409),
    )
    async def ship(
        self,
        order_id: FromPath[int],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> OrderRead:
        """The supplier has sent the goods."""
        return await lifecycle.ship(conn, principal, order_id)

    @post(
        "/deliver",
        operation_id="deliverOrder",
        summary="Deliver (supplier)",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409),
    )
    async def deliver(
        self,
        order_id: FromPath[int],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> OrderRead:
        """The goods have arrived; the buyer can accept them."""
        return await lifecycle.deliver(conn, principal, order_id)

    @post(
        "/accept",
        operation_id="acceptOrder",
        summary="Accept (验收, buyer)",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409),
    )
    async def accept(
        self,
        order_id: FromPath[int],
        data: JSONBody[AcceptRequest],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> OrderRead:
        """Accept all or part per line, recording defects; the payment due date is set from the
        city rule's payment term."""
        return await lifecycle.accept(conn, principal, order_id, data.accepted, data.defects)

    @post(
        "/settle",
        operation_id="settleOrder",
        summary="Record payment (buyer)",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409),
    )
    async def settle(
        self,
        order_id: FromPath[int],
        data: JSONBody[SettleRequest],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> OrderRead:
        """The accepted amount, paid on a date with a reference, becomes spent budget."""
        return await lifecycle.settle(
            conn,
            principal,
            order_id,
            amount_fen=data.amount_fen,
            paid_on=data.paid_on,
            reference=data.reference,
        )

    @post(
        "/evaluation",
        operation_id="rateOrder",
        summary="Rate the supplier (buyer, once)",
        responses=problem_responses(400, 401, 403, 404, 409),
    )
    async def rate(
        self,
        order_id: FromPath[int],
        data: JSONBody[EvaluationCreate],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> EvaluationRead:
        """After acceptance: quality, delivery and service from 1 to 5, with a comment; once per order."""
        return await evaluations.evaluate(conn, principal, order_id, data)

    @post(
        "/cancel",
        operation_id="cancelOrder",
        summary="Cancel before shipment (buyer)",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409),
    )
    async def cancel(
        self,
        order_id: FromPath[int],
        data: JSONBody[Reason],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> OrderRead:
        """Budget and stock are released."""
        return await lifecycle.cancel(conn, principal, order_id, data.reason)
