"""The dashboard in real headless Chromium (Debian's ``chromium`` driven by Playwright; no browser download).

The page loads, the participant list appears, choosing a participant draws its charts with the
alert nights and symptom onset marked, and no request leaves 127.0.0.1. Screenshots are saved to
``artifacts/screenshots/`` (gitignored) for people to look at.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("PRODROMAL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--no-first-run", "--disable-sync"]
TOKEN = "browser-test-token-0123456789"

if not Path(CHROMIUM).exists():
    pytest.skip("chromium not installed (apt-get install -y chromium); the dashboard browser test needs it",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install -e .[dev])")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from streams.dashboard.demo import demo_run

    return demo_run(tmp_path_factory.mktemp("browser_demo"), participants=8, days=75, seed=11)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


def _page(browser, outside: list):
    ctx = browser.new_context(viewport={"width": 1360, "height": 900}, device_scale_factor=1)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    def guard(route):
        host = urlsplit(route.request.url).hostname
        if host not in ("127.0.0.1", None) and not route.request.url.startswith("data:"):
            outside.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.route("**/*", guard)
    return ctx, page, errors


def _pick(run: Path) -> tuple[str, int]:
    """A labelled participant with alerts, and its alert count."""
    with open(run / "alerts.csv", newline="") as fh:
        alerts = [r["participant_id"] for r in csv.DictReader(fh)]
    with open(run / "participants.csv", newline="") as fh:
        labelled = sorted(r["participant_id"] for r in csv.DictReader(fh) if r["symptom_onset_date"])
    best = max(labelled, key=lambda p: (alerts.count(p) > 0, -labelled.index(p)))
    return best, alerts.count(best)


def test_cohort_then_participant(run, browser):
    from streams.dashboard import DashboardServer, RunSource

    SHOTS.mkdir(parents=True, exist_ok=True)
    srv = DashboardServer(RunSource(run), "127.0.0.1", 0).start()
    outside: list[str] = []
    ctx, page, errors = _page(browser, outside)
    try:
        page.goto(srv.url)
        page.wait_for_selector("body[data-ready=cohort]", state="attached", timeout=20_000)
        rows = page.locator("#participant-list tbody tr")
        assert rows.count() == 8
        assert page.locator("#participant-list .strip").count() == 8
        assert page.locator("#alert-table tbody tr").count() > 0
        assert page.locator("svg[data-chart=cohort-alerts] rect.bar").count() > 0
        page.screenshot(path=str(SHOTS / "cohort-overview.png"), full_page=True)

        pid, n_alerts = _pick(run)
        assert n_alerts > 0
        page.click(f"#participant-list tr[data-pid='{pid}']")
        page.wait_for_selector("body[data-ready=participant]", state="attached", timeout=20_000)
        assert page.locator("#p-title").inner_text() == f"Participant {pid}"
        for key in ("rhr", "hrv", "resp", "temp", "steps", "score", "capture"):
            chart = page.locator(f"svg[data-chart={key}]")
            assert chart.count() == 1, key
            assert chart.locator("polyline, rect.bar").count() > 0, f"{key}: nothing drawn"
            assert chart.locator("text.nodata").count() == 0, key
        rhr = page.locator("svg[data-chart=rhr]")
        assert rhr.locator("polygon.band").count() >= 1
        assert rhr.locator("rect.alert-mark").count() == n_alerts
        assert rhr.locator("circle.alert-point").count() == n_alerts
        assert rhr.locator("line.label-symptom_onset").count() == 1
        assert rhr.locator("text.label-symptom_onset").text_content() == "symptom onset"
        assert page.locator("#p-alerts tbody tr").count() == n_alerts
        page.screenshot(path=str(SHOTS / "participant.png"), full_page=True)

        # the picker switches participant; the back button returns to the overview
        other = next(p for p in page.eval_on_selector_all("#participant-select option", "os => os.map(o => o.value)") if p and p != pid)
        page.select_option("#participant-select", other)
        sync_api.expect(page.locator("#p-title")).to_have_text(f"Participant {other}", timeout=10_000)
        page.go_back()
        sync_api.expect(page.locator("#p-title")).to_have_text(f"Participant {pid}", timeout=10_000)
        page.go_back()
        sync_api.expect(page.locator("#cohort-view")).to_be_visible(timeout=10_000)
        assert not errors, errors
        assert not outside, outside
    finally:
        ctx.close()
        srv.stop()


def test_token_link_opens_the_page(run, browser):
    from streams.dashboard import DashboardServer, RunSource

    srv = DashboardServer(RunSource(run), "127.0.0.1", 0, token=TOKEN).start()
    outside: list[str] = []
    ctx, page, errors = _page(browser, outside)
    try:
        r = page.goto(srv.url)
        assert r.status == 401
        errors.clear()  # the browser logs the refused load itself
        page.goto(srv.url + f"?token={TOKEN}")
        page.wait_for_selector("body[data-ready=cohort]", state="attached", timeout=20_000)
        assert "token" not in page.url
        assert page.locator("#participant-list tbody tr").count() == 8
        assert not errors and not outside
    finally:
        ctx.close()
        srv.stop()


def test_screenshot_dates_are_the_cohort_dates(run):
    """The overview's dates come from the run (local days), not from the viewer's clock."""
    from streams.dashboard import RunSource

    c = RunSource(run).cohort()
    with open(run / "scores.csv", newline="") as fh:
        last = max(r["date"] for r in csv.DictReader(fh))
    assert dt.date(1970, 1, 1) + dt.timedelta(days=c["last_day"]) == dt.date.fromisoformat(last)
