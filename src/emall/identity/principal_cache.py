"""A process's cache of principals, so that a request need not read its principal from
PostgreSQL every time.

* An entry maps a credential (the bearer token or API key exactly as sent, after it was checked
  once) to its principal. It lives at most ``ttl_seconds``, and never past the token's or the
  key's own expiry.
* Every change that can alter a principal empties the affected entries at once:
  - triggers on ``users``, ``api_keys``, ``organisations`` and ``partnership_members``
    (migration 0008) NOTIFY ``emall_principal`` with a user id, or ``*`` for everyone, and the
    cache of every process LISTENs (``PrincipalCache.listen``);
  - the services that make such changes also call ``invalidate`` in their own process, so that
    the very next request there sees the change even before the notification arrives.
* A lookup that ran while an invalidation happened is not stored (``generation``): it may have
  read the row before the change committed.
* While the LISTEN connection is down (PostgreSQL restarting, not yet started), the cache is
  empty and unused: every request reads the database, as without a cache.

What the TTL still bounds: the date-dependent part of a principal (an auditor's partnership
regions on a day a member joins or leaves), and an API key's ``last_used_at``, written at a
cache miss at most once a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from emall.db.pool import CONNECT_TIMEOUT_SECONDS
from emall.principals import Principal

log = logging.getLogger("emall.identity")

CHANNEL = "emall_principal"
EVERYONE = "*"

_LIVE: weakref.WeakSet[PrincipalCache] = weakref.WeakSet()


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    until: float  # time.monotonic()


class PrincipalCache:
    def __init__(self, *, ttl_seconds: float = 60.0, max_entries: int = 10_000) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.generation = 0
        self.listening = False
        self._entries: dict[str, _Entry] = {}
        _LIVE.add(self)

    @property
    def enabled(self) -> bool:
        return self.listening and self.ttl_seconds > 0

    def get(self, credential: str) -> Principal | None:
        entry = self._entries.get(credential)
        if entry is None:
            return None
        if entry.until <= time.monotonic():
            self._entries.pop(credential, None)
            return None
        return entry.principal

    def put(
        self, credential: str, principal: Principal, *, expires_in: float | None, generation: int
    ) -> None:
        """Keep ``principal`` for ``credential``, unless an invalidation happened since
        ``generation`` was read or the cache is not in use."""
        if not self.enabled or generation != self.generation:
            return
        lifetime = self.ttl_seconds if expires_in is None else min(self.ttl_seconds, expires_in)
        if lifetime <= 0:
            return
        if len(self._entries) >= self.max_entries:  # drop the oldest (insertion order)
            self._entries.pop(next(iter(self._entries)))
        self._entries[credential] = _Entry(principal, time.monotonic() + lifetime)

    def invalidate(self, user_id: int | None = None) -> None:
        """Drop the entries of ``user_id`` (tokens and API keys), or all of them."""
        self.generation += 1
        if user_id is None:
            self._entries.clear()
            return
        stale = [k for k, e in self._entries.items() if e.principal.user_id == user_id]
        for key in stale:
            del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        if isinstance(payload, str) and payload.isdigit():
            self.invalidate(int(payload))
        else:
            self.invalidate()

    async def listen(self, dsn: str, stop: asyncio.Event, *, retry_seconds: float = 1.0) -> None:
        """Hold a connection of its own (not one of the pool's, which serve requests) that
        LISTENs for changes until ``stop`` is set; the cache is in use only while it does. A
        lost connection is replaced once the server is back."""
        while not stop.is_set():
            lost = asyncio.Event()
            try:
                conn = await asyncpg.connect(
                    dsn,
                    timeout=CONNECT_TIMEOUT_SECONDS,
                    server_settings={"application_name": "emall-principal-cache"},
                )
            except Exception as exc:
                log.info("principal cache cannot listen yet: %r", exc)
                await _wait(stop, retry_seconds)
                continue
            try:
                conn.add_termination_listener(_setter(lost))
                await conn.add_listener(CHANNEL, self._notified)
                self.invalidate()  # changes may have been missed while nobody listened
                self.listening = True
                waiters = [asyncio.ensure_future(lost.wait()), asyncio.ensure_future(stop.wait())]
                try:
                    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waiters:
                        waiter.cancel()
            except Exception as exc:
                log.info("principal cache stopped listening: %r", exc)
            finally:
                self.listening = False
                self.invalidate()
                await _close(conn)
            if not stop.is_set():
                await _wait(stop, retry_seconds)


async def _close(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    try:
        await asyncio.wait_for(conn.close(), timeout=CONNECT_TIMEOUT_SECONDS)
    except Exception as exc:  # the connection is already gone
        log.info("principal cache listener already closed: %r", exc)
        conn.terminate()


def _setter(event: asyncio.Event) -> Callable[..., None]:
    return lambda *_: event.set()


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def invalidate(user_id: int | None = None) -> None:
    """Tell every cache of this process that ``user_id``'s principal (or everyone's) changed.
    Called by the services that change one, inside their transaction; the NOTIFY of the
    database's triggers reaches the other processes when it commits."""
    for cache in list(_LIVE):
        cache.invalidate(user_id)
