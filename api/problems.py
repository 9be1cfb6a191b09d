"""Every error becomes ``application/problem+json`` (RFC 9457), mapped here and nowhere else.

The library raises its own errors (``emall.errors``); this module maps each error's kind to a
status (so a new domain's errors need no edit here), turns Litestar's own HTTP errors
(validation, 404, 405, 415) into the same shape, and answers an unexpected error with a 500 that
leaks nothing but the request id, which the log also carries.

Two statuses tell apart the two ways input is refused, so that a client (and a fuzzer checking
that the OpenAPI document tells the truth) knows which one it met:

* 400: the request does not match the OpenAPI document (a type, a bound, a pattern, an unknown
  field): the document alone predicts it;
* 422: the request matches the document but a rule refuses it: a code that names no region or
  category, a date before another, an id that is not a supplier (``ValidationFailed``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import asyncpg
import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from api.request_id import request_id_of
from emall.errors import EmallError, ErrorKind, FieldError
from emall.ordering.models import CheckoutWarning

log = logging.getLogger("emall.api")

PROBLEM_JSON = "application/problem+json"


class Problem(msgspec.Struct, omit_defaults=True, kw_only=True):
    """An RFC 9457 problem document, with emall's extension members."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None
    current_state: str | None = None
    existing_id: int | None = None
    current_etag: str | None = None
    warnings: list[CheckoutWarning] | None = None  # what checkout needs acknowledged
    components: list[str] | None = None


# Each kind of the library's errors, as a status and its title; an error may bring its own title.
_BY_KIND: dict[ErrorKind, tuple[int, str]] = {
    ErrorKind.MALFORMED: (400, "请求有误 (bad request)"),
    ErrorKind.INVALID: (422, "不符合业务规则 (unprocessable: refused by a rule)"),
    ErrorKind.NOT_AUTHENTICATED: (401, "需要登录 (not authenticated)"),
    ErrorKind.FORBIDDEN: (403, "无权操作 (permission denied)"),
    ErrorKind.NOT_FOUND: (404, "未找到 (not found)"),
    ErrorKind.CONFLICT: (409, "状态冲突 (conflict)"),
    ErrorKind.STALE: (412, "数据已被修改 (precondition failed)"),
    ErrorKind.PRECONDITION_REQUIRED: (428, "需要 If-Match (precondition required)"),
    ErrorKind.THROTTLED: (429, "请求过多 (too many attempts)"),
    ErrorKind.UNAVAILABLE: (503, "服务暂不可用 (service unavailable)"),
    ErrorKind.INTERNAL: (500, "服务器内部错误 (internal server error)"),
}

_HTTP_TITLES = {
    400: ("bad_request", "请求有误 (bad request)"),
    401: ("not_authenticated", "需要登录 (not authenticated)"),
    403: ("permission_denied", "无权操作 (permission denied)"),
    404: ("not_found", "未找到 (not found)"),
    405: ("method_not_allowed", "不支持的请求方法 (method not allowed)"),
    413: ("payload_too_large", "请求体过大 (payload too large)"),
    415: ("unsupported_media_type", "不支持的内容类型 (unsupported media type)"),
    429: ("too_many_attempts", "请求过多 (too many requests)"),
}

# Errors that mean PostgreSQL is not reachable right now: answer 503 at once, never hang.
_DATABASE_DOWN = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,  # a query running when PostgreSQL is stopped or restarted
    asyncpg.CrashShutdownError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # a connection the server broke mid-operation ("cannot switch")
    ConnectionError,
    OSError,
    TimeoutError,
)


