"""Bulk import of offers (批量导入): a supplier's file of ``OfferRow`` rows, run as a job.

``jobs.create_job`` / ``jobs.run_job`` / ``jobs.get_job`` / ``jobs.list_jobs`` /
``jobs.list_rows`` (what a job did with each row) are the entry points; ``parse`` reads JSON
Lines and CSV, ``validate`` checks rows, ``save`` applies the valid rows of a file set-based,
batch by batch, in one transaction, ``pipeline`` checks the next batch in a thread while the
event loop saves the last, and ``outcomes`` explains the fields a matched product kept.
"""

from emall.imports.jobs import create_job, get_job, list_jobs, list_rows, run_job
from emall.imports.models import ImportJobRead, ImportRowResult, RowError

__all__ = [
    "ImportJobRead",
    "ImportRowResult",
    "RowError",
    "create_job",
    "get_job",
    "list_jobs",
    "list_rows",
    "run_job",
]
