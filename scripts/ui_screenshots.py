"""Screenshots of every page of `tunewise ui` into docs/ui/, taken in Debian's chromium through Playwright.

    cp tunewise-demo/.tunewise/tunewise.db /tmp/demo.db       # a copy: the script only reads, but keep the demo's own store safe
    .venv/bin/python scripts/ui_screenshots.py --store sqlite:////tmp/demo.db --out docs/ui

Run it on the `make demo` workspace's store so that the pictures show real records.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="SQLAlchemy URL of the store to show")
    parser.add_argument("--out", default="docs/ui", help="folder for the PNGs")
    args = parser.parse_args()

    from tunewise.serve.api import running
    from tunewise.store import Store
    from tunewise.ui import create_ui_app

    store = Store.open(args.store)
    with running(create_ui_app(store, allow_changes=True), timeout_s=60) as port:
        _shoot(store, f"http://127.0.0.1:{port}", Path(args.out))


def _shoot(store, base: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    datasets, runs = store.list_datasets(), store.list_runs()
    evaluation = store.latest_evaluation("compare")
    deployment = next(iter(store.list_deployments()), None)
    child = next((d for d in datasets if d.parent_id), datasets[0] if datasets else None)
    pages = [("overview", "/"), ("datasets", "/datasets"), ("runs", "/runs"), ("evaluations", "/evaluations"),
             ("decision", "/decision"), ("deployments", "/deployments")]
    if child is not None:
        pages.append(("dataset", f"/datasets/{child.parent_id or child.id}"))
    if runs:
        pages.append(("run", f"/runs/{runs[-1].id}"))
        if len(runs) > 1:
            pages.append(("runs-compare", f"/runs/compare?a={runs[-1].id}&b={runs[0].id}"))
    if evaluation is not None:
        pages.append(("evaluation", f"/evaluations/{evaluation.id}"))
        pages.append(("evaluation-rows", f"/evaluations/{evaluation.id}?show=disagree#rows"))
    if deployment is not None:
        pages.append(("deployment", f"/deployments/{deployment.name}"))

    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox", "--disable-gpu"])
        tab = browser.new_page(viewport={"width": 1280, "height": 1000})
        for name, path in pages:
            tab.goto(base + path)
            if name == "decision" and tab.locator("#volume").count():
                tab.locator("#volume").fill(str(int(float(tab.locator("#volume").get_attribute("max")) / 10)))
                tab.locator("#roi table, #roi p").first.wait_for()
                time.sleep(0.5)
                tab.locator("#volume").scroll_into_view_if_needed()
            tab.screenshot(path=str(out / f"{name}.png"))
            print(out / f"{name}.png")
        browser.close()


if __name__ == "__main__":
    main()
