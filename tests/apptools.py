"""Driving the whole app headless with Streamlit's AppTest."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parent.parent / "app.py"
TIMEOUT = 120  # the first run of a page may build a task (data + frozen base) for the whole process


def open_app(page: str | None = None, **query) -> AppTest:
    """The whole app (sidebar included), optionally opened from a URL query and switched to `page`."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    if page is not None:
        at.switch_page(page).run()
    return at


def metric(at: AppTest, label: str) -> str:
    values = [m.value for m in at.metric if m.label == label]
    assert values, f"no metric {label!r}; metrics: {[m.label for m in at.metric]}"
    return values[0]
