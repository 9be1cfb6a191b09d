"""The order rules as pure functions: plain data in, decisions out, no database."""

from __future__ import annotations

from typing import Any

import pytest

from emall.errors import ValidationFailed
from emall.ordering.errors import CeilingExceeded, WarningsToAcknowledge
from emall.ordering.rules import (
    CartLine,
    Earlier,
    Rule,
    plan,
    price_warnings,
    refuse_unbuyable,
    splitting_warnings,
    status_of,
)

RULE = Rule(
    id=1,
    version=3,
    ceiling_fen=1_000_000,
    approval_threshold_fen=500_000,
    splitting_window_days=30,
)


def line(offer_id: int, supplier_id: int = 10, **overrides: Any) -> CartLine:
    values: dict[str, Any] = {
        "offer_id": offer_id,
        "supplier_id": supplier_id,
        "product_id": offer_id * 100,
        "title": f"商品 {offer_id}",
        "unit": "台",
        "category_code": "A02010105",
        "category3_code": "A02010100",
        "unit_price_fen": 100_000,
        "quantity": 1,
        "delivery_days": 3,
        **overrides,
    }
    return CartLine(**values)


def test_a_line_must_be_buyable_delivered_and_at_least_its_minimum() -> None:
    with pytest.raises(ValidationFailed) as empty:
        refuse_unbuyable([])
    assert empty.value.errors[0].field == "cart"
    with pytest.raises(ValidationFailed) as hidden:
        refuse_unbuyable([line(1), line(2, visible=False)])
    assert hidden.value.errors[0].field == "cart[2]"
    with pytest.raises(ValidationFailed) as undelivered:
        refuse_unbuyable([line(3, delivery_days=None)])
    assert undelivered.value.errors[0].field == "cart[3]"
    with pytest.raises(ValidationFailed) as small:
        refuse_unbuyable([line(4, quantity=2, min_order_qty=5)])
    assert small.value.errors[0].field == "cart[4].quantity"
    refuse_unbuyable([line(5, quantity=5, min_order_qty=5)])  # at the minimum: buyable


def test_the_ceiling_holds_per_supplier_order() -> None:
    over = [line(1, unit_price_fen=600_000), line(2, unit_price_fen=400_001)]
    with pytest.raises(CeilingExceeded) as refused:
        plan(over, {}, RULE, [])
    assert (refused.value.total_fen, refused.value.rule_version) == (1_000_001, 3)
    # the same money split over two suppliers is two orders, each under the ceiling
    orders, _ = plan(
        [line(1, 10, unit_price_fen=600_000), line(2, 11, unit_price_fen=400_001)], {}, RULE, []
    )
    assert [(o.supplier_id, o.total_fen) for o in orders] == [(10, 600_000), (11, 400_001)]


def test_a_price_above_its_category_median_is_warned() -> None:
    lines = [
        line(1, unit_price_fen=100_001, median_fen=100_000),
        line(2, unit_price_fen=100_000, median_fen=100_000),  # at the median: no warning
        line(3, unit_price_fen=900_000, median_fen=None),  # no median: nothing to compare
    ]
    warnings = price_warnings(lines)
    assert [(w.code, w.detail["offer_id"], w.detail["median_fen"]) for w in warnings] == [
        ("price_above_median", 1, 100_000)
    ]


def test_splitting_counts_the_agencys_earlier_orders_in_the_category() -> None:
    cart = [line(1, unit_price_fen=300_000), line(2, unit_price_fen=200_000)]
    near = {"A02010100": Earlier(order_ids=[7, 9], amount_fen=500_000)}
    assert splitting_warnings(cart, near, RULE) == []  # together exactly the ceiling
    over = {"A02010100": Earlier(order_ids=[7, 9], amount_fen=500_001)}
    (warning,) = splitting_warnings(cart, over, RULE)
    assert warning.code == "splitting"
    assert warning.detail == {
        "category3_code": "A02010100",
        "amount_fen": 500_000,
        "together_fen": 1_000_001,
        "ceiling_fen": 1_000_000,
        "earlier_orders": [7, 9],
    }
    other = {"A05010100": Earlier(order_ids=[7], amount_fen=999_999)}
    assert splitting_warnings(cart, other, RULE) == []  # another category's orders


def test_warnings_must_be_acknowledged_and_land_on_their_orders() -> None:
    cart = [
        line(1, 10, unit_price_fen=200_000, median_fen=100_000),
        line(2, 11, unit_price_fen=100_000),
    ]
    earlier = {"A02010100": Earlier(order_ids=[5], amount_fen=800_000)}
    with pytest.raises(WarningsToAcknowledge) as asked:
        plan(cart, earlier, RULE, ["price_above_median"])
    assert [w.code for w in asked.value.warnings] == ["price_above_median", "splitting"]
    orders, warnings = plan(cart, earlier, RULE, ["price_above_median", "splitting"])
    assert len(warnings) == 2
    first, second = orders
    # the price warning is its supplier's; the splitting warning is every order's
    assert [w.code for w in first.warnings] == ["price_above_median", "splitting"]
    assert [w.code for w in second.warnings] == ["splitting"]
    assert first.splitting == second.splitting == [warnings[1].detail]


def test_an_order_above_the_approval_threshold_waits_for_an_approver() -> None:
    assert status_of(500_000, RULE) == "submitted"
    assert status_of(500_001, RULE) == "pending_approval"
    orders, _ = plan(
        [line(1, 10, unit_price_fen=500_001), line(2, 11, unit_price_fen=500_000)], {}, RULE, []
    )
    assert [(o.supplier_id, o.status) for o in orders] == [
        (10, "pending_approval"),
        (11, "submitted"),
    ]
    assert all(o.splitting is None for o in orders)
