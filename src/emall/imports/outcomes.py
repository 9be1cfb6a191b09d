"""What an import did with each row: the pure rules that explain it to the supplier.

The import decides set-based, in SQL (``emall.imports.save``), which product fields of a row a
matched product kept; ``unapplied_fields`` says why, field by field, in the order of the
product's fields.
"""

from __future__ import annotations

from collections.abc import Iterable

from emall.imports.models import ProductField, UnappliedField

PRODUCT_FIELDS: tuple[ProductField, ...] = (
    "brand",
    "model",
    "title",
    "specs",
    "image_urls",
    "unit",
)

_SHARED = (
    "该商品已存在，由所有供应商共用，导入不会修改其{name}；如需更正请联系交易中心 "
    "(the product exists and is shared by every supplier: an import does not change its "
    "{field}; ask the operator to correct it)"
)
_SPELLING = (
    "已按品牌、型号（不区分大小写和空格）匹配到已有商品，商品保留其原有写法 "
    "(matched an existing product ignoring case and white space; the product keeps its own "
    "spelling of {field})"
)
_NAMES: dict[ProductField, str] = {
    "brand": "品牌",
    "model": "型号",
    "title": "标题",
    "specs": "参数",
    "image_urls": "图片",
    "unit": "计量单位",
}


def unapplied_fields(fields: Iterable[str]) -> list[UnappliedField]:
    """The unapplied fields ``fields`` (as the import names them), each with its reason, in the
    order of ``PRODUCT_FIELDS``; a name that is not a product field is a programming error."""
    given = set(fields)
    unknown = given.difference(PRODUCT_FIELDS)
    if unknown:
        raise ValueError(f"not product fields: {sorted(unknown)}")
    return [
        UnappliedField(
            field=name,
            reason=(_SPELLING if name in ("brand", "model") else _SHARED).format(
                name=_NAMES[name], field=name
            ),
        )
        for name in PRODUCT_FIELDS
        if name in given
    ]
