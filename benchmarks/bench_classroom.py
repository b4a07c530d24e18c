"""A class at once: N isolated sessions training live on one server, measured from real browsers.

    python benchmarks/bench_classroom.py --sessions 1,10,30 --seconds 15
    python benchmarks/bench_classroom.py --sessions 10 --streamlit-option runner.postScriptGC=false --blas-threads 1
    python benchmarks/bench_classroom.py --url http://127.0.0.1:8501 --sessions 5

For each N: one headless Chromium (Debian's /usr/bin/chromium, driven by Playwright), N separate
browser contexts (= N isolated Streamlit sessions) on /train?modality=synthetic&steps=100000 (the
sidebar clamps steps to its maximum, 20,000), pace "fastest" (clicked: the page has no query for it),
Play on all. Then every ~0.5 s for --seconds: each page's step counter (the "Step" metric) and the
server's RSS (VmRSS of the server process and its children). Loss-chart redraws are counted inside
each page by a MutationObserver that compares the chart's signature (the 'd' attributes of its
`.scatterlayer path.js-line`, joined) after every DOM change, so redraws faster than the sampling
are not missed. A run that reaches its last step inside the window is Reset and Played again (at
N=1 a 20,000-step run lasts about 3 s), and its steps keep counting. Then Pause on all pages: a
session honours it if its counter no longer moves from 1 s after its click; the time until the
page shows Play again is reported too. Any `[data-testid='stException']` box, any uncaught error in
a page, and any page whose app vanished (a frontend crash leaves a white page, no exception box)
is printed.

The browser runs on the same 2 cores as the server: Chromium laying out and drawing N pages
competes with the server for CPU, so the rates are a lower bound on what a class (one browser per
student, on their own machines) gets. The CPU each side used is printed to make that visible.
Pages are kept cheap: 800x600 viewports, reduced motion, no GPU; clicks and readings are one
evaluate() per page (Playwright's actionability checks cost seconds per page on a busy browser).
Background-timer throttling is disabled because Streamlit's `run_every` timer lives in the
browser: a throttled hidden tab would measure Chromium, not the server.

By default a fresh server is started on a free port for each N (so the memory numbers of one N
are not mixed with what an earlier N left behind), warmed up by one page load, and stopped after.
Everything is bounded: a timeout on every browser action, a watchdog that prints where it was,
kills the server and exits if the whole script overruns, and every context closed in `finally`.
"""
from __future__ import annotations

import argparse
import faulthandler
import hashlib
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.serve import CHROMIUM, CHROMIUM_FLAGS, IDLE as READY, free_port  # noqa: E402

FLAGS = [*CHROMIUM_FLAGS, "--disable-extensions", "--mute-audio",
         # Streamlit's fragment timer (run_every) runs in the page: keep it honest for pages that are not in front
         "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
         "--disable-backgrounding-occluded-windows"]
VIEWPORT = {"width": 800, "height": 600}
DEFAULT_PATH = "/train?modality=synthetic&steps=100000"
PAUSE_GRACE = 1.0  # seconds after its Pause click by which a page's step counter must have stopped
PAUSE_WATCH = 1.5  # and then stay still for this long
APP_FILES = ("app.py", "views/train.py", "lab_ui/session.py", "lab_ui/panels.py", "lab_ui/figures.py",
             "lora_core/trainer.py")

