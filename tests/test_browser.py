"""End to end in a real browser: `streamlit run app.py` in headless Debian Chromium, driven by Playwright.

Press Play on the Train page, watch the step counter grow and the chart redraw, press Pause
and see training stop within half a second; no exception box anywhere.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
            break
        except OSError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("streamlit did not start: " + process.stdout.read().decode(errors="replace")[-2000:])
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), "Debian's chromium is required (apt-get install -y chromium)"
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield instance
        instance.close()


def open_page(browser, url, width=1280):
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(url)
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=60_000)
    page.wait_for_selector("text=Step", timeout=30_000)
    return page


def step_counter(page) -> int:
    metric = page.locator("[data-testid='stMetric']", has_text="Step").first
    text = metric.locator("[data-testid='stMetricValue']").inner_text()
    return int(re.match(r"\s*([\d,]+)", text).group(1).replace(",", ""))


def chart_signature(page) -> str:
    """Something that changes whenever the loss chart is redrawn with new data."""
    return page.locator(".js-plotly-plot").first.evaluate(
        "el => [...el.querySelectorAll('.scatterlayer path.js-line')].map(p => p.getAttribute('d')).join('|')")


def test_play_streams_and_pause_stops(server, browser):
    # long enough to still be running when we press Pause
    page = open_page(browser, f"{server}/train?modality=synthetic&steps=20000")
    assert step_counter(page) == 0
    page.locator("button", has_text="Play").first.click()
    seen_steps, seen_charts = [], set()
    for _ in range(12):
        page.wait_for_timeout(250)
        seen_steps.append(step_counter(page))
        seen_charts.add(chart_signature(page))
    assert seen_steps == sorted(seen_steps) and seen_steps[-1] > 0, seen_steps
    assert len(set(seen_steps)) >= 5, f"the counter should move several times in 3 s: {seen_steps}"
    assert len(seen_charts) >= 4, "the chart should redraw with new data while training"
    page.locator("button", has_text="Pause").first.click()
    page.wait_for_timeout(500)
    paused_at = step_counter(page)
    page.wait_for_timeout(1500)
    assert step_counter(page) == paused_at, "training must stop within half a second of Pause"
    assert page.locator("[data-testid='stException']").count() == 0


@pytest.mark.parametrize("path", ["/", "/train", "/compare", "/savings", "/checkpoints", "/learn",
                                  "/train?preset=seed", "/train?modality=text", "/train?modality=image",
                                  "/train?modality=multimodal&mm_fusion=attention"])
def test_pages_open_from_links_without_errors(server, browser, path):
    page = browser.new_page(viewport={"width": 400, "height": 800})
    page.goto(server + path)
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=60_000)
    page.wait_for_timeout(500)
    assert page.locator("[data-testid='stException']").count() == 0
    assert page.locator("h1").count() >= 1
    page.close()
