"""Drill (issue 7.2): PostgreSQL restarts while checkouts run.

The app is served by uvicorn on 127.0.0.1 over an embedded PostgreSQL of the drill's own (never
the run's shared server), migrated and demo-seeded. Buyers check out concurrently over HTTP with
Idempotency-Keys and retry a 503 with the same key, as a client should. PostgreSQL is stopped
with ``pg_ctl stop`` while they do: ``-m immediate`` (a crash: recovery at the next start) and
``-m fast`` (an operator's restart: in-flight transactions end with an error).

* During the outage every request answers 503 application/problem+json, quickly (no hanging).
* Afterwards the same app serves again, without a restart of its own.
* Nothing is half-written: every order has its lines, its budget reservation, its audit event,
  its outbox row and its idempotency key; every budget line's ledger adds up to the line;
  stock equals the initial stock minus what the orders took.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from api.app import create_app
from emall.budgets.service import ledger_balances
from emall.clock import today
from emall.db.pool import Pool, create_pool
from emall.settings import Settings
from tests.drills_support import DrillPostgres, cut_price, served, wait_until
from tests.helpers import make_settings, org_id, principal_of, token_for

AGENCY = "内江市教育局"
BUYERS = 80
LANES = 8  # clients checking out at once
STOCK = 30  # of each of the three offers: less than the buyers want
OUTAGE_S = 2.0  # PostgreSQL stays down at least this long
FAST_S = 2.0  # a request during the outage answers within this
DEADLINE_S = 90.0  # the whole checkout stream, retries included
RETRY_PAUSE_S = 0.1
PROBLEM_JSON = "application/problem+json"
WORKER_POLL_S = 1.0  # the outbox worker's poll interval (OutboxWorker.poll_seconds)


@dataclass
class Attempt:
    started: float
    ended: float
    status: int  # 0: no HTTP answer (connection error or client timeout)
    content_type: str
    body: Any


@dataclass
class Buyer:
    username: str
    headers: dict[str, str]
    body: dict[str, Any]
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def final(self) -> Attempt:
        return self.attempts[-1]


@dataclass
class Outage:
    stopping: float = 0.0  # pg_ctl stop called
    down: float = 0.0  # pg_ctl stop returned: the server is gone
    starting: float = 0.0  # pg_ctl start called
    up: float = 0.0  # pg_ctl start returned


@pytest.fixture
def drill_pg() -> Any:
    server = DrillPostgres.make()
    try:
        server.boot()
        yield server
    finally:
        server.close()


async def _setup(pool: Pool) -> tuple[dict[int, int], list[int], list[tuple[str, dict[str, Any]]]]:
    """Three offers with known stock, two budget lines, and buyers with carts.

    Returns the initial stock per offer, the budget lines and (username, checkout body) pairs.
    """
    offers = [
        r["id"]
        for r in await pool.fetch(
            """
            select o.id from offers o
            where o.status = 'listed' and o.min_order_qty = 1 and o.price_fen between 1000 and 100000
              and may_sell(o.supplier_id, '511000')
              and exists (select 1 from offer_delivery d where d.offer_id = o.id
                          and d.region_code = any(region_chain('511000')))
            order by o.id limit 3
            """
        )
    ]
    assert len(offers) == 3
    await pool.execute("update offers set stock = $2 where id = any($1::bigint[])", offers, STOCK)
    agency = await org_id(pool, AGENCY)
    prices = {
        r["id"]: r["price_fen"]
        for r in await pool.fetch("select id, price_fen from offers where id = any($1)", offers)
    }
    # each line affords about a third of what its buyers want: budget refuses some checkouts
    demand = sum(prices.values()) * BUYERS
    lines = []
    for name in ("演练预算甲", "演练预算乙"):
        line = await pool.fetchval(
            "insert into budget_lines (agency_id, fiscal_year, funding_source, name, amount_fen) "
            "values ($1, $2, 'general_public_budget', $3, $4) returning id",
            agency,
            today().year,
            name,
            demand // 6,
        )
        await pool.execute(
            "insert into budget_ledger (budget_line_id, kind, amount_fen) values ($1, 'allocate', $2)",
            line,
            demand // 6,
        )
        lines.append(int(line))
    buyers = []
    for i in range(BUYERS):
        name = f"drill_buyer_{i:03d}"
        user = await pool.fetchval(
            "insert into users (organisation_id, username, display_name, password_hash, roles) "
            "values ($1, $2, '演练采购员', 'x', '{agency_buyer}') returning id",
            agency,
            name,
        )
        cart = [(offers[i % 3], 1 + i % 2)]
        if i % 4 == 0:
            cart.append((offers[(i + 1) % 3], 1))
        await pool.executemany(
            "insert into cart_items (user_id, offer_id, quantity) values ($1, $2, $3)",
            [(user, offer, quantity) for offer, quantity in cart],
        )
        body = {
            "budget_line_id": lines[i % 2],
            "acknowledge": ["price_above_median", "splitting"],
        }
        buyers.append((name, body))
    return dict.fromkeys(offers, STOCK), lines, buyers


async def _check_out(client: httpx.AsyncClient, buyer: Buyer, deadline: float) -> None:
    """POST /checkout with the buyer's key until a definite answer; a 503 is retried."""
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            response = await client.post("/api/v1/checkout", json=buyer.body, headers=buyer.headers)
            status, ctype = response.status_code, response.headers.get("content-type", "")
            body: Any = response.json() if response.content else None
        except httpx.HTTPError as exc:  # no answer at all: recorded, and fails the drill
            status, ctype, body = 0, "", repr(exc)
        buyer.attempts.append(Attempt(started, time.monotonic(), status, ctype, body))
        if status not in (0, 503):
            return
        await asyncio.sleep(RETRY_PAUSE_S)


