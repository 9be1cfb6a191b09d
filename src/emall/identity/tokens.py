"""Bearer tokens (JWT, HS256) and API-key secrets.

A token carries only the user id and its expiry; the principal is read from the database (or
from ``principal_cache``, which every change to a principal empties at once), so that a
deactivated user's token stops working at once.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import jwt

from emall.errors import NotAuthenticated

_ISSUER = "emall"
_ALGORITHM = "HS256"
API_KEY_MARK = "emk"


def issue_token(user_id: int, *, secret: str, ttl_seconds: int) -> tuple[str, datetime]:
    now = datetime.now(UTC)
    expires_at = now + timedelta(seconds=ttl_seconds)
    claims = {
        "sub": str(user_id),
        "iss": _ISSUER,
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm=_ALGORITHM), expires_at


def read_token(token: str, *, secret: str) -> int:
    """The user id a valid, unexpired token names; NotAuthenticated otherwise."""
    return read_token_claims(token, secret=secret)[0]


def read_token_claims(token: str, *, secret: str) -> tuple[int, int]:
    """(user id, expiry as a Unix time) of a valid, unexpired token; NotAuthenticated
    otherwise."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            issuer=_ISSUER,
            options={"require": ["sub", "exp", "iat", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise NotAuthenticated("登录已过期，请重新登录 (token expired)") from None
    except jwt.InvalidTokenError:
        raise NotAuthenticated("无效的访问令牌 (invalid token)") from None
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.isdigit():
        raise NotAuthenticated("无效的访问令牌 (invalid token)")
    return int(sub), int(claims["exp"])


def new_api_key() -> tuple[str, str, bytes]:
    """A new key as (full key shown once, prefix, sha256 of the secret part)."""
    prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    return f"{API_KEY_MARK}_{prefix}_{secret}", prefix, hashlib.sha256(secret.encode()).digest()


def split_api_key(key: str) -> tuple[str, bytes] | None:
    """(prefix, sha256 of secret) of a well-formed key, or None."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_MARK or len(parts[1]) != 8 or not parts[2]:
        return None
    return parts[1], hashlib.sha256(parts[2].encode()).digest()


def looks_like_api_key(credential: str) -> bool:
    return credential.startswith(API_KEY_MARK + "_")


def secrets_equal(a: bytes, b: bytes) -> bool:
    return secrets.compare_digest(a, b)
