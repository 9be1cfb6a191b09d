"""Products, offers and the listing workflow; price statistics, rules and the flag queue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from litestar import Controller, Response, get, patch, post, put
from litestar.di import NamedDependency
from litestar.openapi.spec import OpenAPIType, Operation, Parameter, Schema
from litestar.params import FromQuery, HeaderParameter, JSONBody, PathParameter

from api.deps import AUTH, DB
from api.idempotent import IdempotencyKey, idempotent
from api.params import (
    DEFAULT_LIMIT,
    CategoryFilter,
    IdFilter,
    PageCursor,
    PageLimit,
    PathId,
    TextFilter,
)
from api.problems import problem_responses
from api.routes.identity import SECURITY
from emall.admission.models import Reason
from emall.db.pool import Connection
from emall.listings import offers, prices, products, workflow
from emall.listings.models import (
    AuditEntry,
    OfferCreate,
    OfferRead,
    OfferStatus,
    OfferUpdate,
    PricePoint,
    ProductCreate,
    ProductRead,
    ReviewRequest,
    ReviewResult,
)
from emall.listings.price_models import (
    FlagRead,
    FlagResolve,
    PriceRuleRead,
    PriceRuleWrite,
    PriceStats,
)
from emall.pagination import Page
from emall.principals import Principal
from emall.structs import CATEGORY_CODE, END, REGION_CODE

# An entity-tag list is visible ASCII (RFC 9110 8.8.3): what a client can send in a header.
IF_MATCH = rf"^[\x21-\x7e][\x20-\x7e]*{END}"
IfMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-Match",
        pattern=IF_MATCH,
        description="the offer's ETag, from GET or the last change (required: without it 428)",
    ),
]
CategoryPath = Annotated[str, PathParameter(pattern=CATEGORY_CODE, examples=None)]
RegionPath = Annotated[str, PathParameter(pattern=REGION_CODE)]


@dataclass
class _ConditionalOperation(Operation):
    """A change that needs If-Match. The handler takes it as optional, so that a request
    without it is answered 428 with the current ETag; the document states it as required."""

    def __post_init__(self) -> None:
        for parameter in self.parameters or []:
            if isinstance(parameter, Parameter) and parameter.name == "If-Match":
                parameter.required = True
                parameter.schema = Schema(type=OpenAPIType.STRING, min_length=1, pattern=IF_MATCH)


def _with_etag(offer: OfferRead, status_code: int = 200) -> Response[OfferRead]:
    return Response(
        offer, status_code=status_code, headers={"ETag": offers.etag(offer.id, offer.version)}
    )


class ProductController(Controller):
    path = "/products"
    tags = ["catalogue"]
    dependencies = {**AUTH, **DB}
    security = SECURITY

    @get(operation_id="listProducts", summary="Products", responses=problem_responses(400, 401))
    async def list_products(
        self,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        category_code: CategoryFilter = None,
        brand: TextFilter = None,
        q: TextFilter = None,
        cursor: PageCursor = None,
        limit: PageLimit = DEFAULT_LIMIT,
    ) -> Page[ProductRead]:
        """Products by category (any level, e.g. A02010100 计算机 includes 台式计算机), brand and a
        title substring."""
        return await products.list_products(
            conn,
            principal,
            category_code=category_code,
            brand=brand,
            q=q,
            cursor=cursor,
            limit=limit,
        )

    @post(
        operation_id="createProduct",
        summary="Create a product",
        responses=problem_responses(400, 401, 403, 409, 413),
    )
    async def create_product(
        self,
        data: JSONBody[ProductCreate],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> ProductRead:
        """A supplier creates a product in a leaf category; specs are checked against the
        category's attribute template. A likely duplicate (same brand, model and category)
        answers 409 with ``existing_id``: offer that product instead."""
        return await products.create_product(conn, principal, data, request_id=request_id)

    @get(
        "/{product_id:int}",
        operation_id="getProduct",
        summary="One product",
        responses=problem_responses(400, 401, 404),
    )
    async def get_product(
        self,
        product_id: PathId,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> ProductRead:
        """Brand, model, title, category, specs, images and unit."""
        return await products.get_product(conn, principal, product_id)


class OfferController(Controller):
    path = "/offers"
    tags = ["listings"]
    dependencies = {**AUTH, **DB}
    security = SECURITY

    @get(operation_id="listOffers", summary="Offers", responses=problem_responses(400, 401))
    async def list_offers(
        self,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        status: FromQuery[OfferStatus | None] = None,
        category_code: CategoryFilter = None,
        supplier_id: IdFilter = None,
        q: TextFilter = None,
        cursor: PageCursor = None,
        limit: PageLimit = DEFAULT_LIMIT,
    ) -> Page[OfferRead]:
        """A supplier sees its own offers; an operator or auditor its regions' (the review queue:
        ``status=submitted``); a buyer the listed offers it may buy in its region."""
        return await offers.list_offers(
            conn,
            principal,
            status=status,
            category_code=category_code,
            supplier_id=supplier_id,
            q=q,
            cursor=cursor,
            limit=limit,
        )

    @post(
        operation_id="createOffer",
        summary="Create an offer (draft)",
        responses=problem_responses(400, 401, 403, 409, 413),
    )
    async def create_offer(
        self,
        data: JSONBody[OfferCreate],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> Response[OfferRead]:
        """The supplier's terms for a product: price and market reference price (fen), stock,
        minimum order, delivery regions and days, warranty and policy tags. Starts as a draft."""
        return _with_etag(
            await offers.create_offer(conn, principal, data, request_id=request_id), 201
        )

    @get(
        "/{offer_id:int}",
        operation_id="getOffer",
        summary="One offer",
        responses=problem_responses(400, 401, 404),
    )
    async def get_offer(
        self,
        offer_id: PathId,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> Response[OfferRead]:
        """The offer, with its ETag for a later change."""
        return _with_etag(await offers.get_offer(conn, principal, offer_id))

    @patch(
        "/{offer_id:int}",
        operation_id="updateOffer",
        summary="Change an offer",
        responses=problem_responses(400, 401, 403, 404, 412, 428, 413),
        operation_class=_ConditionalOperation,
    )
    async def update_offer(
        self,
        offer_id: PathId,
        data: JSONBody[OfferUpdate],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
        if_match: IfMatch = None,
    ) -> Response[OfferRead]:
        """A partial change, with If-Match. A stale ETag answers 412; a listed offer whose price
        rises beyond the region's rule goes back to review."""
        updated = await offers.update_offer(
            conn, principal, offer_id, data, if_match=if_match, request_id=request_id
        )
        return _with_etag(updated)

    @post(
        "/{offer_id:int}/submit",
        operation_id="submitOffer",
        summary="Submit for review",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409),
    )
    async def submit(
        self,
        offer_id: PathId,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> Response[OfferRead]:
        """Only an admitted, unbanned supplier may submit; the admitting region's operator reviews."""
        return _with_etag(await workflow.submit(conn, principal, offer_id, request_id=request_id))

    @post(
        "/{offer_id:int}/approve",
        operation_id="approveOffer",
        summary="List (approve)",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409),
    )
    async def approve(
        self,
        offer_id: PathId,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> Response[OfferRead]:
        """The reviewing operator lists the offer; it becomes visible to buyers who may buy it."""
        return _with_etag(await workflow.approve(conn, principal, offer_id, request_id=request_id))

    @post(
        "/{offer_id:int}/reject",
        operation_id="rejectOffer",
        summary="Reject",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409, 413),
    )
    async def reject(
        self,
        offer_id: PathId,
        data: JSONBody[Reason],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> Response[OfferRead]:
        """The reviewing operator rejects, with a reason; the supplier may fix and resubmit."""
        return _with_etag(
            await workflow.reject(conn, principal, offer_id, data.reason, request_id=request_id)
        )

    @post(
        "/review",
        operation_id="reviewOffers",
        summary="Approve or reject many submitted offers (operator)",
        status_code=200,
        responses=problem_responses(400, 401, 403, 413, 422),
    )
    async def review(
        self,
        data: JSONBody[ReviewRequest],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ReviewResult]:
        """The reviewing operator lists (``approve``) or rejects (``reject``, with a
        ``reason``) up to 1,000 submitted offers in one transaction, with the same transitions,
        audit events and outbox rows as approveOffer and rejectOffer. Each offer is decided on
        its own; ``results`` has one entry per distinct id, in the order given:

        - ``reviewed``: the offer is now ``listed`` or ``rejected``, at ``version``;
        - ``refused``: ``not_found`` (no such offer, or one this operator may not see: the two
          are not told apart), ``wrong_state`` (not submitted; ``current_state`` says what it
          is, e.g. already ``listed`` by an earlier call) or ``forbidden`` (visible but not
          this operator's to review).

        403 when the caller reviews no offers at all (not an operator); 422 naming ``reason``
        when rejecting without one or approving with one. With ``Idempotency-Key`` a retry with
        the same key and body returns the first answer (``Idempotent-Replayed: true``); without
        it a retry reports the offers already decided as ``wrong_state``."""
        return await idempotent(
            conn,
            principal,
            idempotency_key,
            "offers.review",
            data,
            lambda: workflow.review(conn, principal, data, request_id=request_id),
            ReviewResult,
        )

    @post(
        "/{offer_id:int}/delist",
        operation_id="delistOffer",
        summary="Delist",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409, 413),
    )
    async def delist(
        self,
        offer_id: PathId,
        data: JSONBody[Reason],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> Response[OfferRead]:
        """The supplier or the reviewing operator withdraws a listed offer, with a reason."""
        return _with_etag(
            await workflow.delist(conn, principal, offer_id, data.reason, request_id=request_id)
        )


class OfferHistoryController(Controller):
    path = "/offers/{offer_id:int}"
    tags = ["listings"]
    dependencies = {**AUTH, **DB}
    security = SECURITY

    @get(
        "/price-history",
        operation_id="getOfferPriceHistory",
        summary="Price history",
        responses=problem_responses(400, 401, 404),
    )
    async def price_history(
        self,
        offer_id: PathId,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> list[PricePoint]:
        """Every price the offer has had (the supplier, and the operators and auditors over it)."""
        return await offers.price_history(conn, principal, offer_id)

    @get(
        "/audit",
        operation_id="getOfferAuditTrail",
        summary="Audit trail",
        responses=problem_responses(400, 401, 404),
    )
    async def audit(
        self,
        offer_id: PathId,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> list[AuditEntry]:
        """Every change of the offer in order: who, when, the action, before and after."""
        return await offers.audit_trail(conn, principal, offer_id)


class PriceController(Controller):
    path = "/prices"
    tags = ["prices"]
    dependencies = {**AUTH, **DB}
    security = SECURITY

    @get(
        "/stats/{category_code:str}",
        operation_id="getPriceStats",
        summary="Price statistics of a category",
        responses=problem_responses(400, 401, 404),
    )
    async def stats(
        self,
        category_code: CategoryPath,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> PriceStats:
        """Count, min, quartiles, median and max (fen) of listed offers in a category, any level."""
        return await prices.category_price_stats(conn, principal, category_code)

    @get(
        "/rules/{region_code:str}",
        operation_id="getPriceRule",
        summary="A region's price rule",
        responses=problem_responses(400, 401),
    )
    async def get_rule(
        self,
        region_code: RegionPath,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> PriceRuleRead:
        """The rule in force for a region: its own, an ancestor's, or the defaults (10% within
        30 days; flag above 1.5× the category's upper quartile)."""
        return await prices.get_price_rule(conn, principal, region_code)

    @put(
        "/rules/{region_code:str}",
        operation_id="putPriceRule",
        summary="Set a region's price rule",
        responses=problem_responses(400, 401, 403, 413),
    )
    async def put_rule(
        self,
        region_code: RegionPath,
        data: JSONBody[PriceRuleWrite],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> PriceRuleRead:
        """The region's operator sets the share and window of the rise rule and the flag factor."""
        return await prices.put_price_rule(
            conn, principal, region_code, data, request_id=request_id
        )

    @get(
        "/flags",
        operation_id="listPriceFlags",
        summary="The flag queue",
        responses=problem_responses(400, 401, 403),
    )
    async def list_flags(
        self,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        open_only: FromQuery[bool] = True,
        cursor: PageCursor = None,
        limit: PageLimit = DEFAULT_LIMIT,
    ) -> Page[FlagRead]:
        """Offers flagged as priced abnormally against their category's peers, in the regions the
        operator or auditor oversees."""
        return await prices.list_flags(
            conn, principal, open_only=open_only, cursor=cursor, limit=limit
        )

    @post(
        "/flags/{flag_id:int}/resolve",
        operation_id="resolvePriceFlag",
        summary="Resolve a flag",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404, 409, 413),
    )
    async def resolve_flag(
        self,
        flag_id: PathId,
        data: JSONBody[FlagResolve],
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        request_id: NamedDependency[str | None],
    ) -> FlagRead:
        """The region's operator records what it did about the flag."""
        return await prices.resolve_flag(conn, principal, flag_id, data, request_id=request_id)
