"""Fixtures shared by the whole suite: the real PostgreSQL the tests run against.

LOCKER_TEST_DATABASE_URL points at a server (CI: the machine's PostgreSQL); each
test session creates its own database there and drops it at the end. Without the
variable, an embedded PostgreSQL is started for the session. Under pytest-xdist
(`scripts/check` runs ``-n 4 --dist loadgroup``) every worker is a session of its
own, so each worker has its own database and workers never see each other's rows.

`XDIST_GROUPS` keeps the tests that must not run beside each other on one worker.
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

XDIST_GROUPS: dict[str, str] = {
    # The heavy clusters: three Patroni + etcd nodes behind HAProxy, three NATS nodes. Both in
    # one group, so the two never start at once on the 2 cores (their failover timings assume
    # the machine is not also electing the other cluster's leader).
    "tests/ha/": "clusters",
    "tests/broker_cluster/": "clusters",
    # Chromium is the heaviest thing a single test starts; one browser at a time.
    "tests/browser/": "browser",
    # Each module starts a Mosquitto of its own in a module-scoped fixture: one group per module
    # makes it start once (on one worker) rather than once on every worker that gets a test.
    "tests/broker_tls/test_broker_acl.py": "broker_tls_acl",
    "tests/broker_tls/test_sync_over_tls.py": "broker_tls_sync",
    # The demo's subprocess tests each start the whole system (broker, cloud, kiosk).
    "tests/demo/": "demo",
}
"""Path prefix (relative to the repository) -> pytest-xdist group. Under ``--dist loadgroup``
the tests of one group run on one worker, one after another; the longest prefix wins."""


def xdist_group_of(relative_path: str) -> str | None:
    matches = [prefix for prefix in XDIST_GROUPS if relative_path.startswith(prefix)]
    return XDIST_GROUPS[max(matches, key=len)] if matches else None


def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist registers this mark too; a run without it (-p no:xdist) still sees the
    # marks below under --strict-markers.
    config.addinivalue_line("markers", "xdist_group(name): the tests/conftest.py XDIST_GROUPS")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # tryfirst: xdist turns the xdist_group marks into node-id suffixes in its own hook of
    # this name, which would otherwise run before this one and see no marks.
    for item in items:
        relative = item.path.relative_to(config.rootpath).as_posix()
        group = xdist_group_of(relative)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


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
