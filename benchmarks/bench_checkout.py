"""Order placement (issue 7, item 2): a one-supplier, two-line checkout through the library and
through the API, each against the same SQL statements run raw (``checkout_raw``).

* Every checkout is a real order: a buyer whose cart holds two offers of one supplier (quantity
  1 each) checks out, and gets one ``submitted`` order with two lines, its budget reserved (a
  ledger row), stock taken, an audit event and an outbox row. The pair of offers is drawn from
  every offer the Neijiang demo buyers may buy (under 10,000 yuan, so that no order waits for
  an approver), so concurrent checkouts meet on the same offers only as often as real ones do.
* A checkout empties its cart, so each one is a different buyer whose cart was filled
  beforehand (in SQL, with the rows ``PUT /cart/items`` writes); the cart fill is not timed. The
  API cannot take the lines in the checkout body (see the notes).
* Every measurement gets its own fresh agencies, eight buyers each, with a budget line each:
  an agency's earlier orders (which the anti-splitting check reads) grow the same way in every
  measurement, and budgets and stock (set to 10^9 for the run, restored after it) never run out.
* Before measuring, one library checkout and one raw checkout are recorded statement by
  statement and compared: the baseline must issue exactly the library's statements.
* The API runs under uvicorn (one worker) in its own process, loaded by ``wrk`` with a Lua
  script that posts each buyer's checkout once, with an ``Idempotency-Key``; its raw baseline
  adds what the request issues around the checkout (the principal, the key's lock, look-up and
  stored response).
* After a warm-up of both, measured rounds of emall and of raw alternate, so that a burst of
  noise on the machine hits both; figures are medians over the rounds, p50 and p99 the medians
  of each round's percentiles (as ``benchmarks.wrk`` reports them). CPU time per order of
  PostgreSQL, the API server and this process is in the notes.

Run alone: ``python -m benchmarks.bench_checkout`` (state in .emall/bench-sql).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import re
import resource
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import msgspec

from benchmarks import checkout_raw
from benchmarks.checkout_raw import ACKNOWLEDGE, RawBuyer
from benchmarks.harness import (
    Comparison,
    Measurement,
    Processes,
    api_server,
    cpu_delta,
    cpu_snapshot,
    cpu_table,
    measure,
    postmaster_pid,
)
from benchmarks.wrk import WrkError, wrk_binary
from emall.db.pool import Pool, create_pool
from emall.identity.tokens import issue_token
from emall.ordering.checkout import checkout
from emall.ordering.idempotency import remember, replay, request_hash
from emall.ordering.models import CheckoutRequest
from emall.principals import OrganisationKind, Principal, Role
from emall.settings import Settings

REGION = "511000"  # Neijiang: the demo's city rules and admitted suppliers
BUYERS_PER_AGENCY = 8
MAX_PRICE_FEN = 1_000_000  # two lines stay under the 5,000,000 fen approval threshold
STOCK = 1_000_000_000
BUDGET_FEN = 10**15
TARGET = 0.6
WARMUP = 50  # checkouts before each measurement
LUA = Path(__file__).with_name("checkout.lua")


@dataclass(frozen=True)
class Buyer:
    principal: Principal
    raw: RawBuyer


@dataclass
class Catalogue:
    """The offers a benchmark buyer may put in the cart, by supplier, and their real stock."""

    by_supplier: dict[int, list[int]]
    original: list[tuple[int, int, int]]  # (offer id, stock, sales count) to restore

    def pairs(self, rng: random.Random, n: int) -> list[tuple[int, int]]:
        suppliers = sorted(self.by_supplier)
        weights = [len(self.by_supplier[s]) for s in suppliers]
        chosen = rng.choices(suppliers, weights=weights, k=n)
        result = []
        for supplier in chosen:
            a, b = sorted(rng.sample(self.by_supplier[supplier], 2))
            result.append((a, b))
        return result


_BUYABLE = f"""
select o.id, o.supplier_id, o.stock, o.sales_count
from offers o
where o.status = 'listed' and o.min_order_qty = 1 and o.price_fen <= {MAX_PRICE_FEN}
  and may_sell(o.supplier_id, $1)
  and exists (select 1 from offer_delivery d
              where d.offer_id = o.id and d.region_code = any(region_chain($1)))
