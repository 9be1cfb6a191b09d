"""The outbox: rows written with each change, consumed after commit by the worker."""
