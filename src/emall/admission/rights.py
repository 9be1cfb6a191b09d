"""The one question: may supplier S sell to an agency in region R on this day, and why?

In order:
1. A ban in force in R (or an ancestor of R) refuses.
2. An admission in force granted in R (or an ancestor) allows: basis ``admission``.
3. An admission in force granted in region A, where A shares a partnership in force with R,
   allows — unless R has opted out of recognition in that partnership, or the supplier is banned
   in A: basis ``recognition``, naming the partnership.
4. Otherwise: refused, not admitted here nor in a partner region.

Everything is computed at the moment of asking, so a revocation, an expiry, a ban, a lifted
ban, an opt-out or a membership change takes effect at once.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal

from emall.admission.models import SaleRight
from emall.clock import business_date
from emall.db.pool import Connection, Pool
from emall.errors import NotFound
from emall.policy import authorize
from emall.principals import OrganisationKind, Principal
from emall.regions.service import require_region

Basis = Literal["admission", "recognition"] | None

_BAN = """
select id, reason, ends_at from bans
where supplier_id = $1 and region_code = any($2::text[]) and lifted_at is null
  and starts_at <= $3 and (ends_at is null or ends_at > $3)
order by id limit 1
"""

_ADMISSIONS = """
select id, region_code, region_chain(region_code) as chain, decided_by, decided_at
from admissions
where supplier_id = $1 and status = 'approved'
  and valid_from <= $2 and (valid_until is null or valid_until >= $2)
order by id
"""

_RECOGNITION = """
select p.id, p.name, mr.recognises_admissions
from partnerships p
join partnership_members ma on ma.partnership_id = p.id and ma.region_code = any($1::text[])
join partnership_members mr on mr.partnership_id = p.id and mr.region_code = any($2::text[])
where p.effective_from <= $3 and (p.effective_to is null or p.effective_to >= $3)
  and ma.joined_on <= $3 and (ma.left_on is null or ma.left_on > $3)
  and mr.joined_on <= $3 and (mr.left_on is null or mr.left_on > $3)
order by mr.recognises_admissions desc, p.id
limit 1
"""


async def sale_right(
    conn: Connection | Pool,
    principal: Principal,
    supplier_id: int,
    region_code: str,
    at: datetime | None = None,
) -> SaleRight:
    authorize(principal, "sale_right.read")
    chain = list(await require_region(conn, region_code, "region_code"))
    kind = await conn.fetchval("select kind from organisations where id = $1", supplier_id)
    if kind != OrganisationKind.SUPPLIER:
        raise NotFound("供应商", supplier_id)
    moment = at or datetime.now(UTC)
    day = business_date(moment)

    def answer(allowed: bool, reason: str, basis: Basis = None, **extra: Any) -> SaleRight:
        return SaleRight(
            supplier_id=supplier_id,
            region_code=region_code,
            on=day,
            allowed=allowed,
            basis=basis,
            reason=reason,
            **extra,
        )

    ban = await conn.fetchrow(_BAN, supplier_id, chain, moment)
    if ban is not None:
        return answer(
            False,
            f"该供应商在本地区被禁入：{ban['reason']} (banned in this region)",
            ban_id=ban["id"],
        )

    admissions = await conn.fetch(_ADMISSIONS, supplier_id, day)
    for a in admissions:
        if a["region_code"] in chain:
            return answer(
                True,
                "已在本地区入驻 (admitted in this region)",
                basis="admission",
                admission_id=a["id"],
                admitted_in=a["region_code"],
                admitted_by=a["decided_by"],
                admitted_at=a["decided_at"],
            )

    opted_out: str | None = None
    for a in admissions:
        if await conn.fetchrow(_BAN, supplier_id, list(a["chain"]), moment) is not None:
            continue  # a ban where it was admitted suspends what that admission carries
        link = await conn.fetchrow(_RECOGNITION, list(a["chain"]), chain, day)
        if link is None:
            continue
        if not link["recognises_admissions"]:
            opted_out = link["name"]
            continue
        return answer(
            True,
            f"通过{link['name']}互认入驻 (admission recognised through {link['name']})",
            basis="recognition",
            admission_id=a["id"],
            admitted_in=a["region_code"],
            admitted_by=a["decided_by"],
            admitted_at=a["decided_at"],
            partnership_id=link["id"],
            partnership_name=link["name"],
        )
    if opted_out is not None:
        return answer(
            False,
            f"本地区在{opted_out}中未参加入驻互认 (this region opted out of recognition in {opted_out})",
        )
    return answer(
        False, "未在本地区或合作地区入驻 (not admitted in this region or a partner region)"
    )


def on_date(value: date) -> datetime:
    """Noon of a business day, as a moment to ask ``sale_right`` about that day."""
    from emall.clock import BUSINESS_TZ

    return datetime(value.year, value.month, value.day, 12, tzinfo=BUSINESS_TZ)
