"""Region lookups: one region with its ancestors, children, search by name.

``require_region`` is what every feature calls where a region code is accepted: an unknown
code is a ``ValidationFailed`` naming the field.
"""

from __future__ import annotations

import re

import asyncpg

from emall.db.pool import Connection, Pool
from emall.db.sql import like_term
from emall.errors import NotFound, ValidationFailed
from emall.pagination import Page, page_args, page_of
from emall.regions.models import RegionDetail, RegionLevel, RegionRead

_CODE = re.compile(r"[0-9]{6}")


def _read(row: asyncpg.Record) -> RegionRead:
    return RegionRead(
        code=row["code"], name=row["name"], level=row["level"], parent_code=row["parent_code"]
    )


async def region_chain(conn: Connection | Pool, code: str) -> tuple[str, ...]:
    """The region and its ancestors, nearest first; empty for an unknown code."""
    if not _CODE.fullmatch(code):
        return ()
    chain = await conn.fetchval("select region_chain($1)", code)
    return tuple(chain or ())


async def require_region(conn: Connection | Pool, code: str, field: str) -> tuple[str, ...]:
    """The chain of a region that must exist; ValidationFailed naming ``field`` otherwise."""
    chain = await region_chain(conn, code)
    if not chain:
        raise ValidationFailed.single(
            field, f"未知的行政区划代码 (unknown region code): {code!r}; 应为6位数字，如 511000"
        )
    return chain


async def get_region(conn: Connection | Pool, code: str) -> RegionDetail:
    chain = await region_chain(conn, code)
    if not chain:
        raise NotFound("行政区划", code)
    rows = await conn.fetch(
        "select code, name, level, parent_code from regions where code = any($1::text[])",
        list(chain),
    )
    by_code = {r["code"]: _read(r) for r in rows}
    children = await conn.fetchval("select count(*) from regions where parent_code = $1", code)
    region = by_code[code]
    return RegionDetail(
        code=region.code,
        name=region.name,
        level=region.level,
        parent_code=region.parent_code,
        ancestors=[by_code[c] for c in chain[1:]],
        children_count=children,
    )


async def list_regions(
    conn: Connection | Pool,
    *,
    q: str | None = None,
    level: RegionLevel | None = None,
    parent_code: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[RegionRead]:
    """Regions by name (substring, Chinese), level and parent, in code order."""
    after = page_args(cursor, limit, str)
    if parent_code is not None:
        await require_region(conn, parent_code, "parent_code")
    rows = await conn.fetch(
        """
        select code, name, level, parent_code
        from regions
        where ($1::text is null or name like '%' || $1 || '%')
          and ($2::text is null or level = $2)
          and ($3::text is null or parent_code = $3)
          and ($4::text is null or code > $4)
        order by code
        limit $5
        """,
        like_term(q),
        level,
        parent_code,
        after[0] if after else None,
        limit + 1,
    )
    return page_of([_read(r) for r in rows], limit, lambda r: (r.code,))


async def children(
    conn: Connection | Pool, code: str, *, cursor: str | None = None, limit: int = 50
) -> Page[RegionRead]:
    if not await region_chain(conn, code):
        raise NotFound("行政区划", code)
    return await list_regions(conn, parent_code=code, cursor=cursor, limit=limit)
