"""Catalogue data as the API shows it: categories (品目) and attribute templates (参数模板)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from emall.structs import Struct

AttributeType = Literal["text", "integer", "decimal", "boolean", "enum"]

# (?![\s\S]) is "end of text" in Python and ECMA regexes alike; "$" would also let a trailing
# newline through in Python.
AttributeKey = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[a-z][a-z0-9_]{0,39}(?![\s\S])",
        description="ASCII identifier: a lower-case letter, then lower-case letters, digits, _",
        examples=["memory_gb"],
    ),
]
AttributeName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=40, examples=["内存"], description="Chinese label")
]
AttributeUnit = Annotated[str, msgspec.Meta(min_length=1, max_length=20, examples=["GB", "英寸"])]
AllowedValue = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Bound = Annotated[float, msgspec.Meta(ge=-1e15, le=1e15)]


class CategoryRead(Struct):
    code: str
    name: str
    parent_code: str | None
    level: int
    description: str
    is_leaf: bool


class CategoryDetail(Struct):
    """One category with its ancestors (nearest first) and the number of its children."""

    code: str
    name: str
    parent_code: str | None
    level: int
    description: str
    is_leaf: bool
    ancestors: list[CategoryRead]
    children_count: int


class CategoryNode(Struct):
    """A node of the category tree. The synthetic roots A 货物, B 工程 and C 服务 have
    one-letter codes; every other node is a 9-character catalogue code."""

    code: str
    name: str
    is_leaf: bool
    children: list[CategoryNode]


class AttributeSpec(Struct):
    """One specification field of a category's template."""

    key: AttributeKey
    name: AttributeName
    type: AttributeType
    unit: AttributeUnit | None = None
    required: bool = False
    allowed_values: Annotated[list[AllowedValue], msgspec.Meta(max_length=100)] | None = None
    min: Bound | None = None
    max: Bound | None = None


class TemplateWrite(Struct):
    attributes: Annotated[list[AttributeSpec], msgspec.Meta(min_length=1, max_length=50)]


class TemplateRead(Struct):
    """A category's template. A category without one has an empty template: no attributes,
    ``version`` 0 and no ``updated_at`` or ``updated_by``."""

    category_code: str
    category_name: str
    attributes: list[AttributeSpec]
    version: int
    updated_at: datetime | None
    updated_by: int | None