order by o.id
"""


async def load_catalogue(pool: Pool) -> Catalogue:
    rows = await pool.fetch(_BUYABLE, REGION)
    by_supplier: dict[int, list[int]] = {}
    for row in rows:
        by_supplier.setdefault(row["supplier_id"], []).append(row["id"])
    by_supplier = {s: ids for s, ids in by_supplier.items() if len(ids) >= 2}
    if not by_supplier:
        raise RuntimeError("no demo offers to order: is the database demo-seeded?")
    original = [(r["id"], r["stock"], r["sales_count"]) for r in rows]
    await pool.execute(
        "update offers set stock = $2 where id = any($1::bigint[])", [r[0] for r in original], STOCK
    )
    return Catalogue(by_supplier=by_supplier, original=original)


async def restore(pool: Pool, catalogue: Catalogue, run: str) -> None:
    """Give the demo offers their stock back; mark the run's outbox rows done (no worker runs)."""
    await pool.execute(
        """
        update offers o set stock = r.stock, sales_count = r.sales_count
        from unnest($1::bigint[], $2::integer[], $3::integer[]) as r(id, stock, sales_count)
        where o.id = r.id
        """,
        [r[0] for r in catalogue.original],
        [r[1] for r in catalogue.original],
        [r[2] for r in catalogue.original],
    )
    await pool.execute(
        """
        update outbox set processed_at = now()
        where topic = 'order.created' and processed_at is null
          and aggregate_id in (select o.id::text from orders o
                               join organisations a on a.id = o.agency_id
                               where a.name like $1)
        """,
        f"基准测试单位 {run}%",
    )


async def make_buyers(
    pool: Pool, catalogue: Catalogue, rng: random.Random, run: str, n: int
) -> list[Buyer]:
    """``n`` buyers of fresh agencies (one budget line each), every cart holding two offers."""
    batch = uuid.uuid4().hex[:8]
    agencies = max(1, math.ceil(n / BUYERS_PER_AGENCY))
    async with pool.acquire() as conn, conn.transaction():
        lines = await conn.fetch(
            """
            with agencies as (
                insert into organisations (kind, name, region_code)
                select 'agency', $1 || '-' || g, $2 from generate_series(1, $3) g
                returning id, name
            ), lines as (
                insert into budget_lines (agency_id, fiscal_year, funding_source, name, amount_fen)
                select id, extract(year from now())::integer, 'general_public_budget',
                       '基准测试预算', $4
                from agencies
                returning id, agency_id
            ), ledger as (
                insert into budget_ledger (budget_line_id, kind, amount_fen)
                select id, 'allocate', $4 from lines
            )
            select l.id, l.agency_id, a.name from lines l join agencies a on a.id = l.agency_id
            order by l.agency_id
            """,
            f"基准测试单位 {run} {batch}",
            REGION,
            agencies,
            BUDGET_FEN,
        )
        users = await conn.fetch(
            """
            insert into users (organisation_id, username, display_name, password_hash, roles)
            select ($1::bigint[])[1 + (g % cardinality($1::bigint[]))], $2 || g, '基准测试采购员',
                   '!', '{agency_buyer}'
            from generate_series(0, $3 - 1) g
            returning id, organisation_id
            """,
            [line["agency_id"] for line in lines],
            f"bench-{batch}-",
            n,
        )
        pairs = catalogue.pairs(rng, n)
        cart = [
            (user["id"], offer, 1)
            for user, pair in zip(users, pairs, strict=True)
            for offer in pair
        ]
        await conn.copy_records_to_table(
            "cart_items", records=cart, columns=("user_id", "offer_id", "quantity")
        )
    by_agency = {line["agency_id"]: line for line in lines}
    buyers = []
    for user, pair in zip(users, pairs, strict=True):
        line = by_agency[user["organisation_id"]]
        buyers.append(
            Buyer(
                principal=Principal(
                    user_id=user["id"],
                    username=f"bench-{batch}-{user['id']}",
                    organisation_id=line["agency_id"],
                    organisation_kind=OrganisationKind.AGENCY,
                    organisation_name=line["name"],
                    region_code=REGION,
                    roles=frozenset({Role.AGENCY_BUYER}),
                    scope_regions=frozenset({REGION}),
                ),
                raw=RawBuyer(
                    user_id=user["id"],
                    agency_id=line["agency_id"],
                    region_code=REGION,
                    budget_line_id=line["id"],
                    offers=pair,
                ),
            )
        )
    return buyers


