"""Attribute templates (参数模板): the specification fields an offer in a category must give.

Operators (交易中心) maintain one template per leaf category. ``check_specs`` is the pure rule
that products and offers use to check their ``specs`` against a template; ``load_template``
gives the template of a category (an empty list when it has none), and ``get_template``
answers an empty template for a category without one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import asyncpg
import msgspec

from emall.audit import record_event
from emall.catalogue.models import AttributeSpec, TemplateRead, TemplateWrite
from emall.catalogue.service import category_chain, require_leaf_category
from emall.db.pool import Connection, Pool
from emall.errors import FieldError, NotFound, ValidationFailed
from emall.pagination import Page, page_args, page_of
from emall.policy import authorize
from emall.principals import Principal

MAX_TEXT_LENGTH = 200
_KEY = re.compile(r"[a-z][a-z0-9_]{0,39}")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_NUMBER_TYPES = ("integer", "decimal")
_TYPE_NAMES = {
    "text": "文本 (text)",
    "integer": "整数 (integer)",
    "decimal": "数值 (decimal)",
    "boolean": "是/否 (boolean)",
    "enum": "选项 (enum)",
}

# -- checking specs against a template ---------------------------------------------------------


def check_specs(
    attributes: list[AttributeSpec], specs: object, *, field: str = "specs"
) -> list[FieldError]:
    """Every way ``specs`` breaks the template, each error naming ``f"{field}.{key}"``.

    With an empty template (the category has none), specs must still be a flat object of
    scalar values (text, numbers, true/false). Returns ``[]`` for acceptable specs.
    """
    if not isinstance(specs, Mapping):
        return [FieldError(field=field, reason="须为对象 (specs must be a JSON object)")]
    errors: list[FieldError] = []
    if not attributes:
        for key, value in specs.items():
            if isinstance(value, bool | int | str) or (
                isinstance(value, float) and math.isfinite(value)
            ):
                continue
            errors.append(
                FieldError(
                    field=f"{field}.{key}",
                    reason="参数值须为文本、数字或是/否 (a value must be a string, a number or a boolean)",
                )
            )
        return errors
    known = {a.key for a in attributes}
    for attribute in attributes:
        name = f"{field}.{attribute.key}"
        if attribute.key not in specs:
            if attribute.required:
                errors.append(FieldError(field=name, reason=_missing(attribute)))
            continue
        reason = _check_value(attribute, specs[attribute.key])
        if reason is not None:
            errors.append(FieldError(field=name, reason=reason))
    for key in specs:
        if key not in known:
            errors.append(
                FieldError(
                    field=f"{field}.{key}",
                    reason=f"参数模板中没有该参数 (unknown attribute: the template has {', '.join(sorted(known))})",
                )
            )
    return errors


def _missing(attribute: AttributeSpec) -> str:
    return f"缺少必填参数「{attribute.name}」(required attribute missing)"


def _check_value(attribute: AttributeSpec, value: object) -> str | None:
    """Why ``value`` is not acceptable for ``attribute``, or None when it is."""
    if value is None:
        if attribute.required:
            return _missing(attribute)
        return "不能为 null，不填请省略该参数 (null is not a value: leave the key out)"
    expected = _TYPE_NAMES[attribute.type]
    wrong_type = (
        f"「{attribute.name}」须为{expected[: expected.index(' ')]} (must be {attribute.type})"
    )
    if attribute.type == "text":
        if not isinstance(value, str):
            return wrong_type
        if not value.strip():
            return f"「{attribute.name}」不能为空 (must not be blank)"
        if len(value) > MAX_TEXT_LENGTH:
            return f"「{attribute.name}」不能超过{MAX_TEXT_LENGTH}字 (at most {MAX_TEXT_LENGTH} characters)"
        return None
    if attribute.type == "boolean":
        return None if isinstance(value, bool) else wrong_type
    if attribute.type == "enum":
        allowed = attribute.allowed_values or []
        if isinstance(value, str) and value in allowed:
            return None
        return f"「{attribute.name}」须为以下之一 (must be one of): {' / '.join(allowed)}"
    number = _number(value, integer=attribute.type == "integer")
    if number is None:
        if attribute.type == "decimal":
            return f"「{attribute.name}」须为数值，如 15.6 (must be a number or a decimal string)"
        return wrong_type
    unit = attribute.unit or ""
    if attribute.min is not None and number < attribute.min:
        return f"「{attribute.name}」不能小于 {_fmt(attribute.min)}{unit} (must be at least {_fmt(attribute.min)})"
    if attribute.max is not None and number > attribute.max:
        return f"「{attribute.name}」不能大于 {_fmt(attribute.max)}{unit} (must be at most {_fmt(attribute.max)})"
    return None


def _number(value: object, *, integer: bool) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value  # compared with the bounds exactly, however large
    if integer:
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def _fmt(bound: float) -> str:
    return f"{bound:g}"


# -- checking a template ------------------------------------------------------------------------


def check_template(data: TemplateWrite) -> list[FieldError]:
    """What the types alone cannot say: keys unique, enum values, number bounds."""
    errors: list[FieldError] = []
    seen: set[str] = set()
    for index, a in enumerate(data.attributes):
        at = f"attributes[{index}]"
        if not _KEY.fullmatch(a.key):
            errors.append(
                FieldError(field=f"{at}.key", reason="须为小写字母开头的标识符 (invalid key)")
            )
        elif a.key in seen:
            errors.append(
                FieldError(field=f"{at}.key", reason=f"参数键重复 (duplicate key): {a.key}")
            )
        seen.add(a.key)
        if not a.name.strip():
            errors.append(FieldError(field=f"{at}.name", reason="名称不能为空 (name is blank)"))
        if a.type == "enum":
            if not a.allowed_values:
                errors.append(
                    FieldError(
                        field=f"{at}.allowed_values",
                        reason="选项类参数须列出可选值 (an enum needs allowed_values)",
                    )
                )
            elif len(set(a.allowed_values)) != len(a.allowed_values):
                errors.append(
                    FieldError(
                        field=f"{at}.allowed_values",
                        reason="可选值重复 (allowed_values must be unique)",
                    )
                )
        elif a.allowed_values is not None:
            errors.append(
                FieldError(
                    field=f"{at}.allowed_values",
                    reason="只有选项类参数可以列出可选值 (allowed_values is for enum attributes only)",
                )
            )
        if a.type in _NUMBER_TYPES:
            if a.min is not None and a.max is not None and a.min > a.max:
                errors.append(
                    FieldError(field=f"{at}.max", reason="上限不能小于下限 (max must be >= min)")
                )
        else:
            for bound in ("min", "max"):
                if getattr(a, bound) is not None:
                    errors.append(
                        FieldError(
                            field=f"{at}.{bound}",
                            reason="只有数值类参数可以设上下限 (min and max are for integer and decimal attributes only)",
                        )
                    )
    return errors


# -- storage --------------------------------------------------------------------------------------

_SELECT = """
    select t.category_code, c.name as category_name, t.attributes, t.version, t.updated_at,
           t.updated_by
    from attribute_templates t join categories c on c.code = t.category_code
