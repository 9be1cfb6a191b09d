"""The SQL ``may_sell`` (used over many offers at once) agrees with ``sale_right`` (which explains
its answer), for every demo supplier and many regions, before and after the changes that matter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from emall.admission.rights import sale_right
from emall.db.pool import Pool
from tests.helpers import principal_of

REGIONS = [
    "511000",
    "510300",
    "511002",
    "510322",
    "510500",
    "511500",
    "510100",
    "500000",
    "530100",
    "510000",
]


async def _disagreements(pool: Pool, at: datetime | None = None) -> list[str]:
    principal = await principal_of(pool, "admin")
    suppliers = [
        r["id"]
        for r in await pool.fetch(
            "select id from organisations where kind = 'supplier' order by id"
        )
    ]
    moment = at or datetime.now(UTC)
    found = []
    allowed = 0
    for supplier in suppliers:
        for region in REGIONS:
            python = (await sale_right(pool, principal, supplier, region, at=moment)).allowed
            sql = await pool.fetchval("select may_sell($1, $2, $3)", supplier, region, moment)
            allowed += python
            if python != sql:
                found.append(f"supplier {supplier} in {region}: python {python}, sql {sql}")
    assert allowed > 0  # the comparison must cover both answers
    return found


async def test_sql_and_python_agree_on_the_demo(pool: Pool) -> None:
    assert await _disagreements(pool) == []


async def test_they_agree_after_opt_out_ban_revocation_expiry_and_leaving(pool: Pool) -> None:
    await pool.execute(
        "update partnership_members set recognises_admissions = false "
        "where region_code = '510300' and partnership_id = (select id from partnerships where code = 'neijiang-zigong')"
    )
    assert await _disagreements(pool) == []
    supplier = await pool.fetchval(
        "select id from organisations where name = '内江市甜城办公用品有限公司'"
    )
    await pool.execute(
        "insert into bans (supplier_id, region_code, reason) values ($1, '511000', 'x')", supplier
    )
    assert await _disagreements(pool) == []
    await pool.execute(
        "update admissions set status = 'revoked', revoke_reason = 'x' where supplier_id = "
        "(select id from organisations where name = '自贡恐龙文化用品有限公司')"
    )
    await pool.execute(
        "update admissions set valid_until = current_date - 3 where region_code = '510300' and id % 3 = 0"
    )
    await pool.execute(
        "update partnership_members set left_on = current_date - 1 where region_code = '511500'"
    )
    assert await _disagreements(pool) == []
    # and at a moment in the past, when the expired admissions were still in force
    assert await _disagreements(pool, datetime.now(UTC) - timedelta(days=10)) == []
