"""Fixtures for the demo's tests: the session's database, migrated."""

from __future__ import annotations

import pytest

from cloud.store import database as db


@pytest.fixture(scope="session")
async def migrated_url(database_url: str) -> str:
    await db.migrate(database_url)
    return database_url