async def rule_in_force(pool: Pool) -> int:
    """The city rule the benchmark's orders are placed under (the minimal transaction names it)."""
    rule_id = await pool.fetchval(
        """
        select r.id
        from unnest(region_chain($1)) with ordinality as c(code, depth)
        join city_rules r on r.region_code = c.code
        where r.effective_from <= current_date
        order by c.depth, r.effective_from desc
        limit 1
        """,
        REGION,
    )
    if rule_id is None:
        raise RuntimeError(f"no city rule in force for {REGION}: is the database demo-seeded?")
    return int(rule_id)


async def check_minimal_orders(pool: Pool, buyers: list[Buyer]) -> None:
    """Every minimal transaction placed one order of two lines."""
    row = await pool.fetchrow(
        """
        select count(distinct o.id) as orders, count(l.id) as lines
        from orders o join order_lines l on l.order_id = o.id
        where o.buyer_user_id = any($1::bigint[])
        """,
        [b.raw.user_id for b in buyers],
    )
    assert row is not None
    if (row["orders"], row["lines"]) != (len(buyers), 2 * len(buyers)):
        raise RuntimeError(f"expected {len(buyers)} two-line minimal orders, found {dict(row)}")


async def check_orders(pool: Pool, buyers: list[Buyer]) -> None:
    """Every buyer got one submitted order of one supplier with two lines, budget reserved."""
    row = await pool.fetchrow(
        """
        select count(distinct o.id) as orders,
               count(*) filter (where o.status = 'submitted' and o.reserved_fen = o.total_fen)
                   as reserved_lines,
               count(l.id) as lines
        from orders o join order_lines l on l.order_id = o.id
        where o.buyer_user_id = any($1::bigint[])
        """,
        [b.raw.user_id for b in buyers],
    )
    assert row is not None
    if (row["orders"], row["lines"], row["reserved_lines"]) != (
        len(buyers),
        2 * len(buyers),
        2 * len(buyers),
    ):
        raise RuntimeError(f"expected {len(buyers)} two-line submitted orders, found {dict(row)}")


# -- the same statements? ---------------------------------------------------------------------

_NOISE = re.compile(r"typeinfo_tree|current_setting\('jit'\)|set_config\('jit'")
_SAVEPOINT = re.compile(r"__asyncpg_savepoint_\w+?__")


def _normalised(queries: list[str]) -> list[str]:
    return [
        _SAVEPOINT.sub("SAVEPOINT", " ".join(q.split())) for q in queries if not _NOISE.search(q)
    ]


async def _recorded(pool: Any, action: Any) -> list[str]:
    queries: list[str] = []

    def log(record: Any) -> None:
        queries.append(record.query)

    async with pool.acquire() as conn:
        conn.add_query_logger(log)
        try:
            async with conn.transaction():
                await action(conn)
        finally:
            conn.remove_query_logger(log)
    return _normalised(queries)


