"""Products (商品, SPU): brand and model in a leaf category, shared by every supplier's offers.

A product whose brand, model and category match an existing one (ignoring case and spaces) is
a likely duplicate: creating it answers ``Conflict`` naming the existing product to use instead.
"""

from __future__ import annotations

import asyncpg

from emall.audit import record_event
from emall.catalogue.service import require_leaf_category
from emall.catalogue.templates import check_specs, load_template
from emall.db.pool import Connection, Pool
from emall.db.sql import like_term
from emall.errors import Conflict, NotFound, ValidationFailed
from emall.listings.models import ProductCreate, ProductRead
from emall.pagination import Page, page_args, page_of
from emall.policy import authorize
from emall.principals import OrganisationKind, Principal

PRODUCT_COLUMNS = """p.id, p.category_code, c.name as category_name, p.brand, p.model, p.title, p.specs,
                     p.image_urls, p.unit, p.created_at, p.updated_at"""
PRODUCT_FROM = "from products p join categories c on c.code = p.category_code"


def product_from(row: asyncpg.Record, prefix: str = "") -> ProductRead:
    return ProductRead(
        id=row[f"{prefix}id"],
        category_code=row[f"{prefix}category_code"],
        category_name=row[f"{prefix}category_name"],
        brand=row[f"{prefix}brand"],
        model=row[f"{prefix}model"],
        title=row[f"{prefix}title"],
        specs=row[f"{prefix}specs"],
        image_urls=list(row[f"{prefix}image_urls"]),
        unit=row[f"{prefix}unit"],
        created_at=row[f"{prefix}created_at"],
        updated_at=row[f"{prefix}updated_at"],
    )


async def get_product(
    conn: Connection | Pool, principal: Principal, product_id: int
) -> ProductRead:
    authorize(principal, "product.read")
    row = await conn.fetchrow(
        f"select {PRODUCT_COLUMNS} {PRODUCT_FROM} where p.id = $1", product_id
    )
    if row is None:
        raise NotFound("商品", product_id)
    return product_from(row)


async def list_products(
    conn: Connection | Pool,
    principal: Principal,
    *,
    category_code: str | None = None,
    brand: str | None = None,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[ProductRead]:
    """Products by category (any level), brand and a title substring."""
    authorize(principal, "product.read")
    after = page_args(cursor, limit, int)
    rows = await conn.fetch(
        f"""
        select {PRODUCT_COLUMNS} {PRODUCT_FROM}
        where ($1::text is null or $1 = any(category_chain(p.category_code)))
          and ($2::text is null or p.brand_key = lower(regexp_replace($2, '\\s+', '', 'g')))
          and ($3::text is null or p.title like '%' || $3 || '%')
          and ($4::bigint is null or p.id > $4)
        order by p.id
        limit $5
        """,
        category_code,
        brand,
        like_term(q),
        after[0] if after else None,
        limit + 1,
    )
    return page_of([product_from(r) for r in rows], limit, lambda p: (p.id,))


async def create_product(
    conn: Connection, principal: Principal, data: ProductCreate, *, request_id: str | None = None
) -> ProductRead:
    authorize(principal, "product.create")
    if principal.organisation_kind != OrganisationKind.SUPPLIER:
        raise ValidationFailed.single(
            "category_code", "只有供应商可以创建商品 (only suppliers create products)"
        )
    await require_leaf_category(conn, data.category_code, "category_code")
    errors = check_specs(await load_template(conn, data.category_code), data.specs)
    if errors:
        raise ValidationFailed(errors)
    async with conn.transaction():
        product_id = await conn.fetchval(
            """
            insert into products (category_code, brand, model, title, specs, image_urls, unit, created_by)
            values ($1, btrim($2), btrim($3), btrim($4), $5, $6, $7, $8)
            on conflict (category_code, brand_key, model_key) do nothing
            returning id
            """,
            data.category_code,
            data.brand,
            data.model,
            data.title,
            data.specs,
            data.image_urls,
            data.unit,
            principal.organisation_id,
        )
        if product_id is None:
            existing = await conn.fetchval(
                """
                select id from products
                where category_code = $1 and brand_key = lower(regexp_replace($2, '\\s+', '', 'g'))
                  and model_key = lower(regexp_replace($3, '\\s+', '', 'g'))
                """,
                data.category_code,
                data.brand,
                data.model,
            )
            raise Conflict(
                f"疑似重复商品：同品目已有该品牌型号，请使用已有商品 {existing} "
                f"(likely duplicate: use existing product {existing})",
                existing_id=existing,
            )
        created = await get_product(conn, principal, product_id)
        await record_event(
            conn,
            actor=principal,
            action="product.created",
            entity_type="product",
            entity_id=product_id,
            after=created,
            request_id=request_id,
        )
    return created
