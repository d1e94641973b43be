"""Headless Chromium for the page tests: Debian's `chromium` and `chromium-driver` (installed by
`.ci/run` where missing) driven by Selenium.

`chrome()` yields a driver that records the browser console; `page_problems(driver)` lists the
broken images, console errors and resources that are not embedded (`data:`) or local. With
`SCREENSHOT_DIR` set, `screenshot(driver, name)` also keeps a PNG there (docs/ screenshots:
`SCREENSHOT_DIR=docs/screenshots python -m pytest tests/test_run_report.py ...`).
"""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Iterator

import pytest

CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER",
                              shutil.which("chromedriver") or "/usr/bin/chromedriver")


@contextlib.contextmanager
def chrome(width: int = 1200, height: int = 1800) -> Iterator:
    """A headless Chromium driver; the test is skipped (with the reason) where Chromium or its
    driver is not installed (`.ci/run` installs both)."""
    if not (os.path.isfile(CHROMIUM) and os.path.isfile(CHROMEDRIVER)):
        pytest.skip(f"needs Chromium and chromedriver ({CHROMIUM}, {CHROMEDRIVER}); "
                    "apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


BROKEN_IMAGES_JS = """
return Array.from(document.images)
  .filter(img => !img.complete || img.naturalWidth === 0)
  .map(img => img.alt || img.src.slice(0, 60));
"""
# Every resource the page references (resolved to absolute URLs) and every one it fetched.
RESOURCES_JS = """
return Array.from(document.querySelectorAll('[src],link[href]'))
  .map(e => e.src || e.href)
  .concat(performance.getEntriesByType('resource').map(e => e.name));
"""


def console_errors(driver) -> list[str]:
    """The browser console's SEVERE entries since the last call."""
    return [entry["message"] for entry in driver.get_log("browser")
            if entry.get("level") == "SEVERE"]


def page_problems(driver, local_prefixes: tuple[str, ...] = ("data:",)) -> list[str]:
    """Broken images, console errors and resources outside `local_prefixes`."""
    problems = [f"broken image {name}" for name in driver.execute_script(BROKEN_IMAGES_JS)]
    problems += [f"console: {message}" for message in console_errors(driver)]
    problems += [f"fetched: {src}" for src in driver.execute_script(RESOURCES_JS)
                 if src and not src.startswith(local_prefixes)]
    return problems


def screenshot(driver, name: str, tmp_dir: Path) -> Path:
    """Save a full-page PNG as `tmp_dir/name` (and in `SCREENSHOT_DIR` when set); return it."""
    height = driver.execute_script("return document.body.scrollHeight")
    width = driver.get_window_size()["width"]
    driver.set_window_size(width, min(max(int(height) + 100, 600), 4000))
    path = tmp_dir / name
    driver.save_screenshot(str(path))
    keep = os.environ.get("SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(keep) / name)
    return path
