"""Price statistics and flags on known data."""

from __future__ import annotations

import statistics
from decimal import ROUND_HALF_UP, Decimal

from litestar import Litestar
from litestar.testing import AsyncTestClient

from emall.db.pool import Pool
from tests.helpers import org_id, token_for
from tests.test_listings import listed_offer

PC, OTHER = "A02010104", "A02010106"  # 服务器, 移动工作站: leaves the demo catalogue leaves empty
PRICES = [130_000, 210_000, 260_000, 330_000, 410_000, 470_000, 520_000, 690_000]


async def seed_listed(
    pool: Pool, category: str, prices: list[int], status: str = "listed", tag: str = ""
) -> None:
    supplier = await org_id(pool, "自贡华西计算机系统有限公司")
    for n, price in enumerate(prices):
        product = await pool.fetchval(
            "insert into products (category_code, brand, model, title) values ($1, '统计', $2, '统计用商品') returning id",
            category,
            f"S{tag}{n}",
        )
        await pool.execute(
            """
            insert into offers (product_id, supplier_id, supplier_sku, status, price_fen, reference_price_fen,
                                reference_source_url, reference_date, review_region_code)
            values ($1, $2, $3, $4, $5, $5, 'https://example.cn', '2026-01-01', '510300')
            """,
            product,
            supplier,
            f"STAT-{tag}{n}",
            status,
            price,
        )


def quartile(values: list[int], q: int) -> int:
    """percentile_cont (linear interpolation, inclusive), rounded half up to a whole fen."""
    cut = statistics.quantiles(values, n=4, method="inclusive")[q - 1]
    return int(Decimal(str(cut)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


async def test_statistics_over_listed_offers_only(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    await seed_listed(pool, PC, PRICES)
    await seed_listed(pool, PC, [9_999_999], status="delisted", tag="d")
    await seed_listed(pool, PC, [1], status="draft", tag="x")
    await seed_listed(pool, OTHER, [5_000_000], tag="o")  # 便携式计算机: another leaf
    headers = await token_for(pool, "zg_buyer")
    leaf = (await client.get(f"/api/v1/prices/stats/{PC}", headers=headers)).json()
    assert leaf == {
        "category_code": PC,
        "count": len(PRICES),
        "min": min(PRICES),
        "lower_quartile": quartile(PRICES, 1),
        "median": quartile(PRICES, 2),
        "upper_quartile": quartile(PRICES, 3),
        "max": max(PRICES),
    }
    parent = (await client.get("/api/v1/prices/stats/A02010100", headers=headers)).json()
    every = sorted(  # all listed computers: ours and the demo catalogue's
        r["price_fen"]
        for r in await pool.fetch(
            "select o.price_fen from offers o join products p on p.id = o.product_id "
            "where o.status = 'listed' and p.category_code like 'A020101%'"
        )
    )
    assert 5_000_000 in every and 9_999_999 not in every
    assert parent["count"] == len(every) and parent["max"] == max(every)
    assert parent["median"] == quartile(every, 2)
    empty = (
        await client.get("/api/v1/prices/stats/A02010101", headers=headers)
    ).json()  # 巨型计算机
    assert empty["count"] == 0 and empty["median"] is None
    assert (await client.get("/api/v1/prices/stats/A99999999", headers=headers)).status_code == 404
    assert (await client.get("/api/v1/prices/stats/bad", headers=headers)).status_code == 400


async def test_price_far_above_peers_is_flagged_for_the_operator(
    client: AsyncTestClient[Litestar], pool: Pool
) -> None:
    await seed_listed(pool, PC, PRICES)
    upper = quartile(PRICES, 3)
    assert upper * 3 % 2 == 0
    # exactly 1.5× the upper quartile: not flagged
    at_limit = await listed_offer(client, pool, "边界型号", price=upper * 3 // 2)
    upper = quartile([*PRICES, at_limit["price_fen"]], 3)  # the first offer is now a peer too
    above = await listed_offer(client, pool, "高价型号", price=upper * 3 // 2 + 1)
    nj_operator = await token_for(pool, "nj_operator")
    queue = (await client.get("/api/v1/prices/flags", headers=nj_operator)).json()["items"]
    assert [f["offer_id"] for f in queue] == [above["id"]]
    flag = queue[0]
    assert flag["detail"]["upper_quartile_fen"] == upper and flag["detail"]["factor_bp"] == 15000
    assert at_limit["id"] not in [f["offer_id"] for f in queue]
    assert (
        await client.get("/api/v1/prices/flags", headers=await token_for(pool, "zg_operator"))
    ).json()["items"] == []
    auditor = await token_for(pool, "nj_auditor")
    assert len((await client.get("/api/v1/prices/flags", headers=auditor)).json()["items"]) == 1
    url = f"/api/v1/prices/flags/{flag['id']}/resolve"
    assert (
        await client.post(url, json={"resolution": "已核实"}, headers=auditor)
    ).status_code == 403
    assert (
        await client.post(
            url, json={"resolution": "已核实"}, headers=await token_for(pool, "zg_operator")
        )
    ).status_code == 404
    resolved = await client.post(
        url, json={"resolution": "已与供应商核实，型号配置较高"}, headers=nj_operator
    )
    assert resolved.status_code == 200 and resolved.json()["resolved_at"] is not None
    assert (
        await client.post(url, json={"resolution": "再次处理"}, headers=nj_operator)
    ).status_code == 409
    assert (await client.get("/api/v1/prices/flags", headers=nj_operator)).json()["items"] == []


async def test_no_flag_with_too_few_peers(client: AsyncTestClient[Litestar], pool: Pool) -> None:
    await seed_listed(pool, PC, PRICES[:3])
    await listed_offer(client, pool, "少量同类", price=5_000_000 // 10)
    flags = await pool.fetchval("select count(*) from offer_flags")
    assert flags == 0
