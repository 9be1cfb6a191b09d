"""Category lookups over the 2022 procurement item catalogue (政府采购品目分类目录).

The catalogue is public reference data: the read functions take the acting principal when
there is one (``None`` for an anonymous caller) and need no credentials.

``require_leaf_category`` is what every feature calls where a category code is accepted:
offers attach to leaf categories only, and an unknown or non-leaf code is a
``ValidationFailed`` naming the field.
"""

from __future__ import annotations

import re

import asyncpg

from emall.catalogue.models import CategoryDetail, CategoryNode, CategoryRead
from emall.db.pool import Connection, Pool
from emall.db.sql import like_term
from emall.errors import NotFound, ValidationFailed
from emall.pagination import Page, page_args, page_of
from emall.policy import authorize
from emall.principals import Principal

_CODE = re.compile(r"[ABC][0-9]{8}")
_COLUMNS = "code, name, parent_code, level, description, is_leaf"

# The catalogue's three parts; ``tree(None)`` returns them as synthetic roots.
SECTIONS: dict[str, str] = {"A": "货物", "B": "工程", "C": "服务"}
MAX_TREE_DEPTH = 3


def _read(row: asyncpg.Record) -> CategoryRead:
    return CategoryRead(
        code=row["code"],
        name=row["name"],
        parent_code=row["parent_code"],
        level=row["level"],
        description=row["description"],
        is_leaf=row["is_leaf"],
    )


def _authorize_read(principal: Principal | None) -> None:
    if principal is not None:
        authorize(principal, "category.read")


async def category_chain(conn: Connection | Pool, code: str) -> tuple[str, ...]:
    """The category and its ancestors, nearest first; empty for an unknown code."""
    if not _CODE.fullmatch(code):
        return ()
    chain = await conn.fetchval("select category_chain($1)", code)
    return tuple(chain or ())


async def _fetch_one(conn: Connection | Pool, code: str) -> CategoryRead | None:
    if not _CODE.fullmatch(code):
        return None
    row = await conn.fetchrow(f"select {_COLUMNS} from categories where code = $1", code)
    return None if row is None else _read(row)


async def require_leaf_category(conn: Connection | Pool, code: str, field: str) -> CategoryRead:
    """A category that must exist and be a leaf; ValidationFailed naming ``field`` otherwise."""
    category = await _fetch_one(conn, code)
    if category is None:
        raise ValidationFailed.single(
            field,
            f"未知的品目代码 (unknown category code): {code!r}; 应为字母A/B/C加8位数字，如 A02010105",
        )
    if not category.is_leaf:
        count = await conn.fetchval("select count(*) from categories where parent_code = $1", code)
        raise ValidationFailed.single(
            field,
            f"只能选择末级品目 (offers attach to leaf categories only): "
            f"{category.code} {category.name} has {count} children",
        )
    return category


async def get_category(
    conn: Connection | Pool, principal: Principal | None, code: str
) -> CategoryDetail:
    """A category, its ancestors (nearest first) and how many children it has."""
    _authorize_read(principal)
    chain = await category_chain(conn, code)
    if not chain:
        raise NotFound("品目", code)
    rows = await conn.fetch(
        f"select {_COLUMNS} from categories where code = any($1::text[])", list(chain)
    )
    by_code = {r["code"]: _read(r) for r in rows}
    children_count = await conn.fetchval(
        "select count(*) from categories where parent_code = $1", code
    )
    category = by_code[code]
    return CategoryDetail(
        code=category.code,
        name=category.name,
        parent_code=category.parent_code,
        level=category.level,
        description=category.description,
        is_leaf=category.is_leaf,
        ancestors=[by_code[c] for c in chain[1:]],
        children_count=children_count,
    )