async def same_statements(pool: Pool, raw_pool: Any, buyers: list[Buyer]) -> int:
    """Record a library checkout and a raw one (with the API's idempotency statements) and
    insist that they issue the same statements; returns how many."""
    lib_buyer, raw_buyer = buyers
    key = "parity-check"
    body = CheckoutRequest(budget_line_id=lib_buyer.raw.budget_line_id, acknowledge=[*ACKNOWLEDGE])

    async def library(conn: Any) -> None:
        digest = request_hash("checkout", body)
        await replay(conn, lib_buyer.principal, key, "checkout", digest)
        result = await checkout(conn, lib_buyer.principal, body)
        await remember(conn, lib_buyer.principal, key, "checkout", digest, 201, result)

    async def raw(conn: Any) -> None:
        await conn.execute(checkout_raw.IDEMPOTENCY_LOCK, raw_buyer.raw.user_id, key)
        await conn.fetchrow(checkout_raw.IDEMPOTENCY_READ, raw_buyer.raw.user_id, key)
        result = await checkout_raw.place_order(conn, raw_buyer.raw)
        await conn.execute(
            checkout_raw.IDEMPOTENCY_WRITE, raw_buyer.raw.user_id, key, "checkout", "x", 201, result
        )

    lib_queries = await _recorded(pool, library)
    raw_queries = await _recorded(raw_pool, raw)
    if lib_queries != raw_queries:
        first = next(
            (i for i, (a, b) in enumerate(zip(lib_queries, raw_queries, strict=False)) if a != b),
            min(len(lib_queries), len(raw_queries)),
        )
        raise RuntimeError(
            "the raw baseline no longer issues the library's statements "
            f"(library {len(lib_queries)}, raw {len(raw_queries)}; first difference at "
            f"#{first}: library {lib_queries[first : first + 1]!r} raw {raw_queries[first : first + 1]!r})"
        )
    return len(lib_queries)


# -- the API under wrk ------------------------------------------------------------------------


@dataclass
class WrkRound:
    created: int
    failed: int
    seconds: float
    p50_ms: float
    p99_ms: float
    failure: str

    @property
    def rate(self) -> float:
        return self.created / self.seconds if self.seconds else 0.0


