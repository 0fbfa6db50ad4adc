"""Take docs/search-page.png: the search page on an index, after a query at 8 features.

Usage: .venv/bin/python scripts/screenshot.py --index index --query imgs/sneaker/test-00009.png
"""

import argparse
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from bench.http import running_service


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", type=Path, default=Path("index"))
    parser.add_argument("--query", type=Path, required=True, help="image to upload")
    parser.add_argument("--k-features", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("docs/search-page.png"))
    args = parser.parse_args()
    with running_service(args.index, {}) as (url, _), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{url}/")
        page.locator("#k-slider").fill(str(args.k_features))
        page.set_input_files("#file-input", str(args.query))
        expect(page.locator("#results")).to_have_attribute("data-k-features", str(args.k_features))
        expect(page.locator("#features .feature")).to_have_count(8)
        page.wait_for_load_state("networkidle")
        page.screenshot(path=args.out, full_page=True)
        browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
