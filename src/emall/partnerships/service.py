"""Partnerships: create, change membership over time, opt out of recognition.

``partner_regions`` is the visibility rule that search and ordering reuse: the regions that
share a partnership in force with a region on a date.
"""

from __future__ import annotations

from datetime import date, timedelta

import asyncpg
import msgspec

from emall.audit import enqueue, record_event, start_of_business_day
from emall.clock import today
from emall.db.pool import Connection, Pool
from emall.errors import Conflict, NotFound, ValidationFailed
from emall.identity import principal_cache
from emall.pagination import Page, page_args, page_of
from emall.partnerships.models import (
    MemberCreate,
    MemberLeave,
    MemberRead,
    PartnerLink,
    PartnershipCreate,
    PartnershipRead,
    PartnershipUpdate,
    RecognitionUpdate,
)
from emall.policy import Resource, authorize
from emall.principals import Principal
from emall.regions.service import region_chain, require_region

_ACTIVE_MEMBER = """
    m.joined_on <= $2::date and (m.left_on is null or m.left_on > $2::date)
    and p.effective_from <= $2::date and (p.effective_to is null or p.effective_to >= $2::date)
"""


async def partner_regions(
    conn: Connection | Pool, region_code: str, on: date | None = None
) -> list[PartnerLink]:
    """Regions sharing a partnership in force with ``region_code`` (or one of its ancestors).

    The visibility rule: an agency in region R may buy from suppliers admitted in any region
    this returns for R (and in R itself). Membership of an ancestor counts: a county agency
    belongs to its city's partnerships. A partnership in which R's member region has opted out
    of recognition (``recognises_admissions`` false) gives R no partners, as in ``sale_right``.
    """
    chain = await region_chain(conn, region_code)
    if not chain:
        return []
    rows = await conn.fetch(
        f"""
        select distinct other.region_code, p.id, p.code, p.name
        from partnership_members m
        join partnerships p on p.id = m.partnership_id
        join partnership_members other on other.partnership_id = p.id
        where m.region_code = any($1::text[]) and {_ACTIVE_MEMBER}
          and m.recognises_admissions
          and other.joined_on <= $2::date and (other.left_on is null or other.left_on > $2::date)
          and other.region_code <> all($1::text[])
        order by other.region_code, p.id
        """,
        list(chain),
        on or today(),
    )
    return [
        PartnerLink(
            region_code=r["region_code"],
            partnership_id=r["id"],
            partnership_code=r["code"],
            partnership_name=r["name"],
        )
        for r in rows
    ]


async def _members(
    conn: Connection | Pool, partnership_ids: list[int]
) -> dict[int, list[MemberRead]]:
    rows = await conn.fetch(
        """
        select m.id, m.partnership_id, m.region_code, r.name as region_name, m.joined_on,
               m.left_on, m.recognises_admissions
        from partnership_members m join regions r on r.code = m.region_code
        where m.partnership_id = any($1::bigint[])
        order by m.partnership_id, m.joined_on, m.region_code, m.id
        """,
        partnership_ids,
    )
    members: dict[int, list[MemberRead]] = {pid: [] for pid in partnership_ids}
    for r in rows:
        members[r["partnership_id"]].append(
            MemberRead(
                id=r["id"],
                region_code=r["region_code"],
                region_name=r["region_name"],
                joined_on=r["joined_on"],
                left_on=r["left_on"],
                recognises_admissions=r["recognises_admissions"],
            )
        )
    return members


