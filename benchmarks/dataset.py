"""A benchmark data set: the demo seed plus ``size`` offers of the demo catalogue, indexed.

Each size gets its own database (``emall_bench_<size>``) and its own Meilisearch index prefix
(``bench<size>``), so that sizes do not disturb each other and a built size is reused by the
next run when nothing it was built from has changed (see ``fingerprint``).

Loading is set-based: the rows of ``emall.demo.generator.generate_offer_rows`` go into
products, offers, delivery regions and price history with ``COPY``; the offers of admitted
suppliers are listed at once, as the demo seed's operators would list them. The search mirror
and the index are then built by the product's own full re-index (``emall.search.index.reindex``:
documents in batches, sent without waiting on each task), which is also what
``emall search reindex`` runs.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import msgspec

from emall.db.migrations import migrate
from emall.db.pool import create_pool
from emall.demo.generator import generate_offer_rows
from emall.demo.parties import ORGANISATIONS
from emall.demo.seed import seed_demo
from emall.search.client import create_search_client
from emall.search.index import index_uid, reindex, settings_match

SEED = 2020
_json = msgspec.json.Encoder()
CHUNK = 20_000
ROOT = Path(__file__).resolve().parent.parent
# What a data set is built from: a change to any of these rebuilds it.
_SOURCES = (
    "benchmarks/dataset.py",
    "src/emall/demo/generator.py",
    "src/emall/demo/parties.py",
    "src/emall/search/documents.py",
    "src/emall/search/index.py",
    "src/emall/search/pinyin.py",
)

# The review region of each supplier and the operator who lists its offers: its home region if
# admitted there, else its earliest admission (as emall.demo.catalogue lists them).
_REVIEWERS = """
select s.id as supplier_id, r.region, u.id as operator_id
from organisations s
cross join lateral (
    select a.region_code as region from admissions a
    where a.supplier_id = s.id and a.status = 'approved'
    order by (a.region_code = s.region_code) desc, a.id limit 1) r