"""


def _read(row: asyncpg.Record) -> TemplateRead:
    return TemplateRead(
        category_code=row["category_code"],
        category_name=row["category_name"],
        attributes=msgspec.convert(row["attributes"], list[AttributeSpec]),
        version=row["version"],
        updated_at=row["updated_at"],
        updated_by=row["updated_by"],
    )


async def load_template(conn: Connection | Pool, code: str) -> list[AttributeSpec]:
    """The attributes of a category's template; an empty list when it has none."""
    attributes = await conn.fetchval(
        "select attributes from attribute_templates where category_code = $1", code
    )
    if attributes is None:
        return []
    return msgspec.convert(attributes, list[AttributeSpec])


async def get_template(
    conn: Connection | Pool, principal: Principal | None, code: str
) -> TemplateRead:
    """A category's template; an empty one (no attributes, version 0) when the category has
    none; NotFound for an unknown category."""
    if principal is not None:
        authorize(principal, "category.read")
    row = await conn.fetchrow(
        """
        select c.code as category_code, c.name as category_name,
               coalesce(t.attributes, '[]'::jsonb) as attributes, coalesce(t.version, 0) as version,
               t.updated_at, t.updated_by
        from categories c left join attribute_templates t on t.category_code = c.code
        where c.code = $1
        """,
        code,
    )
    if row is None:
        raise NotFound("品目", code)
    return _read(row)


async def list_templates(
    conn: Connection | Pool,
    principal: Principal | None,
    *,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[TemplateRead]:
    """Every template, in category code order."""
    if principal is not None:
        authorize(principal, "category.read")
    after = page_args(cursor, limit, str)
    rows = await conn.fetch(
        f"{_SELECT} where ($1::text is null or t.category_code > $1) "
        "order by t.category_code limit $2",
        after[0] if after else None,
        limit + 1,
    )
    return page_of([_read(r) for r in rows], limit, lambda t: (t.category_code,))


async def put_template(
    conn: Connection,
    principal: Principal,
    code: str,
    data: TemplateWrite,
    *,
    request_id: str | None = None,
) -> TemplateRead:
    """Create or replace a leaf category's template (operators and the platform admin).

    NotFound for an unknown category; a category that is not a leaf is refused naming
    ``category_code``.

    Each change bumps ``version`` and writes a ``template.updated`` audit event with the
    template before and after; putting the same attributes again changes nothing.
    """
    authorize(principal, "template.manage")
    if not await category_chain(conn, code):
        raise NotFound("品目", code)
    await require_leaf_category(conn, code, "category_code")
    errors = check_template(data)
    if errors:
        raise ValidationFailed(errors)
    attributes = msgspec.to_builtins(data.attributes)
    async with conn.transaction():
        row = await conn.fetchrow(f"{_SELECT} where t.category_code = $1 for update of t", code)
        before = None if row is None else _read(row)
        if before is not None and msgspec.to_builtins(before.attributes) == attributes:
            return before
        await conn.execute(
            """
            insert into attribute_templates (category_code, attributes, updated_by)
            values ($1, $2, $3)
            on conflict (category_code) do update
            set attributes = excluded.attributes,
                version = attribute_templates.version + 1,
                updated_at = now(),
                updated_by = excluded.updated_by
            """,
            code,
            attributes,
            principal.user_id,
        )
        after = await get_template(conn, principal, code)
        await record_event(
            conn,
            actor=principal,
            action="template.updated",
            entity_type="attribute_template",
            entity_id=code,
            before=before,
            after=after,
            request_id=request_id,
        )
    return after