def _read(row: asyncpg.Record, members: list[MemberRead]) -> PartnershipRead:
    return PartnershipRead(
        id=row["id"],
        code=row["code"],
        name=row["name"],
        description=row["description"],
        effective_from=row["effective_from"],
        effective_to=row["effective_to"],
        members=members,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


_COLUMNS = "id, code, name, description, effective_from, effective_to, created_at, updated_at"


async def get_partnership(
    conn: Connection | Pool, principal: Principal, partnership_id: int
) -> PartnershipRead:
    authorize(principal, "partnership.read")
    row = await conn.fetchrow(f"select {_COLUMNS} from partnerships where id = $1", partnership_id)
    if row is None:
        raise NotFound("合作区域", partnership_id)
    return _read(row, (await _members(conn, [partnership_id]))[partnership_id])


async def list_partnerships(
    conn: Connection | Pool,
    principal: Principal,
    *,
    region_code: str | None = None,
    active_on: date | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[PartnershipRead]:
    """Partnerships, optionally those a region (or its ancestor) belongs to, or in force on a date.

    With a region, a membership counts on ``active_on``; without a date, a membership that has
    ended (its region left) no longer counts, while one that starts later already does.
    """
    authorize(principal, "partnership.read")
    chain = list(await require_region(conn, region_code, "region_code")) if region_code else None
    after = page_args(cursor, limit, int)
    rows = await conn.fetch(
        f"""
        select {_COLUMNS} from partnerships p
        where ($1::text[] is null or exists (
                select 1 from partnership_members m
                where m.partnership_id = p.id and m.region_code = any($1::text[])
                  and ($2::date is null or m.joined_on <= $2)
                  and (m.left_on is null or m.left_on > coalesce($2, $5::date))))
          and ($2::date is null or (p.effective_from <= $2
                                    and (p.effective_to is null or p.effective_to >= $2)))
          and ($3::bigint is null or p.id > $3)
        order by p.id
        limit $4
        """,
        chain,
        active_on,
        after[0] if after else None,
        limit + 1,
        today(),
    )
    members = await _members(conn, [r["id"] for r in rows])
    return page_of([_read(r, members[r["id"]]) for r in rows], limit, lambda p: (p.id,))


async def _add_member(
    conn: Connection, partnership_id: int, member: MemberCreate, prefix: str
) -> int:
    """Insert a current member; a refusal names the field after ``prefix`` ("members[0].")."""
    await require_region(conn, member.region_code, f"{prefix}region_code")
    last_left = await conn.fetchval(
        "select max(left_on) from partnership_members where partnership_id = $1 and region_code = $2",
        partnership_id,
        member.region_code,
    )
    if last_left is not None and member.joined_on < last_left:
        raise ValidationFailed.single(
            f"{prefix}joined_on",
            f"不能早于上次退出日期 {last_left} (the region's last membership ended {last_left})",
        )
    try:
        member_id: int = await conn.fetchval(
            """
            insert into partnership_members (partnership_id, region_code, joined_on, recognises_admissions)
            values ($1, $2, $3, $4) returning id
            """,
            partnership_id,
            member.region_code,
            member.joined_on,
            member.recognises_admissions,
        )
        principal_cache.invalidate()  # auditors' scopes are the members' regions
    except asyncpg.UniqueViolationError:
        raise Conflict(
            f"该地区已是本合作区域的成员 (region {member.region_code} is already a member)"
        ) from None
    return member_id


async def create_partnership(
    conn: Connection,
    principal: Principal,
    data: PartnershipCreate,
    *,
    request_id: str | None = None,
) -> PartnershipRead:
    authorize(principal, "partnership.manage")
    if data.effective_to is not None and data.effective_to < data.effective_from:
        raise ValidationFailed.single("effective_to", "不能早于生效日期 (before effective_from)")
    async with conn.transaction():
        try:
            pid: int = await conn.fetchval(
                """
                insert into partnerships (code, name, description, effective_from, effective_to)
                values ($1, $2, $3, $4, $5) returning id
                """,
                data.code,
                data.name,
                data.description,
                data.effective_from,
                data.effective_to,
            )
        except asyncpg.UniqueViolationError:
            raise Conflict(f"合作区域代码已存在 (partnership code {data.code!r} exists)") from None
        for index, member in enumerate(data.members):
            await _add_member(conn, pid, member, f"members[{index}].")
        created = await get_partnership(conn, principal, pid)
        await _recorded(conn, principal, "partnership.created", created, None, request_id)
    return created


async def _recorded(
    conn: Connection,
    principal: Principal,
    action: str,
    after: PartnershipRead,
    before: PartnershipRead | None,
    request_id: str | None,
) -> None:
    await record_event(
        conn,
        actor=principal,
        action=action,
        entity_type="partnership",
        entity_id=after.id,
        before=before,
        after=after,
        request_id=request_id,
    )
    # Who may buy from whom has changed: search visibility must be recomputed.
    await enqueue(
        conn,
        topic="visibility.changed",
        aggregate_type="partnership",
        aggregate_id=after.id,
        payload={"regions": sorted({m.region_code for m in after.members})},
    )
    # Dates in the future change visibility by themselves (a partnership starting or ending, a
    # region joining or leaving): refresh it then, too.
    today_ = today()
    dates = {after.effective_from}
    dates.update(m.joined_on for m in after.members)
    dates.update(m.left_on for m in after.members if m.left_on is not None)
    if after.effective_to is not None:
        dates.add(after.effective_to + timedelta(days=1))
    for day in sorted(d for d in dates if d > today_):
        await enqueue(
            conn,
            topic="visibility.changed",
            aggregate_type="partnership",
            aggregate_id=after.id,
            payload={"regions": sorted({m.region_code for m in after.members}), "dated": True},
            not_before=start_of_business_day(day),
        )


async def _locked(conn: Connection, principal: Principal, partnership_id: int) -> PartnershipRead:
    exists = await conn.fetchval(
        "select id from partnerships where id = $1 for update", partnership_id
    )
    if exists is None:
        raise NotFound("合作区域", partnership_id)
    return await get_partnership(conn, principal, partnership_id)


async def update_partnership(
    conn: Connection,
    principal: Principal,
    partnership_id: int,
    data: PartnershipUpdate,
    *,
    request_id: str | None = None,
) -> PartnershipRead:
    authorize(principal, "partnership.manage")
    async with conn.transaction():
        before = await _locked(conn, principal, partnership_id)
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
        if not changes:
            return before
        effective_to = changes.get("effective_to", before.effective_to)
        if effective_to is not None and effective_to < before.effective_from:
            raise ValidationFailed.single(
                "effective_to", "不能早于生效日期 (before effective_from)"
            )
        await conn.execute(
            """
            update partnerships set name = $2, description = $3, effective_to = $4, updated_at = now()
            where id = $1
            """,
            partnership_id,
            changes.get("name", before.name),
            changes.get("description", before.description),
            effective_to,
        )
        after = await get_partnership(conn, principal, partnership_id)
        await _recorded(conn, principal, "partnership.updated", after, before, request_id)
    return after


async def add_member(
    conn: Connection,
    principal: Principal,
    partnership_id: int,
    data: MemberCreate,
    *,
    request_id: str | None = None,
) -> PartnershipRead:
    authorize(principal, "partnership.manage")
    async with conn.transaction():
        before = await _locked(conn, principal, partnership_id)
        await _add_member(conn, partnership_id, data, "")
        after = await get_partnership(conn, principal, partnership_id)
        await _recorded(conn, principal, "partnership.member_added", after, before, request_id)
    return after


async def _current_member(
    conn: Connection, partnership_id: int, region_code: str
) -> asyncpg.Record:
    row = await conn.fetchrow(
        """
        select id, joined_on from partnership_members
        where partnership_id = $1 and region_code = $2 and left_on is null
        for update
        """,
        partnership_id,
        region_code,
    )
    if row is None:
        raise NotFound("合作区域成员", f"{partnership_id}/{region_code}")
    return row


async def end_membership(
    conn: Connection,
    principal: Principal,
    partnership_id: int,
    region_code: str,
    data: MemberLeave,
    *,
    request_id: str | None = None,
) -> PartnershipRead:
    """A region leaves on ``left_on``; the row stays, so the history stays readable."""
    authorize(principal, "partnership.manage")
    async with conn.transaction():
        before = await _locked(conn, principal, partnership_id)
        member = await _current_member(conn, partnership_id, region_code)
        if data.left_on < member["joined_on"]:
            raise ValidationFailed.single("left_on", "不能早于加入日期 (before joined_on)")
        await conn.execute(
            "update partnership_members set left_on = $2, updated_at = now() where id = $1",
            member["id"],
            data.left_on,
        )
        principal_cache.invalidate()  # auditors' scopes are the members' regions
        after = await get_partnership(conn, principal, partnership_id)
        await _recorded(conn, principal, "partnership.member_left", after, before, request_id)
    return after


async def set_recognition(
    conn: Connection,
    principal: Principal,
    partnership_id: int,
    region_code: str,
    data: RecognitionUpdate,
    *,
    request_id: str | None = None,
) -> PartnershipRead:
    """The member region's operator opts out of (or back into) recognising admissions."""
    chain = await region_chain(conn, region_code)
    authorize(
        principal,
        "partnership.set_recognition",
        Resource(
            "partnership_member", f"{partnership_id}/{region_code}", region_chain=chain, public=True
        ),
    )
    async with conn.transaction():
        before = await _locked(conn, principal, partnership_id)
        member = await _current_member(conn, partnership_id, region_code)
        await conn.execute(
            "update partnership_members set recognises_admissions = $2, updated_at = now() where id = $1",
            member["id"],
            data.recognises_admissions,
        )
        after = await get_partnership(conn, principal, partnership_id)
        await _recorded(
            conn, principal, "partnership.recognition_changed", after, before, request_id
        )
    return after
