"""The rows of the catalogue-import benchmark, and their raw COPY.

``catalogue_rows`` takes rows from the demo catalogue generator (``emall.demo.generator``) for
one supplier: the generator shares about a fifth of its products between suppliers, so a row
whose product (category, brand, model) already appeared is skipped, as one supplier offers a
product once. ``to_csv`` writes them as a supplier would upload them.

``RawImport`` writes the same rows into the same tables as the library's import does (products,
offers, their delivery regions, a price-history row per offer, and an audit event per created
product and per offer) with ``copy_records_to_table`` and nothing else: no emall code, no
parsing, no checks. Ids come from the tables' own sequences.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from typing import Any

import msgspec

from emall.demo.generator import generate_offer_rows

COLUMNS = (
    "supplier_sku",
    "category_code",
    "brand",
    "model",
    "title",
    "specs",
    "image_urls",
    "unit",
    "price_fen",
    "reference_price_fen",
    "reference_source_url",
    "reference_date",
    "stock",
    "delivery",
    "min_order_qty",
    "warranty_months",
    "policy_tags",
)
_json = msgspec.json.Encoder(order="sorted")


def _key(text: str) -> str:
    return "".join(text.split()).lower()


def identity(row: dict[str, Any]) -> tuple[str, str, str]:
    return (row["category_code"], _key(row["brand"]), _key(row["model"]))


def catalogue_rows(size: int, *, seed: int = 7) -> list[dict[str, Any]]:
    """``size`` generator rows, each offering a different product."""
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str]] = set()
    for _, row in generate_offer_rows(size * 2, seed=seed):
        key = identity(row)
        if key in seen:
            continue
        seen.add(key)
        rows.append(row)
        if len(rows) == size:
            return rows
    raise RuntimeError(f"the generator gave fewer than {size} distinct products")


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if column == "specs":
        return _json.encode(value).decode()
    if column == "delivery":
        return ";".join(f"{d['region_code']}:{d['delivery_days']}" for d in value)
    if isinstance(value, list):
        return ";".join(value)
    return str(value)


def to_csv(rows: list[dict[str, Any]]) -> bytes:
    """The rows as an import file (CSV: JSON Lines of 100k rows exceeds the 50 MB limit)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_cell(c, row.get(c)) for c in COLUMNS])
    return out.getvalue().encode()


_EXISTING = r"""
select t.n, p.id
from unnest($1::text[], $2::text[], $3::text[]) with ordinality as t(category_code, brand, model, n)
join products p on p.category_code = t.category_code
     and p.brand_key = lower(regexp_replace(t.brand, '\s+', '', 'g'))
     and p.model_key = lower(regexp_replace(t.model, '\s+', '', 'g'))
"""
_IDS = "select nextval(pg_get_serial_sequence($1, 'id')) from generate_series(1, $2)"


