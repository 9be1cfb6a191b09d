"""Bulk import of offers (批量导入): upload a file, then poll its job."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)
from litestar.params import QueryParameter

from api.deps import AUTH, DB
from api.params import DEFAULT_LIMIT, PageCursor, PageLimit, PathId
from api.problems import PROBLEM_JSON, Problem, problem_responses
from api.request_checks import require_media_type
from api.routes.identity import SECURITY
from api.state import AppState
from emall.db.pool import Connection, Pool
from emall.errors import ValidationFailed
from emall.imports import jobs
from emall.imports.models import (
    DEFAULT_ROWS_PAGE,
    MAX_FILE_BYTES,
    MAX_ROWS,
    MAX_ROWS_PAGE,
    ImportFormat,
    ImportJobRead,
    ImportRowResult,
    RowOutcome,
)
from emall.pagination import Page
from emall.principals import Principal
from emall.structs import NO_NUL

UPLOAD_MEDIA_TYPES = (
    "text/csv",
    "application/x-ndjson",
    "application/jsonl",
    "application/octet-stream",
)
_BY_EXTENSION: dict[str, ImportFormat] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_BY_MEDIA_TYPE: dict[str, ImportFormat] = {
    "text/csv": "csv",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
}
_LIMIT_MB = MAX_FILE_BYTES // (1024 * 1024)
_TOO_LARGE_REASON = (
    f"文件超过 {_LIMIT_MB} MB 上限，请拆分后导入 (the file exceeds the {_LIMIT_MB} MB limit)"
)

FormatQuery = Annotated[
    ImportFormat | None,
    QueryParameter(
        name="format",
        description="csv or jsonl; by default from the filename's extension or the content type",
    ),
]
FilenameQuery = Annotated[
    str | None,
    QueryParameter(
        max_length=255, pattern=NO_NUL, description="the uploaded file's name, kept with the job"
    ),
]

OutcomeQuery = Annotated[
    RowOutcome | None,
    QueryParameter(description="only the saved rows, or only the refused ones"),
]
RowsLimit = Annotated[
    int,
    QueryParameter(
        ge=1,
        le=MAX_ROWS_PAGE,
        description=f"rows per page, 1-{MAX_ROWS_PAGE:,} (default {DEFAULT_ROWS_PAGE:,})",
    ),
]


@dataclass
class _UploadOperation(Operation):
    """The upload's body is the file itself, which the handler reads raw."""

    def __post_init__(self) -> None:
        # the bytes of the file: a client sends them as they are (format binary)
        file_schema = Schema(
            type=OpenAPIType.STRING,
            format=OpenAPIFormat.BINARY,
            description=(
                "The file, UTF-8: JSON Lines (one OfferRow object per line) or CSV with a header "
                "of OfferRow fields (specs as a JSON object, delivery as 511000:2;510300:4, "
                "policy_tags and image_urls ;-separated, empty cells for defaults). "
                f"At most {_LIMIT_MB} MB and {MAX_ROWS:,} rows."
            ),
        )
        self.request_body = RequestBody(
            content={media: OpenAPIMediaType(schema=file_schema) for media in UPLOAD_MEDIA_TYPES},
            description="the import file",
            required=True,
        )


def _format_of(fmt: ImportFormat | None, filename: str | None, content_type: str) -> ImportFormat:
    if fmt is not None:
        return fmt
    suffix = PurePosixPath(filename or "").suffix.lower()
    media = content_type.split(";", 1)[0].strip().lower()
    found = _BY_EXTENSION.get(suffix) or _BY_MEDIA_TYPE.get(media)
    if found is None:
        raise ValidationFailed.single(
            "format",
            "请指明文件格式 format=csv 或 format=jsonl "
            "(pass format=csv or format=jsonl, or a filename ending in .csv or .jsonl)",
        )
    return found


