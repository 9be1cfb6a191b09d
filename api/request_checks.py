"""Checks every request's input passes before a route sees it.

A JSON body must come as JSON: any other content type is refused with 415, so that a body is
never read as something its sender did not say it was.

PostgreSQL text cannot hold a NUL character, bytes that are not UTF-8 are not text, and JSON
nested hundreds of levels deep exists only to exhaust a parser. Each is refused here as invalid
input, a 400 naming the field, so that no route has to remember the check and none of it reaches
the database or the search index. (Left alone, each became a 500: msgspec raises
UnicodeDecodeError and RecursionError, which Litestar does not turn into a 400, and PostgreSQL
refuses a NUL only when the statement runs.)
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

from litestar import Request
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_415_UNSUPPORTED_MEDIA_TYPE

# emall's bodies nest a few levels (an order's lines, an offer's specs); 32 leaves room
MAX_JSON_DEPTH = 32


def _invalid(field: str, reason: str, source: str | None = None) -> ValidationException:
    extra: dict[str, Any] = {"key": field, "message": reason}
    if source is not None:
        extra["source"] = source
    return ValidationException(detail=f"{field}: {reason}", extra=[extra])


_NUL = "不能包含 NUL 字符 (must not contain a NUL character)"


def _check_json(value: Any) -> None:
    """Refuse NUL in any string or key, and nesting past MAX_JSON_DEPTH (iteratively)."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise _invalid(
                "body", f"JSON 嵌套过深 (JSON nested deeper than {MAX_JSON_DEPTH} levels)"
            )
        if isinstance(item, str):
            if "\x00" in item:
                raise _invalid(path or "body", _NUL)
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{path}.{key}" if path else str(key)
                if "\x00" in str(key):
                    raise _invalid(path or "body", _NUL)
                stack.append((child, child_path, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{i}]", depth + 1) for i, child in enumerate(item))


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def require_media_type(request: Request[Any, Any, Any], allowed: tuple[str, ...]) -> str:
    """The request's media type, which must be one of ``allowed``; else 415 naming them."""
    media_type = request.content_type[0].lower()
    if media_type in allowed:
        return media_type
    sent = media_type or "(none)"
    raise HTTPException(
        status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        detail=f"不支持的内容类型 {sent}，请求体须为 {' 或 '.join(allowed)} "
        f"(unsupported media type {sent}: send the body as {' or '.join(allowed)})",
    )


class CheckedRequest(Request[Any, Any, Any]):
    """Litestar's request, with its JSON body checked as it is decoded: it must be sent as
    JSON, hold no NUL and not nest too deep."""

    async def json(self) -> Any:
        if not _is_json(self.content_type[0].lower()):
            require_media_type(self, ("application/json",))
        try:
            value = await super().json()
        except UnicodeDecodeError:
            raise _invalid("body", "请求体不是有效的 UTF-8 (the body is not valid UTF-8)") from None
        except RecursionError:
            raise _invalid(
                "body", f"JSON 嵌套过深 (JSON nested deeper than {MAX_JSON_DEPTH} levels)"
            ) from None
        _check_json(value)
        return value


async def check_query_string(request: Request[Any, Any, Any]) -> None:
    """A ``before_request`` hook: every query parameter must be UTF-8 text without NUL.
    (Litestar would otherwise replace bad bytes with U+FFFD and pass a NUL on.)"""
    raw: bytes = request.scope.get("query_string", b"")
    if not raw:
        return
    for part in raw.split(b"&"):
        name_bytes, _, value_bytes = part.partition(b"=")
        name = unquote_to_bytes(name_bytes.replace(b"+", b" ")).decode("utf-8", "replace")
        for piece in (name_bytes, value_bytes):
            try:
                text = unquote_to_bytes(piece.replace(b"+", b" ")).decode("utf-8")
            except UnicodeDecodeError:
                raise _invalid(name, "不是有效的 UTF-8 (not valid UTF-8)", "query") from None
            if "\x00" in text:
                raise _invalid(name, _NUL, "query")
