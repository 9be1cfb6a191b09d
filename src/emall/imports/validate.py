"""Checking import rows: each row on its own becomes an ``OfferRow`` or a list of ``RowError``.

A row is checked for its shape (``msgspec.convert(row, OfferRow, strict=False)``, so that CSV
strings convert), then against the reference data loaded once per import (``Reference``):
the category exists and is a leaf, ``specs`` pass the category's attribute template, every
delivery region exists, and the price does not exceed the reference price. ``FileChecker`` adds
the rules that span rows: a ``supplier_sku`` or a product (category, brand, model) may appear
only once per file, because a supplier has one offer per SKU and one per product. (What the
database cannot store at all, NUL characters and JSON nested too deep, ``emall.imports.parse``
refuses as it reads the row.)

The reference data, templates included, is loaded before the first row, so that checking is
pure CPU work that a caller can run in a thread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

from emall.catalogue.models import AttributeSpec
from emall.catalogue.templates import check_specs
from emall.db.pool import Connection, Pool
from emall.imports.models import RowError
from emall.imports.parse import ParseError
from emall.listings.models import OfferRow

_MSGSPEC = re.compile(r"^(?P<reason>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_NAMED = re.compile(r"(?P<kind>missing required|unknown) field `(?P<name>[^`]+)`")
_SPACE = re.compile(r"\s+")


@dataclass
class Reference:
    """What rows are checked against, loaded once per import: categories, regions, and the
    attribute templates of the categories that have one."""

    categories: dict[str, tuple[str, bool]]  # code -> (name, is_leaf)
    regions: frozenset[str]
    templates: dict[str, list[AttributeSpec]] = field(default_factory=dict)


async def load_reference(conn: Connection | Pool) -> Reference:
    categories = {
        r["code"]: (r["name"], r["is_leaf"])
        for r in await conn.fetch("select code, name, is_leaf from categories")
    }
    regions = frozenset(r["code"] for r in await conn.fetch("select code from regions"))
    templates = {
        r["category_code"]: msgspec.convert(r["attributes"], list[AttributeSpec])
        for r in await conn.fetch("select category_code, attributes from attribute_templates")
    }
    return Reference(categories=categories, regions=regions, templates=templates)


def product_identity(row: OfferRow) -> tuple[str, str, str]:
    """How the database tells products apart: brand and model without case or white space."""
    return (row.category_code, _SPACE.sub("", row.brand).lower(), _SPACE.sub("", row.model).lower())


def conversion_error(row: int, exc: msgspec.ValidationError) -> RowError:
    """msgspec's message as a row error; ``$.delivery[0].region_code`` names
    ``delivery[0].region_code``."""
    message = str(exc)
    match = _MSGSPEC.match(message)
    reason = match["reason"] if match else message
    path = (match["path"] if match and match["path"] else "").lstrip(".")
    named = _NAMED.search(reason)
    if named:
        name = named["name"]
        field_name = f"{path}.{name}" if path else name
        if named["kind"] == "unknown":
            return RowError(row=row, field=field_name, reason=f"未知字段 ({reason})")
        return RowError(row=row, field=field_name, reason=f"缺少必填字段 ({reason})")
    return RowError(row=row, field=path or "row", reason=f"取值无效 ({reason})")


def convert_row(row: int, raw: dict[str, Any] | ParseError) -> OfferRow | RowError:
    if isinstance(raw, ParseError):
        return RowError(row=row, field=raw.field, reason=raw.reason)
    try:
        return msgspec.convert(raw, OfferRow, strict=False)
    except msgspec.ValidationError as exc:
        return conversion_error(row, exc)


def check_row(row: int, offer: OfferRow, reference: Reference) -> list[RowError]:
    """What the types cannot say about one row (templates must be loaded for its category)."""
    errors: list[RowError] = []

    def refuse(name: str, reason: str) -> None:
        errors.append(RowError(row=row, field=name, reason=reason))

    for name, value, least in (("brand", offer.brand, 1), ("model", offer.model, 1)):
        if len(value.strip()) < least:
            refuse(name, "不能为空白 (must not be blank)")
    if len(offer.title.strip()) < 2:
        refuse("title", "标题至少 2 个字 (the title needs at least 2 characters)")
    category = reference.categories.get(offer.category_code)
    if category is None:
        refuse(
            "category_code",
            f"未知的品目代码 (unknown category code): {offer.category_code}",
        )
    elif not category[1]:
        refuse(
            "category_code",
            f"只能选择末级品目 (offers attach to leaf categories only): "
            f"{offer.category_code} {category[0]}",
        )
    else:
        template = reference.templates.get(offer.category_code, [])
        errors.extend(
            RowError(row=row, field=e.field, reason=e.reason)
            for e in check_specs(template, offer.specs, field="specs")
        )
    seen: set[str] = set()
    for index, delivery in enumerate(offer.delivery):
        if delivery.region_code not in reference.regions:
            refuse(
                f"delivery[{index}].region_code",
                f"未知的行政区划代码 (unknown region code): {delivery.region_code}",
            )
        elif delivery.region_code in seen:
            refuse(
                f"delivery[{index}].region_code",
                f"重复的配送地区 (listed twice): {delivery.region_code}",
            )
        seen.add(delivery.region_code)
    if offer.price_fen > offer.reference_price_fen:
        refuse(
            "price_fen",
            f"价格不得高于市场参考价 (price {offer.price_fen} fen exceeds the reference price "
            f"{offer.reference_price_fen} fen)",
        )
    return errors


@dataclass
class FileChecker:
    """Checks the rows of one file in order; remembers SKUs and products already seen."""

    reference: Reference
    skus: dict[str, int] = field(default_factory=dict)
    products: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def check(self, number: int, raw: dict[str, Any] | ParseError) -> OfferRow | list[RowError]:
        """One row: the ``OfferRow``, or why it is refused. Rows must be checked in file order,
        one at a time: the SKUs and products seen are remembered."""
        offer = convert_row(number, raw)
        if isinstance(offer, RowError):
            return [offer]
        errors = check_row(number, offer, self.reference)
        errors.extend(self._across_rows(number, offer))
        return errors or offer

    def _across_rows(self, number: int, offer: OfferRow) -> list[RowError]:
        errors: list[RowError] = []
        first = self.skus.setdefault(offer.supplier_sku, number)
        if first != number:
            errors.append(
                RowError(
                    row=number,
                    field="supplier_sku",
                    reason=f"货号在文件中重复，首次出现在第 {first} 行 "
                    f"(duplicate supplier_sku {offer.supplier_sku!r}; first in row {first})",
                )
            )
        identity = product_identity(offer)
        first = self.products.setdefault(identity, number)
        if first != number:
            errors.append(
                RowError(
                    row=number,
                    field="model",
                    reason=f"同一商品（品目、品牌、型号）在文件中重复，首次出现在第 {first} 行；"
                    f"每个商品只能有一个报价 (the same product appears in row {first}; "
                    f"a supplier has one offer per product)",
                )
            )
        return errors