async def _lane(client: httpx.AsyncClient, buyers: list[Buyer], deadline: float) -> None:
    for buyer in buyers:
        await _check_out(client, buyer, deadline)


async def _restart(drill_pg: DrillPostgres, outage: Outage, mode: str) -> None:
    outage.stopping = time.monotonic()
    await anyio.to_thread.run_sync(lambda: drill_pg.stop(mode))
    outage.down = time.monotonic()
    await asyncio.sleep(OUTAGE_S)
    outage.starting = time.monotonic()
    await anyio.to_thread.run_sync(drill_pg.start)
    outage.up = time.monotonic()


async def _probe_during_outage(
    client: httpx.AsyncClient, headers: dict[str, str], outage: Outage
) -> list[tuple[str, int, str, float]]:
    """Reads while PostgreSQL is down: readiness, the cart, budget lines (each must be fast)."""
    seen = []
    while outage.down == 0.0:
        await asyncio.sleep(0.01)
    while outage.starting == 0.0:
        for path in ("/ready", "/api/v1/cart", "/api/v1/budget-lines"):
            started = time.monotonic()
            response = await client.get(path, headers=headers)
            elapsed = time.monotonic() - started
            if outage.starting == 0.0:  # still down when it answered
                seen.append((path, response.status_code, response.headers["content-type"], elapsed))
                if path == "/ready":  # readiness names the part that is down
                    assert "postgres" in response.json()["components"], response.text
        health = await client.get("/health")
        assert health.status_code == 200  # the process itself stays up
        await asyncio.sleep(0.2)
    return seen


