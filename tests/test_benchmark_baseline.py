"""The checkout benchmark's baselines: the raw one issues the library's statements, and the
minimal order transaction places orders.

``benchmarks/checkout_raw.py`` copies the library's checkout SQL so the benchmark can state how
close the library comes to the same work with no emall code. Whenever the checkout's statements
change, the copy must change with them, or the ratio compares different work: this runs the
benchmark's own parity check (every statement, in order, text for text) on the test database,
so CI refuses a drifted baseline instead of a later benchmark run."""

from __future__ import annotations

import random

import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient

from benchmarks import checkout_raw
from benchmarks.bench_checkout import (
    check_minimal_orders,
    check_orders,
    load_catalogue,
    make_buyers,
    rule_in_force,
    same_statements,
)
from emall.db.pool import Pool
from tests.test_listings import listed_offer


async def test_the_raw_checkout_issues_the_library_statements(
    client: AsyncTestClient[Litestar], pool: Pool, database_url: str
) -> None:
    for model in ("基准型号 A1", "基准型号 A2"):  # two offers of one supplier: a two-line cart
        offer = await listed_offer(client, pool, model, price=100_000)
        await pool.execute("update offers set min_order_qty = 1 where id = $1", offer["id"])
    catalogue = await load_catalogue(pool)
    buyers = await make_buyers(pool, catalogue, random.Random(7), "parity", 2)
    raw_pool = await asyncpg.create_pool(
        database_url, min_size=1, max_size=1, init=checkout_raw.init_connection
    )
    least = await make_buyers(pool, catalogue, random.Random(8), "parity", 2)
    try:
        statements = await same_statements(pool, raw_pool, buyers)
        rule_id = await rule_in_force(pool)
        for buyer in least:  # the second baseline: the minimal order transaction
            async with raw_pool.acquire() as conn, conn.transaction():
                await checkout_raw.minimal_order(conn, buyer.raw, rule_id)
    finally:
        await raw_pool.close()
    await check_minimal_orders(pool, least)
    # the idempotency lock and read, the cart's read, the write, the record, the key's write
    assert statements >= 6
    await check_orders(pool, buyers)  # both checkouts placed what the benchmark counts
    events = await pool.fetch(
        "select e.action, e.actor_user_id from audit_events e where e.actor_user_id = any($1)"
        " order by e.id",
        [b.raw.user_id for b in buyers],
    )
    assert [e["action"] for e in events] == ["budget_line.reserved", "order.created"] * 2
