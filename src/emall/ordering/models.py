"""Cart, checkout and order data. Money is integer fen."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec

from emall.structs import Id, RegionCode, Struct
from emall.structs import Reason as Reason  # one Reason for every refusal: one schema

OrderStatus = Literal[
    "pending_approval",
    "submitted",
    "confirmed",
    "partially_confirmed",
    "rejected",
    "shipped",
    "delivered",
    "accepted",
    "settled",
    "cancelled",
]
WarningCode = Literal["price_above_median", "splitting"]


class CartItemWrite(Struct):
    offer_id: Id
    quantity: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]


class CartItemRead(Struct):
    offer_id: int
    title: str
    supplier_id: int
    supplier_name: str
    unit_price_fen: int
    quantity: int
    line_total_fen: int
    stock: int
    min_order_qty: int
    added_at: datetime


class Cart(Struct):
    items: list[CartItemRead]
    total_fen: int


class CheckoutRequest(Struct):
    budget_line_id: Id
    delivery_region_code: RegionCode | None = None  # default: the agency's region
    acknowledge: list[WarningCode] = []  # the warnings the buyer has read and accepts


class CheckoutWarning(Struct):
    code: WarningCode
    message: str
    detail: dict[str, Any]


class OrderLineRead(Struct):
    id: int
    offer_id: int
    product_id: int
    title: str
    unit: str
    category_code: str
    unit_price_fen: int
    quantity: int
    line_total_fen: int
    delivery_days: int
    confirmed_quantity: int | None
    accepted_quantity: int | None


class OrderRead(Struct):
    id: int
    checkout_id: str
    agency_id: int
    buyer_user_id: int
    supplier_id: int
    supplier_name: str
    region_code: str
    delivery_region_code: str
    budget_line_id: int
    city_rule_id: int
    city_rule_version: int
    status: OrderStatus
    status_reason: str | None
    total_fen: int
    reserved_fen: int
    accepted_fen: int | None
    defects: str | None
    payment_due_date: date | None
    paid_fen: int | None
    paid_on: date | None
    payment_reference: str | None
    warnings: list[CheckoutWarning]
    lines: list[OrderLineRead]
    version: int
    created_at: datetime
    updated_at: datetime


class ConfirmRequest(Struct):
    """Quantities to confirm per order line id; lines left out are confirmed in full."""

    quantities: dict[Id, Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]] = {}


class AcceptRequest(Struct):
    """Quantities accepted per order line id (lines left out: all delivered), and defects."""

    accepted: dict[Id, Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]] = {}
    defects: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class SettleRequest(Struct):
    amount_fen: Annotated[int, msgspec.Meta(ge=0, le=9_000_000_000_000_000)]
    paid_on: date
    reference: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class CheckoutResult(Struct):
    checkout_id: str
    orders: list[OrderRead]
    warnings: list[CheckoutWarning]


Score = Annotated[int, msgspec.Meta(ge=1, le=5)]


class EvaluationCreate(Struct):
    quality: Score
    delivery: Score
    service: Score
    comment: Annotated[str, msgspec.Meta(max_length=1000)] = ""


class EvaluationRead(Struct):
    order_id: int
    supplier_id: int
    quality: int
    delivery: int
    service: int
    comment: str
    created_by: int
    created_at: datetime


class SupplierScore(Struct):
    """Averages of the supplier's ratings (1-5), rounded to two places; None before any."""

    supplier_id: int
    ratings: int
    quality: float | None
    delivery: float | None
    service: float | None
    overall: float | None


class OrderSummary(Struct):
    """An order in a list: no lines; ``overdue`` when accepted, unpaid and past its due date."""

    id: int
    checkout_id: str
    agency_id: int
    agency_name: str
    supplier_id: int
    supplier_name: str
    region_code: str
    status: OrderStatus
    total_fen: int
    reserved_fen: int
    accepted_fen: int | None
    payment_due_date: date | None
    overdue: bool
    city_rule_version: int
    created_at: datetime
    updated_at: datetime


FlagKind = Literal["splitting", "overdue", "price"]


class OrderFlagRead(Struct):
    """An order flagged to the region's operator: order splitting (拆单), overdue payment, or a
    price acknowledged above the category median."""

    id: int
    order_id: int
    kind: FlagKind
    region_code: str
    agency_id: int
    agency_name: str
    supplier_id: int
    supplier_name: str
    total_fen: int
    detail: dict[str, Any]
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: int | None
    resolution: str | None


class OrderFlagResolve(Struct):
    resolution: Annotated[str, msgspec.Meta(min_length=2, max_length=1000)]
