"""Settings come from the environment once; a bad value names its variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from emall.settings import SettingsError, load_settings


def test_defaults_are_embedded(tmp_path: Path) -> None:
    settings = load_settings({}, cwd=tmp_path)
    assert settings.embedded_postgres
    assert settings.embedded_meilisearch
    assert settings.state_dir == (tmp_path / ".emall").resolve()
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8000)
    assert settings.environment == "development"


def test_external_servers_are_used_when_all_three_are_set(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "DATABASE_URL": "postgresql://u:p@db.example:5432/emall",
            "MEILI_URL": "http://127.0.0.1:7700",
            "MEILI_MASTER_KEY": "k" * 16,
        },
        cwd=tmp_path,
    )
    assert not settings.embedded_postgres
    assert not settings.embedded_meilisearch
    assert settings.search.master_key == "k" * 16


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("EMALL_PORT", "eighty", "a port 1-65535"),
        ("EMALL_PORT", "70000", "a port 1-65535"),
        ("DATABASE_URL", "mysql://x/y", "a postgresql:// URL"),
        ("MEILI_URL", "localhost:7700", "an http(s):// URL"),
        ("EMALL_ENV", "staging", "development or production"),
        ("EMALL_WORKER", "maybe", "true or false"),
        ("EMALL_LOG_LEVEL", "LOUD", "DEBUG, INFO, WARNING or ERROR"),
        ("EMALL_SEARCH_INDEX_PREFIX", "Bad-Prefix", "lowercase letters"),
        ("EMALL_JWT_SECRET", "short", "at least 32 bytes"),
        ("MEILI_MAX_INDEXING_MEMORY", "lots", "a size such as 1GiB"),
        ("MEILI_MAX_INDEXING_MEMORY", "0GiB", "a size such as 1GiB"),
        ("MEILI_MAX_INDEXING_MEMORY", "1GiB; rm -rf /", "a size such as 1GiB"),
    ],
)
def test_bad_value_names_the_variable(
    tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    env = {variable: value}
    if variable == "MEILI_URL":
        env["MEILI_MASTER_KEY"] = "k" * 16
    with pytest.raises(SettingsError) as caught:
        load_settings(env, cwd=tmp_path)
    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable}: expected")
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    ("value", "expected"), [(None, "1GiB"), ("512 MiB", "512 MiB"), ("default", None)]
)
def test_meilisearch_indexing_memory(
    tmp_path: Path, value: str | None, expected: str | None
) -> None:
    env = {} if value is None else {"MEILI_MAX_INDEXING_MEMORY": value}
    assert load_settings(env, cwd=tmp_path).search.max_indexing_memory == expected


def test_meili_url_needs_its_key(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"MEILI_URL": "http://127.0.0.1:7700"}, cwd=tmp_path)
    assert caught.value.variable == "MEILI_MASTER_KEY"


def test_production_requires_a_jwt_secret(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"EMALL_ENV": "production"}, cwd=tmp_path)
    assert caught.value.variable == "EMALL_JWT_SECRET"


def test_development_jwt_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = load_settings({}, cwd=tmp_path).auth.jwt_secret
    second = load_settings({}, cwd=tmp_path).auth.jwt_secret
    assert first == second
    assert len(first) >= 32
    assert (tmp_path / ".emall" / "jwt.secret").stat().st_mode & 0o077 == 0


def test_pool_bounds_are_checked_together(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"EMALL_DB_POOL_MIN": "8", "EMALL_DB_POOL_MAX": "4"}, cwd=tmp_path)
    assert caught.value.variable == "EMALL_DB_POOL_MAX"


def test_external_servers_start_nothing(tmp_path: Path) -> None:
    from emall.embedded.services import start_services

    settings = load_settings(
        {
            "DATABASE_URL": "postgresql://u:p@127.0.0.1:1/emall",
            "MEILI_URL": "http://127.0.0.1:1",
            "MEILI_MASTER_KEY": "k" * 16,
        },
        cwd=tmp_path,
    )
    with start_services(settings) as services:
        assert services.settings.database.url == "postgresql://u:p@127.0.0.1:1/emall"
        assert services.settings.search.url == "http://127.0.0.1:1"
        assert services.meili is None
    # nothing was started, so nothing was laid down in the state dir
    assert not (tmp_path / ".emall" / "pg").exists()
    assert not (tmp_path / ".emall" / "meili").exists()
