"""The daemon's records (SQLite, or PostgreSQL by URL): see :mod:`lightctl.store.records` for the
whole, :mod:`lightctl.store.sql` for what a repository may ask of either database, and one module
per kind of record: ``commands``, ``observations``, ``layers`` (overrides, curtailments),
``shows``, ``federation``."""

from lightctl.store.commands import CommandRecord, ResultRecord, ResultRow
from lightctl.store.errors import StoreError, StoreTooNew, StoreWriteFailed
from lightctl.store.health import StoreHealth
from lightctl.store.records import Store

__all__ = [
    "CommandRecord",
    "ResultRecord",
    "ResultRow",
    "Store",
    "StoreError",
    "StoreHealth",
    "StoreTooNew",
    "StoreWriteFailed",
]
