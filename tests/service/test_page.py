"""The search page in a real browser (Debian's chromium, driven by Playwright) against a real
service on 127.0.0.1."""

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

pytestmark = pytest.mark.slow  # a headless browser

CHROMIUM = "/usr/bin/chromium"  # installed by scripts/bootstrap.sh; never a downloaded browser
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


@pytest.fixture(scope="module")
def browser_page():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        yield page
        browser.close()


def test_upload_slide_and_click_through_the_page(live_server, browser_page, gallery):
    page = browser_page
    page.goto(f"{live_server}/")
    expect(page.locator("#summary")).to_contain_text("23 gallery images · 32 features kept")
    expect(page.locator("#importance-chart rect")).to_have_count(32)
    expect(page.locator("#features .feature")).to_have_count(8)

    page.set_input_files("#file-input", str(gallery / "plain/item-05.png"))
    results = page.locator("#results .result")
    expect(results).to_have_count(10)
    expect(results.first).to_have_attribute("data-id", "plain/item-05.png")
    expect(page.locator("#results")).to_have_attribute("data-k-features", "16")
    expect(page.locator("#search-time")).to_contain_text("10 results at 16 features (exact)")

    page.locator("#k-slider").fill("4")
    expect(page.locator("#k-value")).to_have_text("4 of 32")
    expect(page.locator("#results")).to_have_attribute("data-k-features", "4")
    expect(page.locator("#importance-chart rect.used")).to_have_count(4)

    page.select_option("#top-k", "5")
    expect(results).to_have_count(5)

    clicked = results.nth(2).get_attribute("data-id")
    results.nth(2).click()
    expect(page.locator("#query-label")).to_contain_text(f"Query: {clicked} (from the gallery)")
    expect(results.first).to_have_attribute("data-id", clicked)
    expect(page.locator("#error")).to_be_hidden()

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "search-page.png", full_page=True)
    assert (ARTIFACTS / "search-page.png").stat().st_size > 10_000


def test_the_frame_and_controls_show_before_info_answers_and_fill_in_after(
    live_server, browser_page
):
    """/info held back, as a slow network or a busy server would: the layout, the controls and
    the chart's frame are there at once, waiting for the index's values, which fill them in."""
    page = browser_page
    held = []
    page.route("**/info", lambda route: held.append(route))
    page.goto(f"{live_server}/")
    while not held:
        page.wait_for_timeout(50)
    for control in ("#drop-zone", "#k-slider", "#top-k", "#min-score", "#find-duplicates"):
        expect(page.locator(control)).to_be_visible()
    expect(page.locator("#k-slider")).to_be_disabled()
    chart = page.locator("#importance-chart")
    expect(chart).to_be_visible()
    assert chart.bounding_box()["height"] >= 100
    expect(chart.locator(".axis")).to_have_count(1)
    expect(chart.locator("rect")).to_have_count(0)
    expect(page.locator("#summary")).to_have_attribute("aria-busy", "true")
    expect(page.locator("#summary")).to_contain_text("gallery images · features kept · model")
    expect(page.locator("#features .feature-slot")).to_have_count(8)
    for region in ("#query-panel", "#features"):
        assert page.locator(region).bounding_box()["height"] > 300, region

    held[0].continue_()
    page.unroute("**/info")
    expect(page.locator("#k-slider")).to_be_enabled()
    expect(page.locator("#k-slider")).to_have_attribute("max", "32")
    expect(page.locator("#k-value")).to_have_text("16 of 32")
    expect(chart.locator("rect")).to_have_count(32)
    expect(chart.locator("rect.used")).to_have_count(16)
    expect(page.locator("#summary")).to_contain_text("23 gallery images · 32 features kept")
    expect(page.locator("#summary")).not_to_have_attribute("aria-busy", "true")
    expect(page.locator("#features .feature")).to_have_count(8)
    expect(page.locator("#features .feature-slot")).to_have_count(0)


def test_a_rejected_upload_shows_the_reason(live_server, browser_page, tmp_path):
    """Also when the file is chosen before the page has its /info answer: held back here until
    the file is chosen, as a slow network or a busy server would."""
    page = browser_page
    held = []
    page.route("**/info", lambda route: held.append(route))
    page.goto(f"{live_server}/")
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    page.set_input_files("#file-input", str(text))
    while not held:
        page.wait_for_timeout(50)
    held[0].continue_()
    page.unroute("**/info")
    expect(page.locator("#error")).to_contain_text("not an image in a supported format")


def test_a_relevance_floor_and_the_near_duplicate_view(live_server, browser_page, gallery):
    page = browser_page
    page.goto(f"{live_server}/")
    page.set_input_files("#file-input", str(gallery / "plain/item-05.png"))
    results = page.locator("#results .result")
    expect(results).to_have_count(10)

    page.fill("#min-score", "0.99")
    expect(page.locator("#search-time")).to_contain_text("cosine ≥ 0.99")
    scores = [
        float(text.removeprefix("cosine "))
        for text in page.locator("#results .result .score").all_inner_texts()
    ]
    assert 1 <= len(scores) < 10 and min(scores) >= 0.99
    page.fill("#min-score", "")
    expect(results).to_have_count(10)

    page.fill("#duplicate-threshold", "0.9")
    page.click("#find-duplicates")
    expect(page.locator("#duplicate-summary")).to_contain_text("at cosine ≥ 0.9 on 32 features")
    groups = page.locator("#duplicate-groups .duplicate-group")
    expected = httpx.get(f"{live_server}/duplicates", params={"threshold": 0.9}, timeout=30)
    expected = expected.json()["groups"]
    expect(groups).to_have_count(len(expected))
    first = [item["id"] for item in expected[0]["items"]]
    expect(groups.first.locator("img")).to_have_count(len(first))
    groups.first.locator("img").nth(1).click()
    expect(page.locator("#query-label")).to_contain_text(f"Query: {first[1]} (from the gallery)")

    page.fill("#duplicate-threshold", "3")
    page.click("#find-duplicates")
    expect(page.locator("#duplicate-summary")).to_contain_text("threshold must be a cosine")
