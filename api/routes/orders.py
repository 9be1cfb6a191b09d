"""The cart, checkout, and orders."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from litestar import Controller, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody, QueryParameter

from api.deps import AUTH, DB
from api.idempotent import IdempotencyKey, idempotent
from api.params import DEFAULT_LIMIT, IdFilter, PageCursor, PageLimit, PathId
from api.problems import problem_responses
from api.routes.identity import SECURITY
from emall.db.pool import Connection
from emall.ordering import cart, checkout, evaluations, lifecycle, lists, orders
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
    OrderStatus,
    OrderSummary,
    Reason,
    SettleRequest,
    SupplierScore,
)
from emall.pagination import Page
from emall.principals import Principal
from emall.structs import REGION_CODE


class CartController(Controller):
    path = "/cart"
    tags = ["ordering"]
    dependencies = {**AUTH, **DB}
    security = SECURITY

    @get(operation_id="getCart", summary="The buyer's cart", responses=problem_responses(401, 403))
    async def get_cart(
        self, principal: NamedDependency[Principal], conn: NamedDependency[Connection]
    ) -> Cart:
        """The offers in the buyer's cart, each with its quantity, its current price and its
        line total (fen), and the cart's total. A buyer has one cart; it is emptied by a
        successful checkout (``POST /api/v1/checkout``). Only an agency's buyer has a cart: other
        roles get 403."""
        return await cart.get_cart(conn, principal)

    @put(
        "/items",
        operation_id="putCartItem",
        summary="Put an offer in the cart",
        responses=problem_responses(400, 401, 403, 404, 413),
    )
    async def put_item(
        self,
        data: JSONBody[CartItemWrite],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> Cart:
        """Put a listed offer the buyer may buy into the cart, replacing an earlier quantity.
        The quantity must be at least the offer's ``min_order_qty`` (shown by
        ``GET /api/v1/offers/{offer_id}``): below it the answer is 422 naming ``quantity``.
        An offer that does not exist, or that the buyer's region may not buy or get delivered,
        is 404; a body that does not match the document is 400."""
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
        offer_id: PathId,
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
        responses=problem_responses(400, 401, 403, 409, 422, 413),
    )
    async def checkout(
        self,
        data: JSONBody[CheckoutRequest],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[CheckoutResult]:
        """Turn the cart into orders: one per supplier, with a snapshot of price and terms, each
        checked against the city rule in force. ``budget_line_id`` is the agency's budget line
        to pay from: ``GET /api/v1/budget-lines`` lists the agency's lines with their ``id`` and
        available amount. The answer is 201 with the orders, and the cart is emptied.

        - 409 lists ``warnings`` to acknowledge (``price_above_median``, ``splitting``): send
          the same request again with their codes in ``acknowledge``. 409 also answers when the
          budget line or an offer's stock is insufficient, or the region has no rule in force.
        - 422 refuses an order above the e-mall ceiling (a formal procedure is required), an
          empty cart, a quantity below an offer's minimum order, an offer no longer buyable,
          another agency's budget line, or an ``Idempotency-Key`` reused with another request.
        - With ``Idempotency-Key``, a retry with the same key and body returns the first
          result (``Idempotent-Replayed: true``)."""
        return await idempotent(
            conn,
            principal,
            idempotency_key,
            "checkout",
            data,
            lambda: checkout.checkout(conn, principal, data),
            CheckoutResult,
            status_code=201,
        )


class OrderController(Controller):
    path = "/orders"
    tags = ["ordering"]
    dependencies = {**AUTH, **DB}
    security = SECURITY

    @get(operation_id="listOrders", summary="Orders", responses=problem_responses(400, 401))
    async def list_orders(
        self,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        status: FromQuery[list[OrderStatus] | None] = None,
        agency_id: IdFilter = None,
        supplier_id: IdFilter = None,
        region_code: Annotated[
            str | None,
            QueryParameter(pattern=REGION_CODE, description="a region and everything under it"),
        ] = None,
        overdue: FromQuery[bool] = False,
        created_from: FromQuery[date | None] = None,
        created_to: FromQuery[date | None] = None,
        cursor: PageCursor = None,
        limit: PageLimit = DEFAULT_LIMIT,
    ) -> Page[OrderSummary]:
        """Newest first. An agency sees its orders, a supplier the orders placed with it, an
        operator or auditor the orders of its regions (``region_code`` narrows to a region and
        everything under it); ``overdue=true`` keeps accepted orders past their payment date."""
        return await lists.list_orders(
            conn,
            principal,
            status=status,
            agency_id=agency_id,
            supplier_id=supplier_id,
            region_code=region_code,
            overdue_only=overdue,
            created_from=created_from,
            created_to=created_to,
            cursor=cursor,
            limit=limit,
        )

    @get(
        "/approval-queue",
        operation_id="listOrdersToApprove",
        summary="The approval queue (agency approver)",
        responses=problem_responses(400, 401, 403),
    )
    async def approval_queue(
        self,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        cursor: PageCursor = None,
        limit: PageLimit = DEFAULT_LIMIT,
    ) -> Page[OrderSummary]:
        """The agency's orders above the approval threshold, waiting, oldest first."""
        return await lists.approval_queue(conn, principal, cursor=cursor, limit=limit)

    @get(
        "/{order_id:int}",
        operation_id="getOrder",
        summary="One order",
        responses=problem_responses(400, 401, 404),
    )
    async def get_order(
        self,
        order_id: PathId,
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
        supplier_id: PathId,
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
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def approve(
        self,
        order_id: PathId,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[OrderRead]:
        """An order above the approval threshold goes to the supplier; its budget is reserved now."""
        return await idempotent(
            conn,
            principal,
            idempotency_key,
            f"order.{order_id}.approve",
            None,
            lambda: lifecycle.approve(conn, principal, order_id),
            OrderRead,
        )

    @post(
        "/reject",
        operation_id="rejectOrder",
        summary="Reject (agency approver)",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409, 422, 413),
    )
    async def reject(
        self,
        order_id: PathId,
        data: JSONBody[Reason],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[OrderRead]:
        """The approver refuses a waiting order, with a reason; its stock is returned."""
        return await idempotent(
            conn,
            principal,
            idempotency_key,
            f"order.{order_id}.reject",
            data,
            lambda: lifecycle.reject_by_approver(conn, principal, order_id, data.reason),
            OrderRead,
        )

    @post(
        "/confirm",
        operation_id="confirmOrder",
        summary="Confirm, fully or per line (supplier)",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409, 422, 413),
    )
    async def confirm(
        self,
        order_id: PathId,
        data: JSONBody[ConfirmRequest],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[OrderRead]:
        """Quantities per line id; what is not confirmed goes back to stock and budget."""
        return await idempotent(
            conn,
            principal,
            idempotency_key,
            f"order.{order_id}.confirm",
            data,
            lambda: lifecycle.confirm(conn, principal, order_id, data.quantities),
            OrderRead,
        )

    @post(
        "/decline",
        operation_id="declineOrder",
        summary="Decline (supplier)",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409, 422, 413),
    )
    async def decline(
        self,
        order_id: PathId,
        data: JSONBody[Reason],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[OrderRead]:
        """The supplier rejects the order, with a reason; budget and stock are released."""
        return await idempotent(
            conn,
            principal,
            idempotency_key,
            f"order.{order_id}.decline",
            data,
            lambda: lifecycle.supplier_reject(conn, principal, order_id, data.reason),
            OrderRead,
        )

    @post(
        "/ship",
        operation_id="shipOrder",
        summary="Ship (supplier)",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def ship(
        self,
        order_id: PathId,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[OrderRead]:
        """The supplier has sent the goods."""
        return await idempotent(
            conn,
            principal,
            idempotency_key,
            f"order.{order_id}.ship",
            None,
            lambda: lifecycle.ship(conn, principal, order_id),
            OrderRead,
        )

    @post(
        "/deliver",
        operation_id="deliverOrder",
        summary="Deliver (supplier)",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409, 422),
    )
    async def deliver(
        self,
        order_id: PathId,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[OrderRead]:
        """The goods have arrived; the buyer can accept them."""
        return await idempotent(
            conn,
            principal,
            idempotency_key,
            f"order.{order_id}.deliver",
            None,
            lambda: lifecycle.deliver(conn, principal, order_id),
            OrderRead,
        )

    @post(
        "/accept",
        operation_id="acceptOrder",
        summary="Accept (验收, buyer)",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409, 422, 413),
    )
    async def accept(
        self,
        order_id: PathId,
        data: JSONBody[AcceptRequest],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[OrderRead]:
        """Accept all or part per line, recording defects; the payment due date is set from the
        city rule's payment term."""
        return await idempotent(
            conn,
            principal,
            idempotency_key,
            f"order.{order_id}.accept",
            data,
            lambda: lifecycle.accept(conn, principal, order_id, data.accepted, data.defects),
            OrderRead,
        )

    @post(
        "/settle",
        operation_id="settleOrder",
        summary="Record payment (buyer)",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409, 422, 413),
    )
    async def settle(
        self,
        order_id: PathId,
        data: JSONBody[SettleRequest],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[OrderRead]:
        """The accepted amount, paid on a date with a reference, becomes spent budget."""
        return await idempotent(
            conn,
            principal,
            idempotency_key,
            f"order.{order_id}.settle",
            data,
            lambda: lifecycle.settle(
                conn,
                principal,
                order_id,
                amount_fen=data.amount_fen,
                paid_on=data.paid_on,
                reference=data.reference,
            ),
            OrderRead,
        )

    @post(
        "/evaluation",
        operation_id="rateOrder",
        summary="Rate the supplier (buyer, once)",
        responses=problem_responses(400, 401, 403, 404, 409, 422, 413),
    )
    async def rate(
        self,
        order_id: PathId,
        data: JSONBody[EvaluationCreate],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[EvaluationRead]:
        """After acceptance: quality, delivery and service from 1 to 5, with a comment; once per order."""
        return await idempotent(
            conn,
            principal,
            idempotency_key,
            f"order.{order_id}.evaluation",
            data,
            lambda: evaluations.evaluate(conn, principal, order_id, data),
            EvaluationRead,
            status_code=201,
        )

    @post(
        "/cancel",
        operation_id="cancelOrder",
        summary="Cancel before shipment (buyer)",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409, 422, 413),
    )
    async def cancel(
        self,
        order_id: PathId,
        data: JSONBody[Reason],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[OrderRead]:
        """Budget and stock are released."""
        return await idempotent(
            conn,
            principal,
            idempotency_key,
            f"order.{order_id}.cancel",
            data,
            lambda: lifecycle.cancel(conn, principal, order_id, data.reason),
            OrderRead,
        )
