#!/usr/bin/env python
"""Open a visitseg report page in headless Chromium, check it, and take its screenshot.

    python scripts/report_browser.py out/demo/reports/<run_id>/report.html --screenshot docs/report.png

What it checks, as a person opening the file would see it (exit status 1 if any check fails):
- no console message of level SEVERE (errors, blocked requests, Content-Security-Policy violations);
- no request leaves the machine: every URL the page asked for is `file:` or `data:`;
- every chart renders: each <svg>, <canvas> and <img> has a non-empty box, and each SVG draws shapes.
`--pdf FILE` prints the page as a browser's Print would. `--facts FILE` also writes what it saw as JSON (the segment cards' names and shares included), which is
what tests/test_report_page.py asserts on. Chromium and its driver come from Debian's `chromium` and
`chromium-driver` packages (scripts/setup.sh installs them where it can); CHROMIUM and CHROMEDRIVER
override their paths.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import sys
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.print_page_options import PrintOptions

WIDTH = 1280
MAX_HEIGHT = 16000  # a taller page is cut in the screenshot, never in the checks
LOCAL_SCHEMES = ("file:", "data:")

# Runs in the page: every chart's box and how many shapes it draws, and the segment cards.
PAGE_FACTS = """
const charts = [...document.querySelectorAll('svg, canvas, img')].map(el => {
  const box = el.getBoundingClientRect();
  return {tag: el.tagName.toLowerCase(), label: el.getAttribute('aria-label') || el.getAttribute('alt') || '',
          width: box.width, height: box.height,
          shapes: el.tagName.toLowerCase() === 'svg' ? el.querySelectorAll('path, rect, line, polygon, circle, use').length : null,
          natural_width: el.naturalWidth === undefined ? null : el.naturalWidth};
});
const segments = [...document.querySelectorAll('article.card')].map(card => ({
  cluster_id: Number(card.dataset.clusterId), share: Number(card.dataset.share),
  name: card.querySelector('.segment-name').textContent, share_text: card.querySelector('.share-value').textContent}));
return {title: document.title, height: document.documentElement.scrollHeight, charts: charts, segments: segments,
        sections: [...document.querySelectorAll('section > h2')].map(h => h.textContent)};
"""


def browser_paths() -> tuple[str, str] | None:
    """(chromium, chromedriver), or None when this machine has no Chromium to drive."""
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


def inspect(page: Path, screenshot: Path | None = None, pdf: Path | None = None) -> dict:
    paths = browser_paths()
    if paths is None:
        raise SystemExit("report_browser: no chromium and chromedriver on PATH (Debian: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--hide-scrollbars", f"--window-size={WIDTH},900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(paths[1]))
    try:
        driver.get(page.resolve().as_uri())
        facts = driver.execute_script(PAGE_FACTS)
        facts["console"] = [{"level": e["level"], "message": e["message"]} for e in driver.get_log("browser")]
        events = [json.loads(e["message"])["message"] for e in driver.get_log("performance")]
        facts["requests"] = sorted({m["params"]["request"]["url"] for m in events if m["method"] == "Network.requestWillBeSent"})
        if screenshot is not None:
            driver.set_window_size(WIDTH, min(facts["height"], MAX_HEIGHT))
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(screenshot))
            facts["screenshot"] = str(screenshot)
        if pdf is not None:  # what File → Print gives: the page's print style, A4 landscape
            document = base64.b64decode(driver.print_page(PrintOptions()))
            pdf.parent.mkdir(parents=True, exist_ok=True)
            pdf.write_bytes(document)
            facts["pdf_pages"] = document.count(b"/Type /Page") - document.count(b"/Type /Pages")
    finally:
        driver.quit()
    facts["size_bytes"] = page.stat().st_size
    facts["problems"] = problems(facts)
    return facts


def problems(facts: dict) -> list[str]:
    found = [f"console {e['level']}: {e['message']}" for e in facts["console"] if e["level"] == "SEVERE"]
    found += [f"request leaves the machine: {url}" for url in facts["requests"] if not url.startswith(LOCAL_SCHEMES)]
    for chart in facts["charts"]:
        if chart["width"] <= 0 or chart["height"] <= 0 or chart["shapes"] == 0 or chart["natural_width"] == 0:
            found.append(f"chart does not render: {chart}")
    if not facts["charts"]:
        found.append("the page has no chart")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("page", type=Path, help="a report.html")
    parser.add_argument("--screenshot", type=Path, help="write a full-page PNG here")
    parser.add_argument("--pdf", type=Path, help="print the page to this PDF, as a browser's Print would")
    parser.add_argument("--facts", type=Path, help="write what the browser saw as JSON here")
    args = parser.parse_args()
    facts = inspect(args.page, args.screenshot, args.pdf)
    if args.facts:
        args.facts.write_text(json.dumps(facts, indent=2))
    print(f"{args.page}: {facts['size_bytes'] / 1e3:,.0f} kB, {len(facts['charts'])} charts, {len(facts['segments'])} segment cards, "
          f"{len(facts['requests'])} requests ({', '.join(sorted({u.split(':')[0] for u in facts['requests']}))}), "
          f"{len(facts['console'])} console messages, page height {facts['height']:,} px")
    for problem in facts["problems"]:
        print(f"  PROBLEM: {problem}")
    if args.screenshot:
        print(f"  screenshot: {args.screenshot}")
    if args.pdf:
        print(f"  printed: {args.pdf}, {facts['pdf_pages']} pages")
    return 1 if facts["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