# Installed once per page: counts loss-chart redraws as they happen, so redraws faster than the sampling
# are not missed. The loss chart is the Plotly chart titled "Loss..."; its signature is the 'd' attributes
# of its lines; a redraw is a new non-empty signature (a chart that is briefly unmounted and comes back
# with the same data is not counted).
OBSERVER_JS = """
() => {
  if (window.__bench) return;
  const sig = () => {
    const plot = [...document.querySelectorAll('.js-plotly-plot')]
      .find(p => ((p.querySelector('.gtitle') || {}).textContent || '').startsWith('Loss'));
    if (!plot) return '';
    return [...plot.querySelectorAll('.scatterlayer path.js-line')].map(p => p.getAttribute('d')).join('|');
  };
  const state = {redraws: 0, last: sig()};
  window.__bench = state;
  new MutationObserver(() => {
    const s = sig();
    if (s && s !== state.last) { state.last = s; state.redraws += 1; }
  }).observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ['d']});
}
"""
CLICK_JS = """
label => {
  const button = [...document.querySelectorAll('button')]
    .find(b => !b.disabled && b.innerText.trim().split(/\\s+/).includes(label));
  if (!button) return false;
  button.click();
  return true;
}
"""
PACE_JS = """
() => {
  const on = document.querySelector("[data-testid='stButtonGroup'] [role='radio'][aria-checked='true']");
  return on ? on.innerText.trim() : null;
}
"""
PACE_CLICK_JS = """
() => {
  const b = [...document.querySelectorAll("[data-testid='stButtonGroup'] [role='radio']")]
    .find(b => b.innerText.trim() === 'fastest');
  if (b) b.click();
  return !!b;
}
"""
SAMPLE_JS = """
() => {
  const metric = [...document.querySelectorAll("[data-testid='stMetric']")]
    .find(m => (m.querySelector("[data-testid='stMetricLabel']") || {}).innerText?.trim() === 'Step');
  const value = metric ? metric.querySelector("[data-testid='stMetricValue']").innerText : '';
  const errors = [...document.querySelectorAll("[data-testid='stException']")].map(e => e.innerText.slice(0, 400));
  const done = [...document.querySelectorAll("[data-testid='stAlertContentSuccess']")]
    .some(e => e.innerText.startsWith('Done'));
  const app = !!document.querySelector("[data-testid='stApp']");
  const pause = [...document.querySelectorAll('button')].some(b => b.innerText.trim().split(/\\s+/).includes('Pause'));
  return {step: value, redraws: window.__bench ? window.__bench.redraws : -1, errors, done, app, pause};
}
"""


# ---------------------------------------------------------------------------------------------- processes


