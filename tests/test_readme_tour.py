"""The README's tour, run as a newcomer would run it, so that it cannot drift from the API.

``bin/dev tour`` takes the README's one ```` ```bash tour ```` block and runs it with bash, curl
and jq against the server at ``EMALL_URL``: here the app behind uvicorn on 127.0.0.1 with its
outbox worker (as ``emall serve --demo`` runs it) on a fresh copy of the demo database, whose
listings have reached the search index. Every curl of the tour fails on an HTTP error and the
script stops at the first failure; what each step printed is checked against the database.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from api.app import create_app
from emall.db.pool import Pool
from tests.drills_support import served
from tests.helpers import make_settings
from tests.test_search_api import drain

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TOUR_BLOCK = re.compile(r"^```bash tour\n(.*?)^```$", re.S | re.M)


def readme_tour() -> str:
    blocks = TOUR_BLOCK.findall(README.read_text())
    assert len(blocks) == 1, f"README.md must have exactly one ```bash tour block: {len(blocks)}"
    tour: str = blocks[0]
    return tour


def test_the_tour_sets_what_it_uses() -> None:
    """The token is set before it is used, and so is every other variable (bash -u checks it
    too when the tour runs)."""
    tour = readme_tour()
    assigned: set[str] = set()
    for line in tour.splitlines():
        if line.lstrip().startswith("#"):
            continue
        for name in re.findall(r"\$\{?([A-Z_]+)", line):
            assert name in assigned or name in {"EMALL_URL", "RANDOM"}, (
                f"${name} is used before set"
            )
        if match := re.match(r"([A-Z_]+)=", line):
            assigned.add(match.group(1))
    assert "TOKEN" in assigned


async def _run_tour(base_url: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        str(ROOT / "bin" / "dev"),
        "tour",
        cwd=ROOT,
        env={**os.environ, "EMALL_URL": base_url},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 180)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_readme_tour_places_an_order(
    database_url: str, meili: tuple[str, str], tmp_path: Path, pool: Pool
) -> None:
    for tool in ("bash", "curl", "jq"):
        assert shutil.which(tool), f"the README's tour needs {tool}"
    settings = make_settings(database_url, *meili, tmp_path)
    assert await drain(pool, settings) > 0  # the demo listings reach the index, as at serve
    async with served(create_app(settings, run_worker=True)) as base:
        status, out, err = await _run_tour(base)
    assert status == 0, f"the tour stopped with {status}:\n{out}\n{err}"

    lines = out.splitlines()
    records: list[dict[str, Any]] = [json.loads(x) for x in lines if x.startswith("{")]
    me = records[0]
    assert me["username"] == "nj_buyer"
    hits = [r for r in records if "offer_id" in r and "title" in r]
    assert hits, f"the search found nothing:\n{out}"
    offer_id = hits[0]["offer_id"]

    minimum = await pool.fetchval("select min_order_qty from offers where id = $1", offer_id)
    assert f"offer {offer_id}: at least {minimum}" in lines
    (cart,) = [r for r in records if "items" in r]
    assert cart["items"] == [
        {
            "offer_id": offer_id,
            "quantity": minimum,
            "line_total_fen": cart["total_fen"],
        }
    ]
    agency_lines = await pool.fetch(
        "select b.id from budget_lines b join users u on u.organisation_id = b.agency_id "
        "where u.username = 'nj_buyer' order by b.id"
    )
    listed = [r["id"] for r in records if "available_fen" in r]
    assert listed and set(listed) == {r["id"] for r in agency_lines}

    assert "checkout: HTTP 201" in err.splitlines(), err
    (checkout,) = [r for r in records if "checkout_id" in r]
    orders = await pool.fetch(
        "select o.id, o.budget_line_id, l.offer_id, l.quantity from orders o "
        "join order_lines l on l.order_id = o.id where o.checkout_id = $1",
        checkout["checkout_id"],
    )
    assert [o["id"] for o in checkout["orders"]] == [o["id"] for o in orders]
    assert [(o["budget_line_id"], o["offer_id"], o["quantity"]) for o in orders] == [
        (listed[0], offer_id, minimum)
    ]


def test_the_emall_command_runs_as_the_readme_says() -> None:
    """The README's way to the ``emall`` command works wherever ``bin/dev`` found or put uv
    (``uv run emall`` failed when uv was only in ``.emall/tools``), and lists every command the
    README's table names."""
    section = README.read_text().split("## The `emall` command", 1)[1].split("\n## ", 1)[0]
    given = re.findall(r"`(bin/dev emall --help)`", section)
    assert given, "the README's emall section names no command to list the commands"
    completed = subprocess.run(
        given[0].split(), cwd=ROOT, capture_output=True, text=True, timeout=180, check=False
    )
    assert completed.returncode == 0, completed.stderr
    for command in set(re.findall(r"^\| `emall (\w+)", section, re.M)):
        listed = re.search(rf"^\W*{command}\s", completed.stdout, re.M)
        assert listed, f"emall {command} is not listed"
