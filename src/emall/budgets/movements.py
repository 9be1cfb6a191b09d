"""Money moving on a budget line for orders (reserve, release, spend): the one rule of the
ledger, as a composable statement and the one shape of its audit event.

``movement_ctes`` gives the data-modifying CTEs that move money for any number of orders in
the caller's statement: one conditional update of the line decides for all of them together
(so concurrent movements can never break the line's balance: the database's checks and the
condition hold), one ledger row per order, and each order's movement with the line's figures
after it. ``emall.budgets.service`` moves money for one order with it; a checkout reserves
for every order of a cart with it, inside its own statement. ``movement_event`` is the audit
event every writer of a movement records, through ``emall.audit.record``.
"""

from __future__ import annotations

from typing import Literal

from emall.audit import AuditEvent

Kind = Literal["reserve", "release", "spend"]

# per kind: the change of the line, the condition it must meet, and the signs with which the
# amount moves reserved_fen and spent_fen ({amount} is the total of the movement's entries)
_MOVES: dict[Kind, tuple[str, str, int, int]] = {
    "reserve": (
        "reserved_fen = reserved_fen + {amount}",
        "reserved_fen + spent_fen + {amount} <= amount_fen",
        1,
        0,
    ),
    "release": ("reserved_fen = reserved_fen - {amount}", "reserved_fen >= {amount}", -1, 0),
    "spend": (
        "reserved_fen = reserved_fen - {amount}, spent_fen = spent_fen + {amount}",
        "reserved_fen >= {amount}",
        -1,
        1,
    ),
}
PAST: dict[Kind, str] = {"reserve": "reserved", "release": "released", "spend": "spent"}


def movement_ctes(
    kind: Kind,
    *,
    line: str,
    entries: str,
    amount: str,
    count: str,
    actor: str,
    when: str | None = None,
) -> str:
    """CTEs ``moved`` (the line after the movement, or no row when refused), ``movements``
    (each entry with ``line_id``, ``amount_fen_after``, ``reserved_fen_after``,
    ``spent_fen_after`` and ``version_after``) and ``ledger``, to follow a ``with`` clause's
    earlier CTEs.

    ``line`` is the budget line's id, ``entries`` a relation of ``order_id``, ``amount_fen``
    and ``n`` (the entries' order), ``amount`` and ``count`` their total and number, ``actor``
    the acting user (SQL expressions, e.g. parameters), and ``when`` a further condition of the
    update (a checkout's: every offer's stock was taken, which also locks the offers before
    the line)."""
    change, condition, reserved_sign, spent_sign = _MOVES[kind]
    further = f"\n      and {when}" if when else ""
    return f"""moved as (
    -- one conditional update decides for every entry together
    update budget_lines
    set {change.format(amount=amount)}, version = version + {count}, updated_at = now()
    where id = {line} and {count} > 0 and {condition.format(amount=amount)}{further}
    returning *
), movements as (
    -- each entry's movement, with the line's figures after it (in entry order)
    select e.order_id, e.amount_fen, m.id as line_id, m.amount_fen as amount_fen_after,
           (m.reserved_fen - {reserved_sign} * ({amount} - sum(e.amount_fen) over w))::bigint
               as reserved_fen_after,
           (m.spent_fen - {spent_sign} * ({amount} - sum(e.amount_fen) over w))::bigint
               as spent_fen_after,
           m.version - {count} + row_number() over w as version_after
    from moved m cross join {entries} e
    window w as (order by e.n)
), ledger as (
    insert into budget_ledger (budget_line_id, kind, amount_fen, order_id, created_by)
    select line_id, '{kind}', amount_fen, order_id, {actor}
    from movements order by version_after
)"""


def movement_event(
    line_id: int,
    kind: Kind,
    amount_fen: int,
    *,
    order_id: int | None,
    amount_fen_after: int,
    reserved_fen_after: int,
    spent_fen_after: int,
    version: int,
    actor_user_id: int | None,
    region_code: str,
    actor_organisation_id: int | None = None,
) -> AuditEvent:
    """The audit event of one movement of a budget line, with the line's figures after it: the
    one shape every writer of a movement records (a checkout reserving many orders' money in
    one statement records one of these per order)."""
    return AuditEvent(
        action=f"budget_line.{PAST[kind]}",
        entity_type="budget_line",
        entity_id=str(line_id),
        actor_user_id=actor_user_id,
        actor_organisation_id=actor_organisation_id,
        region_code=region_code,
        after={
            "kind": kind,
            "amount_fen": amount_fen,
            "order_id": order_id,
            "amount_fen_after": amount_fen_after,
            "reserved_fen_after": reserved_fen_after,
            "spent_fen_after": spent_fen_after,
            "version": version,
        },
    )
