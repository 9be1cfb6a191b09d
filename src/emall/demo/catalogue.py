"""The demo catalogue: attribute templates, and offers from the demo suppliers, listed.

Rows come from the deterministic generator (``emall.demo.generator``) and are saved through the
bulk-import path (``emall.imports.save.save_rows``), as a supplier's upload would be. Offers of
admitted suppliers are then listed by the operator of their admitting region, with the audit
events and outbox rows a review writes. Idempotent: the same rows again change nothing.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

import msgspec

from emall.audit import AuditEvent, OutboxMessage, record, record_event
from emall.db.pool import Connection, Pool
from emall.demo.generator import DEMO_TEMPLATES, generate_offer_rows
from emall.demo.parties import ORGANISATIONS
from emall.imports.save import save_rows
from emall.listings.models import OfferRow
from emall.principals import OrganisationKind, Principal, Role

DEMO_CATALOGUE_SIZE = 600

_LIST_DRAFTS = """
with review as (
    select o.id, (select a.region_code from admissions a
                  where a.supplier_id = o.supplier_id and a.status = 'approved'
                  order by (a.region_code = s.region_code) desc, a.id limit 1) as region
    from offers o join organisations s on s.id = o.supplier_id
    where o.supplier_id = any($1::bigint[]) and o.status = 'draft'
)
update offers o set status = 'listed', review_region_code = review.region, submitted_at = now(),
       reviewed_at = now(), listed_at = now(), version = o.version + 1, updated_at = now(),
       reviewed_by = (select id from users u where u.username =
                      case review.region when '511000' then 'nj_operator' else 'zg_operator' end)
from review
where o.id = review.id and review.region in ('511000', '510300')
returning o.id, o.supplier_id, o.reviewed_by, review.region
"""


async def _templates(conn: Connection) -> None:
    for code, attributes in DEMO_TEMPLATES.items():
        created = await conn.fetchval(
            """
            insert into attribute_templates (category_code, attributes) values ($1, $2)
            on conflict (category_code) do nothing returning category_code
            """,
            code,
            attributes,
        )
        if created:
            await record_event(
                conn,
                actor=None,
                action="template.updated",
                entity_type="attribute_template",
                entity_id=code,
                after={"attributes": attributes, "version": 1},
            )


async def _actor(conn: Connection, supplier_id: int) -> Principal:
    """The supplier's first admin, as the uploader (the demo seed gives each supplier one)."""
    row = await conn.fetchrow(
        """
        select u.id, u.username, o.name, o.region_code from users u join organisations o on o.id = u.organisation_id
        where u.organisation_id = $1 and 'supplier_admin' = any(u.roles) order by u.id limit 1
        """,
        supplier_id,
    )
    assert row is not None, f"demo supplier {supplier_id} has no admin"
    return Principal(
        user_id=row["id"],
        username=row["username"],
        organisation_id=supplier_id,
        organisation_kind=OrganisationKind.SUPPLIER,
        organisation_name=row["name"],
        region_code=row["region_code"],
        roles=frozenset({Role.SUPPLIER_ADMIN}),
    )


async def seed_demo_catalogue(pool: Pool, size: int = DEMO_CATALOGUE_SIZE) -> int:
    """Save the demo offers and list the new ones; returns how many were listed now."""
    keys = {org.key: org for org in ORGANISATIONS}
    by_supplier: dict[str, list[tuple[int, OfferRow]]] = defaultdict(list)
    for number, (supplier_key, row) in enumerate(generate_offer_rows(size), start=1):
        by_supplier[supplier_key].append((number, msgspec.convert(row, OfferRow)))
    listed = 0
    async with pool.acquire() as conn, conn.transaction():
        await _templates(conn)
        supplier_ids: list[int] = []
        for supplier_key, rows in sorted(by_supplier.items()):
            org = keys[supplier_key]
            supplier_id: int = await conn.fetchval(
                "select id from organisations where kind = 'supplier' and name = $1", org.name
            )
            supplier_ids.append(supplier_id)
            actor = await _actor(conn, supplier_id)
            digest = hashlib.sha256(f"demo:{supplier_key}:{size}".encode()).hexdigest()
            job_id: int = await conn.fetchval(
                """
                insert into import_jobs (supplier_id, created_by, format, filename, sha256, status,
                                         total_rows, processed_rows, started_at)
                values ($1, $2, 'jsonl', 'demo-catalogue.jsonl', $3, 'running', $4, $4, now())
                returning id
                """,
                supplier_id,
                actor.user_id,
                digest,
                len(rows),
            )
            result = await save_rows(conn, actor, rows, job_id=job_id)
            await conn.execute(
                """
                update import_jobs set status = 'succeeded', finished_at = now(), created_rows = $2,
                       updated_rows = $3, unchanged_rows = $4, error_rows = $5,
                       created_products = $6, matched_products = $7
                where id = $1
                """,
                job_id,
                result.created,
                result.updated,
                result.unchanged,
                len(result.errors),
                result.created_products,
                result.matched_products,
            )
        drafts = await conn.fetch(_LIST_DRAFTS, supplier_ids)
        listed += len(drafts)
        await record(
            conn,
            [
                AuditEvent(
                    action="offer.listed",
                    entity_type="offer",
                    entity_id=str(offer["id"]),
                    actor_user_id=offer["reviewed_by"],
                    region_code=offer["region"],
                    after={"status": "listed"},
                )
                for offer in drafts
            ],
            [
                OutboxMessage(
                    topic="offer.changed",
                    aggregate_type="offer",
                    aggregate_id=str(offer["id"]),
                    payload={"status": "listed"},
                )
                for offer in drafts
            ],
        )
    return listed
