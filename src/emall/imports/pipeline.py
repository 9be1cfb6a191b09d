"""Checking the rows of a file and saving them at the same time.

Checking rows is Python work (parsing, msgspec conversion, templates, repeated SKUs and
products); saving them is PostgreSQL work. ``check_and_save`` overlaps the two, one on each
core: rows are read, checked and staged one by one, ``CHUNK_ROWS`` at a time, in a worker thread
(``asyncio.to_thread``), in file order, and the staged rows are saved in batches of about
``SAVE_BATCH`` rows by a task on the event loop, so that while PostgreSQL applies one batch the
thread checks the next. One batch is saved at a time and at most one more waits for it.

Each row is staged as soon as it is checked, into records the garbage collector does not track,
so that the rows in flight stay young: a chunk of parsed rows kept alive would be promoted to
the oldest generation and set off full collections of the whole process, again and again.

Every batch is saved by one ``FileSaver``, on its connection, inside the caller's transaction;
``report`` (awaited after every chunk) writes the progress on another one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from itertools import islice
from typing import Any

from emall.imports.models import RowError
from emall.imports.parse import ParseError
from emall.imports.save import FileSaver, Staged
from emall.imports.validate import FileChecker

CHUNK_ROWS = 1_000  # rows checked at a time, and how often progress is reported
SAVE_BATCH = 10_000  # valid rows saved at a time

Rows = Iterator[tuple[int, dict[str, Any] | ParseError]]
Report = Callable[[int], Awaitable[None]]


def _check_chunk(checker: FileChecker, rows: Rows, staged: Staged, errors: list[RowError]) -> int:
    """Check the next chunk of rows into ``staged`` and ``errors``; the number of rows read
    (0 at the end of the file)."""
    read = 0
    for number, raw in islice(rows, CHUNK_ROWS):
        read += 1
        checked = checker.check(number, raw)
        if isinstance(checked, list):
            errors.extend(checked)
        else:
            staged.add(number, checked)
    return read


async def check_and_save(
    checker: FileChecker, saver: FileSaver, rows: Rows, report: Report
) -> tuple[int, list[RowError]]:
    """Check every row and save the valid ones with ``saver``; the number of rows read and the
    errors of the rows refused by the check, in row order (the rows the saver refuses are in
    ``saver.result``). ``report(rows_read)`` is awaited after every chunk."""
    processed = 0
    errors: list[RowError] = []
    batch = Staged()
    saving: asyncio.Task[None] | None = None
    try:
        while read := await asyncio.to_thread(_check_chunk, checker, rows, batch, errors):
            processed += read
            await report(processed)
            if saving is not None and saving.done():
                saving.result()  # a batch that failed ends the job now
            if len(batch.rows) >= SAVE_BATCH:
                if saving is not None:
                    await saving
                saving = asyncio.create_task(saver.save(batch))
                batch = Staged()
        if saving is not None:
            await saving
        await saver.save(batch)
    finally:
        if saving is not None and not saving.done():
            saving.cancel()  # the job failed: the caller's transaction rolls back
            await asyncio.wait([saving])
        if saving is not None and not saving.cancelled():
            saving.exception()  # retrieved: the failure that matters is already on its way
    return processed, errors
