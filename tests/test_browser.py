"""End to end in a real browser: `streamlit run app.py` in headless Debian Chromium, driven by Playwright.

Press Play on the Train page, watch the step counter grow and the chart redraw, press Pause
and see training stop within half a second; no exception box anywhere.
"""
from __future__ import annotations

import re

import pytest

from scripts.serve import chromium, open_app_page, streamlit_server


@pytest.fixture(scope="module")
def server():
    with streamlit_server() as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium() as instance:
        yield instance


def open_page(browser, url, width=1280):
    page = open_app_page(browser, url, width=width)
    page.wait_for_selector("text=Step", timeout=30_000)
    return page


def step_counter(page, timeout_ms: int = 20_000) -> int:
    """The number in the metric labelled exactly "Step" (waiting until the page has drawn it)."""
    label = page.locator("[data-testid='stMetricLabel']", has_text=re.compile(r"^\s*Step\s*$"))
    metric = page.locator("[data-testid='stMetric']").filter(has=label).first
    value = metric.locator("[data-testid='stMetricValue']")
    value.wait_for(timeout=timeout_ms)
    match = re.match(r"\s*([\d,]+)", value.inner_text())
    assert match, f"the Step metric shows {value.inner_text()!r}"
    return int(match.group(1).replace(",", ""))


# Counts, inside the page at every animation frame, how often the loss chart shows new data (a new
# set of line paths) during `ms` milliseconds. Polling from Python would itself miss frames.
COUNT_REDRAWS = """ms => new Promise(resolve => {
  const start = performance.now(); let last = null, redraws = 0;
  function tick() {
    const plot = document.querySelector('.js-plotly-plot');
    const lines = plot ? [...plot.querySelectorAll('.scatterlayer path.js-line')].map(p => p.getAttribute('d')) : [];
    const signature = lines.join('|');
    if (signature && signature !== last) { redraws += 1; last = signature; }
    if (performance.now() - start < ms) requestAnimationFrame(tick); else resolve(redraws);
  }
  tick();
})"""


def test_play_streams_and_pause_stops(server, browser):
    # long enough to still be running when we press Pause
    page = open_page(browser, f"{server}/train?modality=synthetic&steps=20000")
    assert step_counter(page) == 0
    page.locator("button", has_text="Play").first.click()
    page.wait_for_timeout(1000)  # the first frames
    first = step_counter(page)
    redraws_per_second = page.evaluate(COUNT_REDRAWS, 3000) / 3.0
    later = step_counter(page)
    print(f"chart redraws per second while training: {redraws_per_second:.1f}")
    assert 0 < first < later, (first, later)
    assert redraws_per_second >= 4.0, f"the chart should redraw at least 4 times a second: {redraws_per_second:.1f}"
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
    page = open_app_page(browser, server + path, width=400, height=800)
    page.wait_for_timeout(500)
    assert page.locator("[data-testid='stException']").count() == 0
    assert page.locator("h1").count() >= 1
    page.close()
