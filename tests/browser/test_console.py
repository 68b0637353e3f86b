"""The operations console in Chromium: log in, watch a kiosk go stale, offline and back, see a
door fault appear, keyboard reach, CSRF and a viewer refused, screenshots at 1366x768 and on a
phone; then, on the demo's kiosk and simulated Kerong boards, bulk-open the expired parcels and
see their doors open.
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from cloud import lifecycle
from cloud.ops import accounts
from cloud.ops.accounts import Role
from cloud.store import alerts, kiosks
from cloud.store import database as db
from cloud.sync.keys import register_kiosk
from shared.signing import Signer
from tests.cloud.conftest import Cloud
from tests.demo.test_demo import READY_TIMEOUT_S, Demo

from .conftest import DESKTOP, PHONE, layout_fits, set_viewport, wait_for

PASSWORD = "correct horse battery"


@pytest.fixture
def cloud_settings_extra() -> dict[str, object]:
    # Live parts every 0.3 s, so that a change shows within a second.
    return {"ops_refresh_seconds": 0.3}


def log_in(browser: WebDriver, base: str, username: str, then: str = "/ops/") -> None:
    browser.get(base + then)
    wait_for(browser, lambda b: b.find_elements(By.ID, "username"))
    browser.find_element(By.ID, "username").send_keys(username)
    browser.find_element(By.ID, "password").send_keys(PASSWORD, Keys.ENTER)
    wait_for(browser, lambda b: b.find_elements(By.ID, "who"))


def status_of(browser: WebDriver, element_id: str) -> str | None:
    # Read in one script: the live part may be swapped between a find and a read.
    found: str | None = browser.execute_script(
        "const el = document.querySelector(arguments[0]); return el ? el.dataset.status : null;",
        f"#{element_id} [data-status]",
    )
    return found


async def eventually_in_browser(check, within: float = 15.0) -> None:
    """Polls a browser check without blocking the service's event loop (same thread)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        if await asyncio.to_thread(check):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the page did not change in time")
        await asyncio.sleep(0.1)


def shoot(browser: WebDriver, folder: Path, name: str) -> None:
    """What the person sees first at each size, and the whole page at each size."""
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        set_viewport(browser, size)
        browser.execute_script("window.scrollTo(0, 0)")
        assert layout_fits(browser), f"{name} overflows sideways at {label} {size}"
        browser.save_screenshot(str(folder / f"{name}-{label}.png"))
        whole = browser.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
        )
        (folder / f"{name}-{label}-full.png").write_bytes(base64.b64decode(whole["data"]))
    set_viewport(browser, DESKTOP)


async def test_an_operator_watches_the_fleet_live(
    cloud: Cloud, browser: WebDriver, screenshot_dir: Path
) -> None:
    await cloud.create_location("WAW-1", counts={"small": 4, "medium": 2})
    await cloud.create_location("KRK-1", counts={"small": 2})
    async with cloud.pool.connection() as conn:
        await register_kiosk(
            conn,
            kiosk_id="kiosk-waw-1",
            location_id="WAW-1",
            public_key=Signer.generate().verifier.public_base64(),
            code_secret=os.urandom(32),
            now=cloud.clock.now(),
        )
    await accounts.create_operator(
        cloud.pool, username="sam", password=PASSWORD, role=Role.SUPPORT, now=cloud.clock.now()
    )
    await asyncio.to_thread(log_in, browser, cloud.base_url, "sam")
    row = "loc-WAW-1"
    assert await asyncio.to_thread(status_of, browser, row) == "never_seen"

    async def shows(element_id: str, status: str) -> None:
        await eventually_in_browser(lambda: status_of(browser, element_id) == status)

    born = cloud.clock.now()
    await kiosks.mark_born(
        cloud.pool, kiosk_id="kiosk-waw-1", epoch=1, firmware="1.0", last_revision=0, now=born
    )
    await shows(row, "online")
    cloud.clock.advance(timedelta(seconds=70))  # two heartbeats missed
    await shows(row, "stale")
    cloud.clock.advance(timedelta(minutes=5))  # a confirmed outage
    await shows(row, "offline")
    await kiosks.mark_born(
        cloud.pool,
        kiosk_id="kiosk-waw-1",
        epoch=2,
        firmware="1.0",
        last_revision=0,
        now=cloud.clock.now(),
    )
    await shows(row, "online")
    await asyncio.to_thread(shoot, browser, screenshot_dir, "fleet")

    # A door fault appears on the location's page without a reload.
    await asyncio.to_thread(browser.get, f"{cloud.base_url}/ops/locations/WAW-1")
    async with cloud.pool.connection() as conn:
        await alerts.raise_alert(
            conn,
            location_id="WAW-1",
            kiosk_id="kiosk-waw-1",
            kind="door_tampered",
            door_number=2,
            detail="{}",
            now=cloud.clock.now(),
        )

    def door_2_faulted() -> bool:
        classes = browser.execute_script(
            "const el = document.getElementById('door-2'); return el ? el.className : '';"
        )
        return "door-fault" in str(classes)

    await eventually_in_browser(door_2_faulted)
    assert await asyncio.to_thread(lambda: browser.find_element(By.ID, "open-form").is_displayed())
    await asyncio.to_thread(shoot, browser, screenshot_dir, "location")

    # Every action is reachable by keyboard alone (reloaded: the fault-clearing form lists the
    # alerts open when the page was loaded).
    await asyncio.to_thread(browser.refresh)

    def tab_reaches(target: str) -> bool:
        browser.find_element(By.TAG_NAME, "body").click()
        for _ in range(80):
            browser.switch_to.active_element.send_keys(Keys.TAB)
            if browser.switch_to.active_element.get_attribute("id") == target:
                return True
        return False

    for target in ("open-door", "open-submit", "collect-reason", "maint-on", "clear-submit"):
        assert await asyncio.to_thread(tab_reaches, target), target

    # A form whose CSRF token is not the session's is refused, and nothing is queued.
    def forged_open() -> str:
        browser.execute_script(
            "document.querySelector('#open-form input[name=csrf]').value = 'forged';"
        )
        browser.find_element(By.ID, "open-reason").send_keys("test")
        browser.find_element(By.ID, "open-submit").click()
        wait_for(browser, lambda b: b.find_elements(By.ID, "refusal"))
        return browser.find_element(By.ID, "refusal").get_attribute("data-code") or ""

    assert await asyncio.to_thread(forged_open) == "csrf_failed"
    assert await _remote_commands(cloud) == 0


