"""Bulk import of offers (批量导入): a supplier's file of ``OfferRow`` rows, run as a job.

``jobs.create_job`` / ``jobs.run_job`` / ``jobs.get_job`` / ``jobs.list_jobs`` are the entry
points; ``parse`` reads JSON Lines and CSV, ``validate`` checks rows, ``save`` applies the
valid rows of a file set-based, batch by batch, in one transaction, and ``pipeline`` checks
the next batch in a thread while the event loop saves the last.
"""

from emall.imports.jobs import create_job, get_job, list_jobs, run_job
from emall.imports.models import ImportJobRead, RowError

__all__ = ["ImportJobRead", "RowError", "create_job", "get_job", "list_jobs", "run_job"]
