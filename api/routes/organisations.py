"""Organisations: the directory, registration, profiles, contacts and qualifications."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody

from api.deps import AUTH, DB
from api.params import (
    DEFAULT_LIMIT,
    PageCursor,
    PageLimit,
    PathId,
    RegionCodeQuery,
    RegionFilter,
    TextFilter,
)
from api.problems import problem_responses
from api.routes.identity import SECURITY
from emall.admission.models import SaleRight
from emall.admission.rights import sale_right
from emall.db.pool import Connection
from emall.organisations import service
from emall.organisations.models import (
    ContactCreate,
    ContactRead,
    OrganisationCreate,
    OrganisationRead,
    OrganisationUpdate,
    QualificationCreate,
    QualificationRead,
)
from emall.pagination import Page
from emall.principals import OrganisationKind, Principal


class OrganisationController(Controller):
    path = "/organisations"
    tags = ["organisations"]
    dependencies = {**AUTH, **DB}
    security = SECURITY

    @get(
        operation_id="listOrganisations",
        summary="The directory",
        responses=problem_responses(400, 401),
    )
    async def list_organisations(
        self,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        kind: FromQuery[OrganisationKind | None] = None,
        region_code: RegionFilter = None,
        q: TextFilter = None,
        cursor: PageCursor = None,
        limit: PageLimit = DEFAULT_LIMIT,
    ) -> Page[OrganisationRead]:
        """Agencies, suppliers and operators by kind, region (with sub-regions) and name."""
        return await service.list_organisations(
            conn, principal, kind=kind, region_code=region_code, q=q, cursor=cursor, limit=limit
        )

    @post(
        operation_id="createOrganisation",
        summary="Register an organisation",
        responses=problem_responses(400, 401, 403, 409, 413),
    )
    async def create_organisation(
        self,
        data: JSONBody[OrganisationCreate],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> OrganisationRead:
        """An operator registers agencies and suppliers in its region; the platform admin any
        kind anywhere. A supplier's USCC is checked (GB 32100-2015). ``admin`` creates its first
        admin user."""
        return await service.create_organisation(conn, principal, data, request_id=request_id)

    @get(
        "/{organisation_id:int}",
        operation_id="getOrganisation",
        summary="A public profile",
        responses=problem_responses(400, 401, 404),
    )
    async def get_organisation(
        self,
        organisation_id: PathId,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> OrganisationRead:
        """Name, kind, region, USCC and SME size of any organisation."""
        return await service.get_organisation(conn, principal, organisation_id)

    @patch(
        "/{organisation_id:int}",
        operation_id="updateOrganisation",
        summary="Change own profile",
        responses=problem_responses(400, 401, 403, 404, 409, 413),
    )
    async def update_organisation(
        self,
        organisation_id: PathId,
        data: JSONBody[OrganisationUpdate],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> OrganisationRead:
        """The organisation's admin changes its name, SME declaration (中小企业声明) or contact
        details; fields left out are unchanged."""
        return await service.update_organisation(
            conn, principal, organisation_id, data, request_id=request_id
        )

    @get(
        "/{organisation_id:int}/contacts",
        operation_id="listContacts",
        summary="Contacts",
        responses=problem_responses(400, 401, 404),
    )
    async def list_contacts(
        self,
        organisation_id: PathId,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> list[ContactRead]:
        """Private: the organisation itself and the operators and auditors overseeing it."""
        return await service.list_contacts(conn, principal, organisation_id)

    @post(
        "/{organisation_id:int}/contacts",
        operation_id="addContact",
        summary="Add a contact",
        responses=problem_responses(400, 401, 403, 404, 413),
    )
    async def add_contact(
        self,
        organisation_id: PathId,
        data: JSONBody[ContactCreate],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> ContactRead:
        """The organisation's admin adds a contact person (a phone or an email is required)."""
        return await service.add_contact(
            conn, principal, organisation_id, data, request_id=request_id
        )

    @delete(
        "/{organisation_id:int}/contacts/{contact_id:int}",
        operation_id="removeContact",
        summary="Remove a contact",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def remove_contact(
        self,
        organisation_id: PathId,
        contact_id: PathId,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> None:
        """The organisation's admin removes a contact person."""
        await service.remove_contact(
            conn, principal, organisation_id, contact_id, request_id=request_id
        )

    @get(
        "/{organisation_id:int}/qualifications",
        operation_id="listQualifications",
        summary="Qualification documents",
        responses=problem_responses(400, 401, 404),
    )
    async def list_qualifications(
        self,
        organisation_id: PathId,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> list[QualificationRead]:
        """Private: the supplier itself, and the operators and auditors overseeing a region it is
        in or has applied to. Each says whether it has expired."""
        return await service.list_qualifications(conn, principal, organisation_id)

    @post(
        "/{organisation_id:int}/qualifications",
        operation_id="addQualification",
        summary="Add a qualification document",
        responses=problem_responses(400, 401, 403, 404, 413),
    )
    async def add_qualification(
        self,
        organisation_id: PathId,
        data: JSONBody[QualificationCreate],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> QualificationRead:
        """The organisation's admin records a licence or certificate with its validity."""
        return await service.add_qualification(
            conn, principal, organisation_id, data, request_id=request_id
        )

    @get(
        "/{organisation_id:int}/sale-right",
        operation_id="getSaleRight",
        summary="May this supplier sell to a region?",
        responses=problem_responses(400, 401, 404),
    )
    async def get_sale_right(
        self,
        organisation_id: PathId,
        region_code: RegionCodeQuery,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> SaleRight:
        """Whether the supplier may sell to an agency in ``region_code`` now, with the reason:
        its own admission there, recognition through a partnership (named), or why not."""
        return await sale_right(conn, principal, organisation_id, region_code)
