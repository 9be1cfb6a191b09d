"""The audit log and the outbox: written in the same transaction as the change they record.

This module is the one owner of both tables: nothing else inserts into ``audit_events`` or
``outbox``. ``record`` writes any number of events and outbox rows in one statement (a checkout's
orders and budget movements, a bulk change); ``record_event`` and ``enqueue`` are its one-row
forms.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any

import msgspec

from emall.db.pool import Connection

if TYPE_CHECKING:
    from emall.principals import Principal


def _plain(value: Any) -> Any:
    """Structs and other msgspec-encodable values become plain JSON-ready builtins."""
    return None if value is None else msgspec.to_builtins(value)


class AuditEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One audit event, as ``record`` writes it. With ``actor_user_id`` and no
    ``actor_organisation_id``, the user's organisation is filled in by the statement."""

    action: str
    entity_type: str
    entity_id: str
    actor_user_id: int | None = None
    actor_organisation_id: int | None = None
    region_code: str | None = None
    before: Any = None
    after: Any = None
    request_id: str | None = None


class OutboxMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One outbox row, as ``record`` writes it: acted on after the transaction commits, and not
    before ``not_before`` when given."""

    topic: str
    aggregate_type: str
    aggregate_id: str
    payload: Any = None
    not_before: datetime | None = None


# $1 the events, $2 the outbox rows, each a JSON array written in its order.
_RECORD = """
with events as (
    insert into audit_events (actor_user_id, actor_organisation_id, action, entity_type,
                              entity_id, region_code, before, after, request_id)
    select e.actor_user_id,
           coalesce(e.actor_organisation_id,
                    (select u.organisation_id from users u where u.id = e.actor_user_id)),
           e.action, e.entity_type, e.entity_id, e.region_code, e.before, e.after, e.request_id
    from jsonb_array_elements($1::jsonb) with ordinality as x(doc, n),
         jsonb_to_record(x.doc) as e(
             actor_user_id bigint, actor_organisation_id bigint, action text, entity_type text,
             entity_id text, region_code text, before jsonb, after jsonb, request_id text)
    order by x.n
    returning 1
), messages as (
    insert into outbox (topic, aggregate_type, aggregate_id, payload, available_at, due_at)
    select m.topic, m.aggregate_type, m.aggregate_id, coalesce(m.payload, '{}'::jsonb),
           coalesce(m.not_before, now()), coalesce(m.not_before, now())
    from jsonb_array_elements($2::jsonb) with ordinality as x(doc, n),
         jsonb_to_record(x.doc) as m(
             topic text, aggregate_type text, aggregate_id text, payload jsonb,
             not_before timestamptz)
    order by x.n
    returning 1
)
select (select count(*) from events) as events, (select count(*) from messages) as messages
"""


async def record(
    conn: Connection,
    events: Sequence[AuditEvent] = (),
    messages: Sequence[OutboxMessage] = (),
) -> None:
    """Write ``events`` and ``messages`` in one statement, inside the caller's transaction."""
    if not events and not messages:
        return
    # The connection's json codec encodes the Structs as they are (msgspec), so that a
    # ``msgspec.Raw`` before, after or payload (JSON a statement already built) passes through.
    await conn.execute(_RECORD, list(events), list(messages))


async def record_event(
    conn: Connection,
    *,
    actor: Principal | None,
    action: str,
    entity_type: str,
    entity_id: object,
    region_code: str | None = None,
    before: Any = None,
    after: Any = None,
    request_id: str | None = None,
) -> int:
    """Write one audit event; call inside the transaction that makes the change."""
    event_id: int = await conn.fetchval(
        """
        insert into audit_events (actor_user_id, actor_organisation_id, action, entity_type,
                                  entity_id, region_code, before, after, request_id)
        values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        returning id
        """,
        actor.user_id if actor else None,
        actor.organisation_id if actor else None,
        action,
        entity_type,
        str(entity_id),
        region_code,
        _plain(before),
        _plain(after),
        request_id,
    )
    return event_id


async def enqueue(
    conn: Connection,
    *,
    topic: str,
    aggregate_type: str,
    aggregate_id: object,
    payload: Any = None,
    not_before: datetime | None = None,
) -> int:
    """Write one outbox row; the worker acts on it after the transaction commits, and not before
    ``not_before`` when given (for what a date changes by itself: a ban ending, an admission
    expiring, a region leaving a partnership)."""
    row_id: int = await conn.fetchval(
        """
        insert into outbox (topic, aggregate_type, aggregate_id, payload, available_at, due_at)
        values ($1, $2, $3, coalesce($4, '{}'::jsonb), coalesce($5, now()), coalesce($5, now()))
        returning id
        """,
        topic,
        aggregate_type,
        str(aggregate_id),
        _plain(payload),
        not_before,
    )
    return row_id


def start_of_business_day(day: date) -> datetime:
    """00:00 of a business day (Asia/Shanghai), as a moment."""
    from emall.clock import BUSINESS_TZ

    return datetime.combine(day, time.min, tzinfo=BUSINESS_TZ)
