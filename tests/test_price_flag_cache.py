"""The price flag's quartile of a large category is kept for a minute (migration 0010); a small
category's is exact every time; a check never waits for another transaction's refresh."""

from __future__ import annotations

import asyncio

import pytest

from emall.db.pool import Pool
from emall.listings import prices
from emall.listings.prices import flag_quartile, peer_upper_quartile
from tests.test_prices import PC, seed_listed

CHEAP = [100_000 + 10_000 * n for n in range(10)]
DEAR = [5_000_000 + 10_000 * n for n in range(10)]


async def _kept(pool: Pool) -> list[tuple[str, int, int]]:
    rows = await pool.fetch(
        "select category_code, listed, upper_quartile_fen from category_quartiles order by 1"
    )
    return [(r["category_code"], r["listed"], r["upper_quartile_fen"]) for r in rows]


async def test_a_large_categorys_quartile_is_kept_for_a_minute(
    pool: Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prices, "QUARTILE_CACHE_MIN_PEERS", len(CHEAP))
    await seed_listed(pool, PC, CHEAP)
    async with pool.acquire() as conn:
        exact = await peer_upper_quartile(conn, PC, 0)
        assert await flag_quartile(conn, PC, 0) == exact
        assert await _kept(pool) == [(PC, len(CHEAP), exact[1])]

        await seed_listed(pool, PC, DEAR, tag="d")  # the true quartile is now far higher
        moved = await peer_upper_quartile(conn, PC, 0)
        assert moved[1] is not None and exact[1] is not None and moved[1] > 10 * exact[1]
        assert await flag_quartile(conn, PC, 0) == exact  # still the kept one

        await pool.execute(
            "update category_quartiles set computed_at = now() - make_interval(secs => $1)",
            prices.QUARTILE_MAX_AGE_SECONDS + 1,
        )
        assert await flag_quartile(conn, PC, 0) == moved
        assert await _kept(pool) == [(PC, len(CHEAP) + len(DEAR), moved[1])]


async def test_a_small_category_is_exact_every_time(pool: Pool) -> None:
    assert len(CHEAP) < prices.QUARTILE_CACHE_MIN_PEERS
    await seed_listed(pool, PC, CHEAP)
    async with pool.acquire() as conn:
        assert await flag_quartile(conn, PC, 0) == await peer_upper_quartile(conn, PC, 0)
        await seed_listed(pool, PC, DEAR, tag="d")
        moved = await flag_quartile(conn, PC, 0)
        assert moved == await peer_upper_quartile(conn, PC, 0)
        assert moved[0] == len(CHEAP) + len(DEAR)
    assert await _kept(pool) == []


async def test_a_refresh_in_another_transaction_is_not_waited_for(
    pool: Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prices, "QUARTILE_CACHE_MIN_PEERS", len(CHEAP))
    await seed_listed(pool, PC, CHEAP)
    async with pool.acquire() as first, pool.acquire() as second:
        stale = await flag_quartile(first, PC, 0)
        await seed_listed(pool, PC, DEAR, tag="d")
        await pool.execute("update category_quartiles set computed_at = now() - interval '1 day'")
        async with first.transaction():
            refreshed = await flag_quartile(first, PC, 0)  # holds the row until it ends
            assert refreshed != stale
            # the other transaction still sees the old row, computes its own figures, and
            # neither waits for the lock nor overwrites the row
            assert await asyncio.wait_for(flag_quartile(second, PC, 0), 5) == refreshed
            assert await second.fetchval("select listed from category_quartiles") == len(CHEAP)
        assert await _kept(pool) == [(PC, len(CHEAP) + len(DEAR), refreshed[1])]
