"""Bulk import data: the job as the API shows it, and one refused row.

The rows themselves are ``emall.listings.models.OfferRow``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from emall.structs import FrozenStruct, Struct

ImportFormat = Literal["csv", "jsonl"]
ImportStatus = Literal["queued", "running", "succeeded", "failed"]

FORMATS: tuple[ImportFormat, ...] = ("csv", "jsonl")
MAX_FILE_BYTES = 50 * 1024 * 1024  # 50 MB
MAX_ROWS = 200_000
MAX_STORED_ERRORS = 1_000  # a job keeps the first 1,000 row errors
MAX_FILENAME_LENGTH = 255
# How deep a JSON value in a row may nest, as api/request_checks.py allows in a request body:
# offers nest a few levels (a delivery list of objects); deeper exists only to exhaust a parser.
MAX_JSON_DEPTH = 32


class RowError(FrozenStruct, frozen=True):
    """One refused row: its number in the file, the field, and why (Chinese first)."""

    row: int
    field: str
    reason: str


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
    errors: list[RowError]
    failure: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
