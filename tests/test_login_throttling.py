"""Reliability drill 5: bursts against the login and against protected routes.

tests/test_identity.py covers throttling one request at a time, hand-made expired tokens and a
deactivated user's credentials; tests/test_users.py deactivation through the API. This drill
adds what only shows under load or with real time: a concurrent burst is counted exactly, the
lock-out ends when its window does, a token from the login expires after its TTL, and a burst of
bad credentials never holds a database connection.
"""

from __future__ import annotations

import gc
import logging
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.app import create_app
from emall.demo.parties import DEMO_PASSWORD
from emall.identity.throttle import address_refused, check_delay_seconds, retry_after
from tests.drills_support import served
from tests.helpers import make_settings

TOKEN = "/api/v1/auth/token"
LIMIT = 5
BURST = 40


@asynccontextmanager
async def _client(
    database_url: str, meili: tuple[str, str], tmp_path: Path, **env: str
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    settings = make_settings(database_url, meili[0], meili[1], tmp_path, **env)
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client


async def _burst(client: AsyncTestClient[Litestar], bodies: list[dict[str, str]]) -> list[int]:
    statuses: list[int] = []

    async def attempt(body: dict[str, str]) -> None:
        response = await client.post(TOKEN, json=body)
        if response.status_code == 429:
            assert response.headers["content-type"].startswith("application/problem+json")
            assert 0 < int(response.headers["retry-after"]) <= 301
        statuses.append(response.status_code)

    async with anyio.create_task_group() as tasks:
        for body in bodies:
            tasks.start_soon(attempt, body)
    return statuses


async def test_a_concurrent_burst_is_counted_exactly(
    database_url: str, meili: tuple[str, str], tmp_path: Path
) -> None:
    """Forty wrong passwords at once, under spellings of one username that differ only in
    case: the first five are checked (401), every other one is refused without a check
    (429), and so is the right password afterwards; another user logs in as usual."""
    async with _client(
        database_url, meili, tmp_path, EMALL_LOGIN_MAX_FAILURES=str(LIMIT)
    ) as client:
        spellings = ["zg_buyer", "ZG_BUYER", "Zg_Buyer", "zG_bUyEr"]
        bodies = [
            {"username": spellings[n % len(spellings)], "password": f"guess-{n}"}
            for n in range(BURST)
        ]
        statuses = Counter(await _burst(client, bodies))
        assert statuses == {401: LIMIT, 429: BURST - LIMIT}
        right = await client.post(TOKEN, json={"username": "zg_buyer", "password": DEMO_PASSWORD})
        assert right.status_code == 429
        other = await client.post(TOKEN, json={"username": "nj_buyer", "password": DEMO_PASSWORD})
        assert other.status_code == 200


async def test_the_lock_out_ends_with_its_window(
    database_url: str, meili: tuple[str, str], tmp_path: Path
) -> None:
    async with _client(
        database_url,
        meili,
        tmp_path,
        EMALL_LOGIN_MAX_FAILURES="1",
        EMALL_LOGIN_WINDOW_SECONDS="3",
    ) as client:
        wrong = await client.post(TOKEN, json={"username": "zg_buyer", "password": "wrong"})
        assert wrong.status_code == 401
        locked = await client.post(TOKEN, json={"username": "zg_buyer", "password": DEMO_PASSWORD})
        assert locked.status_code == 429
        wait = int(locked.headers["retry-after"])
        assert 0 < wait <= 4
        await anyio.sleep(wait + 0.2)
        after = await client.post(TOKEN, json={"username": "zg_buyer", "password": DEMO_PASSWORD})
        assert after.status_code == 200, after.text


async def test_a_token_from_the_login_expires_after_its_ttl(
    database_url: str, meili: tuple[str, str], tmp_path: Path
) -> None:
    async with _client(database_url, meili, tmp_path, EMALL_TOKEN_TTL_SECONDS="1") as client:
        issued = await client.post(TOKEN, json={"username": "nj_buyer", "password": DEMO_PASSWORD})
        assert issued.status_code == 200
        assert issued.json()["expires_in"] == 1
        headers = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
        await anyio.sleep(2.1)  # the expiry is whole seconds: past it for certain
        expired = await client.get("/api/v1/me", headers=headers)
        assert expired.status_code == 401
        assert "expired" in expired.json()["detail"]
        assert expired.headers["www-authenticate"].startswith("Bearer")


BAD_CREDENTIALS = (
    {},
    {"Authorization": "Bearer not-a-token"},
    {"Authorization": "Basic eDp5"},
    {"X-API-Key": "emk_00000000_forged"},
)


async def test_a_burst_of_bad_credentials_holds_no_database_connection(
    database_url: str,
    meili: tuple[str, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With a pool of two connections, refused requests one by one and eighty at once to routes that use a
    transaction (no credentials, a garbage token, a wrong scheme, a forged key): each is a 401
    and none leaves a connection checked out mid-transaction (which asyncpg reports when it
    takes the connection back), so a valid request still gets one at once."""
    async with _client(
        database_url, meili, tmp_path, EMALL_DB_POOL_MIN="1", EMALL_DB_POOL_MAX="2"
    ) as client:
        caplog.set_level(logging.ERROR)
        pool = client.app.state.pool
        statuses: list[int] = []

        async def refused(n: int) -> None:
            path = ("/api/v1/admissions", "/api/v1/offers")[n % 2]
            credentials = BAD_CREDENTIALS[n % len(BAD_CREDENTIALS)]
            statuses.append((await client.get(path, headers=credentials)).status_code)

        for n in range(8):  # one at a time, then all at once
            await refused(n)
            assert pool.get_idle_size() == pool.get_size(), "a refused request holds a connection"
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tasks:
                for n in range(80):
                    tasks.start_soon(refused, n)
        assert statuses == [401] * 88
        assert pool.get_idle_size() == pool.get_size(), "a refused request holds a connection"
        gc.collect()  # a dropped generator would give its connection back only now
        await anyio.sleep(0.1)
        assert not [r for r in caplog.records if "active transaction" in r.getMessage()]
        issued = await client.post(TOKEN, json={"username": "nj_buyer", "password": DEMO_PASSWORD})
        headers = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        with anyio.fail_after(5):
            assert (await client.get("/api/v1/admissions", headers=headers)).status_code == 200


@asynccontextmanager
async def _served(
    database_url: str, meili: tuple[str, str], tmp_path: Path, **env: str
) -> AsyncIterator[httpx.AsyncClient]:
    """The app behind uvicorn, which takes the client address from X-Forwarded-For when the
    proxy (here the test, on 127.0.0.1) is trusted, as a reverse proxy's would be."""
    settings = make_settings(database_url, meili[0], meili[1], tmp_path, **env)
    async with served(create_app(settings)) as base, httpx.AsyncClient(base_url=base) as http:
        yield http


async def _log_in(http: httpx.AsyncClient, address: str, username: str, password: str) -> int:
    response = await http.post(
        TOKEN,
        json={"username": username, "password": password},
        headers={"X-Forwarded-For": address},
    )
    if response.status_code == 429:
        assert response.headers["content-type"].startswith("application/problem+json")
    return response.status_code


async def test_wrong_passwords_from_one_address_lock_out_only_that_address(
    database_url: str, meili: tuple[str, str], tmp_path: Path
) -> None:
    """Anyone could lock any user out for five minutes by sending wrong passwords under their
    name. Now the address that sent them is refused, and the user logs in from another."""
    async with _served(database_url, meili, tmp_path, EMALL_LOGIN_MAX_FAILURES="5") as http:
        attacker, user = "203.0.113.7", "198.51.100.20"
        statuses = [await _log_in(http, attacker, "nj_buyer", f"guess-{n}") for n in range(8)]
        assert statuses == [401] * 5 + [429] * 3
        assert await _log_in(http, attacker, "nj_buyer", DEMO_PASSWORD) == 429
        assert await _log_in(http, user, "nj_buyer", DEMO_PASSWORD) == 200
        assert await _log_in(http, attacker, "nj_buyer", DEMO_PASSWORD) == 429  # still its own


async def test_checks_from_many_addresses_are_slowed_not_locked(
    database_url: str, meili: tuple[str, str], tmp_path: Path
) -> None:
    """Past the per-username ceiling every further check waits a doubling delay, answered with
    429 and Retry-After meanwhile; refused attempts neither count nor lengthen it, and after the
    delay the right password logs in: the user is slowed, never locked out."""
    async with _served(
        database_url,
        meili,
        tmp_path,
        EMALL_LOGIN_MAX_FAILURES="5",
        EMALL_LOGIN_SLOW_AFTER="3",
        EMALL_LOGIN_MAX_DELAY_SECONDS="2",
    ) as http:
        addresses = [f"192.0.2.{n}" for n in range(1, 40)]
        checked = [await _log_in(http, addresses[n], "zg_buyer", "wrong") for n in range(3)]
        assert checked == [401] * 3  # the ceiling's checks; the next one waits 1 s
        slowed = await http.post(
            TOKEN,
            json={"username": "zg_buyer", "password": "wrong"},
            headers={"X-Forwarded-For": addresses[3]},
        )
        assert slowed.status_code == 429
        assert slowed.headers["retry-after"] == "1"
        # hammering inside the delay is refused, uncounted (a few, well inside the second)
        for address in addresses[4:9]:
            assert await _log_in(http, address, "zg_buyer", DEMO_PASSWORD) == 429
        await anyio.sleep(1.1)
        assert await _log_in(http, addresses[20], "zg_buyer", "wrong") == 401  # checked: 4
        slower = await http.post(TOKEN, json={"username": "zg_buyer", "password": "x"})
        assert slower.status_code == 429 and slower.headers["retry-after"] == "2"
        await anyio.sleep(2.1)
        assert await _log_in(http, addresses[21], "zg_buyer", DEMO_PASSWORD) == 200
        # the success starts the username afresh: the ceiling's checks are free again
        assert [await _log_in(http, a, "zg_buyer", "wrong") for a in addresses[22:25]] == [401] * 3
        # another user is not slowed by any of this
        assert await _log_in(http, addresses[3], "nj_buyer", DEMO_PASSWORD) == 200


def test_the_check_delay_doubles_past_the_ceiling_up_to_its_cap() -> None:
    assert [check_delay_seconds(n, 3, 60) for n in range(0, 11)] == [
        0,
        0,
        0,
        1,
        2,
        4,
        8,
        16,
        32,
        60,
        60,
    ]
    assert check_delay_seconds(10**6, 20, 60) == 60
    assert not address_refused(5, 5) and address_refused(6, 5)
    assert retry_after(0.01) == 1 and retry_after(2.0) == 2 and retry_after(2.2) == 3
