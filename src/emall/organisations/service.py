"""Organisations: register, read the public profile, keep contacts and qualifications."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec

from emall.audit import enqueue, record_event
from emall.clock import today
from emall.db.pool import Connection, Pool
from emall.db.sql import like_term
from emall.errors import Conflict, NotFound, ValidationFailed
from emall.identity import principal_cache
from emall.identity.passwords import hash_password
from emall.organisations.models import (
    ContactCreate,
    ContactRead,
    OrganisationCreate,
    OrganisationRead,
    OrganisationUpdate,
    QualificationCreate,
    QualificationRead,
)
from emall.organisations.uscc import UsccError, validate_uscc
from emall.pagination import Page, page_args, page_of
from emall.policy import Resource, authorize
from emall.principals import OrganisationKind, Principal, Role
from emall.regions.service import require_region

FIRST_ADMIN_ROLE = {
    OrganisationKind.AGENCY: Role.AGENCY_ADMIN,
    OrganisationKind.SUPPLIER: Role.SUPPLIER_ADMIN,
    OrganisationKind.OPERATOR: Role.OPERATOR,
    OrganisationKind.PLATFORM: Role.PLATFORM_ADMIN,
}

_COLUMNS = """o.id, o.kind, o.name, o.region_code, r.name as region_name, o.uscc, o.sme_size,
              o.contact_phone, o.address, o.created_at, o.updated_at"""


def _read(row: asyncpg.Record) -> OrganisationRead:
    return OrganisationRead(
        id=row["id"],
        kind=OrganisationKind(row["kind"]),
        name=row["name"],
        region_code=row["region_code"],
        region_name=row["region_name"],
        uscc=row["uscc"],
        sme_size=row["sme_size"],
        contact_phone=row["contact_phone"],
        address=row["address"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def _fetch(conn: Connection | Pool, organisation_id: int) -> OrganisationRead | None:
    row = await conn.fetchrow(
        f"select {_COLUMNS} from organisations o join regions r on r.code = o.region_code where o.id = $1",
        organisation_id,
    )
    return None if row is None else _read(row)


async def organisation_resource(
    conn: Connection | Pool, organisation_id: int, *, public: bool = False
) -> Resource:
    """The organisation as a policy resource: its own regions plus, for a supplier, every region
    it has applied to (so that the operator reviewing an application may see its documents).

    ``public`` for the profile, which everyone sees (so a refusal to change it is a 403); its
    contacts and qualifications are private (unseen, they are a 404)."""
    row = await conn.fetchrow(
        """
        select o.id, region_chain(o.region_code)
               || coalesce((select array_agg(distinct c)
                            from admissions a, unnest(region_chain(a.region_code)) c
                            where a.supplier_id = o.id), '{}') as chain
        from organisations o where o.id = $1
        """,
        organisation_id,
    )
    if row is None:
        raise NotFound("单位", organisation_id)
    return Resource(
        "organisation",
        organisation_id,
        organisation_id=organisation_id,
        region_chain=tuple(row["chain"]),
        public=public,
    )


async def get_organisation(
    conn: Connection | Pool, principal: Principal, organisation_id: int
) -> OrganisationRead:
    """The public profile of any organisation."""
    authorize(principal, "organisation.read")
    found = await _fetch(conn, organisation_id)
    if found is None:
        raise NotFound("单位", organisation_id)
    return found


async def list_organisations(
    conn: Connection | Pool,
    principal: Principal,
    *,
    kind: OrganisationKind | None = None,
    region_code: str | None = None,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[OrganisationRead]:
    """The directory: by kind, by region (with its sub-regions) and by name."""
    authorize(principal, "organisation.read")
    if region_code is not None:
        await require_region(conn, region_code, "region_code")
    after = page_args(cursor, limit, int)
    rows = await conn.fetch(
        f"""
        select {_COLUMNS} from organisations o join regions r on r.code = o.region_code
        where ($1::text is null or o.kind = $1)
          and ($2::text is null or $2 = any(region_chain(o.region_code)))
          and ($3::text is null or o.name like '%' || $3 || '%')
          and ($4::bigint is null or o.id > $4)
        order by o.id
        limit $5
        """,
        kind,
        region_code,
        like_term(q),
        after[0] if after else None,
        limit + 1,
    )
    return page_of([_read(r) for r in rows], limit, lambda o: (o.id,))


async def create_organisation(
    conn: Connection,
    principal: Principal,
    data: OrganisationCreate,
    *,
    request_id: str | None = None,
) -> OrganisationRead:
    """Register an organisation (and optionally its first admin). An operator registers agencies
    and suppliers in its own region; the platform admin registers any kind anywhere."""
    chain = await require_region(conn, data.region_code, "region_code")
    authorize(
        principal,
        "organisation.create",
        Resource("organisation", data.name, region_chain=chain, public=True),
    )
    if data.kind in (
        OrganisationKind.OPERATOR,
        OrganisationKind.PLATFORM,
    ) and not principal.has_role(Role.PLATFORM_ADMIN):
        raise ValidationFailed.single(
            "kind",
            "交易中心只能登记采购单位和供应商 (operators register agencies and suppliers only)",
        )
    uscc = _checked_uscc(data)
    password_hash = await hash_password(data.admin.password) if data.admin else None
    async with conn.transaction():
        try:
            org_id: int = await conn.fetchval(
                """
                insert into organisations (kind, name, region_code, uscc, sme_size, contact_phone, address)
                values ($1, $2, $3, $4, $5, $6, $7) returning id
                """,
                data.kind,
                data.name,
                data.region_code,
                uscc,
                data.sme_size,
                data.contact_phone,
                data.address,
            )
        except asyncpg.UniqueViolationError as exc:
            field = "uscc" if "uscc" in str(exc.constraint_name) else "name"
            raise Conflict(f"单位已存在 (an organisation with this {field} exists)") from None
        created = await _fetch(conn, org_id)
        assert created is not None
        await record_event(
            conn,
            actor=principal,
            action="organisation.created",
            entity_type="organisation",
            entity_id=org_id,
            region_code=data.region_code,
            after=created,
            request_id=request_id,
        )
        if data.admin is not None and password_hash is not None:
            await _create_first_admin(conn, principal, created, data, password_hash, request_id)
    return created


def _checked_uscc(data: OrganisationCreate) -> str | None:
    if data.uscc is None:
        if data.kind == OrganisationKind.SUPPLIER:
            raise ValidationFailed.single(
                "uscc", "供应商必须提供统一社会信用代码 (a supplier needs its USCC)"
            )
        return None
    try:
        return validate_uscc(data.uscc)
    except UsccError as exc:
        raise ValidationFailed.single("uscc", exc.reason) from None


async def _create_first_admin(
    conn: Connection,
    principal: Principal,
    org: OrganisationRead,
    data: OrganisationCreate,
    password_hash: str,
    request_id: str | None,
) -> None:
    assert data.admin is not None
    role = FIRST_ADMIN_ROLE[org.kind]
    try:
        user_id = await conn.fetchval(
            """
            insert into users (organisation_id, username, display_name, password_hash, roles)
            values ($1, $2, $3, $4, $5) returning id
            """,
            org.id,
            data.admin.username.lower(),
            data.admin.display_name,
            password_hash,
            [str(role)],
        )
    except asyncpg.UniqueViolationError:
        raise Conflict(f"用户名已被使用 (username {data.admin.username!r} is taken)") from None
    await record_event(
        conn,
        actor=principal,
        action="user.created",
        entity_type="user",
        entity_id=user_id,
        region_code=org.region_code,
        after={
            "username": data.admin.username.lower(),
            "organisation_id": org.id,
            "roles": [str(role)],
        },
        request_id=request_id,
    )


async def update_organisation(
    conn: Connection,
    principal: Principal,
    organisation_id: int,
    data: OrganisationUpdate,
    *,
    request_id: str | None = None,
) -> OrganisationRead:
    resource = await organisation_resource(conn, organisation_id, public=True)
    authorize(principal, "organisation.update", resource)
    async with conn.transaction():
        await conn.execute("select 1 from organisations where id = $1 for update", organisation_id)
        before = await _fetch(conn, organisation_id)
        assert before is not None
        changes: dict[str, Any] = {
            k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET
        }
        if not changes:
            return before
        merged = msgspec.structs.replace(before, **changes)
        try:
            await conn.execute(
                """
                update organisations set name = $2, sme_size = $3, contact_phone = $4,
                                         address = $5, updated_at = now()
                where id = $1
                """,
                organisation_id,
                merged.name,
                merged.sme_size,
                merged.contact_phone,
                merged.address,
            )
            principal_cache.invalidate()  # principals carry the organisation's name
        except asyncpg.UniqueViolationError:
            raise Conflict(
                f"同一地区已有同名单位 (an organisation named {merged.name!r} exists there)"
            ) from None
        after = await _fetch(conn, organisation_id)
        assert after is not None
        await record_event(
            conn,
            actor=principal,
            action="organisation.updated",
            entity_type="organisation",
            entity_id=organisation_id,
            region_code=after.region_code,
            before=before,
            after=after,
            request_id=request_id,
        )
        if after.kind == OrganisationKind.SUPPLIER:
            # The supplier's name and SME class are copied into its offers' search documents.
            await enqueue(
                conn,
                topic="supplier.changed",
                aggregate_type="organisation",
                aggregate_id=organisation_id,
                payload={"fields": sorted(changes)},
            )
    return after


# Contacts and qualifications ------------------------------------------------------------------


def _contact(row: asyncpg.Record) -> ContactRead:
    return ContactRead(**dict(row))


async def list_contacts(
    conn: Connection | Pool, principal: Principal, organisation_id: int
) -> list[ContactRead]:
    authorize(
        principal, "organisation.read_private", await organisation_resource(conn, organisation_id)
    )
    rows = await conn.fetch(
        "select id, organisation_id, name, title, phone, email, created_at from organisation_contacts "
        "where organisation_id = $1 order by id",
        organisation_id,
    )
    return [_contact(r) for r in rows]


async def add_contact(
    conn: Connection,
    principal: Principal,
    organisation_id: int,
    data: ContactCreate,
    *,
    request_id: str | None = None,
) -> ContactRead:
    resource = await organisation_resource(conn, organisation_id)
    authorize(principal, "organisation.update", resource)
    if data.phone is None and data.email is None:
        raise ValidationFailed.single("phone", "电话和邮箱至少填写一项 (give a phone or an email)")
    async with conn.transaction():
        row = await conn.fetchrow(
            """
            insert into organisation_contacts (organisation_id, name, title, phone, email)
            values ($1, $2, $3, $4, $5)
            returning id, organisation_id, name, title, phone, email, created_at
            """,
            organisation_id,
            data.name,
            data.title,
            data.phone,
            data.email,
        )
        assert row is not None
        created = _contact(row)
        await record_event(
            conn,
            actor=principal,
            action="contact.added",
            entity_type="organisation",
            entity_id=organisation_id,
            after=created,
            request_id=request_id,
        )
    return created


async def remove_contact(
    conn: Connection,
    principal: Principal,
    organisation_id: int,
    contact_id: int,
    *,
    request_id: str | None = None,
) -> None:
    resource = await organisation_resource(conn, organisation_id)
    authorize(principal, "organisation.update", resource)
    async with conn.transaction():
        row = await conn.fetchrow(
            "delete from organisation_contacts where id = $1 and organisation_id = $2 "
            "returning id, organisation_id, name, title, phone, email, created_at",
            contact_id,
            organisation_id,
        )
        if row is None:
            raise NotFound("联系人", contact_id)
        await record_event(
            conn,
            actor=principal,
            action="contact.removed",
            entity_type="organisation",
            entity_id=organisation_id,
            before=_contact(row),
            request_id=request_id,
        )


def _qualification(row: asyncpg.Record) -> QualificationRead:
    valid_until = row["valid_until"]
    return QualificationRead(
        id=row["id"],
        organisation_id=row["organisation_id"],
        kind=row["kind"],
        number=row["number"],
        issuer=row["issuer"],
        valid_from=row["valid_from"],
        valid_until=valid_until,
        expired=valid_until is not None and valid_until < today(),
        document_url=row["document_url"],
        created_at=row["created_at"],
    )


_Q_COLUMNS = (
    "id, organisation_id, kind, number, issuer, valid_from, valid_until, document_url, created_at"
)


async def list_qualifications(
    conn: Connection | Pool, principal: Principal, organisation_id: int
) -> list[QualificationRead]:
    authorize(
        principal, "organisation.read_private", await organisation_resource(conn, organisation_id)
    )
    rows = await conn.fetch(
        f"select {_Q_COLUMNS} from supplier_qualifications where organisation_id = $1 order by id",
        organisation_id,
    )
    return [_qualification(r) for r in rows]


async def add_qualification(
    conn: Connection,
    principal: Principal,
    organisation_id: int,
    data: QualificationCreate,
    *,
    request_id: str | None = None,
) -> QualificationRead:
    resource = await organisation_resource(conn, organisation_id)
    authorize(principal, "organisation.update", resource)
    if data.valid_until is not None and data.valid_until < data.valid_from:
        raise ValidationFailed.single("valid_until", "不能早于生效日期 (before valid_from)")
    async with conn.transaction():
        row = await conn.fetchrow(
            f"""
            insert into supplier_qualifications (organisation_id, kind, number, issuer, valid_from,
                                                 valid_until, document_url)
            values ($1, $2, $3, $4, $5, $6, $7)
            returning {_Q_COLUMNS}
            """,
            organisation_id,
            data.kind,
            data.number,
            data.issuer,
            data.valid_from,
            data.valid_until,
            data.document_url,
        )
        assert row is not None
        created = _qualification(row)
        await record_event(
            conn,
            actor=principal,
            action="qualification.added",
            entity_type="organisation",
            entity_id=organisation_id,
            after=created,
            request_id=request_id,
        )
    return created
