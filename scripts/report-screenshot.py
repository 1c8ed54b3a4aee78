#!/usr/bin/env python3
"""Render a run report (report.html) to a PNG with Debian's headless Chromium, offline.

    python scripts/report-screenshot.py \
        .snakemake/prominence_reports/<run id>/report.html docs/report.png

Needs the `chromium` and `chromium-driver` packages (scripts/bootstrap.sh installs them) and
selenium (the `test` extra). The browser gets a proxy that leads nowhere, so the page cannot
fetch anything from the network; the HTML report test uses the same browser setup.
"""

from __future__ import annotations

import argparse
import os
import pathlib

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.wait import WebDriverWait

CHROMIUM = pathlib.Path("/usr/bin/chromium")
CHROMEDRIVER = pathlib.Path("/usr/bin/chromedriver")
WIDTH = 1300


def chromium_driver() -> webdriver.Chrome:
    """Headless Chromium from the Debian packages, with no way out to the network and its
    console messages kept (read them with driver.get_log("browser"))."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f"{', '.join(missing)} missing: apt-get install chromium chromium-driver"
        )
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never download a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={WIDTH},1000",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-extensions",
        "--disable-sync",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        # Every request the page might make goes to a proxy that does not exist and fails
        # (and is logged as a console error); loopback is not exempted.
        "--proxy-server=http://127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))


def load_page(driver: webdriver.Chrome, html: pathlib.Path) -> None:
    """Open a local HTML file and wait until it has loaded: get() may return while a large
    page is still loading."""
    driver.get(pathlib.Path(html).resolve().as_uri())
    WebDriverWait(driver, 60).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )


def full_page_screenshot(driver: webdriver.Chrome, png: pathlib.Path, max_height: int) -> None:
    """A screenshot of the page from the top, as tall as the page up to `max_height` pixels."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(WIDTH, min(int(height) + 20, max_height))
    png.parent.mkdir(parents=True, exist_ok=True)
    if not driver.save_screenshot(str(png)):
        raise RuntimeError(f"Chromium wrote no screenshot to {png}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=pathlib.Path, help="the report.html to render")
    parser.add_argument("png", type=pathlib.Path, help="where to write the PNG")
    parser.add_argument(
        "--max-height",
        type=int,
        default=2600,
        metavar="PX",
        help="cut the screenshot at this height (default: %(default)s)",
    )
    args = parser.parse_args()
    driver = chromium_driver()
    try:
        load_page(driver, args.html)
        full_page_screenshot(driver, args.png, args.max_height)
    finally:
        driver.quit()
    print(args.png)


if __name__ == "__main__":
    main()
