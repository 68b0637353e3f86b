"""A real crash: kill -9 the service after a deposit committed and before its
notification was sent; the restarted service sends it, once."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx
import psycopg
import pytest

from tests.cloud.conftest import TABLES


class Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, dict]]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Receiver.received.append((self.headers["Idempotency-Key"], body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", Receiver.received
    server.shutdown()
    server.server_close()


def start_service(database_url, webhook, interval):
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "LOCKER_DATABASE_URL": database_url,
        "LOCKER_ADMIN_API_KEY": "admin",
        "LOCKER_HTTP_PORT": "0",
        "LOCKER_NOTIFICATION_SENDER": "webhook",
        "LOCKER_NOTIFICATION_WEBHOOK_URL": webhook,
        "LOCKER_NOTIFICATION_INTERVAL_SECONDS": str(interval),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "cloud.cli", "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("READY "):
            return proc, line.split()[1]
    raise AssertionError(f"service did not start (exit {proc.wait()})")


def test_notification_committed_before_a_kill_9_is_sent_once_after_restart(migrated_url, receiver):
    webhook, received = receiver
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    # First life: the dispatcher runs once at start, then would wait an hour.
    proc, base = start_service(migrated_url, webhook, interval=3600)
    try:
        admin = {"Authorization": "Bearer admin"}
        key = httpx.post(
            f"{base}/api/v1/admin/carriers", headers=admin, json={"carrier_id": "c", "name": "c"}
        ).json()["api_key"]
        httpx.post(
            f"{base}/api/v1/admin/locations",
            headers=admin,
            json={"location_id": "L", "name": "L", "address": "a", "latitude": 0,
                  "longitude": 0, "door_counts": {"small": 1}},
        ).raise_for_status()  # fmt: skip
        carrier = {"Authorization": f"Bearer {key}"}
        a = httpx.post(
            f"{base}/api/v1/allocations",
            headers=carrier,
            json={"location_id": "L", "package_id": "P", "order_id": "O", "customer_id": "C",
                  "package_size": "small"},
        ).json()  # fmt: skip
        r = httpx.post(
            f"{base}/api/v1/allocations/{a['allocation_id']}/deposit",
            headers=carrier,
            json={"driver_id": "D", "scan_code": "P"},
        )
        assert r.status_code == 200
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert received == []  # the process died with the message unsent

    # Second life: the outbox still holds it.
    proc, base = start_service(migrated_url, webhook, interval=0.1)
    try:
        deadline = time.monotonic() + 20
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # a few more dispatch rounds: nothing must come twice
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert len(received) == 1
    key, body = received[0]
    assert body["kind"] == "pickup_code"
    assert body["payload"]["pickup_code"] == a["pickup_code"]
    assert key == body["id"]
    with psycopg.connect(migrated_url) as conn:
        [(status, attempts)] = conn.execute(
            "SELECT status, attempts FROM notifications WHERE kind = 'pickup_code'"
        ).fetchall()
    assert (status, attempts) == ("sent", 1)