def children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def tree(pid: int, exclude: set[int] = frozenset()) -> list[int]:
    kids, out, todo = children_map(), [], [pid]
    while todo:
        p = todo.pop()
        if p in exclude:
            continue
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def rss_mb(pid: int) -> float:
    """VmRSS of a process and all its descendants, in MB."""
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def pid_listening_on(port: int) -> int | None:
    """The process that listens on a local TCP port (for --url on this machine), or None."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(parts[9])
        except OSError:
            pass
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{entry}/fd"):
                link = os.readlink(f"/proc/{entry}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return int(entry)
        except OSError:
            continue
    return None


class Server:
    """`streamlit run app.py` on a free port of 127.0.0.1, in its own process group.

    Like scripts/serve.py's streamlit_server, plus what a benchmark needs: extra environment (BLAS threads)
    and config options for A/B runs, the log in a file (a pipe nobody reads could fill and stall the
    server), and the whole process group killed at the end."""

    def __init__(self, env: dict[str, str] | None = None, options: list[str] = ()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(self.port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false",
             *[arg for option in options for arg in ("--" + option.split("=", 1)[0], option.split("=", 1)[1])]],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        self.pid = self.process.pid
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.process.poll() is not None:
                break
            try:
                urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=1)
                return
            except OSError:
                time.sleep(0.3)
        tail = self.output()[-2000:]
        self.stop()
        raise RuntimeError("streamlit did not start:\n" + tail)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
                self.process.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(timeout=10)
        self.log.close()


# ------------------------------------------------------------------------------------------------ pages


def parse_step(text: str) -> int | None:
    match = re.match(r"\s*([\d,]+)", text or "")
    return int(match.group(1).replace(",", "")) if match else None


@dataclass
class Session:
    context: object
    page: object
    times: list[float] = field(default_factory=list)
    advanced: list[int] = field(default_factory=list)  # steps trained since Play, summed over restarts
    redraws: list[int] = field(default_factory=list)
    last_step: int | None = None
    restarts: int = 0
    failed: str = ""
    page_errors: list[tuple[str, float, str]] = field(default_factory=list)  # (phase, time, message)
    blank_since: float | None = None  # the app's root element vanished: the frontend crashed to a white page

    def listen(self, phase: list[str]) -> None:
        """Record uncaught errors in the page (a Streamlit frontend crash leaves a white page, no stException)."""
        self.page.on("pageerror", lambda error: self.page_errors.append(
            (phase[0], time.time(), str(error).splitlines()[0][:200])))
        self.page.on("crash", lambda _page: self.page_errors.append((phase[0], time.time(), "renderer crashed")))

    def sample(self) -> dict | None:
        try:
            return self.page.evaluate(SAMPLE_JS)  # no timeout of its own: bounded by the watchdog
        except Exception as error:  # noqa: BLE001 - a page that breaks is a result, not a crash
            self.failed = self.failed or f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
            return None

    def record(self, got: dict) -> None:
        if not got.get("app", True) and self.blank_since is None:
            self.blank_since = time.time()
        step = parse_step(got["step"])
        if step is None:  # the page is between two frames of a rerun
            return
        total = self.advanced[-1] if self.advanced else 0
        if self.last_step is not None:
            total += step - self.last_step if step >= self.last_step else step  # lower: a Reset, from 0 again
        self.last_step = step
        self.times.append(time.time())
        self.advanced.append(total)
        self.redraws.append(got["redraws"])

    def click(self, label: str, timeout_ms: int) -> bool:
        """Click the enabled button labelled `label`, from inside the page: a click per page costs one
        round trip, where Playwright's actionability checks (two animation frames each) would take
        seconds per page on a busy browser and spread "everyone presses Pause" over half a minute."""
        deadline = time.time() + timeout_ms / 1000
        while time.time() < deadline:
            try:
                if self.page.evaluate(CLICK_JS, label):
                    return True
            except Exception as error:  # noqa: BLE001
                self.failed = self.failed or f"{label} click: {str(error).splitlines()[0][:200]}"
                return False
            time.sleep(0.1)
        self.failed = self.failed or f"{label} click: no enabled '{label}' button within {timeout_ms / 1000:g} s"
        return False

    def wait_playing(self, timeout_ms: int) -> bool:
        """The page shows Pause once the rerun that Play started has reached it."""
        try:
            self.page.locator("button", has_text="Pause").first.wait_for(timeout=timeout_ms)
            return True
        except Exception as error:  # noqa: BLE001
            self.failed = self.failed or f"Play did not start: {str(error).splitlines()[0][:200]}"
            return False

    def restart(self, timeout_ms: int) -> None:
        """The run reached its last step: Reset and Play, so the session keeps training for the whole window."""
        if self.click("Reset", timeout_ms):
            try:
                self.page.locator("button:not([disabled])", has_text="Play").first.wait_for(timeout=timeout_ms)
            except Exception as error:  # noqa: BLE001
                self.failed = self.failed or f"Play after Reset: {str(error).splitlines()[0][:200]}"
                return
            if self.click("Play", timeout_ms) and self.wait_playing(timeout_ms):
                self.restarts += 1


def read_step(s: Session, tries: int = 4) -> int | None:
    """The step counter; a page in the middle of a rerun can briefly show no metric, so try again."""
    for _ in range(tries):
        got = s.sample() or {}
        if got and not got.get("app", True):
            s.blank_since = s.blank_since or time.time()
            return None
        step = parse_step(got.get("step", ""))
        if step is not None:
            return step
        time.sleep(0.05)
    return None


def open_sessions(sessions: list[Session], browser, url: str, n: int, timeout_ms: int,
                  phase: list[str] | None = None) -> None:
    """Open n pages (into `sessions`, so the caller closes them whatever happens); a page that does not
    become ready in time is marked failed, not fatal."""
    for _ in range(n):  # start every load first, so the N sessions start up side by side
        context = browser.new_context(viewport=VIEWPORT, reduced_motion="reduce", device_scale_factor=1)
        context.set_default_timeout(timeout_ms)
        page = context.new_page()
        sessions.append(Session(context, page))
        if phase is not None:
            sessions[-1].listen(phase)
        page.goto(url, wait_until="commit", timeout=timeout_ms)
    deadline = time.time() + timeout_ms / 1000
    for s in sessions:
        try:
            left = max(1000, int((deadline - time.time()) * 1000))
            s.page.wait_for_selector(READY, timeout=left)
            s.page.wait_for_selector("[data-testid='stMetric']:has-text('Step')", timeout=left)
        except Exception as error:  # noqa: BLE001
            s.failed = s.failed or f"did not load in {timeout_ms / 1000:g} s: {str(error).splitlines()[0][:150]}"


def choose_fastest(sessions: list[Session], timeout_ms: int) -> None:
    """Pace 'fastest' (the page has no query parameter for it): click the segmented control, again if a
    busy page lost the click, until every page shows it selected."""
    pending = {i for i, s in enumerate(sessions) if not s.failed}
    clicked_at: dict[int, float] = {}
    deadline = time.time() + timeout_ms / 1000
    while pending and time.time() < deadline:
        for i in sorted(pending):
            try:
                pace = sessions[i].page.evaluate(PACE_JS)
                if pace == "fastest":
                    pending.discard(i)
                elif time.time() - clicked_at.get(i, 0.0) > 5.0:
                    sessions[i].page.evaluate(PACE_CLICK_JS)
                    clicked_at[i] = time.time()
            except Exception as error:  # noqa: BLE001
                sessions[i].failed = f"pace: {str(error).splitlines()[0][:150]}"
                pending.discard(i)
        time.sleep(0.2)
    for i in pending:
        sessions[i].failed = sessions[i].failed or f"pace 'fastest' not selected within {timeout_ms / 1000:g} s"
    for s in sessions:
        try:
            s.page.wait_for_selector(READY, timeout=max(1000, int((deadline - time.time()) * 1000)))
        except Exception:  # noqa: BLE001 - a page still running its script is fine: Play waits for its button
            pass


def close_all(sessions: list[Session]) -> None:
    for s in sessions:
        try:
            s.context.close()
        except Exception:  # noqa: BLE001 - closing is best effort; the browser is closed after anyway
            pass


# -------------------------------------------------------------------------------------------- one round


@dataclass
class Result:
    n: int
    rates: list[float]
    redraw_rates: list[float]
    rss_base: float
    rss_first: float
    rss_peak: float
    rss_end: float
    paused: int
    pause_detail: list[str]
    stop_after: list[float]
    active: int
    play_back: list[float | None]
    errors: set[str]
    restarts: int
    failed: list[str]
    server_cpu: float
    browser_cpu: float
    window: float
    sweep_seconds: float
    blank: list[int]
    frontend_errors: dict[str, list[int]]


def renice(pids: list[int], niceness: int) -> None:
    for p in pids:
        try:
            os.setpriority(os.PRIO_PROCESS, p, niceness)
        except OSError:
            pass


def run_round(browser, url: str, server_pid: int | None, n: int, args) -> Result:
    timeout_ms, action_ms = int(args.timeout * 1000), int(min(args.timeout, 20.0) * 1000)
    rss = (lambda: rss_mb(server_pid)) if server_pid else (lambda: float("nan"))
    me = os.getpid()
    server_tree = lambda: set(tree(server_pid)) if server_pid else set()  # noqa: E731
    browser_pids = lambda: [p for p in tree(me, exclude=server_tree()) if p != me]  # noqa: E731
    rss_base = rss()
    sessions: list[Session] = []
    phase = ["loading"]
    try:
        t0 = time.time()
        open_sessions(sessions, browser, url, n, timeout_ms, phase)
        if args.browser_nice:
            renice(browser_pids(), args.browser_nice)
        t1 = time.time()
        choose_fastest(sessions, timeout_ms)
        for s in sessions:
            s.page.evaluate(OBSERVER_JS)
        t2 = time.time()
        phase[0] = "playing"
        for s in sessions:
            s.click("Play", action_ms)
        deadline = time.time() + args.timeout
        for s in sessions:
            s.wait_playing(max(1000, int((deadline - time.time()) * 1000)))
        print(f"  {n} page(s) loaded in {t1 - t0:.1f} s, pace set in {t2 - t1:.1f} s, all playing "
              f"{time.time() - t2:.1f} s after the first Play", flush=True)

        cpu0 = (cpu_seconds(list(server_tree())), cpu_seconds(browser_pids()), time.time())
        errors: set[str] = set()
        rss_samples, sweeps = [], []
        start = time.time()
        while time.time() - start < args.seconds:
            sweep = time.time()
            for s in sessions:
                got = s.sample()
                if got is None:
                    continue
                s.record(got)
                errors.update(got["errors"])
                if got["done"]:
                    s.restart(action_ms)
            rss_samples.append(rss())
            sweeps.append(time.time() - sweep)
            time.sleep(max(0.0, args.interval - (time.time() - sweep)))
        window = time.time() - start
        elapsed = time.time() - cpu0[2]
        server_cpu = (cpu_seconds(list(server_tree())) - cpu0[0]) / elapsed if server_pid else float("nan")
        browser_cpu = (cpu_seconds(browser_pids()) - cpu0[1]) / elapsed

        rates, redraw_rates = [], []
        for s in sessions:
            span = s.times[-1] - s.times[0] if len(s.times) >= 2 else 0.0
            rates.append((s.advanced[-1] - s.advanced[0]) / span if span > 0 else 0.0)
            redraw_rates.append((s.redraws[-1] - s.redraws[0]) / span if span > 0 else 0.0)

        # Pause everywhere. A page honours it if its counter, read from PAUSE_GRACE s after its click on,
        # no longer moves; "stopped after" is when the counter first showed its final value.
        # a run that just reached its last step has no Pause button: start it again so every page can pause
        restarted = False
        for s in sessions:
            got = s.sample()
            if got and got["done"]:
                s.restart(action_ms)
                restarted = True
        if restarted:
            time.sleep(1.0)
        readings: list[list[tuple[float, int]]] = []
        clicked = []
        phase[0] = "pausing"
        for s in sessions:
            before = read_step(s)
            readings.append([(time.time(), before)] if before is not None else [])
            s.click("Pause", action_ms)
            clicked.append(time.time())
        settle_end = max(clicked) + PAUSE_GRACE + PAUSE_WATCH
        hard_end = settle_end + 5.0  # a page that shows no counter for a while gets a little longer
        play_back: list[float | None] = [None] * len(sessions)  # when the page showed Play again

        def watched_long_enough(i: int) -> bool:
            after = [t for t, _ in readings[i] if t >= clicked[i] + PAUSE_GRACE]
            return len(after) >= 2 and after[-1] - after[0] >= PAUSE_WATCH * 0.8

        while time.time() < settle_end or (time.time() < hard_end and not all(
                watched_long_enough(i) and play_back[i] is not None for i in range(len(sessions)))):
            sweep = time.time()
            for i, s in enumerate(sessions):
                got = s.sample() or {}
                if got and not got.get("app", True):
                    s.blank_since = s.blank_since or time.time()
                step = parse_step(got.get("step", ""))
                if step is not None:
                    readings[i].append((time.time(), step))
                    if not got.get("pause", True) and play_back[i] is None:
                        play_back[i] = time.time() - clicked[i]
            time.sleep(max(0.0, 0.25 - (time.time() - sweep)))
        active = [rate > 0 for rate in rates]  # a session that did not advance while playing proves nothing here
        paused, detail, stop_after = 0, [], []
        for i, (t_click, seen) in enumerate(zip(clicked, readings)):
            if not active[i]:
                continue
            after = [step for t, step in seen if t >= t_click + PAUSE_GRACE]
            final_since = seen[-1][0] if seen else t_click
            for t, step in reversed(seen):
                if step != seen[-1][1]:
                    break
                final_since = t
            stop_after.append(max(0.0, final_since - t_click))
            if watched_long_enough(i) and len(set(after)) == 1:
                paused += 1
            elif sessions[i].blank_since is not None:
                detail.append(f"page {i}: blank (the frontend crashed, see below), no counter to read")
            elif not watched_long_enough(i):
                detail.append(f"page {i}: its step counter was readable only {len(after)} time(s) between "
                              f"{PAUSE_GRACE:g} s and {hard_end - t_click:.1f} s after its Pause click")
            else:
                detail.append(f"page {i}: step {after[0]} -> {after[-1]} between {PAUSE_GRACE:g} s and "
                              f"{seen[-1][0] - t_click:.1f} s after its Pause click")
        for s in sessions:
            got = s.sample()
            if got:
                errors.update(got["errors"])
        for s in sessions:  # one last look for white pages
            got = s.sample()
            if got is not None and not got.get("app", True):
                s.blank_since = s.blank_since or time.time()
        frontend_errors = {}
        for s in sessions:
            for when, _, message in s.page_errors:
                frontend_errors.setdefault(f"{message} (while {when})", set()).add(sessions.index(s))
        return Result(n=n, rates=rates, redraw_rates=redraw_rates, rss_base=rss_base, rss_first=rss_samples[0],
                      rss_peak=max(rss_samples), rss_end=rss_samples[-1], paused=paused, pause_detail=detail,
                      stop_after=stop_after, active=sum(active), play_back=play_back, errors=errors, restarts=sum(s.restarts for s in sessions),
                      failed=[f"page {i}: {s.failed}" for i, s in enumerate(sessions) if s.failed],
                      server_cpu=server_cpu, browser_cpu=browser_cpu, window=window,
                      sweep_seconds=statistics.median(sweeps),
                      blank=[i for i, s in enumerate(sessions) if s.blank_since is not None],
                      frontend_errors={k: sorted(v) for k, v in frontend_errors.items()})
    finally:
        close_all(sessions)


def warm_up(browser, url: str, timeout_ms: int) -> None:
    """One page load, so imports and the shared task are in place before the baseline RSS is read."""
    sessions: list[Session] = []
    try:
        open_sessions(sessions, browser, url, 1, timeout_ms)
        if sessions[0].failed:
            raise RuntimeError(f"the warm-up page did not load: {sessions[0].failed}")
    finally:
        close_all(sessions)


# ------------------------------------------------------------------------------------------------- main


def watchdog(limit: float, servers: list[Server]) -> None:
    def fire():
        print(f"\nwatchdog: the benchmark overran {limit:.0f} s; killing the server and exiting; where it was:",
              file=sys.stderr, flush=True)
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        for server in servers:
            try:
                os.killpg(server.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os._exit(3)

    timer = threading.Timer(limit, fire)
    timer.daemon = True
    timer.start()


def app_version() -> str:
    """What was measured: the pacing constants and a digest of the files that shape the live page."""
    digest = hashlib.sha1()
    for name in APP_FILES:
        path = ROOT / name
        digest.update(path.read_bytes() if path.exists() else b"")
    text = (ROOT / "lab_ui/session.py").read_text()
    constants = re.findall(r"^([A-Z_]+_SECONDS)\s*=\s*([\d.]+)", text, flags=re.M)
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        head = "?"
    return (", ".join(f"{k}={v}" for k, v in constants)
            + f"; git {head or '?'}; live-page files digest {digest.hexdigest()[:10]}")


def fmt(values: list[float], digits: int = 0) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):,.{digits}f} ({min(values):,.{digits}f})"


def pause_cell(r: Result) -> str:
    """Honoured / sessions that advanced while playing (a session that never moved cannot show a stop)."""
    idle = r.n - r.active
    return f"{r.paused}/{r.active}" + (f" ({idle} idle)" if idle else "")


def table(results: list[Result]) -> list[str]:
    header = (f"{'sessions':>8} | {'steps/s per session':>19} | {'total steps/s':>13} | {'redraws/s per session':>21} | "
              f"{'server RSS MB':>13} | {'RSS per session MB':>18} | {'pause honoured':>14}")
    lines = [header, "-" * len(header)]
    for r in results:
        per_session = (r.rss_end - r.rss_base) / r.n
        lines.append(f"{r.n:>8} | {fmt(r.rates):>19} | {sum(r.rates):>13,.0f} | {fmt(r.redraw_rates, 1):>21} | "
                     f"{r.rss_end:>13,.0f} | {per_session:>18,.1f} | {pause_cell(r):>14}")
    return lines


def seconds_cell(values: list[float | None]) -> str:
    seen = [v for v in values if v is not None]
    missing = len(values) - len(seen)
    text = f"{statistics.median(seen):.1f} s (median), {max(seen):.1f} s (max)" if seen else "- s"
    return text + (f"; {missing} page(s) never showed Play again" if missing else "")


def details(r: Result) -> list[str]:
    lines = [
        f"{r.n} session(s): server CPU {r.server_cpu:.0%}, Chromium + Playwright {r.browser_cpu:.0%} (of 200% = 2 cores); "
        f"one sampling sweep over all pages took {r.sweep_seconds:.2f} s (median)",
        f"  sessions without a step: {sum(x == 0 for x in r.rates)}, without a redraw: "
        f"{sum(x == 0 for x in r.redraw_rates)}; runs that reached their last step and were Reset + Played again: "
        f"{r.restarts}",
        f"  server RSS: {r.rss_base:,.0f} MB before the pages opened, {r.rss_first:,.0f} at the first sample, "
        f"peak {r.rss_peak:,.0f}, end {r.rss_end:,.0f} ({(r.rss_end - r.rss_first) / r.window:+.2f} MB/s while playing)",
        f"  Pause, sessions that advanced ({r.active}): counters showed their final value "
        f"{statistics.median(r.stop_after or [0]):.2f} s (median), {max(r.stop_after or [0]):.2f} s (max) after the "
        f"click (resolution ~ one sweep)",
        f"  Pause, all sessions: time from the click until the page showed Play again: {seconds_cell(r.play_back)}",
    ]
    lines.append(f"  white pages (the app's root element gone, a frontend crash): {len(r.blank)}/{r.n}"
                 + (f" (pages {r.blank})" if r.blank else ""))
    lines += [f"  uncaught page error on {len(pages)} page(s): {message}" for message, pages in
              r.frontend_errors.items()]
    lines += [f"  pause not honoured: {line}" for line in r.pause_detail]
    lines += [f"  page problem: {line}" for line in r.failed]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", default="1,10,30", help="comma-separated class sizes (default 1,10,30)")
    parser.add_argument("--seconds", type=float, default=15.0, help="how long to sample while all play (default 15)")
    parser.add_argument("--url", default=None, help="an already running server (default: start a fresh one per size)")
    parser.add_argument("--path", default=DEFAULT_PATH, help=f"page and query to open (default {DEFAULT_PATH})")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between samples (default 0.5)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds allowed for a page load (default 120)")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="set OPENBLAS/OMP/MKL_NUM_THREADS for the server this script starts (default: unset)")
    parser.add_argument("--streamlit-option", action="append", default=[], metavar="KEY=VALUE",
                        help="a config option for the server this script starts, e.g. runner.postScriptGC=false "
                             "(repeatable; default: the app's own config)")
    parser.add_argument("--browser-nice", type=int, default=0,
                        help="renice Chromium's processes (e.g. 10) so the server wins the CPU (default 0)")
    args = parser.parse_args()
    sizes = [int(x) for x in args.sessions.split(",") if x.strip()]
    timeout_ms = int(args.timeout * 1000)

    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        print("Debian's chromium is required (apt-get install -y chromium)", file=sys.stderr)
        return 2
    servers: list[Server] = []
    # everything must end by itself: a generous allowance per round and per page, then the watchdog ends it all
    # (per round: server start, warm-up, load, pace, Play each bounded by --timeout; then the window, Pause and
    # the sampling, which grow with the number of pages)
    watchdog(sum(5 * args.timeout + 60 + 10 * n + args.seconds for n in sizes), servers)
    env = {}
    if args.blas_threads:
        env = {k: str(args.blas_threads) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}

    version = app_version()
    print(f"app: {version}" + (f"; server env {env}" if env else "")
          + (f"; server options {args.streamlit_option}" if args.streamlit_option else ""), flush=True)
    results: list[Result] = []
    failures: list[str] = []
    logs: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            for n in sizes:
                server = None
                try:
                    if args.url:
                        parts = urllib.parse.urlsplit(args.url)
                        base = args.url.rstrip("/")
                        local = parts.hostname in ("127.0.0.1", "localhost", "::1")
                        pid = pid_listening_on(parts.port or 80) if local else None
                    else:
                        server = Server(env, args.streamlit_option)
                        servers.append(server)
                        base, pid = server.url, server.pid
                    url = base + args.path
                    print(f"{n} session(s) on {url} (server pid {pid or 'unknown: no RSS'})", flush=True)
                    try:
                        warm_up(browser, url, timeout_ms)
                        time.sleep(1.0)
                        results.append(run_round(browser, url, pid, n, args))
                    except Exception as error:  # noqa: BLE001 - report the round, go on with the next size
                        failures.append(f"{n} sessions: the round failed: {type(error).__name__}: "
                                        f"{str(error).splitlines()[0][:300]}")
                        print(failures[-1], flush=True)
                        continue
                    for line in details(results[-1]):
                        print(line, flush=True)
                finally:
                    if server is not None:
                        out = server.output()
                        if re.search(r"Traceback|Exception", out):
                            logs.append(f"--- server log, {n} sessions (last 3000 chars) ---\n{out[-3000:]}")
                        server.stop()
                        servers.remove(server)
        finally:
            browser.close()

    print()
    print(f"Classroom benchmark: N sessions = N browser contexts on one server, /train pace 'fastest', "
          f"{args.seconds:g} s of Play sampled every ~{args.interval:g} s; cells are 'median (min)' over sessions.")
    for line in table(results):
        print(line)
    print()
    for r in results:
        for line in details(r):
            print(line)
    for line in failures:
        print(line)
    errors = set().union(*(r.errors for r in results)) if results else set()
    print()
    if errors:
        print(f"stException boxes seen ({len(errors)} distinct):")
        for text in sorted(errors):
            print("  " + text.replace("\n", " | "))
    else:
        print("stException boxes seen: none")
    for log in logs:
        print(log)
    after = app_version()
    print(f"\napp measured: {version}" + (f"; server env {env}" if env else "")
          + (f"; server options {args.streamlit_option}" if args.streamlit_option else ""))
    if after != version:
        print(f"WARNING: the app's files changed during the benchmark (now {after}); the rounds may differ")
    print("\nNote: Chromium renders every page on the same 2 cores as the server (its CPU is shown above), so "
          "these rates are a lower bound for a class whose browsers run on the students' own machines. "
          "RSS per session = (server RSS at the end - before the pages opened) / N, on a fresh, warmed-up server.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