async def test_a_viewer_is_refused_an_action(cloud: Cloud, browser: WebDriver) -> None:
    await cloud.create_location("WAW-1", counts={"small": 2})
    await accounts.create_operator(
        cloud.pool, username="vic", password=PASSWORD, role=Role.VIEWER, now=cloud.clock.now()
    )
    await asyncio.to_thread(log_in, browser, cloud.base_url, "vic", "/ops/locations/WAW-1")

    def try_to_open() -> str:
        assert browser.current_url.endswith("/ops/locations/WAW-1")
        assert browser.find_elements(By.ID, "open-form") == []  # no action offered
        # Posting anyway, with the viewer's own valid CSRF token (from the logout form).
        browser.execute_script(
            """
            const form = document.createElement('form');
            form.method = 'post';
            form.action = '/ops/locations/WAW-1/open';
            for (const [name, value] of [['door', '1'], ['reason', 'curious'],
                ['csrf', document.querySelector('input[name=csrf]').value]]) {
              const input = document.createElement('input');
              input.name = name; input.value = value; form.appendChild(input);
            }
            document.body.appendChild(form);
            form.submit();
            """
        )
        wait_for(browser, lambda b: b.find_elements(By.ID, "refusal"))
        return browser.find_element(By.ID, "refusal").get_attribute("data-code") or ""

    assert await asyncio.to_thread(try_to_open) == "role_too_low"
    assert await _remote_commands(cloud) == 0


async def _remote_commands(cloud: Cloud) -> int:
    async with cloud.pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM remote_commands")
        row = await cur.fetchone()
    assert row is not None
    return int(row["n"])


# On the demo: its kiosk daemon on simulated Kerong boards over pseudo-terminals.


@pytest.fixture
def empty_database(postgres_server_url: str) -> Iterator[str]:
    name = f"locker_ops_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(postgres_server_url)
    params["dbname"] = name
    yield make_conninfo(**params)
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_bulk_open_for_collection_opens_the_doors_on_the_simulator(
    empty_database: str, browser: WebDriver, screenshot_dir: Path
) -> None:
    broker = os.environ.get("LOCKER_TEST_MQTT_URL")
    demo = Demo("--database-url", empty_database, *(["--mqtt-url", broker] if broker else []))
    try:
        ready = await asyncio.to_thread(demo.read_until, r"^READY ", READY_TIMEOUT_S)
        base = ready.split()[1]
        add = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "cloud.cli", "operator", "add", "sam", "--role", "support"],
            input=PASSWORD + "\n",
            capture_output=True,
            text=True,
            env={**os.environ, "LOCKER_DATABASE_URL": empty_database},
            timeout=60,
        )
        assert add.returncode == 0, add.stderr
        # The demo's three deposited parcels pass their pickup window.
        pool = await db.open_pool(empty_database, min_size=1, max_size=2)
        try:
            later = (await _db_now(pool)) + timedelta(days=30)
            assert await lifecycle.expire_pickups(pool, later) == 3
            async with pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT d.door_number, d.label FROM allocations a JOIN doors d"
                    " USING (door_id) WHERE a.status = 'expired' ORDER BY d.door_number"
                )
                rows = await cur.fetchall()
                doors = [r["door_number"] for r in rows]
                labels = [r["label"] for r in rows]
        finally:
            await pool.close()

        location = "WAW-CENTRUM-01"
        await asyncio.to_thread(log_in, browser, base, "sam", f"/ops/locations/{location}")

        def open_all() -> str:
            wait_for(
                browser,
                lambda b: "Open all 3 doors" in b.find_element(By.ID, "collect-form").text,
            )
            browser.find_element(By.ID, "collect-reason").send_keys("courier on site")
            browser.find_element(By.ID, "collect-submit").click()
            wait_for(browser, lambda b: b.find_elements(By.ID, "notice"))
            return browser.find_element(By.ID, "notice").text

        notice = await asyncio.to_thread(open_all)
        assert f"Opening 3 doors for collection: {', '.join(labels)}." == notice
        for door in doors:
            await asyncio.to_thread(demo.read_until, rf"^door {door} opened", 30)
        await asyncio.to_thread(shoot, browser, screenshot_dir, "location-after-bulk-open")
    finally:
        demo.kill()


async def _db_now(pool: db.Pool) -> datetime:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT now() AS now")
        row = await cur.fetchone()
    assert row is not None
    return row["now"]
