"""What the sync lag target would need: raw Meilisearch's lag under other index settings.

The sync lag benchmark (``benchmarks.bench_sync_lag``) shows that at 1M offers Meilisearch by
itself needs more than a second to make a write searchable on two cores. This measures how
much each lever would give back, with no emall code in the timed path: for each variant of
the index settings it builds a fresh index of the data set's documents (the search mirror,
``offer_search.doc``) in a Meilisearch of its own, then runs the sync lag benchmark's raw
phase against it (the same changes, rate, poller and figures).

Run (the data set is built first when missing, as ``bin/dev bench`` builds it):

    .emall/tools/bin/uv run --frozen --no-sync python -m benchmarks.sync_variants \\
        --size 1000000 --output benchmarks/SYNC-VARIANTS-1M.md

A 1M run takes about 15 minutes: each variant's index takes 2-3 minutes to build.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from benchmarks.bench_sync_lag import (
    RATE,
    TARGET_P99_MS,
    Change,
    Meili,
    _batch_breakdown,
    _measurement,
    run_phase,
)
from benchmarks.dataset import ensure_dataset
from benchmarks.harness import machine
from emall.db.pool import init_connection
from emall.embedded.meili import resolve_meili_binary, start_meilisearch
from emall.embedded.services import start_services
from emall.search.index import INDEX_SETTINGS, SEARCHABLE
from emall.settings import Settings, load_settings

HERE = Path(__file__).parent
LOAD_BATCH = 5_000
DROPPED = ("specs_text", "category_pinyin", "category_codes")  # the most shared words
FEWER = [field for field in SEARCHABLE if field not in DROPPED]
NO_PREFIX = {"prefixSearch": "disabled", "facetSearch": False}


@dataclass(frozen=True)
class Variant:
    name: str
    settings: dict[str, Any]  # applied over emall's INDEX_SETTINGS
    loses: str  # what searching would lose


VARIANTS = (
    Variant("emall's settings", {}, "nothing"),
    Variant(
        f"without {', '.join(DROPPED)} in the searchable fields",
        {"searchableAttributes": FEWER},
        "finding offers by spec words, by category pinyin and by category code",
    ),
    Variant(
        "prefix search and facet search off",
        NO_PREFIX,
        "search as you type (a query's last word must be whole), and searching facet values",
    ),
    Variant(
        "both",
        {"searchableAttributes": FEWER, **NO_PREFIX},
        "both of the above",
    ),
)


@dataclass
class Outcome:
    variant: Variant
    load_seconds: float
    p50_ms: float
    p99_ms: float
    rate: float
    lost: int
    batches: str


def emall_settings() -> dict[str, Any]:
    """INDEX_SETTINGS as Meilisearch's JSON (camelCase, unset parts left out)."""
    settings: dict[str, Any] = json.loads(
        INDEX_SETTINGS.model_dump_json(by_alias=True, exclude_none=True)
    )
    return settings


async def documents(database_url: str) -> dict[int, dict[str, Any]]:
    conn = await asyncpg.connect(database_url)
    try:
        await init_connection(conn)  # jsonb as the pool reads it
        rows = await conn.fetch("select offer_id, doc from offer_search order by offer_id")
    finally:
        await conn.close()
    return {int(r["offer_id"]): dict(r["doc"]) for r in rows}


async def measure(
    url: str, key: str, variant: Variant, docs: dict[int, dict[str, Any]], seconds: int
) -> Outcome:
    uid = f"variant_{time.time_ns()}"  # the instance is fresh; each variant gets its own index
    http = httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=600)
    meili = Meili(url, key, uid)
    try:
        created = await http.post("/indexes", json={"uid": uid, "primaryKey": "id"})
        await meili.wait(int(created.json()["taskUid"]))
        applied = await http.patch(
            f"/indexes/{uid}/settings", json=emall_settings() | variant.settings
        )
        applied.raise_for_status()
        await meili.wait(int(applied.json()["taskUid"]))
        ids = sorted(docs)
        started = time.perf_counter()
        last = 0
        for at in range(0, len(ids), LOAD_BATCH):
            last = await meili.write([docs[i] for i in ids[at : at + LOAD_BATCH]])
        await meili.wait(last, within=3600)
        load_seconds = time.perf_counter() - started

        # The sync lag benchmark's changes: approvals (new documents) and price changes.
        per_kind = RATE * seconds // 2
        sample = random.Random(11).sample(ids, 2 * per_kind)
        changes: list[Change] = []
        for added, priced in zip(sample[:per_kind], sample[per_kind:], strict=True):
            changes.append(Change(added, "approve"))
            changes.append(Change(priced, "price", docs[priced]["price_fen"] - 1))
        await meili.wait(await meili.delete(sample[:per_kind]))
        await asyncio.sleep(2)

        async def apply(change: Change) -> None:
            doc = dict(docs[change.offer_id])
            if change.kind == "price":
                doc["price_fen"] = change.price_fen
            await meili.write([doc])

        since = datetime.now(UTC)
        rate, _ = await run_phase(meili, changes, apply)
        figures = _measurement(variant.name, changes, rate)
        batches = _batch_breakdown(await meili.batches_since(since))
        await meili.wait(int((await http.delete(f"/indexes/{uid}")).json()["taskUid"]))
    finally:
        await meili.http.aclose()
        await http.aclose()
    return Outcome(
        variant, load_seconds, figures.p50_ms, figures.p99_ms, rate, figures.errors, batches
    )


