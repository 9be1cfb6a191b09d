"""The rules of an order, as pure functions over plain data: no database, no I/O.

The checkout reads a cart priced and annotated in one statement (each line's visibility,
delivery time and category median, the agency's earlier orders per level-3 category, the city
rule in force) and hands it here; these functions decide, and ``emall.ordering.place`` stores
what they decided. A later rule replay can run them over past orders as they are.

* A line must still be buyable where it is delivered, and at least its minimum order quantity.
* An order (one per supplier) above the e-mall ceiling is refused: a formal procurement
  procedure is required.
* Warnings the buyer must acknowledge first: a price above its category's median, and order
  splitting (拆单): this agency's orders in the same level-3 category within the rule's window
  would together exceed the ceiling.
* An order above the approval threshold waits for an approver; any other is submitted and
  reserves its budget at once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import msgspec

from emall.errors import ValidationFailed
from emall.ordering.errors import CeilingExceeded, WarningsToAcknowledge
from emall.ordering.models import CheckoutWarning, WarningCode

OrderStatus = Literal["submitted", "pending_approval"]


class Rule(msgspec.Struct, frozen=True, kw_only=True):
    """The city rule in force where the agency buys."""

    id: int
    version: int
    ceiling_fen: int
    approval_threshold_fen: int
    splitting_window_days: int


class CartLine(msgspec.Struct, frozen=True, kw_only=True):
    """One line of the cart, priced: the offer's terms as they are now, and what the checks
    need to know about it."""

    offer_id: int
    supplier_id: int
    product_id: int
    title: str
    unit: str
    category_code: str
    category3_code: str
    unit_price_fen: int
    quantity: int
    min_order_qty: int = 1
    delivery_days: int | None = None  # None: not delivered to the delivery region
    policy_tags: list[str] = []
    visible: bool = True  # still listed, sold by an admitted supplier, where the buyer is
    median_fen: int | None = None  # the median price of the offer's category

    @property
    def total_fen(self) -> int:
        return self.unit_price_fen * self.quantity


class Earlier(msgspec.Struct, frozen=True, kw_only=True):
    """The agency's live orders in one level-3 category within the rule's window."""

    order_ids: list[int]
    amount_fen: int


class PlannedOrder(msgspec.Struct, frozen=True, kw_only=True):
    """One order as the rules decided it: its supplier's lines, status and warnings."""

    supplier_id: int
    status: OrderStatus
    total_fen: int
    lines: list[CartLine]
    warnings: list[CheckoutWarning]
    splitting: list[dict[str, Any]] | None = None  # what the region's operator is shown


def refuse_unbuyable(lines: Sequence[CartLine]) -> None:
    """An empty cart, a line no longer buyable or delivered there, or below its minimum."""
    if not lines:
        raise ValidationFailed.single("cart", "购物车为空 (the cart is empty)")
    for line in lines:
        if not line.visible or line.delivery_days is None:
            raise ValidationFailed.single(
                f"cart[{line.offer_id}]",
                "该商品已不可购买或不配送到该地区 (no longer buyable here, or not delivered there)",
            )
        if line.quantity < line.min_order_qty:
            raise ValidationFailed.single(
                f"cart[{line.offer_id}].quantity", f"低于最小起订量 {line.min_order_qty}"
            )


def by_supplier(lines: Iterable[CartLine]) -> dict[int, list[CartLine]]:
    """The lines of each supplier's order, suppliers in id order."""
    grouped: dict[int, list[CartLine]] = defaultdict(list)
    for line in lines:
        grouped[line.supplier_id].append(line)
    return {supplier: grouped[supplier] for supplier in sorted(grouped)}


def price_warnings(lines: Iterable[CartLine]) -> list[CheckoutWarning]:
    """A line priced above its category's median."""
    return [
        CheckoutWarning(
            code="price_above_median",
            message=f"单价高于同品目中位价 {line.median_fen} 分 (price above the category median)",
            detail={
                "offer_id": line.offer_id,
                "supplier_id": line.supplier_id,
                "unit_price_fen": line.unit_price_fen,
                "median_fen": line.median_fen,
            },
        )
        for line in lines
        if line.median_fen is not None and line.unit_price_fen > line.median_fen
    ]


def splitting_warnings(
    lines: Iterable[CartLine], earlier: dict[str, Earlier], rule: Rule
) -> list[CheckoutWarning]:
    """This cart and the agency's earlier orders in a level-3 category, within the rule's
    window, together above the ceiling (categories in code order)."""
    by_category: dict[str, int] = defaultdict(int)
    for line in lines:
        by_category[line.category3_code] += line.total_fen
    warnings = []
    for category3, amount in sorted(by_category.items()):
        before = earlier.get(category3)
        if before is None or not before.order_ids:
            continue
        together = amount + before.amount_fen
        if together > rule.ceiling_fen:
            warnings.append(_splitting(category3, amount, together, before.order_ids, rule))
    return warnings


def _splitting(
    category3: str, amount: int, together: int, order_ids: list[int], rule: Rule
) -> CheckoutWarning:
    days, ceiling = rule.splitting_window_days, rule.ceiling_fen
    return CheckoutWarning(
        code="splitting",
        message=(
            f"{days}天内同一品目 {category3} 的采购合计 {together} 分，超过电子卖场限额 "
            f"{ceiling} 分：化整为零规避正式采购程序是被禁止的，本单将报送交易中心 "
            f"(orders in this category within {days} days would exceed the ceiling; "
            "splitting a purchase to avoid a formal procedure is forbidden and is reported)"
        ),
        detail={
            "category3_code": category3,
            "amount_fen": amount,
            "together_fen": together,
            "ceiling_fen": ceiling,
            "earlier_orders": order_ids,
        },
    )


def status_of(total_fen: int, rule: Rule) -> OrderStatus:
    return "pending_approval" if total_fen > rule.approval_threshold_fen else "submitted"


def plan(
    lines: Sequence[CartLine],
    earlier: dict[str, Earlier],
    rule: Rule,
    acknowledge: Iterable[WarningCode],
) -> tuple[list[PlannedOrder], list[CheckoutWarning]]:
    """The orders of a cart, one per supplier, and every warning of the checkout; refused when
    a line cannot be bought, an order is above the ceiling, or a warning is unacknowledged."""
    refuse_unbuyable(lines)
    grouped = by_supplier(lines)
    totals = {supplier: sum(line.total_fen for line in ls) for supplier, ls in grouped.items()}
    for total in totals.values():
        if total > rule.ceiling_fen:
            raise CeilingExceeded(total, rule.ceiling_fen, rule.version)
    warnings = price_warnings(lines) + splitting_warnings(lines, earlier, rule)
    unacknowledged = sorted({w.code for w in warnings} - set(acknowledge))
    if unacknowledged:
        raise WarningsToAcknowledge(warnings, unacknowledged)
    orders = []
    for supplier, supplier_lines in grouped.items():
        mine = [w for w in warnings if w.detail.get("supplier_id") in (None, supplier)]
        splitting = [w.detail for w in mine if w.code == "splitting"]
        orders.append(
            PlannedOrder(
                supplier_id=supplier,
                status=status_of(totals[supplier], rule),
                total_fen=totals[supplier],
                lines=supplier_lines,
                warnings=mine,
                splitting=splitting or None,
            )
        )
    return orders, warnings