@dataclass
class RawImport:
    """The same rows as records for COPY, for one supplier and its uploading user."""

    rows: list[dict[str, Any]]
    supplier_id: int
    user_id: int
    region_code: str
    existing: dict[int, int]  # row index -> id of a product that already exists

    @classmethod
    async def prepare(
        cls, conn: Any, rows: list[dict[str, Any]], supplier_id: int, user_id: int, region: str
    ) -> RawImport:
        found = await conn.fetch(
            _EXISTING,
            [r["category_code"] for r in rows],
            [r["brand"].strip() for r in rows],
            [r["model"].strip() for r in rows],
        )
        return cls(rows, supplier_id, user_id, region, {f["n"] - 1: f["id"] for f in found})

    @property
    def new_products(self) -> int:
        return len(self.rows) - len(self.existing)

    async def copy(self, conn: Any) -> None:
        """COPY everything in; call inside a transaction."""
        n = len(self.rows)
        product_ids = iter(r[0] for r in await conn.fetch(_IDS, "products", self.new_products))
        offer_ids = [r[0] for r in await conn.fetch(_IDS, "offers", n)]
        products: list[tuple[Any, ...]] = []
        offers: list[tuple[Any, ...]] = []
        delivery: list[tuple[Any, ...]] = []
        history: list[tuple[Any, ...]] = []
        audit: list[tuple[Any, ...]] = []
        supplier, user = self.supplier_id, self.user_id
        for index, (row, offer_id) in enumerate(zip(self.rows, offer_ids, strict=True)):
            product_id = self.existing.get(index)
            specs = _json.encode(row["specs"]).decode()
            brand, model, title = row["brand"].strip(), row["model"].strip(), row["title"].strip()
            image_urls: list[str] = row.get("image_urls") or []
            if product_id is None:
                product_id = next(product_ids)
                products.append(
                    (
                        product_id,
                        row["category_code"],
                        brand,
                        model,
                        title,
                        specs,
                        image_urls,
                        row["unit"],
                        supplier,
                    )
                )
                audit.append(
                    (
                        user,
                        supplier,
                        "product.created",
                        "product",
                        str(product_id),
                        None,
                        _json.encode(
                            {
                                "id": product_id,
                                "category_code": row["category_code"],
                                "brand": brand,
                                "model": model,
                                "title": title,
                                "specs": row["specs"],
                                "image_urls": image_urls,
                                "unit": row["unit"],
                                "import_job_id": None,
                            }
                        ).decode(),
                    )
                )
            tags = sorted(set(row["policy_tags"]))
            reference_date: date = row["reference_date"]
            offers.append(
                (
                    offer_id,
                    product_id,
                    supplier,
                    row["supplier_sku"],
                    "draft",
                    row["price_fen"],
                    row["reference_price_fen"],
                    row["reference_source_url"],
                    reference_date,
                    row["stock"],
                    row["min_order_qty"],
                    row["warranty_months"],
                    tags,
                )
            )
            regions = sorted((d["region_code"], d["delivery_days"]) for d in row["delivery"])
            delivery.extend((offer_id, region, days) for region, days in regions)
            history.append((offer_id, row["price_fen"], row["reference_price_fen"], user))
            audit.append(
                (
                    user,
                    supplier,
                    "offer.imported",
                    "offer",
                    str(offer_id),
                    self.region_code,
                    _json.encode(
                        {
                            "id": offer_id,
                            "product_id": product_id,
                            "supplier_id": supplier,
                            "supplier_sku": row["supplier_sku"],
                            "status": "draft",
                            "status_reason": None,
                            "price_fen": row["price_fen"],
                            "reference_price_fen": row["reference_price_fen"],
                            "reference_source_url": row["reference_source_url"],
                            "reference_date": reference_date,
                            "stock": row["stock"],
                            "min_order_qty": row["min_order_qty"],
                            "warranty_months": row["warranty_months"],
                            "policy_tags": tags,
                            "review_region_code": None,
                            "version": 1,
                            "delivery": [
                                {"region_code": r, "delivery_days": d} for r, d in regions
                            ],
                            "import_job_id": None,
                            "row": index + 1,
                            "result": "created",
                            "changed": [],
                        }
                    ).decode(),
                )
            )
        await conn.copy_records_to_table(
            "products",
            records=products,
            columns=(
                "id",
                "category_code",
                "brand",
                "model",
                "title",
                "specs",
                "image_urls",
                "unit",
                "created_by",
            ),
        )
        await conn.copy_records_to_table(
            "offers",
            records=offers,
            columns=(
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
            ),
        )
        await conn.copy_records_to_table(
            "offer_delivery", records=delivery, columns=("offer_id", "region_code", "delivery_days")
        )
        await conn.copy_records_to_table(
            "offer_price_history",
            records=history,
            columns=("offer_id", "price_fen", "reference_price_fen", "changed_by"),
        )
        await conn.copy_records_to_table(
            "audit_events",
            records=audit,
            columns=(
                "actor_user_id",
                "actor_organisation_id",
                "action",
                "entity_type",
                "entity_id",
                "region_code",
                "after",
            ),
        )
