"""The /ops dashboard in headless Chromium against a running stack (real processes)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.ops.conftest import make_job

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    if not CHROMIUM.exists():
        pytest.skip("chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install .[test])"
    )
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def _wait(check, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.3)
    raise AssertionError(f"{what} within {timeout:.0f}s")


def _seed_finished_jobs(db, tenant, factors) -> None:  # type: ignore[no-untyped-def]
    """Jobs that finished over the last 12 minutes, with varied upload-to-score times."""
    now = datetime.now(UTC)
    for i in range(24):
        finished = now - timedelta(seconds=30 * i + 5)
        for k, factor in enumerate(factors):
            for j in range(1 + (i + k) % 3):  # 1-3 jobs a bucket: distinct rates and percentiles
                took = timedelta(seconds=0.4 + 0.3 * k + (i % 5) * 0.2 + j * (0.5 + 0.4 * k))
                make_job(
                    db,
                    tenant,
                    factor=factor,
                    status="done",
                    created_at=finished - took,
                    started_at=finished - took / 2,
                    finished_at=finished - timedelta(seconds=j),
                )


def test_dashboard_charts_real_data_and_requeues_a_dead_job(
    ops_stack, browser, db, tenant, tmp_path
):  # type: ignore[no-untyped-def]
    stack, token = ops_stack
    # given finished jobs, and a job the relay's sweeper kills after its last interrupted attempt
    _seed_finished_jobs(db, tenant, ("keystroke", "gait", "face"))
    factor = stack.factors[0] if stack.factors else "gait"
    dead_id = make_job(
        db,
        tenant,
        factor=factor,
        status="running",
        attempts=5,
        started_at=datetime.now(UTC) - timedelta(minutes=10),
    )
    _wait(
        lambda: (
            db.execute("SELECT status FROM jobs WHERE id = %s", (dead_id,)).fetchone()["status"]
            == "dead"
        ),
        60,
        "the sweeper marked the job dead",
    )
    # and the relay has sampled queue depth at least twice
    time.sleep(6)

    # when an operator opens the dashboard with the token
    context = browser.new_context(
        viewport={"width": 1400, "height": 1800},
        extra_http_headers={"Authorization": f"Bearer {token}"},
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    response = page.goto(f"{stack.api_url}/ops")
    assert response is not None and response.status == 200
    page.select_option("#window", "15")
    page.wait_for_selector("body[data-minutes='15']", timeout=20_000)

    # then every chart draws paths from real data
    def drawn(chart: str) -> list[dict]:
        return page.eval_on_selector_all(
            f"svg[data-chart='{chart}'] path.series",
            "ps => ps.map(p => ({series: p.dataset.series, points: +p.dataset.points, d: p.getAttribute('d')}))",
        )

    depth = _wait(
        lambda: [p for p in drawn("queue-depth") if p["points"] >= 2],
        20,
        "queue depth history drawn",
    )
    assert {p["series"] for p in depth} >= {"keystroke", "gait", "face"}
    throughput = drawn("throughput")
    assert {p["series"] for p in throughput} == {"keystroke", "gait", "face"}
    assert all(
        p["points"] >= 5 and p["d"].startswith("M") and p["d"].count("L") >= 4 for p in throughput
    )
    for f in ("keystroke", "gait", "face"):
        assert [p["series"] for p in drawn(f"latency-{f}")] == ["p50", "p95", "p99"]
    # and live pools show up from their heartbeats, dead jobs with their reason
    _wait(
        lambda: page.locator("#workers li[data-role='relay']").count() >= 1,
        20,
        "the relay's heartbeat shown",
    )
    for f in stack.factors:
        assert page.locator("svg[data-chart='batch-size'] text.label", has_text=f).count() >= 1
    row = page.locator(f"#dead li[data-job='{dead_id}']")
    assert "attempts_exhausted" in row.inner_text()
    assert page.locator("#evaluation figure").count() == 3
    # and the committed trust evaluation: fused and per-factor rows, its trust plot
    assert page.locator("#trust-evaluation tr[data-trust]").count() == 4
    assert page.locator("#trust-evaluation img").count() == 2
    page.screenshot(path=str(tmp_path / "ops-dashboard.png"), full_page=True)

    # when the operator presses Requeue
    row.locator("button.requeue").click()
    # then the job is queued again and the relay publishes it to its queue
    page.wait_for_selector(f"#dead li[data-job='{dead_id}'].requeued", timeout=10_000)
    after = _wait(
        lambda: db.execute(
            "SELECT j.status, j.attempts, o.published_at FROM jobs j JOIN outbox o ON o.job_id = j.id"
            " WHERE j.id = %s AND o.not_before > now() - interval '5 minutes' AND o.published_at IS NOT NULL",
            (dead_id,),
        ).fetchone(),
        30,
        "the relay published the requeued job",
    )
    assert after["status"] != "dead" or after["attempts"] >= 1
    if factor not in stack.factors:
        assert after["status"] == "queued"  # no pool for this factor: it waits on its queue
    page.locator(f"#dead li[data-job='{dead_id}']").wait_for(state="detached", timeout=15_000)
    assert not errors, errors
    print(f"screenshot: {tmp_path / 'ops-dashboard.png'}")
    # and the operator token never reached a log of any process
    for log in (stack.data_dir / "logs").glob("*.log"):
        assert token not in log.read_text(errors="replace"), f"{log.name} holds the operator token"
    context.close()
