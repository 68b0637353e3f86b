"""A real browser for the operations console: Debian's chromium, driven by Selenium through
Debian's chromedriver (`scripts/install-system-tools` installs both; CI runs it).

Screenshots go to ``var/screenshots`` (or ``LOCKER_SCREENSHOT_DIR``), one per page and size.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

# The real service on the session's PostgreSQL, as the cloud tests run it.
from tests.cloud.conftest import clean_db, cloud, cloud_settings_extra, migrated_url

__all__ = ["clean_db", "cloud", "cloud_settings_extra", "migrated_url"]

DESKTOP = (1366, 768)
PHONE = (390, 844)


def _find(name: str, *candidates: str) -> str:
    for candidate in (shutil.which(name), *candidates):
        if candidate and Path(candidate).exists():
            return candidate
    raise RuntimeError(
        f"{name} is not installed: run scripts/install-system-tools (Debian's chromium and"
        " chromium-driver), as scripts/check does"
    )


@pytest.fixture(scope="session")
def screenshot_dir(repo_root: Path) -> Path:
    folder = Path(os.environ.get("LOCKER_SCREENSHOT_DIR", repo_root / "var" / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    options = Options()
    options.binary_location = _find("chromium", "/usr/bin/chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument(f"--window-size={DESKTOP[0]},{DESKTOP[1]}")
    service = Service(_find("chromedriver", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: WebDriver, check: Callable[[WebDriver], object], within: float = 15) -> None:
    WebDriverWait(driver, within, poll_frequency=0.1).until(check)


def set_viewport(driver: WebDriver, size: tuple[int, int]) -> None:
    """Makes the page's viewport (not the window) this size, as a phone's or a laptop's is."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": size == PHONE},
    )
    # Until the page has laid itself out again at the new width (and the plots, which follow
    # their box on the window's resize event, have redrawn): two animation frames after it.
    wait_for(
        driver,
        lambda d: d.execute_script("return window.innerWidth") == size[0],
    )
    driver.execute_async_script(
        "const done = arguments[0];"
        " requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(done, 300)));"
    )


def layout_fits(driver: WebDriver) -> bool:
    """No part of the page sticks out sideways (a table may scroll inside its own box)."""
    widths = driver.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth];"
    )
    return bool(widths[0] <= widths[1])
