"""PostgreSQL access: the pool, transactions and the migration runner."""

from emall.db.pool import Connection, Pool, create_pool, transaction

__all__ = ["Connection", "Pool", "create_pool", "transaction"]
