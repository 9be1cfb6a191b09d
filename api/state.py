"""The application's state, typed: the settings it was made with and what its lifespan opens.

Handlers and dependencies take ``state: AppState`` (Litestar hands them the app's state as this
class), so ``state.pool`` is a ``Pool``, not an untyped attribute. The settings are there from
the start; the lifespan sets the rest before the app serves its first request.
"""

from __future__ import annotations

from litestar.datastructures import State
from meilisearch_python_sdk import AsyncClient

from emall.db.pool import Pool
from emall.identity.principal_cache import PrincipalCache
from emall.search.index import index_uid
from emall.settings import Settings


class AppState(State):
    settings: Settings
    pool: Pool  # the database pool of every request
    search: AsyncClient  # Meilisearch, with the short timeout of requests
    principals: PrincipalCache  # resolved credentials, dropped when a user changes

    @property
    def index_uid(self) -> str:
        """The offers index this app searches."""
        return index_uid(self.settings.search.index_prefix)
