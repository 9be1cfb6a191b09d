"""The peers' upper quartile of the price flag, from the category index, equals PostgreSQL's
``round(percentile_cont(0.75))`` over the same offers: on many random price sets (ties, runs of
one price, halves that round), and whatever the offer's own price. Also: ``offers.category_code``
is kept right by the database."""

from __future__ import annotations

import random

from emall.db.pool import Connection, Pool
from emall.listings.prices import peer_upper_quartile, upper_quartile_fen
from tests.helpers import org_id

CATEGORY, OTHER = "A02010104", "A02010106"  # leaves the demo catalogue leaves empty

# What check_price_flag computed before the index: the definition the fast path must equal.
REFERENCE_SQL = """
select count(*) as peers,
       round(percentile_cont(0.75) within group (order by o.price_fen))::bigint as upper_quartile
from offers o join products p on p.id = o.product_id
where o.status = 'listed' and p.category_code = $1 and o.id <> $2
"""


async def _insert(
    conn: Connection, supplier: int, category: str, prices: list[int], statuses: list[str], tag: str
) -> list[int]:
    """Products and offers in one statement each; returns the offers' ids in input order."""
    products = await conn.fetch(
        """
        insert into products (category_code, brand, model, title)
        select $1, '分位', $2 || n, '分位测试商品' from generate_series(1, $3) n
        returning id
        """,
        category,
        tag,
        len(prices),
    )
    rows = await conn.fetch(
        """
        insert into offers (product_id, supplier_id, supplier_sku, status, price_fen,
                            reference_price_fen, reference_source_url, reference_date)
        select t.product_id, $2, $3 || t.n, t.status, t.price, t.price, 'https://example.cn',
               '2026-01-01'
        from unnest($1::bigint[], $4::bigint[], $5::text[]) with ordinality
             as t(product_id, price, status, n)
        order by t.n
        returning id
        """,
        [r["id"] for r in products],
        supplier,
        f"Q-{tag}-",
        prices,
        statuses,
    )
    return [r["id"] for r in rows]


def _prices(rng: random.Random, n: int) -> list[int]:
    shape = rng.randrange(5)
    if shape == 0:  # a few distinct prices: many ties
        return [rng.choice([100, 101, 250, 999]) for _ in range(n)]
    if shape == 1:  # one price throughout
        return [rng.randint(1, 10**6)] * n
    if shape == 2:  # small, close prices: interpolations land on halves and quarters
        return [rng.randint(1, 12) for _ in range(n)]
    if shape == 3:  # large prices (a hundred million yuan and more)
        return [rng.randint(10**10, 10**12) for _ in range(n)]
    return [rng.randint(1, 10**7) for _ in range(n)]


async def test_peer_upper_quartile_equals_percentile_cont_on_random_prices(pool: Pool) -> None:
    rng = random.Random(75)
    supplier = await org_id(pool, "自贡华西计算机系统有限公司")
    checked = 0
    async with pool.acquire() as conn:
        for case in range(250):
            n = rng.randint(0, 6) if case % 10 == 0 else rng.randint(4, 50)  # peers
            prices = _prices(rng, n + 1)  # the offer itself, then its peers
            statuses = ["listed"] * (n + 1)
            noise = rng.randint(0, 4)  # offers that are no peers: not listed
            transaction = conn.transaction()
            await transaction.start()
            try:
                ids = await _insert(
                    conn,
                    supplier,
                    CATEGORY,
                    [*prices, *(rng.randint(1, 10**7) for _ in range(noise))],
                    [*statuses, *(rng.choice(["draft", "delisted", "submitted"]),) * noise],
                    f"c{case}",
                )
                # listed offers of another category are no peers either
                await _insert(conn, supplier, OTHER, [1, 10**9], ["listed"] * 2, f"o{case}")
                own = ids[0]
                if rng.random() < 0.3:  # the offer itself need not be listed
                    await conn.execute("update offers set status = 'draft' where id = $1", own)
                expected = await conn.fetchrow(REFERENCE_SQL, CATEGORY, own)
                assert expected is not None
                got = await peer_upper_quartile(conn, CATEGORY, own)
                assert got == (expected["peers"], expected["upper_quartile"]), (n, prices)
                assert got[0] == n
                checked += 1
            finally:
                await transaction.rollback()
    assert checked == 250


def test_upper_quartile_fen_rounds_like_postgresql() -> None:
    # n = 2: three quarters of the way, 1 + 0.75 × (3 - 1) = 2.5: a half goes to the even
    assert upper_quartile_fen(2, [3, 1]) == 2
    assert upper_quartile_fen(2, [5, 3]) == 4  # 4.5 → 4
    assert upper_quartile_fen(2, [7, 5]) == 6  # 6.5 → 6
    assert upper_quartile_fen(2, [9, 7]) == 8  # 8.5 → 8
    assert upper_quartile_fen(2, [4, 2]) == 4  # 3.5 → 4
    assert upper_quartile_fen(3, [10, 0]) == 5  # p = 1.5: 0 + 0.5 × 10
    assert upper_quartile_fen(3, [11, 0]) == 6  # 5.5 → 6
    assert upper_quartile_fen(5, [42]) == 42  # p = 3: a price itself
    assert upper_quartile_fen(4, [10, 0]) == 2  # p = 2.25: 2.5 → 2


async def test_round_half_to_even_is_what_postgresql_does(pool: Pool) -> None:
    """The rounding the integer version copies: ``round(float8)`` is ``rint``."""
    rounded = await pool.fetch(
        "select x, round(percentile_cont(0.75) within group (order by v))::bigint as q "
        "from (values (1, 1), (1, 3), (2, 3), (2, 5), (3, 2), (3, 4)) t(x, v) group by x order by x"
    )
    assert [r["q"] for r in rounded] == [
        upper_quartile_fen(2, [3, 1]),
        upper_quartile_fen(2, [5, 3]),
        upper_quartile_fen(2, [4, 2]),
    ]


async def test_offers_category_code_follows_the_product(pool: Pool) -> None:
    supplier = await org_id(pool, "自贡华西计算机系统有限公司")
    async with pool.acquire() as conn, conn.transaction():
        [offer] = await _insert(conn, supplier, CATEGORY, [500], ["listed"], "f")
        assert await _category(conn, offer) == CATEGORY
        # a writer cannot set it to anything else
        await conn.execute("update offers set category_code = $2 where id = $1", offer, OTHER)
        assert await _category(conn, offer) == CATEGORY
        # a product moving to another category takes its offers along
        await conn.execute(
            "update products set category_code = $2 "
            "where id = (select product_id from offers where id = $1)",
            offer,
            OTHER,
        )
        assert await _category(conn, offer) == OTHER
        # an offer moved to another product follows that one
        other_product = await conn.fetchval(
            "insert into products (category_code, brand, model, title) "
            "values ($1, '分位', 'moved', '分位测试商品') returning id",
            CATEGORY,
        )
        await conn.execute("update offers set product_id = $2 where id = $1", offer, other_product)
        assert await _category(conn, offer) == CATEGORY
        drift = await conn.fetchval(
            "select count(*) from offers o join products p on p.id = o.product_id "
            "where o.category_code is distinct from p.category_code"
        )
        assert drift == 0


async def _category(conn: Connection, offer_id: int) -> str:
    code: str = await conn.fetchval("select category_code from offers where id = $1", offer_id)
    return code
