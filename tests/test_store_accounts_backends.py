"""Main's user records (users, their sign-in and disabling) on both backends: the repositories are
written once for SQLite and PostgreSQL (lightctl.store.sql)."""

from __future__ import annotations

import asyncio

from lightctl.store import Store
from tests.conftest import StoreBackend


async def test_users_are_added_read_and_disabled_on_both_backends(backend: StoreBackend) -> None:
    store = Store(backend.target("users"))
    await asyncio.to_thread(store.open)
    try:
        first = await store.users.add(name="ops", role="operator", crew=None, password_hash="h1", at=1_000, by="local")
        second = await store.users.add(name="wall", role="viewer", crew=None, password_hash="h2", at=2_000, by="local")
        assert first != second and first > 0
        assert await store.users.count() == 2
        found = await store.users.get("ops")
        assert found is not None and found.role == "operator"
        await store.users.change_password(first, "h3", 3_000)
        await store.users.disable(second, 4_000, "local")
        assert [u.name for u in await store.users.all()] == ["ops", "wall"]
    finally:
        await asyncio.to_thread(store.close)