def report(size: int, listed: int, outcomes: list[Outcome], command: str, meili: str) -> str:
    info = machine() | {"meilisearch": meili}
    lines = [
        "# Sync lag: what raw Meilisearch gives under other index settings",
        "",
        f"Written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `{command}` "
        "(`benchmarks/sync_variants.py`).",
        "",
        "## Machine",
        "",
        *(f"- {k}: {v}" for k, v in info.items()),
        "",
        "## Method",
        "",
        f"The {listed:,} listed offers of the {size:,}-offer data set (the documents of the "
        "search mirror) go into a fresh index of a Meilisearch of its own, once per variant of "
        "emall's index settings. Then the sync lag benchmark's raw phase runs against it: "
        f"{RATE} changes/s for the same number of seconds, half new documents (approvals) and "
        "half price changes, one write per change, and the same poller. No emall code is in "
        "the timed path. PostgreSQL and the benchmark's other Meilisearch stay up and idle.",
        "",
        "| index settings | build s | p50 ms | p99 ms | p99 ≤ 1 s | searching would lose |",
        "|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        met = "yes" if o.p99_ms <= TARGET_P99_MS else "**no**"
        lines.append(
            f"| {o.variant.name} | {o.load_seconds:.0f} | {o.p50_ms:.0f} | {o.p99_ms:.0f} | "
            f"{met} | {o.variant.loses} |"
        )
    lines.append("")
    lines += [f"- {o.variant.name}: {o.batches}." for o in outcomes if o.batches]
    lost = [o for o in outcomes if o.lost]
    lines += [f"- {o.variant.name}: {o.lost} changes never became searchable." for o in lost]
    return "\n".join(lines) + "\n"


async def run(
    settings: Settings, size: int, seconds: int, chosen: list[Variant], log: Callable[[str], None]
) -> tuple[int, list[Outcome], str]:
    assert settings.database.url and settings.search.url and settings.search.master_key
    dataset = await ensure_dataset(
        settings.database.url, settings.search.url, settings.search.master_key, size
    )
    docs = await documents(dataset.database_url)
    log(f"{len(docs):,} documents")
    binary = resolve_meili_binary(settings.state_dir, settings.search.meili_bin)
    outcomes: list[Outcome] = []
    with (
        tempfile.TemporaryDirectory(prefix="emall-variants-") as tmp,
        start_meilisearch(
            Path(tmp), binary=binary, max_indexing_memory=settings.search.max_indexing_memory
        ) as meili,
    ):
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {meili.master_key}"}) as h:
            version = (await h.get(f"{meili.url}/version")).json()["pkgVersion"]
        for variant in chosen:
            outcome = await measure(meili.url, meili.master_key, variant, docs, seconds)
            log(
                f"{variant.name}: built in {outcome.load_seconds:.0f} s, p99 {outcome.p99_ms:.0f} ms"
            )
            outcomes.append(outcome)
    memory = settings.search.max_indexing_memory or "Meilisearch's default"
    return dataset.listed, outcomes, f"{version} (--max-indexing-memory {memory})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--size", type=int, default=1_000_000, help="offers in the data set")
    parser.add_argument("--seconds", type=int, default=15, help="seconds of changes")
    parser.add_argument(
        "--variants", default="", help=f"numbers (1-{len(VARIANTS)}) to run, comma-separated"
    )
    parser.add_argument("--output", type=Path, default=HERE / "SYNC-VARIANTS-1M.md")
    args = parser.parse_args()
    numbers = [int(n) for n in args.variants.split(",") if n] or range(1, len(VARIANTS) + 1)
    chosen = [VARIANTS[n - 1] for n in numbers]
    env = dict(os.environ)
    env.setdefault("EMALL_STATE_DIR", str(HERE.parent / ".emall" / "bench"))
    env.setdefault("EMALL_LOG_LEVEL", "WARNING")
    with start_services(load_settings(env)) as services:
        listed, outcomes, version = asyncio.run(
            run(services.settings, args.size, args.seconds, chosen, print)
        )
    command = " ".join(["python -m benchmarks.sync_variants", *sys.argv[1:]])
    text = report(args.size, listed, outcomes, command, version)
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
