"""The demo seeds the cloud, serves the API and stops cleanly, against a database given by URL
(CI has one; else the session's embedded PostgreSQL): what a carrier sees of it."""

import os
import signal
import subprocess
import sys

import httpx
import psycopg


def test_demo_starts_seeds_serves_and_stops_cleanly_on_sigint(migrated_url, tmp_path):
    """The README's first command, against a database given by URL (CI has one); the whole
    system's demo (kiosk, simulated doors, a QR pickup) is tested in test_demo.py."""
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE notifications, returns, allocations, pickup_codes, doors, locations,"
            " carriers RESTART IDENTITY CASCADE"
        )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "demo",
            "--headless",
            "--port",
            "0",
            "--database-url",
            migrated_url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("READY "):
                break
        base = lines[-1].split()[1]
        codes = [
            ln.split("pickup code")[1].split()[0]
            for ln in lines
            if " deposited " in ln and "pickup code" in ln
        ]
        assert len(codes) == 3
        r = httpx.post(
            f"{base}/api/v1/pickup",
            headers={"Authorization": "Bearer demo-carrier-key"},
            json={"location_id": "WAW-CENTRUM-01", "pickup_code": codes[0]},
        )
        assert r.status_code == 200, r.text
        assert r.json()["locker_numbers"]
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, "".join(lines) + out
        assert "demo stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
