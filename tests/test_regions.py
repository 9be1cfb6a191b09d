"""Regions (行政区划): the packaged table, lookups, children, search and their errors."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from emall.db.pool import Pool
from emall.pagination import encode_cursor

REGIONS_CSV = Path(__file__).resolve().parents[1] / "src" / "emall" / "data" / "regions.csv"


def _csv_rows() -> list[tuple[str, str, str, str | None]]:
    with REGIONS_CSV.open(encoding="utf-8", newline="") as handle:
        return [
            (row["code"], row["name"], row["level"], row["parent"] or None)
            for row in csv.DictReader(handle)
        ]


def _fields(response: Any) -> list[str]:
    assert response.headers["content-type"].startswith("application/problem+json")
    return [e["field"] for e in response.json()["errors"]]


async def test_regions_table_equals_the_packaged_csv(pool: Pool) -> None:
    expected = _csv_rows()
    assert len(expected) == 3211
    rows = await pool.fetch("select code, name, level, parent_code from regions")
    actual = {(r["code"], r["name"], r["level"], r["parent_code"]) for r in rows}
    assert len(rows) == len(actual) == 3211
    assert actual == set(expected), sorted(actual ^ set(expected))[:10]


async def test_region_chain_of_every_region_walks_its_parents_to_the_top(pool: Pool) -> None:
    """The SQL function ``region_chain`` (joins, not recursion) against the parents in the
    packaged CSV, for every region; an unknown code has no chain."""
    parent = {code: parent_code for code, _, _, parent_code in _csv_rows()}

    def chain(code: str) -> list[str]:
        found = [code]
        while parent[found[-1]] is not None:
            found.append(parent[found[-1]])  # type: ignore[arg-type]
        return found

    rows = await pool.fetch("select code, region_chain(code) as chain from regions")
    assert {r["code"]: r["chain"] for r in rows} == {code: chain(code) for code in parent}
    assert await pool.fetchval("select region_chain('999999')") is None


async def test_region_with_ancestors_needs_no_credentials(
    client: AsyncTestClient[Litestar],
) -> None:
    response = await client.get("/api/v1/regions/511002")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["code"], body["name"], body["level"], body["parent_code"]) == (
        "511002",
        "市中区",
        "county",
        "511000",
    )
    assert [(a["code"], a["name"]) for a in body["ancestors"]] == [
        ("511000", "内江市"),
        ("510000", "四川省"),
    ]
    assert body["children_count"] == 0

    city = (await client.get("/api/v1/regions/511000")).json()
    assert city["children_count"] == 5
    province = (await client.get("/api/v1/regions/510000")).json()
    assert province["ancestors"] == []
    assert province["parent_code"] is None


async def test_children_walk_every_page(client: AsyncTestClient[Litestar]) -> None:
    expected = sorted((code, name) for code, name, _, parent in _csv_rows() if parent == "511000")
    assert len(expected) == 5
    for limit, pages_expected in ((5, 1), (4, 2), (2, 3)):
        seen: list[tuple[str, str]] = []
        cursor: str | None = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": limit}
            if cursor:
                params["cursor"] = cursor
            response = await client.get("/api/v1/regions/511000/children", params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            assert len(body["items"]) <= limit
            seen += [(r["code"], r["name"]) for r in body["items"]]
            pages += 1
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert seen == expected, limit
        assert pages == pages_expected, limit


async def test_children_of_sichuan_paginate_with_limit_5(
    client: AsyncTestClient[Litestar],
) -> None:
    expected = [code for code, _, _, parent in sorted(_csv_rows()) if parent == "510000"]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 5}
        if cursor:
            params["cursor"] = cursor
        body = (await client.get("/api/v1/regions/510000/children", params=params)).json()
        assert len(body["items"]) <= 5
        assert all(r["parent_code"] == "510000" for r in body["items"])
        seen += [r["code"] for r in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    assert len(seen) == len(set(seen)) == 21


async def test_children_of_a_county_and_of_an_unknown_region(
    client: AsyncTestClient[Litestar],
) -> None:
    county = await client.get("/api/v1/regions/511002/children")
    assert county.status_code == 200
    assert county.json() == {"items": [], "next_cursor": None}
    unknown = await client.get("/api/v1/regions/999999/children")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")


async def test_search_by_name(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/api/v1/regions", params={"q": "内江"})
    assert response.status_code == 200
    codes = [r["code"] for r in response.json()["items"]]
    assert "511000" in codes
    assert codes == sorted(codes)
    assert all("内江" in r["name"] for r in response.json()["items"])
    # surrounding blanks are ignored
    padded = await client.get("/api/v1/regions", params={"q": "  内江市 "})
    assert [r["code"] for r in padded.json()["items"]] == ["511000"]


async def test_level_and_parent_filters(client: AsyncTestClient[Litestar]) -> None:
    provinces = await client.get("/api/v1/regions", params={"level": "province", "limit": 200})
    items = provinces.json()["items"]
    assert len(items) == 34
    assert all(r["level"] == "province" and r["parent_code"] is None for r in items)

    cities = await client.get(
        "/api/v1/regions", params={"level": "city", "parent_code": "510000", "limit": 200}
    )
    expected = [
        code
        for code, _, level, parent in sorted(_csv_rows())
        if level == "city" and parent == "510000"
    ]
    assert [r["code"] for r in cities.json()["items"]] == expected
    assert len(expected) == 21

    named = await client.get("/api/v1/regions", params={"q": "市中区", "parent_code": "511000"})
    assert [r["code"] for r in named.json()["items"]] == ["511002"]

    # Chongqing's districts hang directly under the province (no 市辖区 placeholder)
    chongqing = await client.get(
        "/api/v1/regions", params={"level": "county", "parent_code": "500000", "q": "渝中"}
    )
    assert [r["code"] for r in chongqing.json()["items"]] == ["500103"]


async def test_bad_filters_are_400_naming_the_field(client: AsyncTestClient[Litestar]) -> None:
    level = await client.get("/api/v1/regions", params={"level": "village"})
    assert level.status_code == 400
    assert any("level" in f for f in _fields(level))

    parent = await client.get("/api/v1/regions", params={"parent_code": "999999"})
    assert parent.status_code == 422  # well-formed, but no such region
    assert _fields(parent) == ["parent_code"]


async def test_unknown_and_malformed_codes(client: AsyncTestClient[Litestar]) -> None:
    unknown = await client.get("/api/v1/regions/999999")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")
    assert unknown.json()["status"] == 404

    for bad in ("51100", "5110000", "abcdef"):
        malformed = await client.get(f"/api/v1/regions/{bad}")
        assert malformed.status_code == 400, (bad, malformed.text)
        assert any("code" in f for f in _fields(malformed))


async def test_invalid_limit_is_400_naming_limit(client: AsyncTestClient[Litestar]) -> None:
    for path in ("/api/v1/regions", "/api/v1/regions/511000/children"):
        for limit in (0, 201, -1):
            response = await client.get(path, params={"limit": limit})
            assert response.status_code == 400, (path, limit, response.text)
            assert any("limit" in f for f in _fields(response))
    ok = await client.get("/api/v1/regions", params={"limit": 200})
    assert len(ok.json()["items"]) == 200
    assert ok.json()["next_cursor"]


async def test_bad_cursor_is_400_naming_cursor(client: AsyncTestClient[Litestar]) -> None:
    # not base64url: the document refuses it (400)
    malformed = await client.get("/api/v1/regions", params={"cursor": "not-a-cursor!"})
    assert malformed.status_code == 400, malformed.text
    assert _fields(malformed) == ["query.cursor"]
    # base64url, but not a cursor this server wrote (422)
    for cursor in ("bm90IGpzb24", encode_cursor(5), encode_cursor("a", "b")):
        response = await client.get("/api/v1/regions", params={"cursor": cursor})
        assert response.status_code == 422, (cursor, response.text)
        assert _fields(response) == ["cursor"]
    children = await client.get("/api/v1/regions/511000/children", params={"cursor": "%%%"})
    assert children.status_code == 400
    assert _fields(children) == ["query.cursor"]


async def test_like_wildcards_are_literal(client: AsyncTestClient[Litestar]) -> None:
    for q in ("%", "_", "内%", "_江", "\\"):
        response = await client.get("/api/v1/regions", params={"q": q})
        assert response.status_code == 200, (q, response.text)
        assert response.json()["items"] == [], q
