"""Budget lines (预算指标) and their ledger.

An agency's admin creates lines (an ``allocate`` ledger row) and adjusts them (an ``adjust``
row; a cut may not take the amount below what is reserved and spent). Orders move money with
``reserve`` (when an order is placed), ``release`` (cancelled) and ``spend`` (settled). Every
movement is one ledger row, written in the same statement as the change to the line, and an
audit event, in the same transaction; the database's checks guard the invariant
``0 <= reserved + spent <= amount`` whatever the code above them does.
"""

from __future__ import annotations

from typing import NoReturn

import asyncpg

from emall.audit import record, record_event
from emall.budgets.models import BudgetAdjust, BudgetLineCreate, BudgetLineRead, LedgerEntry
from emall.budgets.movements import Kind, movement_ctes, movement_event
from emall.db.pool import Connection, Pool
from emall.errors import Conflict, NotFound, ValidationFailed
from emall.pagination import Page, page_args, page_of
from emall.policy import Resource, authorize, list_scope
from emall.principals import OrganisationKind, Principal

_COLUMNS = """
    l.id, l.agency_id, l.fiscal_year, l.funding_source, l.name, l.amount_fen, l.reserved_fen,
    l.spent_fen, l.amount_fen - l.reserved_fen - l.spent_fen as available_fen, l.version,
    l.created_at, l.updated_at, o.region_code, region_chain(o.region_code) as chain
"""
_FROM = "from budget_lines l join organisations o on o.id = l.agency_id"
_LEDGER_COLUMNS = "id, kind, amount_fen, order_id, note, created_by, created_at"
_BALANCE_CONSTRAINTS = {"budget_lines_balance_check", "budget_lines_nonnegative_check"}
_NAME = "预算指标"


def _read(row: asyncpg.Record) -> BudgetLineRead:
    values = dict(row)
    values.pop("chain")
    values.pop("region_code")
    return BudgetLineRead(**values)


def _resource(row: asyncpg.Record) -> Resource:
    return Resource(
        "budget_line", row["id"], organisation_id=row["agency_id"], region_chain=tuple(row["chain"])
    )


async def _load(conn: Connection | Pool, line_id: int, *, lock: bool = False) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"select {_COLUMNS} {_FROM} where l.id = $1" + (" for update of l" if lock else ""),
        line_id,
    )
    if row is None:
        raise NotFound(_NAME, line_id)
    return row


async def _available(conn: Connection, line_id: int) -> int:
    available: int | None = await conn.fetchval(
        "select amount_fen - reserved_fen - spent_fen from budget_lines where id = $1", line_id
    )
    if available is None:
        raise NotFound(_NAME, line_id)
    return available


# -- reading ------------------------------------------------------------------------------------


async def get_line(conn: Connection | Pool, principal: Principal, line_id: int) -> BudgetLineRead:
    row = await _load(conn, line_id)
    authorize(principal, "budget.read", _resource(row))
    return _read(row)