join organisations c on c.kind = 'operator' and c.region_code = r.region
join users u on u.organisation_id = c.id and 'operator' = any(u.roles)
where s.kind = 'supplier'
"""


@dataclass(frozen=True)
class Dataset:
    size: int  # offers generated
    listed: int  # of which listed (and indexed): the offers of admitted suppliers
    database_url: str
    index_prefix: str
    build_seconds: float  # 0 when an earlier run's data set was reused
    products: int

    @property
    def index_uid(self) -> str:
        return index_uid(self.index_prefix)

    def describe(self) -> str:
        built = (
            f"built in {self.build_seconds:.0f} s" if self.build_seconds else "reused from a run"
        )
        return (
            f"{self.size:,} offers from the demo catalogue generator (seed {SEED}); "
            f"{self.listed:,} listed and indexed, {self.products:,} products; {built}"
        )


def fingerprint(size: int) -> str:
    digest = hashlib.sha256(f"{size}:{SEED}".encode())
    for name in _SOURCES:
        digest.update((ROOT / name).read_bytes())
    for path in sorted((ROOT / "migrations").glob("*.sql")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def database_url(server_url: str, name: str) -> str:
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def _stored_state(admin: asyncpg.Connection, name: str) -> dict[str, Any] | None:
    comment = await admin.fetchval(
        "select shobj_description(oid, 'pg_database') from pg_database where datname = $1", name
    )
    if not comment:
        return None
    try:
        state: dict[str, Any] = json.loads(comment)
    except ValueError:
        return None
    return state


async def _damage(url: str, search_url: str, key: str, prefix: str, listed: int) -> str:
    """Why a stored data set is no longer as it was built ("" when it is intact)."""
    conn = await asyncpg.connect(url)
    try:
        now_listed = await conn.fetchval("select count(*) from offers where status = 'listed'")
        pending = await conn.fetchval(
            "select count(*) from outbox where processed_at is null and parked_at is null"
        )
    finally:
        await conn.close()
    if now_listed != listed:
        return f"{now_listed:,} offers listed instead of {listed:,}"
    if pending:
        return f"{pending} changes not yet synced to search"
    client = create_search_client(search_url, key)
    try:
        uid = index_uid(prefix)
        if not await settings_match(client, uid):
            return f"index {uid} missing or with other settings"
        stats = await client.index(uid).get_stats()
        if stats.number_of_documents != listed or stats.is_indexing:
            return f"index {uid} holds {stats.number_of_documents:,} documents"
        return ""
    finally:
        await client.aclose()


async def ensure_dataset(
    server_url: str, search_url: str, master_key: str, size: int, *, log: Any = print
) -> Dataset:
    """The data set of ``size`` offers: reused when intact, else built from scratch."""
    name = f"emall_bench_{size}"
    prefix = f"bench{size}"
    url = database_url(server_url, name)
    wanted = fingerprint(size)
    admin = await asyncpg.connect(server_url)
    try:
        state = await _stored_state(admin, name)
        if state is None:
            reason = "not built yet"
        elif state.get("fingerprint") != wanted:
            reason = "built from other sources"
        else:
            reason = await _damage(url, search_url, master_key, prefix, int(state["listed"]))
        if state is not None and not reason:
            log(f"data set {size:,}: reusing {name}")
            return Dataset(size, int(state["listed"]), url, prefix, 0.0, int(state["products"]))
        log(f"data set {size:,}: building {name} and index {index_uid(prefix)} ({reason})")
        started = time.perf_counter()
        await admin.execute(f'drop database if exists "{name}" with (force)')
        await admin.execute(f'create database "{name}"')
        listed, products = await _build(url, search_url, master_key, size, prefix, log)
        state = {"fingerprint": wanted, "listed": listed, "products": products}
        await admin.execute(f"comment on database \"{name}\" is '{json.dumps(state)}'")
        seconds = time.perf_counter() - started
        log(f"data set {size:,}: built in {seconds:.1f} s ({listed:,} listed)")
        return Dataset(size, listed, url, prefix, seconds, products)
    finally:
        await admin.close()


async def _build(
    url: str, search_url: str, key: str, size: int, prefix: str, log: Any
) -> tuple[int, int]:
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    pool = await create_pool(url, min_size=1, max_size=2)
    try:
        await seed_demo(pool, catalogue_size=0)  # organisations, users, rules, templates
        started = time.perf_counter()
        listed, products = await _load_catalogue(url, size)
        log(f"  catalogue: {size:,} offers copied in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        async with pool.acquire() as pooled:
            # The seed's own changes are covered by the full re-index below.
            await pooled.execute(
                "update outbox set processed_at = now() where processed_at is null"
            )
            await pooled.execute("analyze")
            client = create_search_client(search_url, key, timeout=120)
            try:
                await client.delete_index_if_exists(index_uid(prefix))
                await reindex(pooled, client, prefix)
            finally:
                await client.aclose()
            await pooled.execute("analyze")
        log(f"  mirror and index: {listed:,} documents in {time.perf_counter() - started:.1f} s")
        return listed, products
    finally:
        await pool.close()


def _identity_key(text: str) -> str:
    """products.brand_key / model_key: lower case, white space removed."""
    return re.sub(r"\s+", "", text).lower()


def _chunks(size: int) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    chunk: list[tuple[str, dict[str, Any]]] = []
    for pair in generate_offer_rows(size, seed=SEED):
        chunk.append(pair)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def _load_catalogue(url: str, size: int) -> tuple[int, int]:
    """COPY the generated rows; returns (offers listed, products).

    A plain connection: COPY is binary, and asyncpg's own jsonb codec takes JSON text.
    """
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            return await _load(conn, size)
    finally:
        await conn.close()


async def _load(conn: asyncpg.Connection, size: int) -> tuple[int, int]:
    supplier_ids = {
        org.key: await conn.fetchval(
            "select id from organisations where kind = 'supplier' and name = $1", org.name
        )
        for org in ORGANISATIONS
        if org.kind == "supplier"
    }
    reviewers = {r["supplier_id"]: r for r in await conn.fetch(_REVIEWERS)}
    admins = {
        r["organisation_id"]: r["id"]
        for r in await conn.fetch(
            "select distinct on (organisation_id) organisation_id, id from users "
            "where 'supplier_admin' = any(roles) order by organisation_id, id"
        )
    }
    now = await conn.fetchval("select now()")
    product_ids: dict[tuple[str, str, str], int] = {}
    offer_id = listed = 0
    for chunk in _chunks(size):
        products: list[tuple[Any, ...]] = []
        offers: list[tuple[Any, ...]] = []
        delivery: list[tuple[Any, ...]] = []
        history: list[tuple[Any, ...]] = []
        for supplier_key, row in chunk:
            supplier_id = supplier_ids[supplier_key]
            identity = (
                row["category_code"],
                _identity_key(row["brand"]),
                _identity_key(row["model"]),
            )
            product_id = product_ids.get(identity)
            if product_id is None:
                product_id = product_ids[identity] = len(product_ids) + 1
                products.append(
                    (
                        product_id,
                        row["category_code"],
                        row["brand"],
                        row["model"],
                        row["title"],
                        _json.encode(row["specs"]).decode(),
                        row["unit"],
                        supplier_id,
                    )
                )
            offer_id += 1
            review = reviewers.get(supplier_id)
            if review is not None:
                listed += 1
            offers.append(
                (
                    offer_id,
                    product_id,
                    supplier_id,
                    row["supplier_sku"],
                    "listed" if review else "draft",
                    row["price_fen"],
                    row["reference_price_fen"],
                    row["reference_source_url"],
                    row["reference_date"],
                    row["stock"],
                    row["min_order_qty"],
                    row["warranty_months"],
                    sorted(row["policy_tags"]),
                    review["region"] if review else None,
                    now if review else None,
                    now if review else None,
                    review["operator_id"] if review else None,
                    now if review else None,
                )
            )
            for d in row["delivery"]:
                delivery.append((offer_id, d["region_code"], d["delivery_days"]))
            history.append(
                (offer_id, row["price_fen"], row["reference_price_fen"], admins[supplier_id])
            )
        await _copy(conn, products, offers, delivery, history)
    for table in ("products", "offers"):
        await conn.execute(
            f"select setval(pg_get_serial_sequence('{table}', 'id'), "
            f"(select coalesce(max(id), 1) from {table}))"
        )
    return listed, len(product_ids)


_PRODUCT_COLUMNS = (
    "id",
    "category_code",
    "brand",
    "model",
    "title",
    "specs",
    "unit",
    "created_by",
)
_OFFER_COLUMNS = (
    "id",
    "product_id",
    "supplier_id",
    "supplier_sku",
    "status",
    "price_fen",
    "reference_price_fen",
    "reference_source_url",
    "reference_date",
    "stock",
    "min_order_qty",
    "warranty_months",
    "policy_tags",
    "review_region_code",
    "submitted_at",
    "reviewed_at",
    "reviewed_by",
    "listed_at",
)


async def _copy(
    conn: Any,
    products: list[tuple[Any, ...]],
    offers: list[tuple[Any, ...]],
    delivery: list[tuple[Any, ...]],
    history: list[tuple[Any, ...]],
) -> None:
    # COPY writes the given ids into the identity columns (no OVERRIDING clause needed).
    await conn.copy_records_to_table("products", records=products, columns=_PRODUCT_COLUMNS)
    await conn.copy_records_to_table("offers", records=offers, columns=_OFFER_COLUMNS)
    await conn.copy_records_to_table(
        "offer_delivery", records=delivery, columns=("offer_id", "region_code", "delivery_days")
    )
    await conn.copy_records_to_table(
        "offer_price_history",
        records=history,
        columns=("offer_id", "price_fen", "reference_price_fen", "changed_by"),
    )
