"""Search documents and their mirror, on the demo catalogue (real PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from emall.db.pool import Connection, Pool
from emall.search.documents import (
    build_documents,
    listed_offer_ids,
    offers_of_supplier,
    refresh_mirror,
)
from emall.search.pinyin import pinyin_forms, pinyin_terms

REGIONS = ["511000", "510300", "511002", "510322", "510500", "511500", "510100", "530100"]


def test_pinyin_forms() -> None:
    assert pinyin_forms("打印机") == ("dayinji", "dyj")
    assert pinyin_forms("A4黑白打印机") == ("a4heibaidayinji", "a4hbdyj")
    assert pinyin_forms("兆芯 KX-U6780A，台式机") == ("zhaoxinkxu6780ataishiji", "zxkxu6780atsj")
    assert pinyin_forms("") == ("", "")


def test_pinyin_terms_give_every_suffix_of_a_chinese_run() -> None:
    full, initials = pinyin_terms("奔图 A4黑白打印机")
    assert full.split() == ["bentu", "heibaidayinji", "baidayinji", "dayinji", "yinji"]
    assert initials.split() == ["bt", "hbdyj", "bdyj", "dyj", "yj"]


async def _all_listed(conn: Connection) -> list[int]:
    ids: list[int] = []
    while page := await listed_offer_ids(conn, after=ids[-1] if ids else 0, limit=200):
        ids.extend(page)
    return ids


async def test_documents_of_demo_offers(pool: Pool) -> None:
    async with pool.acquire() as conn:
        ids = await _all_listed(conn)
        assert len(ids) == 524
        drafts = await conn.fetch("select id from offers where status <> 'listed' limit 3")
        gone = [10**9]
        docs, removals = await build_documents(conn, [*ids, *(r["id"] for r in drafts), *gone])
    assert len(docs) == len(ids)
    assert removals == sorted([*(r["id"] for r in drafts), *gone])
    by_leaf: dict[str, dict[str, Any]] = {d["category_code"]: d for d in docs}

    desktop = by_leaf["A02010105"]
    assert desktop["category_codes"][0] == "A02010105"
    assert desktop["category_codes"][-1] == "A02000000"
    assert desktop["category_names"][0] == "台式计算机"
    assert {"计算机", "设备"} <= set(desktop["category_names"])
    assert "处理器型号 " in desktop["specs_text"]
    assert f"内存容量 {desktop['specs']['memory_gb']}GB" in desktop["specs_text"]
    assert "jisuanji" in desktop["category_pinyin"].split()
    assert isinstance(desktop["updated_at"], int)
    assert desktop["delivery_regions"] == sorted(desktop["delivery_regions"])

    printer = by_leaf["A02021003"]
    assert "dayinji" in printer["title_pinyin"].split()
    assert "dyj" in printer["title_initials"].split()
    assert "自动双面 是" in printer["specs_text"] or "自动双面 否" in printer["specs_text"]
    assert all(isinstance(v, str | int | float | bool) for v in printer["specs"].values())


def _doc_rule(doc: dict[str, Any], chain: list[str]) -> bool:
    return bool(set(doc["buyable_regions"]) & set(chain)) and not (
        set(doc["blocked_regions"]) & set(chain)
    )


async def _assert_rule_agrees(conn: Connection, at: datetime) -> int:
    """For every demo supplier and region, the document filter equals ``may_sell``."""
    suppliers = [
        r["id"] for r in await conn.fetch("select id from organisations where kind = 'supplier'")
    ]
    first_offer = {
        r["supplier_id"]: r["id"]
        for r in await conn.fetch(
            "select distinct on (supplier_id) supplier_id, id from offers order by supplier_id, id"
        )
    }
    assert set(first_offer) == set(suppliers)
    docs, _ = await build_documents(conn, list(first_offer.values()), at=at)
    doc_of = {d["supplier_id"]: d for d in docs}
    chains = {code: list(await conn.fetchval("select region_chain($1)", code)) for code in REGIONS}
    allowed = 0
    for supplier in suppliers:
        for region in REGIONS:
            expected = await conn.fetchval("select may_sell($1, $2, $3)", supplier, region, at)
            got = _doc_rule(doc_of[supplier], chains[region])
            assert got == expected, (supplier, region, doc_of[supplier])
            allowed += expected
    return allowed


async def test_buyable_and_blocked_agree_with_may_sell(pool: Pool) -> None:
    at = datetime.now(UTC)
    async with pool.acquire() as conn:
        # every offer listed, so that every supplier has a document
        await conn.execute("update offers set status = 'listed'")
        baseline = await _assert_rule_agrees(conn, at)
        assert baseline > 0

        nj9 = await conn.fetchval(
            "select supplier_id from admissions where region_code = '510300' and supplier_id in"
            " (select supplier_id from admissions where region_code = '511000')"
            " order by supplier_id limit 1"
        )
        a_nj = await conn.fetchval(
            "select supplier_id from admissions where region_code = '511000'"
            " and status = 'approved' order by supplier_id limit 1"
        )

        # Zigong opts out of recognising admissions
        await conn.execute(
            "update partnership_members set recognises_admissions = false"
            " where region_code = '510300'"
        )
        opted_out = await _assert_rule_agrees(conn, at)
        assert opted_out < baseline

        # a ban in a county of Neijiang, and one on a supplier admitted in both cities
        await conn.execute(
            "insert into bans (supplier_id, region_code, reason, starts_at)"
            " values ($1, '511002', 'test', $2::timestamptz - interval '1 day'),"
            "        ($3, '510300', 'test', $2::timestamptz - interval '1 day')",
            a_nj,
            at,
            nj9,
        )
        await _assert_rule_agrees(conn, at)

        # Zigong recognises again; a revocation in Neijiang; a province-wide admission
        await conn.execute("update partnership_members set recognises_admissions = true")
        await conn.execute(
            "update admissions set status = 'revoked', revoked_at = now(), revoke_reason = 'test'"
            " where supplier_id = $1 and region_code = '511000'",
            nj9,
        )
        await conn.execute(
            "insert into admissions (supplier_id, region_code, status, valid_from, decided_at)"
            " values ($1, '510000', 'approved', current_date - 1, now())",
            a_nj,
        )
        await _assert_rule_agrees(conn, at)

        # a lifted ban no longer blocks
        await conn.execute("update bans set lifted_at = $1::timestamptz - interval '1 hour'", at)
        await _assert_rule_agrees(conn, at)


async def test_refresh_mirror_upserts_listed_and_deletes_the_rest(pool: Pool) -> None:
    async with pool.acquire() as conn:
        ids = (await listed_offer_ids(conn, limit=10))[:10]
        docs, removals = await refresh_mirror(conn, ids)
        assert removals == [] and len(docs) == 10
        row = await conn.fetchrow("select * from offer_search where offer_id = $1", ids[0])
        assert row is not None
        assert row["doc"] == docs[0]
        assert row["category_codes"] == docs[0]["category_codes"]
        assert row["category_names"] == " ".join(docs[0]["category_names"])
        assert int(row["updated_at"].timestamp()) == docs[0]["updated_at"]

        # a price change updates the row; delisting removes it
        await conn.execute("update offers set price_fen = price_fen - 1 where id = $1", ids[0])
        await conn.execute("update offers set status = 'delisted' where id = $1", ids[1])
        docs, removals = await refresh_mirror(conn, ids[:2])
        assert removals == [ids[1]]
        price = await conn.fetchval(
            "select price_fen from offer_search where offer_id = $1", ids[0]
        )
        assert price == docs[0]["price_fen"]
        assert await conn.fetchval("select count(*) from offer_search") == 9

        # trigram search over the mirror works for degraded search
        # the trigram-indexed columns answer degraded search
        first = docs[0]
        found = await conn.fetch(
            "select offer_id from offer_search where title like '%' || $1 || '%'"
            " and category_names like '%' || $2 || '%' and $3 = any(category_codes)",
            first["model"],
            first["category_names"][-1],
            first["category_codes"][-1],
        )
        assert first["id"] in {r["offer_id"] for r in found}

        supplier_id = docs[0]["supplier_id"]
        own = await offers_of_supplier(conn, supplier_id)
        assert ids[0] in own
        assert own == sorted(own)
