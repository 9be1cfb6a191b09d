"""Bulk import of offers: files over HTTP and from the command line, against real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from emall.catalogue.models import AttributeSpec, TemplateWrite
from emall.catalogue.templates import put_template
from emall.db.pool import Pool
from emall.imports import create_job, get_job, pipeline, run_job
from emall.imports.models import ImportJobRead
from emall.imports.outcomes import unapplied_fields
from emall.imports.parse import parse_rows
from emall.imports.save import FileSaver, SaveResult, save_rows, stage
from emall.listings.models import OfferRow
from emall.principals import Principal
from tests.helpers import JWT_SECRET, org_id, principal_of, token_for

REPO = Path(__file__).resolve().parents[1]
NJ_SUPPLIER = "内江川南数码科技有限公司"
DESKTOP = "A02010105"  # 台式计算机, a leaf
LAPTOP = "A02010108"  # 便携式计算机, a leaf
COMPUTERS = "A02010100"  # 计算机, not a leaf
ROWS = 10_000
BAD_EVERY = (7, 42, 77)  # rows whose number mod 100 is one of these are bad: exactly 3%
BAD_KINDS = (
    "bad_price",
    "unknown_region",
    "non_leaf_category",
    "missing_field",
    "above_reference",
    "duplicate_sku",
    "bad_spec",
)
BLANK_AFTER = 5_000  # a blank line after this data row: JSONL row numbers are line numbers


def good_row(i: int, *, price_fen: int | None = None) -> dict[str, Any]:
    return {
        "supplier_sku": f"NJ-{i:05d}",
        "category_code": DESKTOP,
        "brand": "川南测试",
        "model": f"启天 M{i:05d}",
        "title": f"川南测试台式计算机 M{i:05d}",
        "specs": {"memory_gb": 8 * (1 + i % 4), "cpu": "i5-12500"},
        "price_fen": price_fen if price_fen is not None else 350_000 + i,
        "reference_price_fen": 500_000 + i,
        "reference_source_url": "https://www.lenovo.com.cn/pc/qitian",
        "reference_date": "2025-06-01",
        "stock": 10 + i % 50,
        "delivery": [
            {"region_code": "511000", "delivery_days": 2},
            {"region_code": "510300", "delivery_days": 4},
        ],
        "policy_tags": ["energy_saving"] if i % 3 == 0 else [],
        "warranty_months": 36,
    }


def bad_row(i: int, kind: str) -> tuple[dict[str, Any], str]:
    """A row broken in one way, and the field its error must name."""
    row = good_row(i)
    if kind == "bad_price":
        row["price_fen"] = 0
        return row, "price_fen"
    if kind == "unknown_region":
        row["delivery"][1]["region_code"] = "999999"
        return row, "delivery[1].region_code"
    if kind == "non_leaf_category":
        row["category_code"] = COMPUTERS
        return row, "category_code"
    if kind == "missing_field":
        del row["title"]
        return row, "title"
    if kind == "above_reference":
        row["price_fen"] = row["reference_price_fen"] + 1
        return row, "price_fen"
    if kind == "duplicate_sku":
        row["supplier_sku"] = f"NJ-{i - 1:05d}"  # the row before, which is good
        return row, "supplier_sku"
    assert kind == "bad_spec"
    row["specs"]["memory_gb"] = "lots"
    return row, "specs.memory_gb"


def build_file(
    prices: dict[int, int] | None = None,
) -> tuple[bytes, set[tuple[int, str]], dict[int, int]]:
    """The 10,000-row JSONL file, the (line, field) of each bad row, and row -> line numbers."""
    lines: list[str] = []
    expected: set[tuple[int, str]] = set()
    line_of: dict[int, int] = {}
    bad_seen = 0
    for i in range(1, ROWS + 1):
        if i % 100 in BAD_EVERY:
            row, field = bad_row(i, BAD_KINDS[bad_seen % len(BAD_KINDS)])
            bad_seen += 1
            expected.add((len(lines) + 1, field))
        else:
            row = good_row(i, price_fen=(prices or {}).get(i))
        line_of[i] = len(lines) + 1
        lines.append(json.dumps(row, ensure_ascii=False))
        if i == BLANK_AFTER:
            lines.append("")
    assert bad_seen == ROWS * 3 // 100
    return ("\n".join(lines) + "\n").encode(), expected, line_of


# A trigger that fails the save of any offer priced 424242 fen: a failure mid-import.
REFUSE_PRICE_TRIGGER = """
create function refuse_price() returns trigger language plpgsql as $$
begin
    if new.price_fen = 424242 then raise exception 'refused by test trigger'; end if;
    return new;
end $$;
create trigger refuse_price before insert on offer_price_history
    for each row execute function refuse_price();