async def list_categories(
    conn: Connection | Pool,
    principal: Principal | None,
    *,
    q: str | None = None,
    level: int | None = None,
    parent_code: str | None = None,
    leaf: bool | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[CategoryRead]:
    """Categories by name (substring, Chinese), level, parent and leafness, in code order."""
    _authorize_read(principal)
    after = page_args(cursor, limit, str)
    if level is not None and not 1 <= level <= 4:
        raise ValidationFailed.single("level", "品目层级须在 1-4 之间 (level must be 1-4)")
    if parent_code is not None and await _fetch_one(conn, parent_code) is None:
        raise ValidationFailed.single(
            "parent_code", f"未知的品目代码 (unknown category code): {parent_code!r}"
        )
    rows = await conn.fetch(
        f"""
        select {_COLUMNS}
        from categories
        where ($1::text is null or name like '%' || $1 || '%')
          and ($2::smallint is null or level = $2)
          and ($3::text is null or parent_code = $3)
          and ($4::boolean is null or is_leaf = $4)
          and ($5::text is null or code > $5)
        order by code
        limit $6
        """,
        like_term(q),
        level,
        parent_code,
        leaf,
        after[0] if after else None,
        limit + 1,
    )
    return page_of([_read(r) for r in rows], limit, lambda c: (c.code,))


async def children(
    conn: Connection | Pool,
    principal: Principal | None,
    code: str,
    *,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[CategoryRead]:
    """The direct children of a category, in code order; NotFound for an unknown code."""
    _authorize_read(principal)
    page_args(cursor, limit, str)  # a bad cursor or limit is refused before the 404 check
    if await _fetch_one(conn, code) is None:
        raise NotFound("品目", code)
    return await list_categories(conn, principal, parent_code=code, cursor=cursor, limit=limit)


async def tree(
    conn: Connection | Pool, principal: Principal | None, root: str | None, depth: int = 2
) -> list[CategoryNode]:
    """The category tree below ``root``, ``depth`` levels deep (1-3).

    With a root: a one-element list, the root with its descendants. Without: the three
    synthetic roots A 货物, B 工程, C 服务 with the top-level categories below them (so a
    depth counts the same levels as below a real root). At most 1,813 nodes either way.
    """
    _authorize_read(principal)
    if not 1 <= depth <= MAX_TREE_DEPTH:
        raise ValidationFailed.single(
            "depth", f"层数须在 1-{MAX_TREE_DEPTH} 之间 (depth must be 1-{MAX_TREE_DEPTH})"
        )
    if root is None:
        rows = await conn.fetch(
            "select code, name, parent_code, is_leaf from categories where level <= $1 order by code",
            depth,
        )
        nodes = _nest(rows)
        return [
            CategoryNode(
                code=section,
                name=name,
                is_leaf=False,
                children=[n for n in nodes.get(None, []) if n.code.startswith(section)],
            )
            for section, name in SECTIONS.items()
        ]
    top = await _fetch_one(conn, root)
    if top is None:
        raise NotFound("品目", root)
    rows = await conn.fetch(
        """
        with recursive sub (code, name, parent_code, is_leaf, depth) as (
            select code, name, parent_code, is_leaf, 0 from categories where code = $1
            union all
            select c.code, c.name, c.parent_code, c.is_leaf, s.depth + 1
            from categories c join sub s on c.parent_code = s.code
            where s.depth < $2
        )
        select code, name, case when code = $1 then null else parent_code end as parent_code,
               is_leaf
        from sub order by code
        """,
        root,
        depth,
    )
    return _nest(rows).get(None, [])


def _nest(rows: list[asyncpg.Record]) -> dict[str | None, list[CategoryNode]]:
    """Nodes by parent code (rows in code order, so children keep code order)."""
    by_parent: dict[str | None, list[CategoryNode]] = {}
    for r in rows:
        node = CategoryNode(
            code=r["code"],
            name=r["name"],
            is_leaf=r["is_leaf"],
            children=by_parent.setdefault(r["code"], []),
        )
        by_parent.setdefault(r["parent_code"], []).append(node)
    return by_parent
