"""Drill (issue 7.1): Meilisearch is killed with SIGKILL during a stream of 5,000 listing changes.

While it is down, search answers over HTTP in degraded mode (from PostgreSQL's mirror, which stays
current); after a restart on the same folder the outbox drains and ``emall search verify`` finds
no drift. The app runs as ``emall serve`` runs it: ``create_app(..., run_worker=True)``.

The changes are what suppliers do, through the library's own services: price-list imports (one
import job per supplier file, a price cut on each of its offers), single price edits with
If-Match, and delists. Four writers run at once, each owning its suppliers or offers.

A longer stream: ``EMALL_DRILL_CHANGES=20000 .emall/tools/bin/uv run --frozen --no-sync pytest
-p no:xdist tests/test_drill_meili_kill.py -s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.app import REQUEST_SEARCH_TIMEOUT_S, create_app
from emall.composition import build_worker
from emall.db.pool import Pool, create_pool
from emall.imports import create_job, run_job
from emall.listings import workflow
from emall.listings.models import OfferUpdate
from emall.listings.offers import etag, update_offer
from emall.principals import Principal
from emall.search.client import create_search_client
from emall.search.sync import CHANGE_TOPICS, INDEX_TOPIC
from tests.drills_support import DrillMeili, cut_price, pending_outbox, wait_until
from tests.helpers import JWT_SECRET, make_settings, principal_of, token_for

REPO = Path(__file__).resolve().parents[1]
CHANGES = int(os.environ.get("EMALL_DRILL_CHANGES", "5000"))
SINGLES = CHANGES // 20  # single edits and delists; the rest come in supplier imports
DELISTS = 20
KILL_AT = CHANGES * 3 // 10  # changes applied before the SIGKILL
RESTART_AT = CHANGES * 6 // 10  # changes applied (at least) before the restart
STREAM_BOUND_S = 120.0  # a stuck stream fails the drill rather than hang it
SKEW = 400  # no writer runs more than this many changes ahead of the others
TOPICS = [*CHANGE_TOPICS, INDEX_TOPIC]
BUYER = "nj_buyer"  # region 511000
DEGRADED_BOUND_S = 1.0  # each search during the outage answers within this
SAMPLE_ALL = ("--sample", "1000000")  # verify compares every document, not a sample

_IMPORT_FIELDS = """
select o.id, o.supplier_id, o.supplier_sku, p.category_code, p.brand, p.model, p.title, p.specs,
       p.unit, p.image_urls, o.price_fen, o.reference_price_fen, o.reference_source_url,
       o.reference_date, o.stock, o.min_order_qty, o.warranty_months, o.policy_tags, o.version,
       (select jsonb_agg(jsonb_build_object('region_code', d.region_code,
                                            'delivery_days', d.delivery_days) order by d.region_code)
        from offer_delivery d where d.offer_id = o.id) as delivery,
       (select u.username from users u where u.organisation_id = o.supplier_id
          and 'supplier_admin' = any(u.roles) order by u.id limit 1) as admin,
       may_sell(o.supplier_id, '511000') and exists (
           select 1 from offer_delivery d where d.offer_id = o.id
           and d.region_code = any(region_chain('511000'))) as visible