def _wrk(base: str, buyers_file: Path, concurrency: int, seconds: float) -> WrkRound:
    threads = min(concurrency, 2)
    done = subprocess.run(
        [
            wrk_binary(),
            f"-t{threads}",
            f"-c{concurrency}",
            f"-d{max(1, round(seconds))}s",
            "--timeout=30s",
            "-s",
            str(LUA),
            base,
            "--",
            str(buyers_file),
            str(threads),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    for line in done.stdout.splitlines():
        if line.startswith("CHECKOUT "):
            fields = line.split(" ", 7)
            created, failed, exhausted, duration, p50, p99 = (int(f) for f in fields[1:7])
            if exhausted:
                raise WrkError("wrk ran out of buyers: raise the estimate in bench_checkout")
            return WrkRound(
                created=created,
                failed=failed,
                seconds=duration / 1e6,
                p50_ms=p50 / 1000,
                p99_ms=p99 / 1000,
                failure=fields[7] if len(fields) > 7 else "",
            )
    raise WrkError(f"wrk gave no figures: {done.stdout} {done.stderr}")


@asynccontextmanager
async def _folder() -> AsyncIterator[Path]:
    with tempfile.TemporaryDirectory(prefix="emall-checkout-") as tmp:
        yield Path(tmp)


def _write_buyers(path: Path, settings: Settings, buyers: list[Buyer]) -> None:
    secret = settings.auth.jwt_secret
    lines = []
    for b in buyers:
        token, _ = issue_token(b.raw.user_id, secret=secret, ttl_seconds=3600)
        lines.append(f"{token}\t{b.raw.budget_line_id}\t{b.raw.user_id}\n")
    path.write_text("".join(lines))


@dataclass
class Rounds:
    """The rounds of one side of a comparison: medians of rates and percentiles, CPU per order."""

    label: str
    rates: list[float] = field(default_factory=list)
    p50s: list[float] = field(default_factory=list)
    p99s: list[float] = field(default_factory=list)
    orders: int = 0
    cpu: dict[str, float] = field(default_factory=dict)

    def add(self, rate: float, p50: float, p99: float, orders: int, used: dict[str, float]) -> None:
        self.rates.append(rate)
        self.p50s.append(p50)
        self.p99s.append(p99)
        self.orders += orders
        for name, seconds in used.items():
            self.cpu[name] = self.cpu.get(name, 0.0) + seconds

    def measurement(self) -> Measurement:
        return Measurement(
            label=self.label,
            per_second=statistics.median(self.rates),
            p50_ms=statistics.median(self.p50s),
            p99_ms=statistics.median(self.p99s),
            rounds=len(self.rates),
            requests=self.orders,
            cpu_us={n: s * 1e6 / self.orders for n, s in self.cpu.items()} if self.orders else {},
        )


class CpuClock:
    """CPU seconds used meanwhile by PostgreSQL, the server under test and this process."""

    def __init__(self, processes: Processes) -> None:
        self.processes = processes

    def __enter__(self) -> CpuClock:
        self._before = cpu_snapshot(self.processes)
        self._mine = resource.getrusage(resource.RUSAGE_SELF)
        self.used: dict[str, float] = {}
        return self

    def __exit__(self, *exc: object) -> None:
        after = resource.getrusage(resource.RUSAGE_SELF)
        self.used = cpu_delta(self._before, cpu_snapshot(self.processes))
        self.used.pop("wrk", None)  # wrk's own time is counted by the API rounds themselves
        self.used["python"] = (
            after.ru_utime + after.ru_stime - self._mine.ru_utime - self._mine.ru_stime
        )


async def in_process_round(
    rounds: Rounds,
    processes: Processes,
    operation: Callable[[int], Awaitable[None]],
    *,
    concurrency: int,
    requests: int,
) -> None:
    """One measured round of ``operation`` in this process (``harness.measure``)."""
    with CpuClock(processes) as clock:
        m = await measure(
            rounds.label,
            operation,
            concurrency=concurrency,
            requests_per_round=requests,
            rounds=1,
            warmup=0,
        )
    rounds.add(m.per_second, m.p50_ms, m.p99_ms, requests, clock.used)


@dataclass
class ApiLoad:
    """wrk rounds against the server, each with fresh buyers enough for it."""

    settings: Settings
    pool: Pool
    catalogue: Catalogue
    rng: random.Random
    run: str
    base_url: str
    processes: Processes
    folder: Path
    estimate: float = 600.0  # orders/s, until a round says better

    async def round(self, concurrency: int, seconds: float, rounds: Rounds | None) -> None:
        buyers = await make_buyers(
            self.pool,
            self.catalogue,
            self.rng,
            self.run,
            int(self.estimate * seconds * 1.5) + 300,
        )
        buyers_file = self.folder / "buyers.tsv"
        _write_buyers(buyers_file, self.settings, buyers)
        with CpuClock(self.processes) as clock:
            result = await asyncio.to_thread(_wrk, self.base_url, buyers_file, concurrency, seconds)
        if result.failed:
            raise WrkError(f"{result.failed} checkouts failed over HTTP: {result.failure}")
        self.estimate = max(self.estimate, result.rate)
        if rounds is not None:
            rounds.add(result.rate, result.p50_ms, result.p99_ms, result.created, clock.used)


# -- the benchmark ----------------------------------------------------------------------------


def _postmaster(settings: Settings) -> int | None:
    """PostgreSQL's postmaster, when it runs here: embedded, or on a local socket directory."""
    assert settings.database.url is not None
    folders = [settings.state_dir / "pg"] if settings.embedded_postgres else []
    folders += [Path(h) for h in parse_qs(urlsplit(settings.database.url).query).get("host", [])]
    return next((pid for f in folders if (pid := postmaster_pid(f)) is not None), None)


def _compared(
    what: str, concurrency: int, subject: Measurement, baseline: Measurement
) -> Comparison:
    comparison = Comparison(
        benchmark=f"order placement ({what})",
        concurrency=concurrency,
        subject=subject,
        baseline=baseline,
        unit="orders/s",
        target=f"≥ {TARGET}× raw",
    )
    comparison.met = comparison.ratio >= TARGET
    table = cpu_table(subject, baseline)
    if not comparison.met and table:
        comparison.profile = table
    if subject.cpu_us and baseline.cpu_us:
        comparison.notes.append(
            f"Order placement ({what}), concurrency {concurrency}, CPU µs per order: "
            f"emall run: {_cpu(subject)}; raw run: {_cpu(baseline)}."
        )
    return comparison


MINIMAL_TARGET = 1_500  # orders/s through the library at concurrency 8 (issue 16)


def _against_minimal(concurrency: int, subject: Measurement, least: Measurement) -> Comparison:
    """The library against the least work that places an order: what the rules, the budget,
    the warnings, the audit and the idempotency cost."""
    comparison = Comparison(
        benchmark="order placement (library vs the minimal order transaction)",
        concurrency=concurrency,
        subject=subject,
        baseline=least,
        unit="orders/s",
        target=f"≥ {MINIMAL_TARGET:,} orders/s at concurrency 8" if concurrency == 8 else "",
    )
    if concurrency == 8:
        comparison.met = subject.per_second >= MINIMAL_TARGET
    if subject.cpu_us and least.cpu_us:
        comparison.notes.append(
            f"Order placement against the minimal order transaction, concurrency {concurrency}, "
            f"CPU µs per order: emall run: {_cpu(subject)}; minimal run: {_cpu(least)}."
        )
    return comparison


_COMPONENT = {"emall": "API server", "python": "benchmark process", "postgres": "PostgreSQL"}


def _cpu(m: Measurement) -> str:
    return ", ".join(f"{_COMPONENT.get(name, name)} {us:,.0f}" for name, us in m.cpu_us.items())


async def run(
    settings: Settings,
    *,
    concurrencies: tuple[int, ...],
    requests: int = 300,
    rounds: int = 5,
    api_seconds: float = 3.0,
    api: bool = True,
    seed: int = 7,
) -> list[Comparison]:
    """Library and API checkouts against the same statements raw, at each concurrency."""
    assert settings.database.url is not None
    if api:
        wrk_binary()  # fails early, with the way to install it
    top = max(concurrencies)
    rng = random.Random(seed)
    run_id = uuid.uuid4().hex[:6]
    processes = Processes(postgres=_postmaster(settings))
    pool = await create_pool(settings.database.url, min_size=2, max_size=max(top, 2))
    raw_pool = await asyncpg.create_pool(
        settings.database.url,
        min_size=2,
        max_size=max(top, 2),
        init=checkout_raw.init_connection,
        server_settings={"timezone": "UTC"},
    )
    assert raw_pool is not None
    catalogue = await load_catalogue(pool)
    rule_id = await rule_in_force(pool)
    results: list[Comparison] = []
    per_measurement = WARMUP + rounds * requests
    try:
        statements = await same_statements(
            pool, raw_pool, await make_buyers(pool, catalogue, rng, run_id, 2)
        )
        for concurrency in concurrencies:
            buyers = await make_buyers(pool, catalogue, rng, run_id, per_measurement)
            raw_buyers = await make_buyers(pool, catalogue, rng, run_id, per_measurement)
            take = iter(buyers).__next__
            take_raw = iter(raw_buyers).__next__

            async def library(_: int, take: Callable[[], Buyer] = take) -> None:
                buyer = take()
                request = CheckoutRequest(
                    budget_line_id=buyer.raw.budget_line_id, acknowledge=[*ACKNOWLEDGE]
                )
                async with pool.acquire() as conn, conn.transaction():
                    await checkout(conn, buyer.principal, request)

            async def raw(_: int, take: Callable[[], Buyer] = take_raw) -> None:
                buyer = take()
                async with raw_pool.acquire() as conn, conn.transaction():
                    await checkout_raw.place_order(conn, buyer.raw)

            minimal_buyers = await make_buyers(pool, catalogue, rng, run_id, per_measurement)
            take_minimal = iter(minimal_buyers).__next__

            async def minimal(_: int, take: Callable[[], Buyer] = take_minimal) -> None:
                buyer = take()
                async with raw_pool.acquire() as conn, conn.transaction():
                    await checkout_raw.minimal_order(conn, buyer.raw, rule_id)

            subject = Rounds("emall.ordering.checkout")
            baseline = Rounds("the same statements, raw asyncpg")
            least = Rounds("the minimal order transaction")
            sides = ((subject, library), (baseline, raw), (least, minimal))
            for n in range(WARMUP):
                for _, operation in sides:
                    await operation(n)
            for _ in range(rounds):  # alternated: a burst of noise hits every side
                for side, operation in sides:
                    await in_process_round(
                        side, processes, operation, concurrency=concurrency, requests=requests
                    )
            await check_orders(pool, buyers)
            await check_orders(pool, raw_buyers)
            await check_minimal_orders(pool, minimal_buyers)
            results.append(
                _compared("library", concurrency, subject.measurement(), baseline.measurement())
            )
            results.append(
                _against_minimal(concurrency, subject.measurement(), least.measurement())
            )

        if api:
            env = {
                "DATABASE_URL": settings.database.url,
                "MEILI_URL": settings.search.url or "",
                "MEILI_MASTER_KEY": settings.search.master_key or "",
                "EMALL_STATE_DIR": str(settings.state_dir),
                "EMALL_DB_POOL_MAX": str(max(settings.database.pool_max, top)),
                "EMALL_LOG_LEVEL": "WARNING",
            }
            async with (
                api_server(env, factory="api.cli:cli_app") as server,
                _folder() as folder,
            ):
                processes.emall = server.pid
                load = ApiLoad(
                    settings, pool, catalogue, rng, run_id, server.base_url, processes, folder
                )
                for concurrency in concurrencies:
                    raw_buyers = await make_buyers(pool, catalogue, rng, run_id, per_measurement)
                    take = iter(raw_buyers).__next__

                    async def raw_api(_: int, take: Callable[[], Buyer] = take) -> None:
                        buyer = take().raw
                        body = msgspec.json.encode(
                            {"budget_line_id": buyer.budget_line_id, "acknowledge": ACKNOWLEDGE}
                        )
                        key = f"checkout-{buyer.user_id}"
                        await checkout_raw.api_request(raw_pool, buyer, key, body)

                    subject = Rounds("POST /api/v1/checkout")
                    baseline = Rounds("the same statements, raw asyncpg")
                    await load.round(concurrency, 1.0, None)  # warm-up
                    for n in range(WARMUP):
                        await raw_api(n)
                    for _ in range(rounds):
                        await load.round(concurrency, api_seconds, subject)
                        await in_process_round(
                            baseline, processes, raw_api, concurrency=concurrency, requests=requests
                        )
                    await check_orders(pool, raw_buyers)
                    results.append(
                        _compared(
                            "POST /api/v1/checkout",
                            concurrency,
                            subject.measurement(),
                            baseline.measurement(),
                        )
                    )
        if results:
            results[0].notes[:0] = [
                f"Order placement: each order is a fresh buyer's cart of two offers of one "
                "supplier, checked out once (rounds of emall and raw alternate). The raw baseline "
                "issues exactly the library's statements, checked before measuring: a checkout is "
                "3 statements (read, write, record) and with BEGIN, COMMIT and the "
                f"Idempotency-Key's lock, look-up and insert {statements}; over HTTP the raw "
                "baseline adds the principal look-up too (each buyer posts once, so the API's "
                "cache of principals never holds the token yet, and it reads the principal).",
                "Order placement over HTTP: wrk posts each buyer's checkout with an "
                "Idempotency-Key; the cart was filled beforehand (the API takes no lines in the "
                "checkout body), so two PUT /cart/items per order are not in the figure.",
            ]
    finally:
        await restore(pool, catalogue, run_id)
        await raw_pool.close()
        await pool.close()
    return results


def main() -> None:
    from benchmarks.harness import render
    from emall.embedded.services import start_services
    from emall.settings import load_settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--requests", type=int, default=300, help="checkouts per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--api-seconds", type=float, default=3.0, help="seconds per wrk round")
    parser.add_argument("--no-api", action="store_true", help="library and raw only")
    args = parser.parse_args()

    env = dict(os.environ)
    env.setdefault(
        "EMALL_STATE_DIR", str(Path(__file__).resolve().parent.parent / ".emall" / "bench-sql")
    )
    env.setdefault("EMALL_LOG_LEVEL", "WARNING")
    env.setdefault("EMALL_DB_POOL_MAX", "32")

    async def go(settings: Settings) -> list[Comparison]:
        from benchmarks.__main__ import prepare

        await prepare(settings)
        return await run(
            settings,
            concurrencies=tuple(int(c) for c in args.concurrency.split(",")),
            requests=args.requests,
            rounds=args.rounds,
            api_seconds=args.api_seconds,
            api=not args.no_api,
        )

    started = time.perf_counter()
    with start_services(load_settings(env)) as services:
        comparisons = asyncio.run(go(services.settings))
    print(render(comparisons, data_size="demo seed", extra_machine={}))
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
