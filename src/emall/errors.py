"""The library's own errors.

Services raise these; the HTTP layer maps each class to a status code in one place
(``api/errors.py``). Every message is written for the person who will read it: Chinese first,
with the English after it, because procurement officers read the Chinese.
"""

from __future__ import annotations

from collections.abc import Sequence

from emall.structs import FrozenStruct


class FieldError(FrozenStruct, frozen=True):
    """One field that was refused, and why."""

    field: str
    reason: str


class EmallError(Exception):
    """Base of every error the library raises on purpose."""

    code: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationFailed(EmallError):
    """Input that is well-formed but not acceptable; names each field and the reason."""

    code = "validation_failed"

    def __init__(self, errors: Sequence[FieldError], message: str | None = None) -> None:
        self.errors = list(errors)
        summary = "; ".join(f"{e.field}: {e.reason}" for e in self.errors)
        super().__init__(message or f"输入有误 (invalid input): {summary}")

    @classmethod
    def single(cls, field: str, reason: str) -> ValidationFailed:
        return cls([FieldError(field=field, reason=reason)])


class MalformedInput(ValidationFailed):
    """A body that cannot be read as what it claims to be (a file that is not UTF-8, a CSV the
    reader cannot parse): the request itself is malformed, as opposed to readable input that a
    rule refuses. Names the field and the reason like ``ValidationFailed``."""

    code = "malformed_input"


class NotAuthenticated(EmallError):
    """No credentials, or credentials that do not identify an active user."""

    code = "not_authenticated"


class PermissionDenied(EmallError):
    """The principal is known but may not do this."""

    code = "permission_denied"


class NotFound(EmallError):
    """The resource does not exist, or exists but the principal may not know that it does."""

    code = "not_found"

    def __init__(self, resource: str, key: object) -> None:
        self.resource = resource
        self.key = key
        super().__init__(f"未找到{resource} (not found): {key}")


class Conflict(EmallError):
    """The request conflicts with the current state (duplicate, illegal transition)."""

    code = "conflict"

    def __init__(
        self, message: str, *, current_state: str | None = None, existing_id: int | None = None
    ) -> None:
        self.current_state = current_state
        self.existing_id = existing_id  # e.g. the product a likely duplicate should use instead
        super().__init__(message)


class PreconditionFailed(EmallError):
    """The client's If-Match names a version that is no longer current (a stale update)."""

    code = "precondition_failed"

    def __init__(self, message: str, *, current_etag: str) -> None:
        self.current_etag = current_etag
        super().__init__(message)


class PreconditionRequired(EmallError):
    """The change needs If-Match, so that it cannot overwrite someone else's change unseen."""

    code = "precondition_required"


class TooManyAttempts(EmallError):
    """Throttled: the caller must wait before trying again."""

    code = "too_many_attempts"

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        self.retry_after_seconds = retry_after_seconds
        super().__init__(message)


class Unavailable(EmallError):
    """A component the request needs (PostgreSQL, Meilisearch) is not answering."""

    code = "unavailable"

    def __init__(self, message: str, *, components: Sequence[str] = ()) -> None:
        self.components = list(components)
        super().__init__(message)


class MigrationError(EmallError):
    """The migration files and the database disagree; nothing was applied."""

    code = "migration_error"