def _database_down(exc: BaseException) -> bool:
    """PostgreSQL is unreachable: the error says so, or every error of a group does (Litestar
    resolves a request's dependencies concurrently and reports their failures together)."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_database_down(inner) for inner in exc.exceptions)
    return isinstance(exc, _DATABASE_DOWN)


def _type_uri(code: str) -> str:
    return f"urn:emall:problem:{code}"


def _printable(text: str) -> str:
    """Text as a problem may carry it: an echoed NUL (from a request's path) written out."""
    return text.replace("\x00", "\\x00")


def problem_response(
    request: Request[Any, Any, Any],
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response[Problem]:
    if "errors" in extra:
        extra["errors"] = [
            FieldError(field=_printable(e.field), reason=_printable(e.reason))
            for e in extra["errors"]
        ]
    problem = Problem(
        type=_type_uri(code),
        title=title,
        status=status,
        detail=_printable(detail),
        instance=_printable(request.url.path),
        request_id=request_id_of(request),
        **extra,
    )
    return Response(
        problem, status_code=status, media_type=PROBLEM_JSON, headers=dict(headers or {})
    )


def _emall_error(request: Request[Any, Any, Any], exc: EmallError) -> Response[Problem]:
    status, title = _BY_KIND[exc.kind]
    return problem_response(
        request,
        status=status,
        code=exc.code,
        title=exc.title or title,
        detail=exc.message,
        headers=exc.headers(),
        **exc.details(),
    )


_NAMED_FIELD = re.compile(r"(?:missing required|unknown) field `(?P<name>[^`]+)`")
_MSGSPEC_PATH = re.compile(r"^(?P<reason>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)


def _field_errors(exc: ValidationException) -> list[FieldError]:
    """Litestar's validation details as emall's field errors (body paths like ``items[0].qty``)."""
    errors: list[FieldError] = []
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", "invalid"))
        key = item.get("key")
        match = _MSGSPEC_PATH.match(message)
        reason = match["reason"] if match else message
        path = (match["path"] if match and match["path"] else "").lstrip(".")
        if not path and key and key != "data":
            path = str(key)  # Litestar may move msgspec's path into the key
        named = _NAMED_FIELD.search(reason)  # "Object missing required field `reason`"
        if named:
            field = f"{path}.{named['name']}" if path else named["name"]
        elif path:
            field = path
        else:
            field = "body"
        source = item.get("source")
        source = getattr(source, "value", source)  # Litestar passes a ParamType enum
        if source and source != "body" and field != "body":
            field = f"{source}.{field}"
        errors.append(FieldError(field=field or "body", reason=reason))
    if not errors:
        errors.append(FieldError(field="body", reason=str(exc.detail)))
    return errors


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Problem]:
    status = exc.status_code
    if status >= 500:
        return _unexpected(request, exc)
    if isinstance(exc, ValidationException) or status == 400:
        errors = (
            _field_errors(exc)
            if isinstance(exc, ValidationException)
            else [FieldError(field="body", reason=str(exc.detail))]
        )
        summary = "; ".join(f"{e.field}: {e.reason}" for e in errors)
        return problem_response(
            request,
            status=400,
            code="validation_failed",
            title="输入有误 (invalid input)",
            detail=summary,
            errors=errors,
        )
    code, title = _HTTP_TITLES.get(status, ("http_error", "请求有误 (client error)"))
    headers = dict(exc.headers or {})
    return problem_response(
        request, status=status, code=code, title=title, detail=str(exc.detail), headers=headers
    )


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    request_id = request_id_of(request)
    if _database_down(exc):
        log.warning("request %s: database unavailable: %r", request_id, exc)
        return problem_response(
            request,
            status=503,
            code="unavailable",
            title="服务暂不可用 (service unavailable)",
            detail="数据库暂不可用，请稍后重试 (the database is not available; retry shortly)",
            headers={"Retry-After": "2"},
            components=["postgres"],
        )
    log.error("request %s failed", request_id, exc_info=exc)
    return problem_response(
        request,
        status=HTTP_500_INTERNAL_SERVER_ERROR,
        code="internal_error",
        title="服务器内部错误 (internal server error)",
        detail=f"请求未能完成，请联系运营方并提供请求编号 {request_id} "
        f"(the request failed; quote request id {request_id})",
    )


def _integrity_error(
    request: Request[Any, Any, Any], exc: asyncpg.IntegrityConstraintViolationError
) -> Response[Problem]:
    """A database rule refused the change. Services check input first; this is the safety net
    that keeps a missed check a clear 4xx rather than a 500."""
    constraint = getattr(exc, "constraint_name", None) or "constraint"
    if isinstance(exc, asyncpg.UniqueViolationError):
        return problem_response(
            request,
            status=409,
            code="conflict",
            title="状态冲突 (conflict)",
            detail=f"与已有数据重复 (duplicate: {constraint})",
        )
    return problem_response(
        request,
        status=400,
        code="validation_failed",
        title="输入有误 (invalid input)",
        detail=f"数据不符合规则 (violates {constraint})",
        errors=[FieldError(field=constraint, reason="数据不符合规则 (violates this rule)")],
    )


def _data_error(request: Request[Any, Any, Any], exc: asyncpg.DataError) -> Response[Problem]:
    """PostgreSQL (or asyncpg, encoding the statement) could not take a value: a number past
    bigint, an unrepresentable character. The API bounds its input first (api/params.py,
    api/request_checks.py, the msgspec models); this keeps a missed bound a clear 400, and the
    log names it so that the bound can be added where the field is declared."""
    log.warning("request %s: the database refused a value: %s", request_id_of(request), exc)
    reason = "超出数据库允许的范围 (out of the range the database accepts)"
    return problem_response(
        request,
        status=400,
        code="validation_failed",
        title="输入有误 (invalid input)",
        detail="数据超出允许范围 (a value is out of the range the database accepts)",
        errors=[FieldError(field="request", reason=reason)],
    )


def _any_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    if isinstance(exc, EmallError):
        return _emall_error(request, exc)
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return _integrity_error(request, exc)
    if isinstance(exc, asyncpg.DataError):
        return _data_error(request, exc)
    if isinstance(exc, HTTPException):
        return _http_error(request, exc)
    return _unexpected(request, exc)


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {Exception: _any_exception}


_DESCRIPTIONS = {
    400: "输入不符合本文档：错误列表逐项指出字段和原因 (the request does not match this document: each field and the reason)",
    401: "未提供或无效的凭证 (missing or invalid credentials)",
    403: "无权操作 (the principal may not do this)",
    404: "未找到，或无权查看 (not found, or not visible to this principal)",
    409: "与当前状态冲突 (conflicts with the current state)",
    412: "If-Match 与当前版本不符，请重新读取 (stale: the ETag no longer matches)",
    413: "请求体超过 2 MiB (the body is larger than 2 MiB)",
    415: "不支持的内容类型：请求体须为本操作列出的类型之一 (unsupported media type: send the body as one of this operation's content types)",
    422: "符合本文档但不符合业务规则：如代码不存在、日期早于另一日期、超过电子卖场限额、幂等键已用于不同的请求；错误列表指出字段和原因 (matches this document but a rule refuses it: an unknown region or category code, a date before another, above the e-mall ceiling, an idempotency key reused with a different body; each field and the reason)",
    428: "需要 If-Match 头 (If-Match is required)",
    429: "请求过多，见 Retry-After (throttled; see Retry-After)",
    503: "依赖的服务不可用 (a component is unavailable)",
}


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the problem responses an operation may answer.

    An operation that may refuse its input (400) may also refuse it by a rule (422); one that
    takes a body (413) also refuses a body that is not JSON (415)."""
    implied = {400: 422, 413: 415}
    statuses = tuple(sorted({*statuses, *(implied[s] for s in statuses if s in implied)}))
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=_DESCRIPTIONS[status],
            media_type=PROBLEM_JSON,
            generate_examples=False,
        )
        for status in statuses
    }
