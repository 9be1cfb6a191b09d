"""Product and offer data: Create / Update / Read, and the row format of bulk imports.

Money is integer fen (分). Dates are business dates (Asia/Shanghai).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec

from emall.structs import NO_NUL, ONE_LINE, URL, CategoryCode, Id, ReasonText, RegionCode, Struct

PolicyTag = Literal[
    "sme", "energy_saving", "environmental_label", "poverty_alleviation", "innovation"
]
OfferStatus = Literal["draft", "submitted", "listed", "rejected", "delisted"]
Fen = Annotated[
    int, msgspec.Meta(gt=0, le=9_000_000_000_000_000, description="an amount in fen (分)")
]
Url = Annotated[str, msgspec.Meta(pattern=URL, max_length=1000)]
# one line that neither starts nor ends with a blank
Sku = Annotated[
    str,
    msgspec.Meta(min_length=1, max_length=64, pattern=ONE_LINE),
]
# A flat object of text, numbers and true/false. The category's attribute template, if it has
# one, says which keys it takes and what each value must be. check_specs refuses each bad value
# naming its key (a 422), so the values are described for the document rather than decoded as
# a union, whose errors could not name the key.
SPEC_VALUE_SCHEMA = {"type": ["string", "number", "boolean"], "pattern": NO_NUL}
Specs = Annotated[
    dict[str, Any], msgspec.Meta(extra_json_schema={"additionalProperties": SPEC_VALUE_SCHEMA})
]


class Delivery(Struct):
    region_code: RegionCode
    delivery_days: Annotated[int, msgspec.Meta(ge=1, le=365)]


class ProductCreate(Struct):
    category_code: CategoryCode
    brand: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    model: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    title: Annotated[str, msgspec.Meta(min_length=2, max_length=200)]
    specs: Specs = {}
    image_urls: Annotated[list[Url], msgspec.Meta(max_length=20)] = []
    unit: Annotated[str, msgspec.Meta(min_length=1, max_length=10)] = "件"


class ProductRead(Struct):
    id: int
    category_code: str
    category_name: str
    brand: str
    model: str
    title: str
    specs: Specs
    image_urls: list[str]
    unit: str
    created_at: datetime
    updated_at: datetime


class OfferTerms(Struct):
    """What a supplier offers: shared by create, import rows and (partially) update."""

    price_fen: Fen
    reference_price_fen: Fen
    reference_source_url: Url
    reference_date: date
    stock: Annotated[int, msgspec.Meta(ge=0, le=2_000_000_000)]
    delivery: Annotated[list[Delivery], msgspec.Meta(min_length=1, max_length=500)]
    min_order_qty: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 1
    warranty_months: Annotated[int, msgspec.Meta(ge=0, le=240)] = 0
    policy_tags: list[PolicyTag] = []


class OfferCreate(OfferTerms, kw_only=True):
    product_id: Id
    supplier_sku: Sku


class OfferUpdate(Struct):
    """A partial update; fields left out keep their value. Needs If-Match with the ETag."""

    price_fen: Fen | msgspec.UnsetType = msgspec.UNSET
    reference_price_fen: Fen | msgspec.UnsetType = msgspec.UNSET
    reference_source_url: Url | msgspec.UnsetType = msgspec.UNSET
    reference_date: date | msgspec.UnsetType = msgspec.UNSET
    stock: Annotated[int, msgspec.Meta(ge=0, le=2_000_000_000)] | msgspec.UnsetType = msgspec.UNSET
    delivery: (
        Annotated[list[Delivery], msgspec.Meta(min_length=1, max_length=500)] | msgspec.UnsetType
    ) = msgspec.UNSET
    min_order_qty: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    warranty_months: Annotated[int, msgspec.Meta(ge=0, le=240)] | msgspec.UnsetType = msgspec.UNSET
    policy_tags: list[PolicyTag] | msgspec.UnsetType = msgspec.UNSET


class OfferRead(Struct):
    id: int
    product: ProductRead
    supplier_id: int
    supplier_name: str
    supplier_sku: str
    status: OfferStatus
    status_reason: str | None
    price_fen: int
    reference_price_fen: int
    reference_source_url: str
    reference_date: date
    stock: int
    min_order_qty: int
    warranty_months: int
    policy_tags: list[PolicyTag]
    delivery: list[Delivery]
    review_region_code: str | None
    version: int
    submitted_at: datetime | None
    reviewed_at: datetime | None
    listed_at: datetime | None
    delisted_at: datetime | None
    created_at: datetime
    updated_at: datetime


class OfferRow(OfferTerms, kw_only=True):
    """One row of a bulk import: a product (found or created by brand, model and category) and
    the supplier's offer for it, keyed by the supplier's own SKU."""

    supplier_sku: Sku
    category_code: CategoryCode
    brand: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    model: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    title: Annotated[str, msgspec.Meta(min_length=2, max_length=200)]
    specs: Specs = {}
    image_urls: Annotated[list[Url], msgspec.Meta(max_length=20)] = []
    unit: Annotated[str, msgspec.Meta(min_length=1, max_length=10)] = "件"


class PricePoint(Struct):
    price_fen: int
    reference_price_fen: int
    changed_at: datetime
    changed_by: int | None


class AuditEntry(Struct):
    """One recorded change: who, when, what, and the record before and after it."""

    id: int
    occurred_at: datetime
    actor_user_id: int | None
    actor_organisation_id: int | None
    action: str
    before: Any
    after: Any
    request_id: str | None


MAX_REVIEW_IDS = 1_000
ReviewDecision = Literal["approve", "reject"]
ReviewRefusal = Literal["not_found", "wrong_state", "forbidden"]


class ReviewRequest(Struct):
    """An operator's decision on many submitted offers at once: approve (list) or reject them,
    rejecting with a reason. Each id is reviewed once, however often it is given."""

    offer_ids: Annotated[
        list[Id],
        msgspec.Meta(
            min_length=1,
            max_length=MAX_REVIEW_IDS,
            description=f"the offers to review, 1-{MAX_REVIEW_IDS:,} ids",
        ),
    ]
    decision: ReviewDecision
    reason: ReasonText | None = None  # required to reject; refused with approve


class ReviewOutcome(Struct):
    """What became of one offer: ``reviewed`` (now ``status``, at ``version``), or ``refused``
    with why: ``not_found`` (no such offer, or one the operator may not see), ``wrong_state``
    (not submitted: ``current_state`` says what it is) or ``forbidden`` (visible, but the
    operator may not review it)."""

    offer_id: int
    result: Literal["reviewed", "refused"]
    status: OfferStatus | None = None
    version: int | None = None
    refusal: ReviewRefusal | None = None
    current_state: OfferStatus | None = None
    message: str | None = None


class ReviewResult(Struct):
    decision: ReviewDecision
    reviewed: int
    refused: int
    results: list[ReviewOutcome]
