"""The outbox topics that ordering writes for whatever follows an order, and their interim
consumer.

``order.created`` (checkout), ``order.changed`` (every step of the lifecycle), ``order.flagged``
(an overdue payment flagged) and ``order_flag.resolved`` (an operator closes a flag) are written
in the transaction of the change, for webhooks and statistics. Until those consumers exist,
``acknowledge`` consumes them: it marks them done, so that the outbox drains and each
consumer's lag stays true. A later consumer takes the topics over in ``emall.composition``.
(``order.payment_due`` is not an event: it is ordering's own scheduled check, handled by
``emall.ordering.flags.payment_due_handler``.)
"""

from __future__ import annotations

from emall.db.pool import Connection
from emall.outbox.worker import OutboxRow

ORDER_CREATED = "order.created"
ORDER_CHANGED = "order.changed"
ORDER_FLAGGED = "order.flagged"
ORDER_FLAG_RESOLVED = "order_flag.resolved"
ORDER_EVENT_TOPICS = (ORDER_CREATED, ORDER_CHANGED, ORDER_FLAGGED, ORDER_FLAG_RESOLVED)


async def acknowledge(conn: Connection, rows: list[OutboxRow]) -> None:
    """Mark order events done: nothing consumes them yet (webhooks and statistics will)."""