async def list_lines(
    conn: Connection | Pool,
    principal: Principal,
    *,
    fiscal_year: int | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[BudgetLineRead]:
    """The agency's own lines; an operator's or auditor's: those of agencies in its regions."""
    authorize(principal, "budget.read")
    if fiscal_year is not None and not 2000 <= fiscal_year <= 2100:
        raise ValidationFailed.single("fiscal_year", "年度须在 2000-2100 之间 (must be 2000-2100)")
    after = page_args(cursor, limit, int)
    rows = await conn.fetch(
        f"""
        select {_COLUMNS} {_FROM}
        where ($1::boolean or l.agency_id = $2::bigint or region_chain(o.region_code) && $3::text[])
          and ($4::integer is null or l.fiscal_year = $4)
          and ($5::bigint is null or l.id > $5)
        order by l.id
        limit $6
        """,
        *list_scope(principal),
        fiscal_year,
        after[0] if after else None,
        limit + 1,
    )
    return page_of([_read(r) for r in rows], limit, lambda line: (line.id,))


async def ledger(
    conn: Connection | Pool,
    principal: Principal,
    line_id: int,
    *,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[LedgerEntry]:
    """A line's movements, oldest first."""
    after = page_args(cursor, limit, int)
    authorize(principal, "budget.read", _resource(await _load(conn, line_id)))
    rows = await conn.fetch(
        f"""
        select {_LEDGER_COLUMNS} from budget_ledger
        where budget_line_id = $1 and ($2::bigint is null or id > $2)
        order by id
        limit $3
        """,
        line_id,
        after[0] if after else None,
        limit + 1,
    )
    return page_of([LedgerEntry(**dict(r)) for r in rows], limit, lambda e: (e.id,))


async def ledger_balances(conn: Connection | Pool, line_id: int) -> tuple[int, int, int]:
    """(amount, reserved, spent) computed from the ledger alone, to check the line against."""
    row = await conn.fetchrow(
        """
        select
            coalesce(sum(amount_fen) filter (where kind in ('allocate', 'adjust')), 0)::bigint
                as amount,
            coalesce(sum(case kind when 'reserve' then amount_fen
                                   when 'release' then -amount_fen
                                   when 'spend' then -amount_fen
                                   else 0 end), 0)::bigint as reserved,
            coalesce(sum(amount_fen) filter (where kind = 'spend'), 0)::bigint as spent
        from budget_ledger
        where budget_line_id = $1
        """,
        line_id,
    )
    assert row is not None  # an aggregate always returns a row
    return int(row["amount"]), int(row["reserved"]), int(row["spent"])


# -- the agency admin's changes -----------------------------------------------------------------


async def create_line(
    conn: Connection,
    principal: Principal,
    data: BudgetLineCreate,
    *,
    request_id: str | None = None,
) -> BudgetLineRead:
    """The agency's admin creates a line for their own agency; its amount is allocated."""
    authorize(
        principal,
        "budget.manage",
        Resource(
            "organisation", principal.organisation_id, organisation_id=principal.organisation_id
        ),
    )
    if principal.organisation_kind != OrganisationKind.AGENCY:
        raise ValidationFailed.single(
            "agency_id", "只有采购单位可以设立预算指标 (only an agency has budget lines)"
        )
    name = data.name.strip()
    if not name:
        raise ValidationFailed.single("name", "名称不能为空 (name must not be blank)")
    async with conn.transaction():
        line_id: int | None = await conn.fetchval(
            """
            insert into budget_lines (agency_id, fiscal_year, funding_source, name, amount_fen)
            values ($1, $2, $3, $4, $5)
            on conflict on constraint budget_lines_key do nothing
            returning id
            """,
            principal.organisation_id,
            data.fiscal_year,
            data.funding_source,
            name,
            data.amount_fen,
        )
        if line_id is None:
            existing = await conn.fetchval(
                "select id from budget_lines where agency_id = $1 and fiscal_year = $2 "
                "and funding_source = $3 and name = $4",
                principal.organisation_id,
                data.fiscal_year,
                data.funding_source,
                name,
            )
            raise Conflict(
                f"该年度和资金来源下已有同名预算指标 (a budget line named {name!r} already exists "
                f"for {data.fiscal_year} / {data.funding_source})",
                existing_id=existing,
            )
        if data.amount_fen > 0:  # the ledger records positive movements only
            await conn.execute(
                "insert into budget_ledger (budget_line_id, kind, amount_fen, note, created_by) "
                "values ($1, 'allocate', $2, '初始下达 (initial allocation)', $3)",
                line_id,
                data.amount_fen,
                principal.user_id,
            )
        row = await _load(conn, line_id)
        created = _read(row)
        await record_event(
            conn,
            actor=principal,
            action="budget_line.created",
            entity_type="budget_line",
            entity_id=line_id,
            region_code=row["region_code"],
            after=created,
            request_id=request_id,
        )
    return created


async def adjust_line(
    conn: Connection,
    principal: Principal,
    line_id: int,
    data: BudgetAdjust,
    *,
    request_id: str | None = None,
) -> BudgetLineRead:
    """The agency's admin raises or cuts a line's amount. A cut below what is reserved and
    spent is refused (409) and changes nothing; the database's check decides."""
    if data.delta_fen == 0:
        raise ValidationFailed.single("delta_fen", "调整金额不能为 0 (delta_fen must not be 0)")
    note = data.note.strip()
    if not note:
        raise ValidationFailed.single("note", "请说明调整原因 (note must not be blank)")
    async with conn.transaction():
        row = await _load(conn, line_id, lock=True)
        authorize(principal, "budget.manage", _resource(row))
        before = _read(row)
        try:
            async with conn.transaction():  # a savepoint: a refused cut undoes only itself
                await conn.execute(
                    """
                    update budget_lines
                    set amount_fen = amount_fen + $2, version = version + 1, updated_at = now()
                    where id = $1
                    """,
                    line_id,
                    data.delta_fen,
                )
        except asyncpg.CheckViolationError as exc:
            if exc.constraint_name not in _BALANCE_CONSTRAINTS:
                raise
            available = await _available(conn, line_id)
            raise Conflict(
                f"调减金额超过可用余额：可用 {available} 分 (the cut of {-data.delta_fen} fen "
                f"exceeds what is neither reserved nor spent: available {available} fen)"
            ) from None
        await conn.execute(
            "insert into budget_ledger (budget_line_id, kind, amount_fen, note, created_by) "
            "values ($1, 'adjust', $2, $3, $4)",
            line_id,
            data.delta_fen,
            note,
            principal.user_id,
        )
        after = _read(await _load(conn, line_id))
        await record_event(
            conn,
            actor=principal,
            action="budget_line.adjusted",
            entity_type="budget_line",
            entity_id=line_id,
            region_code=row["region_code"],
            before=before,
            after=after,
            request_id=request_id,
        )
    return after


# -- movements for orders -----------------------------------------------------------------------
#
# These take no principal: the caller (the ordering service) has already authorised the order
# and passes the acting user for the ledger and the audit log. Call them inside the caller's
# transaction, so that the movement commits or rolls back with the order.


async def _move(
    conn: Connection,
    line_id: int,
    amount_fen: int,
    *,
    kind: Kind,
    order_id: int | None,
    actor_user_id: int | None,
) -> BudgetLineRead | None:
    """One movement for one order, as ``movement_ctes`` moves money for many: one statement,
    None when the line's condition does not hold (or the line does not exist). Records the
    audit event too."""
    if amount_fen <= 0:
        raise ValidationFailed.single("amount_fen", "金额必须大于 0 (amount_fen must be > 0)")
    async with conn.transaction():  # a savepoint inside the caller's transaction
        row = await conn.fetchrow(_MOVE[kind], line_id, amount_fen, order_id, actor_user_id)
        if row is None:
            return None
        line = _read(row)
        event = movement_event(
            line_id,
            kind,
            amount_fen,
            order_id=order_id,
            amount_fen_after=line.amount_fen,
            reserved_fen_after=line.reserved_fen,
            spent_fen_after=line.spent_fen,
            version=line.version,
            actor_user_id=actor_user_id,
            region_code=row["region_code"],
        )
        await record(conn, [event])
    return line


# $1 the line, $2 the amount, $3 the order, $4 the acting user
_MOVE: dict[Kind, str] = {
    kind: f"""
with entry as (select $3::bigint as order_id, $2::bigint as amount_fen, 1 as n),
{movement_ctes(kind, line="$1", entries="entry", amount="$2", count="1", actor="$4")}
select {_COLUMNS} from moved l join organisations o on o.id = l.agency_id
"""
    for kind in ("reserve", "release", "spend")
}


async def reserve(
    conn: Connection,
    line_id: int,
    amount_fen: int,
    *,
    order_id: int | None,
    actor_user_id: int | None,
) -> BudgetLineRead:
    """Reserve money for an order. One conditional update decides, so concurrent reservations
    can never together exceed the amount; refused with ``Conflict`` naming what is available.
    The caller authorises (see above)."""
    moved = await _move(
        conn,
        line_id,
        amount_fen,
        kind="reserve",
        order_id=order_id,
        actor_user_id=actor_user_id,
    )
    if moved is None:
        available = await _available(conn, line_id)
        raise Conflict(
            f"预算不足 (insufficient budget): available {available} fen, requested {amount_fen} fen"
        )
    return moved


async def release(
    conn: Connection,
    line_id: int,
    amount_fen: int,
    *,
    order_id: int | None,
    actor_user_id: int | None,
) -> BudgetLineRead:
    """Give back reserved money (an order cancelled). The caller authorises."""
    moved = await _move(
        conn,
        line_id,
        amount_fen,
        kind="release",
        order_id=order_id,
        actor_user_id=actor_user_id,
    )
    if moved is None:
        await _not_reserved(conn, line_id, amount_fen, "释放")
    return moved


async def spend(
    conn: Connection,
    line_id: int,
    amount_fen: int,
    *,
    order_id: int | None,
    actor_user_id: int | None,
) -> BudgetLineRead:
    """Turn reserved money into spent money (an order settled). The caller authorises."""
    moved = await _move(
        conn,
        line_id,
        amount_fen,
        kind="spend",
        order_id=order_id,
        actor_user_id=actor_user_id,
    )
    if moved is None:
        await _not_reserved(conn, line_id, amount_fen, "支出")
    return moved


async def _not_reserved(conn: Connection, line_id: int, amount_fen: int, verb: str) -> NoReturn:
    reserved: int | None = await conn.fetchval(
        "select reserved_fen from budget_lines where id = $1", line_id
    )
    if reserved is None:
        raise NotFound(_NAME, line_id)
    raise Conflict(
        f"{verb}金额超过已预留金额 (more than is reserved): reserved {reserved} fen, "
        f"requested {amount_fen} fen"
    )