from offers o join products p on p.id = o.product_id
where o.status = 'listed' and o.price_fen >= 1000
order by o.id
"""


@dataclass
class Offer:
    id: int
    supplier_id: int
    admin: str
    visible: bool  # nj_buyer may buy it and it delivers to 511000
    version: int
    row: dict[str, Any]  # the offer as an import row (price_fen is its current price)
    base: int = 0  # the price before the drill
    changes: int = 0

    @property
    def price(self) -> int:
        return int(self.row["price_fen"])

    def cut(self) -> int:
        """The next price: one or two fen below the first, never the same twice running (a
        rise of one fen stays far inside the rise rule)."""
        self.row["price_fen"] = self.base - 1 - self.changes % 2
        self.changes += 1
        return self.price

    @property
    def model(self) -> str:
        return str(self.row["model"])


@dataclass
class Change:
    kind: str  # "import" (a supplier's price list), "cut" (one price edit) or "delist"
    offers: list[Offer]
    position: int = 0  # changes planned before this one

    @property
    def size(self) -> int:
        return len(self.offers)


@dataclass
class Progress:
    done: int = 0
    finished: set[int] = field(default_factory=set)  # offers whose last planned change is done


async def _offers(pool: Pool) -> list[Offer]:
    offers = []
    for r in await pool.fetch(_IMPORT_FIELDS):
        if r["admin"] is None:
            continue
        row = {
            k: r[k]
            for k in r.keys()  # noqa: SIM118 (a Record is not a dict)
            if k not in {"id", "supplier_id", "version", "admin", "visible"}
        }
        row["reference_date"] = row["reference_date"].isoformat()
        offer = Offer(r["id"], r["supplier_id"], r["admin"], r["visible"], r["version"], row)
        offer.base = offer.price
        offers.append(offer)
    return offers


def _plan(offers: list[Offer]) -> tuple[list[Change], Offer, Offer]:
    """CHANGES listing changes: supplier imports, single price cuts and delists, interleaved.

    One offer in five is edited singly (the rest only through imports, so no two writers ever
    touch one offer). Returns the plan, a visible offer cut only during the outage (its price is
    checked in degraded and in live search) and a visible offer delisted during the outage.
    """
    singles = [o for o in offers if o.id % 5 == 0]
    imported = [o for o in offers if o.id % 5 != 0]
    models: dict[str, int] = {}
    for o in offers:
        models[o.model] = models.get(o.model, 0) + 1
    probes = [o for o in singles if o.visible and models[o.model] == 1 and len(o.model) >= 4]
    assert len(probes) >= 2, "the demo catalogue has visible offers with models of their own"
    cut_probe, delist_probe = probes[0], probes[1]
    rest = [o for o in singles if o not in (cut_probe, delist_probe)]
    delisted, rotation = [delist_probe, *rest[: DELISTS - 1]], rest[DELISTS - 1 :]
    assert len(rotation) >= 20

    # the single changes in order: delists and the probe's cuts fall in the outage window
    window = range(SINGLES * 33 // 100, SINGLES * 55 // 100)
    delist_at = {window[i * len(window) // DELISTS + 1]: o for i, o in enumerate(delisted)}
    probe_at = set(window[len(window) // 10 :: len(window) // 5]) - set(delist_at)
    assert len(probe_at) >= 3
    single_changes: list[Change] = []
    for i in range(SINGLES):
        if i in delist_at:
            single_changes.append(Change("delist", [delist_at[i]]))
        elif i in probe_at:
            single_changes.append(Change("cut", [cut_probe]))
        else:
            single_changes.append(Change("cut", [rotation[i % len(rotation)]]))

    by_supplier: dict[int, list[Offer]] = {}
    for o in imported:
        by_supplier.setdefault(o.supplier_id, []).append(o)
    suppliers = sorted(by_supplier)
    plan: list[Change] = []
    planned, singles_planned, turn = 0, 0, 0
    while planned < CHANGES:
        if singles_planned < SINGLES and singles_planned * CHANGES <= planned * SINGLES:
            change = single_changes[singles_planned]
            singles_planned += 1
        else:
            room = CHANGES - planned - (SINGLES - singles_planned)
            supplier = suppliers[turn % len(suppliers)]
            turn += 1
            change = Change("import", by_supplier[supplier][:room])
        change.position = planned
        planned += change.size
        plan.append(change)
    assert planned == CHANGES
    return plan, cut_probe, delist_probe


def _lanes(plan: list[Change]) -> list[list[Change]]:
    """Four writers: two for imports (by supplier), two for single changes (by offer)."""
    lanes: list[list[Change]] = [[], [], [], []]
    for change in plan:
        if change.kind == "import":
            lanes[change.offers[0].supplier_id % 2].append(change)
        else:
            lanes[2 + change.offers[0].id % 2].append(change)
    return lanes


async def _apply(
    writers: Pool, change: Change, principals: dict[str, Principal], job_count: list[int]
) -> None:
    first = change.offers[0]
    principal = principals[first.admin]
    if change.kind == "import":
        for offer in change.offers:
            offer.cut()
        content = "".join(
            json.dumps(o.row, ensure_ascii=False) + "\n" for o in change.offers
        ).encode()
        async with writers.acquire() as conn, conn.transaction():
            job = await create_job(
                conn, principal, fmt="jsonl", filename="价格表.jsonl", content=content
            )
        finished = await run_job(writers, job.id, content)
        assert finished.status == "succeeded" and finished.updated_rows == change.size, finished
        for offer in change.offers:
            offer.version += 1
        job_count[0] += 1
        return
    async with writers.acquire() as conn:
        if change.kind == "cut":
            await update_offer(
                conn,
                principal,
                first.id,
                OfferUpdate(price_fen=first.cut()),
                if_match=etag(first.id, first.version),
            )
        else:
            await workflow.delist(conn, principal, first.id, "演练下架 (drill)")
    first.version += 1


async def _write(
    writers: Pool,
    lane: list[Change],
    principals: dict[str, Principal],
    progress: Progress,
    job_count: list[int],
) -> None:
    last = {o.id: i for i, change in enumerate(lane) for o in change.offers}
    for i, change in enumerate(lane):
        while progress.done < change.position - SKEW:  # keep the writers abreast
            await asyncio.sleep(0.005)
        await _apply(writers, change, principals, job_count)
        progress.done += change.size
        progress.finished.update(o.id for o in change.offers if last[o.id] == i)


def _raise_failures(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        if task.done():
            task.result()  # a writer that failed fails the drill now, not at a timeout


async def _search(
    client: AsyncTestClient[Litestar], headers: dict[str, str], **params: Any
) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    response = await client.get("/api/v1/search", params=params, headers=headers)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body, elapsed


def _hit(body: dict[str, Any], offer_id: int) -> dict[str, Any] | None:
    return next((h for h in body["hits"] if h["offer_id"] == offer_id), None)


async def _mirror_price(pool: Pool, offer_id: int) -> int | None:
    price = await pool.fetchval("select price_fen from offer_search where offer_id = $1", offer_id)
    return None if price is None else int(price)


async def _drained(pool: Pool) -> bool:
    return await pending_outbox(pool, TOPICS) == 0


async def _outage(
    client: AsyncTestClient[Litestar],
    pool: Pool,
    meili: DrillMeili,
    buyer: dict[str, str],
    progress: Progress,
    cut_probe: Offer,
    delist_probe: Offer,
    writers: list[asyncio.Task[None]],
) -> dict[str, float]:
    """Kill Meilisearch partway, search while it is down, restart it; returns figures."""
    deadline = time.monotonic() + STREAM_BOUND_S
    while progress.done < KILL_AT:
        _raise_failures(writers)
        assert time.monotonic() < deadline, f"stuck before the kill: {progress.done} done"
        await asyncio.sleep(0.005)
    meili.kill()
    killed = time.monotonic()
    timings: list[float] = []
    deadline = killed + STREAM_BOUND_S
    while not (
        progress.done >= RESTART_AT and {cut_probe.id, delist_probe.id} <= progress.finished
    ):
        _raise_failures(writers)
        assert time.monotonic() < deadline, (
            f"stuck: {progress.done} changes done, probes done: "
            f"{sorted({cut_probe.id, delist_probe.id} & progress.finished)}, "
            f"writers done: {[t.done() for t in writers]}"
        )
        body, elapsed = await _search(client, buyer, page_size=20)
        assert body["degraded"] is True and body["hits"], body
        timings.append(elapsed)
        await asyncio.sleep(0.2)
    status = await client.get("/api/v1/search/status", headers=buyer)
    assert status.status_code == 200 and status.json()["pending"] > 0, status.text

    # stage 1 of the sync needs only PostgreSQL: the mirror catches up during the outage
    async def mirror_current() -> bool:
        return (
            await _mirror_price(pool, cut_probe.id) == cut_probe.price
            and await _mirror_price(pool, delist_probe.id) is None
        )

    await wait_until(mirror_current, timeout=30, what="the mirror to catch up, Meilisearch down")
    cut, elapsed = await _search(client, buyer, q=cut_probe.model, page_size=100)
    timings.append(elapsed)
    assert cut["degraded"] is True
    assert (_hit(cut, cut_probe.id) or {}).get("price_fen") == cut_probe.price
    delisted, elapsed = await _search(client, buyer, q=delist_probe.model, page_size=100)
    timings.append(elapsed)
    assert delisted["degraded"] is True and _hit(delisted, delist_probe.id) is None
    assert max(timings) < DEGRADED_BOUND_S, timings

    await anyio.to_thread.run_sync(meili.start)  # the same folder and port
    outage_s = time.monotonic() - killed
    await asyncio.gather(*writers)
    return {"outage_s": outage_s, "searches": len(timings), "max_search_s": max(timings)}


def _verify_cli(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``emall search verify``, run as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-c", "from api.cli import main; main()", "search", "verify", *SAMPLE_ALL],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_meilisearch_killed_during_5000_listing_changes(
    database_url: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    meili = DrillMeili(tmp_path / "meili-state")
    await anyio.to_thread.run_sync(meili.start)
    settings = make_settings(database_url, meili.url, meili.master_key, tmp_path)
    app = create_app(settings, run_worker=True)
    writers = await create_pool(database_url, min_size=4, max_size=6)
    pool = await create_pool(database_url, min_size=1, max_size=2)  # the drill's own reads
    try:
        # the client runs the app (and its worker) in an event loop of its own, as a server would
        async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
            indexed_s = await wait_until(
                lambda: _drained(pool), timeout=60, what="the initial indexing"
            )
            buyer = await token_for(pool, BUYER)
            offers = await _offers(pool)
            plan, cut_probe, delist_probe = _plan(offers)
            before, _ = await _search(client, buyer, q=cut_probe.model, page_size=100)
            assert before["degraded"] is False
            assert (_hit(before, cut_probe.id) or {}).get("price_fen") == cut_probe.price

            principals = {n: await principal_of(pool, n) for n in {o.admin for o in offers}}
            progress, job_count = Progress(), [0]
            last_row = await pool.fetchval("select max(id) from outbox")
            stream_started = time.monotonic()
            writing = [
                asyncio.create_task(_write(writers, lane, principals, progress, job_count))
                for lane in _lanes(plan)
            ]
            outage = await _outage(
                client, pool, meili, buyer, progress, cut_probe, delist_probe, writing
            )
            stream_s = time.monotonic() - stream_started
            assert progress.done == CHANGES
            changed = await pool.fetchval(
                "select count(*) from outbox where topic = 'offer.changed' and id > $1", last_row
            )
            assert changed == CHANGES  # each change wrote its outbox row with it

            # after the restart the outbox drains by itself, within a bound; nothing is parked
            drain_s = await wait_until(lambda: _drained(pool), timeout=60, what="the outbox drain")
            parked = await pool.fetchval(
                "select count(*) from outbox where parked_at is not null and topic = any($1)",
                TOPICS,
            )
            assert parked == 0

            live, _ = await _search(client, buyer, q=cut_probe.model, page_size=100)
            assert live["degraded"] is False
            assert (_hit(live, cut_probe.id) or {}).get("price_fen") == cut_probe.price
            gone, _ = await _search(client, buyer, q=delist_probe.model, page_size=100)
            assert gone["degraded"] is False and _hit(gone, delist_probe.id) is None

        verified = await anyio.to_thread.run_sync(
            lambda: _verify_cli(
                {
                    "DATABASE_URL": database_url,
                    "MEILI_URL": meili.url,
                    "MEILI_MASTER_KEY": meili.master_key,
                    "EMALL_SEARCH_INDEX_PREFIX": settings.search.index_prefix,
                    "EMALL_STATE_DIR": str(tmp_path),
                    "EMALL_JWT_SECRET": JWT_SECRET,
                }
            )
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr
        summary = re.search(
            r"database (\d+), index (\d+): 0 missing, 0 extra, 0 stale", verified.stdout
        )
        assert summary is not None and summary[1] == summary[2], verified.stdout
        assert "no drift" in verified.stdout
        print(  # the figures of the report (shown with pytest -s)
            f"\nmeili drill: initial indexing {indexed_s:.1f} s; {CHANGES} changes ({job_count[0]} imports) in {stream_s:.1f} s; "
            f"outage {outage['outage_s']:.1f} s with {outage['searches']:.0f} degraded searches "
            f"(slowest {outage['max_search_s'] * 1000:.0f} ms); drained {drain_s:.1f} s after "
            f"the stream; verify: {verified.stdout.strip().splitlines()[0]}; "
            f"total {time.monotonic() - started:.1f} s"
        )
    finally:
        await writers.close()
        await pool.close()
        meili.stop()


async def test_a_hung_meilisearch_does_not_hold_up_the_mirror(
    pool: Pool, database_url: str, tmp_path: Path
) -> None:
    """Meilisearch that accepts connections and never answers (hung, not dead): indexing waits
    on it in a lane of its own, while the mirror that degraded search reads stays current."""
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(64)  # never accepted: the kernel completes the handshake, nobody answers
    url = f"http://127.0.0.1:{hung.getsockname()[1]}"
    settings = make_settings(database_url, url, "k" * 32, tmp_path)
    search = create_search_client(url, "k" * 32)
    await pool.execute("update outbox set processed_at = now()")  # the seed's rows: done
    supplier = await principal_of(pool, "nj_supplier_admin")
    offers = await pool.fetch(
        "select id, version, price_fen from offers where supplier_id = $1 and status = 'listed' "
        "order by id limit 2",
        supplier.organisation_id,
    )

    async def cut(offer: Any) -> None:
        await cut_price(pool, supplier, offer)

        async def mirrored() -> bool:
            return await _mirror_price(pool, offer["id"]) == offer["price_fen"] - 1

        # well inside the search client's 10 s timeout, which a stuck push waits out
        await wait_until(mirrored, timeout=5, what="the mirror while Meilisearch hangs")

    stop = asyncio.Event()
    worker = asyncio.create_task(build_worker(pool, search, settings).run(stop))
    try:
        await cut(offers[0])  # its push to Meilisearch now hangs

        async def pushing() -> bool:  # the index row is claimed: its transaction holds it
            return not await pool.fetchval(
                "select exists (select 1 from outbox where topic = $1 for update skip locked)",
                INDEX_TOPIC,
            )

        await wait_until(pushing, timeout=5, what="the push to start")
        await cut(offers[1])  # the mirror keeps up all the same
        waiting = await pool.fetchval(
            "select count(*) from outbox where topic = $1 and processed_at is null", INDEX_TOPIC
        )
        assert waiting == 2  # both pushes wait for Meilisearch, nothing is lost

        # and a search over HTTP gives up on the hung server quickly and answers degraded
        async with AsyncTestClient(app=create_app(settings)) as client:
            body, elapsed = await _search(client, await token_for(pool, BUYER), q="")
        assert body["degraded"] is True
        assert elapsed < REQUEST_SEARCH_TIMEOUT_S + 1.0, elapsed
    finally:
        worker.cancel()  # the index lane is stuck in its request: cancel rather than wait
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        await search.aclose()
        hung.close()
