"""Fixtures shared by the whole suite: the real PostgreSQL the tests run against.

LOCKER_TEST_DATABASE_URL points at a server (CI: the machine's PostgreSQL); each
test session creates its own database there and drops it at the end. Without the
variable, an embedded PostgreSQL is started for the session.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("LOCKER_TEST_DATABASE_URL")
    if url:
        return url
    from cloud.store.database import start_embedded_postgres

    return start_embedded_postgres(tmp_path_factory.mktemp("pg"))


@pytest.fixture(scope="session")
def database_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty database for this test session (migrations not yet applied)."""
    name = f"locker_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(postgres_server_url)
    params["dbname"] = name
    yield make_conninfo(**params)
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
async def mqtt_broker() -> AsyncIterator[tuple[str, int, bool]]:
    """The broker sync tests talk to over TCP: (host, port, supports shared subscriptions).

    LOCKER_TEST_MQTT_URL (``mqtt://host:port``) names a real broker (CI: the machine's
    Mosquitto, which has shared subscriptions). Without it, amqtt is started in-process on a
    free port (no shared subscriptions).
    """
    url = os.environ.get("LOCKER_TEST_MQTT_URL")
    if url:
        parsed = urlsplit(url)
        yield parsed.hostname or "127.0.0.1", parsed.port or 1883, True
        return
    from cloud.embedded_broker import start_embedded_broker

    broker = await start_embedded_broker()
    try:
        yield broker.host, broker.port, False
    finally:
        await broker.stop()