"""


async def _import_refused_at_last_row(
    pool: Pool, principal: Principal, numbers: range
) -> ImportJobRead:
    """Import good rows whose last one REFUSE_PRICE_TRIGGER refuses: the job fails."""
    rows = [good_row(i) for i in numbers]
    rows[-1]["price_fen"] = 424242
    content = "\n".join(json.dumps(r) for r in rows).encode()
    async with pool.acquire() as conn:
        job = await create_job(conn, principal, fmt="jsonl", filename="f.jsonl", content=content)
    failed = await run_job(pool, job.id, content)
    assert failed.status == "failed"
    assert failed.failure is not None and "refused by test trigger" in failed.failure
    return failed


async def use_test_templates(pool: Pool) -> None:
    """This file's templates for desktops and laptops, whatever the demo seed put there."""
    operator = await principal_of(pool, "nj_operator")
    for code, required in ((DESKTOP, True), (LAPTOP, False)):
        attributes = [
            AttributeSpec(
                key="memory_gb", name="内存", type="integer", unit="GB", required=required
            ),
            AttributeSpec(key="cpu", name="处理器", type="text", required=required),
        ]
        async with pool.acquire() as conn:
            await put_template(conn, operator, code, TemplateWrite(attributes=attributes))


async def upload(
    client: AsyncTestClient[Litestar],
    headers: dict[str, str],
    content: bytes,
    *,
    fmt: str = "jsonl",
    filename: str = "offers.jsonl",
    content_type: str = "application/x-ndjson",
) -> Any:
    response = await client.post(
        "/api/v1/imports",
        params={"format": fmt, "filename": filename},
        content=content,
        headers={**headers, "Content-Type": content_type},
    )
    return response


