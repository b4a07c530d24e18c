"""Start `streamlit run app.py` on a free local port and drive Debian's Chromium: shared by the browser
test, the screenshot script and the classroom benchmark.

    with streamlit_server() as url, chromium() as browser:
        page = open_app_page(browser, url + "/train")
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"  # Debian's package: never a browser download
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(timeout: float = 60.0):
    """Yield the base URL of a fresh app server; stop it afterwards. `.pid` of the process is on the URL's owner."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    try:
        while True:
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
                break
            except OSError:
                if time.time() > deadline or process.poll() is not None:
                    process.kill()
                    log = process.stdout.read().decode(errors="replace")[-2000:]
                    raise RuntimeError(f"streamlit did not start:\n{log}") from None
                time.sleep(0.3)
        yield ServerURL(url, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


class ServerURL(str):
    """The server's base URL, which also knows the server's process id (for memory readings)."""

    def __new__(cls, url: str, pid: int):
        obj = super().__new__(cls, url)
        obj.pid = pid
        return obj


@contextlib.contextmanager
def chromium():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError("Debian's chromium is required: apt-get install -y chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def open_app_page(browser, url: str, *, width: int = 1280, height: int = 900, context=None):
    """A page on `url`, after the app has connected and its script is idle."""
    page = (context or browser).new_page(viewport={"width": width, "height": height})
    page.goto(url)
    page.wait_for_selector(IDLE, timeout=60_000)
    return page
