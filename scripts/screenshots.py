"""Screenshots of every page in headless Chromium, at projector and phone widths.

    python scripts/screenshots.py            # writes docs/screenshots/<page>-<width>.png

Each shot is a fresh session: open the page, press its buttons, wait, then photograph the whole
page. Any exception box is reported (and the script exits 1), so a broken page cannot hide here.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.serve import ROOT, chromium, open_app_page, streamlit_server  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
WIDTHS = (1280, 400)
# name, path, buttons to press, seconds to wait, widths
SHOTS = [
    ("home", "/", [], 1, WIDTHS),
    ("train-synthetic", "/train?preset=synthetic-low-rank", ["Play"], 8, WIDTHS),
    ("train-image", "/train?preset=digits-rotated", ["Play"], 8, (1280,)),
    ("train-text", "/train?preset=text", ["Play"], 9, (1280,)),
    ("train-emoji", "/train?preset=emoji", ["Play"], 9, (1280,)),
    ("train-toy", "/train?preset=seed", ["Play"], 8, (1280,)),
    ("compare", "/compare?preset=digits-rotated&compare=rank", ["Run comparison"], 10, WIDTHS),
    ("savings", "/savings?preset=digits-rotated", [], 1, WIDTHS),
    ("checkpoints", "/checkpoints", [], 1, WIDTHS),
    ("learn", "/learn", [], 1, WIDTHS),
]


def shoot(browser, url: str, out: Path, width: int, buttons: list[str], wait: float) -> list[str]:
    page = open_app_page(browser, url, width=width)
    for label in buttons:
        page.locator("button", has_text=label).first.click()
        page.wait_for_timeout(300)
    page.wait_for_timeout(wait * 1000)
    height = page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollHeight")
    page.set_viewport_size({"width": width, "height": max(900, min(int(height) + 40, 8000))})
    page.wait_for_timeout(800)
    problems = [box.inner_text()[:200] for box in page.query_selector_all("[data-testid='stException']")]
    page.screenshot(path=str(out), full_page=True)
    page.close()
    return problems


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    failures = 0
    with streamlit_server() as base, chromium() as browser:
        for name, path, buttons, wait, widths in SHOTS:
            for width in widths:
                out = OUT / f"{name}-{width}.png"
                problems = shoot(browser, base + path, out, width, buttons, wait)
                failures += bool(problems)
                print(f"{out.relative_to(ROOT)}{'  EXCEPTION: ' + ' | '.join(problems) if problems else ''}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