class ImportController(Controller):
    path = "/imports"
    tags = ["imports"]
    dependencies = {**AUTH, **DB}
    security = SECURITY

    @post(
        operation_id="createImportJob",
        summary="Upload a file of offers to import",
        status_code=202,
        request_max_body_size=MAX_FILE_BYTES,
        operation_class=_UploadOperation,
        responses={
            **problem_responses(400, 401, 403, 415),
            413: ResponseSpec(
                data_container=Problem,
                description=_TOO_LARGE_REASON,
                media_type=PROBLEM_JSON,
                generate_examples=False,
            ),
        },
    )
    async def create_import_job(
        self,
        request: Request[Any, Any, Any],
        state: AppState,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        format: FormatQuery = None,
        filename: FilenameQuery = None,
    ) -> Response[ImportJobRead]:
        """Send the file as the request body (text/csv, application/x-ndjson, application/jsonl
        or application/octet-stream). The answer is 202 with the queued job; the job runs after
        the response — poll getImportJob until its status is ``succeeded`` or ``failed``.

        Rows are matched by ``supplier_sku``: new SKUs create draft offers, changed ones are
        updated, identical ones are left alone. A row's product is found by category, brand and
        model (without case or white space) and ``matched``, or else ``created``; a matched
        product is shared by every supplier and keeps its own name, specs, images and unit, and
        the row's differing fields are reported as not applied. Invalid rows are reported with
        their row number and field and the valid rows are still saved. The job counts created
        and matched products; ``listImportJobRows`` gives every row's outcome with its product
        and offer ids. A file
        that is not UTF-8 or breaks the limits is refused at once (400 naming ``file``; over
        50 MB: 413)."""
        media_type = require_media_type(request, UPLOAD_MEDIA_TYPES)
        try:
            content = await request.body()
        except RequestEntityTooLarge:
            raise RequestEntityTooLarge(detail=_TOO_LARGE_REASON) from None
        chosen = _format_of(format, filename, media_type)
        job = await jobs.create_job(conn, principal, fmt=chosen, filename=filename, content=content)
        pool: Pool = state.pool
        return Response(
            job, status_code=202, background=BackgroundTask(jobs.run_job, pool, job.id, content)
        )

    @get(
        operation_id="listImportJobs",
        summary="List the supplier's import jobs",
        responses=problem_responses(400, 401),
    )
    async def list_import_jobs(
        self,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        cursor: PageCursor = None,
        limit: PageLimit = DEFAULT_LIMIT,
    ) -> Page[ImportJobRead]:
        """The import jobs of the caller's own organisation, newest first."""
        return await jobs.list_jobs(conn, principal, cursor=cursor, limit=limit)

    @get(
        "/{job_id:int}",
        operation_id="getImportJob",
        summary="An import job: status, progress, counts and row errors",
        responses=problem_responses(400, 401, 404),
    )
    async def get_import_job(
        self,
        job_id: PathId,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
    ) -> ImportJobRead:
        """Status (queued, running, succeeded, failed), ``processed_rows`` of ``total_rows``
        while running, then the counts (offers created, updated, unchanged; products created
        and matched; rows refused) and the first 1,000 row errors. Every row's outcome is
        ``listImportJobRows``. Visible to the supplier and to the operators and auditors of its
        region."""
        return await jobs.get_job(conn, principal, job_id)

    @get(
        "/{job_id:int}/rows",
        operation_id="listImportJobRows",
        summary="What an import job did with each row: outcomes, product and offer ids",
        responses=problem_responses(400, 401, 404),
    )
    async def list_import_job_rows(
        self,
        job_id: PathId,
        principal: NamedDependency[Principal],
        conn: NamedDependency[Connection],
        outcome: OutcomeQuery = None,
        cursor: PageCursor = None,
        limit: RowsLimit = DEFAULT_ROWS_PAGE,
    ) -> Page[ImportRowResult]:
        """Every row of a succeeded job's file, in row order (``row`` is the file's line number
        for JSON Lines, the data row's for CSV), up to 5,000 a page:

        - a saved row (``outcome: saved``) gives ``product`` (``created`` by this import, or
          ``matched``: an existing product of the same category, brand and model) with
          ``product_id``, and ``offer`` (``created``, ``updated`` or ``unchanged``) with
          ``offer_id`` and ``offer_status`` after the import. For a matched product,
          ``unapplied`` lists each field of the row that the product kept (``brand``,
          ``model``, ``title``, ``specs``, ``image_urls``, ``unit``: its own value differs, and
          an import does not change a product every supplier shares), with the reason. Empty
          specs and no images in a row are not reported.
        - a refused row (``outcome: refused``) has no ids and lists all of its ``errors``.

        Importing the same file again reports every row with the ids it already had
        (``matched``, ``unchanged``). A queued or running job has no rows yet, a failed one
        none. Visible to whoever may see the job; 404 otherwise."""
        return await jobs.list_rows(
            conn, principal, job_id, outcome=outcome, cursor=cursor, limit=limit
        )