async def _invariants(
    pool: Pool, stock: dict[int, int], lines: list[int], buyers: list[Buyer]
) -> None:
    """What the database must hold after the crash, checked in SQL."""
    placed = {o["id"]: o for b in buyers if b.final.status == 201 for o in b.final.body["orders"]}
    in_db = {r["id"]: r for r in await pool.fetch("select * from orders")}
    assert set(in_db) == set(placed), "every order in the database was answered to its buyer"
    for order_id, order in in_db.items():
        lines_total = await pool.fetchval(
            "select sum(line_total_fen) from order_lines where order_id = $1", order_id
        )
        assert lines_total == order["total_fen"] == placed[order_id]["total_fen"]
        assert order["status"] == "submitted" and order["reserved_fen"] == order["total_fen"]
        reserved = await pool.fetchval(
            "select sum(amount_fen) from budget_ledger where order_id = $1 and kind = 'reserve'",
            order_id,
        )
        assert reserved == order["total_fen"]
        assert (
            await pool.fetchval(
                "select count(*) from audit_events where entity_type = 'order' and entity_id = $1 "
                "and action = 'order.created'",
                str(order_id),
            )
            == 1
        )
        assert (
            await pool.fetchval(
                "select count(*) from outbox where topic = 'order.created' and aggregate_id = $1",
                str(order_id),
            )
            == 1
        )
    for line in lines:
        row = await pool.fetchrow(
            "select amount_fen, reserved_fen, spent_fen from budget_lines where id = $1", line
        )
        assert row is not None
        assert await ledger_balances(pool, line) == tuple(row)
        assert row["reserved_fen"] + row["spent_fen"] <= row["amount_fen"]
        assert row["reserved_fen"] == sum(
            o["reserved_fen"] for o in in_db.values() if o["budget_line_id"] == line
        )
    taken = {
        r["offer_id"]: r["quantity"]
        for r in await pool.fetch(
            """
            select l.offer_id, sum(coalesce(l.confirmed_quantity, l.quantity))::int as quantity
            from order_lines l join orders o on o.id = l.order_id
            where o.status not in ('cancelled', 'rejected')
            group by l.offer_id
            """
        )
    }
    answered: dict[int, int] = {}  # what the buyers were told they bought
    for order in placed.values():
        for item in order["lines"]:
            answered[item["offer_id"]] = answered.get(item["offer_id"], 0) + item["quantity"]
    assert taken == answered
    for offer_id, initial in stock.items():
        now = await pool.fetchval("select stock from offers where id = $1", offer_id)
        assert now == initial - taken.get(offer_id, 0), offer_id
        assert now >= 0
    keys = await pool.fetch("select key, status_code, response from idempotency_keys")
    assert {k["key"] for k in keys} == {
        b.headers["Idempotency-Key"] for b in buyers if b.final.status == 201
    }
    for key in keys:
        assert key["status_code"] == 201
        assert {o["id"] for o in key["response"]["orders"]} <= set(in_db)
    carts = await pool.fetch(
        "select u.username, count(c.offer_id) as n from users u left join cart_items c "
        "on c.user_id = u.id where u.username like 'drill_buyer_%' group by u.username"
    )
    emptied = {r["username"] for r in carts if r["n"] == 0}
    assert emptied == {b.username for b in buyers if b.final.status == 201}


