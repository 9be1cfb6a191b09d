"""The Meilisearch offers index: settings, pushing changes, full re-index, drift checks.

Everything goes through the SDK's ``AsyncClient`` made by ``emall.search.client``.

* ``ensure_index`` creates the index and applies ``INDEX_SETTINGS``; it sends nothing when the
  settings already match, so it is cheap to call at start-up.
* ``push`` sends documents in batches without waiting on each task, then waits once (about
  1.7 times faster than waiting per batch, see /work/shared/stack-notes.md). ``submit`` only
  sends them and returns the task uids; ``task_statuses`` and ``tasks_finished`` tell later
  whether those tasks were applied (the outbox worker's index lane does not wait, see
  ``emall.search.sync``).
* ``reindex`` builds a new index beside the live one and swaps them, so that a search never
  sees an empty or half-built index.
* ``verify`` compares the index with the catalogue and can repair it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from meilisearch_python_sdk import AsyncClient
from meilisearch_python_sdk.errors import MeilisearchApiError
from meilisearch_python_sdk.models.settings import (
    Faceting,
    FilterableAttributes,
    MeilisearchSettings,
    MinWordSizeForTypos,
    Pagination,
    ProximityPrecision,
    TypoTolerance,
)

from emall.db.pool import Connection
from emall.search.documents import build_documents, listed_offer_ids, refresh_mirror
from emall.search.terms import synonyms

OFFERS = "offers"
BATCH_SIZE = 5_000
TASK_TIMEOUT_MS = 300_000

# The order is the "attribute" rule's order: a query word found in a goods offer's category
# terms (what it is: its category, the ancestors, their synonyms) ranks it above an offer that
# only has the word in its title (a service that mentions the thing it repairs).
SEARCHABLE = [
    "category_terms",
    "title",
    "category_names",
    "brand",
    "model",
    "specs_text",
    "title_pinyin",
    "title_initials",
    "category_pinyin",
    "supplier_name",
    "category_codes",
]
FILTERABLE = [
    "category_codes",
    "brand",
    "buyable_regions",
    "blocked_regions",
    "delivery_regions",
    "policy_tags",
    "supplier_id",
    "price_fen",
]
SORTABLE = [
    "price_fen",
    "updated_at",
    "sales_count",
    "is_goods",
    "supplier_score",
    "recent_orders",
    "id",
]
# Meilisearch's relevance rules, then the tie-breakers among equally relevant hits (each a
# sortable attribute): goods before works and services, the better-rated supplier
# (``supplier_score``), the offer ordered more in the last 90 days (``recent_orders``), the
# lower price, and last the offer id, so that the order never depends on when a document was
# indexed. A requested sort (price, newest, sales) applies at "sort", before the tie-breakers.
RANKING_RULES = [
    "words",
    "typo",
    "proximity",
    "attribute",
    "sort",
    "exactness",
    "is_goods:desc",
    "supplier_score:desc",
    "recent_orders:desc",
    "price_fen:asc",
    "id:asc",
]

INDEX_SETTINGS = MeilisearchSettings(
    searchable_attributes=SEARCHABLE,
    filterable_attributes=list[str | FilterableAttributes](FILTERABLE),
    sortable_attributes=SORTABLE,
    ranking_rules=RANKING_RULES,
    synonyms=synonyms(),
    typo_tolerance=TypoTolerance(
        enabled=True,
        min_word_size_for_typos=MinWordSizeForTypos(one_typo=5, two_typos=9),
        disable_on_attributes=["category_codes"],
    ),
    faceting=Faceting(max_values_per_facet=100, sort_facet_values_by={"*": "count"}),
    pagination=Pagination(max_total_hits=10_000),
    # Proximity ranks by "same field or not" instead of the distance between words. Word
    # distance doubled the cost of indexing: 85,812 documents loaded in 15 s instead of 29 s,
    # and a change became searchable sooner under a steady stream (benchmarks/RESULTS.md, sync
    # lag). Titles are short, so the words of a query that are in one field are close anyway.
    proximity_precision=ProximityPrecision.BY_ATTRIBUTE,
)


def index_uid(prefix: str) -> str:
    """The live offers index of a deployment: ``<prefix>_offers``."""
    return f"{prefix}_{OFFERS}"


def _comparable(settings: MeilisearchSettings) -> dict[str, Any]:
    """The parts of ``settings`` that ``INDEX_SETTINGS`` sets, in a form that compares."""
    typo = settings.typo_tolerance
    words = typo.min_word_size_for_typos if typo else None
    faceting = settings.faceting
    return {
        "searchable": list(settings.searchable_attributes or []),
        "filterable": sorted(str(a) for a in settings.filterable_attributes or []),
        "sortable": sorted(settings.sortable_attributes or []),
        "ranking": list(settings.ranking_rules or []),
        "synonyms": {k: sorted(v) for k, v in (settings.synonyms or {}).items()},
        "typo": (
            typo.enabled if typo else None,
            (words.one_typo, words.two_typos) if words else None,
            sorted(typo.disable_on_attributes or []) if typo else None,
        ),
        "faceting": (
            faceting.max_values_per_facet if faceting else None,
            dict(faceting.sort_facet_values_by or {}) if faceting else None,
        ),
        "max_total_hits": settings.pagination.max_total_hits if settings.pagination else None,
        "proximity": settings.proximity_precision,
    }


_WANTED = _comparable(INDEX_SETTINGS)


def buyer_filter(chain: Sequence[str]) -> str:
    """The Meilisearch filter for a buyer whose region chain (region and ancestors) is given."""
    codes = ", ".join(f'"{code}"' for code in chain if code.isdigit())
    return (
        f"buyable_regions IN [{codes}] AND NOT blocked_regions IN [{codes}]"
        f" AND delivery_regions IN [{codes}]"
    )


async def _wait(client: AsyncClient, task_uid: int) -> None:
    await client.wait_for_task(task_uid, timeout_in_ms=TASK_TIMEOUT_MS, raise_for_status=True)


async def _exists(client: AsyncClient, uid: str) -> bool:
    try:
        await client.get_index(uid)
    except MeilisearchApiError as error:
        if error.code == "index_not_found":
            return False
        raise
    return True


async def settings_match(client: AsyncClient, uid: str) -> bool:
    """Whether the index exists with ``INDEX_SETTINGS`` (for the readiness check)."""
    if not await _exists(client, uid):
        return False
    return _comparable(await client.index(uid).get_settings()) == _WANTED


async def ensure_index(client: AsyncClient, uid: str) -> None:
    """Create the index if missing and apply the settings; sends nothing if they match."""
    if not await _exists(client, uid):
        await client.create_index(uid, primary_key="id", wait=True, timeout_in_ms=TASK_TIMEOUT_MS)
    if _comparable(await client.index(uid).get_settings()) == _WANTED:
        return
    task_info = await client.index(uid).update_settings(INDEX_SETTINGS)
    await _wait(client, task_info.task_uid)


async def submit(
    client: AsyncClient,
    uid: str,
    documents: Sequence[dict[str, Any]],
    deletions: Sequence[int],
) -> list[int]:
    """Enqueue adding or replacing ``documents`` and deleting ``deletions``; returns the task uids
    at once, without waiting for Meilisearch to apply them (see ``tasks_finished``)."""
    index = client.index(uid)
    tasks: list[int] = []
    for start in range(0, len(documents), BATCH_SIZE):
        info = await index.add_documents(list(documents[start : start + BATCH_SIZE]), "id")
        tasks.append(info.task_uid)
    if deletions:
        info = await index.delete_documents([str(i) for i in deletions])
        tasks.append(info.task_uid)
    return tasks


async def push(
    client: AsyncClient,
    uid: str,
    documents: Sequence[dict[str, Any]],
    deletions: Sequence[int],
) -> None:
    """Add or replace ``documents`` and delete ``deletions``; returns once all are applied."""
    tasks = await submit(client, uid, documents, deletions)
    # Tasks of one index run in order: once the last is done, all are; check each for errors.
    for task_uid in reversed(tasks):
        await _wait(client, task_uid)


class TaskFailed(Exception):
    """A Meilisearch task failed, was canceled or is unknown to the server (lost)."""


async def task_statuses(client: AsyncClient, task_uids: Sequence[int]) -> dict[int, str]:
    """The status of each of these tasks that Meilisearch knows, in one request."""
    if not task_uids:
        return {}
    found = await client.get_tasks(uids=list(task_uids), limit=len(task_uids))
    return {task.uid: task.status for task in found.results}


def tasks_finished(task_uids: Sequence[int], statuses: dict[int, str]) -> bool:
    """True when every task succeeded, False while any is still enqueued or processing; raises
    ``TaskFailed`` for a task that failed, was canceled or is missing from ``statuses``."""
    finished = True
    for task_uid in task_uids:
        status = statuses.get(task_uid)
        if status is None:
            raise TaskFailed(f"Meilisearch knows no task {task_uid}")
        if status in ("failed", "canceled"):
            raise TaskFailed(f"Meilisearch task {task_uid} {status}")
        finished = finished and status == "succeeded"
    return finished


async def reindex(
    conn: Connection,
    client: AsyncClient,
    prefix: str,
    *,
    progress: Callable[[int], None] | None = None,
) -> str:
    """Rebuild the offers index from the catalogue and swap it in; returns the live uid.

    Documents go into a new index ``<prefix>_offers_<unix ms>``, which replaces the live index
    in one atomic swap once fully built. ``progress`` is called with the count sent so far.
    """
    live = index_uid(prefix)
    fresh = f"{live}_{int(time.time() * 1000)}"
    await ensure_index(client, fresh)
    try:
        await _fill(conn, client, fresh, progress)
        await ensure_index(client, live)
        await _wait(client, (await client.swap_indexes([(live, fresh)])).task_uid)
    except BaseException:
        await client.delete_index_if_exists(fresh)  # the live index stays as it was
        raise
    await _wait(client, (await client.index(fresh).delete()).task_uid)
    return live


async def _fill(
    conn: Connection, client: AsyncClient, uid: str, progress: Callable[[int], None] | None
) -> None:
    index = client.index(uid)
    tasks: list[int] = []
    sent, after = 0, 0
    while ids := await listed_offer_ids(conn, after=after, limit=BATCH_SIZE):
        after = ids[-1]
        documents, _ = await refresh_mirror(conn, ids)  # the mirror heals with the index
        if documents:
            tasks.append((await index.add_documents(documents, "id")).task_uid)
        sent += len(documents)
        if progress is not None:
            progress(sent)
    for task_uid in reversed(tasks):
        await _wait(client, task_uid)


@dataclass
class VerifyReport:
    db_count: int
    index_count: int
    missing: list[int] = field(default_factory=list)  # listed, not in the index
    extra: list[int] = field(default_factory=list)  # in the index, not listed
    stale: list[int] = field(default_factory=list)  # in both, but the document differs

    @property
    def clean(self) -> bool:
        return not (self.missing or self.extra or self.stale)


async def _index_ids(client: AsyncClient, uid: str) -> set[int]:
    if not await _exists(client, uid):
        return set()  # a missing index holds nothing: every listed offer is missing
    ids: set[int] = set()
    offset, page = 0, 1_000
    while True:
        info = await client.index(uid).get_documents(offset=offset, limit=page, fields=["id"])
        ids.update(int(d["id"]) for d in info.results)
        offset += page
        if offset >= info.total:
            return ids


async def _db_ids(conn: Connection) -> set[int]:
    rows = await conn.fetch("select id from offers where status = 'listed'")
    return {r["id"] for r in rows}


async def verify(
    conn: Connection,
    client: AsyncClient,
    uid: str,
    *,
    sample: int = 200,
    repair: bool = False,
) -> VerifyReport:
    """Compare every id, and a sample of whole documents, between the catalogue and the index.

    With ``repair``, pushes the missing and stale documents, deletes the extra ones and
    returns the report of a second check.
    """
    db_ids, index_ids = await _db_ids(conn), await _index_ids(client, uid)
    report = VerifyReport(
        db_count=len(db_ids),
        index_count=len(index_ids),
        missing=sorted(db_ids - index_ids),
        extra=sorted(index_ids - db_ids),
    )
    both = sorted(db_ids & index_ids)
    checked = sorted(random.sample(both, min(sample, len(both))))
    if checked:
        fresh, _ = await build_documents(conn, checked)
        info = await client.index(uid).get_documents(
            ids=[str(i) for i in checked], limit=len(checked)
        )
        indexed = {int(d["id"]): d for d in info.results}
        report.stale = [d["id"] for d in fresh if indexed.get(d["id"]) != d]
    if not repair or report.clean:
        return report
    await ensure_index(client, uid)
    documents, removals = await refresh_mirror(conn, [*report.missing, *report.stale])
    await push(client, uid, documents, [*report.extra, *removals])
    return await verify(conn, client, uid, sample=sample, repair=False)
