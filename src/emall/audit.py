"""The audit log and the outbox: written in the same transaction as the change they record."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any

import msgspec

from emall.db.pool import Connection

if TYPE_CHECKING:
    from emall.principals import Principal


def _plain(value: Any) -> Any:
    """Structs and other msgspec-encodable values become plain JSON-ready builtins."""
    return None if value is None else msgspec.to_builtins(value)


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