@pytest.mark.parametrize("mode", ["immediate", "fast"])
async def test_postgres_restart_during_checkouts(
    mode: str, drill_pg: DrillPostgres, meili: tuple[str, str], tmp_path: Path
) -> None:
    """``immediate`` is a crash (in-flight work lost, recovery at the start); ``fast`` is an
    operator's restart (in-flight transactions are ended with an error, a checkpoint is taken)."""
    started = time.monotonic()
    await drill_pg.prepare()
    settings: Settings = make_settings(
        drill_pg.dsn(), meili[0], meili[1], tmp_path, EMALL_DB_POOL_MAX="8"
    )
    setup_pool = await create_pool(drill_pg.dsn(), min_size=1, max_size=2)
    try:
        stock, lines, plan = await _setup(setup_pool)
        buyers = [
            Buyer(
                name,
                {**await token_for(setup_pool, name), "Idempotency-Key": f"drill-{name}"},
                body,
            )
            for name, body in plan
        ]
        reader = await token_for(setup_pool, "nj_buyer")
        supplier = await principal_of(setup_pool, "nj_supplier_admin")
    finally:
        await setup_pool.close()

    app = create_app(settings, run_worker=True)
    outage = Outage()
    async with served(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as client:
        deadline = time.monotonic() + DEADLINE_S
        lanes = [
            asyncio.create_task(_lane(client, buyers[i::LANES], deadline)) for i in range(LANES)
        ]
        probes = asyncio.create_task(_probe_during_outage(client, reader, outage))
        # the crash comes once a quarter of the buyers have their answer
        await wait_until(
            lambda: _answered(buyers, BUYERS // 4), timeout=60, interval=0.01, what="checkouts"
        )
        await _restart(drill_pg, outage, mode)
        await asyncio.gather(*lanes)
        seen = await probes
        recovered = min(
            (
                a.ended
                for b in buyers
                for a in b.attempts
                if a.status == 201 and a.started > outage.up
            ),
            default=None,
        )

        # every buyer got a definite answer; the retries after the restart succeeded
        attempts = [a for b in buyers for a in b.attempts]
        assert all(b.final.status in (201, 409) for b in buyers), sorted(
            {
                (b.final.status, str(b.final.body)[:200])
                for b in buyers
                if b.final.status not in (201, 409)
            }
        )
        refusals = {b.final.body["detail"][:4] for b in buyers if b.final.status == 409}
        assert refusals <= {"库存不足", "预算不足"}, (
            refusals
        )  # stock or budget ran out, nothing else
        assert {a.status for a in attempts} <= {201, 409, 503}, [
            (a.status, str(a.body)[:300]) for a in attempts if a.status not in (201, 409, 503)
        ]
        # while PostgreSQL was down: 503 problem+json, fast
        during = [a for a in attempts if a.started >= outage.down and a.ended <= outage.starting]
        assert len(during) >= LANES, len(during)
        assert all(a.status == 503 for a in during)
        unavailable = [a for a in attempts if a.status == 503]
        assert all(a.content_type.startswith(PROBLEM_JSON) for a in unavailable)
        assert all(
            a.body["status"] == 503 and a.body["type"] == "urn:emall:problem:unavailable"
            for a in unavailable
        )
        slowest = max(a.ended - a.started for a in unavailable)
        assert slowest < FAST_S, slowest
        assert seen and all(
            status == 503 and ctype.startswith(PROBLEM_JSON) and elapsed < FAST_S
            for _, status, ctype, elapsed in seen
        ), seen
        assert recovered is not None, "no checkout succeeded after the restart"

        # the same app (no restart of its own) serves reads and replays keys after the crash
        ready = await client.get("/ready")
        assert ready.status_code == 200, ready.text
        for buyer in buyers:
            if buyer.final.status == 201:
                again = await client.post(
                    "/api/v1/checkout", json=buyer.body, headers=buyer.headers
                )
                assert again.status_code == 201 and again.json() == buyer.final.body

        pool = await create_pool(drill_pg.dsn(), min_size=1, max_size=2)
        try:
            await _invariants(pool, stock, lines, buyers)

            # the outbox worker lived through the crash: it LISTENs again on a new connection,
            # and a price edit reaches the search mirror (while Meilisearch may still be busy
            # indexing the catalogue: indexing has a lane of its own)
            async def listening() -> bool:
                count = await pool.fetchval(
                    "select count(*) from pg_stat_activity where datname = current_database() "
                    "and state = 'idle' and query = 'LISTEN \"emall_outbox\"'"
                )
                return bool(count == 1)

            await wait_until(listening, timeout=15, what="the worker to LISTEN again")
            offer = await pool.fetchrow(
                "select id, version, price_fen from offers where supplier_id = $1 "
                "and status = 'listed' order by id limit 1",
                supplier.organisation_id,
            )
            assert offer is not None
            await cut_price(pool, supplier, offer)

            async def mirrored() -> bool:
                price = await pool.fetchval(
                    "select price_fen from offer_search where offer_id = $1", offer["id"]
                )
                return bool(price == offer["price_fen"] - 1)

            synced_s = await wait_until(
                mirrored, timeout=15, what="the worker to sync after the crash"
            )
            assert synced_s < WORKER_POLL_S  # woken by NOTIFY, not found by the next poll
        finally:
            await pool.close()

    statuses = [a.status for a in attempts]
    print(  # the figures of the report (shown with pytest -s)
        f"\npg drill ({mode}): {len(attempts)} checkout requests, {statuses.count(201)} placed, "
        f"{statuses.count(409)} refused, {statuses.count(503)} answered 503 (slowest "
        f"{slowest * 1000:.0f} ms); stop took {outage.down - outage.stopping:.2f} s, start "
        f"{outage.up - outage.starting:.2f} s; first order {recovered - outage.up:.2f} s after "
        f"the start; worker synced {synced_s:.1f} s after an edit; total {time.monotonic() - started:.1f} s"
    )


async def _answered(buyers: list[Buyer], count: int) -> bool:
    return sum(1 for b in buyers if b.attempts and b.attempts[-1].status in (201, 409)) >= count