async def wait_for(
    client: AsyncTestClient[Litestar], headers: dict[str, str], job_id: int
) -> dict[str, Any]:
    for _ in range(1200):
        response = await client.get(f"/api/v1/imports/{job_id}", headers=headers)
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if job["status"] in ("succeeded", "failed"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


async def import_file(
    client: AsyncTestClient[Litestar], headers: dict[str, str], content: bytes, **kwargs: Any
) -> dict[str, Any]:
    response = await upload(client, headers, content, **kwargs)
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["status"] in ("queued", "running", "succeeded")
    return await wait_for(client, headers, created["id"])


async def counts(pool: Pool) -> dict[str, int]:
    row = await pool.fetchrow(
        """
        select (select count(*) from offers) as offers,
               (select count(*) from products) as products,
               (select count(*) from offer_delivery) as delivery,
               (select count(*) from offer_price_history) as history,
               (select count(*) from audit_events where action = 'offer.imported') as audit
        """
    )
    assert row is not None
    return dict(row)


# -- the 10,000-row file ------------------------------------------------------------------------


async def test_ten_thousand_rows_then_the_same_file_then_ten_new_prices(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    await use_test_templates(pool)
    headers = await token_for(pool, "nj_supplier_admin")
    supplier = await org_id(pool, NJ_SUPPLIER)
    content, expected, line_of = build_file()
    before = await counts(pool)

    started = time.perf_counter()
    job = await import_file(client, headers, content)
    elapsed = time.perf_counter() - started
    print(f"\nimport of {ROWS:,} rows: {elapsed:.2f}s, {ROWS / elapsed:,.0f} rows/s")

    assert job["status"] == "succeeded", job
    assert job["supplier_id"] == supplier
    assert job["format"] == "jsonl"
    assert job["filename"] == "offers.jsonl"
    assert job["total_rows"] == job["processed_rows"] == ROWS
    assert (job["created_rows"], job["updated_rows"], job["unchanged_rows"]) == (9_700, 0, 0)
    assert job["error_rows"] == 300
    assert {(e["row"], e["field"]) for e in job["errors"]} == expected
    assert len(job["errors"]) == 300
    assert all(e["reason"] and not e["reason"].isascii() for e in job["errors"])  # Chinese first
    first = await counts(pool)
    assert first["offers"] - before["offers"] == 9_700
    assert first["products"] - before["products"] == 9_700
    assert first["delivery"] - before["delivery"] == 2 * 9_700
    assert first["history"] - before["history"] == 9_700
    assert first["audit"] - before["audit"] == 9_700
    offer = await pool.fetchrow(
        """
        select o.status, o.version, o.price_fen, o.policy_tags, p.title, p.specs, p.created_by
        from offers o join products p on p.id = o.product_id
        where o.supplier_id = $1 and o.supplier_sku = 'NJ-00003'
        """,
        supplier,
    )
    assert offer is not None
    assert dict(offer) == {
        "status": "draft",
        "version": 1,
        "price_fen": 350_003,
        "policy_tags": ["energy_saving"],
        "title": "川南测试台式计算机 M00003",
        "specs": {"memory_gb": 32, "cpu": "i5-12500"},
        "created_by": supplier,
    }
    # the line numbers: the blank line shifts the rows after it
    assert line_of[BLANK_AFTER + 1] == BLANK_AFTER + 2
    finished = await pool.fetchval(
        "select count(*) from audit_events where action = 'import.finished' and entity_id = $1",
        str(job["id"]),
    )
    assert finished == 1

    # the identical file again: nothing is written
    again = await import_file(client, headers, content)
    assert (again["created_rows"], again["updated_rows"], again["unchanged_rows"]) == (0, 0, 9_700)
    assert again["error_rows"] == 300
    assert await counts(pool) == first

    # ten new prices
    changed = [i for i in range(1, 200) if i % 100 not in BAD_EVERY][:10]
    new_content, _, _ = build_file({i: 300_000 + i for i in changed})
    third = await import_file(client, headers, new_content)
    assert (third["created_rows"], third["updated_rows"], third["unchanged_rows"]) == (
        0,
        10,
        9_690,
    )
    after = await counts(pool)
    assert after["offers"] == first["offers"] and after["products"] == first["products"]
    assert after["history"] - first["history"] == 10
    assert after["audit"] - first["audit"] == 10
    rows = await pool.fetch(
        """
        select o.supplier_sku, o.price_fen, o.version, a.before, a.after
        from offers o join audit_events a on a.entity_type = 'offer' and a.entity_id = o.id::text
        where a.action = 'offer.imported' and a.before is not null and o.supplier_id = $1
        order by o.supplier_sku
        """,
        supplier,
    )
    assert [r["supplier_sku"] for r in rows] == [f"NJ-{i:05d}" for i in changed]
    for r, i in zip(rows, changed, strict=True):
        assert r["price_fen"] == 300_000 + i
        assert r["version"] == 2
        assert r["before"]["price_fen"] == 350_000 + i
        assert r["after"]["price_fen"] == 300_000 + i
        assert r["after"]["changed"] == ["price_fen"]

    listed = await client.get("/api/v1/imports", headers=headers)
    assert listed.status_code == 200
    assert [j["id"] for j in listed.json()["items"]][:3] == [third["id"], again["id"], job["id"]]


# -- CSV ----------------------------------------------------------------------------------------

CSV_FILE = (
    "\ufeffsupplier_sku,category_code,brand,model,title,specs,price_fen,reference_price_fen,"
    "reference_source_url,reference_date,stock,delivery,min_order_qty,policy_tags,image_urls\n"
    'CSV-1,A02010105,川南测试, OptiPlex 7010 ,川南测试台式计算机 7010,"{""memory_gb"": 16, ""cpu"": ""i7""}",'
    "420000,450000,https://www.dell.com/p/7010,2025-05-01,5,511000:2;510300:4,,"
    "sme;energy_saving,https://img.example.com/a.jpg;https://img.example.com/b.jpg\n"
    "\n"
    "CSV-2,A02010108,川南测试,MateBook 14,川南测试便携式计算机,,600000,650000,https://www.huawei.com/m14,"
    "2025-05-02,0,510300:3,2,,\n"
    "CSV-3,A02010108,川南测试,MateBook 16,川南测试便携式计算机,,abc,650000,https://www.huawei.com/m16,"
    "2025-05-02,0,510300:3,,,\n"
    "CSV-4,A02010108,川南测试,MateBook X,川南测试便携式计算机,,600000,650000,https://www.huawei.com/x,"
    "2025-05-02,0,510300-3,,,\n"
)


async def test_csv_with_bom_lists_and_delivery_pairs(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    await use_test_templates(pool)
    headers = await token_for(pool, "nj_supplier_admin")
    supplier = await org_id(pool, NJ_SUPPLIER)
    job = await import_file(
        client,
        headers,
        CSV_FILE.encode(),
        fmt="csv",
        filename="offers.csv",
        content_type="text/csv",
    )
    assert job["status"] == "succeeded", job
    assert job["total_rows"] == 4
    assert (job["created_rows"], job["error_rows"]) == (2, 2)
    # row numbers count data rows (the blank line is a row, skipped)
    assert [(e["row"], e["field"]) for e in job["errors"]] == [
        (4, "price_fen"),
        (5, "delivery[0]"),
    ]
    rows = await pool.fetch(
        """
        select o.supplier_sku, o.min_order_qty, o.policy_tags, o.stock, p.brand, p.model,
               p.specs, p.image_urls,
               array(select d.region_code || ':' || d.delivery_days from offer_delivery d
                     where d.offer_id = o.id order by d.region_code) as delivery
        from offers o join products p on p.id = o.product_id
        where o.supplier_id = $1 and o.supplier_sku like 'CSV-%'
        order by o.supplier_sku
        """,
        supplier,
    )
    assert [dict(r) for r in rows] == [
        {
            "supplier_sku": "CSV-1",
            "min_order_qty": 1,
            "policy_tags": ["energy_saving", "sme"],
            "stock": 5,
            "brand": "川南测试",
            "model": "OptiPlex 7010",
            "specs": {"memory_gb": 16, "cpu": "i7"},
            "image_urls": ["https://img.example.com/a.jpg", "https://img.example.com/b.jpg"],
            "delivery": ["510300:4", "511000:2"],
        },
        {
            "supplier_sku": "CSV-2",
            "min_order_qty": 2,
            "policy_tags": [],
            "stock": 0,
            "brand": "川南测试",
            "model": "MateBook 14",
            "specs": {},
            "image_urls": [],
            "delivery": ["510300:3"],
        },
    ]


def test_parse_rows_numbers_and_cells() -> None:
    rows = list(parse_rows("csv", CSV_FILE.encode()))
    assert [n for n, _ in rows] == [1, 3, 4, 5]
    first = rows[0][1]
    assert isinstance(first, dict)
    assert first["delivery"] == [
        {"region_code": "511000", "delivery_days": "2"},
        {"region_code": "510300", "delivery_days": "4"},
    ]
    assert "min_order_qty" not in first  # empty cell: the default
    jsonl = list(parse_rows("jsonl", b'{"a": 1}\n\n[1]\n{bad\n'))
    assert [n for n, _ in jsonl] == [1, 3, 4]


async def test_file_level_refusals(client: AsyncTestClient[Litestar], pool: Pool) -> None:
    headers = await token_for(pool, "nj_supplier_admin")
    jobs_before = await pool.fetchval("select count(*) from import_jobs")

    # a body that cannot be read as the file it claims to be is malformed (400); a readable
    # file that breaks a rule of the import (too many rows, an unknown column) is a 422
    async def refused(content: bytes, status: int = 422, **kwargs: Any) -> dict[str, Any]:
        response = await upload(client, headers, content, **kwargs)
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        body: dict[str, Any] = response.json()
        return body

    body = await refused(b'{"supplier_sku": "\xff\xfe"}\n', status=400)
    assert body["errors"][0]["field"] == "file"
    assert "UTF-8" in body["errors"][0]["reason"]
    body = await refused(b"{}\n" * 200_001)
    assert body["errors"][0]["field"] == "file"
    assert "200,000" in body["errors"][0]["reason"]
    body = await refused(
        b"supplier_sku,colour\nA,red\n", fmt="csv", filename="x.csv", content_type="text/csv"
    )
    assert "colour" in body["errors"][0]["reason"]
    body = await refused(b"\n\n")
    assert body["errors"][0]["field"] == "file"
    body = await refused(b"x" * (50 * 1024 * 1024 + 1), status=413)
    assert "50 MB" in body["detail"]
    response = await client.post(
        "/api/v1/imports", content=b"{}\n", headers={**headers, "Content-Type": "text/plain"}
    )
    assert response.status_code == 415  # not one of the upload's content types
    assert response.headers["content-type"].startswith("application/problem+json")
    response = await client.post(
        "/api/v1/imports",
        content=b"{}\n",
        headers={**headers, "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 422  # bytes, but neither format nor a filename says which
    assert response.json()["errors"][0]["field"] == "format"
    assert await pool.fetchval("select count(*) from import_jobs") == jobs_before


async def test_an_unreadable_csv_header_is_a_400_naming_the_header(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    """A header cell longer than the CSV reader's field limit (131,072 characters) answered
    500; it is a 400 problem naming ``file.header``, and no job is made. The route states its
    size bound (50 MB) in its documented 413."""
    headers = await token_for(pool, "nj_supplier_admin")
    jobs_before = await pool.fetchval("select count(*) from import_jobs")
    content = b"supplier_sku," + b"x" * 140_000 + b"\nA,1\n"
    response = await upload(
        client, headers, content, fmt="csv", filename="x.csv", content_type="text/csv"
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == ["file.header"], errors
    assert "表头" in errors[0]["reason"]
    assert await pool.fetchval("select count(*) from import_jobs") == jobs_before
    schema = (await client.get("/schema/openapi.json")).json()
    upload_op = schema["paths"]["/api/v1/imports"]["post"]
    assert "50 MB" in upload_op["responses"]["413"]["description"]


# -- listed offers and the rise rule ------------------------------------------------------------


async def test_listed_offer_rising_too_much_goes_back_to_review(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    await use_test_templates(pool)
    headers = await token_for(pool, "nj_supplier_admin")
    supplier = await org_id(pool, NJ_SUPPLIER)
    base = [good_row(1, price_fen=100_000), good_row(2, price_fen=100_000)]
    for row in base:
        row["reference_price_fen"] = 200_000
    content = "\n".join(json.dumps(r, ensure_ascii=False) for r in base).encode()
    job = await import_file(client, headers, content)
    assert job["created_rows"] == 2, job
    await pool.execute(
        """
        update offers set status = 'listed', review_region_code = '511000', listed_at = now()
        where supplier_id = $1 and supplier_sku in ('NJ-00001', 'NJ-00002')
        """,
        supplier,
    )
    await pool.execute(  # the default rule, whatever the demo seed set for Neijiang
        """
        insert into price_rules (region_code, max_rise_bp, rise_window_days)
        values ('511000', 1000, 30)
        on conflict (region_code) do update set max_rise_bp = 1000, rise_window_days = 30
        """
    )
    base[0]["price_fen"] = 120_000  # +20%: beyond the default 10%
    base[1]["price_fen"] = 105_000  # +5%
    content = "\n".join(json.dumps(r, ensure_ascii=False) for r in base).encode()
    job = await import_file(client, headers, content)
    assert job["updated_rows"] == 2, job
    offers = {
        r["supplier_sku"]: r
        for r in await pool.fetch(
            "select id, supplier_sku, status, status_reason, submitted_at from offers "
            "where supplier_id = $1",
            supplier,
        )
    }
    risen, modest = offers["NJ-00001"], offers["NJ-00002"]
    assert risen["status"] == "submitted"
    assert risen["status_reason"] == "价格上涨超过规定比例，需重新审核 (price rise needs review)"
    assert risen["submitted_at"] is not None
    assert modest["status"] == "listed"
    outbox = {
        r["aggregate_id"]: r["payload"]
        for r in await pool.fetch(
            "select aggregate_id, payload from outbox "
            "where topic = 'offer.changed' and aggregate_type = 'offer'"
        )
    }
    assert outbox[str(risen["id"])]["status"] == "submitted"
    assert outbox[str(modest["id"])]["status"] == "listed"
    assert outbox[str(modest["id"])]["fields"] == ["price_fen"]


async def test_a_product_offered_under_another_sku_is_a_row_error(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    await use_test_templates(pool)
    headers = await token_for(pool, "nj_supplier_admin")
    first = good_row(1)
    job = await import_file(client, headers, json.dumps(first).encode())
    assert job["created_rows"] == 1
    renamed = {**first, "supplier_sku": "OTHER-1", "model": "启天M00001"}  # same product key
    other = good_row(2)
    content = (json.dumps(renamed) + "\n" + json.dumps(other)).encode()
    job = await import_file(client, headers, content)
    assert job["status"] == "succeeded"
    assert (job["created_rows"], job["error_rows"]) == (1, 1)
    assert [(e["row"], e["field"]) for e in job["errors"]] == [(1, "model")]
    assert "NJ-00001" in job["errors"][0]["reason"]


# -- what each row did ---------------------------------------------------------------------------


async def test_rows_report_matched_products_what_they_kept_and_every_offer_id(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    """A row whose product another supplier created is ``matched``: the product keeps its
    shared fields and the row's differing ones are listed as not applied; every saved row gives
    its product and offer ids, a refused row its errors; the same file again reports the same
    ids, matched and unchanged."""
    await use_test_templates(pool)
    shared = {
        "category_code": DESKTOP,
        "brand": "共享品牌",
        "model": "Share 100",
        "title": "共享品牌台式计算机 S100",
        "specs": {"memory_gb": 16, "cpu": "i7"},
        "unit": "台",
    }
    laptop = {
        "category_code": LAPTOP,
        "brand": "共享品牌",
        "model": "Book 14",
        "title": "共享品牌便携式计算机 B14",
        "specs": {"memory_gb": 16},
        "image_urls": ["https://img.example.com/b14.jpg"],
    }
    zg = await token_for(pool, "zg_supplier_admin")
    made = await client.post("/api/v1/products", json=shared, headers=zg)
    assert made.status_code == 201, made.text
    product_id = made.json()["id"]
    made = await client.post("/api/v1/products", json=laptop, headers=zg)
    assert made.status_code == 201, made.text
    laptop_id = made.json()["id"]
    headers = await token_for(pool, "nj_supplier_admin")
    supplier = await org_id(pool, NJ_SUPPLIER)
    matching = {
        **good_row(1),
        "brand": "共享品牌",
        "model": " share100 ",  # the same model without case or white space
        "title": "川南改写的标题",
        "specs": {"memory_gb": 8, "cpu": "i7"},
        "unit": "台",
    }
    # no specs given (the laptop template requires none) and other images: only images kept
    other_images = {
        **good_row(4),
        "category_code": LAPTOP,
        "brand": "共享品牌",
        "model": "BOOK 14",
        "title": laptop["title"],
        "specs": {},
        "image_urls": ["https://img.example.com/mine.jpg"],
    }
    rows = [matching, good_row(2), {**good_row(3), "price_fen": 0}, other_images]
    content = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode()
    job = await import_file(client, headers, content)
    assert job["status"] == "succeeded", job
    assert (job["created_rows"], job["error_rows"]) == (3, 1)
    assert (job["created_products"], job["matched_products"]) == (1, 2)

    offers = {
        r["supplier_sku"]: (r["id"], r["product_id"])
        for r in await pool.fetch(
            "select id, supplier_sku, product_id from offers where supplier_id = $1", supplier
        )
    }
    assert offers["NJ-00001"][1] == product_id
    kept = await pool.fetchrow("select model, title, specs from products where id = $1", product_id)
    assert kept is not None
    assert dict(kept) == {"model": "Share 100", "title": shared["title"], "specs": shared["specs"]}

    path = f"/api/v1/imports/{job['id']}/rows"
    answer = await client.get(path, headers=headers)
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    assert answer.json()["next_cursor"] is None
    laptop_row = items.pop()
    assert (laptop_row["row"], laptop_row["product"], laptop_row["product_id"]) == (
        4,
        "matched",
        laptop_id,
    )
    assert [u["field"] for u in laptop_row["unapplied"]] == ["model", "image_urls"]
    unapplied = items[0].pop("unapplied")
    assert [u["field"] for u in unapplied] == ["model", "title", "specs"]
    assert all(u["reason"] and not u["reason"].isascii() for u in unapplied)  # Chinese first
    errors = items[2].pop("errors")
    assert [(e["row"], e["field"]) for e in errors] == [(3, "price_fen")]
    assert items == [
        {
            "row": 1,
            "outcome": "saved",
            "product": "matched",
            "product_id": product_id,
            "offer": "created",
            "offer_id": offers["NJ-00001"][0],
            "offer_status": "draft",
            "errors": [],
        },
        {
            "row": 2,
            "outcome": "saved",
            "product": "created",
            "product_id": offers["NJ-00002"][1],
            "offer": "created",
            "offer_id": offers["NJ-00002"][0],
            "offer_status": "draft",
            "unapplied": [],
            "errors": [],
        },
        {
            "row": 3,
            "outcome": "refused",
            "product": None,
            "product_id": None,
            "offer": None,
            "offer_id": None,
            "offer_status": None,
            "unapplied": [],
        },
    ]

    # the same file again: nothing changes, and every row reports the ids it already had
    again = await import_file(client, headers, content)
    assert (again["unchanged_rows"], again["created_rows"], again["error_rows"]) == (3, 0, 1)
    assert (again["created_products"], again["matched_products"]) == (0, 3)
    second = (await client.get(f"/api/v1/imports/{again['id']}/rows", headers=headers)).json()
    assert [
        (r["row"], r["product"], r["product_id"], r["offer"], r["offer_id"], len(r["unapplied"]))
        for r in second["items"]
    ] == [
        (1, "matched", product_id, "unchanged", offers["NJ-00001"][0], 3),
        (2, "matched", offers["NJ-00002"][1], "unchanged", offers["NJ-00002"][0], 0),
        (3, None, None, None, None, 0),
        (4, "matched", laptop_id, "unchanged", offers["NJ-00004"][0], 2),
    ]

    # pages, the outcome filter, the page bound, and who may see the rows
    page = (await client.get(path, params={"limit": 2}, headers=headers)).json()
    assert [r["row"] for r in page["items"]] == [1, 2]
    rest = await client.get(path, params={"cursor": page["next_cursor"]}, headers=headers)
    assert [r["row"] for r in rest.json()["items"]] == [3, 4]
    refused = await client.get(path, params={"outcome": "refused"}, headers=headers)
    assert [r["row"] for r in refused.json()["items"]] == [3]
    too_many = await client.get(path, params={"limit": 5_001}, headers=headers)
    assert too_many.status_code == 400
    operator = await client.get(path, headers=await token_for(pool, "nj_operator"))
    assert operator.status_code == 200
    other = await client.get(path, headers=await token_for(pool, "zg_supplier_admin"))
    assert other.status_code == 404


def test_unapplied_fields_say_why_in_product_field_order() -> None:
    fields = unapplied_fields(["unit", "specs", "brand"])
    assert [f.field for f in fields] == ["brand", "specs", "unit"]
    assert "不区分大小写" in fields[0].reason and "case" in fields[0].reason
    assert "共用" in fields[1].reason and "specs" in fields[1].reason
    assert unapplied_fields([]) == []
    with pytest.raises(ValueError, match="price_fen"):
        unapplied_fields(["price_fen"])


# -- who may do what ----------------------------------------------------------------------------


async def test_who_may_create_and_read_jobs(client: AsyncTestClient[Litestar], pool: Pool) -> None:
    await use_test_templates(pool)
    supplier_headers = await token_for(pool, "nj_supplier_admin")
    job = await import_file(client, supplier_headers, json.dumps(good_row(1)).encode())
    path = f"/api/v1/imports/{job['id']}"
    other = await client.get(path, headers=await token_for(pool, "zg_supplier_admin"))
    assert other.status_code == 404
    operator = await client.get(path, headers=await token_for(pool, "nj_operator"))
    assert operator.status_code == 200
    staff = await client.get(path, headers=await token_for(pool, "nj_supplier_staff"))
    assert staff.status_code == 200
    buyer = await upload(
        client, await token_for(pool, "nj_buyer"), json.dumps(good_row(2)).encode()
    )
    assert buyer.status_code == 403
    assert (await client.get(path)).status_code == 401
    others = await client.get("/api/v1/imports", headers=await token_for(pool, "zg_supplier_admin"))
    assert job["id"] not in {j["id"] for j in others.json()["items"]}


# -- the library: progress and failure ------------------------------------------------------------


async def test_progress_is_reported_and_a_failed_job_saves_nothing(pool: Pool) -> None:
    await use_test_templates(pool)
    principal = await principal_of(pool, "nj_supplier_staff")
    content = "\n".join(json.dumps(good_row(i)) for i in range(1, 2_501)).encode()
    async with pool.acquire() as conn:
        job = await create_job(conn, principal, fmt="jsonl", filename="a.jsonl", content=content)
    assert job.status == "queued" and job.total_rows == 2_500
    seen: list[tuple[int, int]] = []
    done = await run_job(pool, job.id, content, progress=lambda n, t: seen.append((n, t)))
    assert seen == [(1_000, 2_500), (2_000, 2_500), (2_500, 2_500)]
    assert done.status == "succeeded" and done.created_rows == 2_500
    assert (await get_job(pool, principal, job.id)).processed_rows == 2_500

    offers = await pool.fetchval("select count(*) from offers")
    changed = content.replace(b"350001", b"350002")
    async with pool.acquire() as conn:
        job = await create_job(conn, principal, fmt="jsonl", filename="b.jsonl", content=content)
    failed = await run_job(pool, job.id, changed)
    assert failed.status == "failed"
    assert failed.failure is not None and failed.failure.startswith("导入失败")
    assert failed.finished_at is not None
    assert await pool.fetchval("select count(*) from offers") == offers

    # a failure while saving rolls everything back: no product, offer or event of the file stays
    await pool.execute(REFUSE_PRICE_TRIGGER)
    before = await counts(pool)
    failed = await _import_refused_at_last_row(pool, principal, range(5_001, 5_011))
    assert failed.created_rows == 0
    assert await counts(pool) == before
    assert (
        await pool.fetchval(
            "select after->>'status' from audit_events "
            "where action = 'import.finished' and entity_id = $1",
            str(job.id),
        )
        == "failed"
    )


# -- batches: checked while saved, judged as one file ----------------------------------------------


async def test_a_file_of_several_batches_is_saved_whole_or_not_at_all(
    pool: Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    await use_test_templates(pool)
    monkeypatch.setattr(pipeline, "SAVE_BATCH", 1_000)
    principal = await principal_of(pool, "nj_supplier_staff")
    before = await counts(pool)
    rows = [good_row(i) for i in range(1, 2_501)]
    rows[2_099]["supplier_sku"] = rows[4]["supplier_sku"]  # row 2,100 repeats row 5's SKU
    content = "\n".join(json.dumps(r) for r in rows).encode()
    async with pool.acquire() as conn:
        job = await create_job(conn, principal, fmt="jsonl", filename="a.jsonl", content=content)
    done = await run_job(pool, job.id, content)
    assert done.status == "succeeded", done.failure
    assert (done.processed_rows, done.created_rows, done.error_rows) == (2_500, 2_499, 1)
    assert [(e.row, e.field) for e in done.errors] == [(2_100, "supplier_sku")]
    after = await counts(pool)
    assert after["offers"] - before["offers"] == 2_499
    assert after["audit"] - before["audit"] == 2_499

    # a failure in the third batch takes the first two with it
    await pool.execute(REFUSE_PRICE_TRIGGER)
    await _import_refused_at_last_row(pool, principal, range(5_001, 7_501))
    assert await counts(pool) == after


async def _job_row(pool: Pool, principal: Principal) -> int:
    """A job for the saver to record its rows under (the saver itself needs no file)."""
    job_id: int = await pool.fetchval(
        "insert into import_jobs (supplier_id, created_by, format, sha256) "
        "values ($1, $2, 'jsonl', '') returning id",
        principal.organisation_id,
        principal.user_id,
    )
    return job_id


async def test_batches_are_judged_as_the_whole_file(pool: Pool) -> None:
    """Rows that repeat a product of an earlier batch, or name a product that an earlier batch
    moved an offer away from, are refused as they would be in one batch. (The row check catches
    repeats first; the saver must not depend on it.)"""
    principal = await principal_of(pool, "nj_supplier_admin")

    def row(number: int, sku: str, model: str) -> tuple[int, OfferRow]:
        values = {**good_row(number), "supplier_sku": sku, "model": model}
        return number, msgspec.convert(values, OfferRow)

    job_id = await _job_row(pool, principal)
    async with pool.acquire() as conn, conn.transaction():
        await save_rows(conn, principal, [row(1, "BATCH-Z", "BATCH-P0")], job_id=job_id)
    job_id = await _job_row(pool, principal)
    rows = [
        row(1, "BATCH-Z", "BATCH-Q"),  # moves the offer BATCH-Z from product P0 to Q
        row(2, "BATCH-1", "BATCH-R"),
        row(3, "BATCH-2", "batch-r"),  # the product of row 2
        row(4, "BATCH-3", "BATCH-P0"),  # offered under BATCH-Z before the import
        row(5, "BATCH-4", "BATCH-S"),
    ]

    async def saved(batches: list[list[tuple[int, OfferRow]]]) -> SaveResult:
        async with pool.acquire() as conn:
            transaction = conn.transaction()
            await transaction.start()
            try:
                saver = FileSaver(conn, principal, job_id=job_id)
                for batch in batches:
                    await saver.save(stage(batch))
                return saver.result
            finally:
                await transaction.rollback()

    whole = await saved([rows])
    assert (whole.created, whole.updated, whole.unchanged) == (2, 1, 0)
    assert [(e.row, e.field) for e in whole.errors] == [(3, "model"), (4, "model")]
    assert "第 2 行" in whole.errors[0].reason and "BATCH-Z" in whole.errors[1].reason
    assert await saved([rows[:2], rows[2:]]) == whole
    assert await saved([[r] for r in rows]) == whole


# -- hostile rows ---------------------------------------------------------------------------------

DEEP = '{"k":' * 10_000 + "1" + "}" * 10_000


async def test_rows_a_database_cannot_hold_are_row_errors(pool: Pool) -> None:
    """NUL characters anywhere in a row, and JSON nested past 32 levels, are row errors naming
    the field; an error echoing a NUL from the file is stored without it."""
    await use_test_templates(pool)
    principal = await principal_of(pool, "nj_supplier_staff")
    good = json.dumps(good_row(1))
    broken: list[tuple[dict[str, Any] | str, str]] = [
        ({**good_row(2), "brand": "a\x00b"}, "brand"),
        ({**good_row(3), "specs": {"memory_gb": 8, "cpu": "i5\x00"}}, "specs.cpu"),
        ({**good_row(4), "image_urls": ["https://img.example.com/\x00.jpg"]}, "image_urls[0]"),
        ({**good_row(5), "colour\x00": "red"}, "colour\\u0000"),
        ("[" * 10_000 + "]" * 10_000, "row"),
        (json.dumps(good_row(7)).replace('"delivery": [', f'"delivery": [{DEEP}, '), "delivery"),
        ({**good_row(8), "specs": {"memory_gb": 8, "cpu": "i5", "x": [[[[[[[[[[]]]]]]]]]]}}, ""),
    ]
    lines = [good] + [r if isinstance(r, str) else json.dumps(r) for r, _ in broken]
    content = "\n".join(lines).encode()
    async with pool.acquire() as conn:
        job = await create_job(conn, principal, fmt="jsonl", filename="h.jsonl", content=content)
    done = await run_job(pool, job.id, content)
    assert done.status == "succeeded", done.failure
    assert done.created_rows == 1
    fields = [(e.row, e.field) for e in done.errors]
    assert fields[:-1] == [(n, f) for n, (_, f) in enumerate(broken[:-1], start=2)]
    assert fields[-1] == (8, "specs.x")  # 10 levels: not too deep, but not a spec value
    nul = [e.reason for e in done.errors if e.row in (2, 3, 4)]
    assert nul == ["不能包含 NUL 字符 (must not contain a NUL character)"] * 3
    assert all("嵌套过深" in e.reason for e in done.errors if e.row in (6, 7))

    csv_content = (
        "supplier_sku,category_code,brand,model,title,specs,price_fen,reference_price_fen,"
        "reference_source_url,reference_date,stock,delivery\n"
        f'DEEP-1,{DESKTOP},川南测试,D1,川南测试台式计算机,"{DEEP.replace(chr(34), chr(34) * 2)}",'
        "420000,450000,https://www.dell.com/p/7010,2025-05-01,5,511000:2\n"
    ).encode()
    async with pool.acquire() as conn:
        job = await create_job(conn, principal, fmt="csv", filename="h.csv", content=csv_content)
    done = await run_job(pool, job.id, csv_content)
    assert done.status == "succeeded", done.failure
    assert [(e.row, e.field) for e in done.errors] == [(1, "specs")]


# -- the command line ---------------------------------------------------------------------------


def test_cli_import(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "offers.jsonl"
    rows = [good_row(i) for i in range(1, 51)]
    rows[9]["price_fen"] = rows[9]["reference_price_fen"] + 1
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "EMALL_STATE_DIR": str(tmp_path / "state"),
        "EMALL_JWT_SECRET": JWT_SECRET,
    }
    env.pop("MEILI_URL", None)
    emall = [sys.executable, "-c", "from api.cli import main; main()"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*emall, *args],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    help_text = run("catalogue", "import", "--help")
    assert help_text.returncode == 0, help_text.stderr
    assert "--supplier" in help_text.stdout

    supplier = asyncio.run(_prepare(database_url))
    result = run("catalogue", "import", str(path), "--supplier", str(supplier))
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "succeeded" in result.stdout
    assert "created: 49  updated: 0  unchanged: 0  error rows: 1" in result.stdout
    assert "products created: 49  matched: 0" in result.stdout
    assert "row 10  price_fen" in result.stdout

    uscc = asyncio.run(_uscc(database_url, supplier))
    again = run("catalogue", "import", str(path), "--supplier", uscc, "--as", "nj_supplier_staff")
    assert again.returncode == 0, (again.stdout, again.stderr)
    assert "created: 0  updated: 0  unchanged: 49  error rows: 1" in again.stdout
    assert "products created: 0  matched: 49" in again.stdout

    refused = run("catalogue", "import", str(path), "--supplier", str(supplier), "--as", "nj_buyer")
    assert refused.returncode == 1
    assert "nj_buyer" in refused.stderr


async def _prepare(dsn: str) -> int:
    """This file's templates in the CLI's database; the Neijiang supplier's id."""
    from emall.db.pool import create_pool

    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        await use_test_templates(pool)
        return await org_id(pool, NJ_SUPPLIER)
    finally:
        await pool.close()


async def _uscc(dsn: str, supplier: int) -> str:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return str(await conn.fetchval("select uscc from organisations where id = $1", supplier))
    finally:
        await conn.close()
