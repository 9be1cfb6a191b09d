"""Settings: one Struct tree, loaded once from the environment and passed explicitly.

Nothing here is read at import time. ``load_settings(os.environ)`` is called by the entry
points (the ``emall`` command, the tests) and the result is handed down. A bad value stops
start-up with a ``SettingsError`` that names the variable and what was expected.

Variables:
    DATABASE_URL              PostgreSQL DSN; unset means the embedded server under the state dir.
    MEILI_URL                 Meilisearch URL; unset means a child process under the state dir.
    MEILI_MASTER_KEY          key for MEILI_URL (required with it).
    MEILI_BIN                 path of a meilisearch binary to run when MEILI_URL is unset.
    MEILI_MAX_INDEXING_MEMORY --max-indexing-memory of that child process (1GiB; "default"
                              leaves Meilisearch's own, two thirds of the RAM, which makes
                              small writes wait seconds). Set it on a MEILI_URL server too.
    EMALL_STATE_DIR           where embedded data, keys and pid files live (default ./.emall).
    EMALL_ENV                 development | production.
    EMALL_HOST, EMALL_PORT    where `emall serve` listens (127.0.0.1:8000).
    EMALL_JWT_SECRET          HS256 secret (>= 32 bytes); generated into the state dir in dev.
    EMALL_TOKEN_TTL_SECONDS   lifetime of a bearer token (3600).
    EMALL_LOGIN_MAX_FAILURES  login attempts per username and client address before that
                              address is refused for the rest of the window (5).
    EMALL_LOGIN_WINDOW_SECONDS  window in which attempts count, and the lock-out time (300).
    EMALL_LOGIN_SLOW_AFTER    password checks per username, from every address, after which
                              each further check waits a doubling delay (20).
    EMALL_LOGIN_MAX_DELAY_SECONDS  the cap of that delay (60); see emall.identity.throttle.
    EMALL_PRINCIPAL_CACHE_SECONDS  how long a process keeps a checked credential's principal
                              (60; 0 turns the cache off). Changes to users, keys, organisations
                              and partnerships empty it at once.
    EMALL_DB_POOL_MIN, EMALL_DB_POOL_MAX  asyncpg pool size (2, 10).
    EMALL_SEARCH_INDEX_PREFIX prefix of every Meilisearch index name (emall).
    EMALL_WORKER              run the outbox worker inside `emall serve` (true).
    EMALL_LOG_LEVEL           DEBUG | INFO | WARNING | ERROR (INFO).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal, TypeVar, cast

from emall.structs import FrozenStruct

T = TypeVar("T")

# Meilisearch 1.21 spends time in every indexing batch that grows with --max-indexing-memory,
# outside all of its traced steps: with its default (two thirds of 24 GiB here) a batch of one
# document took up to 1.9 s, and a change written at 100/s took p99 2.2 s to become searchable;
# with 1 GiB, p99 95 ms, and loading 85,812 documents took no longer (31 s against 35 s).
# The sync lag benchmark (benchmarks/RESULTS.md) measures it.
DEFAULT_MAX_INDEXING_MEMORY = "1GiB"

Environment = Literal["development", "production"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class SettingsError(Exception):
    """A variable in the environment has a value emall cannot use."""

    def __init__(self, variable: str, expected: str, got: str | None) -> None:
        self.variable = variable
        shown = "unset" if got is None else repr(got)
        super().__init__(f"{variable}: expected {expected}, got {shown}")


class DatabaseSettings(FrozenStruct, frozen=True):
    url: str | None = None
    pool_min: int = 2
    pool_max: int = 10


class SearchSettings(FrozenStruct, frozen=True):
    url: str | None = None
    master_key: str | None = None
    meili_bin: str | None = None
    index_prefix: str = "emall"
    # --max-indexing-memory of the embedded Meilisearch; None: Meilisearch's own default
    max_indexing_memory: str | None = DEFAULT_MAX_INDEXING_MEMORY


class AuthSettings(FrozenStruct, frozen=True):
    jwt_secret: str
    token_ttl_seconds: int = 3600
    login_max_failures: int = 5
    login_window_seconds: int = 300
    login_slow_after: int = 20
    login_max_delay_seconds: int = 60
    principal_cache_seconds: int = 60  # 0: read the principal from the database every time


class ServerSettings(FrozenStruct, frozen=True):
    host: str = "127.0.0.1"
    port: int = 8000
    run_worker: bool = True


class Settings(FrozenStruct, frozen=True):
    environment: Environment
    state_dir: Path
    log_level: LogLevel
    database: DatabaseSettings
    search: SearchSettings
    auth: AuthSettings
    server: ServerSettings

    @property
    def embedded_postgres(self) -> bool:
        return self.database.url is None

    @property
    def embedded_meilisearch(self) -> bool:
        return self.search.url is None


def _text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def _parsed(
    env: Mapping[str, str], name: str, default: T, parse: Callable[[str], T], expected: str
) -> T:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        return parse(raw)
    except ValueError:
        raise SettingsError(name, expected, raw) from None


def _int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if not low <= value <= high:
            raise ValueError(raw)
        return value

    return parse


def _bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(raw)


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in choices:
            raise ValueError(raw)
        return raw

    return parse


def _url(*schemes: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        scheme, sep, rest = raw.partition("://")
        if not sep or scheme not in schemes or not rest:
            raise ValueError(raw)
        return raw

    return parse


def _jwt_secret(env: Mapping[str, str], state_dir: Path, environment: str) -> str:
    secret = _text(env, "EMALL_JWT_SECRET")
    if secret is not None:
        if len(secret.encode()) < 32:
            raise SettingsError("EMALL_JWT_SECRET", "a secret of at least 32 bytes", "<hidden>")
        return secret
    if environment == "production":
        raise SettingsError("EMALL_JWT_SECRET", "a secret of at least 32 bytes in production", None)
    # Development: a secret generated once and kept in the state dir, so tokens survive restarts.
    path = state_dir / "jwt.secret"
    if path.exists():
        return path.read_text().strip()
    state_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(value)
    tmp.chmod(0o600)
    try:
        os.link(tmp, path)  # first writer wins; a concurrent starter reads the winner's secret
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text().strip()


def load_settings(env: Mapping[str, str], *, cwd: Path | None = None) -> Settings:
    """Build the settings from an environment mapping (normally ``os.environ``)."""
    base = cwd or Path.cwd()
    environment = _parsed(
        env,
        "EMALL_ENV",
        "development",
        _choice("development", "production"),
        "development or production",
    )
    state_dir = Path(_text(env, "EMALL_STATE_DIR") or base / ".emall").resolve()

    database_url = _parsed(
        env, "DATABASE_URL", None, _url("postgres", "postgresql"), "a postgresql:// URL"
    )
    meili_url = _parsed(env, "MEILI_URL", None, _url("http", "https"), "an http(s):// URL")
    meili_key = _text(env, "MEILI_MASTER_KEY")
    if meili_url is not None and meili_key is None:
        raise SettingsError("MEILI_MASTER_KEY", "the master key of the server at MEILI_URL", None)
    meili_bin = _text(env, "MEILI_BIN")
    indexing_memory = _parsed(
        env,
        "MEILI_MAX_INDEXING_MEMORY",
        DEFAULT_MAX_INDEXING_MEMORY,
        _regex_parser(r"default|[1-9][0-9]{0,15} ?(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)?"),
        "a size such as 1GiB or 512MiB, or default",
    )

    pool_min = _parsed(env, "EMALL_DB_POOL_MIN", 2, _int_between(0, 500), "an integer 0-500")
    pool_max = _parsed(env, "EMALL_DB_POOL_MAX", 10, _int_between(1, 500), "an integer 1-500")
    if pool_max < pool_min:
        raise SettingsError(
            "EMALL_DB_POOL_MAX", f"at least EMALL_DB_POOL_MIN ({pool_min})", str(pool_max)
        )

    prefix = _parsed(
        env,
        "EMALL_SEARCH_INDEX_PREFIX",
        "emall",
        _regex_parser(r"[a-z][a-z0-9_]{0,30}"),
        "lowercase letters, digits and _ (starting with a letter, at most 31)",
    )

    return Settings(
        environment=cast(Environment, environment),
        state_dir=state_dir,
        log_level=cast(
            LogLevel,
            _parsed(
                env,
                "EMALL_LOG_LEVEL",
                "INFO",
                _choice("DEBUG", "INFO", "WARNING", "ERROR"),
                "DEBUG, INFO, WARNING or ERROR",
            ),
        ),
        database=DatabaseSettings(url=database_url, pool_min=pool_min, pool_max=pool_max),
        search=SearchSettings(
            url=meili_url,
            master_key=meili_key,
            meili_bin=meili_bin,
            index_prefix=prefix,
            max_indexing_memory=None if indexing_memory == "default" else indexing_memory,
        ),
        auth=AuthSettings(
            jwt_secret=_jwt_secret(env, state_dir, environment),
            token_ttl_seconds=_parsed(
                env,
                "EMALL_TOKEN_TTL_SECONDS",
                3600,
                _int_between(1, 86400 * 30),
                "a number of seconds from 1 to 2592000",
            ),
            login_max_failures=_parsed(
                env, "EMALL_LOGIN_MAX_FAILURES", 5, _int_between(1, 1000), "an integer 1-1000"
            ),
            login_window_seconds=_parsed(
                env,
                "EMALL_LOGIN_WINDOW_SECONDS",
                300,
                _int_between(1, 86400),
                "a number of seconds from 1 to 86400",
            ),
            login_slow_after=_parsed(
                env, "EMALL_LOGIN_SLOW_AFTER", 20, _int_between(1, 100000), "an integer 1-100000"
            ),
            login_max_delay_seconds=_parsed(
                env,
                "EMALL_LOGIN_MAX_DELAY_SECONDS",
                60,
                _int_between(1, 3600),
                "a number of seconds from 1 to 3600",
            ),
            principal_cache_seconds=_parsed(
                env,
                "EMALL_PRINCIPAL_CACHE_SECONDS",
                60,
                _int_between(0, 3600),
                "a number of seconds from 0 to 3600",
            ),
        ),
        server=ServerSettings(
            host=_text(env, "EMALL_HOST") or "127.0.0.1",
            port=_parsed(env, "EMALL_PORT", 8000, _int_between(1, 65535), "a port 1-65535"),
            run_worker=_parsed(env, "EMALL_WORKER", True, _bool, "true or false"),
        ),
    )


def _regex_parser(pattern: str) -> Callable[[str], str]:
    compiled = re.compile(pattern)

    def parse(raw: str) -> str:
        if not compiled.fullmatch(raw):
            raise ValueError(raw)
        return raw

    return parse
