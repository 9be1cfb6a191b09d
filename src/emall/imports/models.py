"""Bulk import data: the job as the API shows it, and one refused row.

The rows themselves are ``emall.listings.models.OfferRow``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from emall.listings.models import OfferStatus
from emall.structs import FrozenStruct, Struct

ImportFormat = Literal["csv", "jsonl"]
ImportStatus = Literal["queued", "running", "succeeded", "failed"]
RowOutcome = Literal["saved", "refused"]
ProductOutcome = Literal["created", "matched"]
OfferOutcome = Literal["created", "updated", "unchanged"]
ProductField = Literal["brand", "model", "title", "specs", "image_urls", "unit"]

FORMATS: tuple[ImportFormat, ...] = ("csv", "jsonl")
MAX_FILE_BYTES = 50 * 1024 * 1024  # 50 MB
MAX_ROWS = 200_000
MAX_STORED_ERRORS = 1_000  # a job keeps the first 1,000 row errors
MAX_FILENAME_LENGTH = 255
# How deep a JSON value in a row may nest, as api/request_checks.py allows in a request body:
# offers nest a few levels (a delivery list of objects); deeper exists only to exhaust a parser.
MAX_JSON_DEPTH = 32
# A page of a job's row results: large, so that a file of 200,000 rows takes 40 pages.
DEFAULT_ROWS_PAGE = 1_000
MAX_ROWS_PAGE = 5_000


class RowError(FrozenStruct, frozen=True):
    """One refused row: its number in the file, the field, and why (Chinese first)."""

    row: int
    field: str
    reason: str


class UnappliedField(FrozenStruct, frozen=True):
    """A field of a row that the matched product kept: its own value differs, and an import
    does not change a product that every supplier shares."""

    field: ProductField
    reason: str


class ImportRowResult(Struct):
    """What the import did with one row of the file.

    A saved row names its product (``created`` by this import or ``matched``: an existing
    product of the same category, brand and model, compared without case or white space) and
    its offer (``created``, ``updated`` or ``unchanged``), with both ids and the offer's status
    after the import; ``unapplied`` lists the product fields of the row a matched product kept.
    A refused row has no ids and lists its ``errors``.
    """

    row: int
    outcome: RowOutcome
    product: ProductOutcome | None = None
    product_id: int | None = None
    offer: OfferOutcome | None = None
    offer_id: int | None = None
    offer_status: OfferStatus | None = None
    unapplied: list[UnappliedField] = []
    errors: list[RowError] = []


class ImportJobRead(Struct):
    id: int
    supplier_id: int
    status: ImportStatus
    format: ImportFormat
    filename: str
    sha256: str
    total_rows: int
    processed_rows: int
    created_rows: int
    updated_rows: int
    unchanged_rows: int
    error_rows: int
    created_products: int  # saved rows whose product the import created
    matched_products: int  # saved rows whose product existed (its shared fields kept)
    errors: list[RowError]
    failure: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
