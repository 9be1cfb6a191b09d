"""The outbox drains: every topic the code writes has a consumer, the worker leaves nothing of an
order's events pending, and the search status reports each consumer's lag on its own, back to 0
once the worker has run (before, order events stayed pending for ever and their age was summed
into search's lag).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from emall.composition import CONSUMERS, build_worker
from emall.db.pool import Pool
from emall.ordering.events import ORDER_EVENT_TOPICS
from emall.ordering.flags import PAYMENT_DUE_TOPIC
from emall.search.client import create_search_client
from emall.settings import Settings
from tests.helpers import token_for
from tests.test_checkout import budget_line, put
from tests.test_listings import listed_offer
from tests.test_order_rules import ACK, accepted_order, checkout

SRC = Path(__file__).resolve().parents[1] / "src" / "emall"
# where the code names a topic: enqueue(topic="..."), a *_TOPIC or ORDER_* constant, or SQL that
# inserts into the outbox with a literal topic
_TOPIC_PATTERNS = (
    re.compile(r"""\btopic\s*=\s*["']([a-z_]+\.[a-z_]+)["']"""),
    re.compile(r"""^\s*[A-Z_]*(?:TOPIC|ORDER_[A-Z_]+)\s*=\s*["']([a-z_]+\.[a-z_]+)["']""", re.M),
    re.compile(
        r"""insert into outbox\s*\(topic[^)]*\)\s*(?:values\s*\(|select\s+)'([a-z_]+\.[a-z_]+)'"""
    ),
)


def written_topics() -> set[str]:
    topics: set[str] = set()
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for pattern in _TOPIC_PATTERNS:
            topics.update(pattern.findall(text))
    return topics


def test_every_topic_the_code_writes_has_one_consumer() -> None:
    written = written_topics()
    # the patterns find each way of writing a topic (a literal, a constant, SQL)
    assert {"offer.changed", "order.created", "order.changed", PAYMENT_DUE_TOPIC} <= written
    assert set(ORDER_EVENT_TOPICS) <= written
    consumed = [topic for topics in CONSUMERS.values() for topic in topics]
    assert len(consumed) == len(set(consumed)), "a topic with two consumers"
    assert written - set(consumed) == set(), "written but never consumed"


async def _status(client: AsyncTestClient[Litestar], pool: Pool) -> dict[str, Any]:
    response = await client.get(
        "/api/v1/search/status", headers=await token_for(pool, "nj_operator")
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _by_consumer(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {lag["consumer"]: lag for lag in status["consumers"]}


async def test_order_events_are_consumed_and_every_lag_returns_to_zero(
    client: AsyncTestClient[Litestar], pool: Pool, settings: Settings
) -> None:
    # two orders of one offer inside the splitting window: order.created twice, a flag
    offer = await listed_offer(client, pool, "出箱排空型号", price=100_000)
    await pool.execute("update offers set stock = 1000 where id = $1", offer["id"])
    buyer = await token_for(pool, "nj_buyer")
    line = await budget_line(pool, 200_000_000, name="出箱排空预算")
    orders = []
    for quantity in (300, 200):
        await put(client, buyer, offer["id"], quantity)
        placed = await checkout(client, pool, line, ACK)
        assert placed.status_code == 201, placed.text
        orders.append(placed.json()["orders"][0]["id"])
    operator = await token_for(pool, "nj_operator")
    flags = (await client.get("/api/v1/order-flags?kind=splitting", headers=operator)).json()
    flag = next(f for f in flags["items"] if f["order_id"] == orders[1])
    resolved = await client.post(
        f"/api/v1/order-flags/{flag['id']}/resolve",
        json={"resolution": "两批次采购，已核实"},
        headers=operator,
    )
    assert resolved.status_code == 200, resolved.text  # order_flag.resolved
    # an accepted order (order.changed at each step): its payment check is due on a later day
    accepted = await accepted_order(client, pool, "出箱排空验收型号")
    orders.append(accepted["id"])
    topics = await pool.fetch(
        "select distinct topic from outbox where aggregate_type = 'order' "
        "and aggregate_id = any($1::text[])",
        [str(order) for order in orders],
    )
    assert {r["topic"] for r in topics} >= {"order.created", "order.changed", PAYMENT_DUE_TOPIC}

    before = _by_consumer(await _status(client, pool))
    assert set(CONSUMERS) <= set(before)
    events = before["order-events"]
    assert events["pending"] >= 1 and events["lag_seconds"] > 0  # order_flag.resolved
    # search consumes order.created (3) and order.changed (4): they re-rank the orders' offers
    assert before["search"]["pending"] >= 7
    assert before["payment-checks"]["scheduled"] >= 1  # due later: no lag of its own

    assert settings.search.url is not None
    search = create_search_client(settings.search.url, settings.search.master_key)
    try:
        worker = build_worker(pool, search, settings)
        for _ in range(100):  # claims and settles until nothing is left
            if not await worker.run_once():
                break
        else:
            raise AssertionError("the worker never ran out of work")
    finally:
        await search.aclose()

    left = await pool.fetch(
        "select topic, aggregate_id from outbox where aggregate_type = 'order' "
        "and aggregate_id = any($1::text[]) and processed_at is null and due_at <= now()",
        [str(order) for order in orders],
    )
    assert [tuple(r) for r in left] == []
    after = await _status(client, pool)
    for name in CONSUMERS:
        lag = _by_consumer(after)[name]
        assert (lag["pending"], lag["lag_seconds"]) == (0, 0), lag
    assert (after["pending"], after["lag_seconds"]) == (0, 0)
    assert _by_consumer(after)["payment-checks"]["scheduled"] >= 1  # still for its day
