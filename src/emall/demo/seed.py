"""``emall seed demo``: the demo's parties and users, then its catalogue (idempotent)."""

from __future__ import annotations

from emall.db.pool import Pool
from emall.demo.catalogue import DEMO_CATALOGUE_SIZE, seed_demo_catalogue
from emall.demo.parties import SeedReport, seed_parties


async def seed_demo(pool: Pool, *, catalogue_size: int | None = None) -> SeedReport:
    """Seed the demo; ``catalogue_size`` offers of the demo catalogue (default: the demo size)."""
    report = await seed_parties(pool)
    listed = await seed_demo_catalogue(
        pool, DEMO_CATALOGUE_SIZE if catalogue_size is None else catalogue_size
    )
    return SeedReport(report.organisations_created, report.users_created, listed)
