"""The library's own errors.

Services raise these. Every error declares its ``kind`` (``ErrorKind``: invalid, not found,
conflict, forbidden, unavailable...) and, through ``details`` and ``headers``, whatever else a
caller must see; the HTTP layer maps kinds to statuses in one place (``api/problems.py``), so a
new domain's errors need no edit there. Every message is written for the person who will read
it: Chinese first, with the English after it, because procurement officers read the Chinese.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

import msgspec

from emall.structs import FrozenStruct

T = TypeVar("T")


class ErrorKind(enum.Enum):
    """What kind of refusal an error is; each maps to one HTTP status in the API."""

    MALFORMED = "malformed"  # the input cannot be read as what it claims to be
    INVALID = "invalid"  # readable, but a rule refuses it
    NOT_AUTHENTICATED = "not_authenticated"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"  # the current state does not allow it
    STALE = "stale"  # the caller's version is not the current one
    PRECONDITION_REQUIRED = "precondition_required"  # the caller must name a version
    THROTTLED = "throttled"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"  # the deployment is broken (e.g. migrations disagree)


class FieldError(FrozenStruct, frozen=True):
    """One field that was refused, and why."""

    field: str
    reason: str


class EmallError(Exception):
    """Base of every error the library raises on purpose.

    ``kind`` decides the status; ``code`` names the error in the problem's type URI; ``title``
    (when set) replaces the kind's title; ``details`` are the problem's extra members and
    ``headers`` the response's extra headers."""

    code: ClassVar[str] = "error"
    kind: ClassVar[ErrorKind] = ErrorKind.INVALID
    title: ClassVar[str | None] = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def details(self) -> dict[str, Any]:
        return {}

    def headers(self) -> dict[str, str]:
        return {}


class ValidationFailed(EmallError):
    """Input that is well-formed but not acceptable; names each field and the reason."""

    code = "validation_failed"
    kind = ErrorKind.INVALID

    def __init__(self, errors: Sequence[FieldError], message: str | None = None) -> None:
        self.errors = list(errors)
        summary = "; ".join(f"{e.field}: {e.reason}" for e in self.errors)
        super().__init__(message or f"输入有误 (invalid input): {summary}")

    def details(self) -> dict[str, Any]:
        return {"errors": self.errors}

    @classmethod
    def single(cls, field: str, reason: str) -> ValidationFailed:
        return cls([FieldError(field=field, reason=reason)])


class MalformedInput(ValidationFailed):
    """A body that cannot be read as what it claims to be (a file that is not UTF-8, a CSV the
    reader cannot parse): the request itself is malformed, as opposed to readable input that a
    rule refuses. Names the field and the reason like ``ValidationFailed``."""

    code = "malformed_input"
    kind = ErrorKind.MALFORMED


_AT = re.compile(r"^(?P<reason>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)


def convert(values: Any, type_: type[T]) -> T:
    """``values`` (plain builtins: a query's parameters, a row) as ``type_``, with every
    constraint its Structs declare checked; refused as ``MalformedInput`` naming the field by
    msgspec's path (``$.delivery[0].region_code`` names ``delivery[0].region_code``)."""
    try:
        return msgspec.convert(values, type_)
    except msgspec.ValidationError as exc:
        match = _AT.match(str(exc))
        reason = match["reason"] if match else str(exc)
        path = (match["path"] if match and match["path"] else "").lstrip(".")
        raise MalformedInput.single(
            path or "body", f"不符合接口文档 (does not match the API document): {reason}"
        ) from None


class NotAuthenticated(EmallError):
    """No credentials, or credentials that do not identify an active user."""

    code = "not_authenticated"
    kind = ErrorKind.NOT_AUTHENTICATED

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="emall"'}


class PermissionDenied(EmallError):
    """The principal is known but may not do this."""

    code = "permission_denied"
    kind = ErrorKind.FORBIDDEN


class NotFound(EmallError):
    """The resource does not exist, or exists but the principal may not know that it does."""

    code = "not_found"
    kind = ErrorKind.NOT_FOUND

    def __init__(self, resource: str, key: object) -> None:
        self.resource = resource
        self.key = key
        super().__init__(f"未找到{resource} (not found): {key}")


class Conflict(EmallError):
    """The request conflicts with the current state (duplicate, illegal transition)."""

    code = "conflict"
    kind = ErrorKind.CONFLICT

    def __init__(
        self, message: str, *, current_state: str | None = None, existing_id: int | None = None
    ) -> None:
        self.current_state = current_state
        self.existing_id = existing_id  # e.g. the product a likely duplicate should use instead
        super().__init__(message)

    def details(self) -> dict[str, Any]:
        found = {"current_state": self.current_state, "existing_id": self.existing_id}
        return {name: value for name, value in found.items() if value is not None}


class PreconditionFailed(EmallError):
    """The client's If-Match names a version that is no longer current (a stale update)."""

    code = "precondition_failed"
    kind = ErrorKind.STALE

    def __init__(self, message: str, *, current_etag: str) -> None:
        self.current_etag = current_etag
        super().__init__(message)

    def details(self) -> dict[str, Any]:
        return {"current_etag": self.current_etag}

    def headers(self) -> dict[str, str]:
        return {"ETag": self.current_etag}


class PreconditionRequired(EmallError):
    """The change needs If-Match, so that it cannot overwrite someone else's change unseen."""

    code = "precondition_required"
    kind = ErrorKind.PRECONDITION_REQUIRED


class TooManyAttempts(EmallError):
    """Throttled: the caller must wait before trying again."""

    code = "too_many_attempts"
    kind = ErrorKind.THROTTLED

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        self.retry_after_seconds = retry_after_seconds
        super().__init__(message)

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class Unavailable(EmallError):
    """A component the request needs (PostgreSQL, Meilisearch) is not answering."""

    code = "unavailable"
    kind = ErrorKind.UNAVAILABLE

    def __init__(self, message: str, *, components: Sequence[str] = ()) -> None:
        self.components = list(components)
        super().__init__(message)

    def details(self) -> dict[str, Any]:
        return {"components": self.components} if self.components else {}


class MigrationError(EmallError):
    """The migration files and the database disagree; nothing was applied."""

    code = "migration_error"
    kind = ErrorKind.INTERNAL
