"""Login throttling (登录限制): by username and client address, with a per-username slowdown.

Counting failures per username alone let anyone lock any user out for the whole window by
sending wrong passwords under that name. Two counters now decide, each over the settings'
window (``EMALL_LOGIN_WINDOW_SECONDS``, 300 s):

* **Per username and client address** (``login_throttle``): every attempt from one address for
  one username counts; past ``EMALL_LOGIN_MAX_FAILURES`` (5) that address alone is refused with
  429 and ``Retry-After`` until its window ends, whatever the password. The user logs in from
  any other address as usual.
* **Per username, from every address** (``login_slowdown``): every password check counts; past
  ``EMALL_LOGIN_SLOW_AFTER`` (20) checks each further check must wait a delay that doubles per
  check, from 1 s up to ``EMALL_LOGIN_MAX_DELAY_SECONDS`` (60 s). An attempt inside the delay
  is refused with 429 and ``Retry-After`` and is not counted anywhere, so it neither lengthens
  the delay nor counts against its own address. Guessing from many addresses is slowed to one
  check a minute at most, and the user is never locked out: a check is always at most a
  delay away.

A successful login clears its own address's counter and the username's slowdown; other
addresses' counters stay until their windows end. The client address is what the API saw
(behind a reverse proxy, uvicorn takes it from ``X-Forwarded-For`` when the proxy's address is
in ``FORWARDED_ALLOW_IPS``); a caller that knows none passes ``None``, which counts as one
address of its own.

The decisions are the pure functions below; ``admit`` fetches the counters, asks them and
stores the outcome, in one transaction that holds the username's slowdown row, so concurrent
attempts for one username are counted one after another and exactly.
"""

from __future__ import annotations

import math

from emall.db.pool import Pool
from emall.errors import TooManyAttempts
from emall.settings import AuthSettings

_REFUSED = "登录尝试过于频繁，请稍后再试 (too many login attempts; try again later)"
UNKNOWN_ADDRESS = "unknown"


def check_delay_seconds(checked: int, slow_after: int, max_delay_seconds: int) -> float:
    """How long the next check of a username must wait after ``checked`` checks in the
    window: none up to ``slow_after``, then 1 s doubling per further check, at most the cap."""
    beyond = checked - slow_after
    if beyond < 0:
        return 0.0
    return float(min(2 ** min(beyond, 32), max_delay_seconds))


def address_refused(attempts: int, max_failures: int) -> bool:
    """Whether an address has used up its attempts for a username (this one counted)."""
    return attempts > max_failures


def retry_after(seconds: float) -> int:
    """A ``Retry-After`` in whole seconds that is never early and never 0."""
    return max(1, math.ceil(seconds))


# Opens (or renews, once its window has ended) the username's slowdown row and locks it.
# $1 username, $2 the window in seconds.
_OPEN_SLOWDOWN = """
insert into login_slowdown as s (username) values ($1)
on conflict (username) do update set
    checked = case when s.window_started_at < now() - make_interval(secs => $2)
                   then 0 else s.checked end,
    next_check_at = case when s.window_started_at < now() - make_interval(secs => $2)
                         then now() else s.next_check_at end,
    window_started_at = case when s.window_started_at < now() - make_interval(secs => $2)
                             then now() else s.window_started_at end
returning checked, greatest(extract(epoch from s.next_check_at - now()), 0)::float8 as wait
"""

# Counts one attempt of an address. $1 username, $2 address, $3 the window in seconds.
_COUNT_ADDRESS = """
insert into login_throttle as t (username, client_address, failures, window_started_at)
values ($1, $2, 1, now())
on conflict (username, client_address) do update set
    failures = case when t.window_started_at < now() - make_interval(secs => $3)
                    then 1 else t.failures + 1 end,
    window_started_at = case when t.window_started_at < now() - make_interval(secs => $3)
                             then now() else t.window_started_at end
returning failures,
          extract(epoch from t.window_started_at + make_interval(secs => $3) - now())::float8
              as window_left
"""

# Counts one check of the username. $1 username, $2 the delay before the next check in seconds.
_COUNT_CHECK = """
update login_slowdown
set checked = checked + 1, next_check_at = now() + make_interval(secs => $2)
where username = $1
"""


async def admit(pool: Pool, username: str, address: str | None, settings: AuthSettings) -> None:
    """Count this attempt before its password is checked, or refuse it (``TooManyAttempts``)."""
    window = float(settings.login_window_seconds)
    refusal: float | None = None
    async with pool.acquire() as conn, conn.transaction():
        slowdown = await conn.fetchrow(_OPEN_SLOWDOWN, username, window)
        assert slowdown is not None
        if slowdown["wait"] > 0:
            refusal = slowdown["wait"]
        else:
            counted = await conn.fetchrow(
                _COUNT_ADDRESS, username, address or UNKNOWN_ADDRESS, window
            )
            assert counted is not None
            if address_refused(counted["failures"], settings.login_max_failures):
                refusal = counted["window_left"]
            else:
                delay = check_delay_seconds(
                    slowdown["checked"] + 1,
                    settings.login_slow_after,
                    settings.login_max_delay_seconds,
                )
                await conn.execute(_COUNT_CHECK, username, delay)
    if refusal is not None:
        raise TooManyAttempts(_REFUSED, retry_after_seconds=retry_after(refusal))


async def clear(pool: Pool, username: str, address: str | None) -> None:
    """A successful login: its address's counter and the username's slowdown start afresh."""
    await pool.execute(
        "with a as (delete from login_throttle where username = $1 and client_address = $2) "
        "delete from login_slowdown where username = $1",
        username,
        address or UNKNOWN_ADDRESS,
    )
